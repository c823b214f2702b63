"""Reading on the site from the email: the signed link behind every story of a digest.

Every story link in a reader's digest carries `?token=` (READING_PARAM):
the reader's id, signed with this module's salt and the time it was made.
It opens the whole article on the site without signing in, for
READING_LINK_DAYS, and only while the reader's membership is entitled
(Article.is_readable_by's rule). It opens articles only: the salt is this
page's alone, so it is no sign-in, preferences or unsubscribe token, and it
starts no session (the account, billing and preferences still need their
own links or a sign-in). A forwarded email's links open the articles for
whoever holds it, as the reader's own would, until they expire or the
reader's membership ends; the README says so.
"""

import datetime

from django.core import signing

from subscriptions.models import Subscriber

SALT = "newsletter.reading"
READING_PARAM = "token"
# How long a digest's story links open the whole article: a month of mornings.
READING_LINK_DAYS = 30


def reading_token(subscriber: Subscriber) -> str:
    """The reader's signed reading token, valid READING_LINK_DAYS from now."""
    return signing.TimestampSigner(salt=SALT).sign(str(subscriber.pk))


def reader_for(token: str) -> Subscriber | None:
    """The reader a genuine, unexpired token names (with their membership), or None."""
    signer = signing.TimestampSigner(salt=SALT)
    try:
        value = signer.unsign(token, max_age=datetime.timedelta(days=READING_LINK_DAYS))
    except signing.BadSignature:  # forged, altered, another page's, or expired
        return None
    if not value.isdigit():
        return None
    return Subscriber.objects.select_related("membership").filter(pk=int(value)).first()
