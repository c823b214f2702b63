"""A real SMTP server for tests, run as its own process.

    python -m testing.smtp_sink DIRECTORY

Listens on a free port on 127.0.0.1, prints "PORT <n>" once it accepts
connections, and stores each received message as DIRECTORY/<n>.json with
the envelope (sender, recipients), the raw message and the connection it
came over (the peer). Runs until killed.

Faults are injected by writing DIRECTORY/faults.json, read at every command:
    {"refuse_recipients": {"addr@example.com": [550, "5.1.1 No such user"]},
     "refuse_senders": {"addr@example.com": [553, "5.7.1 Not allowed"]},
     "refuse_data_after": 3, "data_reply": [451, "4.3.0 Try again later"]}
refuse_data_after N answers data_reply to every message once N messages are
stored; "no_pipelining": true stops offering PIPELINING; "delay_data_seconds":
S waits S seconds before accepting each message (a slow server, so a test can
act while a batch is half sent); "drop_after_data_for": [addresses] stores
the message for those recipients and then hangs up without answering it
(the sender cannot know it was delivered); "delay_noop_seconds": S answers
NOOP after S seconds (a relay that far away), only the first N NOOPs with
"delay_first_noops": N (a near relay on a machine busy for a moment).
Remove the file and the server behaves again. Each NOOP adds a line to
DIRECTORY/noops.
"""

import asyncio
import json
import socket
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class StoreMessages:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        self.noops = 0
        self.lock = threading.Lock()

    def faults(self) -> dict:
        path = self.directory / "faults.json"
        return json.loads(path.read_text()) if path.exists() else {}

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.faults().get("no_pipelining"):
            return responses
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        refusal = self.faults().get("refuse_senders", {}).get(address)
        if refusal:
            code, text = refusal
            return f"{code} {text}"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.faults().get("refuse_recipients", {}).get(address)
        if refusal:
            code, text = refusal
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_NOOP(
        self, server: SMTP, session: Session, envelope: Envelope, arg: str
    ) -> str:
        faults = self.faults()
        self.noops += 1
        with (self.directory / "noops").open("a") as noops:
            noops.write("NOOP\n")
        delay = faults.get("delay_noop_seconds")
        if delay and self.noops <= faults.get("delay_first_noops", self.noops):
            # A relay far away, as a client measuring the round trip sees it.
            await asyncio.sleep(delay)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        faults = self.faults()
        delay = faults.get("delay_data_seconds")
        if delay:
            # Other connections carry on meanwhile: this is one slow answer,
            # not a stalled server.
            await asyncio.sleep(delay)
        limit = faults.get("refuse_data_after")
        with self.lock:
            if limit is not None and self.count >= limit:
                code, text = faults.get("data_reply", [451, "4.3.0 Try again later"])
                return f"{code} {text}"
            self.count += 1
            number = self.count
        # aiosmtpd has received the message by the time it calls handle_DATA.
        assert envelope.original_content is not None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.original_content.decode("utf-8", "surrogateescape"),
            # Which connection carried it (the client's address and port).
            "peer": list(session.peer) if session.peer else None,
        }
        partial = self.directory / f".{number:08d}.partial"
        partial.write_text(json.dumps(record))
        partial.rename(self.directory / f"{number:08d}.json")
        if set(envelope.rcpt_tos) & set(faults.get("drop_after_data_for", [])):
            # Received and stored, never confirmed: the connection just ends.
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    directory = Path(sys.argv[1])
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    controller = Controller(StoreMessages(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"PORT {port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
