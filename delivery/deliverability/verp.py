"""Signed addresses: each email's return path (VERP) and each reader's unsubscribe mailto:.

VERP (variable envelope return path): with BOUNCE_DOMAIN set, each email's
envelope sender (MAIL FROM, the Return-Path a bounce goes back to) is
`bounces+<kind><id>-<signature>@BOUNCE_DOMAIN`, so a bounce names the
delivery (or reader) it is about whatever the remote server writes in it.
The signature, an HMAC of the secret key, stops anyone from crafting a
bounce that suppresses an address of their choosing. It is lower-case hex:
some mail systems fold the case of local parts. The reader's unsubscribe
address (the mailto: half of List-Unsubscribe) is signed the same way.
"""

import functools
import hashlib
import hmac
import re

from django.conf import settings
from django.utils.crypto import constant_time_compare

# The name of the module that first signed these addresses, kept: another salt
# would void the return address of every email still out (bounces come back
# for days), and every reader's unsubscribe address.
VERP_SALT = "config.mail.verp"


SIGNATURE_LENGTH = 12  # 48 bits: forging one means guessing among 2^48


@functools.cache
def _verp_key(secret: str) -> bytes:
    # As django.utils.crypto.salted_hmac derives its key, once per secret
    # rather than once per email (the digest's fast path signs thousands a second).
    return hashlib.sha256((VERP_SALT + secret).encode()).digest()


def _verp_signature(tag: str, secret: str | None = None) -> str:
    key = _verp_key(secret or settings.SECRET_KEY)
    return hmac.new(key, tag.encode(), hashlib.sha256).hexdigest()[:SIGNATURE_LENGTH]


def verp_address(kind: str, pk: int) -> str | None:
    """The envelope sender of one email about `kind` (d: a delivery, s: a reader), or None.

    None when BOUNCE_DOMAIN is unset: the envelope sender is then the From address.
    """
    if not settings.BOUNCE_DOMAIN:
        return None
    tag = f"{kind}{pk}"
    return f"{settings.BOUNCE_LOCAL_PART}+{tag}-{_verp_signature(tag)}@{settings.BOUNCE_DOMAIN}"


VERP_TAG = re.compile(r"\+([a-z])(\d+)-([0-9a-f]+)@", re.IGNORECASE)


def parse_verp(address: str) -> tuple[str, int] | None:
    """(kind, id) of a VERP address we made (the signature checked), else None."""
    local_part = settings.BOUNCE_LOCAL_PART.lower()
    lowered = address.strip().strip("<>").lower()
    if not lowered.startswith(local_part + "+"):
        return None
    return _signed_tag(lowered)


def unsubscribe_mailto(subscriber_id: int) -> str:
    """The reader's own address for the mailto: half of List-Unsubscribe.

    UNSUBSCRIBE_MAILTO with a signed subaddress naming the reader in place of
    any it has (news@example.com becomes news+u42-<signature>@example.com):
    an email to it unsubscribes that reader whoever it claims to be from,
    and a forged From names nobody (delivery.deliverability.reports).
    """
    local_part, domain = _mailto_parts()
    tag = f"u{subscriber_id}"
    return f"{local_part}+{tag}-{_verp_signature(tag)}@{domain}"


def parse_unsubscribe_mailto(address: str) -> int | None:
    """The reader a signed unsubscribe address of ours names, else None."""
    local_part, domain = _mailto_parts()
    lowered = address.strip().strip("<>").lower()
    if not (lowered.startswith(local_part.lower() + "+") and lowered.endswith("@" + domain)):
        return None
    tag = _signed_tag(lowered)
    if tag is None or tag[0] != "u":
        return None
    return tag[1]


def _mailto_parts() -> tuple[str, str]:
    local_part, _, domain = settings.UNSUBSCRIBE_MAILTO.rpartition("@")
    return local_part.split("+", 1)[0], domain.lower()


def _signed_tag(lowered: str) -> tuple[str, int] | None:
    match = VERP_TAG.search(lowered)
    if match is None:
        return None
    kind, pk, signature = match.groups()
    # Bounces of mail sent before a key rotation arrive for days after it.
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(
        constant_time_compare(signature, _verp_signature(f"{kind}{pk}", secret))
        for secret in secrets
    ):
        return None
    return kind, int(pk)
