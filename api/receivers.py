"""Which changes are webhook events: read from the saves of readers, memberships and articles.

Every write to a reader, a membership or an article goes through
Model.save() (the actions, Stripe's mirror, the admin), so the receivers
here compare what is being saved with the row in the database and emit an
event for each change that is one, inside the save's transaction (as
dashboard.history records membership changes). The one queryset write
that publishes articles (Article.objects.publish_due, beat's scheduled
articles) sends newsletter.signals.articles_published instead.

A save that changes none of the watched fields costs no extra query.
"""

import functools
from typing import Any

from django.db.models.signals import post_save, pre_save

from api.events import EventType, emit
from api.serializers import article_data, reader_data
from newsletter.models import Article
from newsletter.signals import articles_published
from subscriptions import signals
from subscriptions.models import Membership, Subscriber

_PREVIOUS = "_api_previous"
READER_WATCHED = ("email", "name", "time_zone", "send_time", "pause_until", "email_status")
MEMBERSHIP_WATCHED = ("status", "complimentary", "complimentary_until")
ARTICLE_WATCHED = ("status", "published_at")

Status = Membership.Status
EmailStatus = Subscriber.EmailStatus


def _remember(watched: tuple[str, ...]) -> Any:
    def remember(sender: Any, instance: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and not set(watched) & set(update_fields):
            return
        previous = None
        if not instance._state.adding:
            previous = sender.objects.filter(pk=instance.pk).values(*watched).first()
        setattr(instance, _PREVIOUS, previous)

    return remember


def _previous(instance: Any) -> tuple[bool, dict[str, Any] | None]:
    """(whether pre_save looked, the row before the save or None for a new one)."""
    if not hasattr(instance, _PREVIOUS):
        return False, None
    previous = getattr(instance, _PREVIOUS)
    delattr(instance, _PREVIOUS)
    return True, previous


def reader_saved(sender: Any, instance: Subscriber, created: bool, **kwargs: Any) -> None:
    looked, previous = _previous(instance)
    if not looked:
        return
    ordering = f"reader:{instance.pk}"
    if created or previous is None:
        emit(
            EventType.READER_CREATED,
            lambda: {"reader": reader_data(instance)},
            ordering_key=ordering,
        )
        return
    changed = [field for field in READER_WATCHED if previous[field] != getattr(instance, field)]
    if not changed:
        return
    if "email_status" in changed:
        before, after = previous["email_status"], instance.email_status
        if after == EmailStatus.UNSUBSCRIBED:
            emit(
                EventType.READER_UNSUBSCRIBED,
                lambda: {"reader": reader_data(instance)},
                ordering_key=ordering,
            )
        elif before == EmailStatus.UNSUBSCRIBED and after == EmailStatus.ACTIVE:
            emit(
                EventType.READER_RESUBSCRIBED,
                lambda: {"reader": reader_data(instance)},
                ordering_key=ordering,
            )
        changed.remove("email_status")
    if changed:
        emit(
            EventType.READER_UPDATED,
            lambda: {"reader": reader_data(instance), "changed": changed},
            ordering_key=ordering,
        )


def digest_choices_changed(
    sender: Any, subscriber: Subscriber, changed: list[str], **kwargs: Any
) -> None:
    emit(
        EventType.READER_UPDATED,
        lambda: {"reader": reader_data(subscriber), "changed": changed},
        ordering_key=f"reader:{subscriber.pk}",
    )


def membership_saved(sender: Any, instance: Membership, created: bool, **kwargs: Any) -> None:
    looked, previous = _previous(instance)
    if not looked:
        return
    before = previous["status"] if previous else ""
    after = instance.status
    granted = (instance.complimentary, instance.complimentary_until) != (
        (previous["complimentary"], previous["complimentary_until"]) if previous else (False, None)
    )
    if before == after and not granted:
        return

    @functools.cache
    def data() -> dict[str, Any]:
        subscriber = Subscriber.objects.select_related("membership").get(pk=instance.subscriber_id)
        return {"reader": reader_data(subscriber)}

    ordering = f"reader:{instance.subscriber_id}"
    if granted:
        # A complimentary grant (or its end moved) by staff: the reader's state.
        emit(
            EventType.READER_UPDATED,
            lambda: {**data(), "changed": ["complimentary"]},
            ordering_key=ordering,
        )
    subscription = instance.stripe_subscription_id or f"membership-{instance.pk}"
    if after == Status.TRIALING:
        emit(
            EventType.READER_TRIAL_STARTED,
            data,
            ordering_key=ordering,
            key=f"{EventType.READER_TRIAL_STARTED}:{subscription}",
        )
    elif after == Status.ACTIVE and before != Status.PAST_DUE:
        # The first successful charge: a trial that converted, or a checkout
        # paid at once. Back from past due is a retried payment, not a first.
        emit(
            EventType.READER_PAID,
            data,
            ordering_key=ordering,
            key=f"{EventType.READER_PAID}:{subscription}",
        )
    elif after == Status.PAST_DUE:
        since = instance.past_due_since.isoformat() if instance.past_due_since else ""
        emit(
            EventType.READER_PAST_DUE,
            data,
            ordering_key=ordering,
            key=f"{EventType.READER_PAST_DUE}:{subscription}:{since}",
        )
    elif after == Status.CANCELED:
        emit(
            EventType.READER_CANCELED,
            data,
            ordering_key=ordering,
            key=f"{EventType.READER_CANCELED}:{subscription}",
        )


def article_saved(sender: Any, instance: Article, created: bool, **kwargs: Any) -> None:
    looked, previous = _previous(instance)
    if not looked or instance.status != Article.Status.PUBLISHED:
        return
    if previous is not None and previous["status"] == Article.Status.PUBLISHED:
        return
    publish_article(instance)


def publish_article(article: Article) -> None:
    # Once per publication: unpublished and published again is news again.
    published = article.published_at.isoformat() if article.published_at else ""
    emit(
        EventType.ARTICLE_PUBLISHED,
        {"article": article_data(article)},
        key=f"{EventType.ARTICLE_PUBLISHED}:{article.pk}:{published}",
        ordering_key=f"article:{article.pk}",
    )


def scheduled_published(sender: Any, article_ids: list[int], **kwargs: Any) -> None:
    for article in Article.objects.filter(pk__in=article_ids).select_related("section"):
        publish_article(article)


def connect() -> None:
    pre_save.connect(
        _remember(READER_WATCHED), sender=Subscriber, dispatch_uid="api-reader-pre", weak=False
    )
    post_save.connect(reader_saved, sender=Subscriber, dispatch_uid="api-reader-post")
    pre_save.connect(
        _remember(MEMBERSHIP_WATCHED),
        sender=Membership,
        dispatch_uid="api-membership-pre",
        weak=False,
    )
    post_save.connect(membership_saved, sender=Membership, dispatch_uid="api-membership-post")
    pre_save.connect(
        _remember(ARTICLE_WATCHED), sender=Article, dispatch_uid="api-article-pre", weak=False
    )
    post_save.connect(article_saved, sender=Article, dispatch_uid="api-article-post")
    articles_published.connect(scheduled_published, dispatch_uid="api-articles-published")
    signals.digest_choices_changed.connect(
        digest_choices_changed, dispatch_uid="api-digest-choices-changed"
    )
