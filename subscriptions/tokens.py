"""Signed links that name one reader, each scoped to one page by its salt.

`<reader id>-<signature>`: 128 bits of HMAC-SHA256 over the id with the
page's salt, short enough that a List-Unsubscribe header folds at
whitespace. They do not expire (a digest's links work for as long as the
reader keeps the email) and old SECRET_KEYs still verify, so rotating the
key does not break links in emails already sent.
"""

import base64

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from subscriptions.models import Subscriber


class ReaderTokens:
    def __init__(self, salt: str) -> None:
        self.salt = salt

    def _signature(self, subscriber_id: str, secret: str) -> str:
        digest = salted_hmac(self.salt, subscriber_id, secret=secret, algorithm="sha256").digest()
        return base64.urlsafe_b64encode(digest[:16]).decode("ascii").rstrip("=")

    def make(self, subscriber: Subscriber) -> str:
        subscriber_id = str(subscriber.pk)
        return f"{subscriber_id}-{self._signature(subscriber_id, str(settings.SECRET_KEY))}"

    def subscriber(self, token: str) -> Subscriber | None:
        """The reader the token names, or None if it is forged, altered or another page's."""
        subscriber_id, _, signature = token.partition("-")
        if not subscriber_id.isdigit() or not signature:
            return None
        for secret in [str(settings.SECRET_KEY), *map(str, settings.SECRET_KEY_FALLBACKS)]:
            if constant_time_compare(signature, self._signature(subscriber_id, secret)):
                return Subscriber.objects.filter(pk=int(subscriber_id)).first()
        return None
