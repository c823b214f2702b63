import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from newsletter import editions, schedule, sending, tasks
from newsletter.models import Edition


class Command(BaseCommand):
    help = (
        "Build the edition for a weekday from the articles published since the "
        "previous edition, and send it to every entitled reader."
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
            help="Send in this process instead of queueing the work for Celery workers.",
        )

    def handle(self, *args: str, date: datetime.date | None, sync: bool, **options: object) -> None:
        date = date or schedule.next_edition_date()
        if not schedule.is_weekday(date):
            raise CommandError(
                f"{date:%A %Y-%m-%d} is a weekend day: editions go out Monday to Friday."
            )

        edition = editions.build_edition(date)
        if edition is None:
            self.stdout.write(
                f"No edition for {date}: nothing published since the previous edition."
            )
            return
        if edition.status == Edition.Status.HELD:
            raise CommandError(f"{edition} is held by the editors; release it in the admin first.")
        count = edition.ordered_articles().count()
        self.stdout.write(f"{edition}: {count} article{'s' if count != 1 else ''}.")
        if edition.send_started_at is not None:
            self.stdout.write(
                f"Its send started at {edition.send_started_at:%Y-%m-%d %H:%M %Z}; articles "
                "published since go into the next edition, and readers who joined since get "
                "the next edition. Resuming any unfinished deliveries."
            )

        if not sync:
            tasks.send_edition.delay(edition.pk)
            self.stdout.write("Queued for the Celery workers.")
            return
        try:
            report = sending.send_edition_now(edition.pk)
        except sending.TransientSendError as error:
            raise CommandError(
                f"The mail server is unavailable ({error}). Nothing is lost: the unsent "
                "deliveries are queued again; run the command again later."
            ) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Sent {report.sent}, failed {report.failed}, skipped {report.skipped}."
            )
        )
