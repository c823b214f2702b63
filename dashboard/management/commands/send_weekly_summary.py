"""Send the dashboard's weekly summary now (beat sends it every Monday morning)."""

import datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dashboard.summary import do_send_weekly_summaries


class Command(BaseCommand):
    help = (
        "Email this week's dashboard summary to every staff member who opted in and has "
        "not had it this week."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--at", help="Send as of this moment (ISO 8601, with its offset).")

    def handle(self, *args: str, at: str | None, **options: object) -> None:
        now = timezone.now()
        if at:
            try:
                now = datetime.datetime.fromisoformat(at)
            except ValueError:
                raise CommandError(f"--at {at!r} is not an ISO 8601 moment.") from None
            if now.tzinfo is None:
                raise CommandError("--at needs an offset or Z, e.g. 2026-12-07T07:00Z.")
        sent = do_send_weekly_summaries(now)
        self.stdout.write(f"Sent the weekly summary to {sent} staff member(s).")
