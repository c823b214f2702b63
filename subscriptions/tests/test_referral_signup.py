"""Referral links: the landing page, and the referral carried from it to Stripe Checkout."""

import re

import pytest
from django.test import Client

from subscriptions import preferences, referrals
from subscriptions.actions.referrals import do_record_referral
from subscriptions.referral_models import Reason, Referral, ReferralDecision, ReferralPreference
from subscriptions.sessions import EPOCH_KEY, SESSION_KEY
from subscriptions.tests.factories import make_stripe_member, make_subscriber
from subscriptions.tests.signup_flow import link_in

pytestmark = pytest.mark.django_db

FORM = {"email": "bea@example.com", "name": "Bea", "time_zone": "Europe/Paris"}


def invite_path(referrer) -> str:
    return f"/invite/{referrals.make_token(referrer)}/"


@pytest.fixture
def referrer():
    reader = make_stripe_member(
        "active", email="ada.lovelace@gmail.com", name="Ada Lovelace", customer_id="cus_Referrer1"
    )
    reader.last_signed_in_at = reader.created_at  # she stands behind her name
    reader.save()
    return reader


def test_the_landing_page_names_the_referrer_by_first_name_only_when_allowed(client, referrer):
    anonymous = client.get(invite_path(referrer))
    assert anonymous.status_code == 200
    page = anonymous.content.decode()
    assert "A reader invited you" in page
    assert "Ada invited" not in page and "Lovelace" not in page
    assert "30-day trial" in page and "instead of our usual 14 days" in page
    assert f'name="referral" value="{referrals.make_token(referrer)}"' in page

    ReferralPreference.objects.create(subscriber=referrer, show_first_name=True)
    page = client.get(invite_path(referrer)).content.decode()
    assert "Ada invited you" in page
    assert "Lovelace" not in page and "gmail" not in page


def test_a_forged_or_altered_link_names_nobody_and_still_offers_the_usual_trial(client, referrer):
    token = referrals.make_token(referrer)
    for forged in (f"{referrer.pk}-AAAAAAAAAAAAAAAAAAAAAA", token[:-1] + "x", f"{referrer.pk + 1}"):
        answer = client.get(f"/invite/{forged}/")
        assert answer.status_code == 404
        page = answer.content.decode()
        assert "doesn't work" in page
        assert 'name="referral"' not in page
        assert "14-day trial" in page
    # Another page's signed link (the preferences one) is not a referral link.
    assert client.get(f"/invite/{preferences.make_token(referrer)}/").status_code == 404


def sign_up_referred(client, mailoutbox, capture, token: str, form: dict = FORM):
    with capture(execute=True):
        answer = client.post("/subscribe/", {**form, "referral": token})
    assert answer.status_code == 200, answer.content
    mail = mailoutbox[-1]
    link = link_in(mail)
    continue_page = client.get(link, follow=True)
    with capture(execute=True):
        checkout = client.post(link, {"name": form["name"], "time_zone": form["time_zone"]})
    return mail, continue_page, checkout


def test_a_referred_visitor_gets_the_longer_trial_through_checkout(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks, referrer
):
    mail, continue_page, checkout = sign_up_referred(
        client, mailoutbox, django_capture_on_commit_callbacks, referrals.make_token(referrer)
    )

    assert "30-day" in mail.body
    assert "free 30-day trial" in continue_page.content.decode()
    assert checkout.status_code == 303
    referral = Referral.objects.get()
    assert (referral.referrer, referral.referred.email) == (referrer, "bea@example.com")
    assert referral.eligible and referral.trial_days == 30
    [decision] = referral.decisions.all()
    assert decision.outcome == ReferralDecision.Outcome.TRIAL_OFFERED
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session["subscription_data[trial_period_days]"] == "30"
    # Stripe's copy of the subscription says who brought the reader.
    assert session["subscription_data[metadata][referred_by]"] == str(referrer.pk)


def test_without_a_referral_trial_a_referral_still_counts(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks, referrer, settings
):
    settings.REFERRAL_TRIAL_DAYS = 0
    sign_up_referred(
        client, mailoutbox, django_capture_on_commit_callbacks, referrals.make_token(referrer)
    )
    referral = Referral.objects.get()
    assert referral.eligible and referral.trial_days == 0
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert "subscription_data[trial_period_days]" not in session


def test_the_referral_survives_opening_the_email_in_another_browser(
    fake_stripe, mailoutbox, django_capture_on_commit_callbacks, referrer
):
    visitor, phone = Client(), Client()
    with django_capture_on_commit_callbacks(execute=True):
        visitor.post("/subscribe/", {**FORM, "referral": referrals.make_token(referrer)})
    link = link_in(mailoutbox[-1])
    with django_capture_on_commit_callbacks(execute=True):
        phone.post(link, {"name": "Bea", "time_zone": "Europe/Paris"})
    assert Referral.objects.get().referrer == referrer
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session["subscription_data[trial_period_days]"] == "30"


def test_a_forged_referral_in_the_form_is_dropped_and_the_usual_trial_applies(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks, referrer
):
    mail, _, _ = sign_up_referred(
        client, mailoutbox, django_capture_on_commit_callbacks, f"{referrer.pk}-forged"
    )
    assert "14-day" in mail.body
    assert not Referral.objects.exists()
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session["subscription_data[trial_period_days]"] == "14"


@pytest.mark.parametrize(
    "address",
    ["Ada.Lovelace+news@gmail.com", "adalovelace@googlemail.com", "a.da.lovelace@gmail.com"],
)
def test_referring_oneself_under_another_spelling_is_refused_with_its_reason(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks, referrer, address
):
    mail, _, _ = sign_up_referred(
        client,
        mailoutbox,
        django_capture_on_commit_callbacks,
        referrals.make_token(referrer),
        {**FORM, "email": address},
    )
    assert "14-day" in mail.body
    referral = Referral.objects.get()
    assert not referral.eligible
    assert referral.refused_reason == Reason.SELF_ADDRESS
    assert referral.decisions.get().outcome == ReferralDecision.Outcome.REFUSED
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert session["subscription_data[trial_period_days]"] == "14"


def test_an_address_that_had_a_trial_before_the_referral_gets_no_trial_and_no_referral_reward(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks, referrer
):
    # Bea had a membership (and its trial) that ended; a referral link now
    # must not give her a second trial.
    make_stripe_member(
        "canceled",
        email="bea@example.com",
        customer_id="cus_Bea",
        subscription_id="sub_BeaOld",
    )
    fake_stripe.set_subscription({"id": "sub_BeaOld", "customer": "cus_Bea", "created": 1})
    mail, _, _ = sign_up_referred(
        client, mailoutbox, django_capture_on_commit_callbacks, referrals.make_token(referrer)
    )
    assert "No free trial" in mail.body or "no free trial" in mail.body.lower()
    referral = Referral.objects.get()
    assert not referral.eligible
    assert referral.refused_reason == Reason.HAD_TRIAL
    [session] = fake_stripe.requests("POST", "/v1/checkout/sessions")
    assert "subscription_data[trial_period_days]" not in session


def test_a_reader_has_one_referrer_the_first(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks, referrer
):
    other = make_subscriber("carl@example.com")
    bea = make_subscriber("bea@example.com", membership=None)
    first = do_record_referral(bea, referrals.make_token(referrer))
    second = do_record_referral(bea, referrals.make_token(other))
    assert first == second
    assert Referral.objects.get().referrer == referrer


def signed_in(reader) -> Client:
    client = Client()
    session = client.session
    session[SESSION_KEY] = reader.pk
    session[EPOCH_KEY] = reader.session_epoch
    session.save()
    return client


def test_the_account_page_shows_the_link_the_choice_and_the_counts(referrer):
    client = signed_in(referrer)
    html = client.get("/account/").content.decode()
    assert referrals.referral_url(referrer) in html
    assert re.search(r"Signed up through your link</dt><dd>0<", html)
    assert 'id="show-first-name">' in html  # unchecked: off until the reader says so

    answer = client.post("/account/referrals/", {"show_first_name": "on"})
    assert answer.status_code == 303
    assert referrals.shows_first_name(referrer)
    assert 'id="show-first-name" checked' in client.get("/account/").content.decode()
    client.post("/account/referrals/", {})
    assert not referrals.shows_first_name(referrer)


def test_the_choice_is_the_signed_in_readers_own(client, referrer):
    assert client.post("/account/referrals/", {"show_first_name": "on"}).status_code == 302
    assert not ReferralPreference.objects.exists()
