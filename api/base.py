"""What every API view shares: the key, its scopes and rate, problems, the write log, pages."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import inline_serializer
from rest_framework import pagination, serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.authentication import record_write


class Cursor(pagination.CursorPagination):
    """Opaque cursors over a stable order (the id): no row skipped or repeated as rows change."""

    ordering = "id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100

    def decode_cursor(self, request: Request) -> pagination.Cursor | None:
        try:
            return super().decode_cursor(request)
        except NotFound:
            # A cursor that is not one of ours is a bad parameter, not a missing page.
            raise serializers.ValidationError({"cursor": ["This cursor is not valid."]}) from None


class ApiView(APIView):
    # Authentication, scopes, the per-key rate and problem details come from
    # REST_FRAMEWORK (config/settings); this adds the write log and helpers.

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        record_write(request, self, response.status_code)
        return response

    def query(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        """The query string, checked by `serializer_class` (unknown parameters refused)."""
        serializer = serializer_class(data=self.request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def body(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def refuse_body(self) -> None:
        """An action that takes no fields refuses any it is sent, by name."""
        data: Any = self.request.data
        if data:
            raise serializers.ValidationError({name: ["Unknown field."] for name in data})

    def page(self, rows: QuerySet, serializer_class: type[serializers.BaseSerializer]) -> Response:
        paginator = Cursor()
        found = paginator.paginate_queryset(rows, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(found, many=True).data)


def paginated(name: str, serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of one page: the rows, and the links to the pages on either side."""
    return inline_serializer(
        name,
        {
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
