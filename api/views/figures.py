"""/api/v1/figures/: the dashboard's figures as JSON, for staff who may see them there."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from api import scopes
from api.base import ApiView
from api.models import ApiKey
from api.serializers import FiguresQuerySerializer, FiguresSerializer
from dashboard import metrics


class Figures(ApiView):
    read_scopes = (ApiKey.Scope.READ,)

    @extend_schema(
        tags=["Figures"],
        summary="Readers by state, trials, conversion, MRR/ARR and churn",
        parameters=[FiguresQuerySerializer],
        responses=FiguresSerializer,
    )
    def get(self, request: Request) -> Response:
        days = self.query(FiguresQuerySerializer)["days"]
        # The dashboard's own rule for money and growth (dashboard.figures.BILLING).
        if not request.user.has_perm(scopes.BILLING_PERMISSION):
            raise PermissionDenied("The key's owner may not see billing figures.")
        now = timezone.now()
        dates = metrics.DateRange.last_days(days, now)
        revenue = metrics.revenue(now)
        data = {
            "first_day": dates.first,
            "last_day": dates.last,
            "time_zone": metrics.newsroom_zone().key,
            "readers_by_state": metrics.readers_by_state(now),
            "paying": revenue.paying,
            "mrr_cents": revenue.mrr_cents,
            "arr_cents": revenue.arr_cents,
            "trials_per_day": metrics.new_trials_per_day(dates, now),
            "conversion_by_week": metrics.conversion_by_cohort(dates, now),
            "churn_per_month": metrics.churn_per_month(dates, now, mirror=revenue),
        }
        return Response(FiguresSerializer(data).data)
