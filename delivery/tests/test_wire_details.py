"""What goes on the wire besides the content: preheader, dark mode, Feedback-ID, Message-IDs."""

import re
from email.utils import parseaddr

import pytest
from django.core.mail import EmailMessage

from delivery.emails import PREHEADER_LENGTH, DigestTemplate, cut_at_word
from newsletter.models import Edition
from newsletter.tests.factories import built_edition, make_article
from subscriptions import emails as reader_emails
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted([luminance(foreground), luminance(background)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def dark_rule(html: str, selector: str) -> str:
    dark = html.split("@media (prefers-color-scheme: dark)", 1)[1]
    for rule in re.finditer(r"([^{}]+)\{([^}]*)\}", dark):
        if selector in [part.strip() for part in rule.group(1).split(",")]:
            return rule.group(2)
    raise AssertionError(f"No dark-mode rule for {selector}")


def colour(declarations: str, property_name: str) -> str:
    found = re.search(rf"(?<![-\w]){property_name}:\s*(#[0-9a-f]{{6}})", declarations)
    assert found is not None, declarations
    return found.group(1)


def test_the_preheader_is_cut_at_a_word_and_padded_without_a_low_contrast_colour():
    long_title = "Word " * 35  # 174 characters: a title may have 200
    make_article(title=long_title.strip())
    edition = built_edition(MONDAY)
    digest = DigestTemplate(edition, list(edition.ordered_articles()))

    assert len(digest.preheader) <= PREHEADER_LENGTH
    assert digest.preheader.endswith("Word…")
    preheader = re.search(r'<div class="preheader" style="([^"]*)">([^<]*)</div>', digest.html)
    assert preheader is not None
    style, content = preheader.groups()
    assert "display: none" in style
    # A hidden colour close to the background is what spam filters flag.
    assert "color" not in style
    assert content.startswith(digest.preheader)
    # Padding: combining grapheme joiner, zero-width non-joiner, no-break space.
    assert content.count("\u034f\u200c&nbsp;") >= 50


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("Short enough.", "Short enough."),
        ("a" * 200, "a" * 139 + "…"),
        ("one two " + "x" * 140, "one two…"),
    ],
)
def test_cut_at_word(text, cut):
    assert cut_at_word(text) == cut
    assert len(cut_at_word(text)) <= PREHEADER_LENGTH


def test_every_dark_mode_link_reads_at_4_5_to_1():
    make_article()
    edition = built_edition(MONDAY)
    reader = make_subscriber(membership="past_due")  # the notice with its link
    html = DigestTemplate(edition, list(edition.ordered_articles())).message_for(reader).html
    assert 'class="notice"' in html

    sheet = colour(dark_rule(html, ".sheet"), "background")
    notice = colour(dark_rule(html, ".notice"), "background")
    assert contrast(colour(dark_rule(html, ".notice a"), "color"), notice) >= 4.5
    for selector in (".headline a", ".more a", ".footer a", ".action"):
        assert contrast(colour(dark_rule(html, selector), "color"), sheet) >= 4.5, selector


def test_digests_and_reader_emails_carry_a_feedback_id_and_site_message_ids(settings):
    settings.SITE_URL = "https://news.example.com"
    make_article()
    edition: Edition = built_edition(MONDAY)
    reader = make_subscriber("reader@example.com")
    digest = DigestTemplate(edition, list(edition.ordered_articles())).message_for(reader)
    assert digest.extra_headers["Feedback-ID"] == "edition20261130:digest:briefing"

    sign_in = reader_emails.sign_in_link(reader).message()
    assert sign_in["Feedback-ID"] == "sign_in_link:reader:briefing"
    assert sign_in["Message-ID"].endswith("@news.example.com>")


def test_any_email_through_the_smtp_backend_gets_a_message_id_on_the_sites_domain(
    smtp_server, settings
):
    settings.SITE_URL = "https://news.example.com"
    settings.MAILERS = {
        "default": {
            "BACKEND": "delivery.wire.backend.SigningSMTPBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": smtp_server.port, "timeout": 10},
        }
    }
    EmailMessage("Send health", "An alert.", to=["desk@example.com"]).send()
    [mail] = smtp_server.received()
    assert parseaddr(mail.message["Message-ID"])[1].endswith("@news.example.com")
