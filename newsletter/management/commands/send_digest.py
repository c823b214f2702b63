import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from newsletter import sending, tasks
from newsletter.models import Edition


class Command(BaseCommand):
    help = (
        "Build the edition for a weekday from the articles published since the "
        "previous edition, and send it to every entitled reader who has not had it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date",
            type=datetime.date.fromisoformat,
            help="Edition date, YYYY-MM-DD (default: today, or next Monday at a weekend).",
        )
        parser.add_argument(
            "--sync",
            action="store_true",
            help="Send in this process instead of queueing the work for a Celery worker.",
        )

    def handle(self, *args, date: datetime.date | None, sync: bool, **options) -> None:
        date = date or sending.next_edition_date()
        if not sending.is_weekday(date):
            raise CommandError(
                f"{date:%A %Y-%m-%d} is a weekend day: editions go out Monday to Friday."
            )

        existing = Edition.objects.filter(date=date).first()
        edition = existing or sending.build_edition(date)
        if edition is None:
            self.stdout.write(
                f"No edition for {date}: nothing published since the previous edition."
            )
            return
        count = edition.articles.count()
        self.stdout.write(f"{edition}: {count} article{'s' if count != 1 else ''}.")
        if existing:
            self.stdout.write(
                f"It was built at {existing.cutoff:%Y-%m-%d %H:%M %Z}; articles published since "
                "then go into the next edition. Sending to readers who do not have it yet."
            )

        if not sync:
            tasks.send_edition.delay(edition.pk)
            self.stdout.write("Queued for the Celery worker.")
            return
        report = sending.send_edition(edition.pk)
        self.stdout.write(
            self.style.SUCCESS(
                f"Sent {report.sent}, failed {report.failed}, skipped {report.skipped}."
            )
        )
