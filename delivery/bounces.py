"""Bounces, complaints and mailto: unsubscribes, over plain SMTP as well as from an ESP.

Three ways a result arrives, one way it is applied (`do_record`):

- **At send time**, the SMTP server refuses a recipient with a 5xx answer
  (delivery.sending hands the refusals over: `record_refusals`).
- **Later, by email**, to the VERP envelope sender (delivery.mail.verp_address)
  and so into the bounce mailbox (BOUNCE_MAILBOX_URL, IMAP or POP3), read by
  `process_mailbox` (`manage.py process_bounces`, and beat every 5 minutes):
  delivery status notifications (RFC 3464, and the older formats mail
  servers still send) are parsed by flufl.bounce, Mailman's bounce library;
  spam complaints arrive as ARF reports (RFC 5965) from feedback loops; and
  readers' "unsubscribe" emails to the List-Unsubscribe mailto: address.
- **From the ESP's webhook** (delivery.deliverability.tracking, django-anymail).

A hard bounce suppresses the address at once, a complaint too; soft bounces
(a full mailbox, a refused message) after BOUNCE_SOFT_LIMIT of them within
BOUNCE_SOFT_DAYS. Delay warnings ("will keep trying") change nothing. Each
result is a BounceEvent row, and the edition's send health is counted from
them as they arrive (`check_health`): staff are emailed past the alert rates
and, past the pause rate for complaints, the rest of the day's sends wait
(SendPause) until staff resume them.

Anyone can send mail to the bounce mailbox, and a reader can file reports
about their own digests. So a report counts only through a signed address
of ours: a bounce or complaint through the VERP address it was sent to (or
names), an unsubscribe through the reader's signed mailto: address
(delivery.mail.unsubscribe_mailto). One that names a reader's address alone,
or comes from a From line, is kept for a person, never applied; without
VERP (BOUNCE_DOMAIN unset) that is every bounce and complaint in the
mailbox, which `check --deploy` warns about. A reader weighs once in an
edition's send health however many complaints they file, and only an
edition whose mornings are still under way can pause the day's sends.

Logs name readers and deliveries by id, never by address.
"""

import datetime
import email
import email.message
import email.utils
import imaplib
import logging
import poplib
import re
import smtplib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.parser import HeaderParser
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from flufl.bounce import all_failures

from delivery.mail import parse_unsubscribe_mailto, parse_verp
from delivery.models import BounceEvent, Delivery, SendAlert, SendPause
from newsletter.models import Edition
from subscriptions.actions.reader_emails import queue_email
from subscriptions.addresses import mask_addresses
from subscriptions.models import ReaderEmail, Subscriber

logger = logging.getLogger(__name__)

Kind = BounceEvent.Kind
Source = BounceEvent.Source

# ---------------------------------------------------------------- classifying

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


# ---------------------------------------------------------------- applying


# How far back a report without VERP is taken to be about the latest digest.
ATTRIBUTION_DAYS = 3

SUPPRESSES = {
    Kind.HARD: Subscriber.EmailStatus.BOUNCED,
    Kind.COMPLAINT: Subscriber.EmailStatus.COMPLAINED,
    Kind.UNSUBSCRIBE: Subscriber.EmailStatus.UNSUBSCRIBED,
}


@transaction.atomic
def do_record(
    subscriber_id: int,
    kind: str,
    *,
    source: str,
    delivery_id: int | None = None,
    detail: str = "",
    report_id: str = "",
    now: datetime.datetime | None = None,
) -> BounceEvent | None:
    """Record one result about a reader and apply it; None if it changes nothing.

    The address is suppressed at once for a hard bounce or a complaint, and
    for the BOUNCE_SOFT_LIMIT-th soft bounce within BOUNCE_SOFT_DAYS. An
    unsubscribe changes only a deliverable address (a bounced one stays
    bounced), and the reader is told by email, with the way back. The
    delivery a hard bounce is about is marked bounced. The edition's send
    health is checked once the transaction commits.

    None, and nothing written, for a report recorded already, and for a
    complaint from a reader whose complaint is counted already: a reader
    weighs once in send health however many reports they file.
    """
    now = now or timezone.now()
    subscriber = Subscriber.objects.select_for_update().filter(pk=subscriber_id).first()
    if subscriber is None:
        return None
    if kind == Kind.COMPLAINT and subscriber.email_status == Subscriber.EmailStatus.COMPLAINED:
        logger.info("Complaint from subscriber %s, who complained before: ignored", subscriber.pk)
        return None
    if delivery_id is not None:
        delivery = Delivery.objects.filter(pk=delivery_id, subscriber_id=subscriber_id).first()
    elif kind != Kind.UNSUBSCRIBE:
        # A report that names the address only (no VERP) is about the latest
        # digest the reader was sent: it counts in that edition's health.
        delivery = (
            subscriber.deliveries.filter(
                status=Delivery.Status.SENT,
                sent_at__gte=now - datetime.timedelta(days=ATTRIBUTION_DAYS),
            )
            .order_by("-sent_at")
            .first()
        )
    else:
        delivery = None
    try:
        with transaction.atomic():
            event = BounceEvent.objects.create(
                kind=kind,
                source=source,
                subscriber=subscriber,
                delivery=delivery,
                edition_id=delivery.edition_id if delivery else None,
                # Editors read these; a report or refusal quotes the address.
                detail=mask_addresses(detail)[:2000],
                report_id=report_id[:255],
                created_at=now,
            )
    except IntegrityError:
        return None  # the same report read again, or this edition's complaint filed again
    was_active = subscriber.email_status == Subscriber.EmailStatus.ACTIVE
    status = SUPPRESSES.get(Kind(kind))
    if kind == Kind.SOFT:
        since = now - datetime.timedelta(days=settings.BOUNCE_SOFT_DAYS)
        soft = subscriber.bounce_events.filter(kind=Kind.SOFT, created_at__gte=since).count()
        if soft >= settings.BOUNCE_SOFT_LIMIT:
            status = Subscriber.EmailStatus.BOUNCED
    if status == Subscriber.EmailStatus.UNSUBSCRIBED:
        if was_active:
            subscriber.set_email_status(status)
            # Whoever asked, the reader hears of it and can undo it in one click.
            queue_email(subscriber, ReaderEmail.Kind.UNSUBSCRIBED, f"bounce_event:{event.pk}")
    elif status is not None and subscriber.email_status != Subscriber.EmailStatus.COMPLAINED:
        # A complaint is the strongest word a reader has; a bounce never replaces it.
        subscriber.set_email_status(status)
    if delivery is not None and kind == Kind.HARD:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.BOUNCED,
            last_error=f"Bounced: {mask_addresses(detail)}"[:1000],
        )
    logger.info(
        "%s from %s: subscriber %s (delivery %s), now %s",
        Kind(kind).label,
        Source(source).label,
        subscriber.pk,
        delivery.pk if delivery else "unknown",
        subscriber.email_status,
    )
    if event.edition_id is not None:
        edition_id = event.edition_id
        transaction.on_commit(lambda: check_health(edition_id, now))
    return event


def record_refusals(refusals: Iterable[tuple[Delivery, Exception]]) -> None:
    """The 5xx answers of a batch: each a hard or soft bounce of its reader."""
    for delivery, error in refusals:
        code, text = smtp_answer(delivery.subscriber.email, error)
        do_record(
            delivery.subscriber_id,
            failure_kind(code, text),
            source=Source.SMTP,
            delivery_id=delivery.pk,
            detail=f"{code} {text}".strip(),
        )


def smtp_answer(recipient: str, error: Exception) -> tuple[int | None, str]:
    """The reply code and text of an SMTP refusal (smtplib's exceptions)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        answers = list(error.recipients.values())
        if not answers:
            return None, str(error)
        code, text = error.recipients.get(recipient, answers[0])
        return code, _text(text)
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code, _text(error.smtp_error)
    return None, str(error)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------- reading a report


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
                text = _text(part.get_payload(decode=True) or b"")
            report = HeaderParser().parsestr(text.strip() + "\n\n")
            fields = {name.lower(): str(value) for name, value in report.items()}
        elif content_type in {"message/rfc822", "text/rfc822-headers"}:
            payload = part.get_payload()
            if isinstance(payload, list) and isinstance(payload[0], email.message.Message):
                headers = payload[0]
            else:
                headers = HeaderParser().parsestr(_text(part.get_payload(decode=True) or b""))
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


# ---------------------------------------------------------------- the mailbox


class Mailbox(Protocol):
    def messages(self) -> Iterator[tuple[bytes, bytes]]: ...  # (key, raw message)
    def processed(self, key: bytes) -> None: ...  # delete it
    def kept(self, key: bytes) -> None: ...  # leave it for a person, not read again
    def close(self) -> None: ...


class ImapMailbox:
    """IMAP4 (imap://, imaps://, ?tls=1 for STARTTLS): unread messages of one folder."""

    def __init__(self, url: str) -> None:
        parts, query = urlsplit(url), _query(url)
        implicit_tls = parts.scheme == "imaps"
        port = parts.port or (993 if implicit_tls else 143)
        host = parts.hostname or "localhost"
        timeout = float(query.get("timeout", "30"))
        self.imap = (
            imaplib.IMAP4_SSL(host, port, timeout=timeout)
            if implicit_tls
            else imaplib.IMAP4(host, port, timeout=timeout)
        )
        if query.get("tls") == "1":
            self.imap.starttls()
        self.imap.login(unquote(parts.username or ""), unquote(parts.password or ""))
        folder = unquote(parts.path.lstrip("/")) or "INBOX"
        status, _ = self.imap.select(_imap_quote(folder))
        if status != "OK":
            raise imaplib.IMAP4.error(f"Cannot open the folder {folder!r}")

    def messages(self) -> Iterator[tuple[bytes, bytes]]:
        status, data = self.imap.uid("SEARCH", "UNSEEN")
        if status != "OK":
            raise imaplib.IMAP4.error(f"SEARCH failed: {data!r}")
        for uid in data[0].split() if data and data[0] else []:
            # PEEK: a message we fail on stays unread, to be tried again.
            status, fetched = self.imap.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            if status != "OK":
                continue
            for item in fetched:
                if isinstance(item, tuple):
                    yield uid, item[1]
                    break

    def processed(self, key: bytes) -> None:
        self.imap.uid("STORE", key.decode(), "+FLAGS", "(\\Deleted)")

    def kept(self, key: bytes) -> None:
        self.imap.uid("STORE", key.decode(), "+FLAGS", "(\\Seen)")

    def close(self) -> None:
        try:
            self.imap.expunge()
            self.imap.close()
        finally:
            self.imap.logout()


class Pop3Mailbox:
    """POP3 (pop3://, pop3s://, ?tls=1 for STLS). POP3 has no flags: kept messages stay."""

    def __init__(self, url: str) -> None:
        parts, query = urlsplit(url), _query(url)
        implicit_tls = parts.scheme == "pop3s"
        port = parts.port or (995 if implicit_tls else 110)
        host = parts.hostname or "localhost"
        timeout = float(query.get("timeout", "30"))
        self.pop = (
            poplib.POP3_SSL(host, port, timeout=timeout)
            if implicit_tls
            else poplib.POP3(host, port, timeout=timeout)
        )
        if query.get("tls") == "1":
            self.pop.stls()
        self.pop.user(unquote(parts.username or ""))
        self.pop.pass_(unquote(parts.password or ""))

    def messages(self) -> Iterator[tuple[bytes, bytes]]:
        _, listing, _ = self.pop.list()
        for line in listing:
            number = line.split()[0]
            _, lines, _ = self.pop.retr(int(number))
            yield number, b"\r\n".join(lines) + b"\r\n"

    def processed(self, key: bytes) -> None:
        self.pop.dele(int(key))

    def kept(self, key: bytes) -> None:
        pass  # stays on the server; read (and found unknown) again next time

    def close(self) -> None:
        self.pop.quit()  # deletions take effect here


def _query(url: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}


def _imap_quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


MAILBOXES: dict[str, type[ImapMailbox] | type[Pop3Mailbox]] = {
    "imap": ImapMailbox,
    "imaps": ImapMailbox,
    "pop3": Pop3Mailbox,
    "pop3s": Pop3Mailbox,
}


def open_mailbox(url: str) -> Mailbox:
    scheme = urlsplit(url).scheme
    if scheme not in MAILBOXES:
        raise ImproperlyConfigured(
            "BOUNCE_MAILBOX_URL must be imap://, imaps://, pop3:// or pop3s://user:password@host"
            f"[:port][/folder], got a {scheme or 'schemeless'} URL"
        )
    return MAILBOXES[scheme](url)


def process_mailbox(url: str | None = None) -> Counter[str]:
    """Read every new message of the bounce mailbox and apply what it says; count them by what.

    A report applied (or about nobody we know) is deleted; one that is not a
    bounce, a complaint or an unsubscribe (an auto-reply, a person writing)
    is kept for a person to read and not read again (IMAP: marked read). A
    report whose processing fails stays unread and is tried again next time.
    """
    url = url or settings.BOUNCE_MAILBOX_URL
    counts: Counter[str] = Counter()
    if not url:
        return counts
    mailbox = open_mailbox(url)
    try:
        for key, raw in mailbox.messages():
            try:
                reading = read_report(raw)
            except Exception:  # hostile input must not stop the mailbox
                # A message no parser can read (flufl.bounce's detectors raise on
                # some malformed MIME) is kept for a person; the rest go on.
                logger.exception("Bounce mailbox: a message could not be read; kept")
                counts["unreadable"] += 1
                mailbox.kept(key)
                continue
            counts[reading.what] += 1
            if reading.what in {"unknown", "unverified"}:
                mailbox.kept(key)
                continue
            with transaction.atomic():
                for finding in reading.findings:
                    do_record(
                        finding.subscriber_id,
                        finding.kind,
                        source=Source.MAILBOX,
                        delivery_id=finding.delivery_id,
                        detail=finding.detail,
                        report_id=reading.report_id,
                    )
            counts["readers"] += len(reading.findings)
            mailbox.processed(key)
    finally:
        mailbox.close()
    logger.info("Bounce mailbox: %s", dict(counts))
    return counts


# ---------------------------------------------------------------- send health


@dataclass
class Health:
    """An edition's results so far: how many went out, how many came back and how."""

    sent: int
    hard_bounces: int
    soft_bounces: int
    complaints: int

    @property
    def hard_bounce_percent(self) -> float:
        return 100 * self.hard_bounces / self.sent if self.sent else 0.0

    @property
    def complaint_percent(self) -> float:
        return 100 * self.complaints / self.sent if self.sent else 0.0


def edition_health(edition_id: int) -> Health:
    """Counted over readers, not reports: whoever files ten reports is one reader."""
    delivered = Delivery.objects.filter(
        edition_id=edition_id, status__in=[Delivery.Status.SENT, Delivery.Status.BOUNCED]
    ).count()
    events = BounceEvent.objects.filter(edition_id=edition_id)
    kinds = Counter(kind for kind, _ in events.values_list("kind", "subscriber_id").distinct())
    # A refusal at send time was never sent, but it was an attempt to a reader.
    refused = (
        events.filter(source=Source.SMTP)
        .exclude(delivery__status=Delivery.Status.BOUNCED)
        .values("subscriber_id")
        .distinct()
        .count()
    )
    return Health(
        sent=delivered + refused,
        hard_bounces=kinds[Kind.HARD],
        soft_bounces=kinds[Kind.SOFT],
        complaints=kinds[Kind.COMPLAINT],
    )


def newsroom_date(now: datetime.datetime) -> datetime.date:
    return now.astimezone(ZoneInfo(settings.DIGEST_TIMEZONE)).date()


def mornings_under_way(edition: Edition, now: datetime.datetime) -> bool:
    """Whether some reader's morning of the edition's date may still be to come.

    An edition's date is each reader's local date; it ends last at UTC-12,
    so its last morning anywhere is before noon UTC the next day. After
    that, its complaints say nothing about sends still to go.
    """
    last_morning = datetime.datetime.combine(
        edition.date + datetime.timedelta(days=1), datetime.time(12), datetime.UTC
    )
    return now < last_morning


def check_health(edition_id: int, now: datetime.datetime | None = None) -> list[SendAlert]:
    """Raise the edition's alerts its rates have passed (once each); pause if complaints demand.

    Returns the alerts raised now. Staff are emailed each once.
    """
    now = now or timezone.now()
    health = edition_health(edition_id)
    if not health.sent:
        return []
    raised = []
    rates = [
        (
            SendAlert.Kind.HARD_BOUNCES,
            health.hard_bounce_percent,
            settings.HEALTH_HARD_BOUNCE_PERCENT,
            health.hard_bounces,
        ),
        (
            SendAlert.Kind.COMPLAINTS,
            health.complaint_percent,
            settings.HEALTH_COMPLAINT_PERCENT,
            health.complaints,
        ),
    ]
    for kind, percent, limit, count in rates:
        if percent <= limit:
            continue
        message = (
            f"{SendAlert.Kind(kind).label} of this edition is {percent:.2f}% "
            f"({count} of {health.sent}), above {limit:g}%."
        )
        alert, created = SendAlert.objects.get_or_create(
            edition_id=edition_id, kind=kind, defaults={"message": message, "created_at": now}
        )
        if created:
            raised.append(alert)
    edition = Edition.objects.get(pk=edition_id)
    if health.complaint_percent > settings.HEALTH_PAUSE_COMPLAINT_PERCENT and mornings_under_way(
        edition, now
    ):
        day = newsroom_date(now)
        # One pause per day: once staff resume, the day's sends go on.
        if not SendPause.objects.filter(date=day).exists():
            reason = (
                f"Complaints at {health.complaint_percent:.2f}% "
                f"({health.complaints} of {health.sent}), above "
                f"{settings.HEALTH_PAUSE_COMPLAINT_PERCENT:g}%."
            )
            SendPause.objects.create(date=day, edition_id=edition_id, reason=reason, created_at=now)
            alert, created = SendAlert.objects.get_or_create(
                edition_id=edition_id,
                kind=SendAlert.Kind.PAUSED,
                defaults={
                    "message": f"The rest of {day:%A %d %B}'s sends are paused. {reason} "
                    "Resume them under Send pauses in the admin.",
                    "created_at": now,
                },
            )
            if created:
                raised.append(alert)
            logger.error("Edition %s: sends paused: %s", edition_id, reason)
    if raised:
        email_staff(raised)
    return raised


def email_staff(alerts: list[SendAlert]) -> None:
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    # "Name <address>": a bare address next to a percentage reads as spam (TO_NO_BRKTS_PCNT).
    recipients = [
        email.utils.formataddr((user.get_full_name() or user.get_username(), user.email))
        for user in staff
    ]
    if not recipients:
        logger.error("Send health alerts but no staff address to email: %s", alerts)
        return
    edition = alerts[0].edition
    body = "\n\n".join(alert.message for alert in alerts)
    send_mail(
        subject=f"Send health: {edition}",
        message=f"{body}\n\nThe edition's desk: {settings.SITE_URL}/admin/\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )


def sends_paused(now: datetime.datetime | None = None) -> SendPause | None:
    """Today's pause, while staff have not resumed the sends."""
    now = now or timezone.now()
    return SendPause.objects.filter(date=newsroom_date(now), resumed_at=None).first()


@transaction.atomic
def do_resume_sends(pause: SendPause, user: object, now: datetime.datetime | None = None) -> bool:
    """Staff lift a pause; the sweep (resume_stalled_sends) sends what waited."""
    now = now or timezone.now()
    updated = SendPause.objects.filter(pk=pause.pk, resumed_at=None).update(
        resumed_at=now, resumed_by=user
    )
    if updated:
        from delivery import tasks  # the task module imports sending, which imports this

        transaction.on_commit(lambda: tasks.resume_stalled_sends.delay())
    return bool(updated)
