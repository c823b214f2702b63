"""A local Sentry: an HTTP server that takes the SDK's envelopes, for tests.

The SDK posts each event, transaction, cron check-in or session as an
envelope to `/api/<project>/envelope/` of the host its DSN names
(gzip-compressed); `SentryServer.dsn` points a process at this server.
What it received is kept as it arrived (`raw`, the decompressed bytes: what
a test searches for secrets) and parsed (`items`).
"""

import gzip
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENVELOPE_PATH = re.compile(r"^/api/(?P<project>\d+)/envelope/$")


@dataclass
class Item:
    """One item of an envelope: its header (`type`: event, check_in, transaction …) and payload."""

    header: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.header.get("type", ""))

    def json(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.payload)
        return loaded


def parse_envelope(body: bytes) -> list[Item]:
    """The items of an envelope: a header line, then per item a header line and its payload."""
    _envelope_header, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            length = int(header["length"])
            payload, rest = rest[:length], rest[length:].removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append(Item(header, payload))
    return items


class SentryServer:
    """Started on a free loopback port in a thread; `stop()` ends it."""

    def __init__(self, project: int = 42) -> None:
        self.project = project
        self.raw: list[bytes] = []
        self.items: list[Item] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                match = ENVELOPE_PATH.match(self.path)
                if match is None or int(match["project"]) != server.project:
                    server.refused.append(self.path)
                    self.send_response(404)
                    self.end_headers()
                    return
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding:
                    server.refused.append(f"{self.path} ({encoding})")
                    self.send_response(415)
                    self.end_headers()
                    return
                server.receive(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                return None  # the test reads what arrived, not an access log

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.port}/{self.project}"

    def receive(self, body: bytes) -> None:
        with self._lock:
            self.raw.append(body)
            self.items.extend(parse_envelope(body))

    def received(self, kind: str) -> list[dict[str, Any]]:
        """The payloads of every item of this type received so far."""
        with self._lock:
            return [item.json() for item in self.items if item.type == kind]

    def all_bytes(self) -> bytes:
        with self._lock:
            return b"\n".join(self.raw)

    def wait_for(
        self, kind: str, match: Callable[[dict[str, Any]], bool], timeout: float
    ) -> dict[str, Any] | None:
        """The first item of this type that matches, polled for until `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((item for item in self.received(kind) if match(item)), None)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
