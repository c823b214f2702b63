"""The compose `backup` service's nightly loop runs here, natively, as the file writes it.

No Docker engine runs on these machines, so the service's shell command is
run with /bin/sh against a SQLite database of the test's own. `sleep` is a
stand-in on PATH that records how long the loop asked to wait and returns at
once (the second time it ends the loop): the test checks that the wait runs
to the next BACKUP_AT and that a backup was written after it, without
waiting for the night.
"""

import datetime
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.real_clock

STAND_IN_SLEEP = """#!/bin/sh
echo "$1" >> "$SLEEP_LOG"
if [ "$(wc -l < "$SLEEP_LOG")" -ge 2 ]; then
    kill -TERM "$PPID"
fi
"""


def loop_command() -> str:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    words = compose["services"]["backup"]["command"]
    assert words[:2] == ["sh", "-c"]
    # Compose turns $$ into $ before the shell sees it.
    return words[2].replace("$$", "$")


def run_loop(tmp_path: Path, backup_at: str, database_url: str) -> tuple[subprocess.Popen, Path]:
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    sleep = bin_folder / "sleep"
    sleep.write_text(STAND_IN_SLEEP)
    sleep.chmod(0o755)
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "BACKUP_", "MEDIA_ROOT", "AWS_"))
    }
    environment.update(
        PATH=f"{bin_folder}:{Path(sys.executable).parent}:{environment.get('PATH', '')}",
        SLEEP_LOG=str(tmp_path / "sleeps"),
        BACKUP_AT=backup_at,
        BACKUP_TARGET=str(tmp_path / "backups"),
        MEDIA_ROOT=str(tmp_path / "media"),
        DATABASE_URL=database_url,
        DJANGO_ENV_FILE="none",
        DJANGO_DEBUG="1",
    )
    log = tmp_path / "backup.log"
    process = subprocess.Popen(
        ["/bin/sh", "-c", loop_command()],
        cwd=ROOT,
        env=environment,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return process, log


@pytest.mark.parametrize("hours_from_now", [2, -2], ids=["later-today", "passed-today"])
def test_the_loop_sleeps_until_the_next_backup_at_then_backs_up(tmp_path, hours_from_now):
    # An empty database is enough: the loop is under test, not the backup.
    database_url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    now = datetime.datetime.now(datetime.UTC)
    at = (now + datetime.timedelta(hours=hours_from_now)).replace(second=0, microsecond=0)
    # A time already passed today is tomorrow's.
    due = at if at > now else at + datetime.timedelta(days=1)

    process, log = run_loop(tmp_path, f"{at:%H:%M}", database_url)
    process.wait(timeout=120)

    output = log.read_text()
    first_wait = int((tmp_path / "sleeps").read_text().split()[0])
    assert abs(first_wait - (due - now).total_seconds()) <= 5, (first_wait, due, output)
    assert f"Next backup at {due:%Y-%m-%d %H:%M} UTC" in output
    assert "Backed up to" in output, output
    assert len(list((tmp_path / "backups").glob("briefing-backup-*.tar"))) == 1, output


def test_a_backup_at_that_is_not_a_time_stops_the_service_with_its_reason(tmp_path):
    process, log = run_loop(tmp_path, "3am-ish", "sqlite:///unused.sqlite3")
    assert process.wait(timeout=30) == 1
    assert "BACKUP_AT must be a time of day, HH:MM in UTC; got '3am-ish'" in log.read_text()
    assert not (tmp_path / "sleeps").exists()
