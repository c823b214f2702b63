"""Each reader's morning: the scheduler that writes the deliveries of every send moment that came.

Beat runs it every minute (delivery.tasks.send_due_digests). For each
(zone, delivery time) readers have, a send moment that has passed is
claimed once (SendSlot, unique per local date, zone and time) and its
audience written (delivery.audience); its batches go to the batch tasks
as soon as each chunk of the audience is committed.
"""

import datetime
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config import logcontext
from delivery import audience, counting
from delivery.leases import LeaseClock
from delivery.models import Delivery, SendSlot
from delivery.recovery import catch_up_window, finish_if_done
from newsletter import calendar
from newsletter.editions import build_edition
from newsletter.models import Article, Edition
from newsletter.schedule import (
    is_send_day,
    local_date,
    previous_send_moment,
    send_moment,
)
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)


def schedule_due_sends(now: datetime.datetime | None = None) -> Iterator[tuple[int, int, int]]:
    """Write the deliveries of every local morning that has come; yield their batches.

    For each (zone, delivery time) that readers have, and each of the last
    two local dates there, a send moment that has passed is claimed once
    (SendSlot, unique): within the catch-up window its readers' deliveries
    are queued; later (beat or workers were down all morning) they are
    recorded as missed. Weekends where the reader lives, no-send days and
    held editions get none, nor (DIGEST_SKIP_PUBLIC_HOLIDAYS) the reader's
    national holidays. Yields (edition_id, first_id, last_id) ranges of
    the new queued rows, for the batch tasks, each as soon as its rows are
    committed: the first batches go while the rest of the audience is written.
    Nothing is written until it is iterated.
    """
    now = now or timezone.now()
    today = now.astimezone(datetime.UTC).date()  # whatever offset `now` came with
    # Local dates run up to a day ahead of UTC's (Tokyo, Kiritimati).
    # Back far enough for a first digest's window: the previous send day.
    start, end = today - calendar.LOOKBACK, today + datetime.timedelta(days=1)
    no_send = calendar.no_send_days(start, end)
    catch_up = catch_up_window()
    slots = Subscriber.objects.order_by().values_list("time_zone", "send_time").distinct()
    for zone, send_time in slots:
        skipped = calendar.days_off(zone, start, end, no_send)
        local = local_date(now, zone)
        for day in (local - datetime.timedelta(days=1), local):
            moment = send_moment(day, send_time, zone)
            # Older slots were decided on their own day (or are beyond recall).
            if not is_send_day(day, skipped) or not moment <= now < moment + 2 * catch_up:
                continue
            # Its lines (and the batches queued meanwhile) name the edition and zone.
            with logcontext.bound(edition=day.isoformat(), zone=zone):
                yield from schedule_slot(day, zone, send_time, moment, now, skipped)


def schedule_slot(
    day: datetime.date,
    zone: str,
    send_time: datetime.time,
    moment: datetime.datetime,
    now: datetime.datetime,
    skipped: set[datetime.date],
) -> Iterator[tuple[int, int, int]]:
    """Claim one local morning's send and write its deliveries (see schedule_due_sends).

    Yields the batches of each chunk of the audience once it is committed.
    A slot still "writing" whose lease has run out (its writer died) is
    taken over: its audience is written again, which adds only the readers
    the first writer did not reach.
    """
    slot = SendSlot.objects.filter(date=day, time_zone=zone, send_time=send_time).first()
    if slot is not None and not slot.writer_died(now):
        return
    # Nothing new for the edition may still be something for a reader whose
    # window reaches back (a pause, a missed morning): the windows decide.
    backlog = datetime.timedelta(days=settings.DIGEST_MAX_BACKLOG_DAYS)
    owed = Article.objects.published_between(moment - backlog, moment).exists()
    edition = build_edition(day, now=moment, even_if_empty=owed)
    if edition is not None and edition.status == Edition.Status.HELD:
        return  # the editors decide; the slot stays open until they release it
    missed = now >= moment + catch_up_window()
    renewal = LeaseClock(now)
    if slot is None:
        try:
            with transaction.atomic():
                slot = SendSlot.objects.create(
                    date=day,
                    time_zone=zone,
                    send_time=send_time,
                    scheduled_for=moment,
                    outcome=SendSlot.Outcome.NOTHING_NEW
                    if edition is None
                    else SendSlot.Outcome.WRITING,
                    lease_until=None if edition is None else renewal.until(),
                )
        except IntegrityError:
            return  # another scheduler claimed it first
        took_over = False
    else:
        with transaction.atomic():
            took_over = bool(
                SendSlot.objects.filter(pk=slot.pk, lease_until=slot.lease_until).update(
                    lease_until=renewal.until()
                )
            )
            counting.add("audience_takeovers", int(took_over))
        if not took_over:
            return  # another scheduler took it over first
        logger.warning(
            "%s %s %s: writing the audience again (its writer died)", day, send_time, zone
        )
    if edition is None:
        return

    def with_each_chunk(written: int) -> None:
        SendSlot.objects.filter(pk=slot.pk).update(lease_until=renewal.until())
        if written and not missed:
            audience.mark_sending(edition, now)

    readers = (
        Subscriber.objects.entitled(moment)
        .on_their_day(day)
        .filter(time_zone=zone, send_time=send_time, created_at__lt=moment)
        .exclude(pause_until__gt=day)
    )
    writing = audience.AudienceWrite(
        edition,
        readers,
        among=Subscriber.objects.filter(time_zone=zone, send_time=send_time),
        scheduled_for=moment,
        default_window_start=previous_send_moment(moment, send_time, zone, skipped),
        status=Delivery.Status.MISSED if missed else Delivery.Status.QUEUED,
        with_each_chunk=with_each_chunk,
        batches=not missed,
    )
    for first_id, last_id in writing:
        yield (edition.pk, first_id, last_id)
    count = writing.written
    if took_over:  # the first writer's rows count too
        count = edition.deliveries.filter(scheduled_for=moment, time_zone=zone).count()
    slot.readers = count
    slot.outcome = SendSlot.Outcome.MISSED if missed else SendSlot.Outcome.QUEUED
    slot.lease_until = None
    slot.save(update_fields=["readers", "outcome", "lease_until"])
    if missed:
        with transaction.atomic():
            Delivery.objects.filter(
                edition=edition, scheduled_for=moment, time_zone=zone, status=Delivery.Status.MISSED
            ).update(last_error=f"Due at {moment.isoformat()} while nothing could send.")
            counting.add("digests_missed", count)
        logger.error("%s %s %s: %d digests missed (due %s)", day, send_time, zone, count, moment)
        return
    finish_if_done(edition.pk)  # its batches may all have gone before the last chunk
    logger.info("%s %s %s: %d digests queued", day, send_time, zone, count)
