"""Staff's writes on the sends: each in one transaction, the work it calls for queued on commit.

Resuming the sends a complaint rate paused, and resending the deliveries
that failed. Each queues a Celery task (delivery.tasks), so this module sits
above the tasks, where the modules the tasks run cannot: send health raises
the pause every batch reads (delivery.deliverability.health), and the
failed rows go back to the queue in delivery.recovery.
"""

import datetime

from django.db import transaction
from django.utils import timezone

from delivery import recovery, tasks
from delivery.models import SendPause
from newsletter.models import Edition


@transaction.atomic
def do_resume_sends(pause: SendPause, user: object, now: datetime.datetime | None = None) -> bool:
    """Staff lift a pause; the sweep (resume_stalled_sends) sends what waited."""
    now = now or timezone.now()
    updated = SendPause.objects.filter(pk=pause.pk, resumed_at=None).update(
        resumed_at=now, resumed_by=user
    )
    if updated:
        transaction.on_commit(lambda: tasks.resume_stalled_sends.delay())
    return bool(updated)


@transaction.atomic
def do_resend_failed(edition: Edition) -> int:
    """Queue the edition's failed deliveries again and, once that commits, their send.

    Staff's "resend to failed", from the desk or the editions' list; returns
    how many deliveries were queued again.
    """
    count = recovery.resend_failed(edition)
    if count:
        transaction.on_commit(lambda: tasks.send_edition.delay(edition.pk))
    return count
