"""The digest email: rendered once per edition, personalised per reader.

Rendering the templates and inlining the CSS is the expensive part, so it is
done once per edition (per batch of readers). The result keeps a few marked
slots (the greeting, the reader's address, the unsubscribe link) that are
filled in per reader by plain string substitution. The slot markers carry a
random nonce, so no article text can ever collide with them.
"""

import datetime
import html
import re
import secrets
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formataddr, make_msgid
from functools import cached_property
from zoneinfo import ZoneInfo

import css_inline
from anymail.exceptions import AnymailError
from botocore.exceptions import BotoCoreError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.html import escape

from delivery.deliverability.verp import unsubscribe_mailto
from delivery.kept import KeptRecently
from delivery.models import site_host
from newsletter import clicks, reading
from newsletter.html import email_html, plain_text
from newsletter.links import path_to
from newsletter.models import Article, Edition
from subscriptions import preferences, referrals
from subscriptions.models import DigestFormat, Subscriber, single_line
from subscriptions.unsubscribe import make_token

# What sending a message can raise: the SMTP server's refusals, a connection
# lost, an ESP's API errors; and botocore's, which anymail's Amazon SES
# backend lets through when it opens its client (no region, no credentials).
SEND_ERRORS = (smtplib.SMTPException, OSError, AnymailError, BotoCoreError)

# The slots each reader's copy fills in. "since" is their window's start in
# their zone ("Since Friday 06:00 CET"): a slot, not part of the content, so
# the mornings of one day (every zone and delivery time) share one rendered
# content per set of stories, sections and format.
READER_FIELDS = (
    "since",
    "greeting",
    "email",
    "unsubscribe_url",
    "preferences_url",
    "referral_url",
    "notice_text",
    "notice_html",
    "click_reader",
    "read_token",
)

NOTICE_TEXT, NOTICE_LABEL = "__notice_text__", "__notice_label__"

# Media queries (dark mode, small screens) cannot be inlined: keep them.
INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def absolute_url(path: str) -> str:
    return settings.SITE_URL + path


def token_link(viewname: str) -> str:
    """The absolute link of a view that takes a reader's token, "{token}" where it goes."""
    placeholder = "TOKEN"
    return absolute_url(path_to(viewname, token=placeholder)).replace(placeholder, "{token}")


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


CLIPPED_NOTE = (
    "The rest of this digest is headlines only: in full it would be too long for some mail "
    "apps, which cut long emails short. Each story is whole on the site."
)
CLIPPED_NOTE_HTML = (
    '<tr><td><p class="clipped" style="margin: 0; padding: 12px 24px; font-size: 14px; '
    f'color: #555555; background: #f4f1ea;">{CLIPPED_NOTE}</p></td></tr>\n'
)
CLIPPED_NOTE_TEXT = f"\n{CLIPPED_NOTE}\n"

# Gmail clips a message past 102 KB, hiding the rest (the footer and its
# unsubscribe link included): a full digest's HTML stays under this, the
# stories past it falling back to headlines.
CLIP_LIMIT = 90 * 1024


# One nonce per process: the story blocks, rendered once, are shared by every
# content of the process, so their slot markers must be the same in each.
# Random all the same: no article text can collide with a marker.
NONCE = secrets.token_hex(8)
# Where the story blocks go in the rendered frame (HTML comments survive inlining).
STORIES_MARK = f"<!--stories-{NONCE}-->"
TEXT_STORIES_MARK = f"__stories_{NONCE}__"


@dataclass(frozen=True)
class Story:
    """One story as a digest shows it: whole (its body), or as a headline."""

    article: Article
    url: str
    # The sanitised body, as HTML and as text; "" for a headline.
    body: str = ""
    text: str = ""


@dataclass(frozen=True)
class Block:
    """A story's part of the digest, rendered once per process for all contents that show it."""

    html: str
    # The text part's lines after the story's number ("1. ").
    text: str


# Rendered story blocks, by what they show; and how many were rendered, which
# the benchmark reports (renders per story block, not per reader or content).
_blocks: dict[tuple[object, ...], Block] = {}
BLOCKS_KEPT = 4096
block_renders = 0


def story_block(article: Article, url: str, edition: Edition, *, whole: bool) -> Block:
    """The story's block (whole or a headline), rendered on first use and kept.

    Its CSS is written inline in the block's template: no inliner runs per
    block or per content over it. Rendered again when the article, its
    section's name or the settings its links read change.
    """
    global block_renders
    # What the block shows, itself: a row id and a time can repeat (a test's
    # frozen clock, a database restored), the text cannot lie.
    key = (
        edition.pk,
        article.pk,
        article.updated_at,
        article.title,
        article.dek,
        article.body,
        article.section.name if article.section else "",
        whole,
        url,
        settings.SITE_URL,
    )
    block = _blocks.get(key)
    if block is None:
        if len(_blocks) >= BLOCKS_KEPT:
            _blocks.clear()
        story = Story(article, url)
        if whole:
            story = Story(
                article, url, email_html(article.body, settings.SITE_URL), plain_text(article.body)
            )
        context = {"story": story}
        block = _blocks[key] = Block(
            render_to_string("emails/digest_story.html", context),
            # One line end after the link, as the numbered list wants it.
            render_to_string("emails/digest_story.txt", context).rstrip("\n") + "\n",
        )
        block_renders += 1
    return block


@dataclass(frozen=True)
class Frame:
    """A digest's masthead, greeting, note and footer, with marks where each content's labels go."""

    text: str
    html: str


# What a content puts in its frame: its sections, its preheader and the
# stories it leaves out (the "Since" line is a reader's slot). The frame is
# rendered and inlined with these marks in (once per edition and format),
# and each content puts its own labels in their place.
FRAME_MARKS = {name: f"frame{NONCE}{name.replace('_', '')}" for name in (
    "sections_label", "preheader", "others_label"
)}  # fmt: skip
_frames: dict[tuple[object, ...], Frame] = {}
FRAMES_KEPT = 64


def digest_frame(
    edition: Edition, digest_format: str, *, since: bool, stories: bool, others: bool
) -> Frame:
    """The frame of every content of this edition and format with these lines, rendered once.

    `since`, `stories` and `others`: whether the content has a "Since" line,
    any story, and stories left out (each shows or hides a line).
    """
    edition_url = absolute_url(edition.get_absolute_url())
    account_url = absolute_url(path_to("subscriptions:account"))
    key = (
        edition.pk,
        edition.date,
        edition.subject,
        edition.editor_note,
        digest_format,
        since,
        stories,
        others,
        edition_url,
        account_url,
        settings.SITE_URL,
        settings.NEWSLETTER_NAME,
    )
    frame = _frames.get(key)
    if frame is None:
        if len(_frames) >= FRAMES_KEPT:
            _frames.clear()
        context = frame_context(
            edition,
            digest_format,
            since=reader_slot("since") if since else "",
            sections_label=FRAME_MARKS["sections_label"],
            preheader=FRAME_MARKS["preheader"],
            others=others,
            others_label=FRAME_MARKS["others_label"],
            has_stories=stories,
        )
        frame = _frames[key] = Frame(
            render_to_string("emails/digest.txt", context),
            INLINER.inline(render_to_string("emails/digest.html", context)),
        )
    return frame


def frame_context(
    edition: Edition,
    digest_format: str,
    *,
    since: str,
    sections_label: str,
    preheader: str,
    others: bool,
    others_label: str,
    has_stories: bool,
) -> dict[str, object]:
    """What the digest's templates render a frame from."""
    return {
        "edition": edition,
        "since": since,
        "sections_label": sections_label,
        "headlines_only": digest_format == DigestFormat.HEADLINES,
        "others": others,
        "others_label": others_label,
        "has_stories": has_stories,
        "stories_mark": STORIES_MARK,
        "text_stories_mark": TEXT_STORIES_MARK,
        "preheader": preheader,
        "preheader_padding": PREHEADER_PADDING,
        "newsletter_name": settings.NEWSLETTER_NAME,
        "site_url": settings.SITE_URL,
        "edition_url": absolute_url(edition.get_absolute_url()),
        "account_url": absolute_url(path_to("subscriptions:account")),
        "reader": {field: reader_slot(field) for field in READER_FIELDS},
    }


def reader_slot(field: str) -> str:
    """Where a reader's value goes in a rendered content (DigestTemplate's slot pattern)."""
    return f"__{field}_{NONCE}__"


def text_node_escape(text: str) -> str:
    """Text as the CSS inliner's HTML serialiser writes a text node (html5ever's rules).

    A label put in an inlined frame must read as the inliner would have
    written it had it been rendered in: "&", "<", ">" and the no-break space
    escaped, quotes left as they are.
    """
    return (
        text.replace("&", "&amp;")
        .replace("\xa0", "&nbsp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


@dataclass(frozen=True)
class Composed:
    """A content's text and HTML with the reader slots in: the frame, its labels and its stories."""

    text: str
    html: str
    # How many stories, from the first, are whole (the rest are headlines).
    whole: int
    # Split at the reader slots: text, field name, text, ...
    text_parts: list[str]
    html_parts: list[str]


# Contents by what they are made of. The mornings of one day (every zone and
# delivery time) differ but for their "Since" line, a reader slot: their
# readers who follow the same sections in the same format share one.
# A content by what it is made of: its frame, labels, blocks and slot pattern.
type ContentKey = tuple[Frame, tuple[str, str, str], tuple[Block, ...], tuple[Block, ...], str]
COMPOSED_KEPT = 64
_composed: KeptRecently[ContentKey, Composed] = KeptRecently(COMPOSED_KEPT)
# How many contents were composed, which the benchmark reports (renders per
# content, not per reader or morning).
content_renders = 0


def composed(
    frame: Frame,
    labels: tuple[str, str, str],
    headlines: tuple[Block, ...],
    whole_blocks: tuple[Block, ...],
    slot: re.Pattern,
) -> Composed:
    """The frame with its labels (sections, preheader, others) and story blocks put in.

    `whole_blocks` are the stories whole (a full digest), `headlines` the
    same stories as headlines: as many stories are whole as keep the HTML
    under CLIP_LIMIT, the rest headlines after a note. Kept by what the
    content is made of (frames and blocks are compared by their text).
    """
    key = (frame, labels, headlines, whole_blocks, slot.pattern)
    return _composed.get(key, lambda: _compose(key, slot))


def _compose(key: ContentKey, slot: re.Pattern) -> Composed:
    global content_renders
    frame, labels, headlines, whole_blocks, _pattern = key
    frame_text, frame_html = frame.text, frame.html
    marks = ("sections_label", "preheader", "others_label")
    for name, label in zip(marks, labels, strict=True):
        frame_text = frame_text.replace(FRAME_MARKS[name], label)
        frame_html = frame_html.replace(FRAME_MARKS[name], text_node_escape(label))
    whole = len(whole_blocks)
    size = lambda blocks: sum(len(block.html.encode()) for block in blocks)  # noqa: E731
    fixed = len(frame_html.encode()) - len(STORIES_MARK)
    while (
        whole
        and fixed
        + size(whole_blocks[:whole])
        + size(headlines[whole:])
        + (len(CLIPPED_NOTE_HTML.encode()) if whole < len(headlines) else 0)
        > CLIP_LIMIT
    ):
        whole -= 1
    chosen = whole_blocks[:whole] + headlines[whole:]
    html_blocks = [block.html for block in chosen]
    text_blocks = [f"\n{n}. {block.text}" for n, block in enumerate(chosen, start=1)]
    if whole_blocks and whole < len(headlines):
        html_blocks.insert(whole, CLIPPED_NOTE_HTML)
        text_blocks.insert(whole, CLIPPED_NOTE_TEXT)
    html_content = frame_html.replace(STORIES_MARK, "".join(html_blocks))
    text_content = frame_text.replace(TEXT_STORIES_MARK, "".join(text_blocks))
    content_renders += 1
    return Composed(
        text_content, html_content, whole, slot.split(text_content), slot.split(html_content)
    )


class DigestTemplate:
    """The digest of one content, ready to be personalised for each reader.

    A content is what readers share: the edition, the stories of their
    window and sections, and their format. `sections`: the names of the
    sections the readers follow, None for every section; `others`: how
    many stories of the window are in sections they do not follow.

    The frame (masthead, greeting, note, footer) is rendered and inlined
    once per edition and format (digest_frame), each story's block once per
    process (story_block), and the digest is the frame with the content's
    labels and its stories' blocks put in.
    """

    def __init__(
        self,
        edition: Edition,
        articles: list[Article],
        since: str = "",
        *,
        digest_format: str = DigestFormat.FULL,
        sections: tuple[str, ...] | None = None,
        others: int = 0,
    ) -> None:
        self.edition = edition
        self.articles = articles
        self.since = since
        self.digest_format = digest_format
        self.sections = sections
        self.others = others
        self.account_url = absolute_url(path_to("subscriptions:account"))
        self.unsubscribe_link = token_link("unsubscribe")
        self.preferences_link = token_link("preferences")
        self.referral_link = token_link("subscriptions:referral-landing")
        self.nonce = nonce = NONCE
        self._slot = re.compile(rf"__({'|'.join(READER_FIELDS)})_{nonce}__")
        self.slot_end = f"_{nonce}__"  # how every slot ends
        frame = digest_frame(
            edition, digest_format, since=bool(since), stories=bool(articles), others=bool(others)
        )
        labels = (
            "every section" if sections is None else ", ".join(sections),
            self.preheader,
            f"{others} more {'story' if others == 1 else 'stories'}",
        )
        urls = [self.story_url(article) for article in articles]
        pairs = list(zip(articles, urls, strict=True))
        headlines = tuple(story_block(a, url, edition, whole=False) for a, url in pairs)
        whole_blocks: tuple[Block, ...] = ()
        if digest_format == DigestFormat.FULL:
            whole_blocks = tuple(story_block(a, url, edition, whole=True) for a, url in pairs)
        content = composed(frame, labels, headlines, whole_blocks, self._slot)
        self.whole = content.whole
        self.html, self.text = content.html, content.text
        self._text_parts, self._html_parts = content.text_parts, content.html_parts

    def story_url(self, article: Article) -> str:
        """A story's link: the story itself, or through the click counter (CLICK_TRACKING).

        Either way it carries the reader's reading token (newsletter.reading),
        which opens the whole article on the site without signing in.
        """
        token = f"{reading.READING_PARAM}={reader_slot('read_token')}"
        if not settings.CLICK_TRACKING:
            return f"{absolute_url(article.get_absolute_url())}?{token}"
        url = f"{absolute_url(clicks.link_path(self.edition, article))}?{token}"
        if settings.TRACK_READER_CLICKS:
            url += f"&r={reader_slot('click_reader')}"
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
            "since": self.since,
            "greeting": greeting(subscriber),
            "email": subscriber.email,
            "unsubscribe_url": self.unsubscribe_link.format(token=make_token(subscriber)),
            "preferences_url": self.preferences_link.format(
                token=preferences.make_token(subscriber)
            ),
            "referral_url": self.referral_link.format(token=referrals.make_token(subscriber)),
            "notice_text": "",
            "notice_html": "",
            "click_reader": (
                clicks.reader_token(subscriber)
                if settings.CLICK_TRACKING and settings.TRACK_READER_CLICKS
                else ""
            ),
            "read_token": reading.reading_token(subscriber),
        }
        # The standard library's escape is Django's without its SafeString wrapper.
        html_values = {field: html.escape(value) for field, value in values.items()}
        # As the inliner writes a text node, as the rest of the dateline is.
        html_values["since"] = text_node_escape(self.since)
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
    return DigestTemplate(edition, articles, digest_format=subscriber.digest_format).message_for(
        subscriber
    )
