"""Building the day's edition and sending it to every entitled reader.

The Delivery table is the record of what was sent: one row per (edition,
reader), created before anything is sent, claimed by one sender, and marked
sent or failed afterwards.
"""

import datetime
import logging
import smtplib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import mailers
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from newsletter import emails
from newsletter.models import Article, Delivery, Edition, EditionArticle
from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
SATURDAY = 5


def is_weekday(day: datetime.date) -> bool:
    return day.weekday() < SATURDAY


def local_today(now: datetime.datetime | None = None) -> datetime.date:
    """Today's date where the digest is sent (DIGEST_TIMEZONE)."""
    now = now or timezone.now()
    return now.astimezone(ZoneInfo(settings.DIGEST_TIMEZONE)).date()


def next_edition_date(now: datetime.datetime | None = None) -> datetime.date:
    """Today if it is a weekday where the digest is sent, else the next Monday."""
    day = local_today(now)
    while not is_weekday(day):
        day += datetime.timedelta(days=1)
    return day


def build_edition(date: datetime.date, now: datetime.datetime | None = None) -> Edition | None:
    """Return the edition for `date`, creating it if needed.

    A new edition carries every article published after the previous
    edition's cutoff and up to `now`. With nothing new there is no edition
    and None comes back. The unique date makes a second call, however
    concurrent, return the same edition.
    """
    now = now or timezone.now()
    existing = Edition.objects.filter(date=date).first()
    if existing is not None:
        return existing

    with transaction.atomic():
        previous = Edition.objects.filter(date__lt=date).order_by("-date").first()
        articles = list(
            Article.objects.published_between(previous.cutoff if previous else None, now).order_by(
                "published_at", "pk"
            )
        )
        if not articles:
            return None
        try:
            with transaction.atomic():
                edition = Edition.objects.create(date=date, cutoff=now)
        except IntegrityError:
            # Another process built it first; theirs is the edition.
            return Edition.objects.get(date=date)
        EditionArticle.objects.bulk_create(
            EditionArticle(edition=edition, article=article, position=position)
            for position, article in enumerate(articles, start=1)
        )
    logger.info("Built %s with %d articles", edition, len(articles))
    return edition


@dataclass
class SendReport:
    edition_id: int
    sent: int = 0
    failed: int = 0
    skipped: int = 0


def queue_deliveries(edition: Edition) -> int:
    """Create a queued Delivery for every entitled reader who has none yet."""
    reader_ids = Subscriber.objects.entitled().values_list("pk", flat=True)
    created = Delivery.objects.bulk_create(
        (Delivery(edition=edition, subscriber_id=reader_id) for reader_id in reader_ids.iterator()),
        batch_size=BATCH_SIZE,
        ignore_conflicts=True,
    )
    return len(created)


def claim_batch(edition: Edition, size: int = BATCH_SIZE) -> list[int]:
    """Mark up to `size` queued deliveries as ours; return their ids.

    Rows locked by another sender are skipped (PostgreSQL); on SQLite the
    write transaction itself serialises the claim.
    """
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(edition=edition, status=Delivery.Status.QUEUED)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        Delivery.objects.filter(pk__in=ids).update(
            status=Delivery.Status.SENDING,
            claimed_at=timezone.now(),
            attempts=F("attempts") + 1,
        )
    return ids


def release_batch(delivery_ids: list[int], error: BaseException) -> None:
    Delivery.objects.filter(pk__in=delivery_ids, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.QUEUED, claimed_at=None, last_error=describe(error)
    )


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def send_batch(edition: Edition, articles: list[Article], delivery_ids: list[int]) -> SendReport:
    report = SendReport(edition_id=edition.pk)
    deliveries = list(
        Delivery.objects.filter(pk__in=delivery_ids).select_related("subscriber").order_by("pk")
    )
    # Entitlement may have changed since the rows were queued: check again.
    entitled = set(
        Subscriber.objects.entitled()
        .filter(pk__in=[d.subscriber_id for d in deliveries])
        .values_list("pk", flat=True)
    )
    sent_ids: list[int] = []
    skipped_ids: list[int] = []
    failures: dict[int, str] = {}
    connection = mailers.default
    try:
        connection.open()
    except (smtplib.SMTPException, OSError) as error:
        # Nothing was sent: hand the batch back so a later run sends it.
        release_batch(delivery_ids, error)
        raise
    try:
        for delivery in deliveries:
            if delivery.subscriber_id not in entitled:
                skipped_ids.append(delivery.pk)
                continue
            message = emails.digest(edition, articles, delivery.subscriber)
            try:
                connection.send_messages([message])
            except (smtplib.SMTPException, OSError) as error:
                logger.warning("Digest to %s failed: %s", delivery.subscriber.email, error)
                failures[delivery.pk] = describe(error)
            else:
                sent_ids.append(delivery.pk)
    finally:
        connection.close()

    now = timezone.now()
    with transaction.atomic():
        Delivery.objects.filter(pk__in=sent_ids).update(
            status=Delivery.Status.SENT, sent_at=now, last_error=""
        )
        Delivery.objects.filter(pk__in=skipped_ids).update(
            status=Delivery.Status.SKIPPED, last_error="No longer entitled at send time."
        )
        for delivery_id, error in failures.items():
            Delivery.objects.filter(pk=delivery_id).update(
                status=Delivery.Status.FAILED, last_error=error
            )
    report.sent, report.failed, report.skipped = len(sent_ids), len(failures), len(skipped_ids)
    return report


def send_edition(edition_id: int) -> SendReport:
    """Send the edition to every entitled reader who has not had it yet."""
    edition = Edition.objects.get(pk=edition_id)
    articles = list(edition.ordered_articles())
    queue_deliveries(edition)
    report = SendReport(edition_id=edition.pk)
    while delivery_ids := claim_batch(edition):
        batch = send_batch(edition, articles, delivery_ids)
        report.sent += batch.sent
        report.failed += batch.failed
        report.skipped += batch.skipped

    unfinished = edition.deliveries.filter(
        status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING]
    )
    if not unfinished.exists():
        Edition.objects.filter(pk=edition.pk).update(
            status=Edition.Status.SENT, sent_at=timezone.now()
        )
    logger.info(
        "Sent %s: %d sent, %d failed, %d skipped",
        edition,
        report.sent,
        report.failed,
        report.skipped,
    )
    return report


def build_morning_edition(now: datetime.datetime | None = None) -> Edition | None:
    """The edition the morning send should deliver today, if there is one."""
    now = now or timezone.now()
    today = local_today(now)
    if not is_weekday(today):
        logger.info("No digest on %s: weekends are off", today)
        return None
    edition = build_edition(today, now)
    if edition is None:
        logger.info("No digest on %s: nothing published since the last edition", today)
    return edition
