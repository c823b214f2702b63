"""Team subscriptions: bought at Checkout, mirrored from Stripe, seats claimed and freed.

The team's row is the lock: a seat is claimed, a member removed and the
seats changed under it, so two readers racing for the last seat get one
seat and one "no seat left". Stripe is the source of truth for the team's
status and its number of seats (the subscription's quantity), re-fetched
inside that lock whatever order its events come in, as for readers.
"""

import datetime
import logging
from dataclasses import dataclass

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from stripe.params.checkout import SessionCreateParams as CheckoutSessionParams

from subscriptions import side_effects, stripe_api, teams
from subscriptions.actions.checkout import apply_tax_settings
from subscriptions.actions.stripe_sync import int_or_none
from subscriptions.models import Membership, Subscriber
from subscriptions.team_models import Team, TeamSeat, new_invite_secret

logger = logging.getLogger(__name__)

Status = Team.Status


class TeamError(Exception):
    """What a reader or a manager is told, as the message."""


class NoSeatLeft(TeamError):
    pass


class OwnPlanToMove(TeamError):
    """The reader pays for themselves: they must agree to move onto the seat first."""


def check_seats(seats: int) -> None:
    if not settings.TEAM_MIN_SEATS <= seats <= settings.TEAM_MAX_SEATS:
        raise TeamError(f"A team has {settings.TEAM_MIN_SEATS} to {settings.TEAM_MAX_SEATS} seats.")


def team_is_entitled(team: Team, now: datetime.datetime | None = None) -> bool:
    """The team's subscription gives its seats the digest (entitled_seat_q's rule)."""
    now = now or timezone.now()
    if team.status in (Status.TRIALING, Status.ACTIVE):
        return True
    grace = datetime.timedelta(days=settings.PAST_DUE_GRACE_DAYS)
    return (
        team.status == Status.PAST_DUE
        and team.past_due_since is not None
        and team.past_due_since > now - grace
    )


# --- Buying --------------------------------------------------------------------------


@dataclass
class TeamCheckout:
    team: Team
    checkout_url: str


def do_start_team_checkout(manager: Subscriber, *, name: str, seats: int) -> TeamCheckout:
    """A signed-in reader buys a team: the team, its own Stripe customer, a Checkout Session.

    The team and its customer are written in one transaction; the Checkout
    Session is created after it commits (its idempotency key makes a retry
    safe), so a slow Stripe holds no lock.
    """
    check_seats(seats)
    with transaction.atomic():
        team = Team.objects.create(name=name, manager=manager, seats_requested=seats)
        team.stripe_customer_id = stripe_api.create_team_customer(
            email=manager.email, name=name, team_id=team.pk
        )
        team.save(update_fields=["stripe_customer_id"])
    session = stripe_api.create_checkout_session(
        team_checkout_params(team, seats),
        key=stripe_api.idempotency_key(
            "team-checkout", team.pk, seats, stripe_api.team_price_id(), settings.SITE_URL
        ),
    )
    logger.info("Team checkout %s started for team %s (%s seats)", session.id, team.pk, seats)
    return TeamCheckout(team=team, checkout_url=session.url or teams.manager_url(team))


def team_checkout_params(team: Team, seats: int) -> CheckoutSessionParams:
    assert team.stripe_customer_id is not None
    metadata = {"team_id": str(team.pk)}
    params: CheckoutSessionParams = {
        "mode": "subscription",
        "customer": team.stripe_customer_id,
        "client_reference_id": f"team-{team.pk}",
        "line_items": [{"price": stripe_api.team_price_id(), "quantity": seats}],
        "subscription_data": {"metadata": metadata},
        "metadata": metadata,
        "success_url": f"{teams.manager_url(team)}?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{settings.SITE_URL}/teams/?checkout=cancelled",
    }
    # Invoices and tax as the individual plan's.
    apply_tax_settings(params, has_customer=True)
    if settings.ALLOW_PROMOTION_CODES:
        params["allow_promotion_codes"] = True
    return params


# --- Mirroring Stripe ------------------------------------------------------------------


def _find_team(
    subscription_id: str | None, customer_id: str | None, team_id: int | None
) -> Team | None:
    locked = Team.objects.select_for_update()
    for lookup in (
        {"stripe_subscription_id": subscription_id},
        {"stripe_customer_id": customer_id},
        {"pk": team_id},
    ):
        value = next(iter(lookup.values()))
        if value is not None:
            team = locked.filter(**lookup).first()
            if team is not None:
                return team
    return None


@transaction.atomic
def do_sync_team(
    subscription_id: str, *, customer_id: str | None = None, team_id: int | None = None
) -> Team | None:
    """Fetch the team's subscription inside a lock on the team and mirror it; None if no team's."""
    team = _find_team(subscription_id, customer_id, team_id)
    subscription = stripe_api.retrieve_subscription(subscription_id)
    if team is None:
        metadata = getattr(subscription, "metadata", None)
        owner = int_or_none(metadata["team_id"] if metadata and "team_id" in metadata else None)
        team = _find_team(None, stripe_api.expandable_id(subscription.customer), owner)
    if team is None:
        return None
    apply_team_subscription(team, subscription)
    return team


def apply_team_subscription(team: Team, subscription: stripe.Subscription) -> bool:
    """Write a subscription fetched from Stripe onto a locked team (as apply_subscription)."""
    incoming = subscription.status
    if team.stripe_subscription_id and team.stripe_subscription_id != subscription.id:
        logger.warning(
            "Subscription %s ignored: team %s follows %s",
            subscription.id,
            team.pk,
            team.stripe_subscription_id,
        )
        return False
    if team.status in Team.TERMINAL_STATUSES and incoming not in Team.TERMINAL_STATUSES:
        logger.warning("Team %s's subscription is %s; not revived", team.pk, team.status)
        return False
    now = timezone.now()
    previous = team.status
    team.stripe_subscription_id = subscription.id
    team.stripe_customer_id = stripe_api.expandable_id(subscription.customer)
    team.status = incoming
    team.seats = stripe_api.subscription_quantity(subscription)
    team.amount = teams.yearly_price(team.seats)
    team.current_period_end = stripe_api.from_timestamp(
        stripe_api.subscription_period_end(subscription)
    )
    team.cancel_at_period_end = bool(subscription.cancel_at_period_end or subscription.cancel_at)
    team.ended_at = stripe_api.from_timestamp(getattr(subscription, "ended_at", None))
    if incoming != Status.PAST_DUE:
        team.past_due_since = None
    elif previous != Status.PAST_DUE or team.past_due_since is None:
        team.past_due_since = now
    team.stripe_synced_at = now
    team.save()
    if previous != incoming:
        logger.info("Team %s: %s -> %s (%s)", team.pk, previous, incoming, subscription.id)
    return True


@transaction.atomic
def do_fulfil_team_checkout(session_id: str) -> Team | None:
    """A completed team Checkout Session (the manager's return and the webhook both call it)."""
    session = stripe_api.retrieve_checkout_session(session_id)
    if session.mode != "subscription" or session.status != "complete":
        return None
    subscription_id = stripe_api.expandable_id(session.subscription)
    metadata = getattr(session, "metadata", None)
    team_id = int_or_none(metadata["team_id"] if metadata and "team_id" in metadata else None)
    if subscription_id is None or team_id is None:
        return None
    return do_sync_team(
        subscription_id, customer_id=stripe_api.expandable_id(session.customer), team_id=team_id
    )


# --- Seats ---------------------------------------------------------------------------


def queue_seat_link(team: Team, email: str, name: str, time_zone: str) -> None:
    """Email the address a link that claims the seat once its owner presses its button."""
    transaction.on_commit(
        lambda: side_effects.send_team_seat_link.delay(team.pk, email, name, time_zone)
    )


@transaction.atomic
def do_request_seat(team: Team, *, email: str, name: str, time_zone: str) -> None:
    queue_seat_link(team, email, name, time_zone)


def has_own_live_plan(subscriber: Subscriber) -> bool:
    """The reader pays (or will pay) for themselves: a live subscription of their own."""
    membership = Membership.objects.filter(subscriber=subscriber).first()
    return (
        membership is not None
        and membership.has_live_subscription
        and membership.status
        in (Membership.Status.TRIALING, Membership.Status.ACTIVE, Membership.Status.PAST_DUE)
        and not membership.cancel_at_period_end
    )


@transaction.atomic
def do_claim_seat(
    team_id: int,
    secret: str,
    *,
    email: str,
    name: str,
    time_zone: str,
    move_own_plan: bool = False,
    now: datetime.datetime | None = None,
) -> TeamSeat:
    """The owner of `email` (they opened its emailed link) takes a seat of the team.

    Under the team's lock: the invite link must still be the team's, the
    team's subscription entitled, and a seat free. A reader who pays for
    themselves must agree to move (OwnPlanToMove otherwise); their own plan
    is then cancelled at Stripe after commit, its unused part credited
    (prorated). Claiming again returns the same seat.
    """
    now = now or timezone.now()
    team = Team.objects.select_for_update().get(pk=team_id)
    if team.invite_secret != secret:
        raise TeamError("This invite link was replaced by the team's manager: ask for the new one.")
    if not team_is_entitled(team, now):
        raise TeamError("This team's subscription is not active, so its seats cannot be taken.")
    subscriber = Subscriber.objects.select_for_update().filter(email__iexact=email).first()
    if subscriber is not None:
        seat = TeamSeat.objects.filter(subscriber=subscriber, removed_at__isnull=True).first()
        if seat is not None:
            if seat.team_id == team.pk:
                return seat
            raise TeamError("This address already has a seat on another team.")
    if teams.taken(team) >= team.seats:
        raise NoSeatLeft("Every seat of this team is taken: ask its manager to add one.")
    if subscriber is not None and has_own_live_plan(subscriber):
        if not move_own_plan:
            raise OwnPlanToMove(
                "You pay for your own membership: moving onto the team's seat cancels it, "
                "and the unused part is credited to you."
            )
        subscription_id = subscriber.membership.stripe_subscription_id
        assert subscription_id is not None
        transaction.on_commit(lambda: side_effects.cancel_own_plan_prorated.delay(subscription_id))
    if subscriber is None:
        subscriber = Subscriber.objects.create(email=email, name=name, time_zone=time_zone)
    seat = TeamSeat.objects.create(team=team, subscriber=subscriber, claimed_at=now)
    # The emailed link proved the address, as a sign-in link does.
    subscriber.last_signed_in_at = now
    subscriber.save(update_fields=["last_signed_in_at", "updated_at"])
    logger.info("Team %s: seat %s claimed by reader %s", team.pk, seat.pk, subscriber.pk)
    return seat


@transaction.atomic
def do_remove_member(team: Team, seat_id: int, now: datetime.datetime | None = None) -> TeamSeat:
    """The manager frees a seat: the member keeps the digest until the end of their day.

    Then they fall back to their own membership, if any, or to a trial
    offer, which an email tells them (after commit, once).
    """
    now = now or timezone.now()
    Team.objects.select_for_update().get(pk=team.pk)
    seat = (
        TeamSeat.objects.select_for_update()
        .select_related("subscriber")
        .get(pk=seat_id, team=team, removed_at__isnull=True)
    )
    seat.removed_at = now
    seat.access_until = teams.end_of_day(seat.subscriber, now)
    seat.save(update_fields=["removed_at", "access_until"])
    transaction.on_commit(lambda: side_effects.send_team_seat_ended.delay(seat.pk))
    return seat


@transaction.atomic
def do_change_seats(team: Team, seats: int) -> Team:
    """More seats now (invoiced prorated), or fewer from the renewal (never below those taken).

    Written at Stripe (the subscription's quantity) inside the team's lock,
    and Stripe's answer mirrored: the seats are what Stripe says.
    """
    check_seats(seats)
    team = Team.objects.select_for_update().get(pk=team.pk)
    if team.stripe_subscription_id is None or not team_is_entitled(team):
        raise TeamError("The team's subscription is not active.")
    held = teams.taken(team)
    if seats < held:
        raise TeamError(f"{held} seats are taken: remove members first to go below that.")
    if seats == team.seats:
        return team
    subscription = stripe_api.set_subscription_quantity(
        team.stripe_subscription_id, seats, prorate=seats > team.seats
    )
    apply_team_subscription(team, subscription)
    return team


@transaction.atomic
def do_new_invite_link(team: Team) -> Team:
    """A new invite secret: every invite link (and seat link) sent before stops working."""
    team = Team.objects.select_for_update().get(pk=team.pk)
    team.invite_secret = new_invite_secret()
    team.save(update_fields=["invite_secret"])
    return team


# --- Reconciliation (the hourly subscriptions.tasks.reconcile_memberships) -----------

RECONCILE_TEAMS_LIMIT = 200


def teams_to_reconcile() -> list[int]:
    """Teams whose subscription may have changed without an event reaching us.

    Every team with a subscription that has not ended, least recently
    checked first: teams are few, and a lost event would leave every seat
    of a lapsed team reading (or of a renewed one not).
    """
    teams_with_subscription = Team.objects.exclude(stripe_subscription_id=None).exclude(
        status__in=Team.TERMINAL_STATUSES
    )
    return list(
        teams_with_subscription.order_by("stripe_synced_at", "pk").values_list("pk", flat=True)[
            :RECONCILE_TEAMS_LIMIT
        ]
    )


def do_reconcile_team(team_id: int) -> Team | None:
    team = Team.objects.filter(pk=team_id).first()
    if team is None or team.stripe_subscription_id is None:
        return None
    return do_sync_team(team.stripe_subscription_id, team_id=team.pk)
