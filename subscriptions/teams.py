"""Team subscriptions: the seats' price, the links, and who is on which team.

A team is bought by a reader (its manager) at Stripe Checkout, N seats of
the per-seat yearly price (TEAM_PRICE_LOOKUP_KEY: the individual plan's
$46, with Stripe's volume tiers: TEAM_VOLUME_DISCOUNT_PERCENT off every
seat from TEAM_VOLUME_DISCOUNT_FROM_SEATS). Its manager's page is reached by
a signed link (emailed, and on their account page); readers claim a seat by
the team's invite link with their own address. The writes are in
subscriptions.actions.teams.
"""

import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.urls import reverse

from subscriptions.models import Subscriber
from subscriptions.stripe_api import PRICE_CENTS
from subscriptions.team_models import Team, TeamSeat

MANAGER_SALT = "subscriptions.team-manager-link"
INVITE_SALT = "subscriptions.team-invite-link"
SEAT_SALT = "subscriptions.team-seat-link"


def seat_price(seats: int) -> int:
    """What one seat costs a year, in cents, for a team of `seats` (the volume tier)."""
    if seats >= settings.TEAM_VOLUME_DISCOUNT_FROM_SEATS:
        return PRICE_CENTS * (100 - settings.TEAM_VOLUME_DISCOUNT_PERCENT) // 100
    return PRICE_CENTS


def yearly_price(seats: int) -> int:
    return seats * seat_price(seats)


def price_tiers() -> list[dict[str, int | str]]:
    """The team price's volume tiers, as Stripe's API takes them (setup_stripe)."""
    start = settings.TEAM_VOLUME_DISCOUNT_FROM_SEATS
    return [
        {"up_to": start - 1, "unit_amount": PRICE_CENTS},
        {"up_to": "inf", "unit_amount": seat_price(start)},
    ]


# --- Links ---------------------------------------------------------------------------


def manager_token(team: Team) -> str:
    return signing.Signer(salt=MANAGER_SALT).sign(str(team.pk))


def team_for_manager_token(token: str) -> Team | None:
    try:
        team_id = signing.Signer(salt=MANAGER_SALT).unsign(token)
    except signing.BadSignature:
        return None
    return Team.objects.filter(pk=int(team_id)).first() if team_id.isdigit() else None


def manager_url(team: Team) -> str:
    path = reverse("subscriptions:team-manage", args=[manager_token(team)])
    return f"{settings.SITE_URL}{path}"


def invite_token(team: Team) -> str:
    """The team's invite link's token: its id and its current secret, signed."""
    return signing.Signer(salt=INVITE_SALT).sign_object({"t": team.pk, "s": team.invite_secret})


def team_for_invite_token(token: str) -> Team | None:
    """The team whose current invite link this is; None if forged or replaced since."""
    try:
        data = signing.Signer(salt=INVITE_SALT).unsign_object(token)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("t"), int):
        return None
    return Team.objects.filter(pk=data["t"], invite_secret=data.get("s")).first()


def invite_url(team: Team) -> str:
    return f"{settings.SITE_URL}{reverse('subscriptions:team-join', args=[invite_token(team)])}"


def seat_link_max_age() -> datetime.timedelta:
    return datetime.timedelta(minutes=settings.SIGN_IN_LINK_MINUTES)


def seat_url(team: Team, email: str, name: str, time_zone: str) -> str:
    """The emailed link that proves `email` is its claimant's (it claims the seat once pressed)."""
    data = {"t": team.pk, "s": team.invite_secret, "e": email, "n": name, "z": time_zone}
    token = signing.TimestampSigner(salt=SEAT_SALT).sign_object(data, compress=True)
    return f"{settings.SITE_URL}{reverse('subscriptions:team-seat-link', args=[token])}"


def read_seat_token(token: str) -> dict[str, str | int] | None:
    try:
        data = signing.TimestampSigner(salt=SEAT_SALT).unsign_object(
            token, max_age=seat_link_max_age()
        )
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("t"), int):
        return None
    if not all(isinstance(data.get(key), str) for key in "senz"):
        return None
    return data


# --- Seats ---------------------------------------------------------------------------


def taken(team: Team) -> int:
    """Seats held now (a removed member's seat is free at once; their access runs out)."""
    return TeamSeat.objects.filter(team=team, removed_at__isnull=True).count()


def members(team: Team) -> list[TeamSeat]:
    return list(
        TeamSeat.objects.filter(team=team, removed_at__isnull=True).select_related("subscriber")
    )


def current_seat(subscriber: Subscriber) -> TeamSeat | None:
    return (
        TeamSeat.objects.filter(subscriber=subscriber, removed_at__isnull=True)
        .select_related("team")
        .first()
    )


def end_of_day(subscriber: Subscriber, now: datetime.datetime) -> datetime.datetime:
    """The next midnight where the reader lives: a removed member reads until then."""
    zone = ZoneInfo(subscriber.time_zone or settings.DIGEST_TIMEZONE)
    local = now.astimezone(zone)
    midnight = datetime.datetime.combine(
        local.date() + datetime.timedelta(days=1), datetime.time(), tzinfo=zone
    )
    return midnight.astimezone(datetime.UTC)


def is_team_customer(customer_id: str | None) -> bool:
    return bool(customer_id) and Team.objects.filter(stripe_customer_id=customer_id).exists()
