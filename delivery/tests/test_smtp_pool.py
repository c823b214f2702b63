"""Several SMTP connections per worker process (delivery.batches.SMTPPool), each pipelined.

Against the real SMTP server process (testing.smtp_sink): a batch's readers
are dealt to the connections, each reader gets one copy, and a connection
that drops affects only its own messages.
"""

import json
from collections import Counter

import pytest

from delivery import batches, by_hand
from delivery.models import Delivery
from delivery.wire import relay_places
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def pooled(smtp_server, settings, monkeypatch):
    """The production backend over 4 connections per batch (SMTP_URL's ?connections=4).

    To a relay taken to be far: the test's server is on loopback, where a
    batch would otherwise use one connection (test_a_relay_on_loopback_...).
    """
    monkeypatch.setattr(batches, "NEAR_RELAY_SECONDS", 0)
    settings.MAILERS = {
        "default": {
            "BACKEND": "delivery.wire.backend.SigningSMTPBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 10,
                        "connections": 4},
        }
    }  # fmt: skip
    return smtp_server


@pytest.fixture
def readers():
    make_article()
    return [make_subscriber(f"reader{n:02d}@example.com") for n in range(20)]


def peers(server) -> set[tuple[str, int]]:
    return {
        tuple(json.loads(path.read_text())["peer"]) for path in server.directory.glob("[0-9]*.json")
    }


def test_a_batch_goes_over_several_connections_each_reader_once(pooled, readers, settings):
    settings.DIGEST_BATCH_SIZE = 20
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 20
    assert Counter(pooled.recipients()) == {reader.email: 1 for reader in readers}
    assert len(peers(pooled)) == 4
    assert set(Delivery.objects.values_list("status", "last_error")) == {("sent", "")}


def test_a_pool_opens_only_the_connections_the_relays_cap_has_places_for(pooled, readers, settings):
    settings.DIGEST_BATCH_SIZE = 20
    # Every worker together holds at most 3 to this relay (SMTP_URL's ?max_connections=3).
    settings.MAILERS["default"]["OPTIONS"]["max_connections"] = 3
    relay = f"127.0.0.1:{pooled.port}"
    # Another worker's batch holds one of them.
    granted, elsewhere = relay_places.take(relay, 2, cap=3)
    assert granted == 2
    elsewhere.give_back()
    granted, elsewhere = relay_places.take(relay, 1, cap=3)
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 20
    assert Counter(pooled.recipients()) == {reader.email: 1 for reader in readers}
    assert len(peers(pooled)) == 2
    # The batch gave its places back: two are free again.
    assert relay_places.take(relay, 3, cap=3)[0] == 2
    elsewhere.give_back()


def test_a_connection_dropping_mid_window_affects_only_its_own_messages(pooled, readers, settings):
    settings.DIGEST_BATCH_SIZE = 20
    dropped = "reader05@example.com"
    pooled.inject_faults(drop_after_data_for=[dropped])
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    # The reader whose answer was lost: sent, not confirmed, one copy, not
    # sent again; every other reader once, the dropped connection's later
    # messages over a connection opened again.
    assert report.sent == 20
    assert Counter(pooled.recipients()) == {reader.email: 1 for reader in readers}
    unconfirmed = Delivery.objects.get(subscriber__email=dropped)
    assert (unconfirmed.status, unconfirmed.last_error) == ("sent", Delivery.UNCONFIRMED_NOTE)
    others = Delivery.objects.exclude(pk=unconfirmed.pk)
    assert set(others.values_list("status", "last_error")) == {("sent", "")}
    assert len(peers(pooled)) == 5  # the four, and the one opened again


def test_an_error_mid_batch_records_what_went_and_frees_the_rest(
    pooled, readers, settings, monkeypatch
):
    settings.DIGEST_BATCH_SIZE = 20
    edition = built_edition(MONDAY)
    real_send = batches.Sender.send

    def send_or_break(self, delivery, digest):
        if delivery.subscriber.email == "reader10@example.com":
            raise RuntimeError("a bug in one reader's email")
        return real_send(self, delivery, digest)

    monkeypatch.setattr(batches.Sender, "send", send_or_break)
    with pytest.raises(RuntimeError, match="a bug"):
        by_hand.send_edition_in_process(edition.pk)
    monkeypatch.setattr(batches.Sender, "send", real_send)

    # Nothing is left claimed; what went is recorded and never sent again.
    assert Delivery.objects.filter(status=Delivery.Status.SENDING).count() == 0
    by_hand.send_edition_in_process(edition.pk)
    assert Counter(pooled.recipients()) == {reader.email: 1 for reader in readers}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.parametrize(
    ("faults", "connections"),
    [
        ({}, 1),
        ({"delay_noop_seconds": 0.05, "delay_first_noops": 1}, 1),
        ({"delay_noop_seconds": 0.05}, 4),
    ],
    ids=[
        "near relay: one connection",
        "near relay answering one NOOP late (a busy machine): one connection",
        "far relay: the pool",
    ],
)
def test_a_batch_opens_more_connections_only_to_a_relay_far_away(
    pooled, readers, settings, monkeypatch, faults, connections
):
    settings.DIGEST_BATCH_SIZE = 20
    edition = built_edition(MONDAY)
    # A threshold loopback answers a NOOP well within, even on a loaded machine.
    monkeypatch.setattr(batches, "NEAR_RELAY_SECONDS", 0.02)
    pooled.inject_faults(**faults)

    assert by_hand.send_edition_in_process(edition.pk).sent == 20

    assert Counter(pooled.recipients()) == {reader.email: 1 for reader in readers}
    assert len(peers(pooled)) == connections


def test_a_relays_distance_is_measured_once_for_many_batches(
    pooled, readers, settings, monkeypatch
):
    settings.DIGEST_BATCH_SIZE = 5
    monkeypatch.setattr(batches, "NEAR_RELAY_SECONDS", 0.02)
    edition = built_edition(MONDAY)

    assert by_hand.send_edition_in_process(edition.pk).sent == 20

    # Four batches to a near relay; one NOOP, the first batch's, told how near.
    assert Counter(pooled.recipients()) == {reader.email: 1 for reader in readers}
    assert (pooled.directory / "noops").read_text().count("NOOP") == 1
