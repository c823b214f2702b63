"""Hostile review: var/ was readable by every local user.

It holds the demo's SQLite database (sessions included), the outbox (every
email, with its personal links) and the embedded broker's queued tasks
(readers' addresses). Each is made here by the code that makes it in the
demo, under the umask a process usually has (022), and must come out 0700
(folders) and 0600 (files).
"""

import os
import stat
from pathlib import Path

import pytest
from django.core.mail import EmailMessage, mailers
from kombu import Connection
from kombu.transport import virtual

from config.filesystem_broker import Transport
from config.settings import VAR_DIR, filesystem_broker
from testing.commands import run_manage

ROOT = Path(__file__).resolve().parents[2]
FOLDER, FILE = 0o700, 0o600


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask():
    # The umask most shells give, which left var/ 0755 and its files 0644.
    # Set for this process and inherited by the commands it runs.
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_the_outbox_folder_and_its_emails_are_private(tmp_path, settings):
    outbox = tmp_path / "var" / "outbox"
    settings.MAILERS = {
        "default": {"BACKEND": "config.outbox.OutboxBackend", "OPTIONS": {"directory": outbox}}
    }

    EmailMessage("Your sign-in link", "https://…/signin/…", to=["ada@example.com"]).send()

    [message] = outbox.glob("*.eml")
    assert (mode(tmp_path / "var"), mode(outbox), mode(message)) == (FOLDER, FOLDER, FILE)


def test_an_outbox_made_before_is_made_private(tmp_path, settings):
    outbox = tmp_path / "outbox"
    outbox.mkdir(mode=0o755)
    settings.MAILERS = {
        "default": {"BACKEND": "config.outbox.OutboxBackend", "OPTIONS": {"directory": outbox}}
    }

    with mailers.default as connection:
        connection.send_messages([EmailMessage("Hello", "Body", to=["ada@example.com"])])

    assert mode(outbox) == FOLDER


def test_the_embedded_brokers_folders_and_queued_tasks_are_private(tmp_path, monkeypatch):
    # Kombu keeps declared exchanges per process; a new folder needs its own.
    monkeypatch.setattr(Transport, "global_state", virtual.BrokerState())
    broker = tmp_path / "var" / "broker"
    url, options = filesystem_broker(broker)
    with Connection(url, transport_options=options) as connection:
        queue = connection.SimpleQueue("celery")
        queue.put({"task": "send_sign_in_link", "args": ["ada@example.com"]})
        queue.close()

    [message] = broker.glob("*.msg")
    folders = [tmp_path / "var", broker, broker / "processed", broker / "control"]
    assert [mode(folder) for folder in folders] == [FOLDER] * 4
    assert mode(message) == FILE


def test_the_sqlite_database_and_its_journal_are_private(tmp_path):
    database = tmp_path / "db.sqlite3"
    # A write, and the modes while the connection is open (its WAL and
    # shared-memory files go when the last connection closes).
    script = (
        "import os, stat\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('CREATE TABLE session (data TEXT)')\n"
        "    cursor.execute(\"INSERT INTO session VALUES ('ada@example.com')\")\n"
        "name = connection.settings_dict['NAME']\n"
        "for suffix in ['', '-wal', '-shm']:\n"
        "    print(suffix or 'db', oct(stat.S_IMODE(os.stat(f'{name}{suffix}').st_mode)))\n"
    )
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        script,
        DJANGO_DEBUG="1",
        DATABASE_URL=f"sqlite:///{database}",
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["db", "0o600", "-wal", "0o600", "-shm", "0o600"]


def test_a_database_and_var_made_before_are_made_private(tmp_path):
    database = tmp_path / "db.sqlite3"
    database.touch(mode=0o644)
    VAR_DIR.chmod(0o755)

    result = run_manage("check", DJANGO_DEBUG="1", DATABASE_URL=f"sqlite:///{database}")

    assert result.returncode == 0, result.stderr[-2000:]
    assert (mode(VAR_DIR), mode(database)) == (FOLDER, FILE)


def test_the_demo_starts_its_processes_with_a_private_umask():
    # What else they write in var/ (beat's schedule, the caches' files) is theirs only.
    lines = (ROOT / "bin" / "run-demo").read_text().splitlines()
    first_process = next(n for n, line in enumerate(lines) if ".venv/bin/" in line)
    assert "umask 077" in [line.strip() for line in lines[:first_process]]
