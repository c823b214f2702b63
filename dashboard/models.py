from django.db import models

from subscriptions.models import Membership


class MembershipChange(models.Model):
    """One change of a membership's Stripe status or amount, as it was mirrored here.

    Membership keeps only its status now; conversion, churn and growth need
    when each reader started a trial, began paying and stopped. Rows are
    written by dashboard.history on every save that changes either, so
    the history starts when the dashboard was installed (see the README).
    A reader who is erased takes their history with them (CASCADE): we keep
    nothing on someone who asked to be forgotten.
    """

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="changes")
    # "" for the membership's first status (the row was created with it).
    from_status = models.CharField(max_length=20, blank=True, choices=Membership.Status)
    to_status = models.CharField(max_length=20, choices=Membership.Status)
    # The yearly amount in cents before and after the change: MRR is made of
    # them, and a discount that changes the amount of a paying reader is a
    # change too (with the same status on both sides).
    from_amount = models.PositiveIntegerField(null=True, blank=True)
    amount = models.PositiveIntegerField(null=True, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            models.Index(fields=["to_status", "at"]),
            models.Index(fields=["membership", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.membership_id}: {self.from_status or '—'} → {self.to_status} at {self.at}"
