"""Gift subscriptions: paid once at Checkout, delivered on the date, redeemed once, a year.

Stripe is faked at the HTTP level with recorded shapes; checkout.session.completed
is signed and posted to the real endpoint; emails go through a real SMTP server.
"""

import datetime
import re

import pytest
from django.test import Client

from subscriptions import tasks
from subscriptions.actions.gifts import do_redeem_gift
from subscriptions.models import GiftCode, Membership, ReaderEmail, Subscriber
from subscriptions.tests.factories import make_stripe_member

# 11:00 UTC is 06:00 in the newsroom (America/New_York): its date is 3 December.
pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-03 11:00Z")]

REDEEM = re.compile(r"http://127\.0\.0\.1:8000(/gift/redeem/[^/\s]+/)")


def buy(client, fake_stripe, deliver_on="2026-12-03", **form):
    data = {
        "buyer_email": "giver@example.com",
        "recipient_email": "lucky@example.com",
        "deliver_on": deliver_on,
        **form,
    }
    response = client.post("/gift/", data)
    assert response.status_code == 303, response.content
    [session] = fake_stripe.sessions.values()
    return response, session


def subject(mail) -> str:
    return " ".join(str(mail.message["Subject"]).split())


def test_a_gift_paid_once_delivered_today_and_redeemed_once(
    client, fake_stripe, webhooks, smtp_server, django_capture_on_commit_callbacks
):
    response, session = buy(client, fake_stripe)
    assert response["Location"] == session["url"]
    [params] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert params["mode"] == "payment"
    assert params["line_items[0][price_data][unit_amount]"] == "4600"
    assert params["customer_email"] == "giver@example.com"
    assert "subscription_data[trial_period_days]" not in params

    fake_stripe.pay_session(session["id"])
    # The completion comes twice, and the buyer's return page runs it too.
    webhooks.post("checkout.session.completed", session, event_id="evt_gift")
    webhooks.post("checkout.session.completed", session, event_id="evt_gift")
    webhooks.post("checkout.session.completed", session)
    with django_capture_on_commit_callbacks(execute=True):
        thanks = client.get(f"/gift/thanks/?session_id={session['id']}")
    assert "Your gift is paid" in thanks.content.decode()

    gift = GiftCode.objects.get()
    assert gift.status == GiftCode.Status.DELIVERED and gift.amount == 4600
    receipt, delivery = smtp_server.received()
    assert receipt.rcpt_tos == ["giver@example.com"]
    assert subject(receipt) == "Your gift of The Morning Briefing: receipt"
    assert "You will not be charged again" in receipt.text
    assert "Thursday 3 December 2026 (America/New_York)" in receipt.text
    assert delivery.rcpt_tos == ["lucky@example.com"]
    assert "no card, nothing to pay" in delivery.text.lower()
    found = REDEEM.search(delivery.text)
    assert found is not None
    path = found.group(1)

    # A scanner's GET uses nothing up; the button does.
    recipient = Client()
    page = recipient.get(path, follow=True)
    assert "Start my year" in page.content.decode()
    assert GiftCode.objects.get().redeemed_at is None
    done = recipient.post("/gift/redeem/", {"name": "Lucky", "time_zone": "Europe/Rome"})
    assert done.status_code == 303 and done["Location"] == "/account/"

    reader = Subscriber.objects.get(email="lucky@example.com")
    membership = reader.membership
    assert membership.complimentary
    assert membership.complimentary_until == datetime.datetime(2027, 12, 3, 11, tzinfo=datetime.UTC)
    assert membership.stripe_customer_id is None  # no card, no Stripe customer
    assert reader.is_entitled and reader.time_zone == "Europe/Rome"
    assert recipient.get("/account/").status_code == 200  # signed in by the emailed link

    # Single use: the same link again, in another browser, starts nothing.
    again = Client().get(path, follow=True)
    assert "already been used" in again.content.decode()
    assert len(smtp_server.received()) == 2


def test_a_gift_waits_for_its_delivery_date(
    client, fake_stripe, webhooks, smtp_server, clock, django_capture_on_commit_callbacks
):
    _, session = buy(client, fake_stripe, deliver_on="2026-12-25")
    fake_stripe.pay_session(session["id"])
    webhooks.post("checkout.session.completed", session)
    assert [m.rcpt_tos for m in smtp_server.received()] == [["giver@example.com"]]

    clock.move_to("2026-12-25 04:00Z")  # still the 24th in New York
    with django_capture_on_commit_callbacks(execute=True):
        tasks.billing_lifecycle()
    assert len(smtp_server.received()) == 1
    clock.move_to("2026-12-25 05:30Z")
    with django_capture_on_commit_callbacks(execute=True):
        tasks.billing_lifecycle()
        tasks.billing_lifecycle()
    assert [m.rcpt_tos for m in smtp_server.received()][1:] == [["lucky@example.com"]]


def test_an_unpaid_or_forged_gift_is_never_delivered(client, fake_stripe, webhooks, smtp_server):
    _, session = buy(client, fake_stripe)
    # An event claiming completion of a session Stripe says is unpaid.
    response = webhooks.post("checkout.session.completed", {**session, "status": "complete"})
    assert response.status_code == 200
    assert GiftCode.objects.get().status == GiftCode.Status.AWAITING_PAYMENT
    assert Client().get("/gift/redeem/not-a-token/").status_code == 400
    assert smtp_server.received() == []


def test_the_gift_form_refuses_bad_dates_and_writes_nothing(client, fake_stripe):
    for date, message in [
        ("2026-12-02", "Choose today or a later date."),
        ("2028-01-01", "Choose a date within a year."),
    ]:
        page = client.post(
            "/gift/",
            {
                "buyer_email": "a@example.com",
                "recipient_email": "b@example.com",
                "deliver_on": date,
            },
        )
        assert page.status_code == 400 and message in page.content.decode()
    assert GiftCode.objects.count() == 0
    assert len(fake_stripe.mock.calls) == 0


def delivered_gift() -> GiftCode:
    return GiftCode.objects.create(
        code="c0de",
        buyer_email="giver@example.com",
        recipient_email="lucky@example.com",
        deliver_on=datetime.date(2026, 12, 3),
        amount=4600,
        status=GiftCode.Status.DELIVERED,
    )


def test_a_paying_member_is_asked_to_cancel_first(fake_stripe):
    make_stripe_member(Membership.Status.ACTIVE, email="lucky@example.com")
    gift = delivered_gift()
    with pytest.raises(Exception, match="Cancel its renewal"):
        do_redeem_gift(gift.pk, name="", time_zone="UTC")
    assert GiftCode.objects.get().redeemed_at is None


def test_reminder_before_the_end_then_the_offer_to_continue_each_once(
    smtp_server, clock, django_capture_on_commit_callbacks, fake_stripe
):
    gift = delivered_gift()
    reader = do_redeem_gift(gift.pk, name="", time_zone="UTC")
    assert reader.membership.complimentary_until is not None

    def run():
        with django_capture_on_commit_callbacks(execute=True):
            tasks.billing_lifecycle()

    clock.move_to("2027-11-17 12:00Z")  # 16 days before the end: nothing yet
    run()
    clock.move_to("2027-11-18 12:00Z")
    run()
    run()
    clock.move_to("2027-12-03 11:30Z")
    run()
    run()

    kinds = list(ReaderEmail.objects.order_by("pk").values_list("kind", flat=True))
    assert kinds == [ReaderEmail.Kind.GIFT_ENDING, ReaderEmail.Kind.GIFT_ENDED]
    ending, ended = smtp_server.received()
    assert "ends on 3 December" in subject(ending) and "Nothing will be charged" in ending.text
    assert not Subscriber.objects.get(pk=reader.pk).is_entitled
    link = next(w for w in ended.text.split() if "/billing/rejoin/" in w)
    back = Client().get(link.removeprefix("http://127.0.0.1:8000"))
    assert back.status_code == 303  # to Checkout, at $46, without a trial
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert "subscription_data[trial_period_days]" not in session


def test_gift_codes_are_shown_in_the_admin_and_cannot_be_made_there(admin_client):
    gift = delivered_gift()
    page = admin_client.get("/admin/subscriptions/giftcode/").content.decode()
    assert gift.code in page and "lucky@example.com" in page
    assert admin_client.get("/admin/subscriptions/giftcode/add/").status_code == 403
    assert admin_client.get(f"/admin/subscriptions/giftcode/{gift.pk}/change/").status_code == 200


def test_deleting_the_recipients_account_keeps_no_address_of_theirs_on_the_gift(
    fake_stripe, client
):
    from subscriptions.actions.reader_data import do_delete_reader

    gift = delivered_gift()
    reader = do_redeem_gift(gift.pk, name="", time_zone="UTC")
    do_delete_reader(reader)
    gift.refresh_from_db()
    assert gift.recipient_email == "deleted-reader@invalid" and gift.redeemed_by is None
    assert gift.buyer_email == "giver@example.com"


def test_the_thanks_page_asks_stripe_only_for_this_browsers_checkout(client, fake_stripe):
    _, session = buy(client, fake_stripe)
    fake_stripe.pay_session(session["id"])
    calls = len(fake_stripe.mock.calls)
    stranger = Client().get(f"/gift/thanks/?session_id={session['id']}")
    assert (
        stranger.status_code == 200
        and "as soon as the payment is confirmed" in stranger.content.decode()
    )
    assert len(fake_stripe.mock.calls) == calls
    assert GiftCode.objects.get().status == GiftCode.Status.AWAITING_PAYMENT


@pytest.mark.django_db
def test_every_page_links_to_the_gift_page(client):
    page = client.get("/archive/").content.decode()
    assert '<a href="/gift/">Give a year</a>' in page
