from django.conf import settings
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


class EditionZoneSend(models.Model):
    """One zone's share of one edition's send, counted: what the sending figures read.

    Counting the deliveries of 30 editions at a million readers takes
    seconds; dashboard.sends counts each edition once per zone and keeps it
    here, recounting an edition while it can still change (later zones,
    bounces, the unsubscribes of the 48 hours after it). A row is derived
    data: deleting them all only costs a recount.
    """

    edition = models.ForeignKey(
        "newsletter.Edition", on_delete=models.CASCADE, related_name="zone_counts"
    )
    # "" for digests sent by hand to readers with no zone's schedule.
    time_zone = models.CharField(max_length=64, blank=True)
    deliveries = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    missed = models.PositiveIntegerField(default=0)
    complaints = models.PositiveIntegerField(default=0)
    unsubscribes = models.PositiveIntegerField(default=0)
    # The zone's send moment and its last digest handed to the mail server.
    began = models.DateTimeField(null=True, blank=True)
    ended = models.DateTimeField(null=True, blank=True)
    counted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["edition", "time_zone"], name="edition_zone_send_unique"
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.edition_id} {self.time_zone or 'by hand'}: {self.delivered}/{self.deliveries}"
        )


class DailyFigures(models.Model):
    """One newsroom day of membership history, counted: what the growth figures read.

    Grouping a year of changes by day, week or month in the newsroom's zone
    is slow at a million readers (on SQLite the zone conversion runs per
    row); a day's starts, stops and revenue change are final once the day
    is over (changes are recorded as they happen), so dashboard.daily
    counts each day once. The day's trial cohort is recounted while its
    readers can still convert (daily.COHORT_OPEN_DAYS). Derived data: a
    missing day is counted on the fly by the figures.
    """

    date = models.DateField(unique=True)
    trials = models.PositiveIntegerField(default=0)
    started = models.PositiveIntegerField(default=0)
    stopped = models.PositiveIntegerField(default=0)
    # Change of yearly revenue over the day, in cents (may be negative).
    arr_change = models.BigIntegerField(default=0)
    # Of the day's trials, as of counted_at: went on to pay / still trialing.
    converted = models.PositiveIntegerField(default=0)
    still_trialing = models.PositiveIntegerField(default=0)
    counted_at = models.DateTimeField()

    class Meta:
        ordering = ["date"]
        verbose_name_plural = "daily figures"

    def __str__(self) -> str:
        return f"{self.date}: +{self.started} -{self.stopped}"


class ReaderStates(models.Model):
    """Readers by state at one moment: what the readers figure reads, counted every few minutes.

    Counting every reader's state is a pass over all readers and their
    memberships (over a second at a million on SQLite); dashboard.daily
    counts it periodically, and the figure counts on the fly when the
    latest count is older than daily.READERS_FRESH. The rows also make a
    history of the states; older ones are thinned to one a day.
    """

    counted_at = models.DateTimeField(db_index=True)
    # [[label, count], ...] in metrics.readers_by_state's order.
    tallies = models.JSONField()
    # metrics.revenue at the same moment: paying readers and their yearly amounts.
    paying = models.PositiveIntegerField(default=0)
    arr_cents = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-counted_at"]
        verbose_name_plural = "reader states"

    def __str__(self) -> str:
        return f"Readers by state at {self.counted_at}"


class StaffSettings(models.Model):
    """A staff member's dashboard settings: for now, whether they get the weekly summary."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dashboard_settings"
    )
    weekly_summary = models.BooleanField(
        default=False, help_text="Email me the dashboard's figures every Monday morning."
    )
    # The Monday (newsroom date) of the last week whose summary was sent:
    # a second run in the same week sends nothing.
    summary_sent_for = models.DateField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "staff dashboard settings"
        verbose_name_plural = "staff dashboard settings"

    def __str__(self) -> str:
        return f"Dashboard settings of {self.user}"
