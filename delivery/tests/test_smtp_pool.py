"""Several SMTP connections per worker process (delivery.batches.SMTPPool), each pipelined.

Against the real SMTP server process (testing.smtp_sink): a batch's readers
are dealt to the connections, each reader gets one copy, and a connection
that drops affects only its own messages.
"""

import datetime
import json
import socket
import time
from collections import Counter

import pytest

from delivery import batches, by_hand
from delivery.models import Delivery
from delivery.wire import relay_places
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.concurrency import wait_for

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


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
    # The pool is kept for the process's next batch, and holds its places.
    granted, probe = relay_places.take(relay, 3, cap=3)
    probe.give_back()
    assert granted == 1  # only the place a batch always takes, past the cap
    # Closed, it gives them back: two are free again.
    batches.kept_pools.close_all()
    granted, probe = relay_places.take(relay, 3, cap=3)
    probe.give_back()
    assert granted == 2
    elsewhere.give_back()


@pytest.mark.faults
def test_a_connection_dropping_mid_window_affects_only_its_own_messages(
    pooled, readers, settings, fault_table
):
    settings.DIGEST_BATCH_SIZE = 20
    dropped = "reader05@example.com"
    pooled.inject_faults(drop_after_data_for=[dropped])
    edition = built_edition(MONDAY)
    fault_at = time.monotonic()

    report = by_hand.send_edition_in_process(edition.pk)
    fault_table(
        "SMTP pool: one of 4 connections hangs up mid-window", [r.email for r in readers], fault_at
    )

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
    # A pool that stopped on an error is not kept for the next batch.
    assert batches.kept_pools.pools == {}
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


def test_the_next_batch_goes_on_over_the_connections_the_last_one_kept(pooled, readers, settings):
    settings.DIGEST_BATCH_SIZE = 5
    edition = built_edition(MONDAY)

    assert by_hand.send_edition_in_process(edition.pk).sent == 20

    # Four batches over the same four connections: none opened again.
    assert Counter(pooled.recipients()) == {reader.email: 1 for reader in readers}
    assert len(peers(pooled)) == 4
    assert set(Delivery.objects.values_list("status", "last_error")) == {("sent", "")}
    # The last batch's pool waits, idle, for the process's next batch.
    assert len(batches.kept_pools.pools) == 1


def test_a_kept_pool_unused_for_a_while_closes_and_gives_its_places_back(
    pooled, readers, settings, monkeypatch
):
    settings.DIGEST_BATCH_SIZE = 20
    monkeypatch.setattr(batches, "KEEP_POOL_SECONDS", 0.2)
    relay = f"127.0.0.1:{pooled.port}"
    edition = built_edition(MONDAY)

    assert by_hand.send_edition_in_process(edition.pk).sent == 20
    [(pool, _keeping)] = batches.kept_pools.pools.values()

    # Closing waits at most for each connection's QUIT (its timeout: 10 s).
    assert wait_for(lambda: not batches.kept_pools.pools, timeout=0.2 + 10 + 5)
    assert wait_for(lambda: not any(lane.is_alive() for lane in pool.lanes), timeout=15)
    assert all(lane.connection.connection is None for lane in pool.lanes)
    granted, probe = relay_places.take(relay, 50, cap=50)
    probe.give_back()
    assert granted == 50  # nobody holds a place at this relay


def test_kept_connections_lost_meanwhile_are_opened_again_each_reader_once(
    pooled, readers, settings, monkeypatch
):
    settings.DIGEST_BATCH_SIZE = 10
    edition = built_edition(MONDAY)
    take = batches.kept_pools.take

    def take_lost(connection, edition):
        # While the pool waited, its connections were lost (the relay's idle
        # timeout, a restarted relay, a NAT that forgot them).
        for pool, _keeping in batches.kept_pools.pools.values():
            for lane in pool.lanes:
                client = lane.connection.connection
                assert client is not None and client.sock is not None
                client.sock.shutdown(socket.SHUT_RDWR)
        return take(connection, edition)

    monkeypatch.setattr(batches.kept_pools, "take", take_lost)

    assert by_hand.send_edition_in_process(edition.pk).sent == 20

    # The second batch opened the four connections again: every reader once.
    assert Counter(pooled.recipients()) == {reader.email: 1 for reader in readers}
    assert len(peers(pooled)) == 8
    assert set(Delivery.objects.values_list("status", "last_error")) == {("sent", "")}


def test_a_kept_pool_carries_the_next_editions_batch_as_that_editions(
    pooled, readers, settings, clock
):
    settings.DIGEST_BATCH_SIZE = 20
    monday = built_edition(MONDAY)
    assert by_hand.send_edition_in_process(monday.pk).sent == 20
    clock.move_to(MONDAY_BEFORE_SEND + datetime.timedelta(days=1))
    make_article(title="Tuesday's story")
    tuesday = built_edition(MONDAY + datetime.timedelta(days=1))

    assert by_hand.send_edition_in_process(tuesday.pk).sent == 20

    assert len(peers(pooled)) == 4  # Tuesday's batch went over Monday's connections
    sent_ids = {
        mail.message["Message-ID"] for mail in pooled.received() if "Tuesday's story" in mail.text
    }
    assert sent_ids == {d.message_id for d in Delivery.objects.filter(edition=tuesday)}
    assert len(sent_ids) == 20
