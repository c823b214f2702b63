"""Signed links that name one reader, each scoped to one page by its salt.

`<reader id>-<signature>`: 128 bits of HMAC-SHA256 over the id with the
page's salt, short enough that a List-Unsubscribe header folds at
whitespace. They do not expire (a digest's links work for as long as the
reader keeps the email) and old SECRET_KEYs still verify, so rotating the
key does not break links in emails already sent.
"""

import base64
import functools
import hashlib
import hmac

from django.conf import settings
from django.utils.crypto import constant_time_compare

from subscriptions.models import Subscriber

# The sample reader of the editors' previews and [Test] emails
# (newsletter.desk.sample_subscriber) is an unsaved Subscriber with this id,
# which no reader has (ids start at 1). Its links are signed like any other,
# so they open a page that says they belong to a test email.
SAMPLE_READER_ID = 0


@functools.lru_cache(maxsize=32)
def _keyed_hmac(salt: str, secret: str) -> "hmac.HMAC":
    """django.utils.crypto.salted_hmac's HMAC-SHA256 before its message, keyed once.

    Every digest carries three of these tokens per reader: deriving the key
    per token was a third of their cost.
    """
    key = hashlib.sha256((salt + secret).encode("utf-8")).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


class ReaderTokens:
    def __init__(self, salt: str) -> None:
        self.salt = salt

    def _signature(self, subscriber_id: str, secret: str) -> str:
        mac = _keyed_hmac(self.salt, secret).copy()
        mac.update(subscriber_id.encode("utf-8"))
        return base64.urlsafe_b64encode(mac.digest()[:16]).decode("ascii").rstrip("=")

    def make(self, subscriber: Subscriber) -> str:
        subscriber_id = str(subscriber.pk)
        return f"{subscriber_id}-{self._signature(subscriber_id, str(settings.SECRET_KEY))}"

    def _verified_id(self, token: str) -> int | None:
        subscriber_id, _, signature = token.partition("-")
        if not subscriber_id.isdigit() or not signature:
            return None
        for secret in [str(settings.SECRET_KEY), *map(str, settings.SECRET_KEY_FALLBACKS)]:
            if constant_time_compare(signature, self._signature(subscriber_id, secret)):
                return int(subscriber_id)
        return None

    def subscriber(self, token: str) -> Subscriber | None:
        """The reader the token names, or None if it is forged, altered or another page's."""
        subscriber_id = self._verified_id(token)
        if subscriber_id is None or subscriber_id == SAMPLE_READER_ID:
            return None
        return Subscriber.objects.filter(pk=subscriber_id).first()

    def names_sample_reader(self, token: str) -> bool:
        """A genuine token of the sample reader: a link in an editor's preview or test email."""
        return self._verified_id(token) == SAMPLE_READER_ID
