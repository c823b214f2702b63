from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from operations.backups import BackupError, restore_backup


class Command(BaseCommand):
    help = (
        "Restore a backup (a file, s3://bucket/key, or `latest` in BACKUP_TARGET) into the "
        "database DATABASE_URL names, which must be empty, and MEDIA_ROOT. Stop the web "
        "server, the workers and beat first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", help="The archive: a path, s3://bucket/key or `latest`.")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Overwrite a database (and MEDIA_ROOT) that is not empty: all in it is lost.",
        )

    def handle(self, *args: str, archive: str, replace: bool, **options: object) -> None:
        try:
            result = restore_backup(
                archive,
                target=settings.BACKUP_TARGET,
                media_root=Path(settings.MEDIA_ROOT),
                replace=replace,
            )
        except (BackupError, DatabaseError, OSError) as error:
            raise CommandError(f"Restore failed: {error}") from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Restored {result.source}, made {result.created_at:%Y-%m-%d %H:%M:%S %Z}, into "
                f"{result.database}: {sum(result.rows.values())} rows in {len(result.rows)} "
                f"tables (each table's count checked), {result.media_files} media files."
            )
        )
        for note in result.notes:
            self.stdout.write(note)
        if result.unapplied:
            self.stdout.write(
                self.style.WARNING(
                    f"This code has {len(result.unapplied)} migrations the backup had not "
                    "applied: run `python manage.py migrate` before starting the service."
                )
            )
