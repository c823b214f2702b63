"""What a reader chooses about their digest: the sections they follow, the days, the format.

Set from the preferences link, the account page and signup's continue page;
by staff in the admin and through the CSV import. At least one section and
one day; "every section" is a state of its own, so new sections are followed.
"""

import re

import pytest
from django.test import Client

from newsletter.models import Section
from newsletter.tests.factories import make_section
from subscriptions import preferences
from subscriptions.actions.account import do_set_digest_choices
from subscriptions.actions.imports import do_import_readers
from subscriptions.emails import next_digest_summary
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from subscriptions.tests.signup_flow import ask_to_subscribe, link_in, sign_up

# Tuesday 1 December 2026, noon UTC.
pytestmark = [pytest.mark.django_db, pytest.mark.clock("2026-12-01T12:00:00+00:00")]

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri"]


@pytest.fixture
def sections() -> dict[str, Section]:
    return {
        slug: make_section(name=name, slug=slug, position=position)
        for position, (slug, name) in enumerate(
            [("world", "World"), ("business", "Business"), ("sport", "Sport")]
        )
    }


@pytest.fixture
def reader() -> Subscriber:
    return make_subscriber("ada@example.com", time_zone="Europe/Lisbon")


def url(reader: Subscriber) -> str:
    return f"/preferences/{preferences.make_token(reader)}/"


def form(**fields) -> dict:
    return {
        "time_zone": "Europe/Lisbon",
        "send_time": "06:00",
        "pause_until": "",
        "sections": ["world", "business", "sport"],
        "days": EVERY_DAY,
        "format": "full",
        **fields,
    }


def followed(reader: Subscriber) -> list[str] | None:
    reader.refresh_from_db()
    ids = reader.followed_section_ids()
    if ids is None:
        return None
    return sorted(Section.objects.filter(pk__in=ids).values_list("slug", flat=True))


def test_a_new_reader_follows_every_section_every_weekday_in_full(sections, reader):
    assert followed(reader) is None
    assert reader.days == "mon,tue,wed,thu,fri"
    assert reader.digest_format == "full"
    # Tuesday noon in Lisbon: the next digest is Wednesday's.
    assert next_digest_summary(reader) == "Wednesday 06:00 in Lisbon: every section; full stories"


def test_the_preferences_page_posts_sections_days_and_format_and_says_what_comes(
    client, sections, reader
):
    page = client.get(url(reader)).content.decode()
    for slug in ("world", "business", "sport"):
        assert f'name="sections" value="{slug}"' in page
    assert 'name="days" value="mon"' in page and 'name="format" value="headlines"' in page

    response = client.post(
        url(reader),
        form(sections=["world", "business"], days=["wed", "fri"], format="headlines"),
    )

    assert response.status_code == 303
    assert followed(reader) == ["business", "world"]
    assert (reader.days, reader.digest_format) == ("wed,fri", "headlines")
    page = client.get(url(reader)).content.decode()
    assert "Sections: World, Business." in page
    assert "Days: Wednesday and Friday." in page
    assert "Format: headlines only." in page
    assert (
        "Your next digest: <strong>Wednesday 06:00 in Lisbon: World, Business; headlines only"
        in (page)
    )


def test_the_next_digest_named_is_on_one_of_the_readers_days(client, sections, reader):
    client.post(url(reader), form(days=["mon"]))

    reader.refresh_from_db()
    # Tuesday today: not before next Monday.
    assert next_digest_summary(reader).startswith("Monday 06:00 in Lisbon")


def test_every_section_ticked_is_every_section_so_a_new_one_is_followed(client, sections, reader):
    client.post(url(reader), form(sections=["world"]))
    assert followed(reader) == ["world"]

    client.post(url(reader), form(sections=["world", "business", "sport"]))
    assert followed(reader) is None
    make_section(name="Science", slug="science")
    assert followed(reader) is None  # the new section too
    page = client.get(url(reader)).content.decode()
    assert re.search(r'<input type="checkbox" name="sections" value="science"[^>]* checked>', page)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"sections": []}, "Choose at least one section."),
        ({"days": []}, "Choose at least one day."),
        ({"days": ["sat"]}, "sat is not a weekday we send on"),
        ({"sections": ["world", "astrology"]}, "astrology is not one of our sections."),
        ({"format": "tweets"}, "Choose full or headlines."),
    ],
)
def test_a_bad_choice_is_refused_with_its_reason_and_nothing_changes(
    client, sections, reader, fields, error
):
    response = client.post(url(reader), form(**{"format": "headlines", **fields}))

    assert response.status_code == 400
    assert error in response.content.decode()
    reader.refresh_from_db()
    assert (reader.all_sections, reader.days, reader.digest_format) == (
        True,
        "mon,tue,wed,thu,fri",
        "full",
    )


def test_a_post_without_the_choices_keeps_them(client, sections, reader):
    do_set_digest_choices(reader, sections=["sport"], days="mon", digest_format="headlines")

    response = client.post(
        url(reader), {"time_zone": "Asia/Tokyo", "send_time": "07:00", "pause_until": ""}
    )

    assert response.status_code == 303
    assert followed(reader) == ["sport"]
    assert (reader.time_zone, reader.days, reader.digest_format) == (
        "Asia/Tokyo",
        "mon",
        "headlines",
    )


def test_a_reader_whose_sections_were_all_deleted_follows_every_section(sections, reader):
    do_set_digest_choices(reader, sections=["sport"], days="mon,tue", digest_format="full")
    sections["sport"].delete()

    assert followed(reader) is None
    assert "every section" in next_digest_summary(reader)


def test_a_renamed_section_stays_followed_under_its_new_name(sections, reader):
    do_set_digest_choices(reader, sections=["world"], days="mon", digest_format="full")
    Section.objects.filter(slug="world").update(name="The World", slug="the-world")

    assert followed(reader) == ["the-world"]
    assert "The World; full stories" in next_digest_summary(reader)


def test_the_account_page_sets_them_too(sections):
    reader = make_subscriber("grace@example.com")
    browser = Client()
    session = browser.session
    session["subscriber_id"] = reader.pk
    session.save()

    page = browser.get("/account/").content.decode()
    assert 'name="sections" value="business"' in page and 'id="next-digest-summary"' in page
    response = browser.post(
        "/account/preferences/", form(sections=["business"], days=["tue", "thu"])
    )

    assert response.status_code == 303
    assert followed(reader) == ["business"] and reader.days == "tue,thu"


def test_signups_continue_page_sets_them(
    client, sections, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    answer = sign_up(
        client,
        {"email": "new@example.com", "name": "New", "time_zone": "Europe/Paris"},
        mailoutbox,
        django_capture_on_commit_callbacks,
        sections=["world", "sport"],
        days=["mon", "wed", "fri"],
        format="headlines",
    )

    assert answer.status_code == 303
    reader = Subscriber.objects.get(email="new@example.com")
    assert followed(reader) == ["sport", "world"]
    assert (reader.days, reader.digest_format) == ("mon,wed,fri", "headlines")


def test_the_continue_page_offers_them(
    client, sections, mailoutbox, django_capture_on_commit_callbacks
):
    ask_to_subscribe(
        client,
        {"email": "new@example.com", "name": "", "time_zone": "UTC"},
        django_capture_on_commit_callbacks,
    )
    page = client.get(link_in(mailoutbox[-1]), follow=True).content.decode()

    assert 'name="sections" value="world" id="id_sections_0" checked' in page
    assert 'name="format" value="full" id="id_format_0" required checked' in page


def test_staff_set_them_in_the_admin_at_least_one_section(admin_client, sections, reader):
    change = f"/admin/subscriptions/subscriber/{reader.pk}/change/"
    data = {
        "email": reader.email,
        "name": "",
        "time_zone": reader.time_zone,
        "email_status": "active",
        "send_time": "06:00:00",
        "pause_until": "",
        "days": ["mon", "fri"],
        "digest_format": "headlines",
        "membership-TOTAL_FORMS": "0",
        "membership-INITIAL_FORMS": "0",
        "membership-MIN_NUM_FORMS": "0",
        "membership-MAX_NUM_FORMS": "1",
        "emails-TOTAL_FORMS": "0",
        "emails-INITIAL_FORMS": "0",
        "emails-MIN_NUM_FORMS": "0",
        "emails-MAX_NUM_FORMS": "0",
    }

    refused = admin_client.post(change, data)
    assert refused.status_code == 200
    assert "Choose at least one section" in refused.content.decode()
    assert followed(reader) is None and reader.days == "mon,tue,wed,thu,fri"

    saved = admin_client.post(change, {**data, "sections": [sections["sport"].pk]})
    assert saved.status_code == 302
    assert followed(reader) == ["sport"]
    assert (reader.days, reader.digest_format) == ("mon,fri", "headlines")


def test_the_import_reads_sections_days_and_format_and_rejects_bad_rows(sections):
    report = do_import_readers(
        "email,name,time_zone,sections,days,format\n"
        "a@example.com,A,UTC,world business,mon wed,headlines\n"
        "b@example.com,B,UTC,,,\n"
        "c@example.com,C,UTC,all,fri,full\n"
        "d@example.com,D,UTC,astrology,,\n"
        "e@example.com,E,UTC,,sun,\n"
        "f@example.com,F,UTC,,,tweets\n"
    )

    assert sorted(report.created) == ["a@example.com", "b@example.com", "c@example.com"]
    assert [(row, reason) for row, reason in report.rejected] == [
        (5, "d@example.com: unknown section astrology"),
        (6, "e@example.com: Unknown day sun: days are mon, tue, wed, thu, fri."),
        (7, "f@example.com: format 'tweets' is neither full nor headlines"),
    ]
    a, b, c = (Subscriber.objects.get(email=f"{x}@example.com") for x in "abc")
    assert followed(a) == ["business", "world"]
    assert (a.days, a.digest_format) == ("mon,wed", "headlines")
    assert followed(b) is None and (b.days, b.digest_format) == ("mon,tue,wed,thu,fri", "full")
    assert followed(c) is None and c.days == "fri"
