import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from subscriptions.models import Membership, Subscriber
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db


def test_email_is_unique_without_regard_to_case():
    make_subscriber("Reader@Example.com")
    with pytest.raises(IntegrityError):
        make_subscriber("reader@example.COM")


def test_the_domain_is_stored_in_lower_case():
    assert make_subscriber("Reader@Example.COM").email == "Reader@example.com"


def test_validation_reports_a_duplicate_address_clearly():
    make_subscriber("reader@example.com")
    duplicate = Subscriber(email="READER@example.com")
    with pytest.raises(ValidationError, match="already exists"):
        duplicate.full_clean()


def test_time_zone_must_be_known():
    reader = Subscriber(email="tz@example.com", time_zone="Atlantis/Capital")
    with pytest.raises(ValidationError, match="not a known time zone"):
        reader.full_clean()


@pytest.mark.parametrize(
    ("status", "entitled"),
    [
        (Membership.Status.TRIALING, True),
        (Membership.Status.ACTIVE, True),
        # past_due with no start of the grace period on record: not entitled
        # (test_entitlement covers the grace period itself).
        (Membership.Status.PAST_DUE, False),
        (Membership.Status.CANCELED, False),
        (Membership.Status.UNPAID, False),
        (Membership.Status.INCOMPLETE, False),
        (Membership.Status.INCOMPLETE_EXPIRED, False),
        (Membership.Status.PAUSED, False),
    ],
)
def test_entitlement_follows_the_membership_status(status, entitled):
    reader = make_subscriber(membership=status)
    assert (reader in Subscriber.objects.entitled()) is entitled
    assert reader.membership.is_entitled is entitled


@pytest.mark.parametrize(
    "email_status",
    [
        Subscriber.EmailStatus.UNSUBSCRIBED,
        Subscriber.EmailStatus.BOUNCED,
        Subscriber.EmailStatus.COMPLAINED,
    ],
)
def test_undeliverable_addresses_are_never_entitled(email_status):
    reader = make_subscriber(email_status=email_status)
    assert reader not in Subscriber.objects.entitled()


def test_a_reader_without_membership_is_not_entitled():
    assert make_subscriber(membership=None) not in Subscriber.objects.entitled()
