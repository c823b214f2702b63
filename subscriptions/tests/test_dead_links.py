"""A link whose work is done says so when opened, not only after its button is pressed."""

import re

import pytest
from django.test import Client

from subscriptions import signin
from subscriptions.models import Subscriber
from subscriptions.sessions import SESSION_KEY
from subscriptions.tests.factories import make_subscriber
from subscriptions.unsubscribe import unsubscribe_url
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def test_a_used_sign_in_link_says_so_when_opened_again():
    reader = make_subscriber("ada@example.com")
    link = f"/signin/{signin.make_token(reader)}/"
    first = Client()
    first.get(link, follow=True)
    assert first.post("/signin/confirm/").status_code == 303

    # Another browser (or a private window) opens the same link again.
    page = Client().get(link, follow=True)

    assert page.status_code == 410
    text = page.content.decode()
    assert "This link was used already" in text
    assert "Sign me in" not in text
    assert "Send me a new sign-in link" in text


def test_a_used_link_opened_in_the_browser_that_used_it_goes_to_the_account():
    reader = make_subscriber("ada@example.com")
    link = f"/signin/{signin.make_token(reader)}/"
    browser = Client()
    browser.get(link, follow=True)
    browser.post("/signin/confirm/")

    page = browser.get(link, follow=True)

    assert page.redirect_chain[-1][0] == "/account/"
    assert "That link was used already: you are signed in." in page.content.decode()
    assert browser.session[SESSION_KEY] == reader.pk


def test_a_fresh_sign_in_link_still_shows_the_button():
    reader = make_subscriber("ada@example.com")
    page = Client().get(f"/signin/{signin.make_token(reader)}/", follow=True)
    assert page.status_code == 200
    assert "Sign me in" in page.content.decode()


def test_a_used_signup_link_says_so_when_opened_again():
    url = signin.signup_url("new@example.com", "", "Europe/Paris", None)
    path = re.sub(r"^https?://[^/]+", "", url)
    first = Client()
    assert "Start my free" in first.get(path, follow=True).content.decode()
    first.post("/subscribe/continue/", {"name": "", "time_zone": "Europe/Paris"})
    assert Subscriber.objects.filter(email="new@example.com").exists()

    page = Client().get(path, follow=True)

    assert page.status_code == 410
    assert "This link was used already" in page.content.decode()


def test_an_unsubscribe_link_opened_after_unsubscribing_offers_to_resubscribe():
    reader = make_subscriber("ada@example.com")
    url = unsubscribe_url(reader)
    Client().post(url)
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.UNSUBSCRIBED

    page = Client().get(url).content.decode()

    assert "You're already unsubscribed" in page
    assert "Stop the morning emails?" not in page
    assert 'value="resubscribe"' in page


def test_an_unsubscribe_link_of_a_bounced_address_says_nothing_goes_to_it():
    reader = make_subscriber("ada@example.com", email_status=Subscriber.EmailStatus.BOUNCED)

    page = Client().get(unsubscribe_url(reader)).content.decode()

    assert "We no longer send to this address" in page
    assert "Stop the morning emails?" not in page
