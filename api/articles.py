"""The API's writes to articles: drafts, edits, scheduling, publishing, a lead image by URL.

Each runs in one transaction and validates as the admin does
(Article.full_clean, the lead image's checks); the body is cleaned by the
same nh3 rules on save (Article.save). A lead image by URL is fetched
before the transaction, through api.outbound (no private addresses).
"""

import datetime
import posixpath
import urllib.parse
from typing import Any

import urllib3
from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from api import outbound
from newsletter import uploads
from newsletter.models import LEAD_IMAGE_MAX_BYTES, Article, validate_image_size

IMAGE_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


def fetch_image(url: str) -> UploadedFile:
    """The image at `url`, as an upload; ValidationError on lead_image_url otherwise."""
    try:
        answer = outbound.request("GET", url, max_bytes=LEAD_IMAGE_MAX_BYTES)
    except outbound.RefusedAddress as refused:
        raise ValidationError({"lead_image_url": str(refused)}) from None
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise ValidationError(
            {"lead_image_url": f"The image could not be fetched: {type(error).__name__}."}
        ) from None
    if answer.status != 200:
        raise ValidationError({"lead_image_url": f"The image's server answered {answer.status}."})
    if answer.truncated:
        raise ValidationError({"lead_image_url": "The image is larger than 5 MB."})
    name = posixpath.basename(urllib.parse.urlsplit(url).path) or "lead-image"
    return SimpleUploadedFile(name, answer.body, content_type=answer.content_type)


def checked_image(upload: UploadedFile, field: str) -> UploadedFile:
    """The admin's checks: Pillow opens it, JPEG/PNG/WebP, size and pixel caps."""
    try:
        image = forms.ImageField().clean(upload)
        validate_image_size(image)
        uploads.validate_lead_image(image)
    except ValidationError as error:
        raise ValidationError({field: error.messages}) from None
    fmt = getattr(getattr(image, "image", None), "format", "") or ""
    stem = posixpath.splitext(slugify(posixpath.splitext(image.name or "")[0]) or "lead")[0]
    image.name = f"{stem}.{IMAGE_EXTENSIONS.get(fmt, 'img')}"
    image.seek(0)
    return image


def unique_slug(title: str, exclude: int | None = None) -> str:
    base = slugify(title)[:180] or "article"
    slug, n = base, 2
    others = Article.objects.exclude(pk=exclude) if exclude is not None else Article.objects.all()
    while others.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _apply(article: Article, data: dict[str, Any]) -> None:
    image = data.pop("lead_image", None) or data.pop("lead_image_url", None)
    for field, value in data.items():
        setattr(article, field, value)
    if image is not None:
        article.lead_image.save(image.name, image, save=False)


def prepare_image(data: dict[str, Any]) -> dict[str, Any]:
    """Fetch and check the lead image (outside any transaction: the network is slow)."""
    data = dict(data)
    if "lead_image_url" in data:
        data["lead_image_url"] = checked_image(
            fetch_image(data["lead_image_url"]), "lead_image_url"
        )
    if "lead_image" in data:
        data["lead_image"] = checked_image(data["lead_image"], "lead_image")
    return data


@transaction.atomic
def do_create_draft(data: dict[str, Any], author: AbstractBaseUser) -> Article:
    data = dict(data)
    slug = data.pop("slug", None) or unique_slug(data["title"])
    article = Article(slug=slug, author=author, status=Article.Status.DRAFT)  # type: ignore[misc]
    _apply(article, data)
    article.full_clean()
    article.save()
    return article


@transaction.atomic
def do_update_article(article_id: int, data: dict[str, Any]) -> Article:
    article = Article.objects.select_for_update().get(pk=article_id)
    _apply(article, dict(data))
    article.full_clean()
    article.save()
    return article


@transaction.atomic
def do_schedule(article_id: int, publish_at: datetime.datetime) -> Article:
    article = Article.objects.select_for_update().get(pk=article_id)
    if article.status == Article.Status.PUBLISHED:
        raise ValidationError({"publish_at": "This article is published: unpublish it first."})
    article.status, article.published_at = Article.Status.SCHEDULED, publish_at
    article.full_clean()
    article.save()
    return article


@transaction.atomic
def do_publish(article_id: int, now: datetime.datetime | None = None) -> Article:
    article = Article.objects.select_for_update().get(pk=article_id)
    article.full_clean()
    if article.status != Article.Status.PUBLISHED:
        article.publish(now or timezone.now())
    return article


@transaction.atomic
def do_unpublish(article_id: int) -> Article:
    article = Article.objects.select_for_update().get(pk=article_id)
    if article.status != Article.Status.DRAFT:
        article.unpublish()
    return article
