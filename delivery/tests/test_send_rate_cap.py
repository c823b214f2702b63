"""SEND_RATE_LIMIT: emails a second across every worker on every host (delivery.wire.rate)."""

import datetime
import threading
import time
from unittest import mock
from zoneinfo import ZoneInfo

import pytest

from delivery import by_hand
from delivery.models import Delivery
from delivery.send_report import ZoneSend
from delivery.wire import rate
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND


class StoppedClock:
    """The time a sender sees: it moves only while the sender sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_each_email_waits_for_its_place_at_the_limit():
    clock = StoppedClock()
    cap = rate.RateCap(500, rate.LocalSchedule(clock), sleep=clock.sleep)
    assert cap.block == 25  # a 20th of a second's worth

    for _ in range(100):
        cap.take()

    # The first block goes at once; each next one a 20th of a second later.
    assert clock.slept == pytest.approx([0.05, 0.05, 0.05])
    assert clock.now - 1000.0 == pytest.approx(75 / 500)


def test_places_not_used_are_given_back():
    clock = StoppedClock()
    schedule = rate.LocalSchedule(clock)
    first = rate.RateCap(100, schedule, sleep=clock.sleep)
    first.take()  # reserves a block of 5, uses 1
    first.release()
    second = rate.RateCap(100, schedule, sleep=clock.sleep)

    second.take()

    assert clock.slept == pytest.approx([0.01])  # behind the 1 used, not the 5 reserved


def test_workers_on_different_hosts_share_one_rate_through_redis(private_redis):
    limit, each, workers = 1000, 300, 3
    caps = [rate.RateCap(limit, rate.RedisSchedule(private_redis.url)) for _ in range(workers)]

    def send(cap: rate.RateCap) -> None:
        for _ in range(each):
            cap.take()

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(cap,)) for cap in caps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - started

    # 900 emails at 1,000/s: at least the time their places take, whatever the
    # load (each worker's first block may go at once).
    assert elapsed >= (workers * each - workers * caps[0].block) / limit
    assert sum(cap.waited for cap in caps) > 0


def test_with_redis_down_the_cap_is_kept_in_the_process():
    schedule = rate.RedisSchedule("redis://127.0.0.1:9/0")  # the discard port: nobody
    # The module's logger itself: what other tests did to logging's
    # configuration in this process cannot hide the line.
    with mock.patch.object(rate.logger, "warning") as warned:
        assert schedule.reserve(10, 100) >= 0
    [(message, *_)] = [call.args for call in warned.call_args_list]
    assert message.startswith("Send-rate cap kept in this process")


@pytest.mark.django_db
@pytest.mark.clock(MONDAY_BEFORE_SEND)
def test_a_send_keeps_to_the_configured_rate(smtp_server, settings):
    settings.SEND_RATE_LIMIT = 50  # blocks of 2
    make_article()
    readers = [make_subscriber(f"reader{n}@example.com") for n in range(30)]
    edition = built_edition(MONDAY)

    started = time.monotonic()
    report = by_hand.send_edition_in_process(edition.pk)
    elapsed = time.monotonic() - started

    assert report.sent == 30
    assert elapsed >= (30 - 2) / 50
    assert smtp_server.recipients() == sorted(reader.email for reader in readers)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def zone_send(sent: int, queued: int, first: str | None, last: str | None) -> ZoneSend:
    counts = dict.fromkeys(Delivery.Status.values, 0)
    counts.update(sent=sent, queued=queued)
    return ZoneSend(
        "Asia/Tokyo",
        datetime.datetime.fromisoformat("2026-11-29T21:00:00+00:00"),
        counts,
        first_sent=datetime.datetime.fromisoformat(first) if first else None,
        last_sent=datetime.datetime.fromisoformat(last) if last else None,
    )


def test_each_zones_expected_finish_follows_its_pace_so_far(settings):
    now = datetime.datetime.fromisoformat("2026-11-29T21:01:40+00:00")
    # 1,001 sent in 100 s: 10 a second; 6,000 to go: 600 s more.
    going = zone_send(1001, 6000, "2026-11-29T21:00:00+00:00", "2026-11-29T21:01:40+00:00")
    assert going.sending_rate() == 10
    assert going.finish_label(now) == "06:11 Asia/Tokyo"  # 21:11 UTC, in the readers' zone

    done = zone_send(5, 0, "2026-11-29T21:00:00+00:00", "2026-11-29T21:00:03+00:00")
    assert done.expected_finish(now) == done.last_sent

    not_started = zone_send(0, 100, None, None)
    settings.SEND_RATE_LIMIT = 0
    assert not_started.finish_label(now) == "unknown"
    settings.SEND_RATE_LIMIT = 50  # before any pace, the cap's
    assert not_started.expected_finish(now) == now + datetime.timedelta(seconds=2)


@pytest.mark.django_db
@pytest.mark.clock(MONDAY_BEFORE_SEND)
def test_the_desk_shows_each_zones_expected_finish(smtp_server, admin_client):
    make_article()
    for n in range(3):
        make_subscriber(f"reader{n}@example.com", time_zone="Europe/Paris")
    edition = built_edition(MONDAY)
    by_hand.send_edition_in_process(edition.pk)

    page = admin_client.get(f"/admin/newsletter/edition/{edition.pk}/desk/").content.decode()

    assert "Done by (expected)" in page
    sent_at = Delivery.objects.values_list("sent_at", flat=True).first()
    assert sent_at is not None
    assert f"{sent_at.astimezone(ZoneInfo('Europe/Paris')):%H:%M} Europe/Paris" in page
