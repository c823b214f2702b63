"""manage.py import_readers FILE.csv: readers from Substack's, Ghost's or a plain CSV."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from subscriptions.actions.imports import IMPORT_AS, CsvFormatError, do_import_readers


class Command(BaseCommand):
    help = (
        "Import readers from a CSV: Substack's or Ghost's members export, or email,name,time_zone. "
        "Each new reader gets a complimentary membership (or a trial's worth); an address "
        "already here is skipped. Rejected rows are listed with their reason."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--as", dest="import_as", choices=IMPORT_AS, default="complimentary")
        parser.add_argument("--dry-run", action="store_true", help="Report; write nothing.")

    def handle(self, *args: object, **options: object) -> None:
        path = options["file"]
        assert isinstance(path, Path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {path}: {error}") from None
        try:
            report = do_import_readers(
                text, import_as=str(options["import_as"]), dry_run=bool(options["dry_run"])
            )
        except CsvFormatError as error:
            raise CommandError(str(error)) from None
        for line in report.lines():
            self.stdout.write(line)
