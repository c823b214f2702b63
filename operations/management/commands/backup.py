from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone

from operations.backups import BackupError, make_backup
from operations.storage import storage_for


def size_label(size: float) -> str:
    for unit in ["bytes", "KiB", "MiB", "GiB"]:
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class Command(BaseCommand):
    help = (
        "Back up the database and MEDIA_ROOT into one archive in BACKUP_TARGET (a folder or "
        "s3://bucket/prefix), then delete all but the newest BACKUP_KEEP archives there."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--target", help="Instead of BACKUP_TARGET: a folder or s3://bucket/prefix."
        )
        parser.add_argument("--keep", type=int, help="Instead of BACKUP_KEEP: archives to keep.")
        parser.add_argument(
            "--list",
            action="store_true",
            dest="list_only",
            help="List the archives in the target and stop.",
        )

    def handle(
        self,
        *args: str,
        target: str | None,
        keep: int | None,
        list_only: bool,
        **options: object,
    ) -> None:
        target = target or settings.BACKUP_TARGET
        keep = settings.BACKUP_KEEP if keep is None else keep
        if keep < 1:
            raise CommandError("--keep must be at least 1.")
        try:
            if list_only:
                storage = storage_for(target)
                for name in storage.names():
                    self.stdout.write(storage.describe(name))
                return
            result = make_backup(
                timezone.now(), target=target, keep=keep, media_root=Path(settings.MEDIA_ROOT)
            )
        except (BackupError, DatabaseError, OSError) as error:
            raise CommandError(f"Backup failed: {error}") from error
        rows = sum(result.rows.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Backed up to {result.location} ({size_label(result.size)}): "
                f"{rows} rows in {len(result.rows)} tables, {result.media_files} media files."
            )
        )
        for note in result.notes:
            self.stderr.write(self.style.WARNING(note))
        if result.pruned:
            self.stdout.write(f"Deleted {len(result.pruned)} older: {', '.join(result.pruned)}.")
