"""Hostile review, webhooks: the ESP's bounce webhooks and Stripe's events.

ESP events are posted in each provider's real payload shape (as anymail's
own tests and the providers' documentation give them) through the real
anymail views, mounted as config.urls mounts them for the configured
provider only.
"""

import base64
import datetime
import hashlib
import hmac
import json
import logging
import time

import pytest
from django.core.management import call_command

import config.urls  # imported here, with no ESP configured: see urls_with_esp
from delivery.deliverability import tracking
from delivery.models import BounceEvent, Delivery
from newsletter.tests.factories import make_article
from subscriptions import stripe_api
from subscriptions.actions import reader_data
from subscriptions.models import Membership, ReaderEmail, StripeEvent, Subscriber
from subscriptions.tests import stripe_objects
from subscriptions.tests.factories import make_stripe_member, make_subscriber
from testing.clock import MONDAY_BEFORE_SEND
from testing.commands import PRODUCTION, run_manage

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

BASIC_AUTH = "hooks:s3cret-password"
MAILGUN_KEY = "mailgun-webhook-signing-key-1"


def basic_auth(credentials: str = BASIC_AUTH) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


@pytest.fixture
def esp(settings):
    """Configure one ESP as production does and mount the site's URLs with its webhook."""

    assert config.urls.esp_tracking_urls(None) == []  # the site's own URLs carry no ESP

    def configure(name: str) -> None:
        settings.EMAIL_ESP = name
        settings.ANYMAIL = {
            "WEBHOOK_SECRET": BASIC_AUTH,
            "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY,
        }
        # Set after EMAIL_ESP: changing ROOT_URLCONF clears the URL caches.
        settings.ROOT_URLCONF = "delivery.tests.urls_with_esp"

    return configure


def status_of(reader: Subscriber) -> str:
    reader.refresh_from_db()
    return reader.email_status


# --- Each provider, its own shape and its own verification ----------------------------


def postmark_complaint(email: str) -> dict:
    # https://postmarkapp.com/developer/webhooks/spam-complaint-webhook
    return {
        "RecordType": "SpamComplaint",
        "MessageStream": "outbound",
        "ID": 42,
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        "Tag": "",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "Metadata": {},
        "ServerID": 23,
        "Description": "",
        "Details": "Test spam complaint details",
        "Email": email,
        "From": "briefing@example.com",
        "BouncedAt": "2026-11-30T11:05:00Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": False,
        "Subject": "Test subject",
        "Content": "",
    }


def mailgun_event(event: str, email: str, *, key: str = MAILGUN_KEY, **fields: object) -> dict:
    # https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#webhooks
    timestamp, token = str(int(time.time())), "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": event,
            "id": "G9Bn5sl1TC6nu79C8C0bwg",
            "timestamp": float(timestamp),
            "recipient": email,
            "tags": [],
            "user-variables": {},
            "message": {"headers": {"message-id": "20261130110500.1.abc@mg.example.com"}},
            **fields,
        },
    }


def ses_notification(ses_event: dict) -> tuple[str, dict[str, str]]:
    # SNS posts the SES event as a JSON string inside its own JSON, as text/plain.
    message_id = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    body = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:briefing-ses",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-11-30T11:05:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    headers = {"x-amz-sns-message-type": "Notification", "x-amz-sns-message-id": message_id}
    return json.dumps(body), headers


def ses_bounce(email: str, bounce_type: str = "Permanent") -> dict:
    # https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": email,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-11-30T11:05:00.000Z",
            "feedbackId": "0100017c-feedback",
        },
        "mail": {
            "timestamp": "2026-11-30T11:04:59.000Z",
            "source": "briefing@example.com",
            "messageId": "0100017c-message",
            "destination": [email],
            "headers": [],
        },
    }


@pytest.mark.faults
def test_postmark_complaint_is_applied_and_other_providers_urls_are_404(client, esp):
    esp("postmark")
    reader = make_subscriber("ada@example.com")

    response = client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(postmark_complaint("ada@example.com")),
        content_type="application/json",
        headers=basic_auth(),
    )

    assert response.status_code == 200
    assert status_of(reader) == Subscriber.EmailStatus.COMPLAINED
    for other in ["mailgun", "amazon_ses", "sendgrid", "mailjet"]:
        response = client.post(f"/anymail/{other}/tracking/", {}, headers=basic_auth())
        assert response.status_code == 404, other
    assert client.post("/anymail/postmark/inbound/", {}).status_code == 404


@pytest.mark.faults
def test_mailgun_bounce_is_verified_by_its_signature_and_applied(client, esp):
    esp("mailgun")
    reader = make_subscriber("ada@example.com")
    event = mailgun_event("failed", "ada@example.com", severity="permanent", reason="bounce")
    event["event-data"]["delivery-status"] = {"code": 550, "message": "5.1.1 No such user"}

    response = client.post(
        "/anymail/mailgun/tracking/",
        data=json.dumps(event),
        content_type="application/json",
        headers=basic_auth(),
    )

    assert response.status_code == 200
    assert status_of(reader) == Subscriber.EmailStatus.BOUNCED
    assert client.post("/anymail/postmark/tracking/", {}).status_code == 404


def test_a_mailgun_delivered_event_confirms_only_its_own_unconfirmed_send(client, esp, settings):
    esp("mailgun")
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    make_article(published_ago=datetime.timedelta(hours=2))
    make_subscriber("ada@example.com")
    make_subscriber("bob@example.com")
    call_command("send_digest", "--sync", "--date", "2026-11-30")
    Delivery.objects.update(last_error=Delivery.UNCONFIRMED_NOTE)
    ada, bob = (
        Delivery.objects.get(subscriber__email=e) for e in ("ada@example.com", "bob@example.com")
    )

    def delivered(recipient: str, delivery: Delivery):
        event = mailgun_event("delivered", recipient)
        event["event-data"]["user-variables"] = {"delivery_id": str(delivery.pk)}
        return client.post(
            "/anymail/mailgun/tracking/",
            data=json.dumps(event),
            content_type="application/json",
            headers=basic_auth(),
        )

    # Bob's delivery named, Ada's address: not the row's own reader.
    assert delivered("ada@example.com", bob).status_code == 200
    assert delivered("ada@example.com", ada).status_code == 200

    ada.refresh_from_db()
    bob.refresh_from_db()
    assert (ada.status, ada.last_error) == (Delivery.Status.SENT, "")
    assert bob.last_error == Delivery.UNCONFIRMED_NOTE


def test_a_bounce_quoting_the_address_is_stored_without_it(client, esp, settings):
    esp("mailgun")
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    make_article(published_ago=datetime.timedelta(hours=2))
    reader = make_subscriber("ada@example.com")
    call_command("send_digest", "--sync", "--date", "2026-11-30")
    event = mailgun_event("failed", "ada@example.com", severity="permanent", reason="bounce")
    event["event-data"]["delivery-status"] = {
        "code": 550,
        "message": "5.1.1 <ada@example.com>: Recipient address rejected",
        "description": "Recipient address rejected: <ada@example.com> does not exist",
    }

    response = client.post(
        "/anymail/mailgun/tracking/",
        data=json.dumps(event),
        content_type="application/json",
        headers=basic_auth(),
    )

    assert response.status_code == 200
    bounce = BounceEvent.objects.get(subscriber=reader)
    delivery = Delivery.objects.get(subscriber=reader)
    assert delivery.status == Delivery.Status.BOUNCED
    for stored in (bounce.detail, delivery.last_error):
        assert "[address]" in stored and "Recipient address rejected" in stored
        assert "ada@example.com" not in stored


@pytest.mark.faults
@pytest.mark.parametrize("forgery", ["unsigned", "wrong key", "no basic auth"])
def test_mailgun_refuses_an_unsigned_or_forged_event(client, esp, forgery):
    esp("mailgun")
    reader = make_subscriber("ada@example.com")
    event = mailgun_event("complained", "ada@example.com")
    headers = basic_auth()
    if forgery == "unsigned":
        del event["signature"]
    elif forgery == "wrong key":
        event = mailgun_event("complained", "ada@example.com", key="guessed")
    else:
        headers = {}

    response = client.post(
        "/anymail/mailgun/tracking/",
        data=json.dumps(event),
        content_type="application/json",
        headers=headers,
    )

    assert response.status_code == 400
    assert status_of(reader) == Subscriber.EmailStatus.ACTIVE


@pytest.mark.faults
def test_amazon_ses_permanent_bounce_is_applied_a_transient_one_is_not(client, esp):
    esp("amazon_ses")
    hard = make_subscriber("hard@example.com")
    soft = make_subscriber("soft@example.com")

    for reader, kind in [(hard, "Permanent"), (soft, "Transient")]:
        body, headers = ses_notification(ses_bounce(reader.email, kind))
        response = client.post(
            "/anymail/amazon_ses/tracking/",
            data=body,
            content_type="text/plain; charset=UTF-8",
            headers={**headers, **basic_auth()},
        )
        assert response.status_code == 200

    assert status_of(hard) == Subscriber.EmailStatus.BOUNCED
    assert status_of(soft) == Subscriber.EmailStatus.ACTIVE
    body, headers = ses_notification(ses_bounce(soft.email))
    wrong = client.post(
        "/anymail/amazon_ses/tracking/",
        data=body,
        content_type="text/plain; charset=UTF-8",
        headers={**headers, **basic_auth("hooks:guessed")},
    )
    assert wrong.status_code == 400
    assert status_of(soft) == Subscriber.EmailStatus.ACTIVE


@pytest.mark.faults
def test_another_providers_event_is_ignored_by_the_handler(esp, settings):
    # Even if another provider's view were mounted (all of anymail.urls, say),
    # its events say who sent them: a SendGrid "spamreport" is not Mailgun's.
    from anymail.signals import AnymailTrackingEvent

    esp("mailgun")
    reader = make_subscriber("ada@example.com")
    event = AnymailTrackingEvent(event_type="complained", recipient="ada@example.com")

    tracking.handle_tracking_event(sender=None, event=event, esp_name="SendGrid")

    assert status_of(reader) == Subscriber.EmailStatus.ACTIVE
    tracking.handle_tracking_event(sender=None, event=event, esp_name="Mailgun")
    assert status_of(reader) == Subscriber.EmailStatus.COMPLAINED


@pytest.mark.faults
@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_a_sendgrid_spamreport_with_the_password_changes_nothing(client, esp, settings):
    # The attack as found: all of anymail.urls mounted, SendGrid's format, the
    # basic-auth password (shared by every view) and no Mailgun signature.
    settings.ANYMAIL = {"WEBHOOK_SECRET": BASIC_AUTH, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    settings.EMAIL_ESP = "mailgun"
    settings.ROOT_URLCONF = "delivery.tests.urls_with_all_of_anymail"
    reader = make_subscriber("ada@example.com")
    spam = [{"email": "ada@example.com", "event": "spamreport", "timestamp": int(time.time())}]

    response = client.post(
        "/anymail/sendgrid/tracking/",
        data=json.dumps(spam),
        content_type="application/json",
        headers=basic_auth(),
    )

    assert response.status_code == 200  # anymail's view answers; our handler ignores it
    assert status_of(reader) == Subscriber.EmailStatus.ACTIVE


PRINT_ROUTES = """
from django.conf import settings
from django.test import RequestFactory
from django.urls import Resolver404, resolve
for esp in ["mailgun", "postmark", "amazon_ses", "sendgrid"]:
    try:
        print(esp, resolve(f"/anymail/{esp}/tracking/").func.view_class.__name__)
    except Resolver404:
        print(esp, "404")
view_class = resolve("/anymail/mailgun/tracking/").func.view_class
view = view_class()  # reads the signing key from ANYMAIL, as each request does
request = RequestFactory().post(
    "/anymail/mailgun/tracking/", data=__import__("json").dumps(EVENT),
    content_type="application/json", HTTP_AUTHORIZATION=AUTH,
)
view.validate_request(request)
print("signature verified")
"""


def test_production_settings_mount_only_mailgun_with_its_signing_key():
    event = mailgun_event("complained", "ada@example.com")
    script = f"EVENT = {event!r}\nAUTH = {basic_auth()['Authorization']!r}\n{PRINT_ROUTES}"

    result = run_manage(
        "shell",
        "-c",
        script,
        **PRODUCTION,
        EMAIL_ESP=f"mailgun://key-1@?webhook_signing_key={MAILGUN_KEY}",
        ANYMAIL_WEBHOOK_SECRET=BASIC_AUTH,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "mailgun MailgunTrackingWebhookView" in result.stdout
    assert "postmark 404" in result.stdout
    assert "amazon_ses 404" in result.stdout
    assert "sendgrid 404" in result.stdout
    assert "signature verified" in result.stdout


def test_mailgun_without_its_webhook_signing_key_stops_the_service():
    result = run_manage(
        "check",
        **PRODUCTION,
        EMAIL_ESP="mailgun://k@",
        ANYMAIL_WEBHOOK_SECRET="a:b",
    )
    assert result.returncode != 0
    assert "webhook signing key" in result.stderr


def test_tracking_logs_ids_never_addresses(client, esp, caplog):
    esp("postmark")
    reader = make_subscriber("ada.private@example.com")
    caplog.set_level(logging.INFO, logger="delivery.deliverability.tracking")

    for email in ["ada.private@example.com", "stranger.private@example.com"]:
        client.post(
            "/anymail/postmark/tracking/",
            data=json.dumps(postmark_complaint(email)),
            content_type="application/json",
            headers=basic_auth(),
        )

    assert status_of(reader) == Subscriber.EmailStatus.COMPLAINED
    assert caplog.records, "the handler logs what it did"
    assert "private@example.com" not in caplog.text
    assert f"subscriber {reader.pk}" in caplog.text


# --- Suppressed readers still reach their account ----------------------------------------


@pytest.mark.parametrize(
    "status", [Subscriber.EmailStatus.BOUNCED, Subscriber.EmailStatus.COMPLAINED]
)
def test_a_suppressed_reader_gets_the_sign_in_link_they_ask_for(
    client, mailoutbox, django_capture_on_commit_callbacks, status
):
    make_stripe_member(Membership.Status.ACTIVE, email="ada@example.com", email_status=status)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/signin/", {"email": "ada@example.com"})

    assert response.status_code == 200
    [link] = mailoutbox
    assert link.to == ["ada@example.com"]
    assert "/signin/" in link.body


def test_the_handler_knows_each_mounted_providers_name():
    from django.utils.module_loading import import_string

    names = {
        esp: import_string(view).esp_name for esp, view in config.urls.ESP_TRACKING_VIEWS.items()
    }
    assert names == tracking.ESP_NAMES


# --- Stripe: invoices re-fetched, the API version pinned ------------------------------------


@pytest.fixture
def past_due_member(fake_stripe):
    reader = make_stripe_member(
        Membership.Status.ACTIVE, email="ada@example.com", subscription_id=SUBSCRIPTION
    )
    fake_stripe.set_subscription(stripe_objects.subscription("past_due"))
    return reader


SUBSCRIPTION = "sub_1SbTrial0000000000000001"


@pytest.mark.faults
def test_an_invoice_email_carries_stripes_amount_and_link_not_the_events(
    webhooks, fake_stripe, past_due_member, mailoutbox
):
    real = fake_stripe.set_invoice(stripe_objects.invoice())
    forged = {**real, "amount_due": 1, "hosted_invoice_url": "https://evil.example/pay"}

    response = webhooks.post("invoice.payment_failed", forged)

    assert response.status_code == 200
    assert fake_stripe.count("GET", rf"/v1/invoices/{real['id']}") == 1
    email = ReaderEmail.objects.get(kind=ReaderEmail.Kind.PAYMENT_FAILED)
    assert email.context["amount"] == real["amount_due"] == 4600
    assert email.context["hosted_invoice_url"] == real["hosted_invoice_url"]
    [mail] = mailoutbox
    assert "evil.example" not in mail.body
    assert real["hosted_invoice_url"] in mail.body


@pytest.mark.faults
def test_an_invoice_stripe_does_not_know_is_not_acted_on(webhooks, fake_stripe, past_due_member):
    forged = stripe_objects.invoice(id="in_forged0000000000000001")

    response = webhooks.post("invoice.payment_failed", forged)

    # Stripe says there is no such invoice: the event fails (and is retried),
    # and no email goes out on the body's word.
    assert response.status_code == 500
    assert not ReaderEmail.objects.filter(kind=ReaderEmail.Kind.PAYMENT_FAILED).exists()


@pytest.mark.faults
def test_an_event_of_another_api_version_is_refused_and_not_stored(
    webhooks, fake_stripe, past_due_member, caplog
):
    body = stripe_objects.event("customer.subscription.updated", stripe_objects.subscription())
    body["api_version"] = "2024-06-20"
    payload = json.dumps(body)

    response = webhooks.post_raw(payload, stripe_objects.signed(payload))

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    assert len(fake_stripe.mock.calls) == 0
    assert "2024-06-20" in caplog.text


@pytest.mark.faults
@pytest.mark.parametrize(
    ("changes", "logged"),
    [
        ({"livemode": True}, "a live-mode event, and the API key is a test-mode key"),
        ({"account": "acct_1OtherAccount000001"}, "the connected account acct_1OtherAccount000001"),
    ],
    ids=["live event, test key", "a connected account's"],
)
def test_an_event_of_another_account_or_mode_is_refused_at_once(
    webhooks, fake_stripe, settings, caplog, changes, logged
):
    # Signed with our endpoint's secret, about a subscription our key cannot
    # fetch: handling it would fail on every one of Stripe's retries.
    elsewhere = stripe_objects.subscription(
        "active", id="sub_1Elsewhere0000000000001", customer="cus_Elsewhere0000001"
    )
    body = stripe_objects.event("customer.subscription.updated", elsewhere) | changes
    payload = json.dumps(body)

    response = webhooks.post_raw(payload, stripe_objects.signed(payload))

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    assert len(fake_stripe.mock.calls) == 0
    assert body["id"] in caplog.text and logged in caplog.text
    for secret in (settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET):
        assert secret not in caplog.text


@pytest.mark.faults
def test_with_a_live_key_test_mode_events_are_refused_and_live_ones_taken(
    webhooks, fake_stripe, settings
):
    settings.STRIPE_SECRET_KEY = "sk_live_fake"
    test_mode = stripe_objects.event("customer.created", stripe_objects.load("customer"))
    live_mode = stripe_objects.event("customer.created", stripe_objects.load("customer"))
    live_mode["livemode"] = True

    answers = []
    for event in (test_mode, live_mode):
        payload = json.dumps(event)
        answers.append(webhooks.post_raw(payload, stripe_objects.signed(payload)).status_code)

    assert answers == [400, 200]
    assert list(StripeEvent.objects.values_list("event_id", flat=True)) == [live_mode["id"]]


def test_the_events_tests_sign_carry_the_pinned_api_version():
    from stripe._api_version import _ApiVersion

    assert stripe_objects.event("invoice.paid", {})["api_version"] == _ApiVersion.CURRENT
    assert stripe_api.API_VERSION == _ApiVersion.CURRENT


# --- Stripe after an account deletion ------------------------------------------------


@pytest.mark.faults
def test_cancellation_after_deletion_stores_no_personal_data_and_recreates_nothing(
    webhooks, fake_stripe
):
    reader = make_stripe_member(
        Membership.Status.ACTIVE, email="ada.private@example.com", subscription_id=SUBSCRIPTION
    )
    fake_stripe.mock.add(
        "DELETE",
        f"{stripe_objects.API_BASE}/v1/subscriptions/{SUBSCRIPTION}",
        json=stripe_objects.subscription("canceled"),
    )
    reader_data.do_delete_reader(reader)
    ended = stripe_objects.subscription(
        "canceled", metadata={"subscriber_id": str(reader.pk), "name": "Ada Private"}
    )
    fake_stripe.set_subscription(ended)
    failed = stripe_objects.invoice(customer_email="ada.private@example.com", customer_name="Ada")
    fake_stripe.set_invoice(failed)

    assert webhooks.post("customer.subscription.deleted", ended).status_code == 200
    assert webhooks.post("invoice.payment_failed", failed).status_code == 200

    assert not Subscriber.objects.exists()
    assert not Membership.objects.exists()
    assert not ReaderEmail.objects.exists()
    stored = sorted(StripeEvent.objects.values_list("type", "payload"))
    assert [kind for kind, _ in stored] == [
        "customer.subscription.deleted",
        "invoice.payment_failed",
    ]
    for _, payload in stored:
        text = json.dumps(payload)
        assert "private" not in text.lower()
        assert "Ada" not in text
        obj = payload["data"]["object"]
        assert set(obj) <= {"id", "object", "customer", "subscription", "mode", "status"}
        assert obj["customer"] == "cus_T4kQ8Zr2mXv1Ab"  # still found by a later deletion


def test_events_of_a_known_reader_are_stored_whole(webhooks, fake_stripe, past_due_member):
    invoice = fake_stripe.set_invoice(stripe_objects.invoice())

    webhooks.post("invoice.payment_failed", invoice)

    stored = StripeEvent.objects.get().payload["data"]["object"]
    assert stored["customer_email"] == invoice["customer_email"]
