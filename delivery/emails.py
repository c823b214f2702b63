"""The digest email: rendered once per edition, personalised per reader.

Rendering the templates and inlining the CSS is the expensive part, so it is
done once per edition (per batch of readers). The result keeps a few marked
slots (the greeting, the reader's address, the unsubscribe link) that are
filled in per reader by plain string substitution. The slot markers carry a
random nonce, so no article text can ever collide with them.
"""

import datetime
import re
import secrets
import smtplib
from collections.abc import Callable
from email.utils import formataddr, make_msgid
from functools import cached_property
from zoneinfo import ZoneInfo

import css_inline
from anymail.exceptions import AnymailError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape

from delivery.deliverability.verp import unsubscribe_mailto
from delivery.models import site_host
from newsletter import clicks
from newsletter.models import Article, Edition
from subscriptions import preferences
from subscriptions.models import Subscriber, single_line
from subscriptions.unsubscribe import make_token

# What sending a message can raise: the SMTP server's refusals, a connection
# lost, an ESP's API errors.
SEND_ERRORS = (smtplib.SMTPException, OSError, AnymailError)

READER_FIELDS = (
    "greeting",
    "email",
    "unsubscribe_url",
    "preferences_url",
    "notice_text",
    "notice_html",
    "click_reader",
)

NOTICE_TEXT, NOTICE_LABEL = "__notice_text__", "__notice_label__"

# Media queries (dark mode, small screens) cannot be inlined: keep them.
INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def absolute_url(path: str) -> str:
    return settings.SITE_URL + path


def greeting(subscriber: Subscriber) -> str:
    name = single_line(subscriber.name)
    return f"Good morning, {name}." if name else "Good morning."


def membership_notice(subscriber: Subscriber) -> tuple[str, str] | None:
    """A line about the reader's billing, as (text, link label), or None.

    Trialing readers are told when the trial ends and what it will cost;
    readers whose payment failed are asked to fix it.
    """
    membership = getattr(subscriber, "membership", None)
    if membership is None:
        return None
    if membership.status == membership.Status.TRIALING and membership.trial_end:
        # The reader's own calendar: in Tokyo a trial ending late on the 14th
        # New York time ends on the 15th.
        day = membership.trial_end.astimezone(
            ZoneInfo(subscriber.time_zone or settings.DIGEST_TIMEZONE)
        )
        return (
            f"Your free trial ends on {day:%A} {day.day} {day:%B}. After that the briefing "
            "is $46 a year; you can cancel before then in your account.",
            "Manage your membership",
        )
    if membership.status == membership.Status.PAST_DUE:
        return (
            "We could not take your last payment. Please update your card so the "
            "briefing keeps coming.",
            "Update your card",
        )
    return None


def since_label(window_start: datetime.datetime | None, zone: str) -> str:
    """How far a digest reaches, in the reader's zone: "Since Friday 06:00"."""
    if window_start is None or not zone:
        return ""
    start = window_start.astimezone(ZoneInfo(zone))
    return f"Since {start:%A} {start:%H:%M} {start:%Z}"


class DigestMessage(EmailMultiAlternatives):
    """One reader's digest.

    `metadata`, set by the sender, is django-anymail's: an ESP returns it with
    the bounce and complaint events of this message (delivery.deliverability.tracking).
    Other backends ignore it.
    """

    metadata: dict[str, str]
    # The VERP envelope sender (delivery.deliverability.verp), set by the sender; None: the From.
    smtp_envelope_from: str | None = None

    @property
    def html(self) -> str:
        """The HTML part, the one alternative DigestTemplate.message_for attaches."""
        content, mimetype = self.alternatives[0]
        if mimetype != "text/html" or not isinstance(content, str):
            raise ValueError(f"The digest's alternative is {mimetype}, not its HTML.")
        return content


class DigestTemplate:
    """The digest of one edition, ready to be personalised for each reader."""

    def __init__(self, edition: Edition, articles: list[Article], since: str = "") -> None:
        self.edition = edition
        self.articles = articles
        self.since = since
        self.account_url = absolute_url(reverse("subscriptions:account"))
        # reverse() once, not per reader: "{token}" is filled in per reader.
        self.unsubscribe_link = absolute_url(
            reverse("unsubscribe", kwargs={"token": "TOKEN"})
        ).replace("TOKEN", "{token}")
        self.preferences_link = absolute_url(
            reverse("preferences", kwargs={"token": "TOKEN"})
        ).replace("TOKEN", "{token}")
        self.nonce = nonce = secrets.token_hex(8)
        self._slot = re.compile(rf"__({'|'.join(READER_FIELDS)})_{nonce}__")
        context = {
            "edition": edition,
            "since": since,
            "items": [(article, self.story_url(article)) for article in articles],
            "preheader": self.preheader,
            "preheader_padding": PREHEADER_PADDING,
            "newsletter_name": settings.NEWSLETTER_NAME,
            "site_url": settings.SITE_URL,
            "edition_url": absolute_url(edition.get_absolute_url()),
            "account_url": self.account_url,
            "reader": {field: f"__{field}_{nonce}__" for field in READER_FIELDS},
        }
        # Rendered once, with a marked slot wherever a reader's own value goes.
        self.text = render_to_string("emails/digest.txt", context)
        self.html = INLINER.inline(render_to_string("emails/digest.html", context))
        self._text_parts = self._slot.split(self.text)
        self._html_parts = self._slot.split(self.html)

    def story_url(self, article: Article) -> str:
        """A story's link: the story itself, or through the click counter (CLICK_TRACKING)."""
        if not settings.CLICK_TRACKING:
            return absolute_url(article.get_absolute_url())
        url = absolute_url(clicks.link_path(self.edition, article))
        if settings.TRACK_READER_CLICKS:
            url += f"?r=__click_reader_{self.nonce}__"
        return url

    @cached_property
    def preheader(self) -> str:
        """The line mail clients show after the subject, cut at a word."""
        if self.edition.editor_note:
            return cut_at_word(single_line(self.edition.editor_note))
        return cut_at_word("; ".join(article.title for article in self.articles[:3]))

    @property
    def subject(self) -> str:
        return self.edition.subject

    def _fill(self, parts: list[str], values: dict[str, str]) -> str:
        # re.split with one group alternates literal text and field names.
        return "".join(values[part] if i % 2 else part for i, part in enumerate(parts))

    def reader_values(self, subscriber: Subscriber) -> tuple[dict[str, str], dict[str, str]]:
        """The reader's slot values for the text part and for the HTML part."""
        values = {
            "greeting": greeting(subscriber),
            "email": subscriber.email,
            "unsubscribe_url": self.unsubscribe_link.format(token=make_token(subscriber)),
            "preferences_url": self.preferences_link.format(
                token=preferences.make_token(subscriber)
            ),
            "notice_text": "",
            "notice_html": "",
            "click_reader": (
                clicks.reader_token(subscriber)
                if settings.CLICK_TRACKING and settings.TRACK_READER_CLICKS
                else ""
            ),
        }
        html_values: dict[str, str] = {field: escape(value) for field, value in values.items()}
        notice = membership_notice(subscriber)
        if notice is not None:
            text, label = notice
            values["notice_text"] = f"\n{text}\n{label}: {self.account_url}\n"
            html_values["notice_html"] = self._notice_html.replace(
                NOTICE_TEXT, escape(text)
            ).replace(NOTICE_LABEL, escape(label))
        return values, html_values

    def merge_parts(self, field_name: Callable[[str, str], str]) -> tuple[str, str]:
        """The text and HTML parts with each reader's slot written as an ESP's merge field.

        `field_name(part, field)` is what stands in the slot, `part` "text" or
        "html" (their values differ: the HTML's are escaped); the ESP fills in
        each reader's values (reader_values) for one call's many readers.
        """
        text = self._fill(self._text_parts, {f: field_name("text", f) for f in READER_FIELDS})
        html = self._fill(self._html_parts, {f: field_name("html", f) for f in READER_FIELDS})
        return text, html

    @cached_property
    def _notice_html(self) -> str:
        # Rendered once; the two markers are replaced per reader.
        return render_to_string(
            "emails/digest_notice.html",
            {"account_url": self.account_url, "text": NOTICE_TEXT, "label": NOTICE_LABEL},
        )

    def message_for(self, subscriber: Subscriber, message_id: str | None = None) -> DigestMessage:
        values, html_values = self.reader_values(subscriber)
        message = DigestMessage(
            subject=self.subject,
            body=self._fill(self._text_parts, values),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[formataddr((single_line(subscriber.name), subscriber.email))],
            reply_to=settings.DIGEST_REPLY_TO,
            headers={
                **list_headers(values["unsubscribe_url"], unsubscribe_mailto(subscriber.pk)),
                "Message-ID": message_id or make_msgid(domain=site_host()),
                "Feedback-ID": feedback_id(f"edition{self.edition.date:%Y%m%d}", "digest"),
            },
        )
        message.attach_alternative(self._fill(self._html_parts, html_values), "text/html")
        return message


PREHEADER_LENGTH = 140
# After the preheader, invisible spacing (combining grapheme joiner, zero-width
# non-joiner, no-break space) fills the inbox's preview line, so clients do
# not go on to show "View this email in your browser" and the greeting.
PREHEADER_PADDING = "&#847;&zwnj;&nbsp;" * 60


def cut_at_word(text: str, length: int = PREHEADER_LENGTH) -> str:
    """`text`, at most `length` characters, cut after a whole word ("…" when cut)."""
    if len(text) <= length:
        return text
    cut = text[: length - 1]
    if not text[length - 1].isspace() and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ;,:-") + "…"


def feedback_id(campaign: str, kind: str) -> str:
    """Feedback-ID (Gmail's Postmaster Tools: spam rates per campaign, kind and sender)."""
    return f"{campaign}:{kind}:{settings.FEEDBACK_ID_SENDER}"


def list_headers(unsubscribe_link: str, mailto: str) -> dict[str, str]:
    """RFC 2369/2919/8058 headers: mail clients show an Unsubscribe button.

    Both halves name the reader with a signature: the link its token, the
    mailto: its signed address (delivery.deliverability.verp.unsubscribe_mailto). A From
    address says nothing: anyone can write any.
    """
    return {
        "List-Unsubscribe": f"<{unsubscribe_link}>, <mailto:{mailto}?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{settings.NEWSLETTER_NAME} <daily.{site_host()}>",
    }


def digest(edition: Edition, articles: list[Article], subscriber: Subscriber) -> DigestMessage:
    """One reader's digest, rendered from scratch (previews and test sends)."""
    return DigestTemplate(edition, articles).message_for(subscriber)
