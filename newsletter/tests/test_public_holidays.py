"""DIGEST_SKIP_PUBLIC_HOLIDAYS: no digest on a reader's national holiday, where they live.

Monday 23 November 2026 is Labour Thanksgiving Day in Japan and an ordinary
Monday in the United Kingdom. 06:00 in Tokyo that day is 21:00 UTC on
Sunday; 06:00 in London is 06:00 UTC.
"""

import datetime
import io

import pytest
import time_machine
from django.core.management import call_command

from newsletter import calendar
from newsletter.tests.factories import make_article
from subscriptions.tests.factories import make_subscriber

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.clock("2026-11-20T12:00:00+00:00"),  # Friday: the readers join
]

TOKYO_MONDAY = "2026-11-22T21:01:00+00:00"
LONDON_MONDAY = "2026-11-23T06:01:00+00:00"
TOKYO_TUESDAY = "2026-11-23T21:01:00+00:00"


def run_at(moment: str) -> None:
    with time_machine.travel(moment, tick=False):
        call_command("send_digest", "--sync", "--at", moment, stdout=io.StringIO())


@pytest.fixture
def readers():
    make_subscriber("tokyo@example.com", time_zone="Asia/Tokyo")
    make_subscriber("london@example.com", time_zone="Europe/London")
    with time_machine.travel("2026-11-22T12:00:00+00:00", tick=False):  # Sunday
        make_article(title="Sunday's story", published_ago=datetime.timedelta(0))


def test_the_zone_names_the_country():
    assert calendar.zone_country("Asia/Tokyo") == "JP"
    assert calendar.zone_country("Europe/London") == "GB"
    assert calendar.zone_country("UTC") is None


def test_a_reader_gets_no_digest_on_their_national_holiday(smtp_server, readers, settings):
    settings.DIGEST_SKIP_PUBLIC_HOLIDAYS = True

    run_at(TOKYO_MONDAY)
    run_at(LONDON_MONDAY)
    assert smtp_server.recipients() == ["london@example.com"]

    # Tuesday's digest in Tokyo carries what the holiday would have.
    run_at(TOKYO_TUESDAY)
    assert smtp_server.recipients() == ["london@example.com", "tokyo@example.com"]
    assert "Sunday's story" in smtp_server.received()[-1].text


def test_holidays_are_sent_through_unless_the_setting_is_on(smtp_server, readers):
    run_at(TOKYO_MONDAY)

    assert smtp_server.recipients() == ["tokyo@example.com"]


def test_the_promised_first_digest_skips_the_holiday(settings):
    joined = datetime.datetime.fromisoformat("2026-11-20T12:00:00+00:00")
    six = datetime.time(6)

    settings.DIGEST_SKIP_PUBLIC_HOLIDAYS = True
    assert calendar.next_digest_at(six, "Asia/Tokyo", joined).isoformat() == (
        "2026-11-24T06:00:00+09:00"
    )
    assert calendar.next_digest_at(six, "Europe/London", joined).isoformat() == (
        "2026-11-23T06:00:00+00:00"
    )
    settings.DIGEST_SKIP_PUBLIC_HOLIDAYS = False
    assert calendar.next_digest_at(six, "Asia/Tokyo", joined).isoformat() == (
        "2026-11-23T06:00:00+09:00"
    )
