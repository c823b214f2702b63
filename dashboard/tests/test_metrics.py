"""Each figure, asserted exactly over a known history.

The clock is the suite's MONDAY_BEFORE_SEND (Monday 30 November 2026, 04:00
in New York). The history moves the clock to each event and saves the
membership as stripe_sync would, so dashboard.history records it as it
would in production.
"""

import datetime

import pytest

from dashboard import metrics
from dashboard.metrics import Cohort, DateRange, EditionSend, Flow, Tally, ZoneFigures
from dashboard.models import MembershipChange
from dashboard.sends import do_snapshot_sends
from delivery.models import Delivery
from newsletter.models import Edition
from subscriptions.models import Membership, Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND

UTC = datetime.UTC
NOW = MONDAY_BEFORE_SEND
Status = Membership.Status
FULL, DISCOUNTED = 4600, 3680


def at(month, day, hour=15):
    return datetime.datetime(2026, month, day, hour, tzinfo=UTC)


def join(clock, when, status, **fields):
    clock.move_to(when)
    return make_subscriber(membership=status, **fields)


def change(clock, subscriber, when, status, amount=None, **fields):
    clock.move_to(when)
    membership = Membership.objects.get(subscriber=subscriber)
    membership.status = status
    if amount is not None:
        membership.amount = amount
    for name, value in fields.items():
        setattr(membership, name, value)
    membership.save()


@pytest.fixture
def history(db, clock):
    """Readers who trialled, paid, lapsed and came back."""
    # Dan: a trial in October, paid, and his card failed three days ago.
    dan = join(clock, at(10, 5), Status.TRIALING)
    change(clock, dan, at(10, 19), Status.ACTIVE, FULL)
    change(clock, dan, at(11, 27), Status.PAST_DUE, past_due_since=at(11, 27))
    # Alice: trial, paid, cancelled, came back (no second trial) and got a discount.
    alice = join(clock, at(11, 2), Status.TRIALING)
    change(clock, alice, at(11, 16), Status.ACTIVE, FULL)
    change(clock, alice, at(11, 20), Status.CANCELED)
    change(clock, alice, at(11, 25), Status.ACTIVE)
    change(clock, alice, at(11, 26), Status.ACTIVE, DISCOUNTED)
    # Bob: a trial that ended without paying.
    bob = join(clock, at(11, 3), Status.TRIALING)
    change(clock, bob, at(11, 17), Status.CANCELED)
    # Fay paid at once, and later unsubscribed from the emails (she still pays).
    join(
        clock,
        at(11, 10),
        Status.ACTIVE,
        membership_fields={"amount": FULL},
        email_status=Subscriber.EmailStatus.UNSUBSCRIBED,
    )
    # Carol started her trial late on the 24th in New York (the 25th in UTC).
    join(clock, at(11, 25, hour=3), Status.TRIALING)
    # Gus is trialing, but his address bounced.
    join(clock, at(11, 24), Status.TRIALING, email_status=Subscriber.EmailStatus.BOUNCED)
    # Eve reads for free; Hal never finished signing up.
    join(clock, at(11, 1), Status.INCOMPLETE, membership_fields={"complimentary": True})
    join(clock, at(11, 1), None)
    clock.move_to(NOW)


def test_the_history_is_recorded_from_saves(history):
    alice = Membership.objects.get(changes__at=at(11, 2))
    assert list(alice.changes.values_list("from_status", "to_status", "from_amount", "amount")) == [
        ("", "trialing", None, None),
        ("trialing", "active", None, FULL),
        ("active", "canceled", FULL, FULL),
        ("canceled", "active", FULL, FULL),
        ("active", "active", FULL, DISCOUNTED),
    ]


def test_a_save_that_changes_neither_status_nor_amount_records_nothing(history):
    before = MembershipChange.objects.count()
    membership = Membership.objects.get(changes__at=at(11, 2))
    membership.cancel_at_period_end = True
    membership.save()
    membership.save(update_fields=["stripe_synced_at"])
    assert MembershipChange.objects.count() == before


def test_readers_by_state_now(history):
    assert metrics.readers_by_state(NOW) == [
        Tally("Trialing", 1),  # Carol (Gus bounced)
        Tally("Active", 1),  # Alice (Fay unsubscribed)
        Tally("Past due, in grace", 1),  # Dan
        Tally("Complimentary", 1),  # Eve
        Tally("Canceled", 1),  # Bob
        Tally("Unsubscribed", 1),  # Fay
        Tally("Bounced or complained", 1),  # Gus
        Tally("Other", 1),  # Hal
    ]


def test_past_due_beyond_the_grace_period_is_other(history):
    later = NOW + datetime.timedelta(days=8)
    counts = {tally.label: tally.count for tally in metrics.readers_by_state(later)}
    assert counts["Past due, in grace"] == 0
    assert counts["Other"] == 2


def test_new_trials_per_day_in_the_newsroom_days(history):
    trials = metrics.new_trials_per_day(DateRange.last_days(30, NOW), NOW)
    assert len(trials) == 30
    assert trials[0].label == "2026-11-01" and trials[-1].label == "2026-11-30"
    assert {t.label: t.count for t in trials if t.count} == {
        "2026-11-02": 1,  # Alice
        "2026-11-03": 1,  # Bob
        "2026-11-24": 2,  # Gus, and Carol at 22:00 New York time
    }


def test_conversion_by_signup_week(history):
    cohorts = metrics.conversion_by_cohort(DateRange.last_days(30, NOW), NOW)
    d = datetime.date
    assert cohorts == [
        Cohort(d(2026, 10, 26), 0, 0, 0),
        Cohort(d(2026, 11, 2), trials=2, converted=1, still_trialing=0),  # Alice paid, Bob not
        Cohort(d(2026, 11, 9), 0, 0, 0),
        Cohort(d(2026, 11, 16), 0, 0, 0),
        Cohort(d(2026, 11, 23), trials=2, converted=0, still_trialing=2),  # Carol, Gus
        Cohort(d(2026, 11, 30), 0, 0, 0),
    ]
    assert cohorts[1].rate == 0.5 and cohorts[1].ended_unpaid == 1
    assert cohorts[4].rate is None  # no trial of that week has ended yet


def test_conversion_as_it_stood_earlier(history):
    # On 10 November Alice and Bob were both still in their trials.
    then = at(11, 10)
    cohorts = metrics.conversion_by_cohort(DateRange.last_days(30, then), then)
    week = next(c for c in cohorts if c.week == datetime.date(2026, 11, 2))
    assert week == Cohort(datetime.date(2026, 11, 2), trials=2, converted=0, still_trialing=2)


def test_churn_per_month(history):
    d = datetime.date
    assert metrics.churn_per_month(DateRange.last_days(90, NOW), NOW) == [
        Flow(d(2026, 9, 1), paying_at_start=0, started=0, stopped=0, arr_cents_at_end=0),
        Flow(d(2026, 10, 1), paying_at_start=0, started=1, stopped=0, arr_cents_at_end=FULL),
        # Fay and Alice started (Alice twice), Alice stopped once; Dan's
        # failed card is not churn yet.
        Flow(
            d(2026, 11, 1),
            paying_at_start=1,
            started=3,
            stopped=1,
            arr_cents_at_end=FULL + FULL + DISCOUNTED,
        ),
    ]
    assert metrics.churn_per_month(DateRange.last_days(30, NOW), NOW)[0].churn_rate == 1.0


def test_revenue_from_the_mirrored_amounts_agrees_with_the_history(history):
    revenue = metrics.revenue(NOW)
    assert revenue.paying == 3  # Alice, Dan (past due) and Fay
    assert revenue.arr_cents == FULL + FULL + DISCOUNTED == 12880
    assert revenue.mrr_cents == 1073  # 12,880 / 12 = 1,073.33
    last_month = metrics.churn_per_month(DateRange.last_days(30, NOW), NOW)[-1]
    assert last_month.arr_cents_at_end == revenue.arr_cents


def test_net_growth_per_week(history):
    d = datetime.date
    flows = metrics.net_growth_per_week(DateRange.last_days(30, NOW), NOW)
    assert [(f.period, f.paying_at_start, f.started, f.stopped, f.net) for f in flows] == [
        (d(2026, 10, 26), 1, 0, 0, 0),
        (d(2026, 11, 2), 1, 0, 0, 0),
        (d(2026, 11, 9), 1, 1, 0, 1),  # Fay
        (d(2026, 11, 16), 2, 1, 1, 0),  # Alice paid, then cancelled
        (d(2026, 11, 23), 2, 1, 0, 1),  # Alice came back
        (d(2026, 11, 30), 3, 0, 0, 0),
    ]


@pytest.fixture
def sends(db):
    """Two sent editions and a held one; deliveries in two zones."""
    friday = Edition.objects.create(
        date=datetime.date(2026, 11, 27),
        cutoff=at(11, 27, 10),
        status=Edition.Status.SENT,
        send_started_at=at(11, 27, 11),
    )
    thursday = Edition.objects.create(
        date=datetime.date(2026, 11, 26),
        cutoff=at(11, 26, 10),
        status=Edition.Status.SENT,
        send_started_at=at(11, 26, 11),
    )
    Edition.objects.create(
        date=datetime.date(2026, 11, 30), cutoff=at(11, 30, 10), status=Edition.Status.HELD
    )
    due = at(11, 27, 11)
    minute = datetime.timedelta(minutes=1)
    unsubscribed = Subscriber.EmailStatus.UNSUBSCRIBED
    complained = Subscriber.EmailStatus.COMPLAINED
    rows = [
        # (zone, status, minutes after the zone's moment it went, the reader's
        # later email status and when)
        ("Asia/Tokyo", Delivery.Status.SENT, 2, unsubscribed, at(11, 28, 10)),  # within 48 h
        ("Asia/Tokyo", Delivery.Status.SENT, 7, unsubscribed, at(11, 29, 12)),  # 49 h: not counted
        ("Asia/Tokyo", Delivery.Status.FAILED, None, unsubscribed, at(11, 27, 12)),  # not got it
        ("America/New_York", Delivery.Status.SENT, 1, complained, at(11, 27, 20)),  # counts
        ("America/New_York", Delivery.Status.BOUNCED, 3, None, None),
        ("America/New_York", Delivery.Status.MISSED, None, None, None),
    ]
    for zone, status, after, email_status, changed_at in rows:
        reader = make_subscriber(
            membership=Membership.Status.ACTIVE,
            email_status=email_status or Subscriber.EmailStatus.ACTIVE,
            email_status_changed_at=changed_at,
        )
        sent_at = None if after is None else due + after * minute
        Delivery.objects.create(
            edition=friday,
            subscriber=reader,
            status=status,
            time_zone=zone,
            scheduled_for=due,
            sent_at=sent_at,
        )
    Delivery.objects.create(
        edition=thursday,
        subscriber=make_subscriber(),
        status=Delivery.Status.SENT,
        time_zone="Asia/Tokyo",
        sent_at=at(11, 26, 11),
    )


def test_edition_sends_oldest_first_and_unsent_editions_left_out(sends):
    do_snapshot_sends(NOW)
    d = datetime.date
    assert metrics.edition_sends(DateRange.last_days(30, NOW), NOW) == [
        EditionSend(
            d(2026, 11, 26),
            delivered=1,
            failed=0,
            bounced=0,
            missed=0,
            complaints=0,
            unsubscribes=0,
        ),
        EditionSend(
            d(2026, 11, 27),
            delivered=3,
            failed=1,
            bounced=1,
            missed=1,
            complaints=1,
            unsubscribes=1,
        ),
    ]


def test_edition_sends_keeps_the_last_ones(sends):
    do_snapshot_sends(NOW)
    [only] = metrics.edition_sends(DateRange.last_days(30, NOW), NOW, limit=1)
    assert only.date == datetime.date(2026, 11, 27)


def test_an_unsubscribe_after_now_is_not_counted_yet(sends):
    then = at(11, 28, 9)  # before the reader unsubscribed on the 28th at 10:00
    do_snapshot_sends(then)
    [_, friday] = metrics.edition_sends(DateRange.last_days(30, then), then)
    assert friday.unsubscribes == 0


def test_zone_sends_over_the_editions(sends):
    do_snapshot_sends(NOW)
    minutes = datetime.timedelta(minutes=1)
    assert metrics.zone_sends(DateRange.last_days(30, NOW), NOW) == [
        # Tokyo: Friday's send took 7 minutes; Thursday's went by hand (no
        # scheduled moment), at the moment the send began: 0 minutes.
        ZoneFigures(
            "Asia/Tokyo",
            deliveries=4,
            delivered=3,
            failed=1,
            bounced=0,
            missed=0,
            median_duration=0 * minutes,
            longest_duration=7 * minutes,
        ),
        # The bounced digest was handed over 3 minutes in: the send took that long.
        ZoneFigures(
            "America/New_York",
            deliveries=3,
            delivered=1,
            failed=0,
            bounced=1,
            missed=1,
            median_duration=3 * minutes,
            longest_duration=3 * minutes,
        ),
    ]
    assert metrics.zone_sends(DateRange.last_days(30, NOW), NOW, limit=1)[0].deliveries == 3


def test_date_ranges_are_newsroom_days():
    dates = DateRange.last_days(30, NOW)  # 04:00 in New York, 09:00 UTC
    assert (dates.first, dates.last) == (datetime.date(2026, 11, 1), datetime.date(2026, 11, 30))
    assert dates.start == datetime.datetime(2026, 11, 1, 4, tzinfo=UTC)  # EDT until 1 Nov 2am
    assert dates.end == datetime.datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert dates.months() == [datetime.date(2026, 11, 1)]
    assert len(DateRange.last_days(365, NOW).months()) == 12  # Dec 2025 to Nov 2026


def test_a_change_at_the_moment_asked_about_counts_once(history, clock):
    month = DateRange.last_days(30, NOW)
    [before] = metrics.churn_per_month(month, NOW)
    join(clock, NOW, Status.ACTIVE, membership_fields={"amount": FULL})
    [after] = metrics.churn_per_month(month, NOW)
    assert after.paying_at_start == before.paying_at_start
    assert after.started == before.started + 1
    assert (
        after.arr_cents_at_end == before.arr_cents_at_end + FULL == metrics.revenue(NOW).arr_cents
    )
