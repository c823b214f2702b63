"""A backup taken in the middle of a send, restored on another database.

The disk dies while an edition is going out: some readers have it, the rest
wait in the queue. The backup restored elsewhere holds every reader,
membership, article, media file and delivery, and the ledger with them, so
resuming the send there (the sweep beat runs every minute) sends only to the
readers who had not had it: each reader gets exactly one copy in all. The
one window where a reader can get a second copy (sent after the backup was
taken, before the disk died) is shown too, with its copies sharing one
Message-ID.

Runs on the suite's database engine: SQLite, and PostgreSQL in CI's
PostgreSQL pass (the other engine's variant is skipped, saying so).
"""

import collections
import datetime
import io
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from delivery import batches, by_hand, tasks
from delivery.models import Delivery
from newsletter.models import Article, Edition, Section
from newsletter.tests.factories import built_edition, make_article, make_section
from subscriptions.models import Membership, Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.commands import run_manage
from testing.databases import another_database, pointed_at

pytestmark = [
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
    pytest.mark.clock(MONDAY_BEFORE_SEND),
]

LEAD_IMAGE = "articles/2026/11/lead.png"
LEAD_IMAGE_BYTES = b"\x89PNG\r\n\x1a\n stands in for a lead image"
# How long the restore took: the sweep finds the send stalled once nothing
# has been sent for a lease's length.
RESTORE_TOOK = datetime.timedelta(minutes=20)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request):
    if request.param != connection.vendor:
        pass_that_runs_it = {
            "postgresql": "CI's PostgreSQL pass (.ci/run, DATABASE_URL=postgres://…) runs it",
            "sqlite": "CI's SQLite pass (.ci/run, the default database) runs it",
        }[request.param]
        pytest.skip(f"the suite runs on {connection.vendor}: {pass_that_runs_it}")
    return request.param


@pytest.fixture
def instance(settings, tmp_path, engine):
    """The live instance's settings: its media folder, its backup folder, batches of 4."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BACKUP_TARGET = str(tmp_path / "backups")
    settings.DIGEST_BATCH_SIZE = 4
    (settings.MEDIA_ROOT / LEAD_IMAGE).parent.mkdir(parents=True)
    (settings.MEDIA_ROOT / LEAD_IMAGE).write_bytes(LEAD_IMAGE_BYTES)
    return settings


@pytest.fixture
def elsewhere(tmp_path, engine):
    with another_database(tmp_path) as database:
        yield database


def populate() -> list[str]:
    """Sections, articles (one with a lead image), and readers in several states.

    Returns the addresses of the ten readers entitled to Monday's digest.
    """
    world = make_section(name="World", slug="world")
    make_section(name="Business", slug="business")
    make_article(section=world, lead_image=LEAD_IMAGE, lead_image_alt="A harbour at dawn")
    make_article(section=world)
    make_article(status=Article.Status.DRAFT, published_ago=None)
    entitled = []
    for number in range(10):
        status = Membership.Status.TRIALING if number % 3 == 0 else Membership.Status.ACTIVE
        reader = make_subscriber(f"reader{number:02d}@example.com", membership=status)
        entitled.append(reader.email)
    make_subscriber("lapsed@example.com", membership=Membership.Status.CANCELED)
    make_subscriber("never-paid@example.com", membership=None)
    return entitled


def contents() -> dict[str, list[tuple]]:
    """What the test compares between the instance and the restored copy, in a stable order."""
    return {
        "readers": sorted(
            Subscriber.objects.values_list("email", "name", "time_zone", "created_at")
        ),
        "memberships": sorted(Membership.objects.values_list("subscriber__email", "status")),
        "sections": sorted(Section.objects.values_list("slug", "name")),
        "articles": sorted(
            Article.objects.values_list("slug", "title", "status", "section__slug", "lead_image")
        ),
        "editions": sorted(Edition.objects.values_list("date", "status", "send_started_at")),
        "deliveries": sorted(
            Delivery.objects.values_list("subscriber__email", "edition__date", "status", "sent_at")
        ),
    }


def statuses() -> collections.Counter:
    return collections.Counter(Delivery.objects.values_list("status", flat=True))


def start_the_send() -> list[tuple[int, int]]:
    """Monday's edition starts going out: the first batch is sent, the others wait in the queue."""
    edition = built_edition(MONDAY)
    by_hand.send_edition(edition)
    ranges = list(batches.batch_ranges(edition))
    assert len(ranges) == 3  # 10 readers in batches of 4
    batches.send_batch(edition.pk, *ranges[0])
    return ranges


def back_up(settings) -> Path:
    call_command("backup", stdout=io.StringIO())
    (archive,) = Path(settings.BACKUP_TARGET).glob("briefing-backup-*.tar")
    return archive


def restore(archive: Path, database, media_root: Path) -> None:
    """`manage.py restore` in a process of its own, configured for the other database."""
    result = run_manage(
        "restore",
        str(archive),
        DATABASE_URL=database.url,
        MEDIA_ROOT=str(media_root),
        DJANGO_DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert "each table's count checked" in result.stdout


def resume_there(clock) -> list[int]:
    """The sweep, as beat runs it every minute on the restored instance, a while after restoring."""
    clock.shift(RESTORE_TOOK)
    return tasks.resume_stalled_sends.delay().get()


def message_ids(smtp_server) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = collections.defaultdict(list)
    for mail in smtp_server.received():
        for address in mail.rcpt_tos:
            ids[address].append(str(mail.message["Message-ID"]))
    return ids


def test_a_backup_taken_mid_send_restores_every_row_and_the_resumed_send_doubles_nothing(
    instance, elsewhere, smtp_server, eager_celery, clock, tmp_path, fault_table
):
    entitled = populate()
    start_the_send()
    assert statuses() == {Delivery.Status.SENT: 4, Delivery.Status.QUEUED: 6}
    assert len(smtp_server.recipients()) == 4
    archive = back_up(instance)
    before = contents()

    # The disk dies; the backup is restored on another database and media folder.
    died = time.monotonic()
    media_elsewhere = tmp_path / "media-elsewhere"
    restore(archive, elsewhere, media_elsewhere)

    with pointed_at(elsewhere.name):
        assert contents() == before
        assert len(before["readers"]) == 12 and len(before["deliveries"]) == 10
        assert (media_elsewhere / LEAD_IMAGE).read_bytes() == LEAD_IMAGE_BYTES
        assert statuses() == {Delivery.Status.SENT: 4, Delivery.Status.QUEUED: 6}

        (edition_id,) = resume_there(clock)

        assert Edition.objects.get(pk=edition_id).date == MONDAY
        assert statuses() == {Delivery.Status.SENT: 10}
        assert Edition.objects.get().status == Edition.Status.SENT

    fault_table(
        f"the disk died mid-send; restored from a backup on another {connection.vendor} database",
        entitled,
        died,
    )
    received = collections.Counter(smtp_server.recipients())
    assert received == {address: 1 for address in entitled}
    assert all(len(set(ids)) == 1 for ids in message_ids(smtp_server).values())


def test_readers_sent_to_after_the_backup_get_a_second_copy_with_the_same_message_id(
    instance, elsewhere, smtp_server, eager_celery, clock, tmp_path, fault_table
):
    """The honest limit: what was sent between the backup and the disk dying is not in it."""
    entitled = populate()
    ranges = start_the_send()
    archive = back_up(instance)
    first_batch = set(smtp_server.recipients())
    # After the backup, before the disk dies: the second batch goes out.
    edition = Edition.objects.get()
    batches.send_batch(edition.pk, *ranges[1])
    after_backup = set(smtp_server.recipients()) - first_batch
    assert len(after_backup) == 4

    died = time.monotonic()
    restore(archive, elsewhere, tmp_path / "media-elsewhere")
    with pointed_at(elsewhere.name):
        resume_there(clock)
        assert statuses() == {Delivery.Status.SENT: 10}

    fault_table(
        "the disk died mid-send, 4 readers sent to after the backup; restored from it",
        entitled,
        died,
    )
    received = collections.Counter(smtp_server.recipients())
    assert {address for address, copies in received.items() if copies == 2} == after_backup
    assert {address for address, copies in received.items() if copies == 1} == (
        set(entitled) - after_backup
    )
    # Both copies carry one Message-ID, so mail clients that deduplicate show one.
    for address, ids in message_ids(smtp_server).items():
        assert len(set(ids)) == 1, (address, ids)
