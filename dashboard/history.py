"""Recording each membership's status and amount changes, for the figures that need history.

Only Stripe writes a membership's status and amount
(subscriptions.actions.stripe_sync), always through Model.save(); the
receivers here compare what is being saved with what is in the database and
record the difference. A save that touches neither costs no extra query.
Queryset.update() and bulk_create() send no signals: nothing in the product
writes these fields that way (seed_demo writes its history itself).
"""

from typing import Any

from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from dashboard.models import MembershipChange
from subscriptions.models import Membership

# Set on the instance between pre_save and post_save: (status, amount) in the
# database before this save, ("", None) for a new membership.
_PREVIOUS = "_dashboard_previous"
_WATCHED = {"status", "amount"}


def _remember(sender: type[Membership], instance: Membership, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not _WATCHED & set(update_fields):
        return
    previous: tuple[str, int | None] = ("", None)
    if not instance._state.adding:
        # Read from the database, not from the instance as it was loaded:
        # stripe_sync saves a row it locked, so this is the true previous state.
        row = Membership.objects.filter(pk=instance.pk).values_list("status", "amount").first()
        if row is not None:
            previous = row
    setattr(instance, _PREVIOUS, previous)


def _record(sender: type[Membership], instance: Membership, **kwargs: Any) -> None:
    if not hasattr(instance, _PREVIOUS):
        return
    from_status, from_amount = getattr(instance, _PREVIOUS)
    delattr(instance, _PREVIOUS)
    if (from_status, from_amount) == (instance.status, instance.amount):
        return
    MembershipChange.objects.create(
        membership=instance,
        from_status=from_status,
        to_status=instance.status,
        from_amount=from_amount,
        amount=instance.amount,
        at=timezone.now(),
    )


def connect() -> None:
    pre_save.connect(_remember, sender=Membership, dispatch_uid="dashboard-remember")
    post_save.connect(_record, sender=Membership, dispatch_uid="dashboard-record")
