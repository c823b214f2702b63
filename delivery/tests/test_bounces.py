"""Bounces and complaints over plain SMTP: VERP, 5xx answers at send time, the bounce mailbox.

The mailbox is a real Dovecot (IMAP and POP3) started for the module; the
reports in it are real ones (mail_samples/README.md), parsed by flufl.bounce.
"""

import datetime
import re
from email.utils import parseaddr
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command

from delivery import by_hand, recovery
from delivery.deliverability import answers, health, mailbox
from delivery.deliverability.verp import parse_verp, unsubscribe_mailto, verp_address
from delivery.models import BounceEvent, Delivery
from newsletter.tests.factories import built_edition, make_article
from subscriptions import emails as reader_emails
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.mail_server import MailServer

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

SAMPLES = Path(__file__).parent / "mail_samples"
BOUNCE_DOMAIN = "bounces.briefing.example"


@pytest.fixture
def verp(settings):
    settings.BOUNCE_DOMAIN = BOUNCE_DOMAIN
    settings.UNSUBSCRIBE_MAILTO = f"bounces+unsubscribe@{BOUNCE_DOMAIN}"


@pytest.fixture(scope="module")
def dovecot():
    # One server for the module (starting Dovecot costs about a second): each
    # test starts with an empty mailbox.
    server = MailServer()
    yield server
    server.stop()


@pytest.fixture
def mail_server(dovecot, settings):
    dovecot.empty()
    settings.BOUNCE_MAILBOX_URL = dovecot.url("imap")
    return dovecot


@pytest.fixture
def signing_smtp(smtp_server, settings):
    """The production SMTP backend (delivery.wire.backend): VERP on Django's path too."""
    settings.MAILERS = {
        "default": {
            "BACKEND": "delivery.wire.backend.SigningSMTPBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 10},
        }
    }
    return smtp_server


def sample(name: str, **replace: str) -> bytes:
    """A sample report; `replace` rewrites header lines (name: new value) of the outer message."""
    raw = (SAMPLES / name).read_bytes()
    head, sep, body = raw.partition(b"\n\n")
    for header, value in replace.items():
        field = header.replace("_", "-").encode()
        pattern = re.compile(rb"(?im)^" + re.escape(field) + rb":.*$")
        line = field + b": " + value.encode()
        if pattern.search(head):
            head = pattern.sub(line.replace(b"\\", b"\\\\"), head, count=1)
        else:
            head += b"\n" + line
    return head + sep + body


def sent_edition(readers):
    make_article()
    edition = built_edition(MONDAY)
    by_hand.send_edition_in_process(edition.pk)
    return edition


# ---------------------------------------------------------------- VERP


def test_every_digest_goes_out_with_its_own_signed_envelope_sender(signing_smtp, verp):
    readers = [make_subscriber(f"reader{n}@example.com") for n in range(3)]
    # A reader Django's path carries (a name that needs quoting), and the fast path's.
    readers.append(make_subscriber("quoted@example.com", name="Zoë, Q."))
    sent_edition(readers)

    mails = signing_smtp.received()
    assert len(mails) == 4
    for received in mails:
        delivery = Delivery.objects.get(subscriber__email=received.rcpt_tos[0])
        sender = received.mail_from
        assert sender == verp_address("d", delivery.pk)
        assert sender.startswith("bounces+d") and sender.endswith(BOUNCE_DOMAIN)
        assert parse_verp(sender) == ("d", delivery.pk)
        # The reader still sees the newsletter's own From.
        assert parseaddr(received.message["From"])[1] == "briefing@localhost"


def verp_of(kind: str, pk: int) -> str:
    address = verp_address(kind, pk)
    assert address is not None, "BOUNCE_DOMAIN is set"
    return address


def test_a_forged_or_altered_verp_address_names_nobody(verp):
    address = verp_of("d", 41)
    assert parse_verp(address.upper()) == ("d", 41)  # mail systems may fold case
    assert parse_verp(address.replace("d41-", "d42-")) is None
    assert parse_verp(f"bounces+d41-000000000000@{BOUNCE_DOMAIN}") is None
    assert parse_verp("someone@example.com") is None


def test_a_verp_address_signed_before_a_key_rotation_still_counts(verp, settings):
    address = verp_of("d", 7)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-after-rotation-with-enough-entropy-1234567890"
    assert verp_of("d", 7) != address
    assert parse_verp(address) == ("d", 7)
    settings.SECRET_KEY_FALLBACKS = []
    assert parse_verp(address) is None


def test_addresses_signed_by_an_earlier_release_still_count(verp, settings):
    """Mail sent before an upgrade bounces after it: the signatures may never change.

    Computed by the release whose config/mail.py signed them (the salt keeps
    that module's name).
    """
    settings.SECRET_KEY = "pinned-secret-key-for-the-signature-test-0123456789abcdef"
    settings.UNSUBSCRIBE_MAILTO = "news@briefing.example"

    assert verp_of("d", 41) == f"bounces+d41-aa8e976c3462@{BOUNCE_DOMAIN}"
    assert parse_verp(f"bounces+s7-c004d5cc8fc7@{BOUNCE_DOMAIN}") == ("s", 7)
    assert unsubscribe_mailto(42) == "news+u42-fd0edafd80ed@briefing.example"


def test_without_a_bounce_domain_the_envelope_sender_is_the_from_address(smtp_server):
    sent_edition([make_subscriber("reader@example.com")])
    [mail] = smtp_server.received()
    assert mail.mail_from == "briefing@localhost"


def test_reader_emails_carry_the_readers_verp_address(signing_smtp, verp):
    reader = make_subscriber("reader@example.com")
    reader_emails.sign_in_link(reader).send()
    [mail] = signing_smtp.received()
    assert parse_verp(mail.mail_from) == ("s", reader.pk)


# ---------------------------------------------------------------- answers at send time


def test_a_user_unknown_answer_suppresses_the_address_and_bounces_the_delivery(smtp_server):
    good, gone = make_subscriber("good@example.com"), make_subscriber("gone@example.com")
    smtp_server.inject_faults(
        refuse_recipients={gone.email: [550, "5.1.1 <gone@example.com>: User unknown"]}
    )
    edition = sent_edition([good, gone])

    gone.refresh_from_db()
    assert gone.email_status == Subscriber.EmailStatus.BOUNCED
    delivery = Delivery.objects.get(subscriber=gone)
    assert delivery.status == Delivery.Status.BOUNCED
    # Stored as editors may read it: the server's words without the address.
    assert delivery.last_error == "Bounced: 550 5.1.1 <[address]>: User unknown"
    [event] = BounceEvent.objects.all()
    assert (event.kind, event.source, event.edition_id) == ("hard", "smtp", edition.pk)
    assert "gone@" not in event.detail and "[address]" in event.detail
    # Not in tomorrow's audience, not resent by "resend to failed".
    assert not Subscriber.objects.entitled().filter(pk=gone.pk).exists()
    assert recovery.resend_failed(edition) == 0


def test_soft_refusals_suppress_only_after_the_configured_count(smtp_server, settings, clock):
    settings.BOUNCE_SOFT_LIMIT = 2
    reader = make_subscriber("full@example.com")
    smtp_server.inject_faults(refuse_recipients={reader.email: [552, "5.2.2 Mailbox full"]})
    edition = sent_edition([reader])
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.ACTIVE
    assert Delivery.objects.get(subscriber=reader).status == Delivery.Status.FAILED

    recovery.resend_failed(edition)
    by_hand.send_edition_in_process(edition.pk)
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.BOUNCED
    assert BounceEvent.objects.filter(kind="soft").count() == 2


@pytest.mark.parametrize(
    ("code", "text", "kind"),
    [
        (550, "5.1.1 <a@b.example>: Recipient address rejected: User unknown", "hard"),
        (550, "5.2.1 The email account that you tried to reach is disabled", "hard"),
        (550, "No such user here", "hard"),
        (552, "5.2.2 Mailbox full", "soft"),
        (554, "5.7.1 Message rejected as spam", "soft"),
        (450, "4.2.0 Greylisted", "soft"),
    ],
)
def test_hard_and_soft_answers(code, text, kind):
    assert answers.failure_kind(code, text) == kind


# ---------------------------------------------------------------- the bounce mailbox


def test_a_dsn_to_the_verp_address_bounces_that_delivery(mail_server, smtp_server, verp):
    reader = make_subscriber("reader@example.com")
    other = make_subscriber("other@example.com")
    edition = sent_edition([reader, other])
    delivery = Delivery.objects.get(subscriber=reader)
    # A real DSN (its recipient rewritten by a gateway: the VERP address is what names ours).
    address = verp_of("d", delivery.pk)
    mail_server.deliver(sample("dsn_01.txt", To=address, Delivered_To=address))

    call_command("process_bounces")

    reader.refresh_from_db()
    other.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.BOUNCED
    assert other.email_status == Subscriber.EmailStatus.ACTIVE
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.BOUNCED
    assert "5.0.0" in delivery.last_error
    event = BounceEvent.objects.get()
    assert (event.source, event.kind, event.edition_id) == ("mailbox", "hard", edition.pk)
    assert mail_server.inbox() == []  # applied, so deleted


def to_verp(name: str, kind: str, pk: int) -> bytes:
    """A sample report as it arrives at one of our signed return addresses."""
    address = verp_of(kind, pk)
    return sample(name, To=address, Delivered_To=address)


def test_without_verp_a_dsn_naming_a_reader_is_kept_for_a_person_not_applied(mail_server):
    # Without BOUNCE_DOMAIN nothing in a report is ours to check: anyone could
    # write a "bounce" for any reader's address (issue: forged DSNs).
    reader = make_subscriber("userx@example.com")
    complainer = make_subscriber("user@example.com")
    mail_server.deliver(sample("dsn_09.txt"))
    mail_server.deliver(sample("arf_rfc5965.txt"))

    counts = mailbox.process_mailbox()

    assert counts["unverified"] == 2
    reader.refresh_from_db()
    complainer.refresh_from_db()
    assert reader.email_status == complainer.email_status == Subscriber.EmailStatus.ACTIVE
    assert not BounceEvent.objects.exists()
    assert all("\\Seen" in flags for flags, _ in mail_server.inbox())


def test_with_verp_a_report_naming_only_an_address_is_kept_not_applied(mail_server, verp):
    # Anyone can write to the bounce mailbox: a "bounce" without our signed
    # address could suppress any reader.
    reader = make_subscriber("userx@example.com")
    complainer = make_subscriber("user@example.com")
    mail_server.deliver(sample("dsn_09.txt"))
    mail_server.deliver(sample("arf_rfc5965.txt"))

    counts = mailbox.process_mailbox()

    assert counts["unverified"] == 2
    reader.refresh_from_db()
    complainer.refresh_from_db()
    assert reader.email_status == complainer.email_status == Subscriber.EmailStatus.ACTIVE
    assert all("\\Seen" in flags for flags, _ in mail_server.inbox())


def test_an_arf_complaint_through_the_verp_address_counts_for_its_edition(
    mail_server, smtp_server, verp
):
    reader = make_subscriber("user@example.com")
    edition = sent_edition([reader])
    delivery = Delivery.objects.get(subscriber=reader)
    raw = sample("arf_rfc5965.txt").replace(
        b"Original-Mail-From: <somespammer@example.net>",
        f"Original-Mail-From: <{verp_of('d', delivery.pk)}>".encode(),
    )
    mail_server.deliver(raw)
    assert mailbox.process_mailbox()["complaint"] == 1
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.COMPLAINED
    assert BounceEvent.objects.get().edition_id == edition.pk


def test_a_reader_filing_complaints_about_their_own_digest_counts_once(
    mail_server, smtp_server, verp
):
    # The forged-complaint attack: ARF reports naming the reader's own signed
    # return address, each with a new Message-ID.
    reader = make_subscriber("user@example.com")
    edition = sent_edition([reader])
    delivery = Delivery.objects.get(subscriber=reader)
    for n in range(5):
        raw = sample("arf_rfc5965.txt", Message_ID=f"<forged-{n}@evil.example>").replace(
            b"Original-Mail-From: <somespammer@example.net>",
            f"Original-Mail-From: <{verp_of('d', delivery.pk)}>".encode(),
        )
        mail_server.deliver(raw)

    counts = mailbox.process_mailbox()

    assert counts["complaint"] == 5 and counts["readers"] == 5
    assert list(BounceEvent.objects.values_list("kind", "edition_id")) == [
        ("complaint", edition.pk)
    ]
    assert health.edition_health(edition.pk).complaints == 1


def test_a_bounce_with_raw_8bit_bytes_in_its_headers_is_read(mail_server, verp):
    # Broken mailers send them; flufl.bounce's detectors fail on such headers
    # unless the message is read as text.
    reader = make_subscriber("userx@example.net")
    address = verp_of("s", reader.pk)
    raw = sample(
        "postfix_05.txt",
        From="Mail D\xe9livery <MAILER-DAEMON@example.net>",
        To=address,
        Delivered_To=address,
    )
    assert not raw.isascii()
    mail_server.deliver(raw)
    assert mailbox.process_mailbox()["bounce"] == 1
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.BOUNCED


def test_a_report_to_a_readers_own_address_counts_for_their_latest_digest(
    mail_server, smtp_server, verp
):
    # A reader email's return address names the reader, not a delivery.
    reader = make_subscriber("userx@example.com")
    edition = sent_edition([reader])
    mail_server.deliver(to_verp("dsn_09.txt", "s", reader.pk))
    mailbox.process_mailbox()
    assert BounceEvent.objects.get().edition_id == edition.pk


def test_a_delay_warning_changes_nothing_and_a_given_up_retry_is_soft(mail_server, verp):
    delayed = make_subscriber("userx@example.com")
    retried = make_subscriber("zzzzz@example.uk")
    mail_server.deliver(to_verp("dsn_06.txt", "s", delayed.pk))
    mail_server.deliver(to_verp("dsn_02.txt", "s", retried.pk))

    counts = mailbox.process_mailbox()

    assert (counts["delay"], counts["bounce"]) == (1, 1)
    delayed.refresh_from_db()
    retried.refresh_from_db()
    assert delayed.email_status == retried.email_status == Subscriber.EmailStatus.ACTIVE
    assert list(BounceEvent.objects.values_list("subscriber__email", "kind")) == [
        ("zzzzz@example.uk", "soft")
    ]
    assert mail_server.inbox() == []


def test_an_arf_complaint_suppresses_at_once(mail_server, verp):
    reader = make_subscriber("user@example.com")
    mail_server.deliver(to_verp("arf_rfc5965.txt", "s", reader.pk))
    assert mailbox.process_mailbox()["complaint"] == 1
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.COMPLAINED


def test_a_report_read_twice_counts_once(mail_server, settings, verp):
    settings.BOUNCE_SOFT_LIMIT = 2
    reader = make_subscriber("zzzzz@example.uk")
    # The same report delivered twice (a mail system's retry).
    mail_server.deliver(to_verp("dsn_02.txt", "s", reader.pk))
    mail_server.deliver(to_verp("dsn_02.txt", "s", reader.pk))
    mailbox.process_mailbox()
    assert BounceEvent.objects.count() == 1
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.ACTIVE


def unsubscribe_email(to: str, sender: str, message_id: str, *headers: str) -> bytes:
    lines = [f"From: {sender}", f"To: {to}", "Subject: unsubscribe", f"Message-ID: {message_id}"]
    body = "This message was automatically generated by Gmail."
    return ("\r\n".join([*lines, *headers, "", body]) + "\r\n").encode()


@pytest.mark.parametrize("with_verp", [True, False], ids=["bounce domain", "from mailbox"])
def test_an_email_to_a_readers_signed_unsubscribe_address_unsubscribes_them_and_tells_them(
    mail_server, settings, client, with_verp, django_capture_on_commit_callbacks, eager_celery
):
    if with_verp:
        settings.BOUNCE_DOMAIN = BOUNCE_DOMAIN
        settings.UNSUBSCRIBE_MAILTO = f"bounces+unsubscribe@{BOUNCE_DOMAIN}"
    reader = make_subscriber("reader@example.com", name="Ada Reader")
    bounced = make_subscriber("old@example.com", email_status=Subscriber.EmailStatus.BOUNCED)
    # The signed address is the request: the From may be any of the reader's
    # addresses (a forwarding alias, say).
    mail_server.deliver(
        unsubscribe_email(unsubscribe_mailto(reader.pk), "Ada <ada@alias.example>", "<u1@m.ex>")
    )
    mail_server.deliver(
        unsubscribe_email(unsubscribe_mailto(bounced.pk), "x@y.example", "<u2@m.ex>")
    )

    with django_capture_on_commit_callbacks(execute=True):
        counts = mailbox.process_mailbox()

    assert counts["unsubscribe"] == 2
    reader.refresh_from_db()
    bounced.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.UNSUBSCRIBED
    assert bounced.email_status == Subscriber.EmailStatus.BOUNCED  # stays bounced
    # The reader is told, at their own address, with the way back.
    [notice] = mail.outbox
    assert notice.to == ["reader@example.com"]
    body = str(notice.body)
    assert "unsubscribe address" in body
    link = re.search(r"http://\S+/unsubscribe/\S+/", body)
    assert link is not None
    path = link.group(0).removeprefix(settings.SITE_URL)
    assert b"Resubscribe" in client.get(path).content
    client.post(path, {"action": "resubscribe"})
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.ACTIVE


def test_an_unsubscribe_email_naming_a_reader_only_by_its_from_is_kept_for_a_person(
    mail_server, verp
):
    # Anyone can write any From: the shared address, a forged signature or
    # another reader's id with this one's signature name nobody.
    reader = make_subscriber("reader@example.com")
    other = make_subscriber("other@example.com")
    signed = unsubscribe_mailto(reader.pk)
    shared = f"bounces+unsubscribe@{BOUNCE_DOMAIN}"
    for n, (to, *headers) in enumerate(
        [
            (shared,),
            (shared, "Authentication-Results: mx.example.net; dmarc=none"),
            (shared, "Authentication-Results: mx.example.net; dmarc=pass"),
            (signed.replace(f"+u{reader.pk}-", f"+u{other.pk}-"),),
            (f"bounces+u{reader.pk}-000000000000@{BOUNCE_DOMAIN}",),
        ]
    ):
        mail_server.deliver(unsubscribe_email(to, "reader@example.com", f"<f{n}@m.ex>", *headers))
    mail_server.deliver(b"From: friend@example.org\r\nTo: briefing@localhost\r\n"
                        b"Subject: Loved today's issue\r\n\r\nThanks!\r\n")  # fmt: skip

    counts = mailbox.process_mailbox()

    assert (counts["unverified"], counts["unknown"], counts["unsubscribe"]) == (3, 3, 0)
    reader.refresh_from_db()
    other.refresh_from_db()
    assert reader.email_status == other.email_status == Subscriber.EmailStatus.ACTIVE
    kept = mail_server.inbox()
    assert len(kept) == 6 and all("\\Seen" in flags for flags, _ in kept)
    # Not read again.
    assert mailbox.process_mailbox()["unknown"] == 0


def test_an_auto_reply_to_the_signed_unsubscribe_address_changes_nothing(mail_server, verp):
    reader = make_subscriber("reader@example.com")
    mail_server.deliver(
        unsubscribe_email(
            unsubscribe_mailto(reader.pk),
            "reader@example.com",
            "<a@m.ex>",
            "Auto-Submitted: auto-replied",
        )
    )
    assert mailbox.process_mailbox()["unknown"] == 1
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.ACTIVE


def test_the_mailbox_over_pop3(mail_server, settings, verp):
    reader = make_subscriber("userx@example.net")
    mail_server.deliver(to_verp("postfix_05.txt", "s", reader.pk))
    counts = mailbox.process_mailbox(mail_server.url("pop3"))
    assert counts["bounce"] == 1
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.BOUNCED
    assert mail_server.inbox() == []


def test_beat_reads_the_mailbox_every_few_minutes(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["process-bounces"]
    assert entry["task"] == "newsletter.tasks.process_bounces"
    assert entry["schedule"] <= datetime.timedelta(minutes=5).total_seconds()


def test_the_task_reads_the_configured_mailbox(mail_server, verp):
    from delivery import tasks

    reader = make_subscriber("userx@example.com")
    mail_server.deliver(to_verp("dsn_09.txt", "s", reader.pk))
    assert tasks.process_bounces() == {"bounce": 1, "readers": 1}
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.BOUNCED
