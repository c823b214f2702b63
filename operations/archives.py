"""One backup is one tar file: the database's dump, the media files and manifest.json.

The manifest, the archive's last member, says what made the archive and
when, which database engine the dump is for, which migrations that database
had applied, how many rows each of its tables held, and the size and SHA-256
of every other member. A restore unpacks nothing the manifest does not list
and keeps no member whose checksum differs: a damaged archive, or a tar made
by something else, is refused before the database is touched.
"""

import datetime
import hashlib
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Self

from config.private_files import FILE_MODE

FORMAT = "morning-briefing-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MEDIA_PREFIX = "media/"
# A manifest lists every media file: generous, but not whatever a stranger's tar holds.
MANIFEST_MAX_BYTES = 64 * 1024 * 1024
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why and what to do."""


@dataclass(frozen=True)
class Member:
    sha256: str
    size: int


@dataclass
class Manifest:
    created_at: datetime.datetime
    engine: str  # "postgresql" or "sqlite"
    database_file: str  # the member holding the dump
    database_tool: str  # what wrote the dump: "pg_dump (PostgreSQL) 15.20", "sqlite3 3.46.1"
    server_version: str
    migrations: list[tuple[str, str]]
    rows: dict[str, int]
    app_version: str | None = None
    app_commit: str | None = None
    files: dict[str, Member] = field(default_factory=dict)

    def media_files(self) -> list[str]:
        return sorted(name for name in self.files if name.startswith(MEDIA_PREFIX))

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": self.created_at.isoformat(),
            "app": {"version": self.app_version, "commit": self.app_commit},
            "database": {
                "engine": self.engine,
                "file": self.database_file,
                "tool": self.database_tool,
                "server_version": self.server_version,
                "migrations": [list(pair) for pair in self.migrations],
                "rows": self.rows,
            },
            "files": {
                name: {"sha256": member.sha256, "size": member.size}
                for name, member in sorted(self.files.items())
            },
        }
        return json.dumps(document, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes, archive: str) -> Self:
        not_ours = f"{archive} is not a backup made by `manage.py backup`"
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BackupError(f"{not_ours}: its manifest.json is not JSON.") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise BackupError(f"{not_ours}: its manifest.json is not one of ours.")
        version = document.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BackupError(
                f"{archive} was made by a newer version of this service (archive format "
                f"{version!r}; this one reads {FORMAT_VERSION}): restore it with that version."
            )
        try:
            database = document["database"]
            app = document.get("app") or {}
            return cls(
                created_at=datetime.datetime.fromisoformat(document["created_at"]),
                engine=_text(database["engine"]),
                database_file=_text(database["file"]),
                database_tool=_text(database["tool"]),
                server_version=_text(database["server_version"]),
                migrations=[
                    (_text(app_label), _text(name)) for app_label, name in database["migrations"]
                ],
                rows={_text(table): int(count) for table, count in database["rows"].items()},
                app_version=app.get("version"),
                app_commit=app.get("commit"),
                files={
                    _text(name): Member(_text(entry["sha256"]), int(entry["size"]))
                    for name, entry in document["files"].items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise BackupError(
                f"{archive}'s manifest.json is incomplete or malformed ({error!r})."
            ) from None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def check_member_name(name: str) -> PurePosixPath:
    """A member's name as a relative path that stays inside the folder it is unpacked into."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or name != str(path):
        raise BackupError(f"The archive names a file {name!r} outside its own folder: refused.")
    return path


class _HashingReader:
    """A file read through, hashing what is read (tarfile reads exactly the member's size)."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.hash.update(data)
        return data


class ArchiveWriter:
    """Writes the members one by one, each hashed as it goes in, and the manifest last.

    The archive is created readable by its owner only, and never over an
    existing file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        # Closed by finish(), or by __exit__ when a member could not be added.
        self._file = os.fdopen(descriptor, "wb")
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.files: dict[str, Member] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None and not self._file.closed:
            self._tar.close()
            self._file.close()

    def add(self, name: str, source: Path) -> None:
        check_member_name(name)
        with source.open("rb") as file:
            status = os.fstat(file.fileno())
            info = tarfile.TarInfo(name)
            info.size = status.st_size
            info.mtime = int(status.st_mtime)
            info.mode = FILE_MODE
            reader = _HashingReader(file)
            # A file that shrinks while it is read fails here (tarfile wants
            # every byte it announced); one that grows is taken as it was.
            self._tar.addfile(info, reader)
        self.files[name] = Member(reader.hash.hexdigest(), info.size)

    def finish(self, manifest: Manifest) -> None:
        manifest.files = dict(self.files)
        data = manifest.to_json()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        info.mtime = int(manifest.created_at.timestamp())
        info.mode = FILE_MODE
        self._tar.addfile(info, _BytesReader(data))
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk = bytes(self.data[self.offset : end])
        self.offset += len(chunk)
        return chunk


def unpack(archive: Path, into: Path) -> Manifest:
    """Check `archive` against its manifest and unpack its members into `into`.

    Raises BackupError, naming the archive, when it is not a tar file, has
    no manifest of ours, lists files it does not hold or holds files it does
    not list, names a path outside `into`, or a member's size or checksum
    differs from the manifest's.
    """
    not_ours = f"{archive} is not a backup made by `manage.py backup`"
    try:
        tar = tarfile.open(archive, mode="r:")  # noqa: SIM115 - closed by the `with` below
    except (tarfile.TarError, OSError) as error:
        raise BackupError(f"{not_ours}: it is not a tar archive ({error}).") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as error:
            raise BackupError(f"{archive} is damaged: {error}. Restore another backup.") from None
        by_name: dict[str, tarfile.TarInfo] = {}
        for member in members:
            if member.name in by_name:
                raise BackupError(f"{not_ours}: it holds {member.name!r} twice.")
            by_name[member.name] = member
        manifest_member = by_name.pop(MANIFEST, None)
        if manifest_member is None:
            raise BackupError(f"{not_ours}: it has no manifest.json.")
        if not manifest_member.isfile() or manifest_member.size > MANIFEST_MAX_BYTES:
            raise BackupError(f"{not_ours}: its manifest.json is not a small file.")
        manifest = Manifest.from_json(_read_member(tar, manifest_member, archive), str(archive))

        missing = sorted(set(manifest.files) - set(by_name))
        if missing:
            raise BackupError(
                f"{archive} is incomplete: the manifest lists {len(missing)} file(s) it does "
                f"not hold, e.g. {missing[0]!r}. Restore another backup."
            )
        unlisted = sorted(set(by_name) - set(manifest.files))
        if unlisted:
            raise BackupError(
                f"{archive} holds {len(unlisted)} file(s) its manifest does not list, e.g. "
                f"{unlisted[0]!r}: it was changed after it was made. Refused."
            )
        if manifest.database_file not in manifest.files:
            raise BackupError(f"{archive} has no database dump ({manifest.database_file!r}).")
        for name, expected in sorted(manifest.files.items()):
            relative = check_member_name(name)
            member = by_name[name]
            if not member.isfile():
                raise BackupError(f"{archive}: {name!r} is not a regular file. Refused.")
            destination = into.joinpath(*relative.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            digest, size = _extract(tar, member, destination, archive)
            if (digest, size) != (expected.sha256, expected.size):
                raise BackupError(
                    f"{archive} is damaged: {name!r} does not match the checksum its manifest "
                    "recorded when the backup was made. Restore another backup."
                )
    return manifest


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: Path) -> bytes:
    try:
        file = tar.extractfile(member)
        assert file is not None  # a regular file
        return file.read()
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BackupError(f"{archive} is damaged: {error}. Restore another backup.") from None


def _extract(
    tar: tarfile.TarFile, member: tarfile.TarInfo, destination: Path, archive: Path
) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        source = tar.extractfile(member)
        assert source is not None  # a regular file
        descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(descriptor, "wb") as target:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                target.write(chunk)
    except (tarfile.TarError, EOFError) as error:
        raise BackupError(f"{archive} is damaged: {error}. Restore another backup.") from None
    return digest.hexdigest(), size
