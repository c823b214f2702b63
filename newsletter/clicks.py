"""Counting which stories readers open from their digest, privacy first.

With CLICK_TRACKING on (off by default) each story's link in a digest goes
through /r/<signed edition and story>/, which counts the click and
redirects to the story. The signature keeps the counts honest (nobody can
count clicks for a story an edition did not carry) and the link short.
Who clicked is recorded only with TRACK_READER_CLICKS: the link then also
carries the reader's own signed id, the preferences page says so, and the
digest's links differ per reader (one more slot filled per reader). There is
no open-tracking pixel: mail privacy proxies fetch images for everyone, so
opens say nothing.

A click counts once per reader (or, without TRACK_READER_CLICKS, per
client address) per story of an edition within COUNT_WINDOW_SECONDS:
reloading a link a few hundred times does not make a story the week's
most read. The redirect works every time; only the count is deduplicated.
"""

import datetime

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from newsletter.models import Article, Click, Edition
from subscriptions.models import Subscriber

LINK_SALT = "newsletter.click"
READER_SALT = "newsletter.click-reader"
COUNTED_SALT = "newsletter.click-counted"
COUNT_WINDOW_SECONDS = 60 * 60


def link_path(edition: Edition, article: Article) -> str:
    """The tracked path of a story's link in an edition's digest."""
    value = signing.Signer(salt=LINK_SALT).sign(f"{edition.pk}.{article.pk}")
    return reverse("click", kwargs={"value": value})


def reader_token(subscriber: Subscriber) -> str:
    return signing.Signer(salt=READER_SALT).sign(str(subscriber.pk))


def unsign_link(value: str) -> tuple[int, int]:
    """(edition id, article id) of a signed link; BadSignature if forged or altered."""
    edition_id, _, article_id = signing.Signer(salt=LINK_SALT).unsign(value).partition(".")
    if not (edition_id.isdigit() and article_id.isdigit()):
        raise signing.BadSignature("Not a story link.")
    return int(edition_id), int(article_id)


def reader_of(token: str) -> int | None:
    """The reader id a link carries, if reader clicks are tracked and it is genuine."""
    if not settings.TRACK_READER_CLICKS or not token:
        return None
    try:
        value = signing.Signer(salt=READER_SALT).unsign(token)
    except signing.BadSignature:
        return None
    return int(value) if value.isdigit() else None


def first_in_window(
    edition: Edition,
    article: Article,
    *,
    reader_id: int | None,
    client: str,
    now: datetime.datetime | None = None,
) -> bool:
    """Whether this click counts: the first of its reader (or client) on the story in the window.

    Remembered on the shared cache, so every web process agrees (cache.add
    has one winner), under a keyed hash: never the address or the reader's
    id in clear. Windows are fixed, as the rate limits' are, so one click
    just before a window ends and one just after both count.
    """
    now = now or timezone.now()
    who = f"reader:{reader_id}" if reader_id is not None else f"client:{client}"
    digest = salted_hmac(
        COUNTED_SALT, f"{edition.pk}.{article.pk}.{who}", algorithm="sha256"
    ).hexdigest()[:32]
    window = int(now.timestamp() // COUNT_WINDOW_SECONDS)
    return cache.add(f"click:{digest}:{window}", 1, timeout=COUNT_WINDOW_SECONDS)


@transaction.atomic
def do_record_click(edition: Edition, article: Article, subscriber_id: int | None) -> Click:
    if subscriber_id is not None and not Subscriber.objects.filter(pk=subscriber_id).exists():
        subscriber_id = None  # the reader deleted their account since
    return Click.objects.create(edition=edition, article=article, subscriber_id=subscriber_id)
