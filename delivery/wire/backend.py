"""The SMTP backend: Django's, with each message DKIM-signed (delivery.deliverability.dkim).

Its MAIL FROM is the message's VERP address when it has one
(delivery.deliverability.verp).
"""

import email.policy
import smtplib
from collections.abc import Callable
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend

from delivery.deliverability import dkim


def envelope_sender(message: EmailMessage) -> str:
    """The MAIL FROM of a message: its VERP address when it has one, else its From."""
    return getattr(message, "smtp_envelope_from", None) or message.from_email


class SigningSMTPBackend(EmailBackend):
    """Django's SMTP backend; each message is DKIM-signed just before it is sent.

    `connections`: how many a batch sends over at once (delivery.batches.SMTPPool);
    `max_connections`: how many every worker together holds to this relay
    (delivery.wire.relay_places).
    """

    def __init__(self, connections: int = 1, max_connections: int = 50, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connections = connections
        self.max_connections = max_connections
        self.signer = dkim.signer()

    def _send(self, email_message: EmailMessage) -> bool:
        # As Django's own _send, with one step between serialising and sending:
        # the signature must cover exactly the bytes that go on the wire.
        if not email_message.recipients():
            return False
        from_email = self.prep_address(envelope_sender(email_message))
        recipients = [self.prep_address(address) for address in email_message.recipients()]
        if not any(name.lower() == "message-id" for name in email_message.extra_headers):
            # Django's default is this machine's name (often localhost, or a
            # container id), which spam filters count against: the site's.
            email_message.extra_headers["Message-ID"] = make_msgid(
                domain=urlsplit(settings.SITE_URL).hostname or "localhost"
            )
        data = email_message.message(policy=email.policy.SMTP).as_bytes()
        if self.signer is not None:
            data = self.signer.sign(data)
        if self.connection is None:  # pragma: no cover - send_messages opened it
            raise smtplib.SMTPServerDisconnected("The SMTP connection is not open.")
        try:
            self.connection.sendmail(from_email, recipients, data)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True


def signing_for(connection: BaseEmailBackend) -> Callable[[bytes], bytes] | None:
    """How to sign bytes sent past this backend (the digest's fast path), or None."""
    if isinstance(connection, SigningSMTPBackend) and connection.signer is not None:
        return connection.signer.sign
    return None
