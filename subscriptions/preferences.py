"""The preferences page: a signed link in every digest and reader email.

It works without signing in and without cookies from the mail client: the
token in the URL names the reader, scoped to this page (an unsubscribe token
does not open it, nor this one unsubscribe). GET shows the settings; the
form POSTs with a CSRF token like any other form.
"""

from django.conf import settings
from django.urls import reverse

from subscriptions.models import Subscriber
from subscriptions.tokens import ReaderTokens

TOKENS = ReaderTokens("subscriptions.preferences")
make_token = TOKENS.make
subscriber_for_token = TOKENS.subscriber


def preferences_url(subscriber: Subscriber) -> str:
    """The absolute link, for emails."""
    return f"{settings.SITE_URL}{reverse('preferences', kwargs={'token': make_token(subscriber)})}"
