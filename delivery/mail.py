"""The SMTP backend: DKIM signing (delivery.deliverability.dkim) and VERP envelope senders.

VERP (variable envelope return path): with BOUNCE_DOMAIN set, each email's
envelope sender (MAIL FROM, the Return-Path a bounce goes back to) is
`bounces+<kind><id>-<signature>@BOUNCE_DOMAIN`, so a bounce names the
delivery (or reader) it is about whatever the remote server writes in it.
The signature, an HMAC of the secret key, stops anyone from crafting a
bounce that suppresses an address of their choosing. It is lower-case hex:
some mail systems fold the case of local parts.
"""

import email.policy
import functools
import hashlib
import hmac
import re
import smtplib
from collections.abc import Callable
from email.utils import make_msgid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend
from django.utils.crypto import constant_time_compare

from delivery.deliverability import dkim

VERP_SALT = "config.mail.verp"
SIGNATURE_LENGTH = 12  # 48 bits: forging one means guessing among 2^48


@functools.cache
def _verp_key(secret: str) -> bytes:
    # As django.utils.crypto.salted_hmac derives its key, once per secret
    # rather than once per email (the digest's fast path signs thousands a second).
    return hashlib.sha256((VERP_SALT + secret).encode()).digest()


def _verp_signature(tag: str, secret: str | None = None) -> str:
    key = _verp_key(secret or settings.SECRET_KEY)
    return hmac.new(key, tag.encode(), hashlib.sha256).hexdigest()[:SIGNATURE_LENGTH]


def verp_address(kind: str, pk: int) -> str | None:
    """The envelope sender of one email about `kind` (d: a delivery, s: a reader), or None.

    None when BOUNCE_DOMAIN is unset: the envelope sender is then the From address.
    """
    if not settings.BOUNCE_DOMAIN:
        return None
    tag = f"{kind}{pk}"
    return f"{settings.BOUNCE_LOCAL_PART}+{tag}-{_verp_signature(tag)}@{settings.BOUNCE_DOMAIN}"


VERP_TAG = re.compile(r"\+([a-z])(\d+)-([0-9a-f]+)@", re.IGNORECASE)


def parse_verp(address: str) -> tuple[str, int] | None:
    """(kind, id) of a VERP address we made (the signature checked), else None."""
    local_part = settings.BOUNCE_LOCAL_PART.lower()
    lowered = address.strip().strip("<>").lower()
    if not lowered.startswith(local_part + "+"):
        return None
    return _signed_tag(lowered)


def unsubscribe_mailto(subscriber_id: int) -> str:
    """The reader's own address for the mailto: half of List-Unsubscribe.

    UNSUBSCRIBE_MAILTO with a signed subaddress naming the reader in place of
    any it has (news@example.com becomes news+u42-<signature>@example.com):
    an email to it unsubscribes that reader whoever it claims to be from,
    and a forged From names nobody (delivery.bounces).
    """
    local_part, domain = _mailto_parts()
    tag = f"u{subscriber_id}"
    return f"{local_part}+{tag}-{_verp_signature(tag)}@{domain}"


def parse_unsubscribe_mailto(address: str) -> int | None:
    """The reader a signed unsubscribe address of ours names, else None."""
    local_part, domain = _mailto_parts()
    lowered = address.strip().strip("<>").lower()
    if not (lowered.startswith(local_part.lower() + "+") and lowered.endswith("@" + domain)):
        return None
    tag = _signed_tag(lowered)
    if tag is None or tag[0] != "u":
        return None
    return tag[1]


def _mailto_parts() -> tuple[str, str]:
    local_part, _, domain = settings.UNSUBSCRIBE_MAILTO.rpartition("@")
    return local_part.split("+", 1)[0], domain.lower()


def _signed_tag(lowered: str) -> tuple[str, int] | None:
    match = VERP_TAG.search(lowered)
    if match is None:
        return None
    kind, pk, signature = match.groups()
    # Bounces of mail sent before a key rotation arrive for days after it.
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(
        constant_time_compare(signature, _verp_signature(f"{kind}{pk}", secret))
        for secret in secrets
    ):
        return None
    return kind, int(pk)


def envelope_sender(message: EmailMessage) -> str:
    """The MAIL FROM of a message: its VERP address when it has one, else its From."""
    return getattr(message, "smtp_envelope_from", None) or message.from_email


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
