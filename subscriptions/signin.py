"""Passwordless links for readers: signing in, and continuing a signup.

A sign-in link carries the reader's id and their last sign-in time, signed
with the secret key (django.core.signing) and valid for SIGN_IN_LINK_MINUTES.
Using it moves last_signed_in_at, so each link works once and every older
link dies with it. Opening the link (GET) only shows a button; the sign-in
happens on the POST, so mail scanners that fetch links do not use them up.

A signup link is what the signup form emails, to members and strangers
alike (so the form tells nobody which address is whose): it carries the
address, the name and time zone typed, and the same last-sign-in marker
(empty for an address with no reader yet), so it too works once. Only its
owner's inbox gets it: using it proves the address, which is why it signs
the browser in before Checkout.
"""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from subscriptions.models import Subscriber, iso_or_none

SALT = "subscriptions.sign-in-link"
SIGNUP_SALT = "subscriptions.signup-link"
EMAIL_CHANGE_SALT = "subscriptions.email-change-link"


def link_max_age() -> datetime.timedelta:
    """How long an emailed link works (SIGN_IN_LINK_MINUTES)."""
    return datetime.timedelta(minutes=settings.SIGN_IN_LINK_MINUTES)


def link_minutes() -> int:
    return settings.SIGN_IN_LINK_MINUTES


def _last(subscriber: Subscriber | None) -> str:
    if subscriber is None or subscriber.last_signed_in_at is None:
        return ""
    return subscriber.last_signed_in_at.isoformat()


@dataclass(frozen=True)
class SignInClaim:
    subscriber_id: int
    last_signed_in_at: str  # isoformat, or "" for a reader who never signed in


def make_token(subscriber: Subscriber) -> str:
    return signing.TimestampSigner(salt=SALT).sign_object(
        {"s": subscriber.pk, "v": _last(subscriber)}
    )


def _unsign(token: str, salt: str) -> object:
    try:
        return signing.TimestampSigner(salt=salt).unsign_object(token, max_age=link_max_age())
    except signing.BadSignature:  # also SignatureExpired
        return None


def read_token(token: str) -> SignInClaim | None:
    """The claim in a genuine, unexpired token; None for anything else."""
    data = _unsign(token, SALT)
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        return None
    return SignInClaim(subscriber_id=data["s"], last_signed_in_at=str(data.get("v", "")))


def is_used(claim: "SignInClaim | SignupClaim | EmailChangeClaim") -> bool:
    """Whether a genuine link was used already: its reader signed in since it was made.

    Read before the button is shown, so a used link says so at once instead
    of offering a button that can only fail. (The POST checks again, in its
    transaction: this is for the page, not the guarantee.)
    """
    if isinstance(claim, EmailChangeClaim):
        # Used once the reader no longer has the address it moves them from.
        return not Subscriber.objects.filter(pk=claim.subscriber_id, email=claim.old_email).exists()
    if isinstance(claim, SignInClaim):
        subscriber = Subscriber.objects.filter(pk=claim.subscriber_id).first()
    else:
        subscriber = Subscriber.objects.filter(email__iexact=claim.email).first()
    if subscriber is None:
        # A sign-in link's reader is gone; a signup link for a new address is fresh.
        return isinstance(claim, SignInClaim) or bool(claim.last_signed_in_at)
    return iso_or_none(subscriber.last_signed_in_at) != (claim.last_signed_in_at or None)


def sign_in_url(subscriber: Subscriber) -> str:
    path = reverse("subscriptions:sign-in-link", args=[make_token(subscriber)])
    return f"{settings.SITE_URL}{path}"


@dataclass(frozen=True)
class SignupClaim:
    email: str
    name: str  # as typed by whoever filled in the form: not the owner's word yet
    time_zone: str
    last_signed_in_at: str  # the reader's, when the link was made; "" if none (or no reader)
    referral: str = ""  # the referral link's token the visitor came by, if any


def make_signup_token(claim: SignupClaim) -> str:
    data = {"e": claim.email, "n": claim.name, "z": claim.time_zone, "v": claim.last_signed_in_at}
    if claim.referral:
        data["r"] = claim.referral
    return signing.TimestampSigner(salt=SIGNUP_SALT).sign_object(data, compress=True)


def read_signup_token(token: str) -> SignupClaim | None:
    data = _unsign(token, SIGNUP_SALT)
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "enzv"):
        return None
    referral = data.get("r", "")
    return SignupClaim(
        email=data["e"],
        name=data["n"],
        time_zone=data["z"],
        last_signed_in_at=data["v"],
        referral=referral if isinstance(referral, str) else "",
    )


def signup_url(
    email: str, name: str, time_zone: str, subscriber: Subscriber | None, referral: str = ""
) -> str:
    token = make_signup_token(SignupClaim(email, name, time_zone, _last(subscriber), referral))
    return f"{settings.SITE_URL}{reverse('subscriptions:signup-link', args=[token])}"


@dataclass(frozen=True)
class EmailChangeClaim:
    """A reader's request to move to a new address, sent to that address to prove it."""

    subscriber_id: int
    old_email: str  # the link works while the reader still has this address: once
    new_email: str


def email_change_url(claim: EmailChangeClaim) -> str:
    data = {"s": claim.subscriber_id, "o": claim.old_email, "n": claim.new_email}
    token = signing.TimestampSigner(salt=EMAIL_CHANGE_SALT).sign_object(data, compress=True)
    return f"{settings.SITE_URL}{reverse('subscriptions:email-change-link', args=[token])}"


def read_email_change_token(token: str) -> EmailChangeClaim | None:
    data = _unsign(token, EMAIL_CHANGE_SALT)
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        return None
    if not all(isinstance(data.get(k), str) for k in "on"):
        return None
    return EmailChangeClaim(subscriber_id=data["s"], old_email=data["o"], new_email=data["n"])
