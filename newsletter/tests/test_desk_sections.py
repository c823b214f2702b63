"""The desk and sections: the lead story for everyone, previews for any section set and format."""

import datetime
import re

import pytest

from newsletter.models import Edition, EditionArticle
from newsletter.tests.factories import make_article, make_section, make_staff
from newsletter.tests.test_next_edition import curation, open_next
from testing.clock import MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

STORY = re.compile(r"^\d+\. (.+?)(?: \[[^\]]+\])?$", re.MULTILINE)


@pytest.fixture
def editor(client):
    client.force_login(make_staff("editor"))


@pytest.fixture
def stories():
    world, sport = (
        make_section(name="World", slug="world"),
        make_section(name="Sport", slug="sport"),
    )
    return [
        make_article(title=title, section=section, published_ago=datetime.timedelta(hours=hours))
        for title, section, hours in [
            ("Treaty", world, 4),
            ("Cup final", sport, 3),
            ("Weather", None, 2),
            ("Summit", world, 1),
        ]
    ]


def desk_url(edition: Edition) -> str:
    return f"/admin/newsletter/edition/{edition.pk}/desk/"


def test_editors_mark_a_story_for_every_reader_and_can_unmark_it(client, editor, stories):
    edition = open_next(client)
    cup = stories[1]

    data = curation(edition, stories)
    response = client.post(desk_url(edition), {**data, f"lead_{cup.pk}": "on"}, follow=True)

    assert "“Cup final” is for every reader." in response.content.decode()
    assert list(
        EditionArticle.objects.filter(lead=True).values_list("article__title", flat=True)
    ) == ["Cup final"]
    response = client.post(desk_url(edition), data, follow=True)
    assert "“Cup final” is for the readers of its section only." in response.content.decode()
    assert not EditionArticle.objects.filter(lead=True).exists()


def test_the_preview_shows_the_email_for_any_section_set_and_format(client, editor, stories):
    edition = open_next(client)
    EditionArticle.objects.filter(article=stories[1]).update(lead=True)  # the cup final

    world = client.get(
        desk_url(edition), {"reader": "paying", "sections": "world", "format": "headlines"}
    )
    every = client.get(desk_url(edition), {"reader": "paying"})

    message = world.context["message"]
    assert STORY.findall(message.body) == ["Treaty", "Cup final", "Weather", "Summit"]
    assert "Your sections: World · headlines only" in message.body
    assert "Read the full story" in message.html
    assert "more stor" not in message.body  # the sport story is the lead: nothing left out
    assert 'name="sections"' in world.content.decode()
    full = every.context["message"]
    assert "Your sections: every section · full stories" in full.body
    assert "The body of article" in full.body

    EditionArticle.objects.update(lead=False)
    world = client.get(desk_url(edition), {"reader": "paying", "sections": "world"})
    message = world.context["message"]
    assert STORY.findall(message.body) == ["Treaty", "Weather", "Summit"]
    assert "1 more story in sections you don't follow" in message.body


def test_a_test_send_is_the_previews_section_set_and_format(client, editor, stories, smtp_server):
    edition = open_next(client)
    page = client.get(
        desk_url(edition), {"reader": "paying", "sections": "sport", "format": "headlines"}
    )
    # The test form carries the preview's choices.
    assert '<input type="hidden" name="format" value="headlines"' in page.content.decode()

    response = client.post(
        f"/admin/newsletter/edition/{edition.pk}/test/",
        {"reader": "paying", "sections": ["sport"], "format": "headlines"},
    )

    assert "sections=sport" in response["Location"] and "format=headlines" in response["Location"]
    [mail] = smtp_server.received()
    assert "Your sections: Sport · headlines only" in mail.text
    assert STORY.findall(mail.text) == ["Cup final", "Weather"]
    assert "2 more stories in sections you don't follow" in mail.text
