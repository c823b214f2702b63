"""Reader pages: signup, checkout return, sign-in, account, and the Stripe webhook.

Thin: parse the request, call one function in subscriptions.actions (or webhooks), answer.
"""

import functools
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from subscriptions import preferences as preferences_tokens
from subscriptions import ratelimit, referrals, signin, stripe_api, trials, webhooks
from subscriptions.actions.account import (
    EmailChangeRefused,
    do_change_email,
    do_record_sign_in,
    do_request_email_change,
    do_set_email_status,
    do_set_preferences,
    do_sign_in_requested,
    do_sign_out_everywhere,
    portal_url,
)
from subscriptions.actions.checkout import (
    do_continue_signup,
    do_fulfil_checkout_for_page,
    do_request_signup,
    do_start_checkout,
)
from subscriptions.actions.reader_data import do_delete_reader, export_reader
from subscriptions.actions.referrals import do_record_referral
from subscriptions.addresses import display_email
from subscriptions.emails import dollars, first_digest_at, next_digest_summary
from subscriptions.forms import (
    ChangeEmailForm,
    ContinueSignupForm,
    PreferencesForm,
    SignInForm,
    SignupForm,
)
from subscriptions.headers import no_referrer, origin_only_referrer, personal
from subscriptions.models import Subscriber
from subscriptions.sessions import current_subscriber, sign_in, sign_out

logger = logging.getLogger(__name__)

HOUR = 3600
SIGNUP_LIMIT_PER_IP = 20
SIGNUP_LIMIT_PER_EMAIL = 5
SIGN_IN_LIMIT_PER_IP = 20
SIGN_IN_LIMIT_PER_EMAIL = 5
# The success page calls Stripe only for the browser that started the
# checkout, and at most this often from one address.
CHECKOUT_SUCCESS_LIMIT_PER_IP = 30
# The id of the Checkout Session this browser started (the success page's key).
CHECKOUT_SESSION_KEY = "checkout_session_id"
ALREADY_MEMBER = "You already have a membership: there is nothing to pay again."


def _too_many(request: HttpRequest) -> HttpResponse:
    return render(request, "subscriptions/rate_limited.html", status=429)


def _see_other(url: str) -> HttpResponse:
    response = redirect(url)
    response.status_code = 303  # after a POST, the browser GETs the next page
    return response


def subscribe(request: HttpRequest) -> HttpResponse:
    """The landing page's form: the same answer for every address, an email to its owner.

    A member and a stranger get the same page, and nothing is stored or sent
    to Stripe for either: what differs is in the email, which only the
    owner of the address reads (README, "Signing up").
    """
    if request.method != "POST":
        return redirect("/#signup")
    if not ratelimit.allow(
        "subscribe-ip", ratelimit.client_ip(request), limit=SIGNUP_LIMIT_PER_IP, window_seconds=HOUR
    ):
        return _too_many(request)
    form = SignupForm(request.POST)
    # The referral link the visitor came by (subscriptions.referral_views):
    # kept only if it is genuine; a forged one is dropped, not an error.
    referral = request.POST.get("referral", "")
    if referrals.referrer_for_token(referral) is None:
        referral = ""
    page = {"form": form, "referral": referral}
    if not form.is_valid():
        return render(request, "subscriptions/signup.html", page, status=400)
    email = form.cleaned_data["email"]
    if not ratelimit.allow(
        "subscribe-email", email, limit=SIGNUP_LIMIT_PER_EMAIL, window_seconds=HOUR
    ):
        return _too_many(request)
    if not form.check_deliverable():
        return render(request, "subscriptions/signup.html", page, status=400)
    if not stripe_api.billing_configured():
        # The same for every address: it is the site that is not open.
        logger.error("Signup refused: billing is not configured")
        return render(request, "subscriptions/unavailable.html", status=503)
    do_request_signup(
        email=email,
        name=form.cleaned_data["name"],
        time_zone=form.cleaned_data["time_zone"],
        referral=referral,
    )
    return render(request, "subscriptions/signup_sent.html", {"minutes": signin.link_minutes()})


# An emailed link's token moves from its URL into the session, and the
# browser is sent on to the same page without it (as Django's password reset
# does). The page with the button then has no secret in its address, history
# or Referer, and may keep the site's referrer policy: under no-referrer a
# browser sends "Origin: null" with the form, which CSRF rightly refuses.
SIGN_IN_TOKEN_KEY = "pending_sign_in_token"  # noqa: S105 - a session key, not a secret
SIGNUP_TOKEN_KEY = "pending_signup_token"  # noqa: S105 - a session key, not a secret
EMAIL_CHANGE_TOKEN_KEY = "pending_email_change_token"  # noqa: S105 - a session key


def _token_into_session(request: HttpRequest, key: str, token: str, page: str) -> HttpResponse:
    request.session[key] = token
    return redirect(page)


@no_referrer
def signup_continue_link(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed signup link (/subscribe/continue/<token>/): on to the page without it."""
    if signin.read_signup_token(token) is None:
        return _link_invalid(request)
    if request.method == "POST":
        return _signup_continue(request, token)
    return _token_into_session(request, SIGNUP_TOKEN_KEY, token, "subscriptions:signup-continue")


def signup_continue(request: HttpRequest) -> HttpResponse:
    """/subscribe/continue/: the offer, the name and zone to confirm, and the button."""
    token = request.session.get(SIGNUP_TOKEN_KEY, "")
    viewer = current_subscriber(request)
    if not token and viewer is not None:
        # The link was used in this browser, which is signed in: Back from the
        # checkout to this page. Its button goes on to the same checkout (or
        # to the account, for a member), never a second one.
        if request.method == "POST":
            return _checkout(request, viewer)
        membership = getattr(viewer, "membership", None)
        if membership is not None and membership.needs_no_checkout:
            messages.info(request, ALREADY_MEMBER)
        return redirect("subscriptions:account")
    return _signup_continue(request, token)


def _signup_continue(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the offer and a button; POST signs in and checks out."""
    claim = signin.read_signup_token(token)
    if claim is None:
        return _link_invalid(request)
    if request.method != "POST" and signin.is_used(claim):
        return _link_used(request)
    existing = Subscriber.objects.filter(email__iexact=claim.email).first()
    membership = getattr(existing, "membership", None) if existing else None
    if request.method == "POST":
        form = ContinueSignupForm(request.POST)
        if form.is_valid():
            subscriber = do_continue_signup(
                claim,
                name=form.cleaned_data["name"],
                time_zone=form.cleaned_data["time_zone"],
                digest=form.digest_choices(),
            )
            if subscriber is None:
                return _link_invalid(request)
            if claim.referral:
                do_record_referral(subscriber, claim.referral)
            request.session.pop(SIGNUP_TOKEN_KEY, None)
            # The owner proved the address by opening its email: signed in.
            sign_in(request, subscriber)
            return _checkout(request, subscriber)
    else:
        # Mail scanners open links; only a person presses the button. The
        # name typed into the form is shown for the owner to keep or change.
        initial_name = (existing.greeting_name if existing else "") or claim.name
        form = ContinueSignupForm(
            initial={
                "name": initial_name,
                "time_zone": claim.time_zone,
                **ContinueSignupForm.initial_for(existing or Subscriber()),
            }
        )
    return render(
        request,
        "subscriptions/signup_continue.html",
        {
            "form": form,
            "email": claim.email,
            "trial_days": trials.trial_days(
                membership, referred=referrals.offers_trial(claim.referral, claim.email) or None
            ),
            "amount": dollars(None),
        },
        status=400 if form.is_bound else 200,
    )


def _link_used(request: HttpRequest) -> HttpResponse:
    """A genuine link that was used already: say so, and where to go from here."""
    viewer = current_subscriber(request)
    if viewer is not None:
        # This browser used it: the reader is signed in, so on to the account.
        messages.info(request, "That link was used already: you are signed in.")
        return redirect("subscriptions:account")
    return render(
        request,
        "subscriptions/sign_in_invalid.html",
        {"minutes": signin.link_minutes(), "used": True},
        status=410,
    )


def _link_invalid(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "subscriptions/sign_in_invalid.html",
        {"minutes": signin.link_minutes()},
        status=400,
    )


def _checkout(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """Send a signed-in reader to Checkout; the session remembers which one it started."""
    try:
        result = do_start_checkout(subscriber, resume=request.session.get(CHECKOUT_SESSION_KEY))
    except stripe_api.BillingUnavailable as error:
        logger.error("Checkout refused: billing is not configured (%s)", error)
        return render(request, "subscriptions/unavailable.html", status=503)
    except stripe_api.StripeError as error:
        # The reader is saved and signed in; they try again from their account
        # (a redirect, not a 5xx page: Django saves no session on those).
        logger.error("Checkout could not reach Stripe: %s", error)
        messages.error(
            request,
            "We couldn't reach our payment provider, so nothing was charged. "
            "Please try again in a minute.",
        )
        return _see_other("subscriptions:account")
    if result.already_member:
        messages.info(request, ALREADY_MEMBER)
        return _see_other("subscriptions:account")
    request.session[CHECKOUT_SESSION_KEY] = result.checkout_session_id
    return _see_other(result.checkout_url or "subscriptions:account")


@no_referrer
@require_GET
def checkout_success(request: HttpRequest) -> HttpResponse:
    """Where Stripe sends the browser back: the details, for the browser that checked out only.

    Nobody is signed in here (the reader was, by the emailed link that led
    to the checkout). A session id this browser did not start gets a calm
    page without a call to Stripe and without anybody's name or address:
    the URL alone, in a history or a log, shows and costs nothing.
    """
    session_id = request.GET.get("session_id", "")
    if not session_id.startswith("cs_"):
        raise Http404("No checkout session.")
    if request.session.get(CHECKOUT_SESSION_KEY) != session_id:
        return render(request, "subscriptions/checkout_elsewhere.html")
    if not ratelimit.allow(
        "checkout-success-ip",
        ratelimit.client_ip(request),
        limit=CHECKOUT_SUCCESS_LIMIT_PER_IP,
        window_seconds=HOUR,
    ):
        return _too_many(request)
    try:
        fulfilled = do_fulfil_checkout_for_page(session_id)
    except stripe_api.InvalidRequestError:
        raise Http404("No such checkout session.") from None
    except stripe_api.BillingUnavailable as error:
        logger.error("Checkout return: billing is not configured (%s)", error)
        return render(request, "subscriptions/unavailable.html", status=503)
    except stripe_api.StripeError as error:
        # The webhook applies the checkout anyway; the page can be reloaded.
        logger.error("Checkout return could not reach Stripe: %s", error)
        return render(request, "subscriptions/unavailable.html", {"reload": True}, status=502)
    if fulfilled is None:
        return render(request, "subscriptions/checkout_pending.html")
    subscriber = fulfilled.subscriber
    viewer = current_subscriber(request)
    if fulfilled.duplicate:
        # An older checkout (Back, then the form again) finished after the
        # one the reader keeps: not a second welcome.
        return render(
            request,
            "subscriptions/already_member.html",
            {
                "subscriber": subscriber,
                "signed_in": viewer is not None and viewer.pk == subscriber.pk,
            },
        )
    return render(
        request,
        "subscriptions/checkout_success.html",
        {
            "subscriber": subscriber,
            "first_digest": first_digest_at(subscriber),
            "signed_in": viewer is not None and viewer.pk == subscriber.pk,
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
        if not form.check_deliverable():
            return render(request, "subscriptions/sign_in.html", {"form": form})
        do_sign_in_requested(email)
    return render(request, "subscriptions/sign_in_sent.html", {"minutes": signin.link_minutes()})


@no_referrer
def sign_in_link(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed sign-in link (/signin/<token>/): on to the button, without the token."""
    if signin.read_token(token) is None:
        return _link_invalid(request)
    if request.method == "POST":
        return _sign_in_confirm(request, token)
    return _token_into_session(request, SIGN_IN_TOKEN_KEY, token, "subscriptions:sign-in-confirm")


def sign_in_confirm(request: HttpRequest) -> HttpResponse:
    """/signin/confirm/: GET shows "Sign me in"; the POST signs in."""
    return _sign_in_confirm(request, request.session.get(SIGN_IN_TOKEN_KEY, ""))


def _sign_in_confirm(request: HttpRequest, token: str) -> HttpResponse:
    claim = signin.read_token(token)
    if claim is None:
        return _link_invalid(request)
    if request.method != "POST":
        if signin.is_used(claim):
            return _link_used(request)
        # Mail scanners open links; only a person presses the button.
        return render(request, "subscriptions/sign_in_confirm.html")
    subscriber = do_record_sign_in(claim.subscriber_id, claim.last_signed_in_at)
    if subscriber is None:
        return _link_invalid(request)
    request.session.pop(SIGN_IN_TOKEN_KEY, None)
    sign_in(request, subscriber)
    return _see_other("subscriptions:account")


@require_POST
def sign_out_view(request: HttpRequest) -> HttpResponse:
    sign_out(request)
    return _see_other("home")


@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    subscriber = current_subscriber(request)
    if subscriber is None:
        return redirect("subscriptions:sign-in")
    do_sign_out_everywhere(subscriber)
    sign_out(request)
    response = render(request, "subscriptions/signed_out_everywhere.html")
    response["Cache-Control"] = "no-store"
    return response


def reader_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For signed-in readers: the view gets the reader; anyone else goes to sign in."""

    @functools.wraps(view)
    def for_reader(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        subscriber = current_subscriber(request)
        if subscriber is None:
            return redirect("subscriptions:sign-in")
        return view(request, subscriber, *args, **kwargs)

    return for_reader


@personal
@require_GET
@reader_view
def account(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    return _account_page(request, subscriber)


def _account_page(
    request: HttpRequest,
    subscriber: Subscriber,
    email_form: ChangeEmailForm | None = None,
) -> HttpResponse:
    membership = getattr(subscriber, "membership", None)
    return render(
        request,
        "subscriptions/account.html",
        {
            "email_form": email_form or ChangeEmailForm(current=subscriber.email),
            "subscriber": subscriber,
            "membership": membership,
            "entitled": subscriber.is_entitled,
            "member": bool(membership and membership.is_entitled),
            "amount": dollars(membership.charge_amount if membership else None),
            "can_manage_billing": bool(membership and membership.stripe_customer_id),
            "preferences_form": preferences_form(subscriber),
            "next_digest": first_digest_at(subscriber),
            "next_digest_summary": next_digest_summary(subscriber),
            "local_checkout": stripe_api.uses_local_checkout(),
            "trial_days": trials.trial_days(membership),
        },
        status=400 if email_form is not None else 200,
    )


@personal
@require_POST
@reader_view
def account_address(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """A new address for the reader: a link to it confirms; nothing changes before."""
    form = ChangeEmailForm(request.POST, current=subscriber.email)
    if not form.is_valid():
        return _account_page(request, subscriber, email_form=form)
    if not ratelimit.allow(
        "email-change", subscriber.email, limit=SIGN_IN_LIMIT_PER_EMAIL, window_seconds=HOUR
    ):
        return _too_many(request)
    if not form.check_deliverable():
        return _account_page(request, subscriber, email_form=form)
    new_email = form.cleaned_data["email"]
    do_request_email_change(subscriber, new_email)
    messages.success(
        request,
        f"We sent a link to {display_email(new_email)}: your address changes when you open it "
        f"(within {signin.link_minutes()} minutes). Until then, everything goes to "
        f"{subscriber.display_email}.",
    )
    return _see_other("subscriptions:account")


@no_referrer
def email_change_link(request: HttpRequest, token: str) -> HttpResponse:
    """The link emailed to a new address: on to the button, without the token."""
    if signin.read_email_change_token(token) is None:
        return _link_invalid(request)
    return _token_into_session(
        request, EMAIL_CHANGE_TOKEN_KEY, token, "subscriptions:email-change-confirm"
    )


def email_change_confirm(request: HttpRequest) -> HttpResponse:
    """GET shows the new address and a button (scanners open links); POST moves the reader."""
    claim = signin.read_email_change_token(request.session.get(EMAIL_CHANGE_TOKEN_KEY, ""))
    if claim is None:
        return _link_invalid(request)
    if request.method != "POST":
        if signin.is_used(claim):
            return _link_used(request)
        return render(
            request,
            "subscriptions/email_change_confirm.html",
            {"new_email": display_email(claim.new_email)},
        )
    try:
        subscriber = do_change_email(claim)
    except EmailChangeRefused as refusal:
        request.session.pop(EMAIL_CHANGE_TOKEN_KEY, None)
        return render(
            request, "subscriptions/email_change_refused.html", {"reason": str(refusal)}, status=409
        )
    request.session.pop(EMAIL_CHANGE_TOKEN_KEY, None)
    viewer = current_subscriber(request)
    if viewer is not None and viewer.pk == subscriber.pk:
        messages.success(request, f"Your address is now {subscriber.display_email}.")
        return _see_other("subscriptions:account")
    return render(request, "subscriptions/email_change_done.html", {"subscriber": subscriber})


@require_POST
@reader_view
def account_checkout(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """ "Start a membership" from the account: the reader is signed in, so straight to Checkout."""
    return _checkout(request, subscriber)


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


def preferences_form(subscriber: Subscriber, data: QueryDict | None = None) -> PreferencesForm:
    today = timezone.now().astimezone(ZoneInfo(subscriber.time_zone)).date()
    initial = {
        "time_zone": subscriber.time_zone,
        "send_time": f"{subscriber.send_time:%H:%M}",
        "pause_until": subscriber.pause_until,
        **PreferencesForm.initial_for(subscriber),
    }
    return PreferencesForm(data, initial=initial, today=today)


def posted_preferences(request: HttpRequest, subscriber: Subscriber) -> PreferencesForm:
    data = request.POST.copy()
    if request.POST.get("action") == "resume":  # "Resume now": the pause ends today
        data["pause_until"] = ""
    return preferences_form(subscriber, data)


def save_preferences(request: HttpRequest, subscriber: Subscriber, form: PreferencesForm) -> bool:
    """Apply a posted preferences form; True if it was valid (messages say what changed)."""
    if not form.is_valid():
        return False
    changes = do_set_preferences(
        subscriber,
        time_zone=form.cleaned_data["time_zone"],
        send_time=form.cleaned_data["send_time"],
        pause_until=form.cleaned_data["pause_until"],
        digest=form.digest_choices(),
    )
    for change in changes or ["Nothing changed."]:
        messages.success(request, change)
    return True


@require_POST
@reader_view
def account_preferences(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    form = posted_preferences(request, subscriber)
    if not save_preferences(request, subscriber, form):
        for errors in form.errors.values():
            messages.error(request, " ".join(str(error) for error in errors))
    return _see_other("subscriptions:account")


# The token is in the URL: it must not leave in a Referer; the form posts
# here, so the browser must still send its real Origin.
@origin_only_referrer
@personal
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    """The signed link in every email: the reader's settings, without signing in."""
    subscriber = preferences_tokens.subscriber_for_token(token)
    if subscriber is None:
        if preferences_tokens.TOKENS.names_sample_reader(token):
            return render(request, "subscriptions/test_email_link.html", {"page": "preferences"})
        return render(request, "subscriptions/preferences_invalid.html", status=400)
    if request.method == "POST":
        action = request.POST.get("action", "save")
        if action in ("unsubscribe", "resubscribe"):
            status = (
                Subscriber.EmailStatus.UNSUBSCRIBED
                if action == "unsubscribe"
                else Subscriber.EmailStatus.ACTIVE
            )
            if do_set_email_status(subscriber, status):
                messages.success(
                    request,
                    "Unsubscribed: no more digests (your membership is unchanged)."
                    if action == "unsubscribe"
                    else "Resubscribed: your digest comes again from your next morning.",
                )
            return _see_other(request.path)
        form = posted_preferences(request, subscriber)
        if save_preferences(request, subscriber, form):
            return _see_other(request.path)
        status_code = 400
    else:
        form = preferences_form(subscriber)
        status_code = 200
    subscriber.refresh_from_db()
    return render(
        request,
        "subscriptions/preferences.html",
        {
            "subscriber": subscriber,
            "form": form,
            "next_digest": first_digest_at(subscriber),
            "next_digest_summary": next_digest_summary(subscriber),
        },
        status=status_code,
    )


@personal
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
