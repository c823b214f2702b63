"""The local test checkout and portal pages (DEBUG and no Stripe key only)."""

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from demo_checkout import local_stripe
from subscriptions import stripe_api
from subscriptions.sessions import current_subscriber


def _see_other(url: str) -> HttpResponse:
    response = redirect(url)
    response.status_code = 303  # after a POST, the browser GETs the next page
    return response


def _local_only() -> None:
    if not stripe_api.uses_local_checkout():
        raise Http404("The local test checkout exists only in the keyless demo.")


def checkout(request: HttpRequest, session_id: str) -> HttpResponse:
    _local_only()
    try:
        session = local_stripe.retrieve_checkout_session(session_id)
    except stripe_api.InvalidRequestError:
        raise Http404("No such test checkout.") from None
    if request.method == "POST":
        if request.POST.get("action") == "cancel":
            return _see_other(session.cancel_url or "/")
        url = local_stripe.complete_checkout(
            session_id, with_card=request.POST.get("card") != "none"
        )
        return _see_other(url)
    # Kept by the local checkout only (real sessions do not echo it back);
    # a StripeObject, not a dict: a missing field is an AttributeError.
    subscription_data = getattr(session, "subscription_data", None)
    trial_days = getattr(subscription_data, "trial_period_days", None) or 0
    return render(
        request,
        "demo_checkout/checkout.html",
        {
            "session": session,
            "trial_days": trial_days,
            "card_optional": session.payment_method_collection == "if_required",
            "gift": session.mode == "payment",
            "amount": f"${(session.amount_total or stripe_api.PRICE_CENTS) / 100:,.2f}"
            if session.amount_total != stripe_api.PRICE_CENTS
            else f"${stripe_api.PRICE_CENTS // 100}",
        },
    )


def portal(request: HttpRequest) -> HttpResponse:
    _local_only()  # first: with Stripe keys this page does not exist, signed in or not
    subscriber = current_subscriber(request)
    if subscriber is None:
        return redirect("subscriptions:sign-in")
    membership = getattr(subscriber, "membership", None)
    if membership is None or not membership.stripe_customer_id:
        raise Http404("No billing account.")
    if request.method == "POST":
        try:
            local_stripe.portal_action(
                membership.stripe_customer_id, request.POST.get("action", "")
            )
        except ValueError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, "Done: the test Stripe sent its webhook events.")
        return _see_other("demo_checkout:portal")
    return render(
        request,
        "demo_checkout/portal.html",
        {
            "membership": membership,
            "actions": local_stripe.PORTAL_ACTIONS,
            "site_url": settings.SITE_URL,
        },
    )
