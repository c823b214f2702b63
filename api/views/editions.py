"""/api/v1/editions/: the next morning per zone and what it carries; each sent edition's report."""

import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.base import ApiView, Cursor, paginated
from api.models import ApiKey
from api.serializers import (
    EditionFilterSerializer,
    EditionReportSerializer,
    NextEditionSerializer,
    NoQuerySerializer,
)
from dashboard.sends import count_edition
from newsletter import desk, editions
from newsletter.models import Article, Edition

READ = (ApiKey.Scope.READ, ApiKey.Scope.WRITE_ARTICLES)
TAG = ["Editions"]


def article_rows(articles: "QuerySet[Article] | list[Article]") -> list[dict[str, Any]]:
    return [
        {
            "id": article.pk,
            "title": article.title,
            "slug": article.slug,
            "section": article.section.slug if article.section else None,
            "published_at": article.published_at,
        }
        for article in articles
    ]


def next_edition(now: datetime.datetime) -> dict[str, Any]:
    """The next morning in every zone readers live in: when, for how many, carrying what.

    Read only: the edition is not built here (the desk and the send do that).
    """
    date = editions.upcoming_edition_date(now)
    edition = Edition.objects.filter(date=date).first()
    left_out: set[int] = set()
    if edition is not None:
        left_out = set(
            edition.editionarticle_set.filter(included=False).values_list("article_id", flat=True)
        )
    zones = []
    for send in desk.next_sends(now, limit=50):
        carried = [
            article
            for article in Article.objects.published_between(send.since, now)
            .select_related("section")
            .order_by("published_at", "pk")
            if article.pk not in left_out
        ]
        local = send.moment.astimezone(ZoneInfo(send.time_zone))
        zones.append(
            {
                "time_zone": send.time_zone,
                "send_time": local.time(),
                "sends_at": send.moment.astimezone(datetime.UTC),
                "sends_at_local": f"{local:%Y-%m-%d %H:%M} {send.time_zone}",
                "readers": send.readers,
                "since": send.since,
                "articles": article_rows(carried),
            }
        )
    return {
        "date": date,
        "status": edition.status if edition else None,
        "editor_note": edition.editor_note if edition else "",
        "zones": zones,
    }


def edition_report(edition: Edition, now: datetime.datetime) -> dict[str, Any]:
    zones = []
    for row in count_edition(edition, now):
        duration = (row.ended - row.began).total_seconds() if row.began and row.ended else None
        zones.append(
            {
                "time_zone": row.time_zone,
                "deliveries": row.deliveries,
                "delivered": row.delivered,
                "failed": row.failed,
                "bounced": row.bounced,
                "missed": row.missed,
                "complaints": row.complaints,
                "unsubscribes": row.unsubscribes,
                "began": row.began,
                "ended": row.ended,
                "duration_seconds": duration,
            }
        )
    return {
        "date": edition.date,
        "subject": edition.subject,
        "status": edition.status,
        "send_started_at": edition.send_started_at,
        "sent_at": edition.sent_at,
        "articles": article_rows(edition.ordered_articles()),
        "zones": zones,
    }


class NextEdition(ApiView):
    read_scopes = READ

    @extend_schema(tags=TAG, summary="The next edition, per zone", responses=NextEditionSerializer)
    def get(self, request: Request) -> Response:
        self.query(NoQuerySerializer)
        return Response(NextEditionSerializer(next_edition(timezone.now())).data)


class EditionList(ApiView):
    read_scopes = READ

    @extend_schema(
        tags=TAG,
        summary="Editions that went out, with their send reports",
        operation_id="editions_list",
        parameters=[EditionFilterSerializer],
        responses=paginated("EditionPage", EditionReportSerializer),
    )
    def get(self, request: Request) -> Response:
        self.query(EditionFilterSerializer)
        paginator = Cursor()
        paginator.ordering = "-date"
        paginator.page_size = 10
        paginator.max_page_size = 30
        found = paginator.paginate_queryset(Edition.objects.gone_out(), request, view=self) or []
        now = timezone.now()
        data = EditionReportSerializer(
            [edition_report(edition, now) for edition in found], many=True
        ).data
        return paginator.get_paginated_response(data)


class EditionDetail(ApiView):
    read_scopes = READ

    @extend_schema(tags=TAG, summary="One edition's send report", responses=EditionReportSerializer)
    def get(self, request: Request, date: datetime.date) -> Response:
        edition = get_object_or_404(Edition.objects.gone_out(), date=date)
        return Response(EditionReportSerializer(edition_report(edition, timezone.now())).data)
