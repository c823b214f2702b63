"""The dashboard's one email: the weekly summary to staff who asked for it."""

import datetime
from email.utils import make_msgid
from urllib.parse import urlsplit

import css_inline
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from dashboard import figures, metrics

INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)

# The summary's range per figure: the week for what moves daily, longer for
# what a week cannot show (a week's trials are still in trial; churn is monthly).
SUMMARY_DAYS = {"conversion": 56, "churn": 60, "revenue": 60}
WEEK = 7


def weekly_summary(
    user: AbstractUser, visible: list[figures.Figure], now: datetime.datetime
) -> EmailMultiAlternatives:
    """The figures `user` may see, each its headline and its table, as the page has them."""
    zone = metrics.newsroom_zone()
    sections = []
    for figure in visible:
        days = SUMMARY_DAYS.get(figure.slug, WEEK)
        dates = metrics.DateRange.last_days(days, now)
        sections.append(
            {
                "figure": figure,
                "dates": dates,
                "rendered": figure.build(dates, now),
                "url": f"{settings.SITE_URL}{reverse('dashboard:figure', args=[figure.slug])}"
                f"?days={30 if days <= 30 else 90}",
            }
        )
    week = metrics.DateRange.last_days(WEEK, now)
    context = {
        "newsletter_name": settings.NEWSLETTER_NAME,
        "sections": sections,
        "week": week,
        "zone": zone.key,
        "local_now": now.astimezone(zone),
        "dashboard_url": f"{settings.SITE_URL}{reverse('dashboard:overview')}",
    }
    name = "dashboard/emails/weekly_summary"
    subject = " ".join(render_to_string(f"{name}_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{name}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[user.email],
        headers={"Message-ID": make_msgid(domain=urlsplit(settings.SITE_URL).hostname)},
    )
    message.attach_alternative(
        INLINER.inline(render_to_string(f"{name}.html", context)), "text/html"
    )
    return message
