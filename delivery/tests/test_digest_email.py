"""What the digest looks like to a mail client: headers, HTML, text."""

import datetime
import re

import pytest
from django.core.management import call_command

from delivery.deliverability.verp import parse_unsubscribe_mailto
from delivery.emails import DigestTemplate
from newsletter.tests.factories import built_edition, make_article
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from subscriptions.unsubscribe import subscriber_for_token
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


@pytest.fixture
def received(smtp_server, settings):
    """Send Monday's digest to two readers; return what the SMTP server got."""
    settings.DEFAULT_FROM_EMAIL = "The Morning Briefing <briefing@news.example.com>"
    settings.DIGEST_REPLY_TO = ["editors@news.example.com"]
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@news.example.com"
    settings.SITE_URL = "https://news.example.com"
    make_article(title="Six nations sign a river treaty", dek="After eleven years.")
    make_subscriber("ada@example.com", name="Ada Lovelace")
    make_subscriber("grace@example.com")
    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())
    return {mail.rcpt_tos[0]: mail for mail in smtp_server.received()}


def test_list_headers_offer_one_click_unsubscribe(received):
    message = received["ada@example.com"].message
    links = re.fullmatch(r"<(.+)>, <(.+)>", message["List-Unsubscribe"].strip())
    assert links is not None
    https, mailto = links.groups()

    assert https.startswith("https://news.example.com/unsubscribe/")
    token = https.removeprefix("https://news.example.com/unsubscribe/").rstrip("/")
    subscriber = subscriber_for_token(token)
    assert subscriber is not None
    assert subscriber.email == "ada@example.com"
    # The mailto: names the reader by a signed address, never by their From.
    address = mailto.removeprefix("mailto:").removesuffix("?subject=unsubscribe")
    assert address.startswith("unsubscribe+u") and address.endswith("@news.example.com")
    assert parse_unsubscribe_mailto(address) == subscriber.pk
    grace = received["grace@example.com"].message["List-Unsubscribe"]
    assert address not in grace
    # Short enough to fold at whitespace: no encoded words in the raw header.
    raw = received["ada@example.com"].raw_headers
    assert "=?" not in raw
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == "The Morning Briefing <daily.news.example.com>"


def test_sender_reply_to_and_a_unique_message_id(received):
    ada, grace = received["ada@example.com"].message, received["grace@example.com"].message

    assert ada["From"] == "The Morning Briefing <briefing@news.example.com>"
    assert ada["Reply-To"] == "editors@news.example.com"
    assert ada["To"] == "Ada Lovelace <ada@example.com>"
    assert grace["To"] == "grace@example.com"
    assert re.fullmatch(r"<[^<>@\s]+@news\.example\.com>", ada["Message-ID"])
    assert ada["Message-ID"] != grace["Message-ID"]


def test_html_is_inlined_responsive_and_dark_mode_friendly(received):
    html = received["ada@example.com"].html

    assert '<meta name="color-scheme" content="light dark">' in html
    assert "@media (prefers-color-scheme: dark)" in html
    assert "@media (max-width: 480px)" in html
    # Styles are inlined onto the elements for clients that drop <style>.
    assert re.search(r'<td class="story" style="[^"]*padding: 16px 24px', html)
    assert 'role="presentation"' in html
    # The preheader names the stories; the footer has the reader's links.
    assert re.search(r'class="preheader"[^>]*>Six nations sign a river treaty\u034f', html)
    assert "View this email in your browser" in html
    assert 'href="https://news.example.com/editions/2026-11-30/"' in html
    assert 'href="https://news.example.com/account/"' in html
    assert 'href="https://news.example.com/unsubscribe/' in html
    assert "Good morning, Ada Lovelace." in html


def test_plain_text_alternative_reads_well(received):
    text = received["grace@example.com"].text

    # A first digest reaches back to the previous weekday's send, and says so.
    assert text.startswith(
        "THE MORNING BRIEFING\nMonday 30 November 2026 · Since Friday 06:00 EST\n"
        "Your sections: every section · full stories\n\nGood morning.\n"
    )
    assert "1. Six nations sign a river treaty\nAfter eleven years.\n" in text
    assert (
        "Read this edition in your browser: https://news.example.com/editions/2026-11-30/" in text
    )
    assert "Unsubscribe: https://news.example.com/unsubscribe/" in text
    assert "<" not in text.replace("<https", "")


def test_a_name_with_line_breaks_cannot_inject_headers(smtp_server):
    make_article()
    reader = make_subscriber("eve@example.com")
    # Bypass the model's cleaning, as a raw import or an old row might.
    Subscriber.objects.filter(pk=reader.pk).update(name="Eve\r\nBcc: victim@example.net")

    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())

    (mail,) = smtp_server.received()
    assert mail.rcpt_tos == ["eve@example.com"]
    assert mail.message["Bcc"] is None
    assert mail.message["To"] == '"Eve Bcc: victim@example.net" <eve@example.com>'
    assert "Good morning, Eve Bcc: victim@example.net." in mail.text


def test_names_are_cleaned_when_saved():
    reader = make_subscriber(name="  Eve\r\n  Adams\t")
    assert reader.name == "Eve Adams"


def test_reader_fields_are_escaped_in_html_and_cannot_collide_with_article_text():
    article = make_article(title="Why __greeting__ and <b>tags</b> stay as written")
    edition = built_edition(MONDAY)
    reader = make_subscriber(name="<script>alert(1)</script>")

    message = DigestTemplate(edition, [article]).message_for(reader)
    html = message.html

    assert "Good morning, &lt;script&gt;alert(1)&lt;/script&gt;." in html
    assert "<script>" not in html
    assert "Why __greeting__ and &lt;b&gt;tags&lt;/b&gt; stay as written" in html
    assert "Why __greeting__ and <b>tags</b> stay as written" in message.body


def test_one_template_personalises_each_reader_separately():
    article = make_article()
    edition = built_edition(MONDAY)
    template = DigestTemplate(edition, [article])
    ada = make_subscriber("ada@example.com", name="Ada")
    alan = make_subscriber("alan@example.com", name="Alan")

    for_ada, for_alan = template.message_for(ada), template.message_for(alan)

    assert "Good morning, Ada." in for_ada.body and "Alan" not in for_ada.body
    assert "Good morning, Alan." in for_alan.body and "Ada" not in for_alan.body
    assert for_ada.extra_headers["List-Unsubscribe"] != for_alan.extra_headers["List-Unsubscribe"]


def test_trialing_readers_are_told_when_the_trial_ends_and_what_it_costs():
    from subscriptions.models import Membership

    article = make_article()
    edition = built_edition(MONDAY)
    reader = make_subscriber(membership=Membership.Status.TRIALING)
    Membership.objects.filter(subscriber=reader).update(
        trial_end=datetime.datetime(2026, 12, 10, 15, 0, tzinfo=datetime.UTC)
    )
    reader.refresh_from_db()

    message = DigestTemplate(edition, [article]).message_for(reader)

    expected = "Your free trial ends on Thursday 10 December. After that the briefing is $46 a year"
    assert expected in message.body
    assert "Manage your membership: http://127.0.0.1:8000/account/" in message.body
    html = message.html
    assert expected in html
    assert '<a href="http://127.0.0.1:8000/account/"' in html


def test_readers_whose_payment_failed_are_asked_to_update_their_card():
    from subscriptions.models import Membership

    article = make_article()
    edition = built_edition(MONDAY)
    late = make_subscriber(membership=Membership.Status.PAST_DUE)
    paying = make_subscriber(membership=Membership.Status.ACTIVE)
    template = DigestTemplate(edition, [article])

    assert "We could not take your last payment" in template.message_for(late).body
    assert "Update your card: http://127.0.0.1:8000/account/" in template.message_for(late).body
    for_paying = template.message_for(paying)
    assert "payment" not in for_paying.body
    assert "trial" not in for_paying.body
    assert 'class="notice"' not in for_paying.html
