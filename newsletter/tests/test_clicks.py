"""CLICK_TRACKING: which stories readers open from their digest, privacy first."""

import datetime
import re
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

from delivery import by_hand
from newsletter import clicks
from newsletter.models import Click
from newsletter.tests.factories import built_edition, make_article
from subscriptions import preferences
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

TRACKED = re.compile(r"https?://[^\s\"<>]+/r/[^\s\"<>]+")


@pytest.fixture(autouse=True)
def own_click_windows(settings):
    # Counted clicks are remembered in the default cache, which outlives the
    # test under a clock that never moves on.
    default = {**django_settings.CACHES["default"], "KEY_PREFIX": uuid.uuid4().hex}
    settings.CACHES = {**django_settings.CACHES, "default": default}


@pytest.fixture
def story():
    return make_article(title="Harbour reopens")


def digest_links(smtp_server, email: str) -> list[str]:
    (mail,) = [m for m in smtp_server.received() if m.rcpt_tos == [email]]
    return TRACKED.findall(mail.text)


def test_off_by_default_the_digest_links_straight_to_the_story(smtp_server, story):
    make_subscriber("ada@example.com")
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)

    (mail,) = smtp_server.received()
    assert "/r/" not in mail.text and "/r/" not in mail.html
    assert f"/articles/{story.slug}/" in mail.text


def test_a_tracked_link_counts_the_click_and_leads_to_the_story(
    client, smtp_server, story, settings
):
    settings.CLICK_TRACKING = True
    make_subscriber("ada@example.com")
    edition = built_edition(MONDAY)
    by_hand.send_edition_in_process(edition.pk)
    (link,) = set(digest_links(smtp_server, "ada@example.com"))
    path = link.removeprefix(settings.SITE_URL)
    assert "r=" not in path.replace("token=", "")  # who clicked is not recorded

    assert client.head(path).status_code == 302  # a link checker: not counted
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith(f"{story.get_absolute_url()}?token=")
    click = Click.objects.get()
    assert (click.edition, click.article, click.subscriber) == (edition, story, None)
    # Altered, it is not ours.
    assert client.get(path.replace("/r/", "/r/9")).status_code == 404
    # With tracking turned off later, the old digest's link still works, uncounted.
    settings.CLICK_TRACKING = False
    assert client.get(path)["Location"].startswith(f"{story.get_absolute_url()}?token=")
    assert Click.objects.count() == 1


def test_reader_clicks_are_recorded_only_when_disclosed(client, smtp_server, story, settings):
    settings.CLICK_TRACKING = True
    settings.TRACK_READER_CLICKS = True
    ada = make_subscriber("ada@example.com")
    make_subscriber("bob@example.com")
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)

    (ada_link,) = set(digest_links(smtp_server, "ada@example.com"))
    (bob_link,) = set(digest_links(smtp_server, "bob@example.com"))
    assert ada_link != bob_link  # each reader's own signed id
    client.get(ada_link.removeprefix(settings.SITE_URL))
    assert Click.objects.get().subscriber == ada
    # A forged reader id counts the click, for nobody.
    client.get(re.sub(r"&r=.*", "&r=1:forged", bob_link.removeprefix(settings.SITE_URL)))
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


class RecordingCache:
    """The cache the clicks are counted on, with the keys it was asked to add."""

    def __init__(self, cache) -> None:
        self.cache = cache
        self.keys: list[str] = []

    def add(self, key: str, *args, **kwargs) -> bool:
        self.keys.append(key)
        return self.cache.add(key, *args, **kwargs)


def test_a_reader_opening_a_story_again_and_again_counts_once_per_window(
    client, smtp_server, story, settings, clock
):
    settings.CLICK_TRACKING = True
    settings.TRACK_READER_CLICKS = True
    make_subscriber("ada@example.com")
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)
    (link,) = set(digest_links(smtp_server, "ada@example.com"))
    path = link.removeprefix(settings.SITE_URL)

    # 09:00 UTC, the start of a window: reloaded a hundred times, from two networks.
    for number in range(100):
        response = client.get(path, REMOTE_ADDR=f"198.51.100.{number % 2 + 1}")
        assert response["Location"].startswith(f"{story.get_absolute_url()}?token=")  # every time
    clock.shift(datetime.timedelta(seconds=clicks.COUNT_WINDOW_SECONDS - 1))
    client.get(path)
    assert Click.objects.count() == 1

    clock.shift(datetime.timedelta(seconds=1))  # the next window
    client.get(path)
    client.get(path)
    assert Click.objects.count() == 2


def test_without_reader_tracking_each_client_address_counts_once_per_window(
    client, smtp_server, story, settings, clock, monkeypatch
):
    settings.CLICK_TRACKING = True
    make_subscriber("ada@example.com")
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)
    (link,) = set(digest_links(smtp_server, "ada@example.com"))
    path = link.removeprefix(settings.SITE_URL)
    recording = RecordingCache(cache)
    monkeypatch.setattr(clicks, "cache", recording)

    for _ in range(20):
        assert client.get(path, REMOTE_ADDR="198.51.100.7").status_code == 302
    # A forged reader id is no way around it: the click is nobody's, counted by address.
    client.get(f"{path}?r=1:forged", REMOTE_ADDR="198.51.100.7")
    assert Click.objects.count() == 1
    client.get(path, REMOTE_ADDR="203.0.113.9")
    assert Click.objects.count() == 2
    clock.shift(datetime.timedelta(seconds=clicks.COUNT_WINDOW_SECONDS))
    client.get(path, REMOTE_ADDR="198.51.100.7")
    assert Click.objects.count() == 3
    # What the cache remembers is a hash, never the address.
    assert recording.keys
    assert not any("198.51.100" in key or "203.0.113" in key for key in recording.keys)


def test_two_readers_opening_the_same_story_count_twice(client, smtp_server, story, settings):
    settings.CLICK_TRACKING = True
    settings.TRACK_READER_CLICKS = True
    ada = make_subscriber("ada@example.com")
    bob = make_subscriber("bob@example.com")
    by_hand.send_edition_in_process(built_edition(MONDAY).pk)

    for email in ("ada@example.com", "bob@example.com"):
        (link,) = set(digest_links(smtp_server, email))
        for _ in range(3):
            client.get(link.removeprefix(settings.SITE_URL))  # the same client, too

    assert sorted(Click.objects.values_list("subscriber", flat=True)) == [ada.pk, bob.pk]
