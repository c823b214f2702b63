"""Every reader's referral link: in each digest's footer and in the welcome email."""

import pytest
from django.core.management import call_command

from newsletter.tests.factories import make_article
from subscriptions import emails, referrals
from subscriptions.models import ReaderEmail
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]


def test_each_digest_carries_its_readers_own_referral_link(smtp_server, settings):
    settings.SITE_URL = "https://news.example.com"
    make_article(title="Six nations sign a river treaty")
    ada = make_subscriber("ada@example.com", name="Ada")
    grace = make_subscriber("grace@example.com")
    call_command("send_digest", "--sync", "--date", MONDAY.isoformat())
    received = {mail.rcpt_tos[0]: mail for mail in smtp_server.received()}

    for reader, other in ((ada, grace), (grace, ada)):
        message = received[reader.email]
        url = referrals.referral_url(reader)
        assert url.startswith("https://news.example.com/invite/")
        assert url in message.text
        assert f'href="{url}"' in message.html
        assert referrals.referral_url(other) not in message.text
        token = url.removeprefix("https://news.example.com/invite/").rstrip("/")
        assert referrals.referrer_for_token(token) == reader


def test_the_welcome_email_carries_the_readers_referral_link():
    reader = make_subscriber("ada@example.com", membership="trialing")
    email = ReaderEmail.objects.create(
        subscriber=reader, kind=ReaderEmail.Kind.WELCOME, cause="sub_1", context={}
    )
    message = emails.welcome(email)
    url = referrals.referral_url(reader)
    assert url in message.body
    html, _ = message.alternatives[0]
    assert isinstance(html, str) and url in html
