"""Send health: each edition's bounce and complaint rates as results arrive; alerts, the pause.

Past the alert rates staff are emailed (and the desk shows a banner); past
the pause rate for complaints, the rest of the newsroom day's sends wait
(SendPause) until staff resume them.
"""

import datetime
import email
import email.message
import email.utils
import logging
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.utils import timezone

from delivery.models import BounceEvent, Delivery, SendAlert, SendPause
from newsletter.models import Edition

logger = logging.getLogger(__name__)


Kind = BounceEvent.Kind
Source = BounceEvent.Source


@dataclass
class Health:
    """An edition's results so far: how many went out, how many came back and how."""

    sent: int
    hard_bounces: int
    soft_bounces: int
    complaints: int

    @property
    def hard_bounce_percent(self) -> float:
        return 100 * self.hard_bounces / self.sent if self.sent else 0.0

    @property
    def complaint_percent(self) -> float:
        return 100 * self.complaints / self.sent if self.sent else 0.0


def edition_health(edition_id: int) -> Health:
    """Counted over readers, not reports: whoever files ten reports is one reader."""
    delivered = Delivery.objects.filter(
        edition_id=edition_id, status__in=[Delivery.Status.SENT, Delivery.Status.BOUNCED]
    ).count()
    events = BounceEvent.objects.filter(edition_id=edition_id)
    kinds = Counter(kind for kind, _ in events.values_list("kind", "subscriber_id").distinct())
    # A refusal at send time was never sent, but it was an attempt to a reader.
    refused = (
        events.filter(source=Source.SMTP)
        .exclude(delivery__status=Delivery.Status.BOUNCED)
        .values("subscriber_id")
        .distinct()
        .count()
    )
    return Health(
        sent=delivered + refused,
        hard_bounces=kinds[Kind.HARD],
        soft_bounces=kinds[Kind.SOFT],
        complaints=kinds[Kind.COMPLAINT],
    )


def newsroom_date(now: datetime.datetime) -> datetime.date:
    return now.astimezone(ZoneInfo(settings.DIGEST_TIMEZONE)).date()


def mornings_under_way(edition: Edition, now: datetime.datetime) -> bool:
    """Whether some reader's morning of the edition's date may still be to come.

    An edition's date is each reader's local date; it ends last at UTC-12,
    so its last morning anywhere is before noon UTC the next day. After
    that, its complaints say nothing about sends still to go.
    """
    last_morning = datetime.datetime.combine(
        edition.date + datetime.timedelta(days=1), datetime.time(12), datetime.UTC
    )
    return now < last_morning


def check_health(edition_id: int, now: datetime.datetime | None = None) -> list[SendAlert]:
    """Raise the edition's alerts its rates have passed (once each); pause if complaints demand.

    Returns the alerts raised now. Staff are emailed each once.
    """
    now = now or timezone.now()
    health = edition_health(edition_id)
    if not health.sent:
        return []
    raised = []
    rates = [
        (
            SendAlert.Kind.HARD_BOUNCES,
            health.hard_bounce_percent,
            settings.HEALTH_HARD_BOUNCE_PERCENT,
            health.hard_bounces,
        ),
        (
            SendAlert.Kind.COMPLAINTS,
            health.complaint_percent,
            settings.HEALTH_COMPLAINT_PERCENT,
            health.complaints,
        ),
    ]
    for kind, percent, limit, count in rates:
        if percent <= limit:
            continue
        message = (
            f"{SendAlert.Kind(kind).label} of this edition is {percent:.2f}% "
            f"({count} of {health.sent}), above {limit:g}%."
        )
        alert, created = SendAlert.objects.get_or_create(
            edition_id=edition_id, kind=kind, defaults={"message": message, "created_at": now}
        )
        if created:
            raised.append(alert)
    edition = Edition.objects.get(pk=edition_id)
    if health.complaint_percent > settings.HEALTH_PAUSE_COMPLAINT_PERCENT and mornings_under_way(
        edition, now
    ):
        day = newsroom_date(now)
        # One pause per day: once staff resume, the day's sends go on.
        if not SendPause.objects.filter(date=day).exists():
            reason = (
                f"Complaints at {health.complaint_percent:.2f}% "
                f"({health.complaints} of {health.sent}), above "
                f"{settings.HEALTH_PAUSE_COMPLAINT_PERCENT:g}%."
            )
            SendPause.objects.create(date=day, edition_id=edition_id, reason=reason, created_at=now)
            alert, created = SendAlert.objects.get_or_create(
                edition_id=edition_id,
                kind=SendAlert.Kind.PAUSED,
                defaults={
                    "message": f"The rest of {day:%A %d %B}'s sends are paused. {reason} "
                    "Resume them under Send pauses in the admin.",
                    "created_at": now,
                },
            )
            if created:
                raised.append(alert)
            logger.error("Edition %s: sends paused: %s", edition_id, reason)
    if raised:
        email_staff(raised)
    return raised


def email_staff(alerts: list[SendAlert]) -> None:
    staff = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    # "Name <address>": a bare address next to a percentage reads as spam (TO_NO_BRKTS_PCNT).
    recipients = [
        email.utils.formataddr((user.get_full_name() or user.get_username(), user.email))
        for user in staff
    ]
    if not recipients:
        logger.error("Send health alerts but no staff address to email: %s", alerts)
        return
    edition = alerts[0].edition
    body = "\n\n".join(alert.message for alert in alerts)
    send_mail(
        subject=f"Send health: {edition}",
        message=f"{body}\n\nThe edition's desk: {settings.SITE_URL}/admin/\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )


def sends_paused(now: datetime.datetime | None = None) -> SendPause | None:
    """Today's pause, while staff have not resumed the sends."""
    now = now or timezone.now()
    return SendPause.objects.filter(date=newsroom_date(now), resumed_at=None).first()
