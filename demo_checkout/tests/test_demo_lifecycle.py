"""The keyless demo walks the paid year: renewal notice, cancel and keep, the end, the way back."""

import pytest

from subscriptions.models import Membership, StripeEvent
from subscriptions.tests.signup_flow import link_in

pytestmark = pytest.mark.django_db

FORM = {"email": "newcomer@example.com", "name": "Newcomer", "time_zone": "Europe/Lisbon"}


def subject(mail) -> str:
    return " ".join(str(mail.message["Subject"]).split())


def test_renewal_notice_cancel_keep_pause_end_and_come_back_without_a_trial(
    demo, client, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/subscribe/", FORM)
    with django_capture_on_commit_callbacks(execute=True):
        checkout_url = client.post(
            link_in(smtp_server.received()[-1]), {"name": "Newcomer", "time_zone": "UTC"}
        )["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(checkout_url, {"action": "pay"})
    portal = "/test-checkout/portal/"
    for action in ("end_trial", "renewal_upcoming"):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(portal, {"action": action})
    notice = smtp_server.received()[-1]
    assert "renews on" in subject(notice) and "$46 will be charged" in subject(notice)

    # Cancel, then keep, from the account page: the local Stripe's answer is mirrored.
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post("/account/renewal/", {"renewal": "cancel"}, follow=True)
    assert "The morning briefing continues until" in page.content.decode()
    assert Membership.objects.get().cancel_at_period_end
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/renewal/", {"renewal": "keep"})
    assert not Membership.objects.get().cancel_at_period_end

    # Pause billing and the briefing; the test portal ends the pause as Stripe would.
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post("/account/pause-billing/", {"months": "2"}, follow=True)
    assert "no briefing and no charge" in page.content.decode()
    assert not Membership.objects.get().subscriber.is_entitled
    with django_capture_on_commit_callbacks(execute=True):
        client.post(portal, {"action": "pause_ends"})
    assert Membership.objects.get().pause_resumes_at is None
    assert Membership.objects.get().subscriber.is_entitled

    with django_capture_on_commit_callbacks(execute=True):
        client.post(portal, {"action": "cancel_now"})
    ended = smtp_server.received()[-1]
    assert "has ended" in subject(ended)
    link = next(w for w in ended.text.split() if "/billing/rejoin/" in w)

    back = client.get(link.removeprefix("http://127.0.0.1:8000"))
    assert back.status_code == 303
    checkout = client.get(back["Location"].removeprefix("http://127.0.0.1:8000"))
    assert checkout.status_code == 200
    assert checkout.context["trial_days"] == 0
    assert not StripeEvent.objects.filter(status=StripeEvent.Status.FAILED).exists()


def test_a_gift_through_the_local_checkout(
    demo, client, smtp_server, django_capture_on_commit_callbacks
):
    response = client.post(
        "/gift/",
        {
            "buyer_email": "giver@example.com",
            "recipient_email": "lucky@example.com",
            "deliver_on": "2026-11-30",
        },
    )
    checkout_url = response["Location"].removeprefix("http://127.0.0.1:8000")
    page = client.get(checkout_url).content.decode()
    assert "Confirm your gift" in page and "never billed again" in page
    with django_capture_on_commit_callbacks(execute=True):
        paid = client.post(checkout_url, {"action": "pay"})
    assert "/gift/thanks/?session_id=cs_test_local_" in paid["Location"]
    assert [m.rcpt_tos for m in smtp_server.received()] == [
        ["giver@example.com"],
        ["lucky@example.com"],
    ]
