"""One-click unsubscribe (RFC 8058) from the link in every digest.

GET shows a confirmation page and changes nothing, because mail scanners and
link previews follow links. POST unsubscribes; mail providers send it without
cookies or CSRF token when the reader presses their "Unsubscribe" button, so
the signed token in the URL is the only authorisation, and it is enough: it
names one reader and cannot be forged without the secret key.
"""

import base64

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from subscriptions.headers import no_referrer
from subscriptions.models import Subscriber

SALT = "subscriptions.unsubscribe"


def _signature(subscriber_id: str, secret: str) -> str:
    # 128 bits of HMAC-SHA256, short enough that the List-Unsubscribe header
    # folds at whitespace instead of turning into encoded words.
    digest = salted_hmac(SALT, subscriber_id, secret=secret, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:16]).decode("ascii").rstrip("=")


def make_token(subscriber: Subscriber) -> str:
    subscriber_id = str(subscriber.pk)
    return f"{subscriber_id}-{_signature(subscriber_id, str(settings.SECRET_KEY))}"


def subscriber_for_token(token: str) -> Subscriber | None:
    subscriber_id, _, signature = token.partition("-")
    if not subscriber_id.isdigit() or not signature:
        return None
    # Old keys still verify, so rotating SECRET_KEY does not break the links
    # in emails already sent.
    for secret in [str(settings.SECRET_KEY), *map(str, settings.SECRET_KEY_FALLBACKS)]:
        if constant_time_compare(signature, _signature(subscriber_id, secret)):
            return Subscriber.objects.filter(pk=int(subscriber_id)).first()
    return None


def unsubscribe_url(subscriber: Subscriber) -> str:
    return reverse("unsubscribe", kwargs={"token": make_token(subscriber)})


@csrf_exempt
@no_referrer  # the token is in the URL; it must not leave in a Referer
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    subscriber = subscriber_for_token(token)
    if subscriber is None:
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
