"""One-click unsubscribe (RFC 8058) from the link in every digest.

GET shows a confirmation page and changes nothing, because mail scanners and
link previews follow links. POST unsubscribes; mail providers send it without
cookies or CSRF token when the reader presses their "Unsubscribe" button, so
the signed token in the URL is the only authorisation, and it is enough: it
names one reader and cannot be forged without the secret key.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from subscriptions.headers import no_referrer
from subscriptions.models import Subscriber
from subscriptions.tokens import ReaderTokens

# Scoped to this page: a preferences token (subscriptions.preferences) is not
# an unsubscribe token, nor the other way round.
TOKENS = ReaderTokens("subscriptions.unsubscribe")
make_token = TOKENS.make
subscriber_for_token = TOKENS.subscriber


def unsubscribe_url(subscriber: Subscriber) -> str:
    return reverse("unsubscribe", kwargs={"token": make_token(subscriber)})


@csrf_exempt
@no_referrer  # the token is in the URL; it must not leave in a Referer
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = subscriber_for_token(token)
    if subscriber is None:
        if TOKENS.names_sample_reader(token):
            return render(request, "subscriptions/test_email_link.html", {"page": "unsubscribe"})
        return render(request, "subscriptions/unsubscribe_invalid.html", status=400)
    context = {"subscriber": subscriber, "token": token}
    if request.method == "GET":
        return render(request, "subscriptions/unsubscribe_confirm.html", context)

    if request.POST.get("action") == "resubscribe":
        if subscriber.email_status == Subscriber.EmailStatus.UNSUBSCRIBED:
            subscriber.set_email_status(Subscriber.EmailStatus.ACTIVE)
        return render(request, "subscriptions/resubscribe_done.html", context)

    # A bounced or complained address stays so: only a deliverable one becomes
    # "unsubscribed", and doing it twice changes nothing.
    if subscriber.email_status == Subscriber.EmailStatus.ACTIVE:
        subscriber.set_email_status(Subscriber.EmailStatus.UNSUBSCRIBED)
    return render(request, "subscriptions/unsubscribe_done.html", context)
