"""The public pages from the page cache: the same HTML for every anonymous visitor,
with their own CSRF token and this response's nonce, never a signed-in page, and
never stale after a write (newsletter.pagecache)."""

import datetime
import re
import uuid

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from delivery import audience, recovery
from newsletter import pagecache
from newsletter.models import Article, Edition
from newsletter.tests import urls_page_cache
from newsletter.tests.factories import built_edition, make_article, make_section, make_staff
from subscriptions.models import Membership
from subscriptions.sessions import SESSION_KEY
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
NONCE = re.compile(r'<script nonce="([^"]+)"')
SECRET = "The ending only members read."


@pytest.fixture(autouse=True)
def own_rate_limits(settings):
    # The signup POSTs count against the client's IP in the default cache,
    # which outlives the test under a clock that never moves on.
    default = {**django_settings.CACHES["default"], "KEY_PREFIX": uuid.uuid4().hex}
    settings.CACHES = {**django_settings.CACHES, "default": default}


@pytest.fixture
def story():
    words = " ".join(f"word{i}" for i in range(100))
    return make_article(
        title="River treaty",
        slug="river-treaty",
        body=f"<p>Opening {words}.</p><p>{SECRET}</p>",
    )


def visitor() -> Client:
    return Client(enforce_csrf_checks=True)


def found(pattern: re.Pattern[str], page: str) -> str:
    match = pattern.search(page)
    assert match is not None, f"{pattern.pattern} not in the page"
    return match[1]


def without_token(page: str) -> str:
    return TOKEN.sub("", page)


def sign_in(client: Client, subscriber) -> None:
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()


def change_title_behind_the_cache(article: Article, title: str) -> None:
    """A write that tells no one: what a page from the cache would not show."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE newsletter_article SET title = %s WHERE id = %s", [title, article.pk]
        )


# --- One page for every visitor, each with their own token ---------------------------


def test_a_second_visitor_gets_the_stored_landing_page_with_a_token_of_their_own(
    story, django_assert_num_queries
):
    alice, bob = visitor(), visitor()
    first = alice.get("/")
    change_title_behind_the_cache(story, "Changed behind the cache")

    with django_assert_num_queries(0):
        second = bob.get("/")

    assert second.status_code == 200
    page, alice_page = second.content.decode(), first.content.decode()
    assert "River treaty" in page  # the stored page, not a new render
    assert without_token(page) == without_token(alice_page)
    bob_token = found(TOKEN, page)
    assert bob_token != found(TOKEN, alice_page)
    assert "csrfhole" not in page
    # The cookie that goes with Bob's token is Bob's own, and only that one.
    assert set(second.cookies) == {django_settings.CSRF_COOKIE_NAME}
    assert second.cookies[django_settings.CSRF_COOKIE_NAME].value != (
        first.cookies[django_settings.CSRF_COOKIE_NAME].value
    )
    assert "Cookie" in second["Vary"]

    # Bob's form posts with Bob's cookie (an empty address: 400, past CSRF).
    assert bob.post("/subscribe/", {"csrfmiddlewaretoken": bob_token}).status_code == 400
    # Alice's token is no good with Bob's cookie.
    stolen = found(TOKEN, alice_page)
    assert bob.post("/subscribe/", {"csrfmiddlewaretoken": stolen}).status_code == 403


def test_a_returning_visitor_s_token_from_the_stored_page_matches_their_cookie(story):
    alice, bob = visitor(), visitor()
    alice.get("/")  # stores the page
    bob.get("/archive/")  # Bob has a CSRF cookie already

    page = bob.get("/").content.decode()

    token = found(TOKEN, page)
    assert bob.post("/subscribe/", {"csrfmiddlewaretoken": token}).status_code == 400


def test_an_article_teaser_is_stored_and_read_without_a_query(story, django_assert_num_queries):
    first = visitor().get("/articles/river-treaty/")
    change_title_behind_the_cache(story, "Changed behind the cache")

    with django_assert_num_queries(0):
        second = visitor().get("/articles/river-treaty/")

    assert second.content == first.content
    assert "River treaty" in second.content.decode()
    assert SECRET not in second.content.decode()
    # No form on a teaser: no CSRF cookie, then or now.
    assert set(second.cookies) == set(first.cookies) == set()
    assert "Cookie" in second["Vary"]
    assert second["Content-Type"] == first["Content-Type"]


@pytest.mark.urls("newsletter.tests.urls_page_cache")
def test_the_nonce_of_a_stored_page_is_the_one_in_its_own_header():
    urls_page_cache.renders.clear()
    nonces = []
    for client in (visitor(), visitor()):
        response = client.get("/test/scripted/")
        page = response.content.decode()
        nonce = found(NONCE, page)
        assert f'<style nonce="{nonce}">' in page
        assert f"'nonce-{nonce}'" in response["Content-Security-Policy"]
        nonces.append(nonce)

    assert urls_page_cache.renders == ["/test/scripted/"]  # the second was from the cache
    assert nonces[0] != nonces[1]


def test_a_page_without_a_nonce_keeps_a_header_without_one(story):
    for _ in range(2):
        response = visitor().get("/")
        assert "nonce-" not in response["Content-Security-Policy"]


@pytest.mark.urls("newsletter.tests.urls_page_cache")
def test_a_page_with_the_visitor_s_own_token_in_it_is_never_stored():
    urls_page_cache.renders.clear()
    alice, bob = visitor(), visitor()
    alice_page = alice.get("/test/real-token/").content.decode()
    bob_page = bob.get("/test/real-token/").content.decode()

    assert urls_page_cache.renders == ["/test/real-token/"] * 2
    assert alice_page != bob_page


@pytest.mark.urls("newsletter.tests.urls_page_cache")
def test_a_message_banner_is_shown_to_its_visitor_alone():
    visitor().get("/test/scripted/")  # stored without a banner
    alice = visitor()
    alice.get("/test/message/")

    assert "Saved for you alone." in alice.get("/test/scripted/").content.decode()
    assert "Saved for you alone." not in visitor().get("/test/scripted/").content.decode()


@pytest.mark.urls("newsletter.tests.urls_page_cache")
def test_a_page_rendered_with_a_banner_is_not_stored():
    alice = visitor()
    alice.get("/test/message/")
    alice.get("/test/scripted/")

    assert "Saved for you alone." not in visitor().get("/test/scripted/").content.decode()


# --- Staff and signed-in readers: never from the cache, never into it ----------------


def test_staff_neither_get_nor_fill_the_visitors_page(client, story):
    visitor().get("/articles/river-treaty/")  # the teaser, stored
    client.force_login(make_staff())

    assert SECRET in client.get("/articles/river-treaty/").content.decode()
    assert SECRET not in visitor().get("/articles/river-treaty/").content.decode()


def test_a_page_staff_opened_first_is_not_what_visitors_get(client, story):
    client.force_login(make_staff())
    client.get("/articles/river-treaty/")
    client.get("/")

    assert SECRET not in visitor().get("/articles/river-treaty/").content.decode()
    assert "Start your free trial" in visitor().get("/articles/river-treaty/").content.decode()


@pytest.mark.parametrize("reader_first", [True, False])
def test_signed_in_readers_neither_get_nor_fill_the_visitors_page(client, story, reader_first):
    sign_in(client, make_subscriber(membership=Membership.Status.ACTIVE))
    if not reader_first:
        visitor().get("/articles/river-treaty/")
        visitor().get("/")

    reader_article = client.get("/articles/river-treaty/").content.decode()
    reader_home = client.get("/").content.decode()
    visitor_article = visitor().get("/articles/river-treaty/").content.decode()
    visitor_home = visitor().get("/").content.decode()

    assert SECRET in reader_article
    assert ">Account</a>" in reader_home
    assert SECRET not in visitor_article
    assert ">Account</a>" not in visitor_home
    assert ">Sign in</a>" in visitor_home


def test_a_visitor_with_a_session_but_nobody_signed_in_gets_the_stored_page(
    client, story, django_assert_max_num_queries
):
    session = client.session
    session["something_else"] = "not a sign-in"
    session.save()
    visitor().get("/articles/river-treaty/")
    change_title_behind_the_cache(story, "Changed behind the cache")

    # One query: the session, to know nobody is signed in.
    with django_assert_max_num_queries(1):
        page = client.get("/articles/river-treaty/").content.decode()
    assert "River treaty" in page


# --- What is a page of its own ------------------------------------------------------


def test_the_cancelled_checkout_notice_is_not_stored(story):
    visitor().get("/")

    assert "was not completed" in visitor().get("/?checkout=cancelled").content.decode()
    assert "was not completed" not in visitor().get("/").content.decode()


def test_other_query_strings_are_not_served_from_the_cache():
    story = make_article(section=make_section(slug="world"))
    visitor().get("/?utm_source=x")
    visitor().get("/sections/world/?page=x")
    change_title_behind_the_cache(story, "Changed behind the cache")

    assert "Changed behind the cache" in visitor().get("/?utm_source=x").content.decode()
    assert "Changed behind the cache" in visitor().get("/sections/world/?page=x").content.decode()


def test_each_page_of_a_section_is_stored_on_its_own():
    section = make_section(name="World", slug="world")
    for number in range(25):
        make_article(title=f"World story {number:02}", section=section)

    first = visitor().get("/sections/world/").content.decode()
    second = visitor().get("/sections/world/?page=2").content.decode()

    assert first != second
    assert visitor().get("/sections/world/?page=2").content.decode() == second


def test_a_change_of_a_setting_the_pages_print_is_a_page_of_its_own(settings, story):
    settings.TRIAL_DAYS = 14
    visitor().get("/")

    settings.TRIAL_DAYS = 30
    assert "free 30-day trial" in visitor().get("/").content.decode()


def test_pages_are_not_stored_with_page_cache_seconds_zero(settings, story):
    settings.PAGE_CACHE_SECONDS = 0
    visitor().get("/")
    change_title_behind_the_cache(story, "Changed behind the cache")

    assert "Changed behind the cache" in visitor().get("/").content.decode()


def test_a_stored_page_lasts_page_cache_seconds(settings, clock, story):
    settings.PAGE_CACHE_SECONDS = 60
    visitor().get("/")
    change_title_behind_the_cache(story, "Changed behind the cache")
    clock.shift(datetime.timedelta(seconds=59))
    assert "Changed behind the cache" not in visitor().get("/").content.decode()

    clock.shift(datetime.timedelta(seconds=2))
    assert "Changed behind the cache" in visitor().get("/").content.decode()


def test_a_flushed_cache_starts_a_new_generation(clock, story):
    visitor().get("/")
    pagecache.page_cache().delete(pagecache.GENERATION_KEY)
    change_title_behind_the_cache(story, "Changed behind the cache")
    clock.shift(datetime.timedelta(seconds=pagecache.GENERATION_SECONDS + 0.1))

    assert "Changed behind the cache" in visitor().get("/").content.decode()


def test_a_write_in_another_process_is_seen_within_a_second(clock, story):
    visitor().get("/")
    change_title_behind_the_cache(story, "Changed behind the cache")
    # What another process's commit does: a new generation in the shared cache.
    pagecache.page_cache().set(pagecache.GENERATION_KEY, "another-process", timeout=None)

    clock.shift(datetime.timedelta(seconds=pagecache.GENERATION_SECONDS + 0.1))

    assert "Changed behind the cache" in visitor().get("/").content.decode()


def test_the_pages_are_served_without_the_cache_when_it_cannot_be_reached(settings, story, caplog):
    unreachable = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
    }
    settings.CACHES = {**django_settings.CACHES, "pages": unreachable}

    home, teaser = visitor().get("/"), visitor().get("/articles/river-treaty/")

    assert home.status_code == teaser.status_code == 200
    assert "River treaty" in home.content.decode()
    assert "csrfhole" not in home.content.decode()
    assert "Page cache unavailable" in caplog.text


# --- Writes replace the pages once they commit ----------------------------------------

PAGES = ["/", "/articles/river-treaty/", "/archive/", "/feed/"]


def load_all() -> None:
    for url in PAGES:
        assert visitor().get(url).status_code == 200


def test_a_published_article_is_on_the_landing_page_at_once(
    story, django_capture_on_commit_callbacks
):
    load_all()
    with django_capture_on_commit_callbacks(execute=True):
        make_article(title="Just published", slug="just-published")

    assert "Just published" in visitor().get("/").content.decode()
    assert "Just published" in visitor().get("/feed/").content.decode()


def test_an_edited_article_is_shown_as_edited_at_once(story, django_capture_on_commit_callbacks):
    load_all()
    with django_capture_on_commit_callbacks(execute=True):
        story.title = "River treaty signed"
        story.save()

    for url in ["/", "/articles/river-treaty/", "/feed/"]:
        assert "River treaty signed" in visitor().get(url).content.decode(), url


def test_an_unpublished_article_leaves_the_pages_at_once(story, django_capture_on_commit_callbacks):
    load_all()
    with django_capture_on_commit_callbacks(execute=True):
        story.unpublish()

    assert "River treaty" not in visitor().get("/").content.decode()
    assert visitor().get("/articles/river-treaty/").status_code == 404


def test_a_scheduled_article_whose_time_came_is_on_the_landing_page_at_once(
    clock, django_capture_on_commit_callbacks
):
    make_article(
        title="Later today",
        status=Article.Status.SCHEDULED,
        published_at=timezone.now() + datetime.timedelta(seconds=10),
    )
    assert "Later today" not in visitor().get("/").content.decode()
    clock.shift(datetime.timedelta(seconds=11))  # well within the page's minute

    with django_capture_on_commit_callbacks(execute=True):
        Article.objects.publish_due()  # a bulk update: no save, no signal

    assert "Later today" in visitor().get("/").content.decode()


def test_a_renamed_section_is_shown_at_once(django_capture_on_commit_callbacks):
    section = make_section(name="World", slug="world")
    make_article(slug="river-treaty", section=section)
    load_all()
    with django_capture_on_commit_callbacks(execute=True):
        section.name = "The World"
        section.save()

    assert "The World" in visitor().get("/articles/river-treaty/").content.decode()


def test_an_edition_going_out_and_held_is_shown_at_once(story, django_capture_on_commit_callbacks):
    edition = built_edition(MONDAY)
    load_all()
    assert edition.get_absolute_url() not in visitor().get("/archive/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        # The send's own way: a bulk update (delivery.audience.mark_sending), no save.
        audience.mark_sending(edition, timezone.now())
    assert edition.get_absolute_url() in visitor().get("/archive/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        recovery.finish_if_done(edition.pk)
    assert "A sample: the briefing of" in visitor().get("/").content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        Edition.objects.get(pk=edition.pk).hold()
    # Sent to the first zones: it stays on the site, held, and no longer "sent".
    assert "A sample: the briefing of" not in visitor().get("/").content.decode()


@pytest.mark.urls("newsletter.tests.urls_page_cache")
def test_a_page_rendered_while_a_write_committed_is_not_served_after_it():
    """The generation is read before the page: a render that raced a commit is
    stored under the generation the commit replaced, and rendered again."""
    urls_page_cache.renders.clear()
    for _ in range(3):
        visitor().get("/test/racing/")

    assert urls_page_cache.renders == ["/test/racing/"] * 2
