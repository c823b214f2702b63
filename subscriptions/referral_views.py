"""Referral pages: the landing page of a reader's link, and the reader's own choice.

Thin, as the other reader pages: parse, call one function, answer.
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from subscriptions import referrals
from subscriptions.actions.referrals import do_set_show_first_name
from subscriptions.forms import SignupForm
from subscriptions.models import Subscriber
from subscriptions.sessions import current_subscriber
from subscriptions.views import reader_view


@require_GET
def landing(request: HttpRequest, token: str) -> HttpResponse:
    """/invite/<token>/: who invited the visitor, what they get, and the signup form.

    A link that names nobody (forged, or its reader deleted their account)
    gets the same page without an invitation, answered 404, so the visitor
    can still sign up.
    """
    referrer = referrals.referrer_for_token(token)
    viewer = current_subscriber(request)
    if referrer is None:
        return render(
            request,
            "subscriptions/referral_landing.html",
            {"form": SignupForm(), "referral": "", "valid": False},
            status=404,
        )
    return render(
        request,
        "subscriptions/referral_landing.html",
        {
            "form": SignupForm(),
            "referral": token,
            "valid": True,
            "referrer_name": referrals.shown_name(referrer),
            "own_link": viewer is not None and viewer.pk == referrer.pk,
            "referral_trial_days": referrals.referred_trial_days(),
        },
    )


@require_POST
@reader_view
def account_referrals(request: HttpRequest, subscriber: Subscriber) -> HttpResponse:
    """The account page's choice: may the link's page name the reader by first name."""
    show = request.POST.get("show_first_name") == "on"
    do_set_show_first_name(subscriber, show)
    messages.success(
        request,
        "Your invitation page now shows your first name."
        if show
        else "Your invitation page no longer shows your name.",
    )
    response = redirect("subscriptions:account")
    response.status_code = 303
    return response
