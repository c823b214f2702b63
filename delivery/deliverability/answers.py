"""What a mail server's refusal means: a hard or a soft bounce (RFC 3463 status codes)."""

import re
import smtplib

from delivery.models import BounceEvent

Kind = BounceEvent.Kind


ENHANCED_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def failure_kind(code: int | None, text: str = "") -> str:
    """Hard or soft, from an SMTP reply code and/or its enhanced status code (RFC 3463).

    Hard: the address is wrong or gone (x.1.x: unknown user or domain;
    x.2.1: mailbox disabled; x.4.x: no route to the domain; x.0.0, which many
    servers answer for an unknown user). Soft: anything about this message or
    this moment (x.2.2 mailbox full, x.7.x policy and spam refusals, x.3.4
    too big, 4.x.x).
    """
    match = ENHANCED_STATUS.search(text)
    if match is not None:
        klass, subject, detail = match.groups()
        if klass == "4":
            return Kind.SOFT
        if subject in {"0", "1", "4"} or (subject, detail) == ("2", "1"):
            return Kind.HARD
        return Kind.SOFT
    if code is not None and code in {550, 551, 553}:
        return Kind.HARD
    return Kind.SOFT


def smtp_answer(recipient: str, error: Exception) -> tuple[int | None, str]:
    """The reply code and text of an SMTP refusal (smtplib's exceptions)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        answers = list(error.recipients.values())
        if not answers:
            return None, str(error)
        code, text = error.recipients.get(recipient, answers[0])
        return code, decoded(text)
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code, decoded(error.smtp_error)
    return None, str(error)


def decoded(value: object) -> str:
    """Text as it came: bytes decoded as UTF-8 (what is not, replaced), anything else as str()."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
