"""Which reader this browser belongs to.

Readers have no password and no Django user: signing in stores the reader's
id in the session, with the reader's session epoch at that moment. Only an
emailed link signs a browser in (sign-in links, and the link that continues
a signup): nothing else proves that the browser's user owns the address.
"Sign out everywhere" moves the reader's epoch on, so every session signed
in before it stops counting. Staff use the admin's own accounts.
"""

from django.http import HttpRequest

from subscriptions.models import Subscriber

SESSION_KEY = "subscriber_id"
EPOCH_KEY = "subscriber_epoch"


def sign_in(request: HttpRequest, subscriber: Subscriber) -> None:
    # A new session key on sign-in, so a session fixed before it is useless.
    request.session.cycle_key()
    request.session[SESSION_KEY] = subscriber.pk
    request.session[EPOCH_KEY] = subscriber.session_epoch


def sign_out(request: HttpRequest) -> None:
    # Everything the session held goes with it (a checkout's id too): on a
    # shared computer the next person inherits nothing.
    request.session.flush()


def current_subscriber(request: HttpRequest) -> Subscriber | None:
    subscriber_id = request.session.get(SESSION_KEY)
    if subscriber_id is None:
        return None
    subscriber = Subscriber.objects.select_related("membership").filter(pk=subscriber_id).first()
    # A session without an epoch was signed in before epochs existed: epoch 0,
    # which migration 0004 made stale for every reader of that time.
    if subscriber is None or subscriber.session_epoch != request.session.get(EPOCH_KEY, 0):
        return None
    return subscriber
