"""The emails the newsletter sends, one small function each."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from newsletter.models import Article, Edition
from subscriptions.models import Subscriber


def absolute_url(path: str) -> str:
    return settings.SITE_URL + path


def digest(
    edition: Edition, articles: list[Article], subscriber: Subscriber
) -> EmailMultiAlternatives:
    context = {
        "edition": edition,
        "items": [(article, absolute_url(article.get_absolute_url())) for article in articles],
        "subscriber": subscriber,
        "newsletter_name": settings.NEWSLETTER_NAME,
        "site_url": settings.SITE_URL,
        "edition_url": absolute_url(edition.get_absolute_url()),
    }
    message = EmailMultiAlternatives(
        subject=edition.subject,
        body=render_to_string("emails/digest.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
    )
    message.attach_alternative(render_to_string("emails/digest.html", context), "text/html")
    return message
