"""A large audience refreshes PostgreSQL's statistics, so each batch claims only its own rows."""

import pytest
from django.db import connection

from delivery import audience, by_hand
from delivery.models import Delivery
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.clock(MONDAY_BEFORE_SEND), pytest.mark.django_db(transaction=True)]


def estimated_rows() -> float:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Delivery._meta.db_table]
        )
        return cursor.fetchone()[0]


@pytest.fixture
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's planner statistics (CI's second pass runs it)")


def test_a_large_audience_is_analysed_and_claims_use_the_id_range(postgresql, monkeypatch):
    monkeypatch.setattr(audience, "STATISTICS_MIN_ROWS", 20)
    make_article()
    for n in range(40):
        make_subscriber(f"reader{n:02d}@example.com")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE newsletter_delivery")  # statistics of the empty table
    assert estimated_rows() <= 0

    edition = built_edition(MONDAY)
    by_hand.send_edition(edition)

    # The planner knows of the 40 queued rows (at 100,000 its claim plan
    # then reads a batch's id range instead of every queued row: the bench).
    assert estimated_rows() == 40


def analyses_during(call) -> list[str]:
    executed: list[str] = []

    def record(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        call()
    return [sql for sql in executed if sql.startswith("ANALYZE")]


def test_a_write_under_the_minimum_does_not_analyse(postgresql, monkeypatch):
    monkeypatch.setattr(audience, "STATISTICS_MIN_ROWS", 20)

    assert analyses_during(lambda: audience.refresh_statistics(19)) == []
    assert analyses_during(lambda: audience.refresh_statistics(20)) != []


def test_a_small_share_of_a_large_table_does_not_analyse(postgresql, monkeypatch):
    monkeypatch.setattr(audience, "STATISTICS_MIN_ROWS", 1)
    make_article()
    for n in range(40):
        make_subscriber(f"reader{n:02d}@example.com")
    by_hand.send_edition(built_edition(MONDAY))  # 40 rows, analysed
    assert estimated_rows() == 40

    assert analyses_during(lambda: audience.refresh_statistics(4)) == []  # a tenth: no
    assert analyses_during(lambda: audience.refresh_statistics(5)) != []
