"""Reading a report in the bounce mailbox: a bounce (RFC 3464), a complaint (ARF), an unsubscribe.

Nothing is written here: read_report says what a message is and whom it
names (delivery.deliverability.mailbox applies it). A report counts only
through a signed address of ours (VERP, the reader's unsubscribe mailto:).
"""

import email
import email.message
import email.utils
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.parser import HeaderParser

from django.conf import settings
from flufl.bounce import all_failures

from delivery.deliverability.answers import decoded, failure_kind
from delivery.deliverability.verp import parse_unsubscribe_mailto, parse_verp
from delivery.models import BounceEvent, Delivery
from subscriptions.models import Subscriber

Kind = BounceEvent.Kind


@dataclass
class Finding:
    """What one report says about one reader."""

    kind: str
    subscriber_id: int
    delivery_id: int | None = None
    detail: str = ""


@dataclass
class Reading:
    """What a report in the mailbox is, and what it says."""

    # "bounce", "delay", "complaint", "unsubscribe"; "unverified" (a report
    # that names no signed address of ours: anyone could have written it),
    # "unknown" (anything else).
    what: str
    findings: list[Finding] = field(default_factory=list)
    report_id: str = ""


ADDRESSED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc")


def _addresses(message: email.message.Message, headers: Iterable[str]) -> list[str]:
    values = [str(value) for name in headers for value in message.get_all(name, [])]
    return [address for _, address in email.utils.getaddresses(values) if address]


def _verp_target(addresses: Iterable[str]) -> tuple[int, int | None] | None:
    """(subscriber id, delivery id) named by the first valid VERP address among `addresses`."""
    for address in addresses:
        tag = parse_verp(address)
        if tag is None:
            continue
        kind, pk = tag
        if kind == "d":
            found = Delivery.objects.filter(pk=pk).values_list("subscriber_id", flat=True).first()
            if found is not None:
                return found, pk
        elif kind == "s" and Subscriber.objects.filter(pk=pk).exists():
            return pk, None
    return None


def _dsn_status(message: email.message.Message) -> str:
    """The first Status: (and Diagnostic-Code) of a delivery-status part, if any."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks if isinstance(blocks, list) else []:
            if not isinstance(block, email.message.Message):
                continue
            status = block.get("Status")
            if status:
                diagnostic = block.get("Diagnostic-Code", "")
                return f"{status} {diagnostic}".strip()
    return ""


def _feedback_report(message: email.message.Message) -> tuple[dict[str, str], list[str]] | None:
    """An ARF report's fields (lower-cased names) and the original's addresses, or None."""
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type") or "").lower() != "feedback-report":
        return None
    fields: dict[str, str] = {}
    original: list[str] = []
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list):  # Python's parser reads message/* as messages
                text = "".join(str(item) for item in payload)
            else:
                text = decoded(part.get_payload(decode=True) or b"")
            report = HeaderParser().parsestr(text.strip() + "\n\n")
            fields = {name.lower(): str(value) for name, value in report.items()}
        elif content_type in {"message/rfc822", "text/rfc822-headers"}:
            payload = part.get_payload()
            if isinstance(payload, list) and isinstance(payload[0], email.message.Message):
                headers = payload[0]
            else:
                headers = HeaderParser().parsestr(decoded(part.get_payload(decode=True) or b""))
            original = _addresses(headers, ["Return-Path"]) + _addresses(headers, ["To"])
    return fields, original


COMPLAINT_TYPES = {"abuse", "fraud"}
UNSUBSCRIBE_WORD = re.compile(r"^\s*unsubscribe\b", re.IGNORECASE)


def read_report(raw: bytes) -> Reading:
    """What a message in the bounce mailbox says (nothing is written)."""
    # Parsed from text: flufl.bounce's detectors expect every header as a str,
    # and raw 8-bit bytes in a header (as broken mailers send) would make
    # them Header objects the detectors cannot read.
    message = email.message_from_string(raw.decode("utf-8", "replace"))
    report_id = str(message.get("Message-ID", "")).strip()
    addressed = _addresses(message, ADDRESSED_TO)

    arf = _feedback_report(message)
    if arf is not None:
        fields, original = arf
        if fields.get("feedback-type", "").lower() not in COMPLAINT_TYPES:
            return Reading("unknown", report_id=report_id)
        detail = f"Complaint ({fields.get('feedback-type')}) from {fields.get('user-agent', '?')}"
        target = _verp_target([fields.get("original-mail-from", ""), *original, *addressed])
        if target is None:
            return Reading("unverified", report_id=report_id)
        return Reading("complaint", [Finding(Kind.COMPLAINT, *target, detail)], report_id)

    delayed, failed = all_failures(message)
    if failed:
        status = _dsn_status(message)
        subject = " ".join(str(message.get("Subject", "")).split())
        detail = status or subject
        kind = failure_kind(None, status) if status else Kind.HARD
        target = _verp_target(addressed)
        if target is None:
            return Reading("unverified", report_id=report_id)
        return Reading("bounce", [Finding(kind, *target, detail)], report_id)
    if delayed:
        return Reading("delay", report_id=report_id)

    if _is_automatic(message):
        return Reading("unknown", report_id=report_id)  # an auto-reply asks for nothing
    readers = {pk for pk in map(parse_unsubscribe_mailto, addressed) if pk is not None}
    if readers:
        # The signed address is the reader's request, whatever From says.
        findings = [Finding(Kind.UNSUBSCRIBE, pk, None, "Unsubscribe email") for pk in readers]
        return Reading("unsubscribe", findings, report_id)
    mailto = settings.UNSUBSCRIBE_MAILTO.lower()
    subject = str(message.get("Subject", ""))
    if mailto in (address.lower() for address in addressed) and UNSUBSCRIBE_WORD.match(subject):
        # To the shared address (from a digest sent before the signed ones):
        # only its From says who, and anyone can write any From.
        return Reading("unverified", report_id=report_id)
    return Reading("unknown", report_id=report_id)


def _is_automatic(message: email.message.Message) -> bool:
    """An auto-reply (RFC 3834): no reader asked for anything."""
    return str(message.get("Auto-Submitted", "no")).strip().lower() != "no"
