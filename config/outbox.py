"""A development mail backend: every message becomes one .eml file.

The demo has no mail server, yet every email it sends should be readable.
This backend writes each message to OUTBOX_DIR, one file per message, and
the /outbox/ page (DEBUG only) lists and shows them.
"""

import email
import email.policy
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage as MIMEMessage
from pathlib import Path
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from config.private_files import private_folder, write_private


class OutboxBackend(BaseEmailBackend):
    # Django passes the mailer's alias and any other options through to
    # BaseEmailBackend, which reports the unknown ones (its **kwargs: Any).
    def __init__(self, *, directory: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.directory = Path(directory)

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        # Every email's personal links (sign-in, unsubscribe): this user's only.
        private_folder(self.directory)
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            name = f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
            # Write then rename, so the outbox page never shows half a file.
            partial = self.directory / f".{name}.partial"
            write_private(partial, message.message().as_bytes())
            partial.rename(self.directory / name)
            sent += 1
        return sent


@dataclass
class OutboxMessage:
    name: str
    subject: str
    sender: str
    to: str
    date: str
    text: str
    html: str
    headers: list[tuple[str, str]]


def list_messages(directory: Path) -> list[str]:
    """File names of the stored messages, newest first."""
    if not directory.is_dir():
        return []
    return sorted((p.name for p in directory.glob("*.eml")), reverse=True)


def read_message(directory: Path, name: str) -> OutboxMessage | None:
    if name not in list_messages(directory):
        return None
    with open(directory / name, "rb") as handle:
        parsed: MIMEMessage = email.message_from_binary_file(handle, policy=email.policy.default)
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    return OutboxMessage(
        name=name,
        subject=str(parsed.get("Subject", "")),
        sender=str(parsed.get("From", "")),
        to=str(parsed.get("To", "")),
        date=str(parsed.get("Date", "")),
        text=text_part.get_content() if text_part else "",
        html=html_part.get_content() if html_part else "",
        headers=[(key, str(value)) for key, value in parsed.items()],
    )
