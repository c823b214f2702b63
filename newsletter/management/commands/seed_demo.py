"""Demo content for a fresh checkout: articles, a staff account, readers.

Safe to run again: everything is looked up by its natural key first.
"""

import datetime
from typing import Required, TypedDict

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from newsletter.models import Article, Section
from subscriptions.models import Membership, Subscriber

STAFF_USERNAME = "editor"
STAFF_PASSWORD = "briefing-demo"  # noqa: S105 - printed for the demo, refused outside DEBUG

SECTIONS = [
    ("World", "world"),
    ("Business", "business"),
    ("Science", "science"),
    ("Culture", "culture"),
]


class DemoArticle(TypedDict):
    slug: str
    section: str  # a slug of SECTIONS
    title: str
    dek: str
    body: str


class PublishedDemoArticle(DemoArticle, total=False):
    hours_ago: Required[int]
    free_to_read: bool


ARTICLES: list[PublishedDemoArticle] = [
    {
        "slug": "river-treaty-signed",
        "section": "world",
        "title": "Six nations sign a treaty to share the river they fought over",
        "dek": (
            "After eleven years of talks, the upstream dams will release water "
            "on a published schedule."
        ),
        "hours_ago": 30,
        "body": (
            "<p>Delegates from six countries signed an agreement on Tuesday that sets, "
            "for the first time, how much water the upstream dams must release in each season.</p>"
            "<p>The treaty creates a joint commission with its own gauges on the river, and a "
            "public dashboard of the flows. Disputes go to an arbitration panel rather than to "
            "the border.</p>"
            "<h3>What changes for farmers</h3>"
            "<p>Downstream growers will know in March how much water the summer will bring, "
            "which lets them choose their crops before planting rather than after.</p>"
        ),
    },
    {
        "slug": "central-bank-holds-rates",
        "section": "business",
        "title": "The central bank holds rates and signals patience",
        "dek": "Inflation is falling, but not fast enough for a cut before spring.",
        "hours_ago": 26,
        "body": (
            "<p>The bank left its main rate unchanged for the fourth meeting in a row, and its "
            "governor said the committee wanted to see two more months of data.</p>"
            "<p>Markets had priced a small chance of a cut; bond yields rose slightly after the "
            "announcement.</p>"
        ),
    },
    {
        "slug": "comet-brightens",
        "section": "science",
        "title": "A comet brightens enough to see without a telescope",
        "dek": "Look low in the west an hour after sunset this week.",
        "hours_ago": 20,
        "body": (
            "<p>The comet, discovered in January by an amateur astronomer, has brightened faster "
            "than forecast as it nears the sun.</p>"
            "<ul><li>Best viewing: Thursday to Sunday</li><li>Where: low in the west, an hour "
            "after sunset</li><li>Binoculars help, but are not needed</li></ul>"
        ),
    },
    {
        "slug": "library-late-fees",
        "section": "culture",
        "title": "Libraries that dropped late fees got their books back",
        "dek": "A study of 300 branches finds returns rose after fines ended.",
        "hours_ago": 8,
        "free_to_read": True,  # the demo's one article everyone reads whole
        "body": (
            "<p>Researchers compared branches that abolished overdue fines with similar ones that "
            "kept them. Returns rose in the first group, and so did the number of children "
            "with active cards.</p>"
            "<blockquote>People came back once they no longer owed us money.</blockquote>"
        ),
    },
    {
        "slug": "ports-automation",
        "section": "business",
        "title": "Ports automate, and the queues move to the gates",
        "dek": "Cranes got faster; the trucks waiting outside did not.",
        "hours_ago": 4,
        "body": (
            "<p>Automated cranes have cut the time a ship spends at berth, but truck drivers "
            "report longer waits at the gates, where appointments are still booked by phone.</p>"
        ),
    },
]

DRAFT: DemoArticle = {
    "slug": "election-explainer-draft",
    "section": "world",
    "title": "How the runoff works (draft)",
    "dek": "A draft the editors have not published yet.",
    "body": "<p>This article is still a draft; it appears in no edition until it is published.</p>",
}

Status = Membership.Status
EmailStatus = Subscriber.EmailStatus
READERS = [
    ("ada@example.com", "Ada", Status.TRIALING, EmailStatus.ACTIVE),
    ("grace@example.com", "Grace", Status.ACTIVE, EmailStatus.ACTIVE),
    ("alan@example.com", "Alan", Status.ACTIVE, EmailStatus.ACTIVE),
    ("edsger@example.com", "Edsger", Status.PAST_DUE, EmailStatus.ACTIVE),
    ("barbara@example.com", "Barbara", Status.CANCELED, EmailStatus.ACTIVE),
    ("ken@example.com", "Ken", Status.ACTIVE, EmailStatus.UNSUBSCRIBED),
    ("margaret@example.com", "Margaret", Status.TRIALING, EmailStatus.BOUNCED),
]


class Command(BaseCommand):
    help = "Load demo articles, a staff account and readers in several states (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even with DEBUG off (creates a staff account with a known password).",
        )

    @transaction.atomic
    def handle(self, *args: str, force: bool, **options: object) -> None:
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates a staff account with a published password; "
                "it only runs with DJANGO_DEBUG on (or --force)."
            )
        now = timezone.now()
        staff = self.seed_staff()
        sections = {
            slug: Section.objects.get_or_create(slug=slug, defaults={"name": name, "position": i})[
                0
            ]
            for i, (name, slug) in enumerate(SECTIONS)
        }
        created = 0
        for spec in ARTICLES:
            _, was_created = Article.objects.get_or_create(
                slug=spec["slug"],
                defaults={
                    "title": spec["title"],
                    "dek": spec["dek"],
                    "body": spec["body"],
                    "section": sections[spec["section"]],
                    "author": staff,
                    "status": Article.Status.PUBLISHED,
                    "published_at": now - datetime.timedelta(hours=spec["hours_ago"]),
                    "free_to_read": spec.get("free_to_read", False),
                },
            )
            created += was_created
        Article.objects.get_or_create(
            slug=DRAFT["slug"],
            defaults={
                "title": DRAFT["title"],
                "dek": DRAFT["dek"],
                "body": DRAFT["body"],
                "section": sections[DRAFT["section"]],
                "author": staff,
            },
        )
        for email, name, membership_status, email_status in READERS:
            subscriber, _ = Subscriber.objects.get_or_create(
                email=email, defaults={"name": name, "email_status": email_status}
            )
            Membership.objects.get_or_create(
                subscriber=subscriber,
                defaults={
                    "status": membership_status,
                    "trial_end": now + datetime.timedelta(days=10)
                    if membership_status == Status.TRIALING
                    else None,
                    "current_period_end": now + datetime.timedelta(days=200),
                },
            )

        self.stdout.write(f"Demo content ready ({created} new articles, {len(READERS)} readers).")
        if apps.is_installed("dashboard"):
            # A year of readers, trials, payments and sends for the publisher's
            # dashboard, relative to the same "now". By name: the product
            # never imports the dashboard.
            call_command(
                "seed_dashboard_demo",
                now=now.isoformat(),
                author=staff.username,
                force=True,
                stdout=self.stdout,
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Staff sign-in at {settings.SITE_URL}/admin/  "
                f"username: {STAFF_USERNAME}  password: {STAFF_PASSWORD}"
            )
        )

    def seed_staff(self) -> User:
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=STAFF_USERNAME,
            defaults={
                "email": "editor@example.com",
                "first_name": "Demo",
                "last_name": "Editor",
                "is_staff": True,
                "is_superuser": True,
            },
        )
        if created:
            user.set_password(STAFF_PASSWORD)
            user.save(update_fields=["password"])
        return user
