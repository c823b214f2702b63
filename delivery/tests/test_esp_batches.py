"""ESPs' batch APIs (delivery.wire.esp): many readers per call, every per-reader part their own.

Through django-anymail's real Mailgun, Postmark and SendGrid backends to fake APIs in
a process of their own (testing.fake_esp), which expand each recipient's
message as the ESP does and check that its List-Unsubscribe is that
reader's own. Every outcome of a call: all accepted, some refused, the whole
call refused, no answer (a timeout, a 5xx, a hang-up), a 429.
"""

import datetime
import time
from collections import Counter

import pytest
import time_machine
from django.utils import timezone

from delivery import batches, by_hand, recovery, send_report
from delivery.leases import lease_length
from delivery.models import Delivery
from delivery.wire import esp
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing import fault_table
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.fake_esp import FakeESPProcess

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

ESPS = ["postmark", "mailgun", "sendgrid"]
CARRIERS = {
    "postmark": esp.PostmarkBatch,
    "mailgun": esp.MailgunBatch,
    "sendgrid": esp.SendGridBatch,
}


@pytest.fixture
def fake_esp(tmp_path):
    server = FakeESPProcess(tmp_path / "esp")
    yield server
    server.stop()


@pytest.fixture(params=ESPS)
def through(request, fake_esp, settings):
    """The default mailer is this ESP's anymail backend, pointed at the fake API."""
    settings.MAILERS = {"default": fake_esp.mailer(request.param, timeout=2)}
    return request.param


@pytest.fixture
def readers():
    make_article()
    return [make_subscriber(f"reader{n}@example.com", name=f"Reader {n}") for n in range(7)]


def statuses() -> dict[str, int]:
    return dict(Counter(Delivery.objects.values_list("status", flat=True)))


def test_every_reader_gets_their_own_message_in_calls_of_the_esps_limit(
    through, fake_esp, readers, settings, monkeypatch
):
    settings.DIGEST_BATCH_SIZE = 100
    monkeypatch.setattr(CARRIERS[through], "limit", 3)
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 7 and statuses() == {"sent": 7}
    assert [call["recipients"] for call in fake_esp.calls()] == [3, 3, 1]
    received = {record["to"]: record for record in fake_esp.received()}
    assert sorted(received) == sorted(reader.email for reader in readers)
    deliveries = {d.subscriber.email: d for d in Delivery.objects.select_related("subscriber")}
    unsubscribe_links = set()
    for reader in readers:
        mine = received[reader.email]
        assert mine["own_list_unsubscribe"], mine["headers"]
        unsubscribe_links.add(mine["headers"]["List-Unsubscribe"])
        # The greeting names them, in both parts.
        assert reader.name in mine["text"] and reader.name in mine["html"]
        assert "%recipient" not in mine["text"] + mine["html"]
        assert "-text_" not in mine["text"] and "-html_" not in mine["html"]
        # Bounces and complaints map back to the delivery (deliverability.tracking).
        assert mine["metadata"]["delivery_id"] == str(deliveries[reader.email].pk)
        assert mine["metadata"]["edition"] == str(edition.date)
        assert mine["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert len(unsubscribe_links) == 7


@pytest.mark.parametrize("merging", ["mailgun", "sendgrid"])
def test_merge_calls_carry_one_content_each(fake_esp, settings, merging):
    settings.MAILERS = {"default": fake_esp.mailer(merging)}
    make_article()
    for n in range(2):
        make_subscriber(f"paris{n}@example.com", time_zone="Europe/Paris")
        make_subscriber(f"york{n}@example.com", time_zone="America/New_York")
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 4
    # Two contents (the zones' digests say "since" in their own zone): two calls.
    assert sorted(call["recipients"] for call in fake_esp.calls()) == [2, 2]


def record(fault: str, readers, fake_esp, fault_at: float) -> None:
    """The fault's row in `make faults`' table, from what the fake ESP received."""
    expected = [reader.email for reader in readers]
    fault_table.append(fault_table.Row.measure(fault, expected, fake_esp.recipients(), fault_at))


@pytest.mark.faults
def test_postmark_refusing_some_messages_fails_only_those(fake_esp, readers, settings):
    settings.MAILERS = {"default": fake_esp.mailer("postmark")}
    fake_esp.inject_faults(refuse=["reader2@example.com", "reader5@example.com"])
    edition = built_edition(MONDAY)
    fault_at = time.monotonic()

    report = by_hand.send_edition_in_process(edition.pk)
    accepted = [r for r in readers if r.email not in ("reader2@example.com", "reader5@example.com")]
    record("Postmark's batch API refuses 2 of 7 messages (the rest)", accepted, fake_esp, fault_at)

    assert report.sent == 5 and report.failed == 2
    assert statuses() == {"sent": 5, "failed": 2}
    refused = Delivery.objects.filter(status=Delivery.Status.FAILED)
    assert {d.subscriber.email for d in refused} == {"reader2@example.com", "reader5@example.com"}
    assert all("406" in d.last_error and "inactive" in d.last_error for d in refused)
    assert len(fake_esp.received()) == 5


@pytest.mark.faults
@pytest.mark.parametrize(
    "fault", [{"token": "another-token", "api_key": "another-key"}, {"status": 400}]
)
def test_a_call_refused_whole_sends_nobody_and_is_retried(through, fake_esp, readers, fault):
    fake_esp.inject_faults(**fault)
    edition = built_edition(MONDAY)
    fault_at = time.monotonic()

    with pytest.raises(batches.TransientSendError) as raised:
        by_hand.send_edition_in_process(edition.pk)

    assert not isinstance(raised.value, batches.ThrottledSend)
    assert fake_esp.received() == []
    # Back in the queue, the ESP's answer said, one attempt counted each.
    assert statuses() == {"queued": 7}
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}
    assert all(str(fault.get("status", 401)) in e for e in Delivery.objects.values_list(
        "last_error", flat=True))  # fmt: skip

    fake_esp.clear_faults()
    by_hand.send_edition_in_process(edition.pk)
    assert fake_esp.recipients() == sorted(reader.email for reader in readers)
    what = "refused the call (bad credentials)" if "token" in fault else "answered 400"
    record(f"{through}'s batch API {what}, then took it", readers, fake_esp, fault_at)


@pytest.mark.faults
@pytest.mark.parametrize("fault", [{"delay_seconds": 4}, {"status": 503}, {"hang_up": True}])
def test_a_call_without_a_clear_answer_leaves_its_readers_unconfirmed_never_resent(
    through, fake_esp, readers, fault
):
    fake_esp.inject_faults(**fault)  # the fake stores the call: it went out
    edition = built_edition(MONDAY)
    fault_at = time.monotonic()

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 7
    assert set(Delivery.objects.values_list("status", "last_error")) == {
        ("sent", Delivery.UNCONFIRMED_NOTE)
    }
    assert send_report.unconfirmed(edition) == 7
    fake_esp.clear_faults()
    by_hand.send_edition_in_process(edition.pk)
    assert fake_esp.recipients() == sorted(reader.email for reader in readers)
    what = {"delay_seconds": "timed out", "status": "answered 503", "hang_up": "hung up"}
    record(f"{through}'s batch API {what[next(iter(fault))]} after the call went", readers,
           fake_esp, fault_at)  # fmt: skip


@pytest.mark.faults
def test_a_429_slows_the_send_without_failing_or_counting_anyone(through, fake_esp, readers):
    fake_esp.inject_faults(status=429, retry_after="1")
    edition = built_edition(MONDAY)
    fault_at = time.monotonic()

    with pytest.raises(batches.ThrottledSend, match="429"):
        by_hand.send_edition_in_process(edition.pk)

    assert statuses() == {"queued": 7}
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {0}
    fake_esp.clear_faults()
    report = by_hand.send_edition_in_process(edition.pk)
    assert report.sent == 7
    assert fake_esp.recipients() == sorted(reader.email for reader in readers)
    record(f"{through}'s batch API answers 429, then takes the call", readers, fake_esp, fault_at)


@pytest.mark.faults
def test_an_unreachable_esp_sends_nobody_and_is_retried(through, fake_esp, readers):
    fake_esp.stop()  # nothing listens on its port any more
    edition = built_edition(MONDAY)

    with pytest.raises(batches.TransientSendError, match="could not be reached"):
        by_hand.send_edition_in_process(edition.pk)

    assert statuses() == {"queued": 7}


@pytest.mark.faults
def test_a_worker_killed_mid_call_doubles_at_most_that_call(
    through, fake_esp, readers, settings, monkeypatch, admin_client
):
    settings.DIGEST_BATCH_SIZE = 100
    settings.DIGEST_CHECKPOINT_EVERY = 100
    carrier = CARRIERS[through]
    monkeypatch.setattr(carrier, "limit", 2)
    edition = built_edition(MONDAY)
    real_call = carrier.call
    calls: list[int] = []

    def call_then_die(self, held):
        outcomes = real_call(self, held)
        calls.append(len(held))
        if len(calls) == 3:
            # The ESP accepted the third call; the worker is killed before it
            # records it: SystemExit runs no cleanup, as SIGKILL would not.
            raise SystemExit("killed")
        return outcomes

    monkeypatch.setattr(carrier, "call", call_then_die)
    fault_at = time.monotonic()
    with pytest.raises(SystemExit):
        by_hand.send_edition_in_process(edition.pk)
    monkeypatch.setattr(carrier, "call", real_call)

    # The first two calls were recorded before the third went.
    assert statuses() == {"sent": 4, "sending": 3}
    later = timezone.now() + lease_length() + datetime.timedelta(seconds=1)
    with time_machine.travel(later):
        assert recovery.editions_to_resume() == [edition]
        by_hand.send_edition_in_process(edition.pk)

    copies = Counter(fake_esp.recipients())
    fault_table.append(
        fault_table.Row.measure(
            f"Worker killed mid-call to {through}'s batch API (calls of 2, in-process)",
            [reader.email for reader in readers],
            fake_esp.recipients(),
            fault_at,
        )
    )
    assert set(copies) == {reader.email for reader in readers}  # lost: 0
    assert sorted(copies.values()) == [1] * 5 + [2] * 2  # doubled: the call in flight
    # The desk's count is what the ledger knows: the rows the dead worker held
    # unrecorded (the call in flight and the reader not yet sent).
    assert send_report.may_have_had_twice(edition) == 3
    page = admin_client.get(f"/admin/newsletter/edition/{edition.pk}/desk/").content.decode()
    assert "3 readers may have received it twice" in page
