"""/api/v1/readers/: filters, cursor pages, lookups, complimentary readers, invitations, edits."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from newsletter.tests.factories import make_section
from subscriptions.models import Membership, Subscriber
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db

READERS = "/api/v1/readers/"
Status = Membership.Status


def ids(answer) -> list[int]:
    return [row["id"] for row in answer.json()["results"]]


@pytest.fixture
def everyone():
    """One reader in each state, keyed by it."""
    now = timezone.now()
    return {
        "trialing": make_subscriber("t@example.com", membership=Status.TRIALING),
        "active": make_subscriber("a@example.com", membership=Status.ACTIVE),
        "past_due": make_subscriber(
            "p@example.com", membership=Status.PAST_DUE, membership_fields={"past_due_since": now}
        ),
        "complimentary": make_subscriber(
            "c@example.com",
            membership=Status.INCOMPLETE,
            membership_fields={"complimentary": True},
        ),
        "canceled": make_subscriber("x@example.com", membership=Status.CANCELED),
        "unsubscribed": make_subscriber(
            "u@example.com", email_status=Subscriber.EmailStatus.UNSUBSCRIBED
        ),
        "bounced": make_subscriber("b@example.com", email_status=Subscriber.EmailStatus.BOUNCED),
        "other": make_subscriber("o@example.com", membership=None),
    }


@pytest.mark.parametrize(
    "state",
    [
        "trialing",
        "active",
        "past_due",
        "complimentary",
        "canceled",
        "unsubscribed",
        "bounced",
        "other",
    ],
)
def test_the_state_filter_finds_exactly_the_readers_in_it(api, everyone, state):
    answer = api.get(READERS, {"state": state})
    assert answer.status_code == 200
    assert ids(answer) == [everyone[state].pk]
    assert answer.json()["results"][0]["state"] == state


def test_zone_and_time_filters(api, clock):
    old = make_subscriber(time_zone="Asia/Tokyo")
    clock.shift(datetime.timedelta(days=2))
    new = make_subscriber(time_zone="Asia/Tokyo")
    make_subscriber(time_zone="Europe/Paris")
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()

    assert ids(api.get(READERS, {"time_zone": "Asia/Tokyo"})) == [old.pk, new.pk]
    assert ids(api.get(READERS, {"time_zone": "Asia/Tokyo", "created_since": since})) == [new.pk]
    Subscriber.objects.filter(pk=old.pk).update(updated_at=timezone.now())
    assert old.pk in ids(api.get(READERS, {"updated_since": since}))


def test_cursor_pages_visit_every_reader_once_even_as_readers_join(api):
    readers = [make_subscriber().pk for _ in range(7)]
    seen, page = [], api.get(READERS, {"page_size": 3})
    while True:
        seen += ids(page)
        if len(seen) == 3:
            readers.append(make_subscriber().pk)  # joins while the client pages
        link = page.json()["next"]
        if link is None:
            break
        page = api.get(link)
    assert seen == readers


def test_a_reader_by_id_and_by_address(api):
    reader = make_subscriber("Ada@Example.com", name="Ada")

    by_id = api.get(f"{READERS}{reader.pk}/").json()
    by_email = api.post(f"{READERS}lookup/", {"email": "ada@EXAMPLE.com"}).json()

    assert by_id == by_email
    assert by_id["email"] == "Ada@example.com"
    assert by_id["membership"]["status"] == "active"
    assert api.post(f"{READERS}lookup/", {"email": "nobody@example.com"}).status_code == 404


def test_a_complimentary_reader_with_an_end(api, mailoutbox):
    until = timezone.now() + datetime.timedelta(days=90)
    answer = api.post(
        READERS,
        {
            "email": "guest@example.com",
            "name": "Guest",
            "time_zone": "Europe/Berlin",
            "send_time": "07:30",
            "kind": "complimentary",
            "complimentary_until": until.isoformat(),
        },
    )

    assert answer.status_code == 201
    body = answer.json()
    assert (body["state"], body["time_zone"], body["send_time"]) == (
        "complimentary", "Europe/Berlin", "07:30",
    )  # fmt: skip
    reader = Subscriber.objects.get(email="guest@example.com")
    assert reader.membership.complimentary and reader.membership.complimentary_until == until
    assert reader.is_entitled
    assert mailoutbox == []  # granted, not signed up: no email

    again = api.post(READERS, {"email": "GUEST@example.com", "kind": "complimentary"})
    assert again.status_code == 409
    assert Subscriber.objects.count() == 1


def test_a_complimentary_end_in_the_past_is_refused(api):
    past = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    answer = api.post(
        READERS, {"email": "g@example.com", "kind": "complimentary", "complimentary_until": past}
    )
    assert answer.status_code == 400
    assert not Subscriber.objects.exists()


def test_an_invitation_to_the_trial_is_the_signup_email_and_stores_nothing(
    api, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    from config.celery import app

    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            answer = api.post(
                READERS,
                {"email": "friend@example.com", "name": "Friend", "kind": "trial_invitation"},
            )
    finally:
        app.conf.task_always_eager = False

    assert answer.status_code == 202
    assert answer.json()["invited"] == "friend@example.com"
    assert not Subscriber.objects.exists()  # never opted in silently
    [mail] = mailoutbox
    assert mail.to == ["friend@example.com"]
    assert "/subscribe/continue/" in mail.body


def test_an_edit_of_name_zone_time_and_pause(api):
    reader = make_subscriber()
    pause = (timezone.localdate() + datetime.timedelta(days=10)).isoformat()

    answer = api.patch(
        f"{READERS}{reader.pk}/",
        {
            "name": "Ada L.",
            "time_zone": "America/Chicago",
            "send_time": "05:15",
            "pause_until": pause,
        },
    )

    assert answer.status_code == 200
    reader.refresh_from_db()
    saved = (reader.name, reader.time_zone, f"{reader.send_time:%H:%M}", str(reader.pause_until))
    assert saved == ("Ada L.", "America/Chicago", "05:15", pause)
    assert api.patch(f"{READERS}{reader.pk}/", {"name": "see www.spam.example"}).status_code == 400


def test_unsubscribe_and_resubscribe(api):
    reader = make_subscriber()

    out = api.post(f"{READERS}{reader.pk}/unsubscribe/")
    assert (out.status_code, out.json()["state"]) == (200, "unsubscribed")
    back = api.post(f"{READERS}{reader.pk}/resubscribe/")
    assert (back.status_code, back.json()["state"]) == (200, "active")


def test_a_bounced_address_cannot_be_resubscribed(api):
    reader = make_subscriber(email_status=Subscriber.EmailStatus.BOUNCED)
    answer = api.post(f"{READERS}{reader.pk}/resubscribe/")
    assert answer.status_code == 409
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.BOUNCED


def test_complimentary_grant_for_an_existing_reader(api):
    reader = make_subscriber(membership=Status.CANCELED)
    answer = api.put(f"{READERS}{reader.pk}/complimentary/", {"complimentary_until": None})
    assert answer.json()["state"] == "complimentary"
    assert Subscriber.objects.get(pk=reader.pk).is_entitled


def test_sections_days_and_format_are_read_and_changed_one_at_a_time(api):
    world = make_section(name="World", slug="world")
    business = make_section(name="Business", slug="business")
    make_section(name="Sport", slug="sport")
    reader = make_subscriber()
    url = f"{READERS}{reader.pk}/"

    shown = api.get(url).json()
    assert (shown["sections"], shown["days"], shown["format"]) == (
        None,
        ["mon", "tue", "wed", "thu", "fri"],
        "full",
    )

    answer = api.patch(url, {"sections": [business.slug, world.slug], "days": ["fri", "mon"]})
    assert answer.status_code == 200, answer.json()
    assert answer.json()["sections"] == sorted([business.slug, world.slug])
    assert answer.json()["days"] == ["mon", "fri"]
    assert answer.json()["format"] == "full"  # not named: unchanged

    answer = api.patch(url, {"format": "headlines"})
    reader.refresh_from_db()
    assert answer.json()["sections"] == sorted([business.slug, world.slug])  # unchanged
    saved = (reader.days, reader.digest_format, reader.all_sections)
    assert saved == ("mon,fri", "headlines", False)

    assert api.patch(url, {"sections": None}).json()["sections"] is None
    reader.refresh_from_db()
    assert reader.all_sections


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sections": ["no-such-section"]}, "sections"),
        ({"sections": []}, "sections"),
        ({"days": ["sat"]}, "days"),
        ({"days": []}, "days"),
        ({"format": "everything"}, "format"),
    ],
)
def test_bad_sections_days_or_format_are_refused_by_field_and_change_nothing(api, change, field):
    make_section(name="World", slug="world")
    reader = make_subscriber()

    answer = api.patch(f"{READERS}{reader.pk}/", change)

    assert answer.status_code == 400
    pointers = [error["pointer"].split("/")[1] for error in answer.json()["errors"]]
    assert pointers == [field], answer.json()
    reader.refresh_from_db()
    assert (reader.all_sections, reader.days, reader.digest_format) == (
        True,
        "mon,tue,wed,thu,fri",
        "full",
    )


def test_the_section_filter_finds_the_readers_whose_digest_carries_it(api):
    world = make_section(name="World", slug="world")
    sport = make_section(name="Sport", slug="sport")
    everything = make_subscriber("all@example.com")
    follows_world = make_subscriber("world@example.com")
    follows_sport = make_subscriber("sport@example.com")
    api.patch(f"{READERS}{follows_world.pk}/", {"sections": [world.slug]})
    api.patch(f"{READERS}{follows_sport.pk}/", {"sections": [sport.slug]})

    answer = api.get(READERS, {"section": world.slug})

    assert answer.status_code == 200
    assert sorted(ids(answer)) == sorted([everything.pk, follows_world.pk])


def test_a_page_of_readers_costs_the_same_queries_whatever_sections_they_follow(api):
    world = make_section(name="World", slug="world")
    for number in range(2):
        api.patch(
            f"{READERS}{make_subscriber(f'r{number}@example.com').pk}/", {"sections": ["world"]}
        )
    with CaptureQueriesContext(connection) as two:
        assert len(api.get(READERS).json()["results"]) == 2
    for number in range(2, 8):
        reader = make_subscriber(f"r{number}@example.com")
        api.patch(f"{READERS}{reader.pk}/", {"sections": [world.slug]})
    with CaptureQueriesContext(connection) as eight:
        assert len(api.get(READERS).json()["results"]) == 8
    assert len(eight.captured_queries) == len(two.captured_queries)
