"""Claiming a reader email for its cause, and queuing it once the transaction commits."""

from django.db import IntegrityError, transaction

from subscriptions import side_effects
from subscriptions.models import ReaderEmail, Subscriber


def queue_email(
    subscriber: Subscriber, kind: ReaderEmail.Kind, cause: str, context: dict | None = None
) -> ReaderEmail | None:
    """Claim the email for this cause and send it after commit; None if already claimed."""
    try:
        with transaction.atomic():
            email = ReaderEmail.objects.create(
                subscriber=subscriber, kind=kind, cause=cause, context=context or {}
            )
    except IntegrityError:
        return None  # this cause already had its email
    transaction.on_commit(lambda: side_effects.send_reader_email.delay(email.pk))
    return email


def queue_sign_in_link(subscriber: Subscriber) -> None:
    """Email a sign-in link (not once per cause: a reader may ask again)."""
    transaction.on_commit(lambda: side_effects.send_sign_in_link.delay(subscriber.pk))


def queue_signup_link(email: str, name: str, time_zone: str, referral: str = "") -> None:
    """Email the answer to a signup request (a link to continue, or to sign in) after commit.

    By address, not reader id: the address may have no reader yet, and must
    not get one from a request anybody can make. `referral` is passed only
    when there is one, so a request without one is the message it always was.
    """
    extra = {"referral": referral} if referral else {}
    transaction.on_commit(
        lambda: side_effects.send_signup_link.delay(email, name, time_zone, **extra)
    )


def queue_email_change_link(subscriber: Subscriber, new_email: str) -> None:
    """Email the link that confirms a new address, to that address, after commit."""
    transaction.on_commit(
        lambda: side_effects.send_email_change_link.delay(subscriber.pk, new_email)
    )


def queue_customer_email_update(subscriber: Subscriber) -> None:
    """Tell Stripe the reader's new address, after commit (a task that retries)."""
    transaction.on_commit(lambda: side_effects.update_stripe_customer_email.delay(subscriber.pk))
