"""Who gets the free trial: TRIAL_DAYS, once per reader (ONE_TRIAL_PER_READER)."""

from django.conf import settings

from subscriptions import stripe_api
from subscriptions.models import Membership


def trial_days(membership: Membership | None, *, ask_stripe: bool = False) -> int:
    """The trial this reader's next checkout starts with: TRIAL_DAYS, or 0 for a returning reader.

    A reader had a subscription before if we mirrored one
    (stripe_subscription_id), or, with `ask_stripe`, if Stripe knows one for
    their customer (a lost webhook, a subscription of before our records).
    Pages and emails ask without Stripe (a stranger's request must not reach
    it); the checkout itself asks Stripe too, and Stripe's page shows the
    result either way.
    """
    if settings.TRIAL_DAYS <= 0:
        return 0
    if not settings.ONE_TRIAL_PER_READER or membership is None:
        return settings.TRIAL_DAYS
    if membership.stripe_subscription_id:
        return 0
    if not ask_stripe or not membership.stripe_customer_id:
        return settings.TRIAL_DAYS
    had_one = stripe_api.latest_subscription(membership.stripe_customer_id) is not None
    return 0 if had_one else settings.TRIAL_DAYS
