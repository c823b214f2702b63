"""Where archives are kept: a folder, or a bucket of S3-compatible storage.

BACKUP_TARGET is a folder path or s3://bucket/prefix. For S3, boto3 reads the
endpoint (AWS_ENDPOINT_URL, for MinIO, Backblaze, Scaleway …), the
credentials and the region from the standard AWS_* variables itself.

Only names of the form briefing-backup-<UTC time>.tar are ours: listing and
retention see nothing else, so other files beside them are never deleted.
"""

import contextlib
import datetime
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from config.private_files import private_folder
from operations.archives import BackupError

ARCHIVE_NAME = re.compile(r"^briefing-backup-\d{8}T\d{6}Z\.tar$")


def archive_name(created_at: datetime.datetime) -> str:
    """The archive's name: its UTC creation time, so names sort as the archives were made."""
    return f"briefing-backup-{created_at.astimezone(datetime.UTC):%Y%m%dT%H%M%SZ}.tar"


class Folder:
    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self, name: str = "") -> str:
        return str(self.path / name) if name else str(self.path)

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        # Inside the target: the finished archive is renamed into place, so a
        # backup that dies half-way leaves no archive that looks whole.
        private_folder(self.path)
        with tempfile.TemporaryDirectory(dir=self.path, prefix=".unfinished-") as work:
            yield Path(work)

    def store(self, local: Path, name: str) -> str:
        destination = self.path / name
        if destination.exists():
            raise BackupError(f"{destination} already exists: not overwritten.")
        os.replace(local, destination)
        return str(destination)

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if ARCHIVE_NAME.match(p.name))

    def delete(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    def fetch(self, name: str, into: Path) -> Path:
        return self.path / name


class Bucket:
    """s3://bucket/prefix through boto3 (the endpoint and credentials from AWS_* variables)."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(name)}".rstrip("/")

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="briefing-backup-") as work:
            yield Path(work)

    def store(self, local: Path, name: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        if name in self.names():
            raise BackupError(f"{self.describe(name)} already exists: not overwritten.")
        try:
            self.client.upload_file(str(local), self.bucket, self.key(name))
        except (BotoCoreError, ClientError) as error:
            raise BackupError(f"Could not upload to {self.describe(name)}: {error}") from error
        return self.describe(name)

    def names(self) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        start = f"{self.prefix}/" if self.prefix else ""
        found = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            )
            for page in pages:
                for entry in page.get("Contents", []):
                    name = entry["Key"][len(start) :]
                    if ARCHIVE_NAME.match(name):
                        found.append(name)
        except (BotoCoreError, ClientError) as error:
            raise BackupError(f"Could not list {self.describe()}: {error}") from error
        return sorted(found)

    def delete(self, name: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(name))
        except (BotoCoreError, ClientError) as error:
            raise BackupError(f"Could not delete {self.describe(name)}: {error}") from error

    def fetch(self, name: str, into: Path) -> Path:
        from botocore.exceptions import BotoCoreError, ClientError

        local = into / name
        try:
            self.client.download_file(self.bucket, self.key(name), str(local))
        except (BotoCoreError, ClientError) as error:
            raise BackupError(f"Could not download {self.describe(name)}: {error}") from error
        return local


def storage_for(target: str) -> Folder | Bucket:
    """BACKUP_TARGET (checked by config.env.env_backup_target) as a place to keep archives."""
    parts = urlsplit(target)
    if parts.scheme == "s3" and parts.netloc:
        return Bucket(parts.netloc, parts.path)
    if "://" in target:
        raise BackupError(f"{target!r} is neither a folder nor an s3://bucket/prefix URL.")
    return Folder(Path(target))


def locate(archive: str, target: str) -> tuple[Folder | Bucket, str]:
    """An archive named on the command line: a file, s3://bucket/key, or the latest in `target`."""
    if archive == "latest":
        storage = storage_for(target)
        names = storage.names()
        if not names:
            raise BackupError(f"There is no backup in {storage.describe()} (BACKUP_TARGET).")
        return storage, names[-1]
    parts = urlsplit(archive)
    if parts.scheme == "s3":
        prefix, _, name = parts.path.strip("/").rpartition("/")
        if not parts.netloc or not name:
            raise BackupError(f"{archive!r} does not name an object: s3://bucket/path/name.tar")
        return Bucket(parts.netloc, prefix), name
    path = Path(archive)
    if not path.is_file():
        raise BackupError(f"There is no file {archive}.")
    return Folder(path.parent), path.name


def prune(storage: Folder | Bucket, keep: int) -> list[str]:
    """Delete all but the newest `keep` archives; return the names deleted, oldest first."""
    names = storage.names()
    old = names[: max(len(names) - keep, 0)]
    for name in old:
        storage.delete(name)
    return old
