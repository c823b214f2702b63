"""Who gets the free trial: TRIAL_DAYS (REFERRAL_TRIAL_DAYS when referred), once per reader."""

from django.conf import settings

from subscriptions import stripe_api
from subscriptions.models import Membership
from subscriptions.referral_models import Referral


def trial_days(
    membership: Membership | None, *, ask_stripe: bool = False, referred: bool | None = None
) -> int:
    """The trial this reader's next checkout starts with: TRIAL_DAYS, or 0 for a returning reader.

    A reader who came by a referral link (`referred`; None: look for the
    reader's eligible Referral) gets REFERRAL_TRIAL_DAYS instead.

    A reader had a subscription before if we mirrored one
    (stripe_subscription_id), or, with `ask_stripe`, if Stripe knows one for
    their customer (a lost webhook, a subscription of before our records).
    Pages and emails ask without Stripe (a stranger's request must not reach
    it); the checkout itself asks Stripe too, and Stripe's page shows the
    result either way.
    """
    if referred is None:
        referred = (
            membership is not None
            and Referral.objects.filter(
                referred_id=membership.subscriber_id, eligible=True
            ).exists()
        )
    days = settings.REFERRAL_TRIAL_DAYS if referred else settings.TRIAL_DAYS
    if days <= 0:
        return 0
    if not settings.ONE_TRIAL_PER_READER or membership is None:
        return days
    if membership.stripe_subscription_id:
        return 0
    if not ask_stripe or not membership.stripe_customer_id:
        return days
    had_one = stripe_api.latest_subscription(membership.stripe_customer_id) is not None
    return 0 if had_one else days
