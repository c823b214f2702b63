"""Who gets the digest: one definition, SubscriberQuerySet.entitled()."""

import datetime

import pytest
from django.utils import timezone

from subscriptions.models import Membership, Subscriber
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

Status = Membership.Status


def entitled(reader: Subscriber) -> bool:
    in_queryset = Subscriber.objects.entitled().filter(pk=reader.pk).exists()
    assert reader.is_entitled is in_queryset
    return in_queryset


@pytest.mark.parametrize(
    ("days_past_due", "expected"), [(0, True), (6, True), (8, False), (None, False)]
)
def test_past_due_is_entitled_within_the_grace_period(days_past_due, expected, settings):
    settings.PAST_DUE_GRACE_DAYS = 7
    since = None
    if days_past_due is not None:
        since = timezone.now() - datetime.timedelta(days=days_past_due)
    reader = make_subscriber(
        membership=Status.PAST_DUE, membership_fields={"past_due_since": since}
    )
    assert entitled(reader) is expected


def test_the_grace_period_is_a_setting(settings):
    reader = make_subscriber(
        membership=Status.PAST_DUE,
        membership_fields={"past_due_since": timezone.now() - datetime.timedelta(days=2)},
    )
    settings.PAST_DUE_GRACE_DAYS = 3
    assert entitled(reader)
    settings.PAST_DUE_GRACE_DAYS = 1
    assert not entitled(reader)


@pytest.mark.parametrize(
    ("until", "expected"),
    [(None, True), (datetime.timedelta(days=30), True), (datetime.timedelta(days=-1), False)],
)
def test_complimentary_memberships_are_entitled_until_their_end(until, expected):
    end = timezone.now() + until if until is not None else None
    reader = make_subscriber(
        membership=Status.CANCELED,
        membership_fields={"complimentary": True, "complimentary_until": end},
    )
    assert entitled(reader) is expected
    assert reader.membership.is_comped is expected


def test_complimentary_does_not_override_an_unsubscribe():
    reader = make_subscriber(
        membership=Status.INCOMPLETE,
        membership_fields={"complimentary": True},
        email_status=Subscriber.EmailStatus.UNSUBSCRIBED,
    )
    assert not entitled(reader)


def test_staff_grant_a_complimentary_membership_in_the_admin(admin_client):
    reader = make_subscriber("friend@example.com", membership=None)
    response = admin_client.post(
        f"/admin/subscriptions/subscriber/{reader.pk}/change/",
        {
            "email": reader.email,
            "name": "",
            "time_zone": reader.time_zone,
            "email_status": "active",
            "send_time": "06:00:00",
            "pause_until": "",
            "all_sections": "on",
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "digest_format": "full",
            "membership-TOTAL_FORMS": "1",
            "membership-INITIAL_FORMS": "0",
            "membership-MIN_NUM_FORMS": "0",
            "membership-MAX_NUM_FORMS": "1",
            "membership-0-complimentary": "on",
            "membership-0-complimentary_until_0": "",
            "membership-0-complimentary_until_1": "",
            "emails-TOTAL_FORMS": "0",
            "emails-INITIAL_FORMS": "0",
            "emails-MIN_NUM_FORMS": "0",
            "emails-MAX_NUM_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert entitled(reader)
