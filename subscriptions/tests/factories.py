"""Small builders for test data: sensible defaults, override what matters."""

import itertools

from subscriptions.models import Membership, Subscriber

_numbers = itertools.count(1)


def make_subscriber(
    email: str | None = None,
    *,
    membership: str | None = Membership.Status.ACTIVE,
    membership_fields: dict | None = None,
    **fields,
) -> Subscriber:
    """A reader with a membership in the given Stripe status (None: no membership)."""
    number = next(_numbers)
    subscriber = Subscriber.objects.create(email=email or f"reader{number}@example.com", **fields)
    if membership is not None:
        Membership.objects.create(
            subscriber=subscriber, status=membership, **(membership_fields or {})
        )
    return subscriber


def make_stripe_member(
    status: str = Membership.Status.TRIALING,
    *,
    customer_id: str = "cus_T4kQ8Zr2mXv1Ab",
    subscription_id: str | None = "sub_1SbTrial0000000000000001",
    **fields,
) -> Subscriber:
    """A reader whose membership is linked to a Stripe customer (and subscription)."""
    return make_subscriber(
        membership=status,
        membership_fields={
            "stripe_customer_id": customer_id,
            "stripe_subscription_id": subscription_id,
        },
        **fields,
    )
