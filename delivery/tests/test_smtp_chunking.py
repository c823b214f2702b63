"""Whole messages many a round trip where the relay offers CHUNKING (RFC 3030, BDAT).

Against a real Postfix relay (testing.postfix_relay) that hands every
message on to the test's SMTP server (testing.smtp_sink), where the test
reads what arrived; and, for a connection lost mid-window, a server of the
test's own that reads the messages and hangs up without answering.
"""

import re
import smtplib
import socket
import threading
from collections import Counter

import pytest

from delivery import batches, by_hand
from delivery.models import Delivery
from delivery.wire import smtp
from delivery.wire.outcomes import Unconfirmed
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.concurrency import wait_for
from testing.postfix_relay import PostfixRelay

MESSAGE = (
    b"From: a@example.com\r\nTo: b@example.com\r\nSubject: Dots\r\n\r\n"
    b"First line\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast"
)

pytestmark = pytest.mark.clock(MONDAY_BEFORE_SEND)


@pytest.fixture
def relay(smtp_server):
    """Postfix on loopback, offering PIPELINING and CHUNKING, forwarding to smtp_server."""
    try:
        postfix = PostfixRelay(forward_to=smtp_server.port)
    except RuntimeError as error:
        if "root" in str(error):
            pytest.skip(str(error))
        raise
    yield postfix
    postfix.stop()


@pytest.fixture
def connection(relay):
    client = smtplib.SMTP("127.0.0.1", relay.port, timeout=10)
    assert smtp.supports_chunking(client)
    yield client
    client.close()


def arrived(server, count: int) -> list:
    """What reached the test's server through the relay, once `count` messages have."""
    # Postfix queues each message, then its smtp client hands it on: about a
    # millisecond each here; the deadline leaves room for a busy machine.
    assert wait_for(lambda: len(server.received()) >= count, timeout=10 + count * 0.1)
    return server.received()


def names(outcomes):
    return {key: type(error).__name__ if error else None for key, error in outcomes}


def bdat_commands(relay) -> int:
    """How many BDAT commands the relay was sent, from its lines for the closed connections.

    Postfix counts them as `bdat=N`, or `bdat=OK/N` when some failed.
    """
    counts = re.findall(r" bdat=(\d+)(?:/(\d+))?", relay.log())
    return sum(int(total or ok) for ok, total in counts)


def test_messages_go_whole_several_a_round_trip_and_arrive_intact(smtp_server, relay, connection):
    pipeline = smtp.ChunkingPipeline[str](connection, window=4)
    outcomes = []
    for n in range(6):
        outcomes += pipeline.send(f"r{n}", "a@example.com", f"r{n}@example.com", MESSAGE)
        # The answers are read only once more than the window awaits them.
        assert len(pipeline.awaiting) == min(n + 1, 4)
    outcomes += pipeline.finish()

    assert outcomes == [(f"r{n}", None) for n in range(6)]
    mails = arrived(smtp_server, 6)
    assert sorted(address for mail in mails for address in mail.rcpt_tos) == sorted(
        f"r{n}@example.com" for n in range(6)
    )
    # BDAT carries the bytes as they are (no dot-stuffing): they arrive as written.
    for mail in mails:
        assert mail.data.endswith("First line\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast\r\n")
    connection.quit()
    assert wait_for(lambda: bdat_commands(relay) == 6, timeout=10)


def test_a_refused_recipient_ends_only_its_own_transaction(smtp_server, relay, connection):
    pipeline = smtp.ChunkingPipeline[str](connection, window=10)
    recipients = ["one@example.com", "refused@example.com", "later@example.com", "two@example.com"]
    outcomes = []
    for address in recipients:
        outcomes += pipeline.send(address, "a@example.com", address, MESSAGE)
    outcomes += pipeline.finish()

    answers = {
        key: error.recipients[key][0]
        for key, error in outcomes
        if isinstance(error, smtplib.SMTPRecipientsRefused)
    }
    assert names(outcomes) == {
        "one@example.com": None,
        "refused@example.com": "SMTPRecipientsRefused",
        "later@example.com": "SMTPRecipientsRefused",
        "two@example.com": None,
    }
    # The relay's own answers, as SMTP.sendmail reports them.
    assert answers == {"refused@example.com": 554, "later@example.com": 450}
    mails = arrived(smtp_server, 2)
    assert sorted(address for mail in mails for address in mail.rcpt_tos) == [
        "one@example.com",
        "two@example.com",
    ]


def test_after_a_421_the_messages_written_behind_it_were_not_taken(smtp_server, relay, connection):
    pipeline = smtp.ChunkingPipeline[str](connection, window=10)
    recipients = ["one@example.com", "closing@example.com", "two@example.com", "three@example.com"]
    outcomes = []
    for address in recipients:
        outcomes += pipeline.send(address, "a@example.com", address, MESSAGE)
    outcomes += pipeline.finish()

    assert names(outcomes) == {
        "one@example.com": None,
        "closing@example.com": "SMTPRecipientsRefused",
        "two@example.com": "NotSent",
        "three@example.com": "NotSent",
    }
    assert connection.sock is None  # closed, as the server did
    # Nothing more goes over it; the caller opens a new connection.
    assert names(pipeline.send("four", "a@example.com", "four@example.com", MESSAGE)) == {
        "four": "NotSent"
    }
    assert [address for mail in arrived(smtp_server, 1) for address in mail.rcpt_tos] == [
        "one@example.com"
    ]


class HangsUpAfterReading:
    """A server offering CHUNKING that reads `messages` whole, then hangs up unanswered."""

    def __init__(self, messages: int) -> None:
        self.messages = messages
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.read = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        peer, _address = self.listener.accept()
        with peer, peer.makefile("rb") as lines:
            peer.sendall(b"220 test ESMTP\r\n")
            lines.readline()  # EHLO
            peer.sendall(b"250-test\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
            for _ in range(self.messages):
                lines.readline()  # MAIL
                lines.readline()  # RCPT
                size = int(lines.readline().split()[1])  # BDAT <size> LAST
                lines.read(size)
        self.read.set()
        self.listener.close()


def test_a_connection_lost_mid_window_leaves_what_went_whole_unconfirmed():
    server = HangsUpAfterReading(messages=3)
    client = smtplib.SMTP("127.0.0.1", server.port, timeout=10)
    assert smtp.supports_chunking(client)
    pipeline = smtp.ChunkingPipeline[str](client, window=5)
    outcomes = []
    for n in range(3):
        outcomes += pipeline.send(f"r{n}", "a@example.com", f"r{n}@example.com", MESSAGE)
    assert server.read.wait(10)

    outcomes += pipeline.finish()

    # Every message went out whole: each may have been delivered, none is
    # reported "not sent" (which would send it again).
    assert [key for key, _error in outcomes] == ["r0", "r1", "r2"]
    assert all(isinstance(error, Unconfirmed) for _key, error in outcomes)


# Through the send: a batch's readers over a relay offering CHUNKING.


@pytest.fixture
def through_relay(relay, settings, monkeypatch):
    def use(connections: int) -> None:
        if connections > 1:
            # Loopback is near: a batch would use one connection.
            monkeypatch.setattr(batches, "NEAR_RELAY_SECONDS", 0)
        settings.MAILERS = {
            "default": {
                "BACKEND": "delivery.wire.backend.SigningSMTPBackend",
                "OPTIONS": {"host": "127.0.0.1", "port": relay.port, "timeout": 10,
                            "connections": connections},
            }
        }  # fmt: skip

    return use


@pytest.mark.django_db
@pytest.mark.parametrize("connections", [1, 3])
def test_a_batch_over_chunking_gets_each_reader_once_refusals_their_own(
    smtp_server, relay, through_relay, settings, connections
):
    through_relay(connections)
    settings.DIGEST_BATCH_SIZE = 30
    make_article()
    readers = [make_subscriber(f"reader{n:02d}@example.com") for n in range(24)]
    refused = make_subscriber("refused@example.com")
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 24
    mails = arrived(smtp_server, 24)
    assert Counter(a for mail in mails for a in mail.rcpt_tos) == {r.email: 1 for r in readers}
    assert Delivery.objects.get(subscriber=refused).status == Delivery.Status.FAILED
    assert set(
        Delivery.objects.exclude(subscriber=refused).values_list("status", "last_error")
    ) == {("sent", "")}
    batches.kept_pools.close_all()  # the pool's connections QUIT: the relay logs them
    assert wait_for(lambda: bdat_commands(relay) == 25, timeout=10)


@pytest.mark.django_db
def test_a_batch_stopped_mid_window_records_what_went_whole_and_sends_the_rest_later(
    smtp_server, relay, through_relay, settings, monkeypatch
):
    through_relay(1)
    settings.DIGEST_BATCH_SIZE = 30
    make_article()
    readers = [make_subscriber(f"reader{n:02d}@example.com") for n in range(20)]
    edition = built_edition(MONDAY)
    real_send = batches.Sender.send

    def send_or_break(self, delivery, digest):
        if delivery.subscriber.email == "reader15@example.com":
            raise RuntimeError("a bug in one reader's email")
        return real_send(self, delivery, digest)

    monkeypatch.setattr(batches.Sender, "send", send_or_break)
    with pytest.raises(RuntimeError, match="a bug"):
        by_hand.send_edition_in_process(edition.pk)
    # The messages written before the stop were answered and recorded (up to
    # the window of them awaiting their answers): none is sent again.
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 15
    monkeypatch.setattr(batches.Sender, "send", real_send)

    by_hand.send_edition_in_process(edition.pk)

    mails = arrived(smtp_server, 20)
    assert Counter(a for mail in mails for a in mail.rcpt_tos) == {r.email: 1 for r in readers}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
