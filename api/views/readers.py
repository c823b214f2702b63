"""/api/v1/readers/: list, look up, create (complimentary or invited), change, unsubscribe."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from api import readers
from api.base import ApiView, paginated
from api.models import ApiKey
from api.problems import CONTENT_TYPE, problem
from api.serializers import (
    ComplimentarySerializer,
    ReaderCreateSerializer,
    ReaderFilterSerializer,
    ReaderLookupSerializer,
    ReaderSerializer,
    ReaderUpdateSerializer,
)
from subscriptions.actions.account import do_set_email_status
from subscriptions.actions.checkout import do_request_signup
from subscriptions.actions.staff import (
    ReaderExists,
    do_grant_complimentary,
    do_set_complimentary,
    do_update_reader,
)
from subscriptions.addresses import normalise_email
from subscriptions.models import Subscriber, SubscriberQuerySet

READ = (ApiKey.Scope.READ, ApiKey.Scope.WRITE_READERS)
TAG = ["Readers"]

InvitationSent = inline_serializer(
    "InvitationSent",
    {"invited": serializers.EmailField(), "detail": serializers.CharField()},
)


def readers_queryset() -> SubscriberQuerySet:
    return Subscriber.objects.select_related("membership").prefetch_related("sections")


class ReaderList(ApiView):
    read_scopes = READ
    write_scope = ApiKey.Scope.WRITE_READERS

    @extend_schema(
        tags=TAG,
        summary="List readers",
        operation_id="readers_list",
        parameters=[ReaderFilterSerializer],
        responses=paginated("ReaderPage", ReaderSerializer),
    )
    def get(self, request: Request) -> Response:
        filters = self.query(ReaderFilterSerializer)
        rows = readers_queryset()
        if "state" in filters:
            rows = rows.filter(readers.state_filter(filters["state"], timezone.now()))
        if "time_zone" in filters:
            rows = rows.filter(time_zone=filters["time_zone"])
        if "section" in filters:
            rows = rows.following(filters["section"])
        if "created_since" in filters:
            rows = rows.filter(created_at__gte=filters["created_since"])
        if "updated_since" in filters:
            rows = rows.filter(updated_at__gte=filters["updated_since"])
        return self.page(rows, ReaderSerializer)

    @extend_schema(
        tags=TAG,
        summary="Add a complimentary reader, or invite one to the trial",
        request=ReaderCreateSerializer,
        responses={
            201: ReaderSerializer,
            202: OpenApiResponse(InvitationSent, description="The confirmation email is queued."),
            409: OpenApiResponse(description="A reader with this address exists."),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.body(ReaderCreateSerializer)
        if data["kind"] == "trial_invitation":
            # The signup form's own email: nothing is stored until they confirm.
            do_request_signup(
                email=data["email"],
                name=data.get("name", ""),
                time_zone=data.get("time_zone") or settings.DIGEST_TIMEZONE,
            )
            return Response(
                {
                    "invited": normalise_email(data["email"]),
                    "detail": "A confirmation link was emailed; the reader starts the trial "
                    "once they follow it.",
                },
                status=status.HTTP_202_ACCEPTED,
            )
        try:
            subscriber = do_grant_complimentary(
                email=data["email"],
                name=data.get("name", ""),
                time_zone=data.get("time_zone", ""),
                send_time=data.get("send_time"),
                until=data.get("complimentary_until"),
            )
        except ReaderExists as exists:
            return conflict(f"Reader {exists.subscriber.pk} has this address already.")
        subscriber = readers_queryset().get(pk=subscriber.pk)
        return Response(ReaderSerializer(subscriber).data, status=status.HTTP_201_CREATED)


def conflict(detail: str) -> Response:
    return Response(problem(409, detail), status=409, content_type=CONTENT_TYPE)


class ReaderLookup(ApiView):
    """By address, in the body: addresses stay out of URLs, which access logs keep."""

    read_scopes = READ
    reads_by_post = True

    @extend_schema(
        tags=TAG,
        summary="Find a reader by email address",
        request=ReaderLookupSerializer,
        responses={200: ReaderSerializer, 404: OpenApiResponse(description="No such reader.")},
    )
    def post(self, request: Request) -> Response:
        email = normalise_email(self.body(ReaderLookupSerializer)["email"])
        subscriber = get_object_or_404(readers_queryset(), email__iexact=email)
        return Response(ReaderSerializer(subscriber).data)


class ReaderDetail(ApiView):
    read_scopes = READ
    write_scope = ApiKey.Scope.WRITE_READERS

    @extend_schema(tags=TAG, summary="Get a reader", responses=ReaderSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ReaderSerializer(get_object_or_404(readers_queryset(), pk=pk)).data)

    @extend_schema(
        tags=TAG,
        summary="Change a reader's name, zone, delivery time, pause, sections, days or format",
        request=ReaderUpdateSerializer,
        responses=ReaderSerializer,
    )
    def patch(self, request: Request, pk: int) -> Response:
        get_object_or_404(Subscriber, pk=pk)
        do_update_reader(pk, self.body(ReaderUpdateSerializer))
        return Response(ReaderSerializer(readers_queryset().get(pk=pk)).data)


class ReaderComplimentary(ApiView):
    read_scopes = READ
    write_scope = ApiKey.Scope.WRITE_READERS

    @extend_schema(
        tags=TAG,
        summary="Grant or change a complimentary membership",
        request=ComplimentarySerializer,
        responses=ReaderSerializer,
    )
    def put(self, request: Request, pk: int) -> Response:
        get_object_or_404(Subscriber, pk=pk)
        do_set_complimentary(pk, self.body(ComplimentarySerializer)["complimentary_until"])
        return Response(ReaderSerializer(readers_queryset().get(pk=pk)).data)


class _EmailStatusChange(ApiView):
    read_scopes = READ
    write_scope = ApiKey.Scope.WRITE_READERS
    to: Subscriber.EmailStatus

    def post(self, request: Request, pk: int) -> Response:
        subscriber = get_object_or_404(readers_queryset(), pk=pk)
        self.refuse_body()
        if self.to == Subscriber.EmailStatus.ACTIVE and subscriber.email_status not in (
            Subscriber.EmailStatus.ACTIVE,
            Subscriber.EmailStatus.UNSUBSCRIBED,
        ):
            return conflict(
                "This address bounced or complained: only a new address can bring it back."
            )
        do_set_email_status(subscriber, self.to)
        return Response(ReaderSerializer(readers_queryset().get(pk=pk)).data)


class ReaderUnsubscribe(_EmailStatusChange):
    to = Subscriber.EmailStatus.UNSUBSCRIBED

    @extend_schema(
        tags=TAG, summary="Unsubscribe a reader", request=None, responses=ReaderSerializer
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class ReaderResubscribe(_EmailStatusChange):
    to = Subscriber.EmailStatus.ACTIVE

    @extend_schema(
        tags=TAG,
        summary="Resubscribe a reader who unsubscribed",
        request=None,
        responses={
            200: ReaderSerializer,
            409: OpenApiResponse(description="Bounced or complained."),
        },
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)
