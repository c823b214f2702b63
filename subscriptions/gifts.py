"""Gift links: the code of a GiftCode, signed, in the recipient's email.

The code alone (128 random bits) would do; the signature on top means a
link that was altered, or made for another gift, is refused before any
database lookup. A gift is used once (GiftCode.redeemed_at).
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse

from subscriptions.models import GiftCode

SALT = "subscriptions.gift"


def make_token(gift: GiftCode) -> str:
    return signing.dumps({"g": gift.pk, "c": gift.code}, salt=SALT, compress=True)


def gift_for_token(token: str) -> GiftCode | None:
    """The gift the token names, or None if forged, altered or not a gift's."""
    try:
        claim = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not isinstance(claim, dict) or not isinstance(claim.get("g"), int):
        return None
    return GiftCode.objects.filter(pk=claim["g"], code=str(claim.get("c"))).first()


def redeem_url(gift: GiftCode) -> str:
    return (
        f"{settings.SITE_URL}{reverse('subscriptions:gift-redeem-link', args=[make_token(gift)])}"
    )
