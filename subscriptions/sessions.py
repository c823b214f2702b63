"""Which reader this browser belongs to.

Readers have no password and no Django user: signing in (by emailed link)
stores the reader's id in the session. Staff use the admin's own accounts.
"""

from django.http import HttpRequest

from subscriptions.models import Subscriber

SESSION_KEY = "subscriber_id"


def sign_in(request: HttpRequest, subscriber: Subscriber) -> None:
    # A new session key on sign-in, so a session fixed before it is useless.
    request.session.cycle_key()
    request.session[SESSION_KEY] = subscriber.pk


def sign_out(request: HttpRequest) -> None:
    request.session.pop(SESSION_KEY, None)
    request.session.cycle_key()


def current_subscriber(request: HttpRequest) -> Subscriber | None:
    subscriber_id = request.session.get(SESSION_KEY)
    if subscriber_id is None:
        return None
    return Subscriber.objects.select_related("membership").filter(pk=subscriber_id).first()
