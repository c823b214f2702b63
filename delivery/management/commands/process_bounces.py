"""Read the bounce mailbox once: bounces, complaints and mailto: unsubscribes.

What delivery.tasks.process_bounces does every five minutes (delivery.deliverability.mailbox).
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from delivery.deliverability import mailbox


class Command(BaseCommand):
    help = (
        "Read BOUNCE_MAILBOX_URL (IMAP or POP3) once and apply the bounces, complaints and "
        "unsubscribe emails in it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", help="Another mailbox than BOUNCE_MAILBOX_URL (imap://user:pass@host/INBOX)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["url"] or settings.BOUNCE_MAILBOX_URL
        if not url:
            raise CommandError("Set BOUNCE_MAILBOX_URL (or pass --url): there is no mailbox.")
        counts = mailbox.process_mailbox(url)
        order = [
            "bounce",
            "complaint",
            "unsubscribe",
            "delay",
            "unverified",
            "unknown",
            "unreadable",
        ]
        summary = ", ".join(f"{counts[what]} {what}" for what in order)
        self.stdout.write(f"{summary}; {counts['readers']} readers updated.")
