"""What readers and visitors see: articles, archive, sections, feed, web editions."""

import datetime
import xml.etree.ElementTree as ET

import pytest
from django.core.management import call_command

from delivery import by_hand
from newsletter import desk
from newsletter.models import Article, Edition
from newsletter.tests.factories import built_edition, make_article, make_section
from subscriptions.models import Membership
from subscriptions.sessions import SESSION_KEY
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

SECRET = "The ending only members read."


def sign_in(client, subscriber) -> None:
    session = client.session
    session[SESSION_KEY] = subscriber.pk
    session.save()


@pytest.fixture
def story():
    words = " ".join(f"word{i}" for i in range(100))
    return make_article(
        title="River treaty",
        dek="Six nations share the water.",
        body=f"<p>Opening paragraph {words}.</p><h2>More</h2><p>{SECRET}</p>",
    )


@pytest.mark.parametrize("status", [Membership.Status.ACTIVE, Membership.Status.TRIALING])
def test_signed_in_entitled_readers_get_the_full_text(client, story, status):
    sign_in(client, make_subscriber(membership=status))

    page = client.get(story.get_absolute_url()).content.decode()

    assert SECRET in page
    assert "<h2>More</h2>" in page
    assert "Start your free trial" not in page


def test_staff_get_the_full_text(admin_client, story):
    assert SECRET in admin_client.get(story.get_absolute_url()).content.decode()


@pytest.mark.parametrize(
    "membership", [None, Membership.Status.CANCELED, Membership.Status.PAST_DUE]
)
def test_everyone_else_gets_a_teaser_and_the_offer(client, story, membership):
    if membership is not None:
        sign_in(client, make_subscriber(membership=membership))

    response = client.get(story.get_absolute_url())

    page = response.content.decode()
    assert response.status_code == 200
    assert "Opening paragraph word0" in page
    assert SECRET not in page
    assert "word99" not in page  # the teaser stops well before the end
    assert "$46 a year" in page
    assert "Start your free trial" in page
    assert "Six nations share the water." in page


def test_archive_by_date_lists_sent_editions_by_month(client, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    comet = make_article(title="Comet brightens", section=make_section(name="Science"))
    call_command("send_digest", "--sync", "--date", "2026-11-30")
    make_article(title="Not yet in an edition")

    page = client.get("/archive/").content.decode()

    assert "November 2026" in page
    assert "Monday 30 November 2026" in page
    assert comet.title in page
    assert "Not yet in an edition" not in page
    assert 'href="/sections/' in page
    assert client.get("/archive/?page=999").status_code == 200
    assert client.get("/archive/?page=x").status_code == 200


def test_archive_by_section(client):
    science = make_section(name="Science", slug="science")
    make_article(title="Comet brightens", section=science)
    make_article(title="Rates held", section=make_section(name="Business"))
    make_article(title="Draft comet", section=science, status=Article.Status.DRAFT)

    response = client.get("/sections/science/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Science</h1>" in page
    assert "Comet brightens" in page
    assert "Rates held" not in page
    assert "Draft comet" not in page
    assert client.get("/sections/nope/").status_code == 404


def test_rss_feed_lists_published_articles_without_their_text(client):
    comet = make_article(title="Comet brightens", dek="Look west.", body=f"<p>{SECRET}</p>")
    make_article(title="Secret draft", status=Article.Status.DRAFT)

    response = client.get("/feed/")

    assert response.status_code == 200
    # An XML type, so browsers apply the feed's XSL stylesheet (views.StyledRssFeed).
    assert response["Content-Type"].startswith("application/xml")
    channel = ET.fromstring(response.content).find("channel")  # noqa: S314 - our own feed
    assert channel is not None
    items = channel.findall("item")
    assert [item.findtext("title") for item in items] == ["Comet brightens"]
    assert items[0].findtext("description") == "Look west."
    assert items[0].findtext("link", "").endswith(comet.get_absolute_url())
    assert SECRET not in response.content.decode()


def test_the_web_edition_shows_what_the_email_shows(client, settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    first, second, third = (
        make_article(title=t, dek=f"About {t}.", published_ago=datetime.timedelta(hours=h))
        for t, h in [("Alpha", 3), ("Bravo", 2), ("Charlie", 1)]
    )
    edition = built_edition(MONDAY)
    edition.curate({third.pk: (1, True), first.pk: (2, True), second.pk: (3, False)}, "Hello.")
    by_hand.send_edition_in_process(edition.pk)

    page = client.get("/editions/2026-11-30/").content.decode()
    email = desk.preview(Edition.objects.get(), desk.SampleReader.PAYING).body

    for text in [page, email]:
        assert text.index("Charlie") < text.index("Alpha")
        assert "Bravo" not in text
        assert "Hello." in text
        assert "About Charlie." in text
    assert first.get_absolute_url() in page


def test_pages_are_accessible_and_fit_a_phone(client, story):
    section = make_section(name="Science", slug="science")
    story.section = section
    story.save()
    for url in ["/", story.get_absolute_url(), "/archive/", "/sections/science/"]:
        page = client.get(url).content.decode()
        assert '<html lang="en">' in page, url
        assert 'name="viewport" content="width=device-width, initial-scale=1"' in page, url
        assert '<a class="skip-link" href="#main">' in page, url
        assert '<main id="main"' in page, url
        assert '<nav aria-label="Main">' in page, url
        assert page.count("<h1") == 1, url
        assert 'type="application/rss+xml"' in page, url


def test_lead_image_is_shown_with_its_description(client, settings, tmp_path):
    from newsletter.tests.test_article_editing import png

    settings.MEDIA_ROOT = tmp_path
    article = make_article(lead_image=png(), lead_image_alt="Delegates at the table")

    page = client.get(article.get_absolute_url()).content.decode()

    assert f'src="/media/{article.lead_image.name}"' in page
    assert 'alt="Delegates at the table"' in page
    assert 'width="40" height="20"' in page


def test_a_paying_reader_who_unsubscribed_from_the_emails_still_reads_the_site(client):
    from subscriptions.models import Subscriber
    from subscriptions.sessions import SESSION_KEY
    from subscriptions.tests.factories import make_subscriber

    article = make_article(body="<p>" + "Full story words. " * 200 + "The very end.</p>")
    reader = make_subscriber(email_status=Subscriber.EmailStatus.UNSUBSCRIBED)
    session = client.session
    session[SESSION_KEY] = reader.pk
    session.save()

    page = client.get(article.get_absolute_url()).content.decode()

    assert "The very end." in page
    account = client.get("/account/").content.decode()
    assert "Start a membership" not in account
