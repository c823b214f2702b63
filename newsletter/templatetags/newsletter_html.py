from django import template
from django.utils.safestring import SafeString, mark_safe

from newsletter.html import clean_html, teaser_html

register = template.Library()


@register.filter
def sanitized(html: str) -> SafeString:
    """Editor HTML, cleaned again as it is rendered.

    Bodies are cleaned on save too; cleaning on the way out as well means a
    row written around the model (a raw UPDATE, a restored backup, an older
    allow-list) still cannot carry a script to a reader.
    """
    return mark_safe(clean_html(html or ""))  # noqa: S308 - nh3 output is safe HTML


@register.filter
def teaser(html: str) -> SafeString:
    """The paywall's cut of a body (newsletter.html.teaser_html), as clean HTML."""
    return mark_safe(teaser_html(html or ""))  # noqa: S308 - nh3 output is safe HTML
