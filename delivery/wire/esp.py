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

A call that went out and got no clear answer (a timeout, a reset, a 5xx)
leaves its readers unconfirmed: the ESP has most likely accepted them, and
its webhooks (carrying our delivery id) say what became of each. A 429 is
"slow down": nobody is refused for it.
"""

import json
from collections.abc import Callable
from email.utils import formataddr
from typing import Any

import requests
from anymail.backends.mailgun import EmailBackend as MailgunBackend
from anymail.backends.postmark import EmailBackend as PostmarkBackend
from anymail.backends.sendgrid import EmailBackend as SendGridBackend
from anymail.exceptions import AnymailError, AnymailRequestsAPIError
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from urllib3.exceptions import MaxRetryError, NewConnectionError

from delivery.emails import DigestMessage, DigestTemplate
from delivery.models import Delivery, message_id_for
from delivery.wire.outcomes import CallRefused, Outcome, Refused, Throttled, Unconfirmed
from newsletter.models import Edition
from subscriptions.models import single_line

# Each ESP's most recipients (or messages) per call, from its API documentation.
POSTMARK_BATCH_LIMIT = 500
MAILGUN_BATCH_LIMIT = 1000
SENDGRID_BATCH_LIMIT = 1000
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
    return None
