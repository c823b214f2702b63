"""The digest email: rendered once per edition, personalised per reader.

Rendering the templates and inlining the CSS is the expensive part, so it is
done once per edition (per batch of readers). The result keeps a few marked
slots (the greeting, the reader's address, the unsubscribe link) that are
filled in per reader by plain string substitution. The slot markers carry a
random nonce, so no article text can ever collide with them.
"""

import re
import secrets
from email.utils import formataddr, make_msgid
from functools import cached_property
from urllib.parse import quote, urlsplit

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.html import escape

from newsletter.models import Article, Edition
from subscriptions.models import Subscriber, single_line
from subscriptions.unsubscribe import make_token, unsubscribe_url

READER_FIELDS = ("greeting", "email", "unsubscribe_url")

# Media queries (dark mode, small screens) cannot be inlined: keep them.
INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def absolute_url(path: str) -> str:
    return settings.SITE_URL + path


def site_host() -> str:
    return urlsplit(settings.SITE_URL).hostname or "localhost"


def greeting(subscriber: Subscriber) -> str:
    name = single_line(subscriber.name)
    return f"Good morning, {name}." if name else "Good morning."


class DigestTemplate:
    """The digest of one edition, ready to be personalised for each reader."""

    def __init__(self, edition: Edition, articles: list[Article]) -> None:
        self.edition = edition
        self.articles = articles
        nonce = secrets.token_hex(8)
        self._slot = re.compile(rf"__({'|'.join(READER_FIELDS)})_{nonce}__")
        context = {
            "edition": edition,
            "items": [(article, absolute_url(article.get_absolute_url())) for article in articles],
            "preheader": self.preheader,
            "newsletter_name": settings.NEWSLETTER_NAME,
            "site_url": settings.SITE_URL,
            "edition_url": absolute_url(edition.get_absolute_url()),
            "account_url": absolute_url("/account/"),
            "reader": {field: f"__{field}_{nonce}__" for field in READER_FIELDS},
        }
        self._text_parts = self._slot.split(render_to_string("emails/digest.txt", context))
        html = INLINER.inline(render_to_string("emails/digest.html", context))
        self._html_parts = self._slot.split(html)

    @cached_property
    def preheader(self) -> str:
        """The line mail clients show after the subject."""
        if self.edition.editor_note:
            return single_line(self.edition.editor_note)[:140]
        return "; ".join(article.title for article in self.articles[:3])[:140]

    @property
    def subject(self) -> str:
        return self.edition.subject

    def _fill(self, parts: list[str], values: dict[str, str]) -> str:
        # re.split with one group alternates literal text and field names.
        return "".join(values[part] if i % 2 else part for i, part in enumerate(parts))

    def reader_values(self, subscriber: Subscriber) -> dict[str, str]:
        return {
            "greeting": greeting(subscriber),
            "email": subscriber.email,
            "unsubscribe_url": absolute_url(unsubscribe_url(subscriber)),
        }

    def message_for(self, subscriber: Subscriber) -> EmailMultiAlternatives:
        values = self.reader_values(subscriber)
        html_values = {field: escape(value) for field, value in values.items()}
        message = EmailMultiAlternatives(
            subject=self.subject,
            body=self._fill(self._text_parts, values),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[formataddr((single_line(subscriber.name), subscriber.email))],
            reply_to=settings.DIGEST_REPLY_TO,
            headers=list_headers(subscriber, values["unsubscribe_url"]),
        )
        message.attach_alternative(self._fill(self._html_parts, html_values), "text/html")
        return message


def list_headers(subscriber: Subscriber, unsubscribe_link: str) -> dict[str, str]:
    """RFC 2369/2919/8058 headers: mail clients show an Unsubscribe button."""
    mailto = (
        f"mailto:{settings.UNSUBSCRIBE_MAILTO}"
        f"?subject={quote('unsubscribe ' + make_token(subscriber))}"
    )
    return {
        "List-Unsubscribe": f"<{unsubscribe_link}>, <{mailto}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{settings.NEWSLETTER_NAME} <daily.{site_host()}>",
        "Message-ID": make_msgid(domain=site_host()),
    }


def digest(
    edition: Edition, articles: list[Article], subscriber: Subscriber
) -> EmailMultiAlternatives:
    """One reader's digest, rendered from scratch (previews and test sends)."""
    return DigestTemplate(edition, articles).message_for(subscriber)
