"""`manage.py backup` and `manage.py restore`: what an archive holds, and what a restore refuses.

Bad input gets a clear message and costs no data: a restore refuses a
database or MEDIA_ROOT that is not empty (unless --replace), an archive that
is damaged, not one of ours, of the other engine or of a newer version, and
it refuses before it writes anything. Retention deletes only our archives,
and only after a backup succeeded.
"""

import datetime
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tomllib
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from newsletter.tests.factories import make_article
from operations import databases
from operations.archives import MANIFEST, ArchiveWriter, Manifest, Member, unpack
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND
from testing.databases import another_database, pointed_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.clock(MONDAY_BEFORE_SEND)]

ROOT = Path(__file__).resolve().parents[2]
MEDIA = {"articles/2026/11/harbour.png": b"a lead image", "articles/2026/11/map.webp": b"a map"}


@pytest.fixture
def instance(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_TARGET = str(tmp_path / "backups")
    settings.BACKUP_KEEP = 7
    for name, data in MEDIA.items():
        (settings.MEDIA_ROOT / name).parent.mkdir(parents=True, exist_ok=True)
        (settings.MEDIA_ROOT / name).write_bytes(data)
    make_subscriber("ada@example.com")
    make_subscriber("grace@example.com")
    make_article(lead_image="articles/2026/11/harbour.png")
    return settings


def back_up(settings) -> Path:
    call_command("backup", stdout=io.StringIO())
    return max(Path(settings.BACKUP_TARGET).glob("briefing-backup-*.tar"))


@pytest.fixture
def archive(instance) -> Path:
    return back_up(instance)


@pytest.fixture
def elsewhere(tmp_path):
    with another_database(tmp_path) as database:
        yield database


def restore_elsewhere(archive: Path, database, settings, media_root: Path, *options: str) -> str:
    """`manage.py restore` in this process, on the other database and media folder."""
    settings.MEDIA_ROOT = media_root
    output = io.StringIO()
    with pointed_at(database.name):
        call_command("restore", str(archive), *options, stdout=output)
    return output.getvalue()


def forged(archive: Path, folder: Path, change) -> Path:
    """A copy of `archive` whose manifest `change` altered, written by the real writer."""
    unpacked = folder / "unpacked"
    manifest = unpack(archive, unpacked)
    change(manifest)
    copy = folder / "forged.tar"
    with ArchiveWriter(copy) as writer:
        for name in sorted(manifest.files):
            writer.add(name, unpacked / name)
        writer.finish(manifest)
    return copy


def test_the_archive_holds_the_database_the_media_and_a_manifest_of_them(archive, instance):
    assert archive.name == "briefing-backup-20261130T090000Z.tar"  # the clock's instant, UTC
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        contents = {name: tar.extractfile(name).read() for name in names}  # type: ignore[union-attr]
    dump = databases.DUMP_FILES[connection.vendor]
    assert names[-1] == MANIFEST
    assert sorted(names) == sorted([dump, MANIFEST, *(f"media/{name}" for name in MEDIA)])
    for name, data in MEDIA.items():
        assert contents[f"media/{name}"] == data

    manifest = json.loads(contents[MANIFEST])
    assert manifest["format"] == "morning-briefing-backup"
    assert manifest["created_at"] == "2026-11-30T09:00:00+00:00"
    assert manifest["database"]["engine"] == connection.vendor
    assert manifest["database"]["rows"]["subscriptions_subscriber"] == 2
    assert manifest["database"]["rows"]["newsletter_article"] == 1
    applied = sorted(MigrationRecorder.Migration.objects.values_list("app", "name"))
    assert [tuple(pair) for pair in manifest["database"]["migrations"]] == applied
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert manifest["app"]["version"] == project["version"]
    for name in [dump, *(f"media/{name}" for name in MEDIA)]:
        assert manifest["files"][name] == {
            "sha256": hashlib.sha256(contents[name]).hexdigest(),
            "size": len(contents[name]),
        }
    # Readers' addresses and sessions: for the service's user only.
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert stat.S_IMODE(archive.parent.stat().st_mode) == 0o700


def test_restore_refuses_a_database_that_is_not_empty_and_changes_nothing(archive, instance):
    make_subscriber("joined-after-the-backup@example.com")

    with pytest.raises(CommandError, match=r"is not empty: it has \d+ tables holding \d+ rows"):
        call_command("restore", str(archive))

    assert Subscriber.objects.filter(email="joined-after-the-backup@example.com").exists()
    assert Subscriber.objects.count() == 3


def test_restore_with_replace_overwrites_a_database_that_is_not_empty(
    archive, elsewhere, instance, tmp_path
):
    media = tmp_path / "media-elsewhere"
    assert "each table's count checked" in restore_elsewhere(archive, elsewhere, instance, media)
    with pointed_at(elsewhere.name):
        make_subscriber("only-elsewhere@example.com")

    with pytest.raises(CommandError, match=r"is not empty: .* pass --replace"):
        restore_elsewhere(archive, elsewhere, instance, media)
    with pointed_at(elsewhere.name):
        assert Subscriber.objects.filter(email="only-elsewhere@example.com").exists()

    restore_elsewhere(archive, elsewhere, instance, media, "--replace")
    with pointed_at(elsewhere.name):
        assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
            "ada@example.com",
            "grace@example.com",
        ]


def flip_a_byte_of_the_dump(archive: Path) -> None:
    with tarfile.open(archive) as tar:
        member = tar.getmember(databases.DUMP_FILES[connection.vendor])
    with archive.open("r+b") as file:
        file.seek(member.offset_data + member.size // 2)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 0xFF]))


def cut_in_half(archive: Path) -> None:
    with archive.open("r+b") as file:
        file.truncate(archive.stat().st_size // 2)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (flip_a_byte_of_the_dump, "does not match the checksum its manifest recorded"),
        (cut_in_half, "is (damaged|incomplete)"),
    ],
)
def test_restore_refuses_a_damaged_archive_and_writes_nothing(
    archive, elsewhere, instance, tmp_path, damage, message
):
    damage(archive)
    media = tmp_path / "media-elsewhere"

    with pytest.raises(CommandError, match=f"Restore failed: .*{message}"):
        restore_elsewhere(archive, elsewhere, instance, media)

    with pointed_at(elsewhere.name):
        assert databases.table_names() == []
    assert not media.exists() or not any(media.iterdir())


def not_a_tar(folder: Path) -> Path:
    path = folder / "random.tar"
    path.write_bytes(os.urandom(4096))
    return path


def a_tar_without_manifest(folder: Path) -> Path:
    path = folder / "photos.tar"
    (folder / "holiday.jpg").write_bytes(b"a photo")
    with tarfile.open(path, "w") as tar:
        tar.add(folder / "holiday.jpg", arcname="holiday.jpg")
    return path


def a_tar_with_someone_elses_manifest(folder: Path) -> Path:
    path = folder / "other.tar"
    (folder / MANIFEST).write_text(json.dumps({"format": "another-tool", "version": 3}))
    with tarfile.open(path, "w") as tar:
        tar.add(folder / MANIFEST, arcname=MANIFEST)
    return path


def a_tar_naming_a_path_outside(folder: Path) -> Path:
    path = folder / "escape.tar"
    payload = b"written outside"
    (folder / "payload").write_bytes(payload)
    manifest = Manifest(
        created_at=datetime.datetime(2026, 11, 30, tzinfo=datetime.UTC),
        engine=connection.vendor,
        database_file="../escaped",
        database_tool="sqlite3 3",
        server_version="3",
        migrations=[],
        rows={},
    )
    manifest.files = {"../escaped": _member(payload)}
    (folder / MANIFEST).write_bytes(manifest.to_json())
    with tarfile.open(path, "w") as tar:
        tar.add(folder / "payload", arcname="../escaped")
        tar.add(folder / MANIFEST, arcname=MANIFEST)
    return path


def _member(data: bytes) -> Member:
    return Member(hashlib.sha256(data).hexdigest(), len(data))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (not_a_tar, "is not a backup made by `manage.py backup`: it is not a tar archive"),
        (a_tar_without_manifest, "is not a backup made by `manage.py backup`: it has no manifest"),
        (a_tar_with_someone_elses_manifest, "its manifest.json is not one of ours"),
        (a_tar_naming_a_path_outside, "outside its own folder: refused"),
    ],
)
def test_restore_refuses_what_is_not_one_of_our_backups(instance, tmp_path, make, message):
    folder = tmp_path / "foreign"
    folder.mkdir()
    path = make(folder)

    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("restore", str(path))

    assert not (tmp_path / "escaped").exists()
    assert Subscriber.objects.count() == 2


def test_restore_refuses_an_archive_with_files_its_manifest_does_not_list(archive, instance):
    (archive.parent / "extra.txt").write_text("slipped in later")
    with tarfile.open(archive, "a") as tar:
        tar.add(archive.parent / "extra.txt", arcname="media/extra.txt")

    with pytest.raises(CommandError, match="holds 1 file\\(s\\) its manifest does not list"):
        call_command("restore", str(archive))


def test_restore_refuses_the_other_engines_archive(archive, instance, tmp_path):
    other = "postgresql" if connection.vendor == "sqlite" else "sqlite"

    def from_the_other_engine(manifest: Manifest) -> None:
        manifest.engine = other

    path = forged(archive, tmp_path / "forged", from_the_other_engine)
    held = databases.ENGINE_NAMES[other]
    with pytest.raises(CommandError, match=f"holds a {held} database, and DATABASE_URL names"):
        call_command("restore", str(path))


def test_restore_refuses_an_archive_of_a_newer_version(archive, instance, tmp_path):
    def from_a_newer_version(manifest: Manifest) -> None:
        manifest.migrations.append(("newsletter", "9999_from_a_newer_version"))
        manifest.app_commit = "f00dfeed"

    path = forged(archive, tmp_path / "forged", from_a_newer_version)
    with pytest.raises(CommandError) as refused:
        call_command("restore", str(path))
    assert "made by a newer version of this service (commit f00dfeed)" in str(refused.value)
    assert "newsletter.9999_from_a_newer_version" in str(refused.value)

    document = json.loads(unpack_manifest(archive))
    document["format_version"] = 2
    newer_format = tmp_path / "newer-format.tar"
    (tmp_path / MANIFEST).write_text(json.dumps(document))
    with tarfile.open(newer_format, "w") as tar:
        tar.add(tmp_path / MANIFEST, arcname=MANIFEST)
    with pytest.raises(CommandError, match="made by a newer version of this service"):
        call_command("restore", str(newer_format))


def unpack_manifest(archive: Path) -> bytes:
    with tarfile.open(archive) as tar:
        return tar.extractfile(MANIFEST).read()  # type: ignore[union-attr]


def test_restore_refuses_a_media_root_that_holds_files_before_writing_the_database(
    archive, elsewhere, instance, tmp_path
):
    media = tmp_path / "media-elsewhere"
    media.mkdir()
    (media / "someone-elses.png").write_bytes(b"already here")

    with pytest.raises(
        CommandError, match=re.escape("already holds files (e.g. someone-elses.png)")
    ):
        restore_elsewhere(archive, elsewhere, instance, media)

    with pointed_at(elsewhere.name):
        assert databases.table_names() == []
    assert sorted(path.name for path in media.iterdir()) == ["someone-elses.png"]


def test_retention_keeps_the_newest_archives_and_deletes_nothing_else(instance, clock):
    instance.BACKUP_KEEP = 2
    target = Path(instance.BACKUP_TARGET)
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("the operator's own file")
    for _ in range(3):
        back_up(instance)
        clock.shift(datetime.timedelta(days=1))

    assert sorted(path.name for path in target.iterdir()) == [
        "briefing-backup-20261201T090000Z.tar",
        "briefing-backup-20261202T090000Z.tar",
        "notes.txt",
    ]


def test_a_failed_backup_deletes_no_archive_and_leaves_no_partial_one(instance, clock, monkeypatch):
    instance.BACKUP_KEEP = 1
    kept = back_up(instance)
    clock.shift(datetime.timedelta(days=1))

    def disk_full(alias, into):
        (into / "database.sqlite3").write_bytes(b"half a dump")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(databases, "take_snapshot", disk_full)
    with pytest.raises(CommandError, match=r"Backup failed: .*No space left on device"):
        call_command("backup", stdout=io.StringIO())

    assert list(Path(instance.BACKUP_TARGET).iterdir()) == [kept]


def test_backup_refuses_to_overwrite_an_archive_of_the_same_second(instance):
    first = back_up(instance)
    with pytest.raises(CommandError, match="already exists: not overwritten"):
        call_command("backup", stdout=io.StringIO())
    assert list(Path(instance.BACKUP_TARGET).iterdir()) == [first]


def test_a_target_given_on_the_command_line_is_checked_like_the_setting(instance):
    with pytest.raises(CommandError, match="neither a folder nor an s3://bucket/prefix URL"):
        call_command("backup", "--target", "ftp://backups.example.net/nightly")
    assert not Path("ftp:").exists()


def test_a_media_file_deleted_while_the_backup_runs_is_left_out(instance, monkeypatch):
    from operations import backups

    listed = list(backups.media_files(instance.MEDIA_ROOT))
    vanished = instance.MEDIA_ROOT / "articles/2026/11/replaced.png"
    monkeypatch.setattr(
        backups,
        "media_files",
        lambda root: iter([*listed, ("articles/2026/11/replaced.png", vanished)]),
    )

    archive = back_up(instance)

    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert sorted(name for name in names if name.startswith("media/")) == sorted(
        f"media/{name}" for name in MEDIA
    )
    assert sorted(json.loads(unpack_manifest(archive))["files"]) == sorted(
        name for name in names if name != MANIFEST
    )
