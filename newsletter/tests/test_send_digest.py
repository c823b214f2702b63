"""The send path end to end: command, edition, Delivery rows, a real SMTP server."""

import datetime

import pytest
from django.core.management import CommandError, call_command

from newsletter.models import Delivery, Edition
from newsletter.tests.factories import make_article, make_section
from subscriptions.models import Membership, Subscriber
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

MONDAY = datetime.date(2026, 11, 30)


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

    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())

    received = smtp_server.received()
    assert sorted(r for mail in received for r in mail.rcpt_tos) == [
        "Second.Payer@example.org",
        "paying@example.com",
        "trial@example.com",
    ]
    tia = next(mail for mail in received if mail.rcpt_tos == ["trial@example.com"])
    assert tia.message["Subject"] == "The Morning Briefing: Monday, November 30"
    assert tia.message["To"] == "trial@example.com"
    # Both parts carry the articles in publication order, with absolute links.
    assert "Good morning, Tia." in tia.text
    assert tia.text.index("Rivers & treaties [World]") < tia.text.index("A comet brightens")
    assert f"http://127.0.0.1:8000/articles/{first.slug}/" in tia.text
    assert "Rivers &amp; treaties" in tia.html
    assert f'href="http://127.0.0.1:8000/articles/{second.slug}/"' in tia.html
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
    assert all(d.status == Delivery.Status.SENT and d.attempts == 1 for d in deliveries.values())
    assert all(d.sent_at is not None for d in deliveries.values())


def test_running_the_command_again_sends_nothing_twice(smtp_server, population):
    make_article()
    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())
    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())

    assert len(smtp_server.received()) == 3
    assert Edition.objects.count() == 1
    assert Delivery.objects.count() == 3


def test_a_reader_who_joins_after_the_send_gets_that_edition_on_the_next_run(smtp_server):
    make_article()
    make_subscriber("early@example.com")
    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())
    make_subscriber("late@example.com")
    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())

    assert [mail.rcpt_tos for mail in smtp_server.received()] == [
        ["early@example.com"],
        ["late@example.com"],
    ]


def test_a_reader_who_loses_entitlement_after_queueing_is_skipped(smtp_server, monkeypatch):
    from newsletter import sending

    make_article()
    keeps = make_subscriber("keeps@example.com")
    leaves = make_subscriber("leaves@example.com")
    queue = sending.queue_deliveries

    def queue_then_cancel(edition):
        queued = queue(edition)
        Membership.objects.filter(subscriber=leaves).update(status=Membership.Status.CANCELED)
        return queued

    monkeypatch.setattr(sending, "queue_deliveries", queue_then_cancel)
    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())

    assert [mail.rcpt_tos for mail in smtp_server.received()] == [[keeps.email]]
    assert Delivery.objects.get(subscriber=leaves).status == Delivery.Status.SKIPPED


def test_refuses_a_weekend_date():
    make_article()
    with pytest.raises(CommandError, match="weekend"):
        call_command("send_digest", "--sync", "--date", "2026-11-28")
    assert not Edition.objects.exists()


def test_no_articles_means_no_edition(smtp_server, capsys):
    make_subscriber()
    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())

    assert "nothing published" in capsys.readouterr().out
    assert not Edition.objects.exists()
    assert smtp_server.received() == []


def test_without_sync_the_send_is_queued_for_the_worker(monkeypatch):
    from newsletter import tasks

    queued = []
    monkeypatch.setattr(tasks.send_edition, "delay", queued.append)
    make_article()
    call_command("send_digest", "--date", MONDAY.isoformat())

    assert queued == [Edition.objects.get(date=MONDAY).pk]
    assert not Delivery.objects.exists()


def test_an_unreachable_smtp_server_leaves_the_readers_queued_for_the_next_run(
    settings, smtp_server
):
    make_article()
    reader = make_subscriber()
    # Nothing listens on port 9 of the loopback: the connection is refused.
    working_mailers = settings.MAILERS
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        }
    }
    with pytest.raises(ConnectionRefusedError):
        call_command("send_digest", "--sync", "--date", MONDAY.isoformat())

    delivery = Delivery.objects.get(subscriber=reader)
    assert delivery.status == Delivery.Status.QUEUED
    assert "ConnectionRefusedError" in delivery.last_error
    assert Edition.objects.get().status == Edition.Status.SENDING

    settings.MAILERS = working_mailers
    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())
    assert [mail.rcpt_tos for mail in smtp_server.received()] == [[reader.email]]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.SENT, 2)
    assert Edition.objects.get().status == Edition.Status.SENT
