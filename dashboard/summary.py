"""Sending the weekly summary to the staff who asked for it (dashboard.emails.weekly_summary)."""

import datetime
import logging

from django.contrib.auth import get_user_model
from django.db import transaction

from dashboard import emails, figures, metrics
from dashboard.models import StaffSettings

logger = logging.getLogger(__name__)


def week_of(now: datetime.datetime) -> datetime.date:
    """The Monday (newsroom date) of the week `now` is in."""
    today = now.astimezone(metrics.newsroom_zone()).date()
    return today - datetime.timedelta(days=today.weekday())


def do_set_weekly_summary(user_id: int, wanted: bool) -> StaffSettings:
    """Opt a staff member in or out of the weekly summary."""
    staff_settings, _ = StaffSettings.objects.update_or_create(
        user_id=user_id, defaults={"weekly_summary": wanted}
    )
    return staff_settings


def do_send_weekly_summaries(now: datetime.datetime) -> int:
    """Send this week's summary to every opted-in active staff member who has not had it.

    Each one in a transaction of its own, the row locked: two runs at once
    (beat and the command) send it once. The email goes out before the
    week is marked, inside the transaction: a failed send leaves the week
    unmarked for the next run (a staff summary sent twice in a rare crash
    is better than one never sent). Returns how many were sent.
    """
    week = week_of(now)
    candidates = StaffSettings.objects.filter(
        weekly_summary=True, user__is_active=True, user__is_staff=True
    ).exclude(summary_sent_for=week)
    sent = 0
    for pk in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            row = (
                StaffSettings.objects.select_for_update()
                .select_related("user")
                .filter(pk=pk, weekly_summary=True)
                .exclude(summary_sent_for=week)
                .first()
            )
            if row is None:
                continue
            user = get_user_model().objects.get(pk=row.user_id)
            visible = figures.visible(user)
            if not visible or not user.email:
                # Nothing they may see, or nowhere to send it: not this week.
                logger.info("Weekly summary: staff user %s skipped (no figures or address)", pk)
                continue
            emails.weekly_summary(user, visible, now).send()
            row.summary_sent_for = week
            row.save(update_fields=["summary_sent_for"])
            sent += 1
    return sent
