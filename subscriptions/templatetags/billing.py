"""Template filters of the billing panel (subscriptions/_billing_panel.html)."""

from django import template

from subscriptions.emails import dollars

register = template.Library()


@register.filter
def money(cents: int | None) -> str:
    """Cents as the pages and emails write them: $46, $36.80; None is the list price."""
    return dollars(cents)
