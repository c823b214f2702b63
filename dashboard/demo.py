"""A plausible year of readers and sends for the demo (seed_demo), so the dashboard has answers.

Readers join over the year ending at `now`, more of them lately; each starts
a trial that converts or lapses, some paying readers leave (one comes back),
cards fail, addresses bounce, a few readers unsubscribe or complain after a
digest. The last weekdays' editions carry a short archive article each and
a delivery for every reader entitled that morning.

Everything is built in memory from one seeded random generator and one
"now", then written with bulk_create: a few thousand rows in well under a
second on SQLite. bulk_create sends no signals, so the membership history
(dashboard.history) is written here, change by change, as Stripe would
have caused it. The history readers' addresses are on HISTORY_DOMAIN,
which is how a second run knows the history is there already.
"""

import datetime
import random
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from dashboard.models import MembershipChange
from delivery.models import Delivery
from newsletter.models import Article, Edition, EditionArticle, Section
from subscriptions.models import Membership, Subscriber

Status = Membership.Status
EmailStatus = Subscriber.EmailStatus

HISTORY_DOMAIN = "readers.example.com"
READERS = 260
EDITIONS = 30
FULL, DISCOUNTED = 4600, 3680  # a year's price in cents, and with a 20% coupon
ZONES = [
    ("America/New_York", 40),
    ("America/Los_Angeles", 20),
    ("Europe/London", 20),
    ("Europe/Berlin", 10),
    ("Asia/Tokyo", 6),
    ("Australia/Sydney", 4),
]
FIRST_NAMES = [
    "Amara", "Bea", "Chidi", "Dara", "Elif", "Femi", "Gwen", "Hiro", "Ines", "Jonas",
    "Kemal", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rafa", "Sana", "Tomas",
    "Uma", "Vikram", "Wen", "Xavi", "Yara", "Zeno",
]  # fmt: skip

# One short archive article per seeded edition: what that morning carried.
HEADLINES = [
    ("world", "Coastal towns vote to share one flood barrier"),
    ("business", "A grocery chain tests shelves that reprice themselves"),
    ("science", "Bees learn a maze faster when it smells of home"),
    ("culture", "A library lends telescopes, and the waiting list grows"),
    ("world", "Night trains return to three border crossings"),
    ("business", "Small exporters win a simpler customs form"),
    ("science", "A cheaper test spots crop blight a week earlier"),
    ("culture", "An orchestra plays in a car park, and the car park sells out"),
    ("world", "Two cities swap bus drivers to learn each other's routes"),
    ("business", "Why the price of shipping a box fell this quarter"),
    ("science", "Old weather logs from sailing ships fill a gap in the climate record"),
    ("culture", "A museum asks visitors to write the labels"),
    ("world", "A mountain village gets its post office back"),
    ("business", "Repair shops gain the right to buy spare parts"),
    ("science", "The quietest room on campus, and what it is for"),
    ("culture", "Public pianos, counted: one for every 9,000 people"),
    ("world", "A ferry route reopens after forty years"),
    ("business", "Four-day weeks, one year on: what the payroll data say"),
    ("science", "A moth that navigates by the Milky Way"),
    ("culture", "The comic shop that became a town's meeting hall"),
    ("world", "Street names chosen by schoolchildren"),
    ("business", "A bank branch reopens as a shared office for five banks"),
    ("science", "Mapping the sea floor with fishing boats' sonar"),
    ("culture", "A festival of films shorter than a minute"),
    ("world", "Rainwater tanks on every school roof by spring"),
    ("business", "Farmers sell directly to hospitals' kitchens"),
    ("science", "Why some snowflakes fall faster than others"),
    ("culture", "A choir for people who say they cannot sing"),
    ("world", "A bridge built in a weekend, and inspected for a month"),
    ("business", "The return of the paper receipt, by request"),
]


@dataclass
class Reader:
    """One history reader's timeline, built before anything is written."""

    number: int
    name: str
    time_zone: str
    joined: datetime.datetime
    # (moment, from status, to status, from amount, amount), in order.
    changes: list[tuple[datetime.datetime, str, str, int | None, int | None]] = field(
        default_factory=list
    )
    status: str = Status.TRIALING
    amount: int | None = None
    trial_end: datetime.datetime | None = None
    past_due_since: datetime.datetime | None = None
    complimentary: bool = False
    email_status: str = EmailStatus.ACTIVE
    email_status_changed_at: datetime.datetime | None = None

    @property
    def email(self) -> str:
        return f"{self.name.lower()}.{self.number:03d}@{HISTORY_DOMAIN}"

    def move(self, at: datetime.datetime, status: str, amount: int | None = None) -> None:
        paying = status in (Status.ACTIVE, Status.PAST_DUE)
        new_amount = (amount or self.amount or FULL) if paying else self.amount
        self.changes.append(
            (at, self.status if self.changes else "", status, self.amount, new_amount)
        )
        self.status, self.amount = status, new_amount

    def status_at(self, moment: datetime.datetime) -> str:
        status = ""
        for at, _, to_status, _, _ in self.changes:
            if at > moment:
                break
            status = to_status
        return status

    def entitled_at(self, moment: datetime.datetime) -> bool:
        if self.complimentary:
            return moment >= self.joined
        status = self.status_at(moment)
        if status == Status.PAST_DUE:
            return self.past_due_since is not None and moment - self.past_due_since < (
                datetime.timedelta(days=settings.PAST_DUE_GRACE_DAYS)
            )
        return status in (Status.TRIALING, Status.ACTIVE)


def build_readers(now: datetime.datetime, rng: random.Random) -> list[Reader]:
    """The year's readers and what happened to each, up to `now`."""
    trial = datetime.timedelta(days=settings.TRIAL_DAYS)
    zones, weights = zip(*ZONES, strict=True)
    readers = []
    for number in range(READERS):
        # More readers joined lately: a year's growth, not a flat line.
        days_ago = 365 * (1 - rng.random() ** 0.6)
        joined = now - datetime.timedelta(days=days_ago, hours=rng.uniform(0, 8))
        reader = Reader(
            number, rng.choice(FIRST_NAMES), rng.choices(zones, weights)[0], joined=joined
        )
        readers.append(reader)
        if number % 90 == 7:
            # Read for free: a staff grant, no Stripe subscription.
            reader.complimentary = True
            reader.move(joined, Status.INCOMPLETE)
            continue
        reader.move(joined, Status.TRIALING)
        reader.trial_end = joined + trial
        if reader.trial_end > now:
            continue  # still trialing
        if rng.random() > 0.58:
            reader.move(reader.trial_end, Status.CANCELED)  # the trial lapsed
            continue
        reader.move(reader.trial_end, Status.ACTIVE, DISCOUNTED if rng.random() < 0.2 else FULL)
        # About 2.5% of paying readers leave each month.
        stop = reader.trial_end + datetime.timedelta(days=rng.expovariate(0.025 / 30))
        if stop > now:
            if rng.random() < 0.04:
                # A card failed in the last days: past due, Stripe retrying.
                failed = now - datetime.timedelta(days=rng.uniform(0.5, 12))
                if failed > reader.trial_end:
                    reader.past_due_since = failed
                    reader.move(failed, Status.PAST_DUE)
            continue
        if rng.random() < 0.3:
            # The card failed first; Stripe gave up on it after its retries.
            reader.past_due_since = stop - datetime.timedelta(days=14)
            if reader.past_due_since > reader.trial_end:
                reader.move(reader.past_due_since, Status.PAST_DUE)
        reader.move(stop, Status.CANCELED)
        back = stop + datetime.timedelta(days=rng.uniform(20, 120))
        if back < now and rng.random() < 0.15:
            reader.past_due_since = None
            reader.move(back, Status.ACTIVE, FULL)  # came back, with no second trial
    story = readers[0]
    # Rosa, for the dashboard's hardest case: trialled, paid, lapsed and came back.
    story.name, story.time_zone, story.complimentary = "Rosa", "Europe/London", False
    story.changes, story.status, story.amount, story.past_due_since = (
        [],
        Status.TRIALING,
        None,
        None,
    )
    story.joined = now - datetime.timedelta(days=300)
    story.trial_end = story.joined + trial
    story.move(story.joined, Status.TRIALING)
    story.move(story.trial_end, Status.ACTIVE, FULL)
    story.past_due_since = now - datetime.timedelta(days=140)
    story.move(story.past_due_since, Status.PAST_DUE)
    story.move(now - datetime.timedelta(days=126), Status.CANCELED)
    story.past_due_since = None
    story.move(now - datetime.timedelta(days=40), Status.ACTIVE, DISCOUNTED)
    return readers


def edition_dates(now: datetime.datetime) -> list[datetime.date]:
    """The last EDITIONS weekdays, ending two days before the newsroom's today.

    Two days back keeps every seeded edition's cutoff before the demo's
    own articles (the oldest is 30 hours old): today's edition, built by
    the first real send, still carries them.
    """
    day = now.astimezone(ZoneInfo(settings.DIGEST_TIMEZONE)).date() - datetime.timedelta(days=2)
    dates: list[datetime.date] = []
    while len(dates) < EDITIONS:
        if day.weekday() < 5:
            dates.append(day)
        day -= datetime.timedelta(days=1)
    return dates[::-1]


def morning(date: datetime.date, zone: str) -> datetime.datetime:
    return datetime.datetime.combine(date, settings.DIGEST_SEND_TIME, tzinfo=ZoneInfo(zone))


@transaction.atomic
def seed_history(
    now: datetime.datetime, author: User, sections: dict[str, Section], seed: int = 20
) -> int:
    """Write the year's history unless it is there already; return the readers added."""
    if Subscriber.objects.filter(email__endswith=f"@{HISTORY_DOMAIN}").exists():
        return 0
    rng = random.Random(seed)  # noqa: S311 - made-up demo data, repeatable on purpose
    readers = build_readers(now, rng)
    dates = [d for d in edition_dates(now) if not Edition.objects.filter(date=d).exists()]
    # Who got which morning, and what they did after: decided before writing.
    sends: list[tuple[datetime.date, Reader, str, datetime.datetime]] = []
    undeliverable: dict[int, datetime.datetime] = {}
    for index, date in enumerate(dates):
        for reader in readers:
            if reader.number in undeliverable:
                continue
            due = morning(date, reader.time_zone)
            if not reader.entitled_at(due):
                continue
            # Sending a zone's morning takes a few minutes; one morning the
            # Sydney send came after the readers' morning was over.
            sent_at = due + datetime.timedelta(seconds=rng.uniform(5, 240 if index % 7 else 900))
            status = Delivery.Status.SENT
            roll = rng.random()
            if reader.time_zone == "Australia/Sydney" and index == len(dates) - 9:
                status = Delivery.Status.MISSED
            elif roll < 0.004:
                status = Delivery.Status.FAILED
            elif roll < 0.007:
                status = Delivery.Status.BOUNCED
                undeliverable[reader.number] = sent_at + datetime.timedelta(minutes=2)
                reader.email_status = EmailStatus.BOUNCED
            elif roll < 0.009:
                undeliverable[reader.number] = sent_at + datetime.timedelta(hours=3)
                reader.email_status = EmailStatus.COMPLAINED
            elif roll < 0.016:
                undeliverable[reader.number] = sent_at + datetime.timedelta(
                    hours=rng.uniform(1, 30)
                )
                reader.email_status = EmailStatus.UNSUBSCRIBED
            sends.append((date, reader, status, sent_at))
    for number, changed_at in undeliverable.items():
        readers[number].email_status_changed_at = changed_at

    subscribers = Subscriber.objects.bulk_create(
        Subscriber(
            email=r.email,
            name=r.name,
            time_zone=r.time_zone,
            email_status=r.email_status,
            email_status_changed_at=r.email_status_changed_at,
        )
        for r in readers
    )
    for subscriber, reader in zip(subscribers, readers, strict=True):
        subscriber.created_at = reader.joined  # auto_now_add: set after the insert
    Subscriber.objects.bulk_update(subscribers, ["created_at"])
    memberships = Membership.objects.bulk_create(
        Membership(
            subscriber=subscriber,
            status=r.status,
            amount=r.amount,
            trial_end=r.trial_end,
            past_due_since=r.past_due_since if r.status == Status.PAST_DUE else None,
            current_period_end=r.changes[-1][0] + datetime.timedelta(days=365)
            if r.status in (Status.ACTIVE, Status.PAST_DUE)
            else r.trial_end,
            complimentary=r.complimentary,
            stripe_customer_id=None if r.complimentary else f"cus_demo{r.number:04d}",
            stripe_subscription_id=None if r.complimentary else f"sub_demo{r.number:04d}",
        )
        for subscriber, r in zip(subscribers, readers, strict=True)
    )
    MembershipChange.objects.bulk_create(
        MembershipChange(
            membership=membership,
            from_status=from_status,
            to_status=to_status,
            from_amount=from_amount,
            amount=amount,
            at=at,
        )
        for membership, r in zip(memberships, readers, strict=True)
        for at, from_status, to_status, from_amount, amount in r.changes
    )

    by_date: dict[datetime.date, list[tuple[Reader, str, datetime.datetime]]] = {}
    for date, reader, outcome, sent_at in sends:
        by_date.setdefault(date, []).append((reader, outcome, sent_at))
    editions = []
    for n, date in enumerate(dates):
        started = min((morning(date, z) for z, _ in ZONES), default=now)
        editions.append(
            Edition(
                date=date,
                cutoff=started - datetime.timedelta(minutes=30),
                status=Edition.Status.SENT,
                send_started_at=started,
                sent_at=max((s for _, _, s in by_date.get(date, [])), default=started),
                editor_note="" if n % 5 else "A quieter morning: one story, read slowly.",
            )
        )
    editions = Edition.objects.bulk_create(editions)
    articles = Article.objects.bulk_create(
        Article(
            slug=f"archive-{date:%Y-%m-%d}",
            title=title,
            dek="From the demo's archive of past mornings.",
            body=f"<p>{title}. This archive story is part of the demo's year of history.</p>",
            section=sections[section],
            author=author,
            status=Article.Status.PUBLISHED,
            published_at=edition.cutoff - datetime.timedelta(hours=6),
        )
        for edition, date, (section, title) in zip(editions, dates, HEADLINES, strict=False)
    )
    EditionArticle.objects.bulk_create(
        EditionArticle(edition=edition, article=article)
        for edition, article in zip(editions, articles, strict=True)
    )
    edition_of = {e.date: e for e in editions}
    subscriber_of = {r.number: s for r, s in zip(readers, subscribers, strict=True)}
    last_morning: dict[int, datetime.datetime] = {}
    deliveries = []
    for date, reader, outcome, sent_at in sends:
        due = morning(date, reader.time_zone)
        deliveries.append(
            Delivery(
                edition=edition_of[date],
                subscriber=subscriber_of[reader.number],
                status=outcome,
                time_zone=reader.time_zone,
                scheduled_for=due,
                window_start=last_morning.get(reader.number, edition_of[date].cutoff),
                attempts=0 if outcome == Delivery.Status.MISSED else 1,
                claimed_at=None if outcome == Delivery.Status.MISSED else due,
                sent_at=None
                if outcome in (Delivery.Status.MISSED, Delivery.Status.FAILED)
                else sent_at,
                last_error="Connection refused by the mail server"
                if outcome == Delivery.Status.FAILED
                else "",
            )
        )
        last_morning[reader.number] = due
    Delivery.objects.bulk_create(deliveries, batch_size=2000)
    return len(readers)
