"""The bounce mailbox (BOUNCE_MAILBOX_URL, IMAP or POP3): read, applied, and cleared.

`manage.py process_bounces`, and beat every five minutes
(delivery.tasks.process_bounces).
"""

import imaplib
import logging
import poplib
from collections import Counter
from collections.abc import Iterator
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from delivery.deliverability.reports import read_report
from delivery.deliverability.suppression import do_record
from delivery.models import BounceEvent

logger = logging.getLogger(__name__)


Source = BounceEvent.Source


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
