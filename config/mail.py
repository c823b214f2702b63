"""The SMTP backend, signing with DKIM when the app is configured to (config.dkim)."""

import email.policy
import smtplib
from collections.abc import Callable
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend

from config import dkim


class SigningSMTPBackend(EmailBackend):
    """Django's SMTP backend; each message is DKIM-signed just before it is sent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.signer = dkim.signer()

    def _send(self, email_message: EmailMessage) -> bool:
        # As Django's own _send, with one step between serialising and sending:
        # the signature must cover exactly the bytes that go on the wire.
        if not email_message.recipients():
            return False
        from_email = self.prep_address(email_message.from_email)
        recipients = [self.prep_address(address) for address in email_message.recipients()]
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
