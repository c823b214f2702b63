"""The periodic reconciliation: a lost webhook cannot leave a reader wrongly in or out."""

import datetime

import pytest
from django.utils import timezone

from subscriptions import tasks
from subscriptions.models import Membership
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member

pytestmark = pytest.mark.django_db

Status = Membership.Status


def age(reader, **delta) -> None:
    past = timezone.now() - datetime.timedelta(**delta)
    Membership.objects.filter(subscriber=reader).update(created_at=past, updated_at=past)


@pytest.mark.faults
def test_a_checkout_whose_webhooks_were_lost_is_found(
    fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    reader = make_stripe_member(Status.INCOMPLETE, subscription_id=None)
    age(reader, hours=3)
    fake_stripe.set_subscription(stripe_objects.subscription("trialing"))

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.reconcile_memberships() == 1

    membership = Membership.objects.get(subscriber=reader)
    assert membership.status == Status.TRIALING
    assert membership.stripe_subscription_id == "sub_1SbTrial0000000000000001"
    assert reader.is_entitled
    assert len(mailoutbox) == 1  # the welcome the webhook would have sent
    [listing] = fake_stripe.requests("GET", "/v1/subscriptions")
    assert (listing["customer"], listing["status"]) == ("cus_T4kQ8Zr2mXv1Ab", "all")


@pytest.mark.faults
def test_a_trial_past_its_end_is_checked_and_a_lost_cancellation_applied(fake_stripe):
    reader = make_stripe_member(Status.TRIALING)
    Membership.objects.filter(subscriber=reader).update(
        trial_end=timezone.now() - datetime.timedelta(hours=2)
    )
    age(reader, days=20)
    fake_stripe.set_subscription(stripe_objects.subscription("canceled"))

    tasks.reconcile_memberships()

    assert Membership.objects.get(subscriber=reader).status == Status.CANCELED
    assert not reader.is_entitled


def test_quiet_healthy_and_long_ended_memberships_are_left_alone(fake_stripe):
    healthy = make_stripe_member(Status.ACTIVE, customer_id="cus_a", subscription_id="sub_a")
    Membership.objects.filter(subscriber=healthy).update(
        current_period_end=timezone.now() + datetime.timedelta(days=100)
    )
    age(healthy, days=20)
    ended = make_stripe_member(Status.CANCELED, customer_id="cus_b", subscription_id="sub_b")
    age(ended, days=20)

    assert tasks.reconcile_memberships() == 0
    assert len(fake_stripe.mock.calls) == 0


@pytest.mark.faults
def test_one_failure_does_not_stop_the_others(fake_stripe):
    first = make_stripe_member(Status.PAST_DUE, customer_id="cus_a", subscription_id="sub_a")
    second = make_stripe_member(Status.PAST_DUE, customer_id="cus_b", subscription_id="sub_b")
    fake_stripe.set_subscription(
        stripe_objects.subscription("active", id="sub_b", customer="cus_b")
    )
    # sub_a is unknown at Stripe: a 404 for that one.

    assert tasks.reconcile_memberships() == 1
    assert Membership.objects.get(subscriber=first).status == Status.PAST_DUE
    assert Membership.objects.get(subscriber=second).status == Status.ACTIVE


def test_reconciliation_runs_every_hour():
    from config.celery import app

    entry = app.conf.beat_schedule["reconcile-memberships"]
    assert entry["task"] == tasks.reconcile_memberships.name


def test_a_check_that_finds_nothing_new_does_not_make_the_membership_recent_again(fake_stripe):
    from subscriptions.actions import stripe_sync

    reader = make_stripe_member(Membership.Status.ACTIVE)
    membership = reader.membership
    fake_stripe.set_subscription(stripe_objects.subscription("active"))
    stripe_sync.do_reconcile_membership(membership.pk)  # mirrors Stripe's state
    long_ago = timezone.now() - stripe_sync.RECONCILE_RECENT * 3
    Membership.objects.filter(pk=membership.pk).update(updated_at=long_ago)

    stripe_sync.do_reconcile_membership(membership.pk)  # finds nothing new

    membership.refresh_from_db()
    assert membership.updated_at == long_ago
    assert membership.stripe_synced_at is not None and membership.stripe_synced_at > long_ago
    assert membership.pk not in stripe_sync.memberships_to_reconcile()
