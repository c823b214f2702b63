"""The cap on connections to one relay, over every worker (delivery.wire.relay_places)."""

from unittest import mock

from delivery.wire import relay_places
from testing.concurrency import wait_for

RELAY = "relay.example.net:587"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_pools_share_the_cap_and_the_first_connection_always_counts():
    count = relay_places.LocalCount(Clock())
    # Cap 5: the first pool's own connection and 3 more; the second gets 1 more.
    assert count.take(RELAY, ["a0"], names("a", 4)[1:], cap=5) == 3
    assert count.take(RELAY, ["b0"], names("b", 4)[1:], cap=5) == 0
    # Past the cap, a batch still sends over its own connection.
    assert count.take(RELAY, ["c0"], names("c", 4)[1:], cap=5) == 0
    assert len(count.places[RELAY]) == 6
    # Another relay has a count of its own.
    assert count.take("other.example.net:25", ["d0"], names("d", 4)[1:], cap=5) == 3

    count.give_back(RELAY, names("a", 4))
    assert count.take(RELAY, ["e0"], names("e", 4)[1:], cap=5) == 2


def test_a_killed_workers_places_run_out_unless_renewed():
    clock = Clock()
    count = relay_places.LocalCount(clock)
    count.take(RELAY, ["dead0"], ["dead1", "dead2"], cap=4)
    count.take(RELAY, ["live0"], [], cap=4)
    clock.now += relay_places.PLACE_SECONDS / 2
    count.renew(RELAY, ["live0"])
    clock.now += relay_places.PLACE_SECONDS / 2  # the dead worker's places have run out

    assert count.take(RELAY, ["new0"], ["new1", "new2", "new3"], cap=4) == 2
    assert set(count.places[RELAY]) == {"live0", "new0", "new1", "new2"}


def test_a_pool_renews_its_places_every_third_of_their_life():
    clock = Clock()
    count = mock.Mock()
    places = relay_places.Places(count, RELAY, ["p0", "p1"], clock=clock)
    places.keep()
    clock.now += relay_places.PLACE_SECONDS / 3 - 1
    places.keep()
    assert count.renew.call_count == 0
    clock.now += 1
    places.keep()
    places.keep()
    assert count.renew.call_args_list == [mock.call(RELAY, ["p0", "p1"])]
    places.give_back()
    places.give_back()
    assert count.give_back.call_args_list == [mock.call(RELAY, ["p0", "p1"])]


def test_workers_on_different_hosts_share_one_count_through_redis(private_redis, monkeypatch):
    # Two processes' counts: each its own client, one Redis.
    first, second = (relay_places.RedisCount(private_redis.url) for _ in range(2))
    assert first.take(RELAY, ["a0"], names("a", 8)[1:], cap=10) == 7
    assert second.take(RELAY, ["b0"], names("b", 8)[1:], cap=10) == 1
    first.give_back(RELAY, names("a", 8))
    assert second.take(RELAY, ["c0"], names("c", 8)[1:], cap=10) == 7

    # Places nobody renews (a worker killed mid-batch) run out by Redis's clock.
    monkeypatch.setattr(relay_places, "PLACE_SECONDS", 0.5)
    first.take("short.example.net:25", ["k0"], names("k", 3)[1:], cap=3)
    assert wait_for(
        lambda: second.take("short.example.net:25", [], ["x"], cap=3) == 1,
        timeout=relay_places.PLACE_SECONDS * 20,
    )


def test_with_redis_down_the_count_is_kept_in_the_process():
    count = relay_places.RedisCount("redis://127.0.0.1:9/0")  # the discard port: nobody
    with mock.patch.object(relay_places.logger, "warning") as warned:
        assert count.take("down.example.net:25", ["a0"], ["a1"], cap=5) == 1
        count.renew("down.example.net:25", ["a0"])
        count.give_back("down.example.net:25", ["a0", "a1"])
    messages = [call.args[0] for call in warned.call_args_list]
    assert messages[0].startswith("Relay connections counted in this process")
    assert len(messages) == 3
