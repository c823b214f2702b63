"""Every reader's own morning: each gets the digest at their delivery time in their zone.

The scheduler is driven through `send_digest --sync --at …` with the clock
frozen at the same moment, as beat drives it every minute in production.
Thursday 3 December 2026 falls in no one's daylight-saving change: 06:00
in Tokyo is 21:00 UTC the evening before, in London 06:00 UTC, in New York
11:00 UTC and in Honolulu 16:00 UTC.
"""

import collections
import datetime
import io
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client

from delivery import recovery, scheduler, send_report
from delivery.models import Delivery, SendSlot
from newsletter.models import NoSendDay
from newsletter.tests.factories import make_article
from subscriptions.tests.factories import make_subscriber
from testing.concurrency import run_at_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Readers join on Tuesday afternoon (UTC), before anyone's Wednesday ends.
    pytest.mark.clock("2026-12-01T12:00:00+00:00"),
]

ZONES = {
    "tokyo@example.com": "Asia/Tokyo",
    "london@example.com": "Europe/London",
    "newyork@example.com": "America/New_York",
    "honolulu@example.com": "Pacific/Honolulu",
}


def run_at(moment: str) -> str:
    """The scheduler and the sender at `moment`, as beat and a worker would run them."""
    out = io.StringIO()
    # In UTC, as beat's clock reads: the zone in the moment's offset must not help.
    moment = datetime.datetime.fromisoformat(moment).astimezone(datetime.UTC).isoformat()
    with time_machine.travel(moment, tick=False):
        call_command("send_digest", "--sync", "--at", moment, stdout=out)
    return out.getvalue()


def publish_at(moment: str, title: str):
    with time_machine.travel(moment, tick=False):
        return make_article(title=title, published_ago=datetime.timedelta(0))


def counts(smtp_server) -> collections.Counter:
    return collections.Counter(smtp_server.recipients())


@pytest.fixture
def readers():
    return {email: make_subscriber(email, time_zone=zone) for email, zone in ZONES.items()}


def test_each_reader_gets_thursdays_digest_at_their_own_six(smtp_server, readers):
    # After every zone's Wednesday send, before Tokyo's Thursday.
    publish_at("2026-12-02T20:00:00+00:00", "Late on Wednesday")
    expected: collections.Counter = collections.Counter()
    for email, moment in [
        ("tokyo@example.com", "2026-12-03T06:00:00+09:00"),
        ("london@example.com", "2026-12-03T06:00:00+00:00"),
        ("newyork@example.com", "2026-12-03T06:00:00-05:00"),
        ("honolulu@example.com", "2026-12-03T06:00:00-10:00"),
    ]:
        at = datetime.datetime.fromisoformat(moment)
        run_at((at - datetime.timedelta(minutes=1)).isoformat())  # 05:59 there: not yet
        assert counts(smtp_server) == expected, f"{email} early"
        run_at((at + datetime.timedelta(minutes=1)).isoformat())
        expected[email] += 1
        assert counts(smtp_server) == expected, f"{email} at 06:01 local"

    # Beat again, later that day: nobody gets a second.
    run_at("2026-12-03T20:00:00+00:00")
    assert counts(smtp_server) == dict.fromkeys(ZONES, 1)
    # Each copy is Thursday's edition, sent at the reader's own six.
    for delivery in Delivery.objects.select_related("subscriber", "edition"):
        assert delivery.scheduled_for is not None
        local = delivery.scheduled_for.astimezone(ZoneInfo(delivery.time_zone))
        assert (local.date(), local.time()) == (datetime.date(2026, 12, 3), datetime.time(6))
        assert delivery.edition.date == datetime.date(2026, 12, 3)
        assert delivery.status == Delivery.Status.SENT


def test_no_digest_on_anyones_local_weekend(smtp_server, readers):
    publish_at("2026-12-04T20:00:00+00:00", "Friday evening")
    # Saturday and Sunday 06:01 in every zone, and hours around them.
    for day in ("2026-12-05", "2026-12-06"):
        for zone_offset in ("+09:00", "+00:00", "-05:00", "-10:00"):
            run_at(f"{day}T06:01:00{zone_offset}")
    assert smtp_server.recipients() == []
    # Monday brings the weekend's news to each, in their own morning.
    run_at("2026-12-07T06:01:00+09:00")
    assert smtp_server.recipients() == ["tokyo@example.com"]
    for zone_offset in ("+00:00", "-05:00", "-10:00"):
        run_at(f"2026-12-07T06:01:00{zone_offset}")
    assert counts(smtp_server) == dict.fromkeys(ZONES, 1)


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        # New York springs forward on Sunday 8 March 2026: 06:00 is 10:00 UTC.
        ("America/New_York", "2026-03-09T09:59:00+00:00", "2026-03-09T10:01:00+00:00"),
        # London on Sunday 29 March 2026: 06:00 is 05:00 UTC.
        ("Europe/London", "2026-03-30T04:59:00+00:00", "2026-03-30T05:01:00+00:00"),
        # New York falls back on Sunday 1 November 2026: 06:00 is 11:00 UTC again.
        ("America/New_York", "2026-11-02T10:59:00+00:00", "2026-11-02T11:01:00+00:00"),
    ],
)
def test_the_send_follows_the_readers_clock_across_daylight_saving(
    smtp_server, zone, before, after
):
    with time_machine.travel("2026-02-01T12:00:00+00:00", tick=False):
        make_subscriber("ada@example.com", time_zone=zone)
    start = datetime.datetime.fromisoformat(before) - datetime.timedelta(hours=12)
    publish_at(start.isoformat(), "Overnight")

    run_at(before)
    assert smtp_server.recipients() == []
    run_at(after)
    run_at((datetime.datetime.fromisoformat(after) + datetime.timedelta(hours=1)).isoformat())
    assert smtp_server.recipients() == ["ada@example.com"]


def test_a_reader_moving_east_then_west_gets_one_digest_each_weekday(smtp_server):
    with time_machine.travel("2026-11-30T12:00:00+00:00", tick=False):
        reader = make_subscriber("ada@example.com", time_zone="America/New_York")
    # Each published after New York's morning and before Tokyo's next one.
    for day in ("2026-11-30", "2026-12-01", "2026-12-02"):
        publish_at(f"{day}T15:00:00+00:00", f"News of {day}")

    run_at("2026-12-01T06:01:00-05:00")  # Tuesday in New York
    # Tuesday noon in New York she lands in Tokyo, where it is already Wednesday 02:00.
    reader.time_zone = "Asia/Tokyo"
    reader.save()
    run_at("2026-12-02T06:01:00+09:00")  # Wednesday in Tokyo
    # Back to New York before its Wednesday morning: Wednesday is had.
    reader.time_zone = "America/New_York"
    reader.save()
    run_at("2026-12-02T06:01:00-05:00")
    run_at("2026-12-03T06:01:00-05:00")  # Thursday in New York

    sent = Delivery.objects.filter(status=Delivery.Status.SENT).order_by("scheduled_for")
    assert [d.edition.date.isoformat() for d in sent] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert [d.time_zone for d in sent] == ["America/New_York", "Asia/Tokyo", "America/New_York"]
    assert counts(smtp_server) == {"ada@example.com": 3}


def test_a_reader_moving_west_gets_no_second_digest_on_the_same_date(smtp_server):
    reader = make_subscriber("ada@example.com", time_zone="Asia/Tokyo")
    publish_at("2026-12-01T13:00:00+00:00", "Tuesday's news")

    run_at("2026-12-02T06:01:00+09:00")  # Wednesday in Tokyo (Tuesday 21:01 UTC)
    # She flies to Los Angeles, where it is still Tuesday (13:01); its
    # Tuesday morning is over, and Wednesday's digest she has had.
    with time_machine.travel("2026-12-01T21:05:00+00:00", tick=False):
        reader.time_zone = "America/Los_Angeles"
        reader.save()
    run_at("2026-12-01T23:00:00-08:00")
    run_at("2026-12-02T06:01:00-08:00")  # Wednesday in Los Angeles

    assert counts(smtp_server) == {"ada@example.com": 1}


def test_a_pause_skips_digests_and_the_return_carries_what_was_missed(smtp_server):
    reader = make_subscriber("ada@example.com", time_zone="Europe/London")
    other = make_subscriber("bob@example.com", time_zone="Europe/London")
    publish_at("2026-12-01T20:00:00+00:00", "Tuesday evening")
    run_at("2026-12-02T06:01:00+00:00")  # Wednesday: both get it
    reader.pause_until = datetime.date(2026, 12, 7)  # back on Monday
    reader.save()

    thursday = publish_at("2026-12-02T20:00:00+00:00", "Wednesday evening")
    friday = publish_at("2026-12-03T20:00:00+00:00", "Thursday evening")
    monday = publish_at("2026-12-06T20:00:00+00:00", "Sunday evening")
    for day in ("2026-12-03", "2026-12-04", "2026-12-07"):
        run_at(f"{day}T06:01:00+00:00")

    assert counts(smtp_server) == {"ada@example.com": 2, other.email: 4}
    comeback = [m for m in smtp_server.received() if m.rcpt_tos == [reader.email]][-1]
    for article in (thursday, friday, monday):
        assert article.title in comeback.text
    assert "Since Wednesday 06:00" in comeback.text
    wednesday_again = [m for m in smtp_server.received() if m.rcpt_tos == [other.email]][-1]
    assert thursday.title not in wednesday_again.text  # Bob had it on Friday


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo"])
def test_a_no_send_day_rolls_into_the_next_digest(smtp_server, zone):
    # Tokyo's Thursday begins on Wednesday, UTC: the calendar is read by local date.
    make_subscriber("ada@example.com", time_zone=zone)
    NoSendDay.objects.create(date=datetime.date(2026, 12, 3), note="A day of rest")
    wednesday = publish_at("2026-12-02T20:00:00+00:00", "Wednesday evening")
    thursday = publish_at("2026-12-03T20:00:00+00:00", "Thursday evening")

    offset = "+09:00" if zone == "Asia/Tokyo" else "-05:00"
    run_at(f"2026-12-03T06:01:00{offset}")
    assert smtp_server.recipients() == []
    run_at(f"2026-12-04T06:01:00{offset}")
    [mail] = smtp_server.received()
    assert wednesday.title in mail.text
    if zone == "America/New_York":  # Tokyo's Friday came before Thursday evening UTC
        assert thursday.title in mail.text


@pytest.mark.faults
def test_two_schedulers_at_once_write_each_morning_once(smtp_server, readers):
    publish_at("2026-12-02T20:00:00+00:00", "Late on Wednesday")
    moment = datetime.datetime.fromisoformat("2026-12-03T06:01:00+00:00")

    with time_machine.travel(moment, tick=False):
        results = run_at_once(lambda: list(scheduler.schedule_due_sends(moment)), times=2)
    run_at(moment.isoformat())

    # London's morning is due (Tokyo's was nine hours ago, decided then);
    # one scheduler wrote it, the other found it claimed.
    assert sorted(len(batches) for batches in results) == [0, 1]
    assert SendSlot.objects.filter(outcome=SendSlot.Outcome.QUEUED).count() == 1
    assert counts(smtp_server) == {"london@example.com": 1}


@pytest.mark.faults
def test_a_missed_morning_is_caught_up_within_the_window(smtp_server, settings):
    settings.DIGEST_CATCH_UP_HOURS = 3
    make_subscriber("ada@example.com", time_zone="Europe/London")
    publish_at("2026-12-02T20:00:00+00:00", "Late on Wednesday")

    # Beat and workers were down from 05:50 to 08:40.
    run_at("2026-12-03T08:40:00+00:00")

    assert smtp_server.recipients() == ["ada@example.com"]
    assert Delivery.objects.get().status == Delivery.Status.SENT


@pytest.mark.faults
def test_a_morning_missed_past_the_window_is_recorded_not_sent(smtp_server, settings):
    settings.DIGEST_CATCH_UP_HOURS = 3
    make_subscriber("ada@example.com", time_zone="Europe/London")
    publish_at("2026-12-02T20:00:00+00:00", "Late on Wednesday")

    run_at("2026-12-03T09:30:00+00:00")  # down until after her morning was over

    assert smtp_server.recipients() == []
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.MISSED
    assert "while nothing could send" in delivery.last_error
    assert SendSlot.objects.get().outcome == SendSlot.Outcome.MISSED
    # The next morning carries what she missed.
    run_at("2026-12-04T06:01:00+00:00")
    [mail] = smtp_server.received()
    assert "Late on Wednesday" in mail.text


@pytest.mark.faults
def test_queued_digests_not_sent_by_the_end_of_the_morning_are_missed(smtp_server, settings):
    settings.DIGEST_CATCH_UP_HOURS = 3
    make_subscriber("ada@example.com", time_zone="Europe/London")
    publish_at("2026-12-02T20:00:00+00:00", "Late on Wednesday")
    moment = datetime.datetime.fromisoformat("2026-12-03T06:01:00+00:00")
    with time_machine.travel(moment, tick=False):
        list(scheduler.schedule_due_sends(moment))  # queued; then every worker dies

    later = moment + datetime.timedelta(hours=3, minutes=1)
    with time_machine.travel(later, tick=False):
        assert recovery.mark_missed(later) == 1

    assert Delivery.objects.get().status == Delivery.Status.MISSED
    assert smtp_server.recipients() == []


def test_a_reader_who_joins_after_their_morning_starts_the_next_weekday(smtp_server):
    publish_at("2026-12-02T20:00:00+00:00", "Late on Wednesday")
    with time_machine.travel("2026-12-03T06:30:00+00:00", tick=False):
        make_subscriber("ada@example.com", time_zone="Europe/London")
    run_at("2026-12-03T06:45:00+00:00")  # within the catch-up window, but she joined after
    assert smtp_server.recipients() == []
    publish_at("2026-12-03T12:00:00+00:00", "Thursday noon")
    run_at("2026-12-04T06:01:00+00:00")
    [mail] = smtp_server.received()
    assert mail.rcpt_tos == ["ada@example.com"]
    # Her first digest reaches back to the previous weekday's send, not further.
    assert "Thursday noon" in mail.text and "Late on Wednesday" not in mail.text


@pytest.mark.django_db  # the Editors group comes from a migration: no flush
def test_editors_keep_the_no_send_days_in_the_admin(client):
    from newsletter.tests.factories import make_staff

    client.force_login(make_staff("editor"))
    assert client.get("/admin/newsletter/nosendday/").status_code == 200
    response = client.post(
        "/admin/newsletter/nosendday/add/", {"date": "2026-12-25", "note": "Christmas"}
    )
    assert response.status_code == 302
    assert str(NoSendDay.objects.get()) == "Friday 25 December 2026 (Christmas)"
    # Each morning's send is on record for them, read-only.
    assert client.get("/admin/delivery/sendslot/").status_code == 200
    assert client.get("/admin/delivery/sendslot/add/").status_code == 403


def test_the_send_report_shows_each_zones_morning(smtp_server, readers, admin_client, settings):
    settings.DIGEST_CATCH_UP_HOURS = 3
    publish_at("2026-12-02T20:00:00+00:00", "Late on Wednesday")
    run_at("2026-12-03T06:01:00+09:00")  # Tokyo
    run_at("2026-12-03T06:01:00+00:00")  # London
    run_at("2026-12-03T14:30:00+00:00")  # New York's morning went by unsent (09:30 there)

    from newsletter.models import Edition

    edition = Edition.objects.get()
    sends = {send.local_time: send.counts for send in send_report.zone_sends(edition)}
    assert sends["06:00 Asia/Tokyo"]["sent"] == 1
    assert sends["06:00 Europe/London"]["sent"] == 1
    assert sends["06:00 America/New_York"]["missed"] == 1
    assert "06:00 Pacific/Honolulu" not in sends  # still to come

    page = admin_client.get(f"/admin/newsletter/edition/{edition.pk}/desk/").content.decode()
    assert "Each zone&#x27;s morning" in page or "Each zone's morning" in page
    assert "06:00 America/New_York" in page


@pytest.mark.django_db
@pytest.mark.clock("2026-12-02T16:50:00+00:00")  # Wednesday 11:50 in New York
def test_the_desk_lists_the_next_sends_soonest_first(admin_client):
    from newsletter.desk import next_sends

    for email, zone in ZONES.items():
        make_subscriber(email, time_zone=zone)
    make_subscriber("tokyo2@example.com", time_zone="Asia/Tokyo")

    labels = [send.label for send in next_sends()]

    assert labels == [
        "Thursday 06:00 Asia/Tokyo, in 4 h 10 min, 2 readers",
        "Thursday 06:00 Europe/London, in 13 h 10 min, 1 reader",
        "Thursday 06:00 America/New_York, in 18 h 10 min, 1 reader",
        "Thursday 06:00 Pacific/Honolulu, in 23 h 10 min, 1 reader",
    ]
    publish_at("2026-12-02T16:00:00+00:00", "Wednesday noon")
    page = admin_client.get("/admin/newsletter/edition/next/", follow=True).content.decode()
    assert "Thursday 06:00 Asia/Tokyo, in 4 h 10 min, 2 readers" in page


def test_a_hold_after_the_first_zone_holds_the_remaining_zones(smtp_server, readers, admin_client):
    from newsletter.models import Edition

    publish_at("2026-12-02T20:00:00+00:00", "Late on Wednesday")
    run_at("2026-12-03T06:01:00+09:00")  # Tokyo has it
    edition = Edition.objects.get()
    assert edition.status == Edition.Status.SENT  # to the zones so far

    # Between Tokyo's morning and London's the editors hold it.
    with time_machine.travel("2026-12-03T05:59:30+00:00", tick=False):
        page = admin_client.get(f"/admin/newsletter/edition/{edition.pk}/desk/").content
        assert b"Hold the remaining zones" in page
        response = admin_client.post(f"/admin/newsletter/edition/{edition.pk}/hold/", follow=True)
    assert "the zones whose morning has not come wait" in response.content.decode()
    # Tokyo's readers have it: its web page and its archive entry stay up.
    anonymous = Client()
    assert anonymous.get(edition.get_absolute_url()).status_code == 200
    assert edition.get_absolute_url() in anonymous.get("/archive/").content.decode()

    run_at("2026-12-03T06:01:00+00:00")  # London: held
    assert counts(smtp_server) == {"tokyo@example.com": 1}

    with time_machine.travel("2026-12-03T06:20:00+00:00", tick=False):
        released = admin_client.post(
            f"/admin/newsletter/edition/{edition.pk}/release/", follow=True
        )
    assert "Released" in released.content.decode(), released.content.decode()[-3000:]
    edition.refresh_from_db()
    assert edition.status == Edition.Status.SENDING
    run_at("2026-12-03T06:21:00+00:00")  # released within London's morning: it goes
    assert counts(smtp_server) == {"tokyo@example.com": 1, "london@example.com": 1}


def test_the_desk_previews_the_email_for_a_reader_in_any_zone(
    smtp_server, admin_client, admin_user
):
    # Tuesday noon UTC. Wednesday's morning in Tokyo (21:00 UTC today) carries
    # what came since Tuesday 06:00 there (21:00 UTC yesterday); New York's
    # (11:00 UTC tomorrow) what came since 11:00 UTC today.
    from newsletter import editions

    publish_at("2026-12-01T10:00:00+00:00", "Before New York's Tuesday morning")
    publish_at("2026-12-01T11:30:00+00:00", "After it")
    make_subscriber("tokyo@example.com", time_zone="Asia/Tokyo")
    edition = editions.build_edition(datetime.date(2026, 12, 2))
    assert edition is not None
    desk = f"/admin/newsletter/edition/{edition.pk}/desk/"

    tokyo = admin_client.get(desk, {"reader": "trialing", "zone": "Asia/Tokyo"})
    text = tokyo.context["message"].body
    # In the trial: its end (ten days on, Friday 11 December) on Tokyo's calendar.
    assert "Your free trial ends on Friday 11 December." in text
    assert "Since Tuesday 06:00 JST" in text
    assert "Before New York's Tuesday morning" in text and "After it" in text
    page = tokyo.content.decode()
    assert "Wednesday 2 December, 06:00 Asia/Tokyo" in page
    assert '<option value="Asia/Tokyo" selected>Tokyo</option>' in page
    # The list of next sends says what Tokyo's carries so far and links its preview.
    assert "1 reader: 2 articles so far, since Tuesday 06:00 JST" in page

    new_york = admin_client.get(desk, {"reader": "paying", "zone": "America/New_York"})
    text = new_york.context["message"].body
    assert "Since Tuesday 06:00 EST" in text
    assert "After it" in text and "Before New York's Tuesday morning" not in text

    # A test send goes as that reader in that zone, and the desk stays on it.
    admin_user.email = "editor@example.com"
    admin_user.save()
    response = admin_client.post(
        f"/admin/newsletter/edition/{edition.pk}/test/", {"reader": "paying", "zone": "Asia/Tokyo"}
    )
    assert response.url.endswith("?reader=paying&zone=Asia%2FTokyo")
    assert "Since Tuesday 06:00 JST" in smtp_server.received()[0].text

    # Nonsense in the query string: a clear note, and the default reader.
    bad = admin_client.get(desk, {"reader": "paying", "zone": "Mars/Olympus"})
    assert "Mars/Olympus is not a known time zone." in bad.content.decode()
    assert "Since Tuesday 06:00 EST" in bad.context["message"].body
