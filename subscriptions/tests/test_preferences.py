"""/preferences/<token>/: a reader's digest settings from the signed link in every email."""

import datetime
import re

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client

from newsletter.tests.factories import make_article
from subscriptions import preferences, unsubscribe
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber

pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-01T12:00:00+00:00")]

SETTINGS = {
    "time_zone": "Asia/Tokyo",
    "send_time": "07:30",
    "pause_until": "",
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "format": "full",
    "sections": "all",
}


@pytest.fixture
def reader() -> Subscriber:
    return make_subscriber("ada@example.com", time_zone="Europe/London")


def url(reader: Subscriber) -> str:
    return f"/preferences/{preferences.make_token(reader)}/"


def test_the_page_shows_the_readers_settings_and_next_digest_in_their_zone(client, reader):
    response = client.get(url(reader))

    assert response.status_code == 200
    # The origin only, never the token; the form's posts keep their real Origin.
    assert response["Referrer-Policy"] == "strict-origin"
    page = response.content.decode()
    assert "ada@example.com" in page
    # Tuesday noon in London: Wednesday 06:00 there.
    assert "Wednesday 2 December at 06:00</strong>, Europe/London time" in page
    # A choice of real zones, not a text box; the reader's own selected.
    assert '<select name="time_zone"' in page
    assert '<option value="Europe/London" selected>London</option>' in page
    assert '<option value="07:30">07:30</option>' in page


def test_a_post_saves_zone_time_and_pause_with_csrf(reader):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(url(reader))
    token = page.context["csrf_token"]

    assert browser.post(url(reader), SETTINGS).status_code == 403  # no CSRF token: refused
    response = browser.post(
        url(reader), {**SETTINGS, "pause_until": "2026-12-14", "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 303
    reader.refresh_from_db()
    assert (reader.time_zone, reader.send_time, reader.pause_until) == (
        "Asia/Tokyo",
        datetime.time(7, 30),
        datetime.date(2026, 12, 14),
    )
    saved = browser.get(url(reader)).content.decode()
    assert "Paused until Monday 14 December." in saved
    assert "resumes on <strong>Monday 14 December 2026" in saved


def test_resume_now_ends_the_pause(client, reader):
    reader.pause_until = datetime.date(2026, 12, 20)
    reader.save()

    client.post(url(reader), {**SETTINGS, "time_zone": "Europe/London", "action": "resume"})

    reader.refresh_from_db()
    assert reader.pause_until is None


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("time_zone", "Mars/Olympus", "Mars/Olympus is not a known time zone."),
        ("send_time", "03:00", "Choose a morning time between 05:00 and 10:00."),
        ("pause_until", "2028-01-01", "Pause for a year at most"),
    ],
)
def test_bad_input_is_refused_clearly_and_changes_nothing(client, reader, field, value, error):
    response = client.post(url(reader), {**SETTINGS, field: value})

    assert response.status_code == 400
    assert error in response.content.decode()
    reader.refresh_from_db()
    assert (reader.time_zone, reader.send_time, reader.pause_until) == (
        "Europe/London",
        datetime.time(6),
        None,
    )


def test_a_time_staff_set_outside_the_usual_mornings_is_kept_when_saving(client, reader):
    reader.send_time = datetime.time(11, 15)
    reader.save()

    page = client.get(url(reader)).content.decode()
    assert '<option value="11:15" selected>11:15 (set for you)</option>' in page
    response = client.post(url(reader), {**SETTINGS, "send_time": "11:15"})

    assert response.status_code == 303
    reader.refresh_from_db()
    assert (reader.time_zone, reader.send_time) == ("Asia/Tokyo", datetime.time(11, 15))
    # Only their own: another odd time is still refused.
    assert client.post(url(reader), {**SETTINGS, "send_time": "11:45"}).status_code == 400


@pytest.mark.faults
def test_tokens_are_scoped_to_their_page_and_cannot_be_forged(client, reader):
    other = make_subscriber("bob@example.com")
    unsubscribe_token = unsubscribe.make_token(reader)
    preferences_token = preferences.make_token(reader)

    assert client.get(f"/preferences/{unsubscribe_token}/").status_code == 400
    assert client.post(f"/unsubscribe/{preferences_token}/").status_code == 400
    forged = f"{other.pk}-{preferences_token.partition('-')[2]}"  # Ada's signature, Bob's id
    assert client.post(f"/preferences/{forged}/", SETTINGS).status_code == 400
    altered = preferences_token[:-1] + ("A" if preferences_token[-1] != "A" else "B")
    assert client.get(f"/preferences/{altered}/").status_code == 400
    other.refresh_from_db()
    reader.refresh_from_db()
    assert other.time_zone == "America/New_York" and reader.email_status == "active"


def test_unsubscribe_and_resubscribe_from_the_page(client, reader):
    client.post(url(reader), {"action": "unsubscribe"})
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.UNSUBSCRIBED
    assert "Resubscribe" in client.get(url(reader)).content.decode()

    client.post(url(reader), {"action": "resubscribe"})
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_every_digest_links_the_page_and_the_link_works(client, smtp_server, reader):
    with time_machine.travel("2026-12-01T20:00:00+00:00", tick=False):
        make_article(title="Tuesday evening", published_ago=datetime.timedelta(0))
    at = "2026-12-02T06:01:00+00:00"
    with time_machine.travel(at, tick=False):
        call_command("send_digest", "--sync", "--at", at)

    [mail] = smtp_server.received()
    [link] = re.findall(
        r"Your digest settings \(sections, days, format, time zone, delivery time, pause\): (\S+)",
        mail.text,
    )
    assert f'href="{link}"' in mail.html
    path = link.removeprefix("http://127.0.0.1:8000")
    assert "ada@example.com" in client.get(path).content.decode()


def test_reader_emails_link_the_page(reader, mailoutbox, settings):
    from subscriptions import emails

    message = emails.sign_in_link(reader)

    assert preferences.preferences_url(reader) in message.body


def test_a_signup_form_without_a_time_zone_is_accepted_with_the_default(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    from subscriptions.tests.signup_flow import ask_to_subscribe, link_in

    # An embedded form on another site, or JavaScript off: no zone at all.
    response = ask_to_subscribe(
        client, {"email": "new@example.com"}, django_capture_on_commit_callbacks
    )

    assert response.status_code == 200  # "check your inbox", as for any address
    page = client.get(link_in(mailoutbox[-1]), follow=True).content.decode()
    assert '<option value="America/New_York" selected>New York</option>' in page


def test_the_signup_form_offers_a_choice_of_zones_preselected_by_the_browser(client):
    page = client.get("/").content.decode()

    assert '<select name="time_zone"' in page
    assert "data-detect-time-zone" in page
    # Without JavaScript, the newsroom's zone is the one selected.
    assert '<option value="America/New_York" selected>New York</option>' in page
