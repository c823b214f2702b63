"""The bench's CHUNKING sink speaks BDAT (and DATA) as the product's sender uses them."""

import smtplib
import subprocess
import sys
from pathlib import Path

import pytest

from delivery.wire import smtp

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sink():
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.chunking_sink"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    port = int(process.stdout.readline().split()[1])
    yield process, port
    process.kill()
    process.wait()


def test_it_takes_whole_messages_many_a_round_trip_and_counts_them(sink):
    process, port = sink
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    assert smtp.supports_chunking(client)
    pipeline = smtp.ChunkingPipeline[int](client, window=5)
    message = b"Subject: hi\r\n\r\n.a line with a dot\r\nBDAT 3 LAST\r\n"
    outcomes = []
    for n in range(12):
        outcomes += pipeline.send(n, "a@example.com", f"r{n}@example.com", message)
    outcomes += pipeline.finish()
    client.sendmail("a@example.com", ["by-data@example.com"], b"Subject: hi\r\n\r\n.\r\n")
    client.quit()

    assert outcomes == [(n, None) for n in range(12)]
    process.terminate()
    _out, err = process.communicate(timeout=10)
    assert "messages 13" in err
