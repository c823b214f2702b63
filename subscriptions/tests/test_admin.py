"""The staff's views of readers, memberships, Stripe events and reader emails."""

import pytest

from subscriptions.models import Membership, ReaderEmail, StripeEvent
from subscriptions.tests.factories import make_stripe_member

pytestmark = pytest.mark.django_db


def test_admin_pages_render(admin_client):
    reader = make_stripe_member(Membership.Status.PAST_DUE)
    ReaderEmail.objects.create(subscriber=reader, kind=ReaderEmail.Kind.WELCOME, cause="sub_1")
    event = StripeEvent.objects.create(
        event_id="evt_1",
        type="invoice.payment_failed",
        payload={"id": "evt_1"},
        status=StripeEvent.Status.FAILED,
        error="Traceback: APIError",
    )
    pages = [
        "/admin/subscriptions/subscriber/",
        f"/admin/subscriptions/subscriber/{reader.pk}/change/",
        "/admin/subscriptions/membership/",
        f"/admin/subscriptions/membership/{reader.membership.pk}/change/",
        "/admin/subscriptions/stripeevent/?status__exact=failed",
        f"/admin/subscriptions/stripeevent/{event.pk}/change/",
        "/admin/subscriptions/readeremail/",
    ]
    for page in pages:
        assert admin_client.get(page).status_code == 200, page
    content = admin_client.get(f"/admin/subscriptions/stripeevent/{event.pk}/change/")
    assert "Traceback: APIError" in content.content.decode()
