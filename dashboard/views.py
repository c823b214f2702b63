"""The publisher's dashboard under the admin: thin views over dashboard.figures."""

from collections.abc import Sequence

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from dashboard.figures import FIGURES, Cell, can_see, visible
from dashboard.metrics import DateRange
from dashboard.models import StaffSettings
from dashboard.summary import do_set_weekly_summary
from subscriptions import csvfiles

DAY_CHOICES = (30, 90, 365)
DEFAULT_DAYS = 90


def chosen_days(request: HttpRequest) -> int:
    """?days=30|90|365; anything else is the default (a bookmarked odd value still works)."""
    try:
        days = int(request.GET.get("days", DEFAULT_DAYS))
    except ValueError:
        return DEFAULT_DAYS
    return days if days in DAY_CHOICES else DEFAULT_DAYS


def _context(request: HttpRequest, title: str, days: int) -> dict[str, object]:
    return {
        **admin.site.each_context(request),
        "title": title,
        "days": days,
        "day_choices": DAY_CHOICES,
        "zone": settings.DIGEST_TIMEZONE,
    }


def _overview(request: HttpRequest) -> HttpResponse:
    figures = [figure for figure in FIGURES.values() if can_see(request.user, figure)]
    if not figures:
        raise PermissionDenied
    now = timezone.now()
    days = chosen_days(request)
    dates = DateRange.last_days(days, now)
    context = _context(request, "The publisher's dashboard", days)
    staff_settings = StaffSettings.objects.filter(user=request.user.pk or 0).first()
    context.update(
        figures=[(figure, figure.build(dates, now)) for figure in figures],
        dates=dates,
        now=now,
        weekly_summary=bool(staff_settings and staff_settings.weekly_summary),
    )
    return TemplateResponse(request, "admin/dashboard/overview.html", context)


def _figure(request: HttpRequest, slug: str) -> HttpResponse:
    figure = FIGURES.get(slug)
    if figure is None:
        raise Http404("No such figure.")
    if not can_see(request.user, figure):
        raise PermissionDenied
    now = timezone.now()
    days = chosen_days(request)
    dates = DateRange.last_days(days, now)
    rendered = figure.build(dates, now)
    if request.GET.get("format") == "csv":
        return _csv(f"{slug}-{days}d-{dates.last.isoformat()}.csv", rendered.columns, rendered.rows)
    context = _context(request, figure.title, days)
    context.update(figure=figure, rendered=rendered, dates=dates, now=now)
    return TemplateResponse(request, "admin/dashboard/figure.html", context)


@require_POST
def _weekly_summary(request: HttpRequest) -> HttpResponse:
    """Opt in or out of the weekly summary (the checkbox on the dashboard)."""
    if not visible(request.user) or request.user.pk is None:
        raise PermissionDenied
    wanted = request.POST.get("weekly_summary") == "on"
    do_set_weekly_summary(request.user.pk, wanted)
    messages.success(
        request,
        "You will get the summary by email every Monday morning."
        if wanted
        else "You will no longer get the weekly summary.",
    )
    return redirect("dashboard:overview")


def _csv(filename: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> HttpResponse:
    response = HttpResponse(
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    writer = csvfiles.writer(response)
    writer.writerow(columns)
    writer.writerows(rows)
    return response


# admin_view: signed-in active staff only; anyone else goes to the admin's
# sign-in page. Never cached: the numbers are "now".
overview = admin.site.admin_view(_overview)
figure = admin.site.admin_view(_figure)
weekly_summary = admin.site.admin_view(_weekly_summary)
