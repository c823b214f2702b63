"""Amazon SES v2's SendBulkEmail (delivery.wire.esp.SESBulk): 50 readers a call, each their own.

Through django-anymail's real amazon_ses backend settings and boto3's real
sesv2 client to a fake SES in a process of its own (testing.fake_esp),
which renders each entry's message from the call's inline Handlebars
template and that entry's data with pybars3 (a Python Handlebars: SES's own
renderer cannot be reached from here), and stores what each reader got.
Every outcome of a call: all accepted, some entries refused, the account
refused, the whole call refused (4xx), a 429 or SES's throttling, no clear
answer (a timeout, a 5xx, a hang-up), SES unreachable.
"""

import email.header
import json
from collections import Counter
from types import SimpleNamespace

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from django.core.mail import mailers
from hypothesis import given, strategies
from hypothesis import settings as hypothesis_settings
from pybars import Compiler

from config import env
from delivery import batches, by_hand, send_report
from delivery.emails import DigestMessage
from delivery.models import Delivery, message_id_for
from delivery.wire import esp
from delivery.wire.outcomes import CallRefused, Refused, Throttled, Unconfirmed
from newsletter.tests.factories import built_edition, make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY, MONDAY_BEFORE_SEND
from testing.fake_esp import FakeESPProcess

pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND)]

# What Handlebars could read as its own, in an article's title and body.
TRICKY = r"{{a}} {{{b}}} \{{c}} \\{{d}} }} {{{{raw}}}} {{! note}} {{#if x}}\ & < > \ end"
TRICKY_BODY = (
    r"<p>Braces {{like}} {{{these}}}, \{{escaped}} and \\{{twice}}; closing }} and }}}."
    "</p><p>A trailing backslash\\</p><p>{</p><p>\\</p><p>Ampersand & less-than &lt; {{</p>"
)


@pytest.fixture
def fake_esp(tmp_path):
    server = FakeESPProcess(tmp_path / "esp")
    yield server
    server.stop()


@pytest.fixture
def through_ses(fake_esp, settings):
    """The default mailer is anymail's amazon_ses backend, its boto3 client at the fake."""
    settings.MAILERS = {"default": fake_esp.mailer("amazon_ses", timeout=2)}


@pytest.fixture
def readers():
    make_article()
    return [make_subscriber(f"reader{n}@example.com", name=f"Reader {n}") for n in range(7)]


@pytest.fixture
def own_messages(monkeypatch):
    """Each reader's own message (DigestTemplate.message_for), made as their call goes."""
    messages: dict[str, DigestMessage] = {}
    real_call = esp.SESBulk.call

    def call(self, readers):
        for delivery, digest in readers:
            messages[delivery.subscriber.email] = digest.message_for(
                delivery.subscriber, message_id=message_id_for(self.edition, delivery.pk)
            )
        return real_call(self, readers)

    monkeypatch.setattr(esp.SESBulk, "call", call)
    return messages


def statuses() -> dict[str, int]:
    return dict(Counter(Delivery.objects.values_list("status", flat=True)))


def test_one_call_per_50_readers_of_a_content_and_another_for_another_content(
    through_ses, fake_esp
):
    make_article()
    paris = [make_subscriber(f"paris{n}@example.com", time_zone="Europe/Paris") for n in range(52)]
    york = [make_subscriber(f"york{n}@example.com", time_zone="America/New_York") for n in range(3)]
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 55 and statuses() == {"sent": 55}
    # Paris's digest and New York's differ (their "since" line): two contents.
    calls = fake_esp.calls()
    assert {call["esp"] for call in calls} == {"amazon_ses"}
    assert sorted(call["recipients"] for call in calls) == [2, 3, 50]
    assert fake_esp.recipients() == sorted(reader.email for reader in paris + york)


def test_every_reader_gets_exactly_their_own_message(through_ses, fake_esp, own_messages, settings):
    # Non-ASCII and Handlebars' own characters in the subject and the List-Id.
    settings.NEWSLETTER_NAME = r"Café {{Briefing}} \{{x}} & <Co>"
    make_article(title=f"Title {TRICKY}", dek=f"Dek {TRICKY}", body=TRICKY_BODY)
    readers = [
        make_subscriber("plain@example.com", name="Ann Plain"),
        make_subscriber("braces@example.com", name=r"{{Bob}} \{{O'Brien}} & <Co> \\"),
        make_subscriber("nobody@example.com", name=""),
        make_subscriber(
            "trial@example.com", name="Zoë Trial", membership="trialing",
            membership_fields={"trial_end": MONDAY_BEFORE_SEND.replace(day=10, month=12)},
        ),
    ]  # fmt: skip
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 4
    assert [call["recipients"] for call in fake_esp.calls()] == [4]
    received = {record["to"]: record for record in fake_esp.received()}
    deliveries = {d.subscriber.email: d for d in Delivery.objects.select_related("subscriber")}
    assert sorted(received) == sorted(own_messages) == sorted(r.email for r in readers)
    for address, mine in own_messages.items():
        got = received[address]
        assert "{{" in mine.body and "\\{{" in mine.body  # the content is as tricky as meant
        assert got["text"] == mine.body
        assert got["html"] == mine.html
        assert got["subject"] == mine.subject
        headers = got["headers"]
        assert headers["List-Unsubscribe"] == mine.extra_headers["List-Unsubscribe"]
        assert got["own_list_unsubscribe"]
        # message_id_for's, as the reader's claim made it when their call went.
        assert headers["Message-ID"] == mine.extra_headers["Message-ID"]
        assert headers["Message-ID"].startswith(f"<digest.{edition.date:%Y%m%d}.")
        for shared in ("List-Unsubscribe-Post", "Feedback-ID"):
            assert headers[shared] == mine.extra_headers[shared]
        # The List-Id's name is non-ASCII: RFC 2047 words, read back as it was.
        assert headers["List-Id"].isascii()
        assert (
            str(email.header.make_header(email.header.decode_header(headers["List-Id"])))
            == (mine.extra_headers["List-Id"])
        )
        # What anymail's SES tracking webhook reads the metadata from (X-Metadata).
        assert got["metadata"] == {
            "delivery_id": str(deliveries[address].pk),
            "edition": str(edition.date),
        }
    assert len({record["headers"]["List-Unsubscribe"] for record in received.values()}) == 4


def test_the_template_renders_each_message_from_its_entry_data_alone_or_merged(
    through_ses, own_messages, monkeypatch
):
    """The call's template through pybars3, each entry's data alone and over the default's.

    SES's documentation does not say whether an entry's data is merged with
    the call's default data or replaces it: the messages come out right either way.
    """
    make_article(title=TRICKY, body=TRICKY_BODY)
    make_subscriber("braces@example.com", name=r"{{{Bob}}} \\{{x}}")
    make_subscriber("plain@example.com", name="Ann")
    edition = built_edition(MONDAY)
    requests: list[dict] = []

    def send_bulk_email(**params):
        requests.append(params)
        entries = params["BulkEmailEntries"]
        return {"BulkEmailEntryResults": [{"Status": "SUCCESS"} for _ in entries]}

    client = SimpleNamespace(send_bulk_email=send_bulk_email)
    monkeypatch.setattr(esp, "ses_client", lambda backend: client)

    assert by_hand.send_edition_in_process(edition.pk).sent == 2

    (request,) = requests
    template = request["DefaultContent"]["Template"]
    compiler = Compiler()
    content = template["TemplateContent"]
    text, html = compiler.compile(content["Text"]), compiler.compile(content["Html"])
    subject = compiler.compile(content["Subject"])
    default = json.loads(template["TemplateData"])
    assert len(request["BulkEmailEntries"]) == 2
    for entry in request["BulkEmailEntries"]:
        address = entry["Destination"]["ToAddresses"][0].split("<")[-1].rstrip(">")
        mine = own_messages[address]
        data = json.loads(entry["ReplacementEmailContent"]["ReplacementTemplate"][
            "ReplacementTemplateData"])  # fmt: skip
        for values in (data, {**default, **data}):
            assert str(text(values)) == mine.body
            assert str(html(values)) == mine.html
            assert str(subject(values)) == mine.subject


@hypothesis_settings(max_examples=300, deadline=None)
@given(strategies.text(alphabet=strategies.sampled_from("{}\\ a&<!#~/^>\n"), max_size=40))
def test_any_text_comes_out_of_handlebars_as_it_went_in(text):
    template = Compiler().compile(esp.handlebars_text(text))
    assert str(template(esp.LITERAL_DATA)) == text


def test_some_entries_refused_fail_only_those_readers(through_ses, fake_esp, readers):
    fake_esp.inject_faults(refuse=["reader2@example.com", "reader5@example.com"])
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 5 and report.failed == 2
    assert statuses() == {"sent": 5, "failed": 2}
    refused = Delivery.objects.filter(status=Delivery.Status.FAILED)
    assert {d.subscriber.email for d in refused} == {"reader2@example.com", "reader5@example.com"}
    assert all("MESSAGE_REJECTED" in d.last_error for d in refused)
    assert sorted(record["to"] for record in fake_esp.received()) == [
        f"reader{n}@example.com" for n in (0, 1, 3, 4, 6)
    ]


@pytest.mark.parametrize("status", ["TRANSIENT_FAILURE", "FAILED", "MAIL_FROM_DOMAIN_NOT_VERIFIED"])
def test_an_entry_ses_did_not_take_is_tried_again_the_others_went(
    through_ses, fake_esp, readers, status
):
    fake_esp.inject_faults(entry_status={"reader3@example.com": status})
    edition = built_edition(MONDAY)

    with pytest.raises(batches.TransientSendError, match=status) as raised:
        by_hand.send_edition_in_process(edition.pk)

    assert not isinstance(raised.value, batches.ThrottledSend)
    # SES took the others of the call; nobody is failed for this one.
    assert statuses() == {"sent": 6, "queued": 1}
    waiting = Delivery.objects.get(status=Delivery.Status.QUEUED)
    assert waiting.subscriber.email == "reader3@example.com" and waiting.attempts == 1
    fake_esp.clear_faults()
    by_hand.send_edition_in_process(edition.pk)
    assert fake_esp.recipients() == sorted(reader.email for reader in readers)


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 400},  # BadRequestException
        {"access_key": "AKIDANOTHER"},  # 403: credentials SES does not know
        {"entry_status": {f"reader{n}@example.com": "ACCOUNT_SUSPENDED" for n in range(7)}},
    ],
    ids=["400", "403", "account-suspended"],
)
def test_a_call_refused_whole_sends_nobody_and_is_retried(through_ses, fake_esp, readers, fault):
    fake_esp.inject_faults(**fault)
    edition = built_edition(MONDAY)

    with pytest.raises(batches.TransientSendError) as raised:
        by_hand.send_edition_in_process(edition.pk)

    assert not isinstance(raised.value, batches.ThrottledSend)
    assert fake_esp.received() == []
    # Back in the queue, SES's answer said, one attempt counted each.
    assert statuses() == {"queued": 7}
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}
    causes = {
        "status": "400 BadRequest",
        "access_key": "403 Unrecognized",
        "entry_status": "ACCOUNT_SUSPENDED",
    }
    (cause,) = (text for key, text in causes.items() if key in fault)
    assert all(cause in e for e in Delivery.objects.values_list("last_error", flat=True))

    fake_esp.clear_faults()
    by_hand.send_edition_in_process(edition.pk)
    assert fake_esp.recipients() == sorted(reader.email for reader in readers)


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "retry_after": "1"},
        {"status": 400, "error_code": "LimitExceededException"},
        {"entry_status": {f"reader{n}@example.com": "ACCOUNT_THROTTLED" for n in range(7)}},
    ],
    ids=["429", "limit-exceeded", "account-throttled"],
)
def test_throttling_slows_the_send_without_failing_or_counting_anyone(
    through_ses, fake_esp, readers, fault
):
    fake_esp.inject_faults(**fault)
    edition = built_edition(MONDAY)

    with pytest.raises(batches.ThrottledSend):
        by_hand.send_edition_in_process(edition.pk)

    assert statuses() == {"queued": 7}
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {0}
    assert fake_esp.received() == []
    fake_esp.clear_faults()
    report = by_hand.send_edition_in_process(edition.pk)
    assert report.sent == 7
    assert fake_esp.recipients() == sorted(reader.email for reader in readers)


@pytest.mark.parametrize("fault", [{"delay_seconds": 4}, {"status": 503}, {"hang_up": True}])
def test_a_call_without_a_clear_answer_leaves_its_readers_unconfirmed_never_resent(
    through_ses, fake_esp, readers, fault
):
    fake_esp.inject_faults(**fault)  # the fake stores the call: it went out
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 7
    assert set(Delivery.objects.values_list("status", "last_error")) == {
        ("sent", Delivery.UNCONFIRMED_NOTE)
    }
    assert send_report.unconfirmed(edition) == 7
    # One call, not retried by boto3 (its default retries a timeout or a 5xx).
    assert len(fake_esp.calls()) == 1
    fake_esp.clear_faults()
    by_hand.send_edition_in_process(edition.pk)
    assert len(fake_esp.calls()) == 1
    assert fake_esp.recipients() == sorted(reader.email for reader in readers)


def test_an_unreachable_ses_sends_nobody_and_is_retried(through_ses, fake_esp, readers):
    fake_esp.stop()  # nothing listens on its port any more
    edition = built_edition(MONDAY)

    with pytest.raises(batches.TransientSendError, match="could not be reached"):
        by_hand.send_edition_in_process(edition.pk)

    assert statuses() == {"queued": 7}


def test_ses_without_a_region_sends_nobody_and_frees_the_batch_for_a_retry(
    fake_esp, readers, settings, monkeypatch
):
    # The operator set the credentials and forgot the region (boto3 reads
    # AWS_DEFAULT_REGION): anymail's backend fails to open its client.
    mailer = fake_esp.mailer("amazon_ses")
    del mailer["OPTIONS"]["session_params"]["region_name"]
    settings.MAILERS = {"default": mailer}
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    edition = built_edition(MONDAY)

    with pytest.raises(batches.TransientSendError, match="region"):
        by_hand.send_edition_in_process(edition.pk)

    # Nothing held until a lease runs out: back in the queue, to be retried.
    assert statuses() == {"queued": 7}
    assert fake_esp.calls() == []


def test_ses_bulk_is_chosen_for_an_amazon_ses_url(fake_esp, readers, settings, monkeypatch):
    # As settings make the mailer from EMAIL_ESP; boto3 reads the AWS_* variables.
    _esp, options, _anymail = env.esp_options(
        f"amazon_ses://?configuration_set=briefing&api_url=http://127.0.0.1:{fake_esp.port}"
    )
    settings.MAILERS = {
        "default": {"BACKEND": "anymail.backends.amazon_ses.EmailBackend", "OPTIONS": options}
    }
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")  # boto3 reads no AWS_REGION
    fake_esp.inject_faults(access_key="AKIDFROMENV")
    assert esp.batch_carrier_for(mailers["default"]) is esp.SESBulk
    edition = built_edition(MONDAY)

    report = by_hand.send_edition_in_process(edition.pk)

    assert report.sent == 7
    assert fake_esp.calls() == [{"esp": "amazon_ses", "recipients": 7, "status": 200}]
    assert fake_esp.recipients() == sorted(reader.email for reader in readers)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("SUCCESS", None),
        ("MESSAGE_REJECTED", Refused),
        ("INVALID_PARAMETER", Refused),
        ("ACCOUNT_THROTTLED", Throttled),
        ("ACCOUNT_SUSPENDED", CallRefused),
        ("ACCOUNT_SENDING_PAUSED", CallRefused),
        ("ACCOUNT_DAILY_QUOTA_EXCEEDED", CallRefused),
        ("CONFIGURATION_SET_SENDING_PAUSED", CallRefused),
        ("MAIL_FROM_DOMAIN_NOT_VERIFIED", CallRefused),
        ("TRANSIENT_FAILURE", CallRefused),
        ("FAILED", CallRefused),
        ("A_STATUS_SES_ADDS_LATER", CallRefused),
    ],
)
def test_each_entry_status_means_an_outcome_for_its_reader(status, outcome):
    result = esp.entry_outcome({"Status": status, "Error": "SES's words"})
    if outcome is None:
        assert result is None
    else:
        assert type(result) is outcome and (status in str(result))


def client_error(code: str, status: int, retry_after: str | None = None) -> ClientError:
    headers = {"retry-after": retry_after} if retry_after else {}
    response = {
        "Error": {"Code": code, "Message": "SES's words"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers},
    }
    return ClientError(response, "SendBulkEmail")


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (client_error("TooManyRequestsException", 429, "3"), Throttled),
        (client_error("LimitExceededException", 400), Throttled),
        (client_error("BadRequestException", 400), CallRefused),
        (client_error("AccountSuspendedException", 400), CallRefused),
        (client_error("SendingPausedException", 400), CallRefused),
        (client_error("InternalFailure", 500), Unconfirmed),
        (EndpointConnectionError(endpoint_url="https://email.example"), CallRefused),
        (ConnectTimeoutError(endpoint_url="https://email.example"), CallRefused),
        (ReadTimeoutError(endpoint_url="https://email.example"), Unconfirmed),
        (ConnectionClosedError(endpoint_url="https://email.example"), Unconfirmed),
        (NoCredentialsError(), CallRefused),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_each_failed_call_means_an_outcome_for_its_readers(error, outcome):
    result = esp.failed_ses_call(error)
    assert type(result) is outcome
    if isinstance(error, ClientError) and error.response["ResponseMetadata"]["HTTPHeaders"]:
        assert isinstance(result, Throttled) and result.retry_after == 3
