import datetime
import functools
from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from newsletter.html import clean_html


class Section(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class ArticleQuerySet(models.QuerySet):
    def published(self, now: datetime.datetime | None = None) -> "ArticleQuerySet":
        now = now or timezone.now()
        return self.filter(status=Article.Status.PUBLISHED, published_at__lte=now)

    def published_between(
        self, after: datetime.datetime | None, until: datetime.datetime
    ) -> "ArticleQuerySet":
        """Published in the window (after, until]: what one edition carries."""
        articles = self.published(now=until)
        if after is not None:
            articles = articles.filter(published_at__gt=after)
        return articles


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        PUBLISHED = "published", "Published"

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    dek = models.CharField(
        "standfirst", max_length=300, blank=True, help_text="One or two sentences under the title."
    )
    body = models.TextField(help_text="HTML; scripts, styles and event handlers are removed.")
    section = models.ForeignKey(
        Section, on_delete=models.PROTECT, related_name="articles", null=True, blank=True
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        related_name="articles",
        null=True,
        blank=True,
    )
    byline = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=20, choices=Status, default=Status.DRAFT)
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-created_at"]
        indexes = [models.Index(fields=["status", "published_at"])]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs) -> None:
        self.body = clean_html(self.body)
        if self.status == self.Status.PUBLISHED and self.published_at is None:
            self.published_at = timezone.now()
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("article", kwargs={"slug": self.slug})

    @property
    def is_published(self) -> bool:
        return (
            self.status == self.Status.PUBLISHED
            and self.published_at is not None
            and self.published_at <= timezone.now()
        )

    @property
    def byline_display(self) -> str:
        if self.byline:
            return self.byline
        if self.author:
            return self.author.get_full_name() or self.author.get_username()
        return ""

    @property
    def body_text(self) -> str:
        return strip_tags(self.body).strip()


class Edition(models.Model):
    """The digest of one weekday: the articles published since the previous one."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Being prepared"
        HELD = "held", "Held by the editors"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"

    date = models.DateField(unique=True)
    # Articles published up to this instant belong to this edition or an
    # earlier one; the next edition starts right after it. It moves forward
    # while the edition is a draft and is fixed when the send starts.
    cutoff = models.DateTimeField()
    articles = models.ManyToManyField(Article, through="EditionArticle", related_name="editions")
    editor_note = models.TextField(
        blank=True, help_text="Optional note from the editors, shown above the articles."
    )
    status = models.CharField(max_length=20, choices=Status, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    # The audience is fixed when the send starts: readers who join later get
    # the next edition.
    send_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"Edition of {self.date:%A} {self.date.day} {self.date:%B %Y}"

    def get_absolute_url(self) -> str:
        return reverse("edition", kwargs={"date": self.date})

    @property
    def subject(self) -> str:
        return f"{settings.NEWSLETTER_NAME}: {self.date:%A, %B} {self.date.day}"

    def ordered_articles(self) -> models.QuerySet[Article]:
        """The articles this edition carries, in the editors' order."""
        return (
            self.articles.filter(editionarticle__included=True)
            .select_related("section", "author")
            .order_by("editionarticle__position", "editionarticle__pk")
        )

    def delivery_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(Delivery.Status.values, 0)
        for row in self.deliveries.values("status").annotate(count=models.Count("pk")):
            counts[row["status"]] = row["count"]
        return counts


class EditionArticle(models.Model):
    edition = models.ForeignKey(Edition, on_delete=models.CASCADE)
    article = models.ForeignKey(Article, on_delete=models.PROTECT)
    position = models.PositiveSmallIntegerField(default=0)
    # An editor may leave an article out; the row stays so that the article
    # is not added back when the edition is refreshed.
    included = models.BooleanField(default=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["edition", "article"], name="edition_article_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.article}"


class Delivery(models.Model):
    """One reader's copy of one edition: the record of what was sent."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"
        SKIPPED = "skipped", "Skipped"

    edition = models.ForeignKey(Edition, on_delete=models.CASCADE, related_name="deliveries")
    subscriber = models.ForeignKey(
        "subscriptions.Subscriber", on_delete=models.CASCADE, related_name="deliveries"
    )
    status = models.CharField(max_length=20, choices=Status, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["edition", "subscriber"], name="delivery_unique_per_reader"
            ),
        ]
        indexes = [models.Index(fields=["edition", "status"])]

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
