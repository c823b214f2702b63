"""Reading on the site from the email: every story link of a digest opens the whole article.

Signed for the reader, expiring, articles only, never for a reader who is
no longer entitled, and it signs nobody in.
"""

import datetime
import re

import pytest
import time_machine
from django.test import Client

from delivery.emails import DigestTemplate
from newsletter import reading
from newsletter.tests.factories import built_edition, make_article
from subscriptions import preferences
from subscriptions.models import Membership
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

BODY = (
    "<p>The opening.</p>"
    + "<p>The story goes on at length.</p>" * 30
    + "<p>Only members read this far.</p>"
)
WHOLE = "Only members read this far."


@pytest.fixture
def story():
    return make_article(title="Treaty", slug="treaty", body=BODY)


def story_link(reader, settings) -> str:
    """The story's link as the reader's digest carries it (headlines: the body is not in it)."""
    edition = built_edition(MONDAY)
    message = DigestTemplate(
        edition, list(edition.ordered_articles()), digest_format="headlines"
    ).message_for(reader)
    [link] = set(re.findall(r'href="([^"]*/articles/treaty/[^"]*)"', message.html))
    assert link.startswith(settings.SITE_URL)
    return link.removeprefix(settings.SITE_URL).replace("&amp;", "&")


def test_a_story_link_opens_the_whole_article_without_signing_in(story, settings):
    reader = make_subscriber("ada@example.com")
    browser = Client()
    # The page cache holds the public page (the teaser): a token is never served from it.
    assert WHOLE not in Client().get("/articles/treaty/").content.decode()

    response = browser.get(story_link(reader, settings))

    assert response.status_code == 200
    assert WHOLE in response.content.decode()
    assert "sessionid" not in response.cookies  # nobody was signed in
    assert "private" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"
    # Without the token the same browser sees the teaser, as anyone does.
    assert WHOLE not in browser.get("/articles/treaty/").content.decode()
    # And the account stays closed to it.
    assert browser.get("/account/").status_code == 302


def test_the_link_opens_articles_only_never_the_readers_other_pages(story, settings):
    reader = make_subscriber("ada@example.com")
    token = story_link(reader, settings).partition("token=")[2]

    assert token and reading.reader_for(token) == reader
    assert Client().get(f"/preferences/{token}/").status_code == 400
    assert Client().get(f"/unsubscribe/{token}/").status_code in (400, 404)
    assert preferences.subscriber_for_token(token) is None
    # Nor does a preferences token open articles.
    other = preferences.make_token(reader)
    assert WHOLE not in Client().get(f"/articles/treaty/?token={other}").content.decode()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"status": Membership.Status.CANCELED}, id="membership ended"),
        pytest.param({"status": Membership.Status.UNPAID}, id="unpaid"),
    ],
)
def test_a_reader_no_longer_entitled_gets_the_teaser_and_why(story, settings, change):
    reader = make_subscriber("ada@example.com")
    link = story_link(reader, settings)
    Membership.objects.filter(subscriber=reader).update(**change)

    page = Client().get(link).content.decode()

    assert WHOLE not in page and "The opening." in page
    assert 'id="link-refused"' in page


def test_a_link_expires_after_a_month_and_a_forged_one_opens_nothing(story, settings):
    reader = make_subscriber("ada@example.com")
    link = story_link(reader, settings)

    later = MONDAY_BEFORE_SEND + datetime.timedelta(days=reading.READING_LINK_DAYS - 1)
    with time_machine.travel(later, tick=False):
        assert WHOLE in Client().get(link).content.decode()
    expired = MONDAY_BEFORE_SEND + datetime.timedelta(days=reading.READING_LINK_DAYS + 1)
    with time_machine.travel(expired, tick=False):
        assert WHOLE not in Client().get(link).content.decode()

    forged = link.replace(f"token={reader.pk}:", f"token={reader.pk + 1}:")
    other = make_subscriber("eve@example.com")
    assert forged != link and other.pk == reader.pk + 1
    assert WHOLE not in Client().get(forged).content.decode()


def test_through_the_click_counter_the_token_goes_on_to_the_story(story, settings):
    settings.CLICK_TRACKING = True
    reader = make_subscriber("ada@example.com")
    edition = built_edition(MONDAY)
    html = (
        DigestTemplate(edition, list(edition.ordered_articles()), digest_format="headlines")
        .message_for(reader)
        .html
    )
    [link] = set(re.findall(r'href="[^"]*(/r/[^"]*)"', html))

    answer = Client().get(link.replace("&amp;", "&"))

    assert answer.status_code == 302
    assert answer["Location"].startswith("/articles/treaty/?token=")
    assert WHOLE in Client().get(answer["Location"]).content.decode()
