"""Reader pages: signup, checkout return, sign-in, account, and the Stripe webhook.

Thin: parse the request, call one function in subscriptions.actions (or webhooks), answer.
"""

import functools
import logging
from collections.abc import Callable

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from subscriptions import ratelimit, signin, stripe_api, webhooks
from subscriptions.actions.account import (
    do_record_sign_in,
    do_set_email_status,
    do_set_time_zone,
    do_sign_in_requested,
    portal_url,
)
from subscriptions.actions.checkout import do_fulfil_checkout, do_start_checkout
from subscriptions.actions.reader_data import do_delete_reader, export_reader
from subscriptions.emails import dollars, first_digest_at
from subscriptions.forms import SignInForm, SignupForm, TimeZoneForm
from subscriptions.models import Subscriber
from subscriptions.sessions import current_subscriber, sign_in, sign_out

logger = logging.getLogger(__name__)

HOUR = 3600
SIGNUP_LIMIT_PER_IP = 20
SIGNUP_LIMIT_PER_EMAIL = 5
SIGN_IN_LIMIT_PER_IP = 20
SIGN_IN_LIMIT_PER_EMAIL = 5
CHECKOUT_SESSION_KEY = "checkout_session_id"


def _too_many(request: HttpRequest) -> HttpResponse:
    return render(request, "subscriptions/rate_limited.html", status=429)


def _see_other(url: str) -> HttpResponse:
    response = redirect(url)
    response.status_code = 303  # after a POST, the browser GETs the next page
    return response


def subscribe(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return redirect("/#signup")
    if not ratelimit.allow(
        "subscribe-ip", ratelimit.client_ip(request), limit=SIGNUP_LIMIT_PER_IP, window_seconds=HOUR
    ):
        return _too_many(request)
    form = SignupForm(request.POST)
    if not form.is_valid():
        return render(request, "subscriptions/signup.html", {"form": form}, status=400)
    email = form.cleaned_data["email"]
    if not ratelimit.allow(
        "subscribe-email", email, limit=SIGNUP_LIMIT_PER_EMAIL, window_seconds=HOUR
    ):
        return _too_many(request)
    try:
        result = do_start_checkout(
            email=email, name=form.cleaned_data["name"], time_zone=form.cleaned_data["time_zone"]
        )
    except stripe_api.BillingUnavailable as error:
        logger.error("Signup refused: billing is not configured (%s)", error)
        return render(request, "subscriptions/unavailable.html", status=503)
    except stripe_api.StripeError as error:
        # The reader is saved; they can simply try again.
        logger.error("Signup could not reach Stripe: %s", error)
        return render(request, "subscriptions/unavailable.html", {"retry": True}, status=502)
    if result.already_member:
        # The same page whoever owns the address; the link goes to its owner.
        return render(request, "subscriptions/sign_in_sent.html", {"already_member": True})
    if result.signs_in:
        request.session[CHECKOUT_SESSION_KEY] = result.checkout_session_id
    return _see_other(result.checkout_url or "subscriptions:account")


@require_GET
def checkout_success(request: HttpRequest) -> HttpResponse:
    session_id = request.GET.get("session_id", "")
    if not session_id.startswith("cs_"):
        raise Http404("No checkout session.")
    try:
        subscriber = do_fulfil_checkout(session_id)
    except stripe_api.InvalidRequestError:
        raise Http404("No such checkout session.") from None
    if subscriber is None:
        return render(request, "subscriptions/checkout_pending.html")
    # Only the browser that started this checkout is signed in by it (the
    # success URL alone, in a history or a log, must not open the account),
    # and only for a new reader: a returning one signs in by emailed link.
    signed_in = request.session.get(CHECKOUT_SESSION_KEY) == session_id
    if signed_in:
        del request.session[CHECKOUT_SESSION_KEY]
        sign_in(request, subscriber)
    return render(
        request,
        "subscriptions/checkout_success.html",
        {
            "subscriber": subscriber,
            "first_digest": first_digest_at(subscriber),
            "signed_in": signed_in,
        },
    )


def sign_in_request(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None)
    if request.method != "POST" or not form.is_valid():
        return render(request, "subscriptions/sign_in.html", {"form": form})
    if not ratelimit.allow(
        "sign-in-ip", ratelimit.client_ip(request), limit=SIGN_IN_LIMIT_PER_IP, window_seconds=HOUR
    ):
        return _too_many(request)
    email = form.cleaned_data["email"]
    # Over the per-address limit the answer is the same page, without a mail:
    # a different page would tell that the address gets mail from us.
    if ratelimit.allow("sign-in-email", email, limit=SIGN_IN_LIMIT_PER_EMAIL, window_seconds=HOUR):
        do_sign_in_requested(email)
    return render(request, "subscriptions/sign_in_sent.html")


def sign_in_confirm(request: HttpRequest, token: str) -> HttpResponse:
    claim = signin.read_token(token)
    if claim is None:
        return render(request, "subscriptions/sign_in_invalid.html", status=400)
    if request.method != "POST":
        # Mail scanners open links; only a person presses the button.
        return render(request, "subscriptions/sign_in_confirm.html")
    subscriber = do_record_sign_in(claim.subscriber_id, claim.last_signed_in_at)
    if subscriber is None:
        return render(request, "subscriptions/sign_in_invalid.html", status=400)
    sign_in(request, subscriber)
    return _see_other("subscriptions:account")


@require_POST
def sign_out_view(request: HttpRequest) -> HttpResponse:
    sign_out(request)
    return _see_other("home")


def reader_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For signed-in readers: the view gets the reader; anyone else goes to sign in."""

    @functools.wraps(view)
    def for_reader(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        subscriber = current_subscriber(request)
        if subscriber is None:
            return redirect("subscriptions:sign-in")
        return view(request, subscriber, *args, **kwargs)

    return for_reader


@require_GET
@reader_view
def account(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    membership = getattr(subscriber, "membership", None)
    return render(
        request,
        "subscriptions/account.html",
        {
            "subscriber": subscriber,
            "membership": membership,
            "entitled": subscriber.is_entitled,
            "member": bool(membership and membership.is_entitled),
            "amount": dollars(membership.amount if membership else None),
            "can_manage_billing": bool(membership and membership.stripe_customer_id),
            "time_zone_form": TimeZoneForm(initial={"time_zone": subscriber.time_zone}),
            "local_checkout": stripe_api.uses_local_checkout(),
        },
    )


@require_POST
@reader_view
def account_billing(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    membership = getattr(subscriber, "membership", None)
    if membership is None or not membership.stripe_customer_id:
        messages.error(request, "There is no billing account to manage yet.")
        return _see_other("subscriptions:account")
    try:
        url = portal_url(subscriber)
    except (stripe_api.StripeError, stripe_api.BillingUnavailable) as error:
        logger.error("Customer Portal for subscriber %s failed: %s", subscriber.pk, error)
        messages.error(request, "Billing is unavailable right now; please try again shortly.")
        return _see_other("subscriptions:account")
    return _see_other(url)


@require_POST
@reader_view
def account_email(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    action = request.POST.get("action")
    if action == "unsubscribe":
        do_set_email_status(subscriber, Subscriber.EmailStatus.UNSUBSCRIBED)
        messages.success(request, "You are unsubscribed: no more morning emails.")
    elif action == "resubscribe":
        if do_set_email_status(subscriber, Subscriber.EmailStatus.ACTIVE):
            messages.success(request, "Welcome back: the briefing will be in your inbox again.")
        else:
            messages.error(request, "We can't resume emails to this address from here.")
    else:
        messages.error(request, "Unknown choice.")
    return _see_other("subscriptions:account")


@require_POST
@reader_view
def account_time_zone(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    form = TimeZoneForm(request.POST)
    if form.is_valid():
        do_set_time_zone(subscriber, form.cleaned_data["time_zone"])
        messages.success(request, f"Time zone set to {form.cleaned_data['time_zone']}.")
    else:
        messages.error(request, " ".join(str(error) for error in form.errors["time_zone"]))
    return _see_other("subscriptions:account")


@require_GET
@reader_view
def account_data(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    return render(request, "subscriptions/account_data.html", {"subscriber": subscriber})


@require_POST
@reader_view
def account_data_export(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    response = JsonResponse(export_reader(subscriber), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = 'attachment; filename="morning-briefing-my-data.json"'
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@reader_view
def account_data_delete(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    if request.POST.get("confirm") != "delete":
        messages.error(request, "Tick the box to confirm that you want everything deleted.")
        return _see_other("subscriptions:account-data")
    try:
        do_delete_reader(subscriber)
    except (stripe_api.StripeError, stripe_api.BillingUnavailable) as error:
        logger.error("Deleting subscriber %s: billing unreachable: %s", subscriber.pk, error)
        messages.error(
            request,
            "We could not stop your billing just now, so nothing was deleted. "
            "Please try again shortly.",
        )
        return _see_other("subscriptions:account-data")
    sign_out(request)
    return render(request, "subscriptions/account_deleted.html")


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    outcome = webhooks.receive(request.body, request.headers.get("Stripe-Signature"))
    return HttpResponse(outcome.message, status=outcome.status_code, content_type="text/plain")
