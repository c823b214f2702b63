"""Small builders for test data: sensible defaults, override what matters."""

import datetime
import itertools
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from newsletter import editions
from newsletter.models import Article, Edition, Section

_numbers = itertools.count(1)


def make_section(**fields) -> Section:
    number = next(_numbers)
    fields.setdefault("name", f"Section {number}")
    fields.setdefault("slug", f"section-{number}")
    return Section.objects.create(**fields)


def make_article(*, published_ago: datetime.timedelta | None = None, **fields) -> Article:
    """A published article (an hour old unless `published_ago` says otherwise)."""
    number = next(_numbers)
    fields.setdefault("title", f"Article {number}")
    fields.setdefault("slug", f"article-{number}")
    fields.setdefault("dek", f"The standfirst of article {number}.")
    fields.setdefault("body", f"<p>The body of article {number}.</p>")
    fields.setdefault("status", Article.Status.PUBLISHED)
    if fields["status"] == Article.Status.PUBLISHED:
        if published_ago is None:
            published_ago = datetime.timedelta(hours=1)
        fields.setdefault("published_at", timezone.now() - published_ago)
    return Article.objects.create(**fields)


def built_edition(date: datetime.date, now: datetime.datetime | None = None) -> Edition:
    """editions.build_edition, for a test that expects an edition (it returns None if empty)."""
    edition = editions.build_edition(date, now)
    assert edition is not None, f"No edition for {date}: nothing published to send."
    return edition


def make_staff(username: str = "editor", *, editor: bool = True, **fields):
    """A staff member; with `editor`, in the Editors group the migration creates."""
    from django.contrib.auth.models import Group, User

    fields.setdefault("email", f"{username}@example.com")
    user = User.objects.create_user(username=username, is_staff=True, **fields)
    if editor:
        user.groups.add(Group.objects.get(name="Editors"))
    return user


def article_form(*, publish_at: datetime.datetime | None = None, **fields) -> dict:
    """POST data of the admin's article form, with sensible defaults.

    `publish_at` fills the form's date and time inputs, as an editor would.
    """
    data = {
        "title": "Written in the admin",
        "slug": "written-in-the-admin",
        "dek": "",
        "body": "<p>Fresh.</p>",
        "lead_image_alt": "",
        "section": "",
        "byline": "",
        "author": "",
        "status": "draft",
        "published_at_0": "",
        "published_at_1": "",
    }
    if publish_at is not None:
        # Typed in the admin's zone, the newsroom's (newsletter.middleware).
        publish_at = publish_at.astimezone(ZoneInfo(settings.DIGEST_TIMEZONE))
        data["published_at_0"] = publish_at.strftime("%Y-%m-%d")
        data["published_at_1"] = publish_at.strftime("%H:%M:%S")
    data.update(fields)
    return data
