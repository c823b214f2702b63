"""The referral figures: referrals per week, and the top referrers, for billing staff only."""

import csv
import datetime
import io

import pytest
from django.contrib.auth.models import Permission

from dashboard.metrics import DateRange
from dashboard.referrals import referrals_per_week, top_referrers
from newsletter.tests.factories import make_staff
from subscriptions.referral_models import Referral, ReferralReward
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = pytest.mark.django_db

NOW = MONDAY_BEFORE_SEND  # Monday 30 November 2026, 04:00 in New York


def referral(referrer, number: int, *, signed_up_days_ago: int, paid_days_ago: int | None = None):
    referred = make_subscriber(f"friend{referrer.pk}-{number}@example.com", membership=None)
    row = Referral.objects.create(referrer=referrer, referred=referred, trial_days=30)
    Referral.objects.filter(pk=row.pk).update(
        created_at=NOW - datetime.timedelta(days=signed_up_days_ago),
        first_paid_at=None
        if paid_days_ago is None
        else NOW - datetime.timedelta(days=paid_days_ago),
    )
    return row


@pytest.fixture
def referrers():
    ada = make_subscriber("ada@example.com")
    grace = make_subscriber("grace@example.com")
    referral(ada, 1, signed_up_days_ago=40, paid_days_ago=10)
    referral(ada, 2, signed_up_days_ago=8, paid_days_ago=1)
    referral(ada, 3, signed_up_days_ago=2)
    referral(grace, 1, signed_up_days_ago=3)
    referral(grace, 2, signed_up_days_ago=200, paid_days_ago=170)  # outside 90 days
    paid = Referral.objects.filter(referrer=ada, first_paid_at__isnull=False)
    for row in paid:
        assert row.first_paid_at is not None
        ReferralReward.objects.create(
            referrer=ada,
            referral=row,
            months=1,
            amount=383,
            stripe_customer_id="cus_Ada",
            status="credited",
            granted_at=row.first_paid_at,
        )
    return ada, grace


def test_referrals_are_counted_in_the_newsroom_weeks(referrers):
    weeks = {
        w.week: (w.signed_up, w.paying) for w in referrals_per_week(DateRange.last_days(90, NOW))
    }
    # A Sunday belongs to the week of the Monday before it (newsroom time).
    assert weeks[datetime.date(2026, 11, 23)] == (2, 1)  # Nov 27, 28 signed up; Sun 29 paid
    assert weeks[datetime.date(2026, 11, 16)] == (1, 1)  # Sun 22 signed up; Nov 20 paid
    assert weeks[datetime.date(2026, 10, 19)] == (1, 0)  # signed up Oct 21
    assert sum(s for s, _ in weeks.values()) == 4
    assert sum(p for _, p in weeks.values()) == 2


def test_the_top_referrers_are_ordered_by_paying_referrals(referrers):
    top = top_referrers(DateRange.last_days(90, NOW))
    assert [(t.email, t.signed_up, t.paying, t.months_earned) for t in top] == [
        ("ada@example.com", 3, 2, 2),
        ("grace@example.com", 1, 0, 0),
    ]


def test_billing_staff_see_the_figures_and_editors_do_not(client, referrers):
    publisher = make_staff("publisher", editor=False)
    publisher.user_permissions.add(Permission.objects.get(codename="view_membership"))
    client.force_login(publisher)
    html = client.get("/admin/dashboard/").content.decode()
    assert 'id="figure-referrals"' in html and 'id="figure-top-referrers"' in html
    assert "4 referred, 2 paying" in html
    rows = list(
        csv.reader(
            io.StringIO(client.get("/admin/dashboard/top-referrers/?format=csv").content.decode())
        )
    )
    assert rows[1] == ["ada@example.com", "3", "2", "2"]

    client.force_login(make_staff("editor"))
    assert client.get("/admin/dashboard/referrals/").status_code == 403
    assert client.get("/admin/dashboard/top-referrers/?format=csv").status_code == 403
