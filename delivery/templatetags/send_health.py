"""The desk's send-health banner (templates/admin/base_site.html)."""

import datetime

from django import template
from django.utils import timezone

from delivery.deliverability import health
from delivery.models import SendAlert

register = template.Library()

RECENT = datetime.timedelta(days=2)


@register.inclusion_tag("admin/_send_health_banner.html")
def send_health_banner() -> dict[str, object]:
    """Alerts of the last two days not dismissed, and today's pause if sends wait."""
    now = timezone.now()
    alerts = list(
        SendAlert.objects.filter(dismissed_at=None, created_at__gte=now - RECENT)
        .select_related("edition")
        .order_by("-created_at")[:5]
    )
    return {"alerts": alerts, "pause": health.sends_paused(now)}
