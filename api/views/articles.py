"""/api/v1/articles/: drafts, edits, scheduling, publishing, listing."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import parsers, status
from rest_framework.request import Request
from rest_framework.response import Response

from api import articles
from api.base import ApiView, paginated
from api.models import ApiKey
from api.serializers import (
    ArticleFilterSerializer,
    ArticleSerializer,
    ArticleUpdateSerializer,
    ArticleWriteSerializer,
    ScheduleSerializer,
)
from newsletter.models import Article

READ = (ApiKey.Scope.READ, ApiKey.Scope.WRITE_ARTICLES)
TAG = ["Articles"]
PARSERS = [parsers.JSONParser, parsers.MultiPartParser]


def articles_queryset() -> QuerySet[Article]:
    return Article.objects.select_related("section")


class ArticleList(ApiView):
    read_scopes = READ
    write_scope = ApiKey.Scope.WRITE_ARTICLES
    parser_classes = PARSERS

    @extend_schema(
        tags=TAG,
        summary="List articles",
        operation_id="articles_list",
        parameters=[ArticleFilterSerializer],
        responses=paginated("ArticlePage", ArticleSerializer),
    )
    def get(self, request: Request) -> Response:
        filters = self.query(ArticleFilterSerializer)
        rows = articles_queryset()
        if "status" in filters:
            rows = rows.filter(status=filters["status"])
        if "section" in filters:
            rows = rows.filter(section__slug=filters["section"])
        if "updated_since" in filters:
            rows = rows.filter(updated_at__gte=filters["updated_since"])
        return self.page(rows, ArticleSerializer)

    @extend_schema(
        tags=TAG,
        summary="Create a draft",
        request={
            "application/json": ArticleWriteSerializer,
            "multipart/form-data": ArticleWriteSerializer,
        },
        responses={201: ArticleSerializer},
    )
    def post(self, request: Request) -> Response:
        data = articles.prepare_image(self.body(ArticleWriteSerializer))
        article = articles.do_create_draft(data, request.user)  # type: ignore[arg-type]
        return Response(ArticleSerializer(article).data, status=status.HTTP_201_CREATED)


class ArticleDetail(ApiView):
    read_scopes = READ
    write_scope = ApiKey.Scope.WRITE_ARTICLES
    parser_classes = PARSERS

    @extend_schema(tags=TAG, summary="Get an article", responses=ArticleSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ArticleSerializer(get_object_or_404(articles_queryset(), pk=pk)).data)

    @extend_schema(
        tags=TAG,
        summary="Change an article",
        request={
            "application/json": ArticleUpdateSerializer,
            "multipart/form-data": ArticleUpdateSerializer,
        },
        responses=ArticleSerializer,
    )
    def patch(self, request: Request, pk: int) -> Response:
        get_object_or_404(Article, pk=pk)
        data = articles.prepare_image(self.body(ArticleUpdateSerializer))
        return Response(ArticleSerializer(articles.do_update_article(pk, data)).data)


class ArticleSchedule(ApiView):
    read_scopes = READ
    write_scope = ApiKey.Scope.WRITE_ARTICLES

    @extend_schema(
        tags=TAG,
        summary="Schedule an article",
        request=ScheduleSerializer,
        responses=ArticleSerializer,
    )
    def post(self, request: Request, pk: int) -> Response:
        get_object_or_404(Article, pk=pk)
        publish_at = self.body(ScheduleSerializer)["publish_at"]
        return Response(ArticleSerializer(articles.do_schedule(pk, publish_at)).data)


class _ArticleStatus(ApiView):
    read_scopes = READ
    write_scope = ApiKey.Scope.WRITE_ARTICLES


class ArticlePublish(_ArticleStatus):
    @extend_schema(tags=TAG, summary="Publish now", request=None, responses=ArticleSerializer)
    def post(self, request: Request, pk: int) -> Response:
        get_object_or_404(Article, pk=pk)
        self.refuse_body()
        return Response(ArticleSerializer(articles.do_publish(pk)).data)


class ArticleUnpublish(_ArticleStatus):
    @extend_schema(
        tags=TAG, summary="Unpublish (back to draft)", request=None, responses=ArticleSerializer
    )
    def post(self, request: Request, pk: int) -> Response:
        get_object_or_404(Article, pk=pk)
        self.refuse_body()
        return Response(ArticleSerializer(articles.do_unpublish(pk)).data)
