"""Signed links in billing emails: cancel (or keep) the renewal, and come back.

Scoped like the preferences link (subscriptions.tokens): a renewal link
opens only the renewal page, a rejoin link only starts a checkout. Neither
signs anybody in. The renewal page changes nothing on GET (mail scanners
open links); its button POSTs. The rejoin link starts a Stripe Checkout
Session on GET, which charges nothing and writes nothing of ours until the
reader pays on Stripe's page.
"""

from django.conf import settings
from django.urls import reverse

from subscriptions.models import Subscriber
from subscriptions.tokens import ReaderTokens

RENEWAL_TOKENS = ReaderTokens("subscriptions.billing.renewal")
REJOIN_TOKENS = ReaderTokens("subscriptions.billing.rejoin")


def renewal_url(subscriber: Subscriber) -> str:
    """The page where the reader cancels the renewal in one press (or keeps it)."""
    token = RENEWAL_TOKENS.make(subscriber)
    return f"{settings.SITE_URL}{reverse('subscriptions:billing-renewal', args=[token])}"


def rejoin_url(subscriber: Subscriber) -> str:
    """The link that takes a reader whose membership ended straight to a new checkout."""
    token = REJOIN_TOKENS.make(subscriber)
    return f"{settings.SITE_URL}{reverse('subscriptions:billing-rejoin', args=[token])}"
