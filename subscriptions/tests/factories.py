"""Small builders for test data: sensible defaults, override what matters."""

import itertools

from subscriptions.models import Membership, Subscriber

_numbers = itertools.count(1)


def make_subscriber(
    email: str | None = None,
    *,
    membership: str | None = Membership.Status.ACTIVE,
    **fields,
) -> Subscriber:
    """A reader with a membership in the given Stripe status (None: no membership)."""
    number = next(_numbers)
    subscriber = Subscriber.objects.create(email=email or f"reader{number}@example.com", **fields)
    if membership is not None:
        Membership.objects.create(subscriber=subscriber, status=membership)
    return subscriber
