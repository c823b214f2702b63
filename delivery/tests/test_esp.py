"""Email service providers through django-anymail: sending and tracking."""

import base64
import datetime
import json

import pytest
from django.core import mail
from django.core.management import call_command

import config.urls  # noqa: F401 - imported with no ESP configured, before a test sets one
from delivery import send_report
from delivery.models import Delivery
from newsletter.tests.factories import make_article
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND
from testing.commands import PRODUCTION, run_manage

pytestmark = pytest.mark.clock(MONDAY_BEFORE_SEND)


PRINT_MAILER = "from django.conf import settings; print(settings.MAILERS['default'])"


def test_postmark_is_configured_from_the_environment():
    result = run_manage(
        "shell",
        "-c",
        PRINT_MAILER,
        **PRODUCTION,
        EMAIL_ESP="postmark://server-token@",
        ANYMAIL_WEBHOOK_SECRET="hook:secret",
    )
    assert result.returncode == 0, result.stderr
    assert "'BACKEND': 'anymail.backends.postmark.EmailBackend'" in result.stdout
    assert "'server_token': 'server-token'" in result.stdout


def test_mailgun_sendgrid_and_ses_are_configured_from_the_environment():
    mailgun = run_manage(
        "shell",
        "-c",
        PRINT_MAILER,
        **PRODUCTION,
        EMAIL_ESP=(
            "mailgun://key-1@api.eu.mailgun.net/mg.example.com?webhook_signing_key=signing-key"
        ),
        ANYMAIL_WEBHOOK_SECRET="hook:secret",
    )
    assert "'sender_domain': 'mg.example.com'" in mailgun.stdout, mailgun.stderr
    assert "'api_url': 'https://api.eu.mailgun.net/v3'" in mailgun.stdout
    sendgrid = run_manage(
        "shell",
        "-c",
        # A connection made, as a send makes one: anymail's warning would come now.
        f"from django.core.mail import get_connection; get_connection(); {PRINT_MAILER}",
        **PRODUCTION,
        EMAIL_ESP="sendgrid://SG.key-1@",
        ANYMAIL_WEBHOOK_SECRET="hook:secret",
    )
    assert "'BACKEND': 'anymail.backends.sendgrid.EmailBackend'" in sendgrid.stdout, sendgrid.stderr
    assert "'api_key': 'SG.key-1'" in sendgrid.stdout
    assert "official support" not in sendgrid.stderr  # said once, in the README
    ses = run_manage(
        "shell",
        "-c",
        PRINT_MAILER,
        **PRODUCTION,
        EMAIL_ESP="amazon_ses://?configuration_set=briefing",
        ANYMAIL_WEBHOOK_SECRET="hook:secret",
    )
    assert "anymail.backends.amazon_ses.EmailBackend" in ses.stdout, ses.stderr
    assert "'configuration_set_name': 'briefing'" in ses.stdout


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"EMAIL_ESP": "postmark://", "ANYMAIL_WEBHOOK_SECRET": "a:b"}, "<server token>"),
        ({"EMAIL_ESP": "postmark://t@"}, "ANYMAIL_WEBHOOK_SECRET"),
        ({"EMAIL_ESP": "carrier_pigeon://t@"}, "EMAIL_ESP must be one of"),
        ({"EMAIL_ESP": "postmark://t@", "SMTP_URL": "smtp://localhost"}, "not both"),
        # The variables of before: the service says where their values go now.
        (
            {
                "EMAIL_ESP": "postmark://t@",
                "ANYMAIL_WEBHOOK_SECRET": "a:b",
                "POSTMARK_SERVER_TOKEN": "t",
            },
            "POSTMARK_SERVER_TOKEN is no longer read from the environment: it goes in EMAIL_ESP",
        ),
    ],
)
def test_incomplete_esp_settings_stop_the_service(environment, message):
    result = run_manage("check", **PRODUCTION, **environment)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.django_db
def test_the_digest_goes_through_anymail_with_its_headers_and_metadata(settings):
    settings.MAILERS = {"default": {"BACKEND": "anymail.backends.test.EmailBackend"}}
    make_article()
    reader = make_subscriber("reader@example.com")

    call_command("send_digest", "--sync", "--date", "2026-11-30")

    (message,) = mail.outbox
    # Set by anymail's test backend when it sends; anymail ships no type information.
    params = message.anymail_test_params  # type: ignore[union-attr]
    assert params["to"][0].addr_spec == "reader@example.com"
    assert params["extra_headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert params["extra_headers"]["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/")
    delivery = Delivery.objects.get(subscriber=reader)
    assert params["metadata"] == {"delivery_id": str(delivery.pk), "edition": "2026-11-30"}
    assert delivery.status == Delivery.Status.SENT


def postmark_event(record_type: str, email: str, **fields) -> dict:
    return {
        "RecordType": record_type,
        "ID": 42,
        "Email": email,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "BouncedAt": "2026-11-30T11:05:00Z",
        "Description": "The server was unable to deliver your message.",
        "Details": "smtp;550 5.1.1 The email account does not exist.",
        **fields,
    }


@pytest.fixture
def tracking(settings, client):
    settings.EMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}
    settings.ROOT_URLCONF = "delivery.tests.urls_with_esp"  # after EMAIL_ESP: clears the URL caches

    def post(event: dict, credentials: str | None = "hook:s3cret"):
        headers = {}
        if credentials:
            token = base64.b64encode(credentials.encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return client.post(
            "/anymail/postmark/tracking/",
            data=json.dumps(event),
            content_type="application/json",
            headers=headers,
        )

    return post


@pytest.fixture
def sent_delivery(settings):
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    make_article(published_ago=datetime.timedelta(hours=2))
    reader = make_subscriber("reader@example.com")
    call_command("send_digest", "--sync", "--date", "2026-11-30")
    return Delivery.objects.get(subscriber=reader)


@pytest.mark.django_db
def test_a_hard_bounce_suppresses_the_address_and_marks_the_delivery(tracking, sent_delivery):
    response = tracking(
        postmark_event(
            "Bounce",
            "Reader@Example.com",
            Type="HardBounce",
            Metadata={"delivery_id": str(sent_delivery.pk)},
        )
    )

    assert response.status_code == 200
    sent_delivery.refresh_from_db()
    assert sent_delivery.status == Delivery.Status.BOUNCED
    assert "unable to deliver" in sent_delivery.last_error
    reader = sent_delivery.subscriber
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.BOUNCED
    assert reader not in Subscriber.objects.entitled()


@pytest.mark.django_db
def test_a_spam_complaint_suppresses_the_address(tracking, sent_delivery):
    tracking(postmark_event("SpamComplaint", "reader@example.com", Type="SpamComplaint"))

    reader = sent_delivery.subscriber
    reader.refresh_from_db()
    assert reader.email_status == Subscriber.EmailStatus.COMPLAINED
    sent_delivery.refresh_from_db()
    assert sent_delivery.status == Delivery.Status.SENT


@pytest.mark.django_db
def test_a_soft_bounce_changes_nothing(tracking, sent_delivery):
    tracking(postmark_event("Bounce", "reader@example.com", Type="SoftBounce"))

    sent_delivery.subscriber.refresh_from_db()
    assert sent_delivery.subscriber.email_status == Subscriber.EmailStatus.ACTIVE


def postmark_delivery(recipient: str, delivery_id: str | None) -> dict:
    """Postmark's Delivery webhook, as its documentation shows it."""
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": "00000000-0000-0000-0000-000000000000",
        "Recipient": recipient,
        "Tag": "",
        "DeliveredAt": "2026-11-30T11:05:00Z",
        "Details": "Test delivery webhook details",
        "Metadata": {"delivery_id": delivery_id} if delivery_id else {},
    }


@pytest.mark.django_db
def test_a_delivery_event_confirms_a_send_whose_answer_was_lost(tracking, sent_delivery):
    Delivery.objects.filter(pk=sent_delivery.pk).update(last_error=Delivery.UNCONFIRMED_NOTE)
    assert send_report.unconfirmed(sent_delivery.edition) == 1

    response = tracking(postmark_delivery("Reader@Example.com", str(sent_delivery.pk)))

    assert response.status_code == 200
    sent_delivery.refresh_from_db()
    assert (sent_delivery.status, sent_delivery.last_error) == (Delivery.Status.SENT, "")
    assert send_report.unconfirmed(sent_delivery.edition) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("recipient", "named"),
    [
        ("someone-else@example.com", "own"),  # another address: not this delivery's reader
        ("reader@example.com", None),  # no delivery id: a message we cannot place
        ("reader@example.com", "not-a-number"),
        ("reader@example.com", "999999"),  # no such delivery
    ],
)
def test_a_delivery_event_that_is_not_the_rows_own_confirms_nothing(
    tracking, sent_delivery, recipient, named
):
    Delivery.objects.filter(pk=sent_delivery.pk).update(last_error=Delivery.UNCONFIRMED_NOTE)
    delivery_id = str(sent_delivery.pk) if named == "own" else named

    assert tracking(postmark_delivery(recipient, delivery_id)).status_code == 200

    sent_delivery.refresh_from_db()
    assert sent_delivery.last_error == Delivery.UNCONFIRMED_NOTE
    assert sent_delivery.subscriber.email_status == Subscriber.EmailStatus.ACTIVE


@pytest.fixture
def sendgrid_tracking(settings, client):
    """SendGrid's event webhook: a JSON list of events, our custom_args among each's keys."""
    settings.EMAIL_ESP = "sendgrid"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}
    settings.ROOT_URLCONF = "delivery.tests.urls_with_esp"

    def post(delivery: Delivery, event: str, credentials: str = "hook:s3cret", **fields: str):
        record = {
            "email": delivery.subscriber.email,
            "timestamp": 1764500700,
            "event": event,
            "sg_event_id": f"sg-{event}-1",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "delivery_id": str(delivery.pk),  # our custom_args, merged into the event
            **fields,
        }
        token = base64.b64encode(credentials.encode()).decode()
        return client.post(
            "/anymail/sendgrid/tracking/",
            data=json.dumps([record]),
            content_type="application/json",
            headers={"Authorization": f"Basic {token}"} if credentials else {},
        )

    return post


@pytest.mark.django_db
def test_sendgrid_bounces_suppress_and_its_blocks_do_not(sendgrid_tracking, sent_delivery):
    blocked = sendgrid_tracking(sent_delivery, "bounce", type="blocked", reason="421 try later")
    assert blocked.status_code == 200
    sent_delivery.subscriber.refresh_from_db()
    assert sent_delivery.subscriber.email_status == Subscriber.EmailStatus.ACTIVE

    sendgrid_tracking(sent_delivery, "bounce", type="bounce", reason="550 5.1.1 unknown user")

    sent_delivery.refresh_from_db()
    assert sent_delivery.status == Delivery.Status.BOUNCED
    sent_delivery.subscriber.refresh_from_db()
    assert sent_delivery.subscriber.email_status == Subscriber.EmailStatus.BOUNCED


@pytest.mark.faults
@pytest.mark.django_db
@pytest.mark.parametrize("credentials", ["", "hook:wrong"])
def test_sendgrids_webhook_refuses_events_without_its_secret(
    sendgrid_tracking, sent_delivery, credentials
):
    refused = sendgrid_tracking(sent_delivery, "bounce", credentials=credentials, type="bounce")
    assert refused.status_code == 400
    sent_delivery.subscriber.refresh_from_db()
    assert sent_delivery.subscriber.email_status == Subscriber.EmailStatus.ACTIVE


@pytest.mark.django_db
def test_a_sendgrid_delivered_event_confirms_a_send_whose_answer_was_lost(
    sendgrid_tracking, sent_delivery
):
    Delivery.objects.filter(pk=sent_delivery.pk).update(last_error=Delivery.UNCONFIRMED_NOTE)

    assert sendgrid_tracking(sent_delivery, "delivered", response="250 OK").status_code == 200

    sent_delivery.refresh_from_db()
    assert (sent_delivery.status, sent_delivery.last_error) == (Delivery.Status.SENT, "")


@pytest.mark.faults
@pytest.mark.django_db
@pytest.mark.parametrize("credentials", [None, "hook:wrong", "other:s3cret"])
def test_the_tracking_webhook_refuses_requests_without_its_secret(
    tracking, sent_delivery, credentials
):
    response = tracking(
        postmark_event("Bounce", "reader@example.com", Type="HardBounce"), credentials
    )

    assert response.status_code == 400
    sent_delivery.subscriber.refresh_from_db()
    assert sent_delivery.subscriber.email_status == Subscriber.EmailStatus.ACTIVE


@pytest.mark.django_db
def test_without_an_esp_there_is_no_tracking_endpoint(client):
    response = client.post(
        "/anymail/postmark/tracking/", data="{}", content_type="application/json"
    )
    assert response.status_code == 404
