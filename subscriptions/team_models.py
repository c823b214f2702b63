"""Teams: an organisation's subscription of N seats, and the readers who hold them.

Kept apart from subscriptions.models (which imports this module at its end,
so Django finds the models), naming the reader by its label only. A Team's
billing fields are mirrored from its Stripe subscription, as a Membership's
are (subscriptions.actions.teams.do_sync_team); each seat holder is a full
reader (their own zone, time, sections, preferences), entitled while the
team's subscription is (SubscriberQuerySet.entitled).
"""

import secrets

from django.db import models
from django.db.models import Q

from subscriptions.stripe_statuses import SubscriptionStatus


def new_invite_secret() -> str:
    return secrets.token_urlsafe(16)


class Team(models.Model):
    Status = SubscriptionStatus

    TERMINAL_STATUSES = (Status.CANCELED, Status.INCOMPLETE_EXPIRED)

    name = models.CharField(max_length=120)
    manager = models.ForeignKey(
        "subscriptions.Subscriber",
        null=True,
        on_delete=models.SET_NULL,
        related_name="teams_managed",
    )
    # Mirrored from Stripe: the subscription's quantity. What the manager
    # asked for at checkout is seats_requested, until Stripe says.
    seats = models.PositiveIntegerField(default=0)
    seats_requested = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=20, choices=Status, default=Status.INCOMPLETE)
    stripe_customer_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    past_due_since = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # What Stripe charges a year for all the seats, in cents (the volume price).
    amount = models.PositiveIntegerField(null=True, blank=True)
    stripe_synced_at = models.DateTimeField(null=True, blank=True)
    # In the invite link: a new secret ends every invite link sent before.
    invite_secret = models.CharField(max_length=64, default=new_invite_secret)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamSeat(models.Model):
    """A reader on a team's seat; a removed one keeps the digest until access_until."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="seat_holders")
    subscriber = models.ForeignKey(
        "subscriptions.Subscriber", on_delete=models.CASCADE, related_name="team_seats"
    )
    claimed_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    # The end of the day (in the reader's zone) the manager removed them on.
    access_until = models.DateTimeField(null=True, blank=True)
    # The email that tells a removed member, with a trial offer: sent once.
    ended_email_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["claimed_at", "pk"]
        constraints = [
            # One seat at a time per reader, on any team.
            models.UniqueConstraint(
                fields=["subscriber"],
                condition=Q(removed_at__isnull=True),
                name="team_seat_one_per_reader",
            )
        ]
        indexes = [models.Index(fields=["team", "removed_at"], name="team_seat_taken")]

    def __str__(self) -> str:
        return f"{self.subscriber} on {self.team}"
