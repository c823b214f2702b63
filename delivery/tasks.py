"""Celery tasks: thin wrappers that take ids and call the send's modules.

Each keeps the name it had when it lived in newsletter/tasks.py
("newsletter.tasks.<name>", given explicitly): a message queued by the
previous release, and the beat schedule (config/settings), name the task by
that string, and a worker that knows no such name drops the message.

Every task here is safe to run twice or at the same time as itself: the
edition is unique per date, its audience is fixed once, and each delivery is
claimed before it is sent. That is why the batch task may acknowledge late
(a batch lost with its worker is delivered again) and why a second beat
firing, or a resumed send, doubles nothing.
"""

import logging

from celery import Task, shared_task
from celery.exceptions import MaxRetriesExceededError
from django.conf import settings

from delivery import batches, by_hand, recovery, scheduler
from delivery.deliverability import mailbox
from delivery.leases import CONNECTION_ERRORS as DATABASE_GONE
from newsletter.models import Edition

logger = logging.getLogger(__name__)

# Backoff for a mail server that is unavailable: 30 s, 1, 2, 4, 8, 16 min...
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 30 * 60
# After the database was gone for longer than a sender retries its writes.
DATABASE_RETRY_SECONDS = 15


@shared_task(name="newsletter.tasks.send_due_digests")
def send_due_digests() -> int:
    """Beat's every-minute task: every reader's morning that has come, in any zone.

    Safe to run twice or from two schedulers at once: each local morning's
    send is claimed once (SendSlot), each delivery once per reader and date.
    """
    queued = 0
    # Each batch is queued as soon as its chunk of the audience is written.
    for edition_id, first_id, last_id in scheduler.schedule_due_sends():
        send_delivery_batch.delay(edition_id, first_id, last_id)
        queued += 1
    return queued


@shared_task(name="newsletter.tasks.send_edition")
def send_edition(edition_id: int) -> int:
    """Start (or resume) an edition's send: one batch task per range of readers.

    The by-hand send's queued form (delivery.by_hand), and the sweep's way
    to restart an edition whose batch tasks were lost.
    """
    edition = Edition.objects.get(pk=edition_id)
    about = {"edition": edition.date.isoformat()}  # its log lines' field (config.logcontext)
    queued = 0

    def queue(first_id: int, last_id: int) -> None:
        nonlocal queued
        send_delivery_batch.delay(edition.pk, first_id, last_id)
        queued += 1

    try:
        # Each chunk of the audience has its batches queued once written,
        # so the first emails go while the rest of a large list is written.
        wrote_audience = by_hand.send_edition(edition, on_batch=queue)
    except by_hand.EditionHeld:
        logger.info("Edition %s is held by the editors: not sending", edition.date, extra=about)
        return 0
    if not wrote_audience:
        # Resumed: the rows nobody is sending.
        recovery.requeue_expired_claims(edition)
        for first_id, last_id in batches.batch_ranges(edition):
            queue(first_id, last_id)
    if not queued:
        recovery.finish_if_done(edition.pk)
    logger.info("Edition %s: %d batches queued", edition.date, queued, extra=about)
    return queued


@shared_task(
    name="newsletter.tasks.send_delivery_batch",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=10,
    soft_time_limit=settings.DIGEST_BATCH_SOFT_TIME_LIMIT,
    time_limit=settings.DIGEST_BATCH_TIME_LIMIT,
)
def send_delivery_batch(self: Task, edition_id: int, first_id: int, last_id: int) -> dict[str, int]:
    try:
        report = batches.send_batch(edition_id, first_id, last_id)
    except batches.TransientSendError as error:
        countdown = min(RETRY_BASE_SECONDS * 2**self.request.retries, RETRY_MAX_SECONDS)
        # The rows wait for this retry: the sweep must not count them as lost.
        batches.hold_for_retry(edition_id, first_id, last_id, countdown)
        try:
            raise self.retry(exc=error, countdown=countdown)
        except MaxRetriesExceededError:
            # The rows are back in the queue; the periodic sweep resumes them.
            logger.error("Edition batch %s-%s: giving up retrying: %s", first_id, last_id, error)
            raise
    except DATABASE_GONE as error:
        # Lost for longer than the sender's own retries (delivery.leases):
        # what it could not record stays claimed until its lease runs out.
        raise self.retry(exc=error, countdown=DATABASE_RETRY_SECONDS) from error
    recovery.finish_if_done(edition_id)
    return report.__dict__


@shared_task(name="newsletter.tasks.resume_stalled_sends")
def resume_stalled_sends() -> list[int]:
    """Periodic sweep: restart sends whose tasks were lost.

    A flushed broker, a killed worker or retries run out leave deliveries
    queued (or claimed by a dead sender) with nobody working on them. (A
    lost scheduler run needs no sweep: the next minute's run claims the
    morning it missed, within the catch-up window.)
    """
    resumed = []
    for edition in recovery.editions_to_resume():
        send_edition.delay(edition.pk)
        resumed.append(edition.pk)
    return resumed


@shared_task(name="newsletter.tasks.process_bounces", soft_time_limit=240, time_limit=300)
def process_bounces() -> dict[str, int]:
    """Beat's task: bounces, complaints and mailto: unsubscribes in BOUNCE_MAILBOX_URL.

    Safe to run twice: a report is recorded once (by its Message-ID) and
    deleted once applied.
    """
    return dict(mailbox.process_mailbox())
