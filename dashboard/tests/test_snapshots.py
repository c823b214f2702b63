"""The snapshots the figures read give the same numbers as counting on the fly."""

import datetime

import pytest
from django.conf import settings

from dashboard import daily, metrics
from dashboard import sends as send_counts
from dashboard.metrics import DateRange
from dashboard.models import DailyFigures, EditionZoneSend, ReaderStates
from dashboard.tests.test_metrics import NOW, Status, at, change, join
from delivery.models import Delivery
from newsletter.models import Edition
from subscriptions.models import Subscriber

pytestmark = pytest.mark.django_db


def every_figure(now):
    year = DateRange.last_days(365, now)
    return (
        metrics.new_trials_per_day(year, now),
        metrics.conversion_by_cohort(year, now),
        metrics.churn_per_month(year, now),
        metrics.net_growth_per_week(year, now),
    )


def test_the_daily_snapshot_gives_the_figures_counted_on_the_fly(history):
    live = every_figure(NOW)
    assert not DailyFigures.objects.exists()
    counted = daily.do_snapshot_days(NOW)
    # From the first change (5 October) to yesterday, the 29th.
    assert counted == (datetime.date(2026, 11, 29) - datetime.date(2026, 10, 5)).days + 1
    assert every_figure(NOW) == live


def test_days_are_counted_once_and_recent_cohorts_again(history, clock):
    daily.do_snapshot_days(NOW)
    # Carol's trial (the 24th, newsroom time) converts a week later.
    later = NOW + datetime.timedelta(days=7)
    carol = Subscriber.objects.get(membership__changes__at=at(11, 25, 3))
    change(clock, carol, later - datetime.timedelta(hours=1), Status.ACTIVE, 4600)
    recounted = daily.do_snapshot_days(later)
    # The last COHORT_OPEN_DAYS days (the week since among them); not the three before.
    assert recounted == daily.COHORT_OPEN_DAYS
    [cohort] = [
        c
        for c in metrics.conversion_by_cohort(DateRange.last_days(30, later), later)
        if c.week == datetime.date(2026, 11, 23)
    ]
    assert cohort.converted == 1
    # A snapshot made after the moment asked about is not used for it.
    assert every_figure(NOW - datetime.timedelta(days=1)) == every_figure_live(
        NOW - datetime.timedelta(days=1)
    )


def every_figure_live(now):
    DailyFigures.objects.all().delete()
    return every_figure(now)


def test_the_send_counts_follow_an_edition_while_it_can_change(sends):
    assert send_counts.do_snapshot_sends(NOW) == 2  # the two sent; the held one has not gone out
    friday = Edition.objects.get(date=datetime.date(2026, 11, 27))
    assert set(
        EditionZoneSend.objects.filter(edition=friday).values_list("time_zone", "deliveries")
    ) == {("Asia/Tokyo", 3), ("America/New_York", 3)}
    # A reader of Friday's digest in New York unsubscribes on Saturday evening.
    delivery = friday.deliveries.get(time_zone="America/New_York", status=Delivery.Status.SENT)
    reader = delivery.subscriber
    reader.email_status = Subscriber.EmailStatus.UNSUBSCRIBED
    reader.email_status_changed_at = at(11, 28, 22)
    reader.save()
    send_counts.do_snapshot_sends(at(11, 28, 23))
    ny = EditionZoneSend.objects.get(edition=friday, time_zone="America/New_York")
    assert (ny.unsubscribes, ny.counted_at) == (1, at(11, 28, 23))
    # Days later the edition is closed: no more recounts, and its counts stay.
    assert friday.send_started_at is not None
    late = friday.send_started_at + send_counts.OPEN_FOR + datetime.timedelta(minutes=1)
    assert send_counts.do_snapshot_sends(late) == 0
    assert metrics.counted_at(DateRange.last_days(30, late), late) == at(11, 28, 23)


def test_an_edition_without_deliveries_is_not_counted_again_and_again():
    Edition.objects.create(
        date=datetime.date(2026, 11, 2),
        cutoff=at(11, 2, 10),
        status=Edition.Status.SENT,
        send_started_at=at(11, 2, 11),
    )
    assert send_counts.do_snapshot_sends(NOW) == 1
    # Counted as gone out to nobody, and not again: it is closed.
    assert EditionZoneSend.objects.get().deliveries == 0
    assert send_counts.do_snapshot_sends(NOW) == 0
    assert metrics.zone_sends(DateRange.last_days(30, NOW), NOW) == []
    [edition] = metrics.edition_sends(DateRange.last_days(30, NOW), NOW)
    assert edition.delivered == 0


def test_beat_runs_both_snapshots():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"dashboard.tasks.snapshot_sends", "dashboard.tasks.snapshot_days"} <= tasks


def test_the_tasks_count(history):
    from dashboard import tasks

    assert tasks.snapshot_days() > 0
    assert tasks.snapshot_sends() == 0  # no editions in this history


def test_readers_by_state_from_a_fresh_count_else_counted_now(history, clock):
    live = metrics.readers_by_state(NOW)
    assert daily.readers_now(NOW) == (live, NOW)
    daily.do_count_readers(NOW)
    # A reader joins after the count: the figure shows the count, and when.
    join(clock, NOW + datetime.timedelta(minutes=5), Status.TRIALING)
    later = NOW + datetime.timedelta(minutes=10)
    assert daily.readers_now(later) == (live, NOW)
    stale = NOW + daily.READERS_FRESH + datetime.timedelta(minutes=1)
    tallies, at = daily.readers_now(stale)
    assert at == stale and tallies == metrics.readers_by_state(stale) != live


def test_older_reader_counts_are_thinned_to_one_a_day(history):
    for minutes in range(0, 48 * 60, 15 * 4):  # two days, every hour
        daily.do_count_readers(NOW + datetime.timedelta(minutes=minutes))
    counted = list(ReaderStates.objects.order_by("counted_at").values_list("counted_at", flat=True))
    # The last day's 24 counts, and before that the last count of each newsroom day.
    assert len([at for at in counted if at >= NOW + datetime.timedelta(hours=23)]) == 25
    assert len(counted) < 30


def test_revenue_from_the_latest_count_and_the_changes_since(history, clock):
    daily.do_count_readers(NOW)
    before = metrics.revenue(NOW)
    # After the count: a reader starts paying, and another gets a discount.
    later = NOW + datetime.timedelta(minutes=10)
    joined = NOW + datetime.timedelta(minutes=5)
    join(clock, joined, Status.ACTIVE, membership_fields={"amount": 4600})
    alice = Subscriber.objects.get(membership__changes__at=at(11, 2))
    change(clock, alice, NOW + datetime.timedelta(minutes=6), Status.ACTIVE, 3000)
    assert daily.revenue_now(later) == metrics.revenue(later)
    assert daily.revenue_now(later).paying == before.paying + 1
    assert daily.revenue_now(later).arr_cents == before.arr_cents + 4600 - (3680 - 3000)
    # Without a fresh count, the memberships themselves.
    stale = NOW + daily.READERS_FRESH + datetime.timedelta(minutes=1)
    assert daily.revenue_now(stale) == metrics.revenue(stale)
