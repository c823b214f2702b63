"""The by-hand send: an edition sent now to every entitled reader who has not had it.

`send_digest --date` and `--by-hand`, whatever each reader's own morning.
It is send_edition wherever it runs: here, writing the audience and handing
on its batches; as the Celery task delivery.tasks.send_edition, queueing
them (the task the sweep also uses to resume an edition's send); and as
send_edition_in_process, sending them in this process (`send_digest --sync`).
"""

import datetime
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from delivery import audience, counting
from delivery.batches import BatchReport, batch_ranges, send_batch
from delivery.leases import LeaseClock, lease_length
from delivery.recovery import finish_if_done, requeue_expired_claims
from newsletter.models import Edition
from newsletter.schedule import previous_send_moment, send_time_on
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)


class EditionHeld(Exception):
    """The editors are holding this edition back."""


def send_edition(
    edition: Edition,
    now: datetime.datetime | None = None,
    *,
    on_batch: Callable[[int, int], object] | None = None,
) -> bool:
    """Send the edition now to every entitled reader who has not had that date's digest.

    The by-hand send (`send_digest --date`, and tests): whatever each
    reader's own morning (but only to readers whose days include the
    date's weekday), their digest goes now, carrying what was published
    since their previous one. Readers whose morning already brought them this
    date's digest keep theirs (one per reader and date). Once only: later
    calls do nothing, unless the call that began the send died before the
    last of its audience was written; then, once its lease has run out, the
    next call writes the rest.

    The audience is written in chunks (delivery.audience), and
    `on_batch(first_id, last_id)` is given the batches of each as soon as it
    is committed, so the first emails go while the rest is being written.
    Returns whether this call wrote the audience (began the send or took
    over a writer that died).
    """
    now = now or timezone.now()
    with transaction.atomic():
        edition = Edition.objects.select_for_update().get(pk=edition.pk)
        if edition.status == Edition.Status.HELD:
            raise EditionHeld(f"{edition} is held by the editors.")
        began = edition.status == Edition.Status.DRAFT
        lease = edition.audience_lease_until
        if not began and (lease is None or lease >= now):
            return False  # sent or being sent, its audience written or being written
        moment = now if began else (edition.send_started_at or now)
        Edition.objects.filter(pk=edition.pk).update(audience_lease_until=now + lease_length())
        if began:
            audience.mark_sending(edition, now)
        else:
            counting.add("audience_takeovers", 1)
    # The audience as it is when the send begins (also for a writer that
    # takes over): who joins while it is written gets the next edition.
    # Readers who chose days without this date's weekday do not get it.
    readers = (
        Subscriber.objects.entitled(moment)
        .on_their_day(edition.date)
        .filter(created_at__lte=moment)
    )
    # A first digest reaches back to the newsroom's send before this
    # date's (or before the send, for a date still to come).
    default_start = min(
        previous_send_moment(day, settings.DIGEST_SEND_TIME, settings.DIGEST_TIMEZONE)
        for day in (send_time_on(edition.date), moment)
    )
    renewal = LeaseClock(now)
    writing = audience.AudienceWrite(
        edition,
        readers,
        among=Subscriber.objects.all(),
        scheduled_for=moment,
        default_window_start=default_start,
        with_each_chunk=lambda written: Edition.objects.filter(pk=edition.pk).update(
            audience_lease_until=renewal.until()
        ),
        batches=on_batch is not None,
    )
    for first_id, last_id in writing:
        if on_batch is not None:
            on_batch(first_id, last_id)
    Edition.objects.filter(pk=edition.pk).update(audience_lease_until=None)
    if on_batch is not None:
        # Its batches may all have gone before the last chunk was in: theirs
        # found the audience still being written.
        finish_if_done(edition.pk)
    logger.info(
        "Edition %s: sent by hand to %d readers",
        edition.date,
        writing.written,
        extra={"edition": edition.date.isoformat()},
    )
    return True


def send_edition_in_process(edition_id: int) -> BatchReport:
    """Send the whole edition in this process (the command's --sync)."""
    edition = Edition.objects.get(pk=edition_id)
    send_edition(edition)
    requeue_expired_claims(edition)
    report = BatchReport()
    # Every range first, then the sends: the sends write the rows a range
    # query still being read would be reading.
    for first_id, last_id in list(batch_ranges(edition)):
        report.add(send_batch(edition.pk, first_id, last_id))
    finish_if_done(edition.pk)
    return report
