"""CLICK_TRACKING: which stories readers open from their digest, privacy first."""

import re

import pytest

from newsletter import sending
from newsletter.models import Click
from newsletter.tests.factories import built_edition, make_article
from subscriptions import preferences
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

TRACKED = re.compile(r"https?://[^\s\"<>]+/r/[^\s\"<>]+")


@pytest.fixture
def story():
    return make_article(title="Harbour reopens")


def digest_links(smtp_server, email: str) -> list[str]:
    (mail,) = [m for m in smtp_server.received() if m.rcpt_tos == [email]]
    return TRACKED.findall(mail.text)


def test_off_by_default_the_digest_links_straight_to_the_story(smtp_server, story):
    make_subscriber("ada@example.com")
    sending.send_edition_now(built_edition(MONDAY).pk)

    (mail,) = smtp_server.received()
    assert "/r/" not in mail.text and "/r/" not in mail.html
    assert f"/articles/{story.slug}/" in mail.text


def test_a_tracked_link_counts_the_click_and_leads_to_the_story(
    client, smtp_server, story, settings
):
    settings.CLICK_TRACKING = True
    make_subscriber("ada@example.com")
    edition = built_edition(MONDAY)
    sending.send_edition_now(edition.pk)
    (link,) = set(digest_links(smtp_server, "ada@example.com"))
    path = link.removeprefix(settings.SITE_URL)
    assert "?r=" not in path  # who clicked is not recorded

    assert client.head(path).status_code == 302  # a link checker: not counted
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == story.get_absolute_url()
    click = Click.objects.get()
    assert (click.edition, click.article, click.subscriber) == (edition, story, None)
    # Altered, it is not ours.
    assert client.get(path.replace("/r/", "/r/9")).status_code == 404
    # With tracking turned off later, the old digest's link still works, uncounted.
    settings.CLICK_TRACKING = False
    assert client.get(path)["Location"] == story.get_absolute_url()
    assert Click.objects.count() == 1


def test_reader_clicks_are_recorded_only_when_disclosed(client, smtp_server, story, settings):
    settings.CLICK_TRACKING = True
    settings.TRACK_READER_CLICKS = True
    ada = make_subscriber("ada@example.com")
    make_subscriber("bob@example.com")
    sending.send_edition_now(built_edition(MONDAY).pk)

    (ada_link,) = set(digest_links(smtp_server, "ada@example.com"))
    (bob_link,) = set(digest_links(smtp_server, "bob@example.com"))
    assert ada_link != bob_link  # each reader's own signed id
    client.get(ada_link.removeprefix(settings.SITE_URL))
    assert Click.objects.get().subscriber == ada
    # A forged reader id counts the click, for nobody.
    client.get(re.sub(r"\?r=.*", "?r=1:forged", bob_link.removeprefix(settings.SITE_URL)))
    assert Click.objects.filter(subscriber=None).count() == 1

    page = client.get(f"/preferences/{preferences.make_token(ada)}/").content.decode()
    assert "When you open a story from the digest, we record that you did" in page
    settings.TRACK_READER_CLICKS = False
    page = client.get(f"/preferences/{preferences.make_token(ada)}/").content.decode()
    assert "we record that you did" not in page


def test_a_readers_id_in_a_tracked_link_is_kept_out_of_the_logs():
    from config.logfilters import redact

    line = redact('"GET /r/12.3:abc/?r=42:sIgNaTuRe HTTP/1.1" 302')
    assert "42:sIgNaTuRe" not in line and "/r/12.3:abc/?r=[redacted]" in line
