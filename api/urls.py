"""/api/v1/: the versioned API, its OpenAPI document and its reference page."""

import datetime
from typing import Any

from django.urls import path, re_path, register_converter
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularJSONAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from api import problems, schema  # noqa: F401 - schema registers the key's security scheme
from api.docs import ReferencePage
from api.views import articles, editions, figures, readers

app_name = "api"


class IsoDate:
    """YYYY-MM-DD; an impossible date (2026-02-30) matches nothing: a 404 problem."""

    regex = "[0-9]{4}-[0-9]{2}-[0-9]{2}"

    def to_python(self, value: str) -> datetime.date:
        return datetime.date.fromisoformat(value)

    def to_url(self, value: datetime.date) -> str:
        return value.isoformat()


register_converter(IsoDate, "api_date")


class OpenApiDocument(SpectacularJSONAPIView):
    """The document itself, in JSON whatever the Accept header; not a part of itself."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


urlpatterns = [
    path("v1/openapi.json", OpenApiDocument.as_view(), name="openapi"),
    path("v1/", ReferencePage.as_view(url_name="api:openapi"), name="reference"),
    path("v1/readers/", readers.ReaderList.as_view(), name="readers"),
    path("v1/readers/lookup/", readers.ReaderLookup.as_view(), name="reader-lookup"),
    path("v1/readers/<int:pk>/", readers.ReaderDetail.as_view(), name="reader"),
    path(
        "v1/readers/<int:pk>/complimentary/",
        readers.ReaderComplimentary.as_view(),
        name="reader-complimentary",
    ),
    path(
        "v1/readers/<int:pk>/unsubscribe/",
        readers.ReaderUnsubscribe.as_view(),
        name="reader-unsubscribe",
    ),
    path(
        "v1/readers/<int:pk>/resubscribe/",
        readers.ReaderResubscribe.as_view(),
        name="reader-resubscribe",
    ),
    path("v1/articles/", articles.ArticleList.as_view(), name="articles"),
    path("v1/articles/<int:pk>/", articles.ArticleDetail.as_view(), name="article"),
    path(
        "v1/articles/<int:pk>/schedule/",
        articles.ArticleSchedule.as_view(),
        name="article-schedule",
    ),
    path(
        "v1/articles/<int:pk>/publish/", articles.ArticlePublish.as_view(), name="article-publish"
    ),
    path(
        "v1/articles/<int:pk>/unpublish/",
        articles.ArticleUnpublish.as_view(),
        name="article-unpublish",
    ),
    path("v1/editions/", editions.EditionList.as_view(), name="editions"),
    path("v1/editions/next/", editions.NextEdition.as_view(), name="edition-next"),
    path("v1/editions/<api_date:date>/", editions.EditionDetail.as_view(), name="edition"),
    path("v1/figures/", figures.Figures.as_view(), name="figures"),
    # Anything else under /api/: a problem document, not the site's HTML 404.
    re_path(r"^.*$", problems.not_found),
]
