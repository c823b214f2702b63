"""Fake Mailgun, Postmark, SendGrid and Amazon SES APIs for tests and the bench, in a process.

    python -m testing.fake_esp DIRECTORY

Listens on a free port on 127.0.0.1, prints "PORT <n>" once it accepts
connections, and answers Postmark's POST /email/batch (up to 500 whole
messages, X-Postmark-Server-Token) and Mailgun's POST /v3/<domain>/messages
(multipart form, basic auth "api:<key>", up to 1,000 recipients whose own
values come as recipient-variables, which it expands as Mailgun does) and
SendGrid's POST /v3/mail/send (JSON, "Authorization: Bearer <key>", up to
1,000 personalizations, each with its substitutions, headers and
custom_args, which it expands as SendGrid does) and Amazon SES v2's POST
/v2/email/outbound-bulk-emails (SendBulkEmail: JSON, any SigV4
Authorization, up to 50 entries of an inline Handlebars template, each
rendered with its own template data through pybars3, a Python Handlebars,
with its own headers over the template's). Runs until killed.

For each recipient it appends one JSON line to DIRECTORY/received.jsonl:
the ESP, the address, the expanded headers, text and HTML, the metadata, and
`own_list_unsubscribe`: whether the List-Unsubscribe header's link is the
very unsubscribe link of that reader's own text (so a batch that mixed up
its readers' values is caught). Each call appends a line to calls.jsonl
(ESP, recipients, the status answered).

Faults and behaviour, read from DIRECTORY/faults.json at every call:
    {"status": 429, "body": "...", "retry_after": "2"}  answer every call so
      (a 5xx is stored as received: the ESP may have queued it before failing)
    {"refuse": ["addr@example.com"]}  Postmark: ErrorCode 406 for those messages;
      SES: Status MESSAGE_REJECTED for those entries
    {"entry_status": {"addr@example.com": "ACCOUNT_SUSPENDED"}}  SES: that status
      for those entries
    {"error_code": "LimitExceededException"}  SES: the error type of a "status" fault
    {"access_key": "AKID..."}  SES: the access key id the SigV4 credential must name
    {"delay_seconds": 1.5}  store the call, then wait before answering (a timeout)
    {"hang_up": true}  store the call, then close the connection unanswered
    {"latency_ms": 50}  wait that long before answering every call (the bench)
    {"store": false}  count recipients in calls.jsonl only (big bench runs)
    {"token": "server-token"}, {"api_key": "key"}  the credentials required
      (default: "server-token" and "key-test")
"""

import base64
import email
import email.policy
import email.utils
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pybars import Compiler

MAILGUN_LIMIT = 1000
POSTMARK_LIMIT = 500
SENDGRID_LIMIT = 1000
SES_BULK_LIMIT = 50
# SES's error types (x-amzn-ErrorType) for a "status" fault without an "error_code".
SES_ERROR_TYPES = {
    400: "BadRequestException",
    403: "UnrecognizedClientException",
    429: "TooManyRequestsException",
}
SES_PARTS = ("Subject", "Text", "Html")
SIGV4 = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/")
RECIPIENT_VARIABLE = re.compile(r"%recipient\.([^%]+)%")
LINK = re.compile(r"<(https?://[^>]+)>")


class Store:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock = threading.Lock()

    def faults(self) -> dict[str, Any]:
        path = self.directory / "faults.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def append(self, name: str, records: list[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(record) + "\n" for record in records)
        with self.lock, (self.directory / name).open("a") as file:
            file.write(lines)


def own_list_unsubscribe(headers: dict[str, str], text: str) -> bool:
    """The List-Unsubscribe link is the reader's own: the one their text part carries."""
    match = LINK.search(headers.get("List-Unsubscribe", ""))
    return match is not None and match.group(1) in text and "%recipient" not in match.group(1)


class Handler(BaseHTTPRequestHandler):
    server: "FakeESP"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests read the files

    def do_POST(self) -> None:
        faults = self.server.store.faults()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.rstrip("/").endswith("/email/batch"):
            esp, answer = "postmark", self.postmark(body, faults)
        elif self.path.rstrip("/") == "/v3/mail/send":
            esp, answer = "sendgrid", self.sendgrid(body, faults)
        elif re.fullmatch(r"/v3/[^/]+/messages/?", self.path):
            esp, answer = "mailgun", self.mailgun(body, faults)
        elif self.path.rstrip("/") == "/v2/email/outbound-bulk-emails":
            esp, answer = "amazon_ses", self.amazon_ses(body, faults)
        else:
            self.reply(404, {"message": f"No such endpoint {self.path}"})
            return
        status, reply, recipients = answer
        went_through = (
            status in (200, 202)
            or status >= 500
            or faults.get("delay_seconds")
            or faults.get("hang_up")
        )
        if went_through and faults.get("store", True):
            # The call went through, or went out and its answer says nothing
            # sure (a 5xx, or none at all): an ESP may well have queued it.
            self.server.store.append("received.jsonl", recipients)
        self.server.store.append(
            "calls.jsonl", [{"esp": esp, "recipients": len(recipients), "status": status}]
        )
        if faults.get("latency_ms"):
            time.sleep(faults["latency_ms"] / 1000)
        if faults.get("hang_up"):
            self.close_connection = True
            self.connection.close()
            return
        if faults.get("delay_seconds"):
            time.sleep(faults["delay_seconds"])
        error_type = None
        if esp == "amazon_ses" and status >= 400:
            error_type = faults.get("error_code") or SES_ERROR_TYPES.get(status, "InternalFailure")
        self.reply(status, reply, retry_after=faults.get("retry_after"), error_type=error_type)

    def reply(
        self,
        status: int,
        body: object,
        retry_after: str | None = None,
        error_type: str | None = None,
    ) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after:
            self.send_header("Retry-After", retry_after)
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(data)

    def postmark(self, body: bytes, faults: dict[str, Any]) -> tuple[int, object, list[dict]]:
        if self.headers.get("X-Postmark-Server-Token") != faults.get("token", "server-token"):
            return 401, {"ErrorCode": 10, "Message": "Bad or missing Server API token"}, []
        messages = json.loads(body)
        if not isinstance(messages, list) or not 0 < len(messages) <= POSTMARK_LIMIT:
            return 422, {"ErrorCode": 413, "Message": "Batch of 1 to 500 messages"}, []
        refused = set(faults.get("refuse", []))
        answers, recipients = [], []
        for message in messages:
            address = email.utils.parseaddr(message["To"])[1]
            if address in refused:
                answers.append(
                    {"ErrorCode": 406, "Message": "You tried to send to a recipient that has "
                     "been marked as inactive.", "To": message["To"]}
                )  # fmt: skip
                continue
            headers = {header["Name"]: header["Value"] for header in message.get("Headers", [])}
            recipients.append(
                {
                    "esp": "postmark",
                    "to": address,
                    "subject": message["Subject"],
                    "headers": headers,
                    "text": message.get("TextBody", ""),
                    "html": message.get("HtmlBody", ""),
                    "metadata": message.get("Metadata", {}),
                    "own_list_unsubscribe": own_list_unsubscribe(
                        headers, message.get("TextBody", "")
                    ),
                }
            )
            answers.append({"ErrorCode": 0, "Message": "OK", "To": message["To"]})
        if faults.get("status"):
            return faults["status"], {"ErrorCode": 0, "Message": faults.get("body", "")}, recipients
        return 200, answers, recipients

    def mailgun(self, body: bytes, faults: dict[str, Any]) -> tuple[int, object, list[dict]]:
        expected = base64.b64encode(f"api:{faults.get('api_key', 'key-test')}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            return 401, {"message": "Invalid private key"}, []
        fields = form_fields(self.headers.get("Content-Type", ""), body)
        to = fields.get("to", [])
        if not 0 < len(to) <= MAILGUN_LIMIT:
            return 400, {"message": "'to' parameter: 1 to 1,000 recipients"}, []
        variables = json.loads(fields.get("recipient-variables", ["{}"])[0])
        recipients = []
        for recipient in to:
            address = email.utils.parseaddr(recipient)[1]
            values = variables.get(address, {})

            def expand(text: str, values: dict[str, str] = values) -> str:
                return RECIPIENT_VARIABLE.sub(lambda m: str(values.get(m.group(1), "")), text)

            headers = {
                name[2:]: expand(value[0]) for name, value in fields.items() if name[:2] == "h:"
            }
            text = expand(fields.get("text", [""])[0])
            recipients.append(
                {
                    "esp": "mailgun",
                    "to": address,
                    "subject": expand(fields.get("subject", [""])[0]),
                    "headers": headers,
                    "text": text,
                    "html": expand(fields.get("html", [""])[0]),
                    "metadata": {
                        name[2:]: expand(value[0])
                        for name, value in fields.items()
                        if name[:2] == "v:"
                    },
                    "own_list_unsubscribe": own_list_unsubscribe(headers, text),
                }
            )
        if faults.get("status"):
            return faults["status"], {"message": faults.get("body", "")}, recipients
        return 200, {"id": "<batch@fake.mailgun>", "message": "Queued. Thank you."}, recipients

    def sendgrid(self, body: bytes, faults: dict[str, Any]) -> tuple[int, object, list[dict]]:
        if self.headers.get("Authorization") != f"Bearer {faults.get('api_key', 'key-test')}":
            return 401, {"errors": [{"message": "The provided authorization grant is invalid"}]}, []
        data = json.loads(body)
        personalizations = data.get("personalizations", [])
        if not 0 < len(personalizations) <= SENDGRID_LIMIT:
            return 400, {"errors": [{"message": "1 to 1,000 personalizations"}]}, []
        content = {part["type"]: part["value"] for part in data.get("content", [])}
        recipients = []
        for personalization in personalizations:
            substitutions = personalization.get("substitutions", {})

            def expand(text: str, substitutions: dict[str, str] = substitutions) -> str:
                # Each key's literal text, as SendGrid's legacy substitutions do.
                for key, value in substitutions.items():
                    text = text.replace(key, value or "")
                return text

            headers = {**data.get("headers", {}), **personalization.get("headers", {})}
            text = expand(content.get("text/plain", ""))
            for to in personalization.get("to", []):
                recipients.append(
                    {
                        "esp": "sendgrid",
                        "to": to["email"],
                        "subject": expand(personalization.get("subject", data.get("subject", ""))),
                        "headers": headers,
                        "text": text,
                        "html": expand(content.get("text/html", "")),
                        "metadata": {
                            **data.get("custom_args", {}),
                            **personalization.get("custom_args", {}),
                        },
                        "own_list_unsubscribe": own_list_unsubscribe(headers, text),
                    }
                )
        if faults.get("status"):
            return faults["status"], {"errors": [{"message": faults.get("body", "")}]}, recipients
        return 202, None, recipients  # SendGrid answers 202 Accepted, with no body

    def amazon_ses(self, body: bytes, faults: dict[str, Any]) -> tuple[int, object, list[dict]]:
        signed = SIGV4.match(self.headers.get("Authorization", ""))
        if signed is None or signed.group(1) != faults.get("access_key", signed.group(1)):
            return 403, {"message": "The security token included in the request is invalid."}, []
        data = json.loads(body)
        entries = data.get("BulkEmailEntries", [])
        if not 0 < len(entries) <= SES_BULK_LIMIT:
            return 400, {"message": "BulkEmailEntries: 1 to 50 entries"}, []
        template = data["DefaultContent"]["Template"]
        content = template["TemplateContent"]
        defaults = {header["Name"]: header["Value"] for header in template.get("Headers", [])}
        statuses = {address: "MESSAGE_REJECTED" for address in faults.get("refuse", [])}
        statuses.update(faults.get("entry_status", {}))
        store = faults.get("store", True)
        if store:
            # pybars3 stands in for SES's own Handlebars, which is not reachable here.
            compiler = Compiler()
            parts = {name: compiler.compile(content.get(name, "")) for name in SES_PARTS}
        results: list[dict[str, str]] = []
        recipients: list[dict[str, Any]] = []
        for entry in entries:
            address = email.utils.parseaddr(entry["Destination"]["ToAddresses"][0])[1]
            status = statuses.get(address, "SUCCESS")
            if status != "SUCCESS":
                results.append({"Status": status, "Error": f"Fake SES: {status} for this entry"})
                continue
            results.append({"Status": "SUCCESS", "MessageId": f"fake-{len(results)}"})
            if not store:
                recipients.append({"esp": "amazon_ses", "to": address})
                continue
            # The entry's own data alone, not merged with the call's default: a
            # template that renders right so does whichever of the two SES does.
            replacement = entry.get("ReplacementEmailContent", {}).get("ReplacementTemplate", {})
            data = replacement.get("ReplacementTemplateData") or template.get("TemplateData")
            values = json.loads(data or "{}")
            own = {
                header["Name"]: header["Value"] for header in entry.get("ReplacementHeaders", [])
            }
            headers = {**defaults, **own}  # the entry's take precedence (SES's documentation)
            text = str(parts["Text"](values))
            recipients.append(
                {
                    "esp": "amazon_ses",
                    "to": address,
                    "subject": str(parts["Subject"](values)),
                    "headers": headers,
                    "text": text,
                    "html": str(parts["Html"](values)),
                    "metadata": json.loads(headers.get("X-Metadata", "{}")),
                    "own_list_unsubscribe": own_list_unsubscribe(headers, text),
                }
            )
        if faults.get("status"):
            return faults["status"], {"message": faults.get("body", "")}, recipients
        return 200, {"BulkEmailEntryResults": results}, recipients


def form_fields(content_type: str, body: bytes) -> dict[str, list[str]]:
    """The fields of a form (urlencoded, or multipart/form-data), each name's values in order."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return urllib.parse.parse_qs(body.decode("ascii"), keep_blank_values=True)
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        value = payload.decode("utf-8") if isinstance(payload, bytes) else ""
        fields.setdefault(str(name), []).append(value)
    return fields


class FakeESP(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, directory: Path) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.store = Store(directory)


def main() -> None:
    directory = Path(sys.argv[1])
    directory.mkdir(parents=True, exist_ok=True)
    server = FakeESP(directory)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()


class FakeESPProcess:
    """The fake APIs in a process of their own, and what they received (for tests and the bench)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(  # noqa: S603 - our own module, our arguments
            [sys.executable, "-m", "testing.fake_esp", str(directory)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert self.process.stdout is not None  # stdout=PIPE
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"The fake ESP did not start: {line!r}")
        self.port = int(line.split()[1])

    def mailer(self, esp: str, timeout: float = 10) -> dict[str, object]:
        """A MAILERS entry for anymail's backend of `esp` pointed at this server."""
        if esp == "postmark":
            options: dict[str, object] = {
                "server_token": "server-token",
                "api_url": f"http://127.0.0.1:{self.port}/",
            }
        elif esp == "mailgun":
            options = {
                "api_key": "key-test",
                "api_url": f"http://127.0.0.1:{self.port}/v3",
                "sender_domain": "mg.example.com",
            }
        elif esp == "sendgrid":
            options = {"api_key": "key-test", "api_url": f"http://127.0.0.1:{self.port}/v3/"}
        elif esp == "amazon_ses":
            # boto3's credentials and region, and the endpoint, as anymail's
            # AMAZON_SES_SESSION_PARAMS and AMAZON_SES_CLIENT_PARAMS take them.
            return {
                "BACKEND": "anymail.backends.amazon_ses.EmailBackend",
                "OPTIONS": {
                    "session_params": {
                        "aws_access_key_id": "AKIDFAKESES",
                        "aws_secret_access_key": "fake-secret",
                        "region_name": "eu-west-1",
                    },
                    "client_params": {
                        "endpoint_url": f"http://127.0.0.1:{self.port}",
                        "config": {"connect_timeout": timeout, "read_timeout": timeout},
                    },
                },
            }
        else:
            raise ValueError(f"No fake for {esp}")
        return {
            "BACKEND": f"anymail.backends.{esp}.EmailBackend",
            "OPTIONS": {**options, "timeout": timeout},
        }

    def inject_faults(self, **faults: object) -> None:
        (self.directory / "faults.json").write_text(json.dumps(faults))

    def clear_faults(self) -> None:
        (self.directory / "faults.json").unlink(missing_ok=True)

    def _lines(self, name: str) -> list[dict[str, Any]]:
        path = self.directory / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def received(self) -> list[dict[str, Any]]:
        """Each recipient's expanded message, in the order received."""
        return self._lines("received.jsonl")

    def calls(self) -> list[dict[str, Any]]:
        return self._lines("calls.jsonl")

    def recipients(self) -> list[str]:
        return sorted(record["to"] for record in self.received())

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
