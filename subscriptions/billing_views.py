"""Billing pages behind signed email links, and the account's billing panel actions.

Thin, as subscriptions.views: parse, call one action, answer. Kept apart
from the account's own views so the billing lifecycle (renewal, win-back,
pause) reads in one place.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from subscriptions import billing_links, gifts, ratelimit, stripe_api
from subscriptions.actions.checkout import do_start_checkout
from subscriptions.actions.gifts import (
    GiftProblem,
    do_fulfil_gift,
    do_redeem_gift,
    do_start_gift,
    newsroom_today,
)
from subscriptions.actions.lifecycle import (
    CannotPause,
    NothingToCancel,
    do_pause_billing,
    do_resume_billing,
    do_set_cancel_at_period_end,
)
from subscriptions.emails import dollars
from subscriptions.gift_forms import GiftForm, RedeemGiftForm
from subscriptions.headers import no_referrer
from subscriptions.models import Membership, Subscriber
from subscriptions.sessions import sign_in
from subscriptions.views import CHECKOUT_SESSION_KEY, reader_view

logger = logging.getLogger(__name__)

BILLING_TROUBLE = "We couldn't reach our payment provider, so nothing changed. Please try again."


def _see_other(url: str) -> HttpResponse:
    response = redirect(url)
    response.status_code = 303
    return response


def _invalid(request: HttpRequest) -> HttpResponse:
    return render(request, "subscriptions/billing_link_invalid.html", status=400)


def _set_renewal(request: HttpRequest, subscriber: Subscriber) -> Membership | None:
    """Apply the posted choice (cancel or keep); a message says what happened."""
    choice = request.POST.get("renewal")
    if choice not in ("cancel", "keep"):
        messages.error(request, "Unknown choice.")
        return None
    try:
        membership = do_set_cancel_at_period_end(subscriber, cancel=choice == "cancel")
    except NothingToCancel as error:
        messages.error(request, str(error))
        return None
    except (stripe_api.StripeError, stripe_api.BillingUnavailable) as error:
        logger.error("Renewal change for subscriber %s failed: %s", subscriber.pk, error)
        messages.error(request, BILLING_TROUBLE)
        return None
    if membership.cancel_at_period_end:
        messages.success(
            request,
            "Your renewal is cancelled: nothing more will be charged, and the briefing "
            "continues until the end of your paid period.",
        )
    else:
        messages.success(request, "Your membership will renew as before.")
    return membership


# The renewal link's token moves into the session and the browser goes on
# to the page without it, as sign-in links do (subscriptions.views): the page
# with the button has no secret in its address, and its form passes CSRF.
RENEWAL_TOKEN_KEY = "pending_renewal_token"  # noqa: S105 - a session key, not a secret


@no_referrer
@require_GET
def renewal_link(request: HttpRequest, token: str) -> HttpResponse:
    """/billing/renewal/<token>/, from the renewal notice: on to the page without the token."""
    if billing_links.RENEWAL_TOKENS.subscriber(token) is None:
        return _invalid(request)
    request.session[RENEWAL_TOKEN_KEY] = token
    return redirect("subscriptions:billing-renewal-page")


@require_http_methods(["GET", "POST"])
def renewal(request: HttpRequest) -> HttpResponse:
    """/billing/renewal/: the renewal, and one button to cancel it (or keep it)."""
    subscriber = billing_links.RENEWAL_TOKENS.subscriber(request.session.get(RENEWAL_TOKEN_KEY, ""))
    if subscriber is None:
        return _invalid(request)
    if request.method == "POST":
        _set_renewal(request, subscriber)
        return _see_other("subscriptions:billing-renewal-page")
    return render(
        request,
        "subscriptions/billing_renewal.html",
        {"subscriber": subscriber, "membership": getattr(subscriber, "membership", None)},
    )


@require_POST
@reader_view
def account_renewal(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """The account page's "Cancel my renewal" / "Keep my membership"."""
    _set_renewal(request, subscriber)
    return _see_other("subscriptions:account")


@require_POST
@reader_view
def account_pause(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """The account page's "Pause billing and the briefing" (1 to 3 months), or "Resume now"."""
    try:
        if request.POST.get("action") == "resume":
            do_resume_billing(subscriber)
            messages.success(request, "Welcome back: billing and the briefing have resumed.")
        else:
            months = request.POST.get("months", "")
            do_pause_billing(subscriber, int(months) if months.isdigit() else 0)
            messages.success(
                request,
                f"Paused for {months} month{'s' if months != '1' else ''}: no briefing and no "
                "charge until then; both resume by themselves.",
            )
    except CannotPause as error:
        messages.error(request, str(error))
    except (stripe_api.StripeError, stripe_api.BillingUnavailable) as error:
        logger.error("Pause change for subscriber %s failed: %s", subscriber.pk, error)
        messages.error(request, BILLING_TROUBLE)
    return _see_other("subscriptions:account")


@no_referrer
@require_GET
def rejoin(request: HttpRequest, token: str) -> HttpResponse:
    """/billing/rejoin/<token>/, from "membership ended" and win-back: straight to Checkout.

    One click: the link starts a Checkout Session without a free trial and
    sends the browser to it. A scanner that opens the link creates a session
    nobody pays (it expires at Stripe), nothing else; nobody is signed in.
    """
    subscriber = billing_links.REJOIN_TOKENS.subscriber(token)
    if subscriber is None:
        return _invalid(request)
    try:
        result = do_start_checkout(subscriber, allow_trial=False)
    except (stripe_api.StripeError, stripe_api.BillingUnavailable) as error:
        logger.error("Rejoin checkout for subscriber %s failed: %s", subscriber.pk, error)
        return render(request, "subscriptions/billing_unavailable.html", status=502)
    if result.already_member:
        return render(request, "subscriptions/billing_already_member.html")
    request.session[CHECKOUT_SESSION_KEY] = result.checkout_session_id
    return _see_other(result.checkout_url or "subscriptions:account")


# --- Gifts -------------------------------------------------------------------------------

GIFT_LIMIT_PER_IP = 10
GIFT_TOKEN_KEY = "pending_gift_token"  # noqa: S105 - a session key, not a secret
# The gift checkout this browser started: only its return asks Stripe.
GIFT_CHECKOUT_KEY = "gift_checkout_session_id"


@require_http_methods(["GET", "POST"])
def gift(request: HttpRequest) -> HttpResponse:
    """/gift/: a year for someone else, $46 once; then Stripe Checkout in payment mode."""
    today = newsroom_today(timezone.now())
    form = GiftForm(request.POST or None, today=today)
    if request.method == "POST" and form.is_valid():
        if not ratelimit.allow(
            "gift-ip", ratelimit.client_ip(request), limit=GIFT_LIMIT_PER_IP, window_seconds=3600
        ):
            return render(request, "subscriptions/rate_limited.html", status=429)
        try:
            url, session_id = do_start_gift(
                buyer_email=form.cleaned_data["buyer_email"],
                buyer_name="",
                recipient_email=form.cleaned_data["recipient_email"],
                recipient_name="",
                deliver_on=form.cleaned_data["deliver_on"],
            )
        except (stripe_api.StripeError, stripe_api.BillingUnavailable) as error:
            logger.error("Gift checkout failed: %s", error)
            return render(request, "subscriptions/billing_unavailable.html", status=502)
        request.session[GIFT_CHECKOUT_KEY] = session_id
        return _see_other(url)
    return render(
        request,
        "subscriptions/gift.html",
        {
            "form": form,
            "amount": dollars(None),
            "newsroom_zone": settings.DIGEST_TIMEZONE,
            "cancelled": request.GET.get("checkout") == "cancelled",
        },
        status=400 if form.is_bound else 200,
    )


@no_referrer
@require_GET
def gift_thanks(request: HttpRequest) -> HttpResponse:
    """Where Checkout returns the buyer; the webhook records the payment either way.

    Stripe is asked only for the checkout this browser started (a session id
    in a URL, history or log costs nothing and shows nobody's details).
    """
    session_id = request.GET.get("session_id", "")
    gift_code = None
    if session_id.startswith("cs_") and request.session.get(GIFT_CHECKOUT_KEY) == session_id:
        try:
            gift_code = do_fulfil_gift(session_id)
        except stripe_api.InvalidRequestError:
            gift_code = None
        except (stripe_api.StripeError, stripe_api.BillingUnavailable) as error:
            logger.error("Gift return could not reach Stripe: %s", error)
    # Names no one: the URL may be in a history or a log.
    return render(request, "subscriptions/gift_thanks.html", {"paid": gift_code is not None})


@no_referrer
@require_GET
def gift_redeem_link(request: HttpRequest, token: str) -> HttpResponse:
    """The recipient's link: its token into the session, on to the page with the button."""
    if gifts.gift_for_token(token) is None:
        return _invalid(request)
    request.session[GIFT_TOKEN_KEY] = token
    return redirect("subscriptions:gift-redeem")


@require_http_methods(["GET", "POST"])
def gift_redeem(request: HttpRequest) -> HttpResponse:
    """/gift/redeem/: "Start my year" (a mail scanner's GET uses nothing up)."""
    gift_code = gifts.gift_for_token(request.session.get(GIFT_TOKEN_KEY, ""))
    if gift_code is None:
        return _invalid(request)
    form = RedeemGiftForm(request.POST or None, initial={"time_zone": settings.DIGEST_TIMEZONE})
    problem = None
    if gift_code.redeemed_at is not None:
        problem = "This gift has already been used."
    elif request.method == "POST" and form.is_valid():
        try:
            subscriber = do_redeem_gift(
                gift_code.pk,
                name=form.cleaned_data["name"],
                time_zone=form.cleaned_data["time_zone"],
            )
        except GiftProblem as error:
            problem = str(error)
        else:
            request.session.pop(GIFT_TOKEN_KEY, None)
            sign_in(request, subscriber)
            messages.success(request, "Your gift year has started: the briefing is on its way.")
            return _see_other("subscriptions:account")
    return render(
        request,
        "subscriptions/gift_redeem.html",
        {"form": form, "gift": gift_code, "problem": problem},
        status=400 if problem or form.is_bound else 200,
    )
