"""The record of the sends: deliveries, send slots, bounces, and send health's alerts and pauses.

One Delivery per (edition, reader), one SendSlot per local morning, a
BounceEvent for each bounce or complaint that came back, the SendAlert
and SendPause rows of send health, and the EventCount rows the metrics read.

These models moved here from the newsletter app with their tables: each
keeps its table ("newsletter_<model>", Meta.db_table), so no reader's row
was copied (migrations 0001 to 0003).
"""

import datetime
import functools
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.utils import timezone

from newsletter.models import Edition


class Delivery(models.Model):
    """One reader's copy of one edition: the record of what was sent."""

    # Written on rows whose connection (or API call) dropped after the message
    # went out; cleared when the ESP reports the message accepted or delivered.
    UNCONFIRMED_NOTE = (
        "Sent; the connection dropped before the mail server confirmed it, "
        "so delivery is likely but not confirmed."
    )

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"
        SKIPPED = "skipped", "Skipped"
        # Due while no worker could send it, and the reader's morning is over.
        MISSED = "missed", "Missed"

    # Both foreign keys are indexed by the composite indexes below, which
    # begin with them: one index fewer to write for each row and update.
    edition = models.ForeignKey(
        Edition, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    subscriber = models.ForeignKey(
        "subscriptions.Subscriber",
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
    )
    status = models.CharField(max_length=20, choices=Status, default=Status.QUEUED)
    # The reader's send moment (their delivery time in their zone, that
    # date); the digest carries what was published in (window_start,
    # scheduled_for]. The next digest's window starts where this one ends.
    scheduled_for = models.DateTimeField(null=True, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # Who holds the row until when: a sender renews it while it works (a
    # heartbeat), a batch task waiting to retry holds it until its retry. A
    # row whose lease has run out is nobody's: the sweep hands it on.
    lease_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Which mailer carried it: "default", or "fallback" (delivery.wire.carriers).
    # A database default: the audience is written by raw INSERT ... SELECT.
    carrier = models.CharField(max_length=20, blank=True, default="", db_default="")
    # The reader's format when the audience was written ("full" or
    # "headlines"; "" before readers chose one), for the send report.
    digest_format = models.CharField("format", max_length=10, blank=True, default="", db_default="")

    class Meta:
        db_table = "newsletter_delivery"
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["edition", "subscriber"], name="delivery_unique_per_reader"
            ),
        ]
        indexes = [
            # A batch claims (edition, queued, id range): the range is in the
            # index, so a claim reads its 500 rows, not every queued row of
            # the edition (which made a send quadratic on PostgreSQL).
            models.Index(fields=["edition", "status", "id"], name="delivery_edition_status_id"),
            models.Index(fields=["subscriber", "scheduled_for"]),
            models.Index(fields=["status", "scheduled_for"]),
        ]

    def __str__(self) -> str:
        return f"{self.edition} to {self.subscriber}"

    @property
    def message_id(self) -> str:
        return message_id_for(self.edition, self.pk)


def message_id_for(edition: Edition, delivery_id: int) -> str:
    """The Message-ID of one reader's copy of an edition.

    Derived, not stored: the same on every attempt, so a copy sent again after
    an interrupted send carries the same Message-ID as the first, which lets
    mail clients that deduplicate show it once. The send's start time keeps it
    unique even if a database is rebuilt and ids come round again.
    """
    started = int(edition.send_started_at.timestamp()) if edition.send_started_at else 0
    return f"<digest.{edition.date:%Y%m%d}.{edition.pk}.{delivery_id}.{started}@{site_host()}>"


def site_host() -> str:
    return _host_of(settings.SITE_URL)


@functools.cache
def _host_of(url: str) -> str:
    return urlsplit(url).hostname or "localhost"


class SendSlot(models.Model):
    """One (local date, zone, delivery time) send, claimed once by the scheduler.

    The scheduler runs every minute; the unique slot makes the audience of
    each local morning be written once, however often beat fires or however
    many schedulers run. `readers` is how many deliveries it created.

    The audience is written in chunks (delivery.audience): the slot is
    "writing" until the last one, held by a lease its writer renews; a
    scheduler that finds the lease run out (the writer died) writes the rest.
    """

    class Outcome(models.TextChoices):
        WRITING = "writing", "Writing the audience"
        QUEUED = "queued", "Queued"
        MISSED = "missed", "Missed: due while nothing could send"
        NOTHING_NEW = "nothing_new", "Nothing published"

    date = models.DateField()
    time_zone = models.CharField(max_length=64)
    send_time = models.TimeField()
    scheduled_for = models.DateTimeField()
    outcome = models.CharField(max_length=20, choices=Outcome)
    readers = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "newsletter_sendslot"
        ordering = ["scheduled_for", "time_zone"]
        constraints = [
            models.UniqueConstraint(
                fields=["date", "time_zone", "send_time"], name="send_slot_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.send_time:%H:%M} {self.time_zone}"

    def writer_died(self, now: datetime.datetime) -> bool:
        """Still writing its audience, and the writer's lease has run out."""
        return (
            self.outcome == self.Outcome.WRITING
            and self.lease_until is not None
            and self.lease_until < now
        )


class BounceEvent(models.Model):
    """A bounce, complaint or mailto: unsubscribe about one reader (delivery.deliverability).

    From the SMTP server's answer at send time, the bounce mailbox (DSNs,
    RFC 3464; ARF complaints, RFC 5965) or the ESP's webhook. The edition's
    send health is counted from these rows.
    """

    class Kind(models.TextChoices):
        HARD = "hard", "Hard bounce"
        SOFT = "soft", "Soft bounce"
        COMPLAINT = "complaint", "Spam complaint"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribed by email"

    class Source(models.TextChoices):
        SMTP = "smtp", "SMTP answer at send time"
        MAILBOX = "mailbox", "Bounce mailbox"
        ESP = "esp", "Email service provider"

    kind = models.CharField(max_length=20, choices=Kind)
    source = models.CharField(max_length=20, choices=Source)
    subscriber = models.ForeignKey(
        "subscriptions.Subscriber", on_delete=models.CASCADE, related_name="bounce_events"
    )
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="bounce_events"
    )
    edition = models.ForeignKey(
        Edition,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bounce_events",
    )
    # The report's own Message-ID: a mailbox read twice counts it once. The
    # sender chooses it, so it dedupes re-reads only; what bounds a reader's
    # weight in send health is one complaint per (reader, edition) below.
    report_id = models.CharField(max_length=255, blank=True)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "newsletter_bounceevent"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["subscriber", "kind", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["report_id", "subscriber"],
                condition=~models.Q(report_id=""),
                name="bounce_event_once_per_report",
            ),
            models.UniqueConstraint(
                fields=["subscriber", "edition"],
                condition=models.Q(kind="complaint", edition__isnull=False),
                name="bounce_event_complaint_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_source_display()})"


class SendAlert(models.Model):
    """A send-health threshold an edition passed: staff are emailed once, the desk shows it."""

    class Kind(models.TextChoices):
        HARD_BOUNCES = "hard_bounces", "Hard-bounce rate"
        COMPLAINTS = "complaints", "Complaint rate"
        PAUSED = "paused", "Sends paused for complaints"

    edition = models.ForeignKey(Edition, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=Kind)
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "newsletter_sendalert"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["edition", "kind"], name="send_alert_once"),
        ]

    def __str__(self) -> str:
        return self.message


class SendPause(models.Model):
    """The rest of a newsroom day's sends wait: complaints passed the pause rate.

    Only staff lift it ("Resume sends" in the admin); the next day sends again.
    """

    date = models.DateField(help_text="The newsroom's date (DIGEST_TIMEZONE) it holds.")
    edition = models.ForeignKey(Edition, null=True, on_delete=models.SET_NULL)
    reason = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    resumed_at = models.DateTimeField(null=True, blank=True)
    resumed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        db_table = "newsletter_sendpause"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        state = "resumed" if self.resumed_at else "paused"
        return f"Sends of {self.date} {state}: {self.reason}"


class EventCount(models.Model):
    """A running count of one kind of sending event, for the metrics (/metrics).

    Only for what the rows keep no cheap trace of: a Delivery row says it was
    sent, but counting a year of them at every scrape is a pass over tens of
    millions of rows, and a deferral or a takeover leaves none. The code that
    records the event adds to its count in the same transaction, by the rows
    it changed (delivery.counting), so a write repeated after a lost
    connection counts nothing twice. Shared by every worker on every host,
    as the database is.
    """

    name = models.CharField(max_length=64)
    # "carrier=default", "kind=hard,source=smtp": the series' labels, sorted.
    labels = models.CharField(max_length=200, blank=True)
    value = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "newsletter_eventcount"
        constraints = [
            models.UniqueConstraint(fields=["name", "labels"], name="event_count_once"),
        ]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels}}} {self.value}"
