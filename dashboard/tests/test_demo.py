"""seed_demo's year of history: the dashboard has answers on demo data, and the demo still works."""

import datetime

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from dashboard import demo, metrics
from dashboard.metrics import DateRange
from dashboard.models import MembershipChange
from delivery.models import Delivery
from newsletter.editions import build_edition
from newsletter.models import Article, Edition
from subscriptions.models import Membership, Subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = pytest.mark.django_db
Status = Membership.Status
NOW = MONDAY_BEFORE_SEND


@pytest.fixture(scope="module")
def seeded_once(django_db_setup, django_db_blocker):
    """The year of history is seeded once for the module (it takes seconds), inside a
    transaction rolled back after the module's last test; each test's own transaction is a
    savepoint within it, so what one test writes the next does not see."""
    with django_db_blocker.unblock(), transaction.atomic(), override_settings(DEBUG=True):
        with time_machine.travel(NOW, tick=False):  # the tests' own clock (conftest's `clock`)
            call_command("seed_demo")
        yield
        transaction.set_rollback(True)


@pytest.fixture
def seeded(seeded_once, settings):
    settings.DEBUG = True


def counts():
    return (
        Subscriber.objects.count(),
        MembershipChange.objects.count(),
        Edition.objects.count(),
        Delivery.objects.count(),
        Article.objects.count(),
    )


def test_a_second_run_adds_nothing(seeded):
    before = counts()
    call_command("seed_demo")
    assert counts() == before
    assert Subscriber.objects.filter(email__endswith=f"@{demo.HISTORY_DOMAIN}").count() == (
        demo.READERS
    )


def test_the_dashboard_answers_its_questions_on_demo_data(seeded):
    year = DateRange.last_days(365, NOW)
    states = {t.label: t.count for t in metrics.readers_by_state(NOW)}
    for state in ["Trialing", "Active", "Past due, in grace", "Complimentary", "Canceled"]:
        assert states[state] > 0, state
    assert states["Unsubscribed"] > 0 and states["Bounced or complained"] > 0
    assert sum(t.count for t in metrics.new_trials_per_day(DateRange.last_days(30, NOW), NOW)) > 0
    cohorts = metrics.conversion_by_cohort(DateRange.last_days(90, NOW), NOW)
    assert any(c.converted for c in cohorts) and any(c.ended_unpaid for c in cohorts)
    assert any(c.still_trialing for c in cohorts)
    months = metrics.churn_per_month(year, NOW)
    assert len(months) == 12 and sum(m.stopped for m in months) > 0
    assert metrics.revenue(NOW).arr_cents == months[-1].arr_cents_at_end > 0
    assert sum(w.net for w in metrics.net_growth_per_week(year, NOW)) > 0
    sends = metrics.edition_sends(year, NOW)
    assert len(sends) == demo.EDITIONS
    assert sum(s.unsubscribes for s in sends) > 0 and sum(s.failed for s in sends) > 0
    assert sum(s.missed for s in sends) > 0
    zones = metrics.zone_sends(year, NOW)
    assert len(zones) == len(demo.ZONES)
    assert all(z.median_duration and z.longest_duration for z in zones)


def test_one_reader_trialled_paid_lapsed_and_came_back(seeded):
    rosa = Membership.objects.get(subscriber__email__startswith="rosa.000@")
    path = list(rosa.changes.values_list("to_status", flat=True))
    assert path == [Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.CANCELED, Status.ACTIVE]
    assert rosa.status == Status.ACTIVE


def test_history_readers_got_no_digest_after_they_left(seeded):
    gone = Subscriber.objects.filter(email__endswith=f"@{demo.HISTORY_DOMAIN}").exclude(
        email_status=Subscriber.EmailStatus.ACTIVE
    )
    assert gone.exists()
    for reader in gone:
        assert not reader.deliveries.filter(
            scheduled_for__gt=reader.email_status_changed_at
        ).exists()


def test_the_next_edition_still_carries_the_demo_articles(seeded):
    today = NOW.date()
    assert not Edition.objects.filter(date__gte=today - datetime.timedelta(days=1)).exists()
    edition = build_edition(today, NOW)
    assert edition is not None
    slugs = set(edition.ordered_articles().values_list("slug", flat=True))
    assert {"river-treaty-signed", "ports-automation", "library-late-fees"} <= slugs
    assert not any(slug.startswith("archive-") for slug in slugs)
