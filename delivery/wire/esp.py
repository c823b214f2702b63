"""ESPs' batch APIs: one HTTP call carries up to the ESP's limit of readers.

One request per reader costs a round trip each (50 ms away: 20 emails/s per
connection). Every major ESP takes many recipients per call, and these
carriers fill one call before sending it (delivery.wire.outcomes.Carrier):

- Postmark's /email/batch takes up to 500 whole messages, each its own
  headers and metadata: every reader's exact message, and an answer per
  message. Anymail sends one message per call, so this posts the batch
  itself, over the anymail backend's own session, token and API URL.
- Mailgun's messages API takes up to 1,000 recipients of one content, with
  each reader's values as "recipient variables", and SendGrid's v3 mail
  send up to 1,000 "personalizations" of one content, each reader's values
  as substitutions: django-anymail's batch sending (merge_data,
  merge_headers, merge_metadata) builds either call. Readers are grouped by
  content (the DigestTemplate they share), and the body carries a merge
  field (`%recipient.<field>%`, `-<field>-`) where a reader's own value
  goes (greeting, links, List-Unsubscribe, click links; the metadata that
  maps bounces and complaints back to the delivery).
- Amazon SES v2's SendBulkEmail takes up to 50 entries of one template,
  each with its own template data, headers and tags. The template goes
  inline (no stored template to keep in step with the content): the
  content's text, HTML and subject as Handlebars, a triple-stash tag
  `{{{text_<field>}}}` where a reader's own value goes (inserted as it is:
  our values are already escaped for their part), and every "{", "}" and
  "\\" of the content itself written as a tag whose value is that
  character, so that no Handlebars implementation reads anything in the
  content but our own tags. Each entry carries the reader's List-Unsubscribe
  and Message-ID, and their X-Metadata header: the one anymail's SES
  tracking webhook reads the metadata from. This calls the sesv2 client
  itself, built from the anymail backend's own settings (credentials,
  region, AMAZON_SES_CLIENT_PARAMS' endpoint_url), rather than through
  anymail's esp_extra: anymail's bulk payload sends only a stored template
  and refuses a body; its client retries a timeout or a 5xx (botocore's
  default), which here would resend readers blindly; and a call's per-entry
  statuses and errors are what each reader's outcome is made of.

A call that went out and got no clear answer (a timeout, a reset, a 5xx)
leaves its readers unconfirmed: the ESP has most likely accepted them, and
its webhooks (carrying our delivery id) say what became of each. A 429 is
"slow down": nobody is refused for it.
"""

import email.policy
import json
import re
import threading
from collections.abc import Callable
from email.utils import formataddr
from typing import Any

import boto3
import requests
from anymail.backends.amazon_ses import EmailBackend as AmazonSESBackend
from anymail.backends.mailgun import EmailBackend as MailgunBackend
from anymail.backends.postmark import EmailBackend as PostmarkBackend
from anymail.backends.sendgrid import EmailBackend as SendGridBackend
from anymail.exceptions import AnymailError, AnymailRequestsAPIError
from anymail.utils import parse_address_list
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from urllib3.exceptions import MaxRetryError, NewConnectionError

from delivery.emails import NONCE, DigestMessage, DigestTemplate, reader_slot
from delivery.models import Delivery, message_id_for
from delivery.wire.outcomes import CallRefused, Outcome, Refused, Throttled, Unconfirmed
from newsletter.models import Edition
from subscriptions.models import single_line

# Each ESP's most recipients (or messages) per call, from its API documentation.
POSTMARK_BATCH_LIMIT = 500
MAILGUN_BATCH_LIMIT = 1000
SENDGRID_BATCH_LIMIT = 1000
SES_BULK_LIMIT = 50
# Postmark's per-message error codes about the recipient, not the call:
# 300 invalid address, 406 inactive (bounced or complained before).
POSTMARK_RECIPIENT_ERRORS = {300, 406}


def went_out(error: requests.RequestException) -> bool:
    """Whether the request may have reached the ESP (so its readers may have the email)."""
    if isinstance(error, requests.ConnectTimeout):
        return False
    if isinstance(error, requests.ConnectionError):
        # Refused or unreachable before a byte went: urllib3's NewConnectionError.
        reason = error.args[0] if error.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        return not isinstance(reason, NewConnectionError)
    return True


def call_outcome(status: int | None, answer: str, retry_after: str | None = None) -> Exception:
    """What an unsuccessful call means for every reader in it."""
    if status == 429:
        return Throttled(f"429 {answer}"[:500], seconds(retry_after))
    if status is not None and 400 <= status < 500:
        return CallRefused(f"{status} {answer}"[:500])
    # A 5xx, or no answer at all, after the request went out.
    return Unconfirmed(f"The ESP did not confirm the call: {status or ''} {answer}"[:500])


def seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:  # an HTTP date: the default backoff will do
        return None


def failed_call(error: Exception, answer: str = "") -> Exception:
    """The outcome for each reader of a call that raised `error`."""
    if isinstance(error, AnymailRequestsAPIError) and isinstance(
        error.__cause__, requests.RequestException
    ):
        # Anymail's error for a request that failed: the requests error it wraps.
        error = error.__cause__
    if isinstance(error, requests.RequestException):
        response = error.response
        if response is not None:
            return call_outcome(
                response.status_code,
                response.text[:300],
                response.headers.get("Retry-After"),
            )
        if not went_out(error):
            return CallRefused(f"The ESP could not be reached: {answer or error}"[:500])
        return Unconfirmed(f"The ESP did not confirm the call: {error}"[:500])
    return error


class BatchCarrier:
    """Holds readers until a call is full, then sends it; outcomes per reader."""

    records_each_window = True
    reconnects_itself = False
    limit = 1

    def __init__(self, connection: BaseEmailBackend, edition: Edition) -> None:
        self.connection = connection
        self.edition = edition
        self.held: dict[object, list[tuple[Delivery, DigestTemplate]]] = {}
        self.calls = 0

    def group(self, digest: DigestTemplate) -> object:
        """Readers who may share one call: by default, anyone."""
        return None

    def send(self, delivery: Delivery, digest: DigestTemplate) -> list[Outcome[Delivery]]:
        key = self.group(digest)
        held = self.held.setdefault(key, [])
        held.append((delivery, digest))
        if len(held) < min(self.limit, settings.DIGEST_BATCH_SIZE):
            return []
        del self.held[key]
        return self.call(held)

    def finish(self) -> list[Outcome[Delivery]]:
        outcomes: list[Outcome[Delivery]] = []
        while self.held:
            _key, held = self.held.popitem()
            outcomes += self.call(held)
        return outcomes

    def abort(self) -> list[Outcome[Delivery]]:
        self.held.clear()  # never sent
        return []

    def call(self, readers: list[tuple[Delivery, DigestTemplate]]) -> list[Outcome[Delivery]]:
        raise NotImplementedError

    def metadata(self, delivery: Delivery) -> dict[str, str]:
        # Returned with the ESP's bounce and complaint events (deliverability.tracking).
        return {"delivery_id": str(delivery.pk), "edition": str(self.edition.date)}


class PostmarkBatch(BatchCarrier):
    """Postmark's /email/batch: up to 500 whole messages, one answer each."""

    limit = POSTMARK_BATCH_LIMIT
    connection: PostmarkBackend

    def call(self, readers: list[tuple[Delivery, DigestTemplate]]) -> list[Outcome[Delivery]]:
        body = []
        for delivery, digest in readers:
            message = digest.message_for(
                delivery.subscriber, message_id=message_id_for(self.edition, delivery.pk)
            )
            body.append(self.payload(message, self.metadata(delivery)))
        self.calls += 1
        backend = self.connection
        if backend.session is None:
            backend.open()
        try:
            response = backend.session.post(
                f"{backend.api_url}email/batch",
                data=json.dumps(body),
                headers={
                    "Accept": "application/json",
                    "Content-Type": "application/json",
                    "X-Postmark-Server-Token": backend.server_token,
                },
                timeout=backend.timeout,
            )
        except requests.RequestException as error:
            outcome = failed_call(error)
            return [(delivery, outcome) for delivery, _digest in readers]
        if response.status_code != 200:
            outcome = call_outcome(
                response.status_code, response.text[:300], response.headers.get("Retry-After")
            )
            return [(delivery, outcome) for delivery, _digest in readers]
        try:
            answers = response.json()
            if not isinstance(answers, list) or len(answers) != len(readers):
                raise ValueError(f"{len(readers)} messages, answers: {str(answers)[:200]}")
        except ValueError as error:
            # Accepted (200) but not understood: what became of each is not known.
            unknown = Unconfirmed(f"Postmark's answer was not understood: {error}"[:500])
            return [(delivery, unknown) for delivery, _digest in readers]
        return [
            (delivery, self.answer_outcome(answer))
            for (delivery, _digest), answer in zip(readers, answers, strict=True)
        ]

    @staticmethod
    def answer_outcome(answer: dict[str, Any]) -> Exception | None:
        code = answer.get("ErrorCode")
        if code == 0:
            return None
        text = str(answer.get("Message", ""))
        if code in POSTMARK_RECIPIENT_ERRORS:
            return Refused(code, text)
        if code == 429:
            return Throttled(f"{code} {text}")
        return CallRefused(f"Postmark error {code}: {text}"[:500])

    @staticmethod
    def payload(message: DigestMessage, metadata: dict[str, str]) -> dict[str, Any]:
        return {
            "From": message.from_email,
            "To": ", ".join(message.to),
            "ReplyTo": ", ".join(message.reply_to),
            "Subject": message.subject,
            "TextBody": message.body,
            "HtmlBody": message.html,
            "Headers": [
                {"Name": name, "Value": str(value)} for name, value in message.extra_headers.items()
            ],
            "Metadata": metadata,
        }


class MergeBatch(BatchCarrier):
    """One content's readers in one call, their own values as the ESP's merge fields.

    django-anymail's batch sending: `merge_data` (each reader's values, which
    the ESP writes where the body carries `merge_field`), `merge_headers`
    (their List-Unsubscribe and Message-ID) and `merge_metadata` (their
    delivery id).
    """

    def group(self, digest: DigestTemplate) -> object:
        return id(digest)  # one content per call: the readers of one rendered digest

    @staticmethod
    def merge_field(part: str, field: str) -> str:
        """What stands in the body where a reader's own value goes."""
        raise NotImplementedError

    def esp_extra(self) -> dict[str, object]:
        """Anything this ESP's anymail backend needs besides the merge data."""
        return {}

    def call(self, readers: list[tuple[Delivery, DigestTemplate]]) -> list[Outcome[Delivery]]:
        digest = readers[0][1]
        text, html = digest.merge_parts(self.merge_field)
        message = EmailMultiAlternatives(
            subject=digest.subject,
            body=text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            reply_to=settings.DIGEST_REPLY_TO,
        )
        message.attach_alternative(html, "text/html")
        merge_data: dict[str, dict[str, str]] = {}
        merge_headers: dict[str, dict[str, str]] = {}
        merge_metadata: dict[str, dict[str, str]] = {}
        shared: dict[str, object] = {}
        for delivery, _digest in readers:
            subscriber = delivery.subscriber
            # The reader's own message, as the SMTP path would send it: its
            # headers (List-Unsubscribe with their own token, Message-ID) too.
            mine = digest.message_for(
                subscriber, message_id=message_id_for(self.edition, delivery.pk)
            )
            address = subscriber.email
            message.to.append(formataddr((single_line(subscriber.name), address)))
            values, html_values = digest.reader_values(subscriber)
            merge_data[address] = {
                **{f"text_{field}": value for field, value in values.items()},
                **{f"html_{field}": value for field, value in html_values.items()},
            }
            merge_headers[address] = {
                name: str(value)
                for name, value in mine.extra_headers.items()
                if name in PER_READER_HEADERS
            }
            merge_metadata[address] = {"delivery_id": str(delivery.pk)}
            shared = mine.extra_headers
        message.extra_headers = {
            name: str(value) for name, value in shared.items() if name not in PER_READER_HEADERS
        }
        anymail: Any = message  # anymail's attributes, which django-stubs does not know
        anymail.merge_data = merge_data
        anymail.merge_headers = merge_headers
        anymail.merge_metadata = merge_metadata
        anymail.metadata = {"edition": str(self.edition.date)}
        if extra := self.esp_extra():
            anymail.esp_extra = extra
        self.calls += 1
        try:
            self.connection.send_messages([message])
        except AnymailRequestsAPIError as error:
            outcome = failed_call(error, str(error))
            return [(delivery, outcome) for delivery, _digest in readers]
        except AnymailError as error:
            # Refused before any request (an address anymail cannot parse, say).
            return [(delivery, CallRefused(str(error)[:500])) for delivery, _digest in readers]
        return [(delivery, None) for delivery, _digest in readers]


class MailgunBatch(MergeBatch):
    """Mailgun's messages API: up to 1,000 readers of one content, as recipient variables."""

    limit = MAILGUN_BATCH_LIMIT

    @staticmethod
    def merge_field(part: str, field: str) -> str:
        return f"%recipient.{part}_{field}%"


# SendGrid replaces the literal text of each substitution key, so the key
# carries delimiters no digest's text has.
SENDGRID_MERGE_FIELD = "-{}-"


class SendGridBatch(MergeBatch):
    """SendGrid's v3 mail send: up to 1,000 personalizations of one content, as substitutions."""

    limit = SENDGRID_BATCH_LIMIT

    @staticmethod
    def merge_field(part: str, field: str) -> str:
        return SENDGRID_MERGE_FIELD.format(f"{part}_{field}")

    def esp_extra(self) -> dict[str, object]:
        return {"merge_field_format": SENDGRID_MERGE_FIELD}


# Handlebars reads "{{" as a tag's start, and a backslash before one as its
# escape (in ways its implementations do not agree on): the content's own
# "{", "}" and "\" are each written as a tag whose value is that character,
# so its literal text holds none of them and reads alike in any of them.
HANDLEBARS_LITERALS = {"{": "lbrace", "}": "rbrace", "\\": "backslash"}
LITERAL_DATA = {name: char for char, name in HANDLEBARS_LITERALS.items()}
HANDLEBARS_TAGS = {char: "{{{" + name + "}}}" for char, name in HANDLEBARS_LITERALS.items()}
HANDLEBARS_SPECIAL = re.compile(r"[{}\\]")
# Where merge_parts put a reader's value (the nonce's slot: no content holds it).
SES_SLOT = re.compile(reader_slot(r"((?:text|html)_[a-z_]+)").replace(NONCE, re.escape(NONCE)))

# SES's per-entry statuses (BulkEmailStatus) about that one message or
# recipient: the reader is refused, the others went.
SES_MESSAGE_ERRORS = {"MESSAGE_REJECTED", "INVALID_PARAMETER"}
# "Slow down": nobody is refused, the batch is tried again later.
SES_THROTTLING_STATUSES = {"ACCOUNT_THROTTLED"}
SES_THROTTLING_ERRORS = {
    "TooManyRequestsException",
    "Throttling",
    "ThrottlingException",
    "LimitExceededException",
}
# One attempt per call: botocore's default retries a timeout or a 5xx, and
# a call that went out unanswered must never go again blindly.
ONE_ATTEMPT = Config(retries={"total_max_attempts": 1})


def handlebars_text(text: str) -> str:
    """`text` as a Handlebars template that renders exactly `text` (with LITERAL_DATA)."""
    return HANDLEBARS_SPECIAL.sub(lambda match: HANDLEBARS_TAGS[match[0]], text)


def handlebars_parts(digest: DigestTemplate) -> tuple[str, str]:
    """The content's text and HTML as Handlebars, a triple-stash tag in each reader slot.

    Triple-stash: SES inserts the value as it is. Our values are already
    escaped for their part (reader_values), and a double-stash would
    HTML-escape them once more, in the text part too.
    """
    text, html = digest.merge_parts(lambda part, field: reader_slot(f"{part}_{field}"))
    tag = r"{{{\1}}}"
    return SES_SLOT.sub(tag, handlebars_text(text)), SES_SLOT.sub(tag, handlebars_text(html))


def header_value(value: object) -> str:
    """A header's value as SES takes it: printable ASCII, RFC 2047 words for the rest."""
    text = str(value)
    if text.isascii():
        return text
    _name, _colon, folded = email.policy.SMTP.fold("X", text).partition(": ")
    return folded.replace("\r\n", "").rstrip()


def entry_outcome(result: dict[str, Any]) -> Exception | None:
    """What SES's answer for one entry (BulkEmailEntryResults[]) means for its reader.

    Besides a refusal of the message itself and a throttled account, every
    status says SES did not take it for a reason that is not the reader's: the
    account (suspended, paused, out of its daily quota), its settings (the
    MAIL FROM domain, the configuration set) or SES itself (TRANSIENT_FAILURE;
    FAILED, "unable to process"). Not sent, so tried again later, and failed
    after MAX_ATTEMPTS if it lasts.
    """
    status = str(result.get("Status", ""))
    if status == "SUCCESS":
        return None
    answer = f"{status}: {result.get('Error', '')}"[:500]
    if status in SES_MESSAGE_ERRORS:
        return Refused(None, answer)
    if status in SES_THROTTLING_STATUSES:
        return Throttled(answer)
    return CallRefused(f"Amazon SES: {answer}"[:500])


def failed_ses_call(error: BotoCoreError | ClientError) -> Exception:
    """The outcome for each reader of a SendBulkEmail call that raised `error` (botocore's)."""
    if isinstance(error, ClientError):
        # SES answered: its HTTP status says what, and a throttling code whatever the status.
        code = str(error.response.get("Error", {}).get("Code", ""))
        message = str(error.response.get("Error", {}).get("Message", ""))
        metadata = error.response.get("ResponseMetadata", {})
        status = metadata.get("HTTPStatusCode")
        if code in SES_THROTTLING_ERRORS:
            status = 429
        retry_after = metadata.get("HTTPHeaders", {}).get("retry-after")
        return call_outcome(status, f"{code}: {message}", retry_after)
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        # No connection was made: nothing went.
        return CallRefused(f"The ESP could not be reached: {error}"[:500])
    if isinstance(error, HTTPClientError | BotoConnectionError):
        # A timeout or a reset after the request went out (ReadTimeoutError,
        # ConnectionClosedError), or a TLS or proxy failure that may have come
        # after it (as went_out takes requests' errors).
        return Unconfirmed(f"The ESP did not confirm the call: {error}"[:500])
    # Refused before any request: credentials missing, a parameter botocore refuses.
    return CallRefused(f"Amazon SES call not made: {error}"[:500])


_ses_clients: dict[str, Any] = {}
_ses_clients_lock = threading.Lock()


def ses_client(backend: AmazonSESBackend) -> Any:
    """A sesv2 client from the anymail backend's own settings, making one attempt per call.

    The backend's session and client parameters (ANYMAIL's
    AMAZON_SES_SESSION_PARAMS and AMAZON_SES_CLIENT_PARAMS, or the mailer's
    OPTIONS: credentials, region, endpoint_url), with retries off. Kept per
    process for each such settings: a boto3 session takes a tenth of a
    second to load the service's model, and a batch opens a new backend.
    """
    config = backend.client_params["config"].merge(ONE_ATTEMPT)
    client_params = {**backend.client_params, "config": config}
    key = repr(
        (
            sorted(backend.session_params.items()),
            sorted((name, value) for name, value in client_params.items() if name != "config"),
            sorted(vars(config).items()),
        )
    )
    with _ses_clients_lock:
        client = _ses_clients.get(key)
        if client is None:
            session = boto3.session.Session(**backend.session_params)
            client = _ses_clients[key] = session.client("sesv2", **client_params)
    return client


class SESBulk(BatchCarrier):
    """Amazon SES v2's SendBulkEmail: up to 50 readers of one content, one answer each."""

    limit = SES_BULK_LIMIT
    connection: AmazonSESBackend

    def __init__(self, connection: BaseEmailBackend, edition: Edition) -> None:
        super().__init__(connection, edition)
        # The content's template, made once for all its calls (its last digest kept
        # with it, so an id reused by another digest is never taken for it).
        self.templates: dict[int, tuple[DigestTemplate, dict[str, Any]]] = {}

    def group(self, digest: DigestTemplate) -> object:
        return id(digest)  # one content per call: the readers of one rendered digest

    def template(self, digest: DigestTemplate) -> dict[str, Any]:
        kept = self.templates.get(id(digest))
        if kept is not None and kept[0] is digest:
            return kept[1]
        text, html = handlebars_parts(digest)
        template = {
            "TemplateContent": {
                "Subject": handlebars_text(digest.subject),
                "Text": text,
                "Html": html,
            },
            "TemplateData": json.dumps(LITERAL_DATA),
        }
        self.templates[id(digest)] = (digest, template)
        return template

    def address(self, address: str) -> str:
        """An address as SES takes it: RFC 2047 display name, IDNA domain."""
        backend = self.connection
        (parsed,) = parse_address_list([address])
        return parsed.format(use_rfc2047=True, idna_encode=backend.idna_encode)

    def request(self, readers: list[tuple[Delivery, DigestTemplate]]) -> dict[str, Any]:
        """SendBulkEmail's parameters for these readers (of one content)."""
        digest = readers[0][1]
        entries = []
        shared: dict[str, object] = {}
        for delivery, _digest in readers:
            subscriber = delivery.subscriber
            # The reader's own message, as the SMTP path would send it: its
            # headers (List-Unsubscribe with their own token, Message-ID) too.
            mine = digest.message_for(
                subscriber, message_id=message_id_for(self.edition, delivery.pk)
            )
            values, html_values = digest.reader_values(subscriber)
            data = {
                **LITERAL_DATA,  # in each entry too: SES may not merge its data with the default's
                **{f"text_{field}": value for field, value in values.items()},
                **{f"html_{field}": value for field, value in html_values.items()},
            }
            headers = [
                {"Name": name, "Value": header_value(value)}
                for name, value in mine.extra_headers.items()
                if name in PER_READER_HEADERS
            ]
            # Where anymail's SES tracking webhook reads the metadata from.
            headers.append({"Name": "X-Metadata", "Value": json.dumps(self.metadata(delivery))})
            entries.append(
                {
                    "Destination": {"ToAddresses": [self.address(mine.to[0])]},
                    "ReplacementEmailContent": {
                        "ReplacementTemplate": {"ReplacementTemplateData": json.dumps(data)}
                    },
                    "ReplacementHeaders": headers,
                }
            )
            shared = mine.extra_headers
        template = {
            **self.template(digest),
            "Headers": [
                {"Name": name, "Value": header_value(value)}
                for name, value in shared.items()
                if name not in PER_READER_HEADERS
            ],
        }
        params: dict[str, Any] = {
            "FromEmailAddress": self.address(settings.DEFAULT_FROM_EMAIL),
            "DefaultContent": {"Template": template},
            "BulkEmailEntries": entries,
        }
        if settings.DIGEST_REPLY_TO:
            params["ReplyToAddresses"] = [self.address(a) for a in settings.DIGEST_REPLY_TO]
        if self.connection.configuration_set_name:
            params["ConfigurationSetName"] = self.connection.configuration_set_name
        return params

    def call(self, readers: list[tuple[Delivery, DigestTemplate]]) -> list[Outcome[Delivery]]:
        params = self.request(readers)
        self.calls += 1
        try:
            response = ses_client(self.connection).send_bulk_email(**params)
        except (BotoCoreError, ClientError) as error:
            outcome = failed_ses_call(error)
            return [(delivery, outcome) for delivery, _digest in readers]
        results = response.get("BulkEmailEntryResults")
        if not isinstance(results, list) or len(results) != len(readers):
            # Accepted but not understood: what became of each is not known.
            unknown = Unconfirmed(f"Amazon SES's answer was not understood: {str(results)[:200]}")
            return [(delivery, unknown) for delivery, _digest in readers]
        return [
            (delivery, entry_outcome(result))
            for (delivery, _digest), result in zip(readers, results, strict=True)
        ]


# The headers that differ per reader; the rest are the call's.
PER_READER_HEADERS = {"List-Unsubscribe", "Message-ID"}


def batch_carrier_for(
    connection: BaseEmailBackend,
) -> Callable[[BaseEmailBackend, Edition], BatchCarrier] | None:
    """The batch carrier for this backend's ESP, or None (one message per call)."""
    if isinstance(connection, PostmarkBackend):
        return PostmarkBatch
    if isinstance(connection, MailgunBackend):
        return MailgunBatch
    if isinstance(connection, SendGridBackend):
        return SendGridBatch
    if isinstance(connection, AmazonSESBackend):
        return SESBulk
    return None
