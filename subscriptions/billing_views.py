"""Billing pages behind signed email links, and the account's billing panel actions.

Thin, as subscriptions.views: parse, call one action, answer. Kept apart
from the account's own views so the billing lifecycle (renewal, win-back,
pause) reads in one place.
"""

import logging

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from subscriptions import billing_links, stripe_api
from subscriptions.actions.checkout import do_start_checkout
from subscriptions.actions.lifecycle import (
    CannotPause,
    NothingToCancel,
    do_pause_billing,
    do_resume_billing,
    do_set_cancel_at_period_end,
)
from subscriptions.headers import no_referrer
from subscriptions.models import Membership, Subscriber
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
