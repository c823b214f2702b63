"""Backups and restore: the database and the uploaded media, in one archive.

A backup is a consistent snapshot of the database (operations.databases),
every file under MEDIA_ROOT and a manifest (operations.archives), written to
BACKUP_TARGET (operations.storage); then all but the newest BACKUP_KEEP
archives there are deleted. Redis is not in it: it holds nothing that must
survive (docs/operations.md, "Backups and restore").

A restore checks everything it can before it writes anything: that the
archive is whole and one of ours, that its database engine is this one's,
that this code knows every migration it had applied, and that the database
and MEDIA_ROOT are empty (unless told to replace what is there). After
loading, every table must hold the number of rows the manifest recorded.
"""

import datetime
import os
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connections

from operations import databases
from operations.archives import MEDIA_PREFIX, ArchiveWriter, BackupError, Manifest, unpack
from operations.storage import archive_name, locate, prune, storage_for

__all__ = ["BackupError", "BackupResult", "RestoreResult", "make_backup", "restore_backup"]


@dataclass
class BackupResult:
    location: str
    size: int
    rows: dict[str, int]
    media_files: int
    pruned: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass
class RestoreResult:
    source: str
    created_at: datetime.datetime
    database: str
    rows: dict[str, int]
    media_files: int
    unapplied: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)


def make_backup(
    now: datetime.datetime,
    *,
    target: str,
    keep: int,
    media_root: Path,
    alias: str = "default",
) -> BackupResult:
    """Back up the database `alias` and `media_root` to `target`, named for `now`; keep `keep`."""
    storage = storage_for(target)
    name = archive_name(now)
    with storage.workspace() as work:
        snapshot = databases.take_snapshot(alias, work)
        local = work / name
        media = list(media_files(media_root))
        with ArchiveWriter(local) as writer:
            writer.add(snapshot.path.name, snapshot.path)
            snapshot.path.unlink()  # the archive holds it now: half the disk space
            for relative, path in media:
                try:
                    writer.add(MEDIA_PREFIX + relative, path)
                except FileNotFoundError:
                    # Deleted since it was listed (an editor replaced an image):
                    # no longer part of what is being backed up.
                    continue
            version, commit = app_version()
            writer.finish(
                Manifest(
                    created_at=now,
                    engine=snapshot.engine,
                    database_file=snapshot.path.name,
                    database_tool=snapshot.tool,
                    server_version=snapshot.server_version,
                    migrations=snapshot.migrations,
                    rows=snapshot.rows,
                    app_version=version,
                    app_commit=commit,
                )
            )
        size = local.stat().st_size
        location = storage.store(local, name)
    # Only once the new archive is safe: a failed backup deletes nothing.
    pruned = prune(storage, keep)
    media_count = sum(1 for member in writer.files if member.startswith(MEDIA_PREFIX))
    return BackupResult(location, size, snapshot.rows, media_count, pruned, snapshot.notes)


def media_files(media_root: Path) -> Iterator[tuple[str, Path]]:
    """Every regular file under `media_root`, as (relative POSIX path, path), in order."""
    if not media_root.is_dir():
        return
    for folder, subfolders, files in os.walk(media_root):
        subfolders.sort()
        for file_name in sorted(files):
            path = Path(folder) / file_name
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(media_root).as_posix(), path


def app_version() -> tuple[str | None, str | None]:
    """This code's version (pyproject.toml) and git commit, each None where unknown.

    Unknown is a fine answer: an image built without .git has no commit to tell.
    """
    base = Path(settings.BASE_DIR)
    try:
        version = str(tomllib.loads((base / "pyproject.toml").read_text())["project"]["version"])
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        version = None
    git = shutil.which("git")
    commit = None
    if git is not None and (base / ".git").exists():
        try:
            found = subprocess.run(  # noqa: S603 - git, fixed arguments
                [git, "rev-parse", "HEAD"], cwd=base, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            found = None
        if found is not None and found.returncode == 0:
            commit = found.stdout.strip() or None
    return version, commit


def restore_backup(
    archive: str,
    *,
    target: str,
    media_root: Path,
    replace: bool = False,
    alias: str = "default",
) -> RestoreResult:
    """Restore `archive` into the database `alias` and `media_root`.

    `archive` is a path, s3://bucket/key, or "latest": the newest in `target`.
    """
    storage, name = locate(archive, target)
    source = storage.describe(name)
    with tempfile.TemporaryDirectory(prefix="briefing-restore-") as work_folder:
        work = Path(work_folder)
        unpacked = work / "unpacked"
        manifest = unpack(storage.fetch(name, work), unpacked)
        notes = check_restorable(manifest, source, alias, media_root, replace=replace)
        databases.restore_snapshot(
            manifest.engine,
            unpacked / manifest.database_file,
            manifest.database_tool,
            alias,
            replace=replace,
        )
        verify_rows(manifest, alias)
        try:
            media = restore_media(manifest, unpacked, media_root)
        except OSError as error:
            raise BackupError(
                f"The database was restored, but the media files could not be: {error}. "
                f"Free the space or fix the permissions of {media_root} and restore again "
                "with --replace."
            ) from error
    return RestoreResult(
        source=source,
        created_at=manifest.created_at,
        database=databases.describe_database(alias),
        rows=manifest.rows,
        media_files=media,
        unapplied=databases.unapplied_migrations(manifest.migrations),
        notes=notes,
    )


def check_restorable(
    manifest: Manifest, source: str, alias: str, media_root: Path, *, replace: bool
) -> list[str]:
    """Refuse, before anything is written, what restoring `manifest` here would get wrong."""
    engine = databases.engine_of(alias)
    where = databases.describe_database(alias)
    if manifest.engine != engine:
        held = databases.ENGINE_NAMES.get(manifest.engine, manifest.engine)
        raise BackupError(
            f"{source} holds a {held} database, and DATABASE_URL names "
            f"{where}: restore it into a {held} database."
        )
    known, installed = databases.code_migrations()
    unknown = [m for m in manifest.migrations if m[0] in installed and m not in known]
    if unknown:
        listed = ", ".join(f"{app}.{name}" for app, name in unknown[:3])
        made_by = f" (commit {manifest.app_commit})" if manifest.app_commit else ""
        raise BackupError(
            f"{source} was made by a newer version of this service{made_by}: its database had "
            f"applied migrations this code does not have ({listed}"
            f"{', …' if len(unknown) > 3 else ''}). Restore it with that version, then upgrade."
        )
    notes = []
    elsewhere = sorted({app for app, _name in manifest.migrations if app not in installed})
    if elsewhere:
        notes.append(
            f"Tables of apps not installed here come back as they were: {', '.join(elsewhere)}."
        )

    tables = databases.table_names(alias)
    where_capitalised = where[:1].upper() + where[1:]
    if tables and not replace:
        with connections[alias].cursor() as cursor:
            rows = sum(databases.count_rows(cursor, tables).values())
        raise BackupError(
            f"{where_capitalised} is not empty: it has {len(tables)} tables holding {rows} rows. "
            "A restore writes only into an empty database, so that nothing in it is lost. "
            "Restore into a new, empty database, or pass --replace to overwrite everything in "
            "this one."
        )
    if tables and engine == "postgresql":
        # pg_restore --clean drops only what the archive holds.
        extra = sorted(set(tables) - set(manifest.rows))
        if extra:
            raise BackupError(
                f"{where_capitalised} has tables the backup does not ({', '.join(extra[:5])}): "
                "--replace would leave them beside the restored ones. Drop them, or restore into "
                "a new, empty database."
            )
    existing = next(media_files(media_root), None)
    if existing is not None and not replace:
        raise BackupError(
            f"MEDIA_ROOT ({media_root}) already holds files (e.g. {existing[0]}). Restore into "
            "an empty MEDIA_ROOT, or pass --replace: the backup's files then overwrite files of "
            "the same name, and other files stay."
        )
    return notes


def verify_rows(manifest: Manifest, alias: str) -> None:
    """Every table the backup counted is there, with the same number of rows."""
    present = set(databases.table_names(alias))
    missing = sorted(set(manifest.rows) - present)
    if missing:
        raise BackupError(
            f"The restored database lacks {len(missing)} table(s) of the backup, e.g. "
            f"{missing[0]}. Do not start the service on it."
        )
    with connections[alias].cursor() as cursor:
        counts = databases.count_rows(cursor, manifest.rows)
    differ = [table for table, count in manifest.rows.items() if counts[table] != count]
    if differ:
        table = differ[0]
        raise BackupError(
            f"The restored database differs from the backup: {table} holds {counts[table]} rows, "
            f"the backup recorded {manifest.rows[table]} ({len(differ)} table(s) differ). "
            "Do not start the service on it."
        )


def restore_media(manifest: Manifest, unpacked: Path, media_root: Path) -> int:
    """Move the backup's media files into `media_root`, readable as uploads are."""
    mode = settings.FILE_UPLOAD_PERMISSIONS or 0o644
    names = manifest.media_files()
    for name in names:
        destination = media_root.joinpath(*name.removeprefix(MEDIA_PREFIX).split("/"))
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(unpacked / name, destination)
        destination.chmod(mode)
    return len(names)
