"""Connections lost mid-send: the database's, and the mail server's after the message went out.

A worker that cannot record what it sent would send it again; one that
retries a message whose delivery it could not confirm would send copies.
Neither happens: the write is retried on a new database connection, and an
unconfirmed message is recorded as sent (or, if the publisher asks, sent
once more at most).
"""

import collections
import threading
import time

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from delivery import batches, by_hand, leases
from delivery.models import Delivery
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.faults, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def statuses() -> collections.Counter:
    return collections.Counter(Delivery.objects.values_list("status", flat=True))


@pytest.fixture
def readers(settings):
    settings.DIGEST_BATCH_SIZE = 50
    make_article()
    return [make_subscriber(f"reader{n:02d}@example.com").email for n in range(12)]


@pytest.mark.django_db
def test_a_message_the_server_never_confirmed_is_recorded_sent_not_sent_again(
    smtp_server, readers, fault_table, admin_client
):
    smtp_server.inject_faults(drop_after_data_for=["reader03@example.com"])
    started = time.monotonic()

    by_hand.send_edition_in_process(built_edition(MONDAY).pk)
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)  # the sweep's resume: nothing to do
    fault_table("SMTP hangs up after DATA, before its 250 (default)", readers, started)

    # The server had it, and said nothing: one copy, and the rest of the
    # batch went out over a new connection.
    assert collections.Counter(smtp_server.recipients()) == {email: 1 for email in readers}
    assert statuses() == {Delivery.Status.SENT: len(readers)}
    row = Delivery.objects.get(subscriber__email="reader03@example.com")
    assert row.last_error == Delivery.UNCONFIRMED_NOTE
    assert Delivery.objects.exclude(pk=row.pk).filter(last_error="").count() == len(readers) - 1
    # The send report says so.
    page = admin_client.get(f"/admin/newsletter/edition/{row.edition_id}/desk/").content.decode()
    assert "1 of the sent went out but the connection dropped" in page


@pytest.mark.django_db
def test_with_resend_unconfirmed_the_reader_gets_at_most_two_copies(
    smtp_server, readers, settings, fault_table
):
    settings.DIGEST_RESEND_UNCONFIRMED = True
    smtp_server.inject_faults(drop_after_data_for=["reader03@example.com"])
    edition = built_edition(MONDAY)

    by_hand.send_edition_in_process(edition.pk)
    row = Delivery.objects.get(subscriber__email="reader03@example.com")
    assert row.status == Delivery.Status.QUEUED  # one more try, later
    started = time.monotonic()
    for _ in range(3):  # the sweep coming back, however often
        by_hand.send_edition_in_process(edition.pk)
    fault_table("SMTP hangs up after DATA, with DIGEST_RESEND_UNCONFIRMED", readers, started)

    counts = collections.Counter(smtp_server.recipients())
    assert counts.pop("reader03@example.com") == 2
    assert counts == {email: 1 for email in readers if email != "reader03@example.com"}
    row.refresh_from_db()
    assert (row.status, row.last_error) == (Delivery.Status.SENT, Delivery.UNCONFIRMED_NOTE)


@pytest.mark.django_db(transaction=True)
def test_terminated_database_connections_mid_batch_repeat_nobody(
    smtp_server, readers, settings, fault_table
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL to terminate a backend (CI's second pass runs it)")
    settings.DIGEST_CHECKPOINT_EVERY = 3
    edition = built_edition(MONDAY)
    by_hand.send_edition(edition)
    ((first_id, last_id),) = batches.batch_ranges(edition)
    smtp_server.inject_faults(delay_data_seconds=0.05)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (sender_pid,) = cursor.fetchone()
    settings_dict = connection.settings_dict
    terminated = threading.Event()
    terminated_at: list[float] = []

    def terminate_when_half_sent() -> None:
        deadline = time.monotonic() + 30
        while len(smtp_server.received()) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        with psycopg.connect(
            host=settings_dict["HOST"],
            port=settings_dict["PORT"] or 5432,
            user=settings_dict["USER"],
            dbname=settings_dict["NAME"],
            autocommit=True,
        ) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [sender_pid])
        terminated_at.append(time.monotonic())
        terminated.set()

    killer = threading.Thread(target=terminate_when_half_sent)
    killer.start()
    report = batches.send_batch(edition.pk, first_id, last_id)
    killer.join()

    assert terminated.is_set()
    fault_table("the sender's PostgreSQL backend terminated mid-batch", readers, terminated_at[0])
    assert report.sent == len(readers)
    assert collections.Counter(smtp_server.recipients()) == {email: 1 for email in readers}
    assert statuses() == {Delivery.Status.SENT: len(readers)}


@pytest.mark.django_db(transaction=True)  # outside any transaction, as a sender is
def test_a_write_is_retried_on_a_new_connection_and_given_up_in_time(monkeypatch):
    monkeypatch.setattr(leases, "RETRY_FIRST_PAUSE", 0.01)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return "written"

    assert leases.durably(flaky, "testing") == "written"
    assert len(calls) == 3

    def always_down() -> None:
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(leases, "RETRY_FOR", leases.RETRY_FOR / 600)  # 0.1 s
    with pytest.raises(OperationalError):
        leases.durably(always_down, "testing")
    # Inside a transaction the caller's whole transaction is lost: no retry here.
    calls.clear()
    with pytest.raises(OperationalError), transaction.atomic():
        leases.durably(flaky, "testing")
    assert len(calls) == 1
