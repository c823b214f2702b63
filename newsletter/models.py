import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import models, transaction
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import Truncator
from django_prose_editor.fields import ProseEditorField

from newsletter import pagecache, signals
from newsletter.html import EDITOR_EXTENSIONS, clean_editor_html, clean_html
from newsletter.links import path_to

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser, AnonymousUser

    from subscriptions.models import Subscriber

TEASER_WORDS = 60

# Lead images larger than this are refused: they would be slow on a phone.
LEAD_IMAGE_MAX_BYTES = 5 * 1024 * 1024


def validate_image_size(image: File) -> None:
    if image.size > LEAD_IMAGE_MAX_BYTES:
        raise ValidationError(
            "This image is %(size)s MB; the limit is %(limit)s MB. Please upload a smaller one.",
            params={
                "size": round(image.size / 1024 / 1024, 1),
                "limit": LEAD_IMAGE_MAX_BYTES // 1024 // 1024,
            },
        )


class EditionLocked(Exception):
    """The edition's send has started: what it carries can no longer change."""


class PublicContentQuerySet[M: models.Model](models.QuerySet[M]):
    """Rows the public pages show: bulk writes replace the cached pages too.

    Saves and deletes send signals (newsletter.apps connects them); these
    do not, and the sends change editions this way (delivery.audience, delivery.recovery).
    """

    def update(self, **kwargs: Any) -> int:
        count = super().update(**kwargs)
        if count:
            pagecache.invalidate()
        return count

    def bulk_create(self, objs: Iterable[M], *args: Any, **kwargs: Any) -> list[M]:
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            pagecache.invalidate()
        return created


class Section(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    position = models.PositiveSmallIntegerField(default=0)

    objects = PublicContentQuerySet["Section"].as_manager()

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return path_to("section", slug=self.slug)


class ArticleQuerySet(PublicContentQuerySet["Article"]):
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

    def with_leads(self) -> "ArticleQuerySet":
        """Each article with `is_lead`: an edition's editors marked it for every reader."""
        return self.annotate(
            is_lead=models.Exists(
                EditionArticle.objects.filter(article=models.OuterRef("pk"), lead=True)
            )
        )

    def due(self, now: datetime.datetime | None = None) -> "ArticleQuerySet":
        """Scheduled articles whose time has come."""
        now = now or timezone.now()
        return self.filter(status=Article.Status.SCHEDULED, published_at__lte=now)

    def publish_due(self, now: datetime.datetime | None = None) -> list[int]:
        """Publish every scheduled article whose time has come; return their ids.

        Safe to run twice or from two workers at once: only rows still
        scheduled are changed. The publication time becomes the moment the
        article really went public, so it falls after the cutoff of any
        edition built in between and is carried by the next one.
        """
        now = now or timezone.now()
        with transaction.atomic():
            due = self.due(now).select_for_update(skip_locked=True)
            ids = list(due.values_list("pk", flat=True))
            Article.objects.filter(pk__in=ids, status=Article.Status.SCHEDULED).update(
                status=Article.Status.PUBLISHED, published_at=now, updated_at=now
            )
            if ids:
                signals.articles_published.send(sender=Article, article_ids=ids)
        return ids


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
    body = ProseEditorField(
        extensions=EDITOR_EXTENSIONS,
        sanitize=clean_editor_html,
        help_text="HTML; scripts, styles and event handlers are removed.",
    )
    lead_image = models.ImageField(
        upload_to="articles/%Y/%m/",
        blank=True,
        validators=[validate_image_size],
        help_text="Optional. Shown above the article; JPEG, PNG or WebP up to 5 MB.",
    )
    lead_image_alt = models.CharField(
        "lead image description",
        max_length=300,
        blank=True,
        help_text="What the image shows, for readers who cannot see it (alt text).",
    )
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
    # Whole on the site for everyone, members or not (for sharing and search).
    free_to_read = models.BooleanField(
        default=False,
        help_text="Everyone can read it in full on the site, without a membership: "
        "for sharing and search engines. Otherwise non-members see the opening paragraphs.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ArticleQuerySet.as_manager()

    class Meta:
        ordering = ["-published_at", "-created_at"]
        indexes = [models.Index(fields=["status", "published_at"])]

    def __str__(self) -> str:
        return self.title

    def save(
        self,
        *,
        force_insert: bool | tuple[models.base.ModelBase, ...] = False,
        force_update: bool = False,
        using: str | None = None,
        update_fields: Iterable[str] | None = None,
    ) -> None:
        self.body = clean_html(self.body)
        if self.status == self.Status.PUBLISHED and self.published_at is None:
            self.published_at = timezone.now()
        with transaction.atomic():
            super().save(
                force_insert=force_insert,
                force_update=force_update,
                using=using,
                update_fields=update_fields,
            )
            if self.status != self.Status.PUBLISHED:
                # An unpublished (or not yet published) article leaves the
                # editions that have not gone out; sent ones keep their record.
                EditionArticle.objects.filter(
                    article=self, edition__status__in=Edition.CURATABLE
                ).delete()

    def get_absolute_url(self) -> str:
        return path_to("article", slug=self.slug)

    def clean(self) -> None:
        errors = {}
        if not strip_tags(clean_html(self.body or "")).strip():
            errors["body"] = "Write the article before saving it."
        if self.lead_image and not self.lead_image_alt.strip():
            errors["lead_image_alt"] = "Describe the lead image for readers who cannot see it."
        now = timezone.now()
        if self.status == self.Status.SCHEDULED and (
            self.published_at is None or self.published_at <= now
        ):
            errors["published_at"] = (
                "A scheduled article needs a publication time in the future. "
                "To publish it now, choose Published."
            )
        if (
            self.status == self.Status.PUBLISHED
            and self.published_at is not None
            and self.published_at > now
            and not self._published_before()
        ):
            errors["published_at"] = (
                "This time is in the future: choose Scheduled to publish it then, "
                "or clear the time to publish now."
            )
        if errors:
            raise ValidationError(errors)

    def _published_before(self) -> bool:
        if self.pk is None:
            return False
        stored = Article.objects.filter(pk=self.pk).values_list("status", flat=True).first()
        return stored == self.Status.PUBLISHED

    def publish(self, now: datetime.datetime | None = None) -> None:
        """Publish now. An article that already went out keeps its date, so it
        is not carried by a digest a second time."""
        now = now or timezone.now()
        self.status = self.Status.PUBLISHED
        if not self.has_gone_out():
            self.published_at = now
        self.save()

    def unpublish(self) -> None:
        """Back to draft: off the site, the feed and every edition not yet sent."""
        self.status = self.Status.DRAFT
        self.save()

    def has_gone_out(self) -> bool:
        return self.editions.gone_out().exists()

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

    @property
    def teaser(self) -> str:
        """The opening words, as plain text: what non-members see of the body."""
        # A space before each closing tag keeps paragraphs from running together.
        text = " ".join(strip_tags(self.body.replace("</", " </")).split())
        return Truncator(text).words(TEASER_WORDS, truncate=" …")

    def is_readable_by(
        self, user: "AbstractUser | AnonymousUser", subscriber: "Subscriber | None"
    ) -> bool:
        """Whether the full text is shown: staff, and signed-in readers with a live membership.

        The membership, not the digest: a paying reader who unsubscribed from
        the emails, or whose address bounces, still reads on the site.
        """
        if user.is_authenticated and user.is_staff:
            return True
        membership = getattr(subscriber, "membership", None)
        return membership is not None and membership.is_entitled


class EditionQuerySet(PublicContentQuerySet["Edition"]):
    def gone_out(self) -> "EditionQuerySet":
        """Editions readers have had: sending or sent, or held after the first zones had it.

        Their web pages are linked from inboxes, so they stay on the site and
        in the archive whatever the editors do with the zones still to come.
        """
        return self.filter(
            models.Q(status__in=[Edition.Status.SENDING, Edition.Status.SENT])
            | models.Q(status=Edition.Status.HELD, send_started_at__isnull=False)
        )


class Edition(models.Model):
    """The digest of one weekday: the articles published since the previous one."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Being prepared"
        HELD = "held", "Held by the editors"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"

    # Editors may change what an edition carries until its send starts.
    CURATABLE = (Status.DRAFT, Status.HELD)

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
    # Set while a send by hand is still writing its audience (in chunks,
    # delivery.audience): the edition is not sent before its last reader's
    # row exists, and a writer that died is taken over once this has passed.
    audience_lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    objects = EditionQuerySet.as_manager()

    class Meta:
        ordering = ["-date"]

    def __str__(self) -> str:
        return f"Edition of {self.date:%A} {self.date.day} {self.date:%B %Y}"

    def get_absolute_url(self) -> str:
        return path_to("edition", date=self.date)

    @property
    def subject(self) -> str:
        return f"{settings.NEWSLETTER_NAME}: {self.date:%A, %B} {self.date.day}"

    def ordered_articles(self) -> models.QuerySet[Article]:
        """The articles this edition carries, in the editors' order."""
        articles = self.articles.filter(editionarticle__included=True)
        assert isinstance(articles, ArticleQuerySet)
        return (
            articles.with_leads()
            .select_related("section", "author")
            .order_by("editionarticle__position", "editionarticle__pk")
        )

    @property
    def is_curatable(self) -> bool:
        return self.status in self.CURATABLE

    def rows(self) -> models.QuerySet["EditionArticle"]:
        """Every article row, left-out ones included, in the editors' order."""
        return self.editionarticle_set.select_related("article__section").order_by("position", "pk")

    def _lock_for_editors(self) -> "Edition":
        locked = Edition.objects.select_for_update().get(pk=self.pk)
        if locked.status not in self.CURATABLE:
            raise EditionLocked(
                f"{locked} is {locked.get_status_display().lower()}: it can no longer be changed."
            )
        return locked

    def curate(
        self, placements: dict[int, tuple[int, bool] | tuple[int, bool, bool]], note: str
    ) -> list[str]:
        """Apply the editors' order, left-out articles, lead stories and note; return what changed.

        `placements` maps article ids to (position, included) or (position,
        included, lead): a lead story reaches every reader, whatever the
        sections they follow; without it a row keeps its mark. Articles added
        to the edition since the form was shown keep their place after the
        ones placed. Positions are renumbered 1, 2, 3...; ties keep the
        previous order. Unknown articles are refused and nothing is saved.
        """
        with transaction.atomic():
            locked = self._lock_for_editors()
            rows = list(locked.rows())
            unknown = set(placements) - {row.article_id for row in rows}
            if unknown:
                raise ValueError(
                    "Some of these articles are no longer in this edition; "
                    "reload the page and try again."
                )
            changes = []
            previous_order = [row.article_id for row in rows]
            last = max((placement[0] for placement in placements.values()), default=0)
            requested = {
                row.pk: placements.get(row.article_id, (last + 1 + index, row.included))
                for index, row in enumerate(rows)
            }
            rows.sort(key=lambda row: (requested[row.pk][0], row.position, row.pk))
            for position, row in enumerate(rows, start=1):
                placement = requested[row.pk]
                included = placement[1]
                lead = placement[2] if len(placement) > 2 else row.lead
                if included != row.included:
                    verb = "Put back" if included else "Left out"
                    changes.append(f"{verb} “{row.article.title}”.")
                if lead != row.lead:
                    changes.append(
                        f"“{row.article.title}” is for every reader."
                        if lead
                        else f"“{row.article.title}” is for the readers of its section only."
                    )
                row.position, row.included, row.lead = position, included, lead
            EditionArticle.objects.bulk_update(rows, ["position", "included", "lead"])
            if [row.article_id for row in rows] != previous_order:
                changes.append("Reordered the articles.")
            note = note.strip()
            if note != locked.editor_note:
                locked.editor_note = note
                locked.save(update_fields=["editor_note"])
                changes.append("Changed the editor's note." if note else "Removed the note.")
            self.editor_note = locked.editor_note
        return changes

    def hold(self) -> None:
        """Keep this edition from being sent until the editors release it.

        Also once the first zones have had it: the zones whose morning has
        not come yet wait, and their queued digests are not sent.
        """
        allowed = [self.Status.DRAFT, self.Status.SENDING]
        if self.zones_to_come():
            allowed.append(self.Status.SENT)  # "sent" to the zones so far
        self._set_status(tuple(allowed), self.Status.HELD)

    def zones_to_come(self, now: datetime.datetime | None = None) -> bool:
        """Whether some zone's morning of this date may still come.

        The last place a date begins is UTC-12: until noon UTC the next day.
        """
        now = now or timezone.now()
        day_ends = datetime.datetime.combine(
            self.date + datetime.timedelta(days=1), datetime.time(12), tzinfo=datetime.UTC
        )
        return now < day_ends

    @property
    def held_mid_send(self) -> bool:
        return self.status == self.Status.HELD and self.send_started_at is not None

    def release(self) -> None:
        # Back to where the hold found it: preparing, or sending zone by zone.
        status = self.Status.SENDING if self.send_started_at else self.Status.DRAFT
        self._set_status((self.Status.HELD,), status)

    def _set_status(self, expected: tuple[str, ...], status: str) -> None:
        with transaction.atomic():
            locked = Edition.objects.select_for_update().get(pk=self.pk)
            if locked.status not in expected:
                raise EditionLocked(f"{locked} is {locked.get_status_display().lower()}.")
            locked.status = status
            locked.save(update_fields=["status"])
        self.status = status


class EditionArticle(models.Model):
    edition = models.ForeignKey(Edition, on_delete=models.CASCADE)
    article = models.ForeignKey(Article, on_delete=models.PROTECT)
    position = models.PositiveSmallIntegerField(default=0)
    # An editor may leave an article out; the row stays so that the article
    # is not added back when the edition is refreshed.
    included = models.BooleanField(default=True)
    # The lead: the editors' mark that this story reaches every reader,
    # whatever sections they follow (delivery.contents).
    lead = models.BooleanField(
        "for everyone",
        default=False,
        db_default=False,
        help_text="Every reader gets it, whatever their sections.",
    )

    objects = PublicContentQuerySet["EditionArticle"].as_manager()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["edition", "article"], name="edition_article_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.article}"


class NoSendDay(models.Model):
    """A date with no digest anywhere (Christmas, say): what was published rolls over."""

    date = models.DateField(unique=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["date"]
        verbose_name = "no-send day"

    def __str__(self) -> str:
        return f"{self.date:%A} {self.date.day} {self.date:%B %Y}" + (
            f" ({self.note})" if self.note else ""
        )


class Click(models.Model):
    """A reader followed a story's link in a digest (CLICK_TRACKING; off by default).

    Counted per edition and story. Who clicked is kept only with
    TRACK_READER_CLICKS, which the preferences page then tells readers.
    """

    edition = models.ForeignKey(Edition, on_delete=models.CASCADE, related_name="clicks")
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="clicks")
    subscriber = models.ForeignKey(
        "subscriptions.Subscriber", null=True, blank=True, on_delete=models.SET_NULL
    )
    clicked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["clicked_at", "article"])]

    def __str__(self) -> str:
        return f"{self.article} in {self.edition}"
