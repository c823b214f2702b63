"""The send path end to end: command, edition, Delivery rows, a real SMTP server."""

import datetime
import io

import pytest
import time_machine
from django.core.management import CommandError, call_command

from delivery import by_hand
from delivery.models import Delivery
from newsletter.models import Edition
from newsletter.tests.factories import built_edition, make_article, make_section
from subscriptions.models import Membership, Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def send(date: datetime.date = MONDAY) -> None:
    call_command("send_digest", "--sync", "--date", date.isoformat())


@pytest.fixture
def population():
    """Readers in every state that matters; only the first three are entitled."""
    Status, EmailStatus = Membership.Status, Subscriber.EmailStatus
    return {
        "trialing": make_subscriber("trial@example.com", membership=Status.TRIALING, name="Tia"),
        "active": make_subscriber("paying@example.com", membership=Status.ACTIVE),
        "active2": make_subscriber("Second.Payer@Example.org", membership=Status.ACTIVE),
        "past_due": make_subscriber("late@example.com", membership=Status.PAST_DUE),
        "canceled": make_subscriber("gone@example.com", membership=Status.CANCELED),
        "incomplete": make_subscriber("started@example.com", membership=Status.INCOMPLETE),
        "no_membership": make_subscriber("free@example.com", membership=None),
        "unsubscribed": make_subscriber("quiet@example.com", email_status=EmailStatus.UNSUBSCRIBED),
        "bounced": make_subscriber("bounce@example.com", email_status=EmailStatus.BOUNCED),
        "complained": make_subscriber("spam@example.com", email_status=EmailStatus.COMPLAINED),
    }


def test_sends_the_digest_to_exactly_the_entitled_readers(smtp_server, population):
    world = make_section(name="World")
    first = make_article(
        title="Rivers & treaties", section=world, published_ago=datetime.timedelta(hours=5)
    )
    second = make_article(title="A comet brightens", published_ago=datetime.timedelta(hours=2))
    make_article(title="Unfinished draft", status="draft")

    send()

    assert smtp_server.recipients() == [
        "Second.Payer@example.org",
        "paying@example.com",
        "trial@example.com",
    ]
    tia = next(mail for mail in smtp_server.received() if mail.rcpt_tos == ["trial@example.com"])
    assert tia.message["Subject"] == "The Morning Briefing: Monday, November 30"
    assert tia.message["To"] == "Tia <trial@example.com>"
    # Both parts carry the articles in publication order, with absolute links.
    assert "Good morning, Tia." in tia.text
    assert tia.text.index("Rivers & treaties [World]") < tia.text.index("A comet brightens")
    assert f"http://127.0.0.1:8000/articles/{first.slug}/" in tia.text
    assert "Rivers &amp; treaties" in tia.html
    # Each story link carries the reader's reading token (newsletter.reading).
    assert f'href="http://127.0.0.1:8000/articles/{second.slug}/?token=' in tia.html
    assert "Unfinished draft" not in tia.text + tia.html

    edition = Edition.objects.get(date=MONDAY)
    assert edition.status == Edition.Status.SENT
    assert list(edition.ordered_articles()) == [first, second]
    deliveries = {d.subscriber.email: d for d in edition.deliveries.select_related("subscriber")}
    assert set(deliveries) == {
        "trial@example.com",
        "paying@example.com",
        "Second.Payer@example.org",
    }
    for delivery in deliveries.values():
        assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 1)
        assert delivery.sent_at is not None
    assert deliveries["trial@example.com"].message_id == tia.message["Message-ID"]


@pytest.mark.faults
def test_running_the_command_again_sends_nothing_twice(smtp_server, population):
    make_article()
    send()
    send()

    assert len(smtp_server.received()) == 3
    assert Edition.objects.count() == 1
    assert Delivery.objects.count() == 3


def test_a_reader_who_joins_after_the_send_gets_the_next_edition(smtp_server):
    with time_machine.travel("2026-11-30T10:00:00Z", tick=False):
        make_article(title="Monday story")
        make_subscriber("early@example.com")
    with time_machine.travel("2026-11-30T11:00:00Z", tick=False):
        send(MONDAY)
    with time_machine.travel("2026-11-30T15:00:00Z", tick=False):
        make_subscriber("late@example.com")
        make_article(title="Tuesday story", published_ago=datetime.timedelta(0))
        send(MONDAY)
    with time_machine.travel("2026-12-01T11:00:00Z", tick=False):
        send(MONDAY + datetime.timedelta(days=1))

    by_reader: dict[str, list[str]] = {}
    for mail in smtp_server.received():
        by_reader.setdefault(mail.rcpt_tos[0], []).append(mail.message["Subject"])
    assert by_reader == {
        "early@example.com": [
            "The Morning Briefing: Monday, November 30",
            "The Morning Briefing: Tuesday, December 1",
        ],
        "late@example.com": ["The Morning Briefing: Tuesday, December 1"],
    }


def test_a_reader_who_loses_entitlement_after_the_send_starts_is_skipped(smtp_server):
    make_article()
    keeps = make_subscriber("keeps@example.com")
    cancels = make_subscriber("cancels@example.com")
    unsubscribes = make_subscriber("unsubscribes@example.com")
    edition = built_edition(MONDAY)
    by_hand.send_edition(edition)

    Membership.objects.filter(subscriber=cancels).update(status=Membership.Status.CANCELED)
    unsubscribes.set_email_status(Subscriber.EmailStatus.UNSUBSCRIBED)
    send()

    assert smtp_server.recipients() == [keeps.email]
    assert Delivery.objects.get(subscriber=cancels).status == Delivery.Status.SKIPPED
    assert Delivery.objects.get(subscriber=unsubscribes).status == Delivery.Status.SKIPPED
    assert Edition.objects.get().status == Edition.Status.SENT


def test_refuses_a_weekend_date():
    make_article()
    with pytest.raises(CommandError, match="weekend"):
        call_command("send_digest", "--sync", "--date", "2026-11-28")
    assert not Edition.objects.exists()


def test_no_articles_means_no_edition(smtp_server, capsys):
    make_subscriber()
    send()

    assert "nothing published" in capsys.readouterr().out
    assert not Edition.objects.exists()
    assert smtp_server.received() == []


def test_a_held_edition_is_not_sent(smtp_server):
    make_article()
    make_subscriber()
    edition = built_edition(MONDAY)
    Edition.objects.filter(pk=edition.pk).update(status=Edition.Status.HELD)

    with pytest.raises(CommandError, match="held by the editors"):
        send()
    assert smtp_server.received() == []
    assert not Delivery.objects.exists()


def test_without_sync_the_send_is_queued_for_the_workers(monkeypatch):
    from delivery import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.send_edition, "delay", queued.append)
    make_article()
    call_command("send_digest", "--date", MONDAY.isoformat())

    assert queued == [Edition.objects.get(date=MONDAY).pk]
    assert not Delivery.objects.exists()


@pytest.mark.faults
def test_an_unreachable_smtp_server_leaves_the_readers_queued_for_the_next_run(
    settings, smtp_server
):
    make_article()
    reader = make_subscriber()
    working_mailers = settings.MAILERS
    # Nothing listens on port 9 of the loopback: the connection is refused.
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        }
    }
    with pytest.raises(CommandError, match="Nothing is lost"):
        send()

    delivery = Delivery.objects.get(subscriber=reader)
    assert delivery.status == Delivery.Status.QUEUED
    assert "ConnectionRefusedError" in delivery.last_error
    assert Edition.objects.get().status == Edition.Status.SENDING

    settings.MAILERS = working_mailers
    send()
    assert smtp_server.recipients() == [reader.email]
    delivery.refresh_from_db()
    # A server that could not even be reached used up no attempt.
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 1)
    assert Edition.objects.get().status == Edition.Status.SENT


@pytest.mark.clock("2026-11-30T15:00:00+00:00")  # Monday 10:00 in New York, after its send
def test_by_hand_sends_the_edition_the_desk_calls_next(smtp_server):
    from newsletter import desk

    make_subscriber("ada@example.com")
    make_article(title="Prepared for Tuesday")
    tuesday = desk.next_edition()  # an editor opened the desk: Tuesday's draft
    assert tuesday is not None and tuesday.date == datetime.date(2026, 12, 1)

    out = io.StringIO()
    call_command("send_digest", "--sync", "--by-hand", stdout=out)

    assert "Sent 1" in out.getvalue()
    [mail] = smtp_server.received()
    assert "Prepared for Tuesday" in mail.text
