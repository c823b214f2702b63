"""Counting each edition's send once per zone, so the sending figures read a few rows.

The dashboard's last 30 editions are 30 times the list in deliveries: at a
million readers, counting them (and finding the readers who unsubscribed or
complained after each) takes seconds (docs/dashboard-performance.md). Beat
runs do_snapshot_sends every SNAPSHOT_EVERY_MINUTES; it recounts the
editions that can still change and any edition of the dashboard's longest
range that has no count yet (a new install, an edition sent by hand), each
in a few grouped queries over that edition's deliveries alone.
"""

import datetime

from django.db import transaction
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce

from dashboard.models import EditionZoneSend
from delivery.models import Delivery
from newsletter.models import Edition
from subscriptions.models import Subscriber

SNAPSHOT_EVERY_MINUTES = 15
# Readers who unsubscribe (or complain) this long after a digest are held
# against it.
REACTION_WINDOW = datetime.timedelta(hours=48)
# An edition's counts can change while its later zones send, bounces come
# back and the reaction window runs: recounted until this long after its
# send began (every zone's morning is within a day of the first).
OPEN_FOR = datetime.timedelta(days=1) + REACTION_WINDOW + datetime.timedelta(hours=6)
# The dashboard's longest range, and a little: editions older than that
# without counts are never shown, so never counted.
REACH = datetime.timedelta(days=370)

EmailStatus = Subscriber.EmailStatus


def editions_to_count(
    now: datetime.datetime, since: datetime.datetime | None = None
) -> QuerySet[Edition]:
    """Editions gone out by `now` still open to change, or within REACH and never counted."""
    since = since or now - OPEN_FOR
    counted = EditionZoneSend.objects.filter(edition=OuterRef("pk"))
    never_counted = Q(send_started_at__gte=now - REACH) & ~Exists(counted)
    return (
        Edition.objects.filter(send_started_at__lte=now)
        .filter(Q(send_started_at__gte=since) | never_counted)
        .order_by("date")
    )


def _reacted(email_status: str, now: datetime.datetime) -> Q:
    """A delivered digest whose reader went to `email_status` within the window after it.

    The reader's latest status change is what we have: one who unsubscribed
    and came back no longer counts against the digest.
    """
    return Q(
        status=Delivery.Status.SENT,
        subscriber__email_status=email_status,
        subscriber__email_status_changed_at__gt=F("sent_at"),
        subscriber__email_status_changed_at__lte=F("sent_at") + REACTION_WINDOW,
    ) & Q(subscriber__email_status_changed_at__lte=now)


def count_edition(edition: Edition, now: datetime.datetime) -> list[EditionZoneSend]:
    """One edition's deliveries counted per zone, as they stand at `now`."""
    counts = Delivery.objects.filter(edition=edition).values("time_zone").order_by("time_zone")
    rows = list(
        counts.annotate(
            deliveries=Count("pk"),
            delivered=Count("pk", filter=Q(status=Delivery.Status.SENT)),
            failed=Count("pk", filter=Q(status=Delivery.Status.FAILED)),
            bounced=Count("pk", filter=Q(status=Delivery.Status.BOUNCED)),
            missed=Count("pk", filter=Q(status=Delivery.Status.MISSED)),
            # A digest sent by hand has no scheduled moment: its send began
            # when the edition's did.
            began=Min(Coalesce("scheduled_for", "edition__send_started_at")),
            ended=Max("sent_at"),
        )
    )
    # Reactions come from the few readers whose address changed lately: a
    # second query, led by the subscribers' status index rather than by
    # every delivery's join.
    changed = Subscriber.objects.filter(
        email_status__in=[EmailStatus.UNSUBSCRIBED, EmailStatus.COMPLAINED],
        email_status_changed_at__gt=edition.send_started_at,
        email_status_changed_at__lte=min(
            now, (edition.sent_at or now) + REACTION_WINDOW + datetime.timedelta(days=1)
        ),
    )
    reactions: dict[str, tuple[int, int]] = {
        row["time_zone"]: (row["complaints"], row["unsubscribes"])
        for row in counts.filter(subscriber__in=changed).annotate(
            complaints=Count("pk", filter=_reacted(EmailStatus.COMPLAINED, now)),
            unsubscribes=Count("pk", filter=_reacted(EmailStatus.UNSUBSCRIBED, now)),
        )
    }
    if not rows:
        # Gone out to nobody: one empty row says it was counted.
        return [EditionZoneSend(edition=edition, counted_at=now)]
    return [
        EditionZoneSend(
            edition=edition,
            counted_at=now,
            complaints=reactions.get(row["time_zone"], (0, 0))[0],
            unsubscribes=reactions.get(row["time_zone"], (0, 0))[1],
            **row,
        )
        for row in rows
    ]


def do_snapshot_sends(now: datetime.datetime, since: datetime.datetime | None = None) -> int:
    """Recount the editions that need it (see editions_to_count); return how many."""
    editions = list(editions_to_count(now, since))
    for edition in editions:
        rows = count_edition(edition, now)
        # Each edition on its own: a long first run commits as it goes.
        with transaction.atomic():
            EditionZoneSend.objects.filter(edition=edition).delete()
            EditionZoneSend.objects.bulk_create(rows)
    return len(editions)
