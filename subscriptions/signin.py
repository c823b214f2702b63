"""Passwordless sign-in links for readers.

A link carries the reader's id and their last sign-in time, signed with the
secret key (django.core.signing) and valid for SIGN_IN_LINK_MAX_AGE. Using
it moves last_signed_in_at, so each link works once and every older link
dies with it. Opening the link (GET) only shows a button; the sign-in
happens on the POST, so mail scanners that fetch links do not use them up.
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from subscriptions.models import Subscriber

SALT = "subscriptions.sign-in-link"
SIGN_IN_LINK_MAX_AGE = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class SignInClaim:
    subscriber_id: int
    last_signed_in_at: str  # isoformat, or "" for a reader who never signed in


def make_token(subscriber: Subscriber) -> str:
    last = subscriber.last_signed_in_at.isoformat() if subscriber.last_signed_in_at else ""
    return signing.TimestampSigner(salt=SALT).sign_object({"s": subscriber.pk, "v": last})


def read_token(token: str) -> SignInClaim | None:
    """The claim in a genuine, unexpired token; None for anything else."""
    try:
        data = signing.TimestampSigner(salt=SALT).unsign_object(token, max_age=SIGN_IN_LINK_MAX_AGE)
    except signing.BadSignature:  # also SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        return None
    return SignInClaim(subscriber_id=data["s"], last_signed_in_at=str(data.get("v", "")))


def sign_in_url(subscriber: Subscriber) -> str:
    path = reverse("subscriptions:sign-in-confirm", args=[make_token(subscriber)])
    return f"{settings.SITE_URL}{path}"
