"""The embedded broker (config/filesystem_broker.py): whole messages; a bad one kills no worker."""

import logging
import os
import time
from pathlib import Path

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from kombu import Connection
from kombu.transport import virtual

from config import private_files
from config.filesystem_broker import Transport
from config.settings import filesystem_broker
from testing.concurrency import wait_for


@pytest.fixture(autouse=True)
def fresh_broker_state(monkeypatch):
    # Kombu keeps declared exchanges per process; a test's new folder needs its own.
    monkeypatch.setattr(Transport, "global_state", virtual.BrokerState())


@pytest.fixture
def broker(tmp_path: Path):
    url, options = filesystem_broker(tmp_path)
    with Connection(url, transport_options=options) as connection:
        queue = connection.SimpleQueue("celery")
        yield queue
        queue.close()


def message_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.is_file())


def test_a_message_is_written_whole_under_its_final_name(broker, tmp_path):
    broker.put({"task": "hello", "n": 1})

    [name] = message_files(tmp_path)
    assert name.endswith(".celery.msg") and not name.startswith(".")
    assert broker.get(block=False).payload == {"task": "hello", "n": 1}
    assert message_files(tmp_path) == []
    assert message_files(tmp_path / "processed") == []


def test_while_a_message_is_written_no_reader_can_see_it(broker, tmp_path, monkeypatch):
    seen_mid_write = []
    real_write_private = private_files.write_private

    def write_private(path, data):
        real_write_private(path, data)
        seen_mid_write.append([name for name in message_files(tmp_path) if name[0] != "."])

    monkeypatch.setattr(private_files, "write_private", write_private)
    broker.put({"n": 1})

    assert seen_mid_write == [[]]
    assert broker.get(block=False).payload == {"n": 1}


def test_a_message_still_being_written_is_not_taken(broker, tmp_path):
    # What a worker polling the folder sees while another process writes.
    partial = tmp_path / f".partial-{int(time.monotonic() * 1000)}_x.celery.msg"
    partial.write_text('{"body": "hal')

    with pytest.raises(broker.Empty):
        broker.get(block=False)
    assert partial.read_text() == '{"body": "hal'


@pytest.mark.faults
def test_an_unreadable_message_is_kept_and_the_next_one_delivered(broker, tmp_path, caplog):
    # Named to sort first: the oldest message in the folder.
    damaged = tmp_path / f"{0:020d}_damaged.celery.msg"
    damaged.write_bytes(b"")
    broker.put({"n": 2})

    with caplog.at_level(logging.ERROR, logger="config.filesystem_broker"):
        assert broker.get(block=False).payload == {"n": 2}

    assert (tmp_path / "processed" / f"{damaged.name}.unreadable").read_bytes() == b""
    assert f"{damaged.name} is not readable JSON" in caplog.text


def test_messages_come_out_oldest_first_and_each_once(broker, tmp_path):
    for n in range(5):
        broker.put({"n": n})

    assert [broker.get(block=False).payload["n"] for _ in range(5)] == [0, 1, 2, 3, 4]
    with pytest.raises(broker.Empty):
        broker.get(block=False)


def test_a_message_another_worker_claimed_first_is_skipped(broker, tmp_path, monkeypatch):
    broker.put({"n": 1})
    broker.put({"n": 2})
    first = message_files(tmp_path)[0]
    real_rename = os.rename

    def rename(source, destination):
        if Path(source).name == first:
            raise FileNotFoundError(source)  # gone: the other worker's rename won
        return real_rename(source, destination)

    monkeypatch.setattr(os, "rename", rename)

    assert broker.get(block=False).payload == {"n": 2}


@pytest.mark.faults
@pytest.mark.real_clock  # the worker polls the folder in real time
def test_a_worker_goes_on_after_an_unreadable_message(tmp_path):
    # What stopped the browser tests' worker: it died of an empty message
    # file and every later task waited for ever.
    url, options = filesystem_broker(tmp_path)
    # A bare app: no Django fixup (it would open the database), one task.
    app = Celery("embedded-broker-test", set_as_current=False, fixups=[])
    app.conf.update(broker_url=url, broker_transport_options=options)
    done = []

    @app.task(name="record")
    def record(n: int) -> None:
        done.append(n)

    (tmp_path / f"{0:020d}_damaged.celery.msg").write_bytes(b"")
    with start_worker(app, perform_ping_check=False, loglevel="CRITICAL"):
        record.delay(1)
        record.delay(2)
        assert wait_for(lambda: done == [1, 2], timeout=10)
