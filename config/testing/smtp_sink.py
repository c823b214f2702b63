"""A real SMTP server for tests, run as its own process.

    python -m config.testing.smtp_sink DIRECTORY

Listens on a free port on 127.0.0.1, prints "PORT <n>" once it accepts
connections, and stores each received message as DIRECTORY/<n>.json with
the envelope (sender, recipients) and the raw message. Runs until killed.
"""

import json
import socket
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class StoreMessages:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            self.count += 1
            number = self.count
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.original_content.decode("utf-8", "surrogateescape"),
        }
        partial = self.directory / f".{number:08d}.partial"
        partial.write_text(json.dumps(record))
        partial.rename(self.directory / f"{number:08d}.json")
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
