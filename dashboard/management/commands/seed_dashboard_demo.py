"""The demo's year of history for the dashboard (dashboard.demo); seed_demo runs it.

Kept in the dashboard: the product never imports it (pyproject's import
contracts), so seed_demo calls this command by name, with its own "now".
"""

import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from dashboard import daily, demo, sends
from newsletter.models import Section


class Command(BaseCommand):
    help = "Add a year of readers, trials, payments and sends for the dashboard (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", help="The moment the history leads up to (ISO 8601).")
        parser.add_argument("--author", default="editor", help="Username of the archive's author.")
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    def handle(
        self, *args: str, now: str | None, author: str, force: bool, **options: object
    ) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("seed_dashboard_demo adds made-up readers; it needs DJANGO_DEBUG.")
        moment = timezone.now()
        if now:
            try:
                moment = datetime.datetime.fromisoformat(now)
            except ValueError:
                raise CommandError(f"--now {now!r} is not an ISO 8601 moment.") from None
            if moment.tzinfo is None:
                raise CommandError("--now needs an offset or Z.")
        user = get_user_model().objects.filter(username=author).first()
        if user is None:
            raise CommandError(f"No user {author!r}: run seed_demo first.")
        sections = {section.slug: section for section in Section.objects.all()}
        missing = {slug for slug, _ in demo.HEADLINES} - set(sections)
        if missing:
            raise CommandError(f"The demo's sections are missing: {', '.join(sorted(missing))}.")
        added = demo.seed_history(moment, user, sections)
        # Count the sends and the days now rather than at beat's first run.
        sends.do_snapshot_sends(moment)
        daily.do_snapshot_days(moment)
        if added:
            self.stdout.write(
                f"Added a year of history for the dashboard: {added} readers "
                f"and the last {demo.EDITIONS} editions' deliveries."
            )
