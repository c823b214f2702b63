"""Sends that stalled, mornings that are over, and editions that are done.

A sender that died leaves rows claimed until its lease runs out; a lost
task leaves rows queued with nobody to send them; a morning missed past the
catch-up window is recorded as missed rather than sent late. The sweep
(delivery.tasks.resume_stalled_sends, every minute) asks editions_to_resume
which sends to restart, and each batch marks its edition sent once nothing
is left (finish_if_done).
"""

import datetime
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import (
    Case,
    Exists,
    OuterRef,
    Q,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Concat
from django.utils import timezone

from delivery import counting
from delivery.deliverability import health
from delivery.leases import lease_length
from delivery.models import Delivery, SendSlot
from newsletter.models import Edition

logger = logging.getLogger(__name__)

# Rows claimed before leases (lease_until empty) are taken over after this.
CLAIM_TIMEOUT = datetime.timedelta(minutes=15)
# How far back the periodic sweep looks for sends to resume.
RESUME_WINDOW = datetime.timedelta(days=2)
# Written on rows whose claim expired: the reader may already have the email.
RESUMED_NOTE = "Resumed after an interrupted send; this reader may receive it twice."


def catch_up_window() -> datetime.timedelta:
    return datetime.timedelta(hours=settings.DIGEST_CATCH_UP_HOURS)


def mark_missed(now: datetime.datetime | None = None) -> int:
    """Deliveries still queued when the reader's morning is over: recorded as missed."""
    now = now or timezone.now()
    hours = settings.DIGEST_CATCH_UP_HOURS
    with transaction.atomic():
        count = _mark_missed(now, hours)
        counting.add("digests_missed", count)
    if count:
        logger.error("%d digests missed: not sent within %d hours of their morning", count, hours)
    return count


def _mark_missed(now: datetime.datetime, hours: int) -> int:
    return Delivery.objects.filter(
        status=Delivery.Status.QUEUED, scheduled_for__lt=now - catch_up_window()
    ).update(
        status=Delivery.Status.MISSED,
        lease_until=None,
        last_error=Case(
            When(
                last_error="", then=Value(f"Not sent within {hours} hours of the reader's morning.")
            ),
            default=Concat(
                Value(f"Not sent within {hours} hours of the reader's morning; last error: "),
                "last_error",
            ),
            output_field=TextField(),
        ),
    )


def requeue_expired_claims(edition: Edition, now: datetime.datetime | None = None) -> int:
    """Hand back rows claimed by a sender that died: its lease ran out."""
    now = now or timezone.now()
    with transaction.atomic():
        count = (
            edition.deliveries.filter(status=Delivery.Status.SENDING)
            .filter(
                Q(lease_until__lt=now)
                | Q(lease_until__isnull=True, claimed_at__lt=now - CLAIM_TIMEOUT)
            )
            .update(
                status=Delivery.Status.QUEUED,
                claimed_at=None,
                lease_until=None,
                last_error=RESUMED_NOTE,
            )
        )
        counting.add("delivery_takeovers", count)
    if count:
        logger.warning(
            "Edition %s: %d interrupted deliveries requeued",
            edition.date,
            count,
            extra={"edition": edition.date.isoformat()},
        )
    return count


def finish_if_done(edition_id: int) -> bool:
    """Mark the edition sent once no delivery is queued or in flight; return whether it is done.

    Not while its audience is still being written (delivery.audience): by
    hand until the writer or the one that takes it over ends, by the
    scheduler while a writer holds a live lease (one whose lease ran out is
    taken over by the scheduler, which marks the edition sending again).
    """
    unfinished = Delivery.objects.filter(
        edition_id=edition_id, status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
    )
    if unfinished.exists():
        return False
    now = timezone.now()
    writing = SendSlot.objects.filter(
        date=OuterRef("date"), outcome=SendSlot.Outcome.WRITING, lease_until__gte=now
    )
    written = Edition.objects.filter(pk=edition_id, audience_lease_until=None).exclude(
        Exists(writing)
    )
    written.filter(status=Edition.Status.SENDING).update(status=Edition.Status.SENT, sent_at=now)
    return written.exists()


def resend_failed(edition: Edition) -> int:
    """Queue again the failed deliveries of an edition (staff's "resend to failed")."""
    with transaction.atomic():
        # A fresh set of attempts: staff resend once the cause is fixed.
        count = edition.deliveries.filter(status=Delivery.Status.FAILED).update(
            status=Delivery.Status.QUEUED, claimed_at=None, lease_until=None, attempts=0
        )
        if count:
            Edition.objects.filter(pk=edition.pk).update(
                status=Edition.Status.SENDING, sent_at=None
            )
    return count


def editions_to_resume(now: datetime.datetime | None = None) -> list[Edition]:
    """Recent editions still sending with rows nobody holds: their tasks were lost.

    The sweep's question, every minute. Rows of a sender that died come back
    once its lease runs out; those and any queued row are someone's only
    while a live lease holds them (a sender at work, a batch waiting to
    retry) or while the send is visibly moving (a row sent within the last
    lease: batches waiting their turn in the broker). Otherwise the batch
    tasks are gone (a flushed or restarted broker, a killed worker) and the
    send is restarted: at worst a range is queued twice, which the claims
    make harmless.
    """
    now = now or timezone.now()
    recent = Edition.objects.filter(
        status=Edition.Status.SENDING, send_started_at__gte=now - RESUME_WINDOW
    )
    mark_missed(now)
    if health.sends_paused(now) is not None:
        return []  # staff paused the sends (complaints): queued rows wait for them
    stalled = []
    for edition in recent:
        taken_back = requeue_expired_claims(edition, now)
        lease = edition.audience_lease_until
        if lease is not None and lease < now:
            stalled.append(edition)  # its audience's writer died: send_edition writes the rest
            continue
        if finish_if_done(edition.pk):
            continue
        rows = edition.deliveries
        held = rows.filter(
            status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING], lease_until__gte=now
        ).exists()
        moving = rows.filter(sent_at__gte=now - lease_length()).exists()
        if taken_back or not (held or moving):
            stalled.append(edition)
    return stalled
