"""Team pages: buying a team, its manager's page, the invite link, and taking a seat.

Thin, as the other reader pages: parse, call one function in
subscriptions.actions.teams, answer.
"""

import logging

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from subscriptions import ratelimit, signin, stripe_api, teams
from subscriptions.actions import teams as team_actions
from subscriptions.emails import dollars
from subscriptions.forms import SignupForm
from subscriptions.headers import no_referrer, personal
from subscriptions.models import Subscriber
from subscriptions.sessions import current_subscriber, sign_in
from subscriptions.team_models import Team, TeamSeat

logger = logging.getLogger(__name__)

HOUR = 3600
SEAT_REQUESTS_PER_IP = 20
SEAT_REQUESTS_PER_EMAIL = 5
SEAT_TOKEN_KEY = "pending_team_seat_token"  # noqa: S105 - a session key, not a secret
# The teams this browser opened the manager's signed link of.
MANAGED_TEAMS_KEY = "managed_team_ids"


def _see_other(url: str) -> HttpResponse:
    response = redirect(url)
    response.status_code = 303
    return response


class TeamForm(forms.Form):
    name = forms.CharField(label="Your organisation's name", max_length=120)
    seats = forms.IntegerField(label="Seats")

    def clean_seats(self) -> int:
        seats: int = self.cleaned_data["seats"]
        if not settings.TEAM_MIN_SEATS <= seats <= settings.TEAM_MAX_SEATS:
            raise forms.ValidationError(
                f"Choose {settings.TEAM_MIN_SEATS} to {settings.TEAM_MAX_SEATS} seats."
            )
        return seats


def _offer() -> dict[str, object]:
    start = settings.TEAM_VOLUME_DISCOUNT_FROM_SEATS
    return {
        "seat_price": teams.seat_price(1) / 100,
        "discounted_price": teams.seat_price(start) / 100,
        "discount_percent": settings.TEAM_VOLUME_DISCOUNT_PERCENT,
        "discount_from": start,
        "min_seats": settings.TEAM_MIN_SEATS,
        "max_seats": settings.TEAM_MAX_SEATS,
    }


@require_http_methods(["GET", "POST"])
def buy(request: HttpRequest) -> HttpResponse:
    """/teams/: the team plan, and for a signed-in reader the form that starts its Checkout."""
    viewer = current_subscriber(request)
    form = TeamForm(request.POST or None, initial={"seats": 5})
    if request.method == "POST" and viewer is not None and form.is_valid():
        try:
            started = team_actions.do_start_team_checkout(
                viewer, name=form.cleaned_data["name"], seats=form.cleaned_data["seats"]
            )
        except stripe_api.BillingUnavailable:
            return render(request, "subscriptions/unavailable.html", status=503)
        except stripe_api.StripeError as error:
            logger.error("Team checkout could not reach Stripe: %s", error)
            messages.error(request, "We couldn't reach our payment provider; nothing was charged.")
            return _see_other("subscriptions:teams")
        return _see_other(started.checkout_url)
    managed = list(Team.objects.filter(manager=viewer)) if viewer else []
    return render(
        request,
        "subscriptions/teams.html",
        {
            "form": form,
            "viewer": viewer,
            "managed": [(team, teams.manager_url(team)) for team in managed],
            **_offer(),
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@no_referrer  # the signed link is in the URL
@require_GET
def manage_link(request: HttpRequest, token: str) -> HttpResponse:
    """The manager's signed link: this browser may manage the team; on to its page without it.

    As with the emailed sign-in links, the token leaves the address bar (and
    any Referer) for the session, and the page keeps the site's referrer
    policy: under no-referrer a browser sends "Origin: null" with its
    forms, which CSRF rightly refuses.
    """
    team = teams.team_for_manager_token(token)
    if team is None:
        return render(request, "subscriptions/team_link_invalid.html", status=404)
    granted = set(request.session.get(MANAGED_TEAMS_KEY, []))
    request.session[MANAGED_TEAMS_KEY] = sorted(granted | {team.pk})
    page = reverse("subscriptions:team-page", args=[team.pk])
    session_id = request.GET.get("session_id", "")
    return redirect(f"{page}?session_id={session_id}" if session_id.startswith("cs_") else page)


def _may_manage(request: HttpRequest, team: Team) -> bool:
    viewer = current_subscriber(request)
    return team.pk in request.session.get(MANAGED_TEAMS_KEY, []) or (
        viewer is not None and viewer.pk == team.manager_id
    )


@personal
@require_http_methods(["GET", "POST"])
def manage(request: HttpRequest, team_id: int) -> HttpResponse:
    """The manager's page: the invite link, the members, removing one, the seats."""
    team = Team.objects.filter(pk=team_id).first()
    if team is None or not _may_manage(request, team):
        return render(request, "subscriptions/team_link_invalid.html", status=404)
    session_id = request.GET.get("session_id", "")
    if session_id.startswith("cs_") and team.stripe_subscription_id is None:
        try:
            team_actions.do_fulfil_team_checkout(session_id)
        except stripe_api.StripeError as error:
            logger.error("Team checkout return could not reach Stripe: %s", error)
        team.refresh_from_db()
    if request.method == "POST":
        _manage_action(request, team)
        return _see_other(request.path)
    return render(
        request,
        "subscriptions/team_manage.html",
        {
            "team": team,
            "members": teams.members(team),
            "taken": teams.taken(team),
            "invite_url": teams.invite_url(team),
            "entitled": team_actions.team_is_entitled(team),
            "yearly": dollars(team.amount) if team.amount else "",
            "zone": team.manager.time_zone if team.manager else settings.DIGEST_TIMEZONE,
            "min_seats": settings.TEAM_MIN_SEATS,
            "max_seats": settings.TEAM_MAX_SEATS,
        },
    )


def _manage_action(request: HttpRequest, team: Team) -> None:
    action = request.POST.get("action")
    try:
        if action == "remove":
            seat = team_actions.do_remove_member(team, int(request.POST.get("seat", "0")))
            messages.success(
                request,
                f"{seat.subscriber.display_email} is off the team: their briefing continues "
                "until the end of their day, then they are offered a trial of their own.",
            )
        elif action == "seats":
            seats = int(request.POST.get("seats", "0"))
            before = team.seats
            team = team_actions.do_change_seats(team, seats)
            messages.success(
                request,
                f"The team has {team.seats} seats now; the added ones are invoiced for the "
                "rest of the year."
                if team.seats > before
                else f"The team has {team.seats} seats: the renewal bills for that many.",
            )
        elif action == "new_invite":
            team_actions.do_new_invite_link(team)
            messages.success(request, "A new invite link: the old one no longer works.")
        else:
            messages.error(request, "Unknown choice.")
    except (ValueError, team_actions.TeamError) as error:
        messages.error(request, str(error) or "That did not work.")
    except (stripe_api.StripeError, stripe_api.BillingUnavailable) as error:
        logger.error("Team %s: Stripe unreachable: %s", team.pk, error)
        messages.error(request, "We couldn't reach our payment provider; nothing changed.")
    except TeamSeat.DoesNotExist:
        messages.error(request, "That member is not on the team.")


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    """The invite link: a reader asks for a seat with their own address (an email proves it)."""
    team = teams.team_for_invite_token(token)
    if team is None:
        return render(request, "subscriptions/team_link_invalid.html", status=404)
    form = SignupForm(request.POST or None)
    context = {
        "team": team,
        "form": form,
        "seats_left": max(0, team.seats - teams.taken(team)),
        "entitled": team_actions.team_is_entitled(team),
    }
    if request.method != "POST":
        return render(request, "subscriptions/team_join.html", context)
    if not ratelimit.allow(
        "team-seat-ip",
        ratelimit.client_ip(request),
        limit=SEAT_REQUESTS_PER_IP,
        window_seconds=HOUR,
    ):
        return render(request, "subscriptions/rate_limited.html", status=429)
    if not form.is_valid():
        return render(request, "subscriptions/team_join.html", context, status=400)
    email = form.cleaned_data["email"]
    if (
        not ratelimit.allow(
            "team-seat-email", email, limit=SEAT_REQUESTS_PER_EMAIL, window_seconds=HOUR
        )
        or not form.check_deliverable()
    ):
        return render(request, "subscriptions/team_join.html", context, status=400)
    team_actions.do_request_seat(
        team, email=email, name=form.cleaned_data["name"], time_zone=form.cleaned_data["time_zone"]
    )
    return render(
        request,
        "subscriptions/team_seat_sent.html",
        {"team": team, "minutes": signin.link_minutes()},
    )


@no_referrer
def seat_link(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed seat link: its token into the session, and on to the page without it."""
    if teams.read_seat_token(token) is None:
        return render(request, "subscriptions/team_link_invalid.html", status=400)
    request.session[SEAT_TOKEN_KEY] = token
    return redirect("subscriptions:team-seat")


@require_http_methods(["GET", "POST"])
def seat(request: HttpRequest) -> HttpResponse:
    """GET shows the button (and, for a reader who pays, the offer to move); POST takes the seat."""
    claim = teams.read_seat_token(request.session.get(SEAT_TOKEN_KEY, ""))
    if claim is None:
        return render(request, "subscriptions/team_link_invalid.html", status=400)
    team = Team.objects.filter(pk=claim["t"]).first()
    if team is None:
        return render(request, "subscriptions/team_link_invalid.html", status=404)
    email = str(claim["e"])
    existing = Subscriber.objects.filter(email__iexact=email).first()
    pays = existing is not None and team_actions.has_own_live_plan(existing)
    error = ""
    if request.method == "POST":
        try:
            taken = team_actions.do_claim_seat(
                team.pk,
                str(claim["s"]),
                email=email,
                name=str(claim["n"]),
                time_zone=str(claim["z"]),
                move_own_plan=request.POST.get("move_own_plan") == "on",
            )
        except team_actions.TeamError as refusal:
            error = str(refusal)
        else:
            request.session.pop(SEAT_TOKEN_KEY, None)
            sign_in(request, taken.subscriber)
            messages.success(
                request,
                f"You have a seat on {team.name}'s subscription: your briefing comes each "
                "weekday morning, at the time and in the zone you choose below.",
            )
            return _see_other("subscriptions:account")
    return render(
        request,
        "subscriptions/team_seat_confirm.html",
        {"team": team, "email": email, "pays": pays, "error": error},
        status=409 if error else 200,
    )
