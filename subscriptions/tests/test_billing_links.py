"""The billing emails' signed links: scoped to their page, and never written to a log."""

import pytest

from config.logfilters import redact
from subscriptions import billing_links, gifts
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db


def test_each_link_opens_only_its_own_page():
    reader = make_subscriber()
    renewal = billing_links.RENEWAL_TOKENS.make(reader)
    rejoin = billing_links.REJOIN_TOKENS.make(reader)
    assert billing_links.RENEWAL_TOKENS.subscriber(renewal) == reader
    assert billing_links.REJOIN_TOKENS.subscriber(renewal) is None
    assert billing_links.RENEWAL_TOKENS.subscriber(rejoin) is None
    assert gifts.gift_for_token(renewal) is None


@pytest.mark.parametrize(
    "url",
    [
        "/billing/renewal/12-SECRETsignature/",
        "/billing/rejoin/12-SECRETsignature/",
        "/gift/redeem/eyJnIjoxfQ:1vR:SECRET/",
        "/gift/thanks/?session_id=cs_test_SECRET",
    ],
)
def test_their_tokens_are_redacted_in_log_lines(url):
    line = redact(f'"GET {url} HTTP/1.1" 200')
    assert "SECRET" not in line and "[redacted]" in line
