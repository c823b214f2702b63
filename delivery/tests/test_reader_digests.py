"""Each reader's own digest: the sections they follow, the days they chose, their format.

Every combination kind, with the exact recipients and the exact stories of
each digest: sections, days, format, lead stories, a story with no
section, nothing new, a section deleted or renamed, a reader following a
section with nothing today. (A full digest past the clipping limit:
test_digest_formats.py.) The scheduler is driven as in
test_local_mornings: `send_digest --sync --at …` with the clock frozen
there. Readers live in London, where 06:00 is 06:00 UTC in December.
"""

import datetime
import io
import re

import pytest
import time_machine
from django.core.management import call_command

from delivery import batches, send_report
from delivery.models import Delivery
from newsletter.models import EditionArticle, Section
from newsletter.tests.factories import built_edition, make_article, make_section
from subscriptions.actions.account import do_set_digest_choices
from subscriptions.tests.factories import make_subscriber

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.clock("2026-12-01T12:00:00+00:00"),  # Tuesday: readers join
]

WEDNESDAY, THURSDAY, FRIDAY = (datetime.date(2026, 12, day) for day in (2, 3, 4))
STORY = re.compile(r"^\d+\. (.+?)(?: \[[^\]]+\])?$", re.MULTILINE)


def run_at(moment: str) -> None:
    at = datetime.datetime.fromisoformat(moment)
    with time_machine.travel(at, tick=False):
        call_command("send_digest", "--sync", "--at", at.isoformat(), stdout=io.StringIO())


def publish_at(moment: str, title: str, section: Section | None = None, **fields):
    with time_machine.travel(moment, tick=False):
        return make_article(
            title=title, section=section, published_ago=datetime.timedelta(0), **fields
        )


def digests(smtp_server) -> dict[str, list[str]]:
    """Each recipient's stories, in order, read off the text part of what they received."""
    return {mail.rcpt_tos[0]: STORY.findall(mail.text) for mail in smtp_server.received()}


def mail_to(smtp_server, address: str):
    [mail] = [mail for mail in smtp_server.received() if mail.rcpt_tos == [address]]
    return mail


@pytest.fixture
def sections() -> dict[str, Section]:
    return {
        slug: make_section(name=slug.title(), slug=slug, position=position)
        for position, slug in enumerate(["world", "business", "sport", "science"])
    }


def reader(email: str, *, sections=None, days="mon,tue,wed,thu,fri", digest_format="full"):
    subscriber = make_subscriber(email, time_zone="Europe/London")
    do_set_digest_choices(subscriber, sections=sections, days=days, digest_format=digest_format)
    return subscriber


@pytest.fixture
def wednesday_night(sections):
    """After everyone's Wednesday send: five stories for Thursday, one of them the lead."""
    publish_at("2026-12-02T20:00:00+00:00", "Treaty signed", sections["world"])
    publish_at("2026-12-02T20:01:00+00:00", "Markets rally", sections["business"])
    publish_at("2026-12-02T20:02:00+00:00", "Cup final", sections["sport"])
    publish_at("2026-12-02T20:03:00+00:00", "Weather turns", None)
    summit = publish_at("2026-12-02T20:04:00+00:00", "Summit called", sections["business"])
    # The editors mark the summit for everyone on Thursday's edition.
    edition = built_edition(THURSDAY, datetime.datetime(2026, 12, 3, 1, tzinfo=datetime.UTC))
    EditionArticle.objects.filter(edition=edition, article=summit).update(lead=True)
    return edition


def test_each_reader_gets_the_stories_of_their_sections_the_unsectioned_and_the_lead(
    smtp_server, sections, wednesday_night, settings
):
    reader("all@example.com")
    reader("world@example.com", sections=["world"], digest_format="headlines")
    reader("sport@example.com", sections=["sport", "science"])
    reader("money@example.com", sections=["business"])

    run_at("2026-12-03T06:01:00+00:00")

    assert digests(smtp_server) == {
        "all@example.com": [
            "Treaty signed",
            "Markets rally",
            "Cup final",
            "Weather turns",
            "Summit called",
        ],
        "world@example.com": ["Treaty signed", "Weather turns", "Summit called"],
        "sport@example.com": ["Cup final", "Weather turns", "Summit called"],
        "money@example.com": ["Markets rally", "Weather turns", "Summit called"],
    }
    world = mail_to(smtp_server, "world@example.com")
    assert "Your sections: World · headlines only" in world.text
    edition_page = f"{settings.SITE_URL}/editions/2026-12-03/"
    assert f"2 more stories in sections you don't follow: {edition_page}" in world.text
    assert "2 more stories in sections you don't follow</a>" in world.html
    assert "Your sections: every section · full stories" in (
        mail_to(smtp_server, "all@example.com").text
    )
    assert "Your sections: Sport, Science" in mail_to(smtp_server, "sport@example.com").text
    assert "more stor" not in mail_to(smtp_server, "all@example.com").text


def test_a_reader_gets_a_digest_only_on_their_days_with_everything_since_their_last(
    smtp_server, sections
):
    reader("mwf@example.com", days="mon,wed,fri")
    reader("daily@example.com")

    publish_at("2026-12-01T20:00:00+00:00", "Tuesday night")
    run_at("2026-12-02T06:01:00+00:00")
    wednesday = digests(smtp_server)
    smtp_server.clear_received()
    publish_at("2026-12-02T20:00:00+00:00", "Wednesday night")
    run_at("2026-12-03T06:01:00+00:00")
    thursday = digests(smtp_server)
    smtp_server.clear_received()
    publish_at("2026-12-03T20:00:00+00:00", "Thursday night")
    run_at("2026-12-04T06:01:00+00:00")

    assert wednesday == {
        "daily@example.com": ["Tuesday night"],
        "mwf@example.com": ["Tuesday night"],
    }
    assert thursday == {"daily@example.com": ["Wednesday night"]}
    assert digests(smtp_server) == {
        "daily@example.com": ["Thursday night"],
        # Friday's carries what was published since Wednesday's digest: Friday's
        # edition first, then the older story Thursday's edition carried.
        "mwf@example.com": ["Thursday night", "Wednesday night"],
    }
    # No Thursday delivery at all for the reader who skips Thursdays.
    assert not Delivery.objects.filter(
        subscriber__email="mwf@example.com", edition__date=THURSDAY
    ).exists()


def test_nothing_new_in_a_readers_sections_is_skipped_not_an_empty_email(
    smtp_server, sections, settings
):
    reader("world@example.com", sections=["world"])
    reader("sport@example.com", sections=["sport"])
    publish_at("2026-12-02T20:00:00+00:00", "Cup final", sections["sport"])

    run_at("2026-12-03T06:01:00+00:00")

    assert digests(smtp_server) == {"sport@example.com": ["Cup final"]}
    skipped = Delivery.objects.get(subscriber__email="world@example.com")
    assert skipped.status == Delivery.Status.SKIPPED
    assert skipped.last_error == batches.NOTHING_FOR_YOU


def test_with_send_when_empty_a_reader_with_nothing_in_their_sections_is_told_so(
    smtp_server, sections, settings
):
    settings.DIGEST_SEND_WHEN_EMPTY = True
    reader("world@example.com", sections=["world"])
    publish_at("2026-12-02T20:00:00+00:00", "Cup final", sections["sport"])

    run_at("2026-12-03T06:01:00+00:00")

    assert digests(smtp_server) == {"world@example.com": []}
    text = mail_to(smtp_server, "world@example.com").text
    assert "No new stories today." in text
    assert "1 more story in sections you don't follow" in text


def test_a_section_deleted_leaves_its_readers_following_every_section(
    smtp_server, sections, wednesday_night
):
    reader("science@example.com", sections=["science"])
    sections["science"].delete()

    run_at("2026-12-03T06:01:00+00:00")

    assert digests(smtp_server) == {
        "science@example.com": [
            "Treaty signed",
            "Markets rally",
            "Cup final",
            "Weather turns",
            "Summit called",
        ]
    }
    assert "Your sections: every section" in mail_to(smtp_server, "science@example.com").text


def test_a_section_renamed_keeps_its_readers_and_shows_its_new_name(
    smtp_server, sections, wednesday_night
):
    reader("world@example.com", sections=["world"])
    Section.objects.filter(slug="world").update(name="Global", slug="global")

    run_at("2026-12-03T06:01:00+00:00")

    assert digests(smtp_server) == {
        "world@example.com": ["Treaty signed", "Weather turns", "Summit called"]
    }
    mail = mail_to(smtp_server, "world@example.com")
    assert "Your sections: Global · full stories" in mail.text
    assert "[Global]" in mail.text


def test_full_carries_each_story_whole_and_headlines_a_link(smtp_server, sections, settings):
    reader("full@example.com")
    reader("short@example.com", digest_format="headlines")
    publish_at(
        "2026-12-02T20:00:00+00:00",
        "Treaty signed",
        sections["world"],
        dek="After eleven years.",
        body='<p>First paragraph of the treaty.</p><p>Second, with <a href="/archive/">'
        "a link</a>.</p>",
    )

    run_at("2026-12-03T06:01:00+00:00")

    full, short = (
        mail_to(smtp_server, "full@example.com"),
        mail_to(smtp_server, "short@example.com"),
    )
    assert "First paragraph of the treaty.\n\nSecond, with a link." in full.text
    assert "First paragraph of the treaty." in full.html
    # Links in a body are absolute in an email.
    assert f'href="{settings.SITE_URL}/archive/"' in full.html
    assert "First paragraph" not in short.text and "First paragraph" not in short.html
    assert "After eleven years." in short.text and "Read the full story" in short.html
    assert "Read the full story" not in full.html


def test_the_send_report_counts_readers_by_format_and_nothing_new_for_you(smtp_server, sections):
    reader("full@example.com", sections=["sport"])
    reader("short1@example.com", sections=["sport"], digest_format="headlines")
    reader("short2@example.com", digest_format="headlines")
    reader("world@example.com", sections=["world"])
    publish_at("2026-12-02T20:00:00+00:00", "Cup final", sections["sport"])

    run_at("2026-12-03T06:01:00+00:00")

    edition = Delivery.objects.get(subscriber__email="world@example.com").edition
    assert send_report.formats(edition) == {"full": 1, "headlines": 2}
    assert send_report.nothing_for_you(edition) == 1
    assert sorted(digests(smtp_server)) == [
        "full@example.com",
        "short1@example.com",
        "short2@example.com",
    ]
