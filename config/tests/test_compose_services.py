"""Every compose service's command runs here, natively, against this machine's PostgreSQL and Redis.

No Docker engine runs on these machines, so the web, worker and beat
commands of docker-compose.yml are run as they are written, with the
compose environment, only the host names of `db` and `redis` pointing at the
local servers (a fresh database, a Redis database and, through
testing/process_settings.py, a Celery queue and an outbox of the test's
own). Skipped where no PostgreSQL or Redis answers.
"""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("COMPOSE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("COMPOSE_TEST_REDIS", "redis://127.0.0.1:6379/14")

pytestmark = pytest.mark.real_clock


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def stack_environment(compose, tmp_path_factory):
    if not (answers("127.0.0.1", 5432) and answers("127.0.0.1", 6379)):
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379")
    import psycopg

    name = f"briefing_compose_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    environment = {
        key: str(value)
        for key, value in compose["services"]["web"]["environment"].items()
        if not str(value).startswith("${DJANGO_SECRET_KEY")
    }
    # compose's defaults (${VAR:-default}) as compose would fill them in.
    for key, value in environment.items():
        if value.startswith("${") and ":-" in value:
            environment[key] = value.split(":-", 1)[1].rstrip("}")
    smtp = tmp_path_factory.mktemp("outbox")
    environment.update(
        DJANGO_SECRET_KEY="compose-test-secret-key-with-plenty-of-entropy-9f8e7d6c5b4a",
        DJANGO_ENV_FILE="none",
        DATABASE_URL=f"{POSTGRES}/{name}",
        REDIS_URL=REDIS,
        SMTP_URL="",  # mailpit's stand-in: the outbox
        DJANGO_SETTINGS_MODULE="testing.process_settings",
        TEST_SETTINGS=json.dumps(
            {
                "CELERY_TASK_DEFAULT_QUEUE": f"compose-test-{uuid.uuid4().hex[:8]}",
                "OUTBOX_DIR": str(smtp),
            }
        ),
    )
    # Migrated once for both tests, by the one-off migrate service's command
    # with its lock timeout, as `docker compose up` runs it before the rest.
    migrate_environment = {**os.environ, **environment}
    migrate_environment["PGOPTIONS"] = compose["services"]["migrate"]["environment"]["PGOPTIONS"]
    migrate = subprocess.run(
        shlex.split(command_of(compose, "migrate").replace("python", sys.executable, 1)),
        cwd=ROOT,
        env=migrate_environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "Applying newsletter.0001_initial... OK" in migrate.stdout
    yield environment
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start(command: str, environment: dict[str, str], log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(environment)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return subprocess.Popen(
        ["/bin/sh", "-c", command],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


def wait_for(condition, timeout: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def command_of(compose: dict, service: str) -> str:
    command = compose["services"][service]["command"]
    return command if isinstance(command, str) else shlex.join(command)


def test_web_collects_static_and_serves_healthz(compose, stack_environment, tmp_path):
    port = free_port()
    # gunicorn reads GUNICORN_CMD_ARGS after its config file: only the port changes.
    environment = {**stack_environment, "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}"}
    log = tmp_path / "web.log"
    web = start(command_of(compose, "web"), environment, log)

    def healthy() -> bool:
        try:
            url = f"http://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(url, timeout=3) as response:
                return response.status == 200 and b'"database": "ok"' in response.read()
        except OSError:
            return False

    try:
        wait_for(healthy, 120, web, log)
    finally:
        stop(web)
    output = log.read_text()
    # collectstatic, for the proxy's volume: "0 static files copied, 250
    # unmodified" when a run before had copied them, "1 static file copied".
    assert re.search(r"\d+ static files? copied", output), output[-2000:]
    assert "Operations to perform" not in output  # migrating is the migrate service's


def test_worker_and_beat_start_and_the_worker_runs_what_the_app_queues(
    compose, stack_environment, tmp_path
):
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    beat_command = command_of(compose, "beat").replace(
        "/tmp/celerybeat-schedule",  # noqa: S108 - replaced by the test's own
        str(tmp_path / "celerybeat-schedule"),
    )
    # TEST_SETTINGS: the worker consumes, and the app and beat send to, this test's queue only.
    worker = start(command_of(compose, "worker"), stack_environment, worker_log)
    beat = start(beat_command, stack_environment, beat_log)
    try:
        wait_for(lambda: "ready." in worker_log.read_text(), 90, worker, worker_log)
        queued = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c",
             "from delivery.tasks import process_bounces; process_bounces.delay()"],
            cwd=ROOT,
            env={**os.environ, **stack_environment},
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert queued.returncode == 0, queued.stderr
        wait_for(
            lambda: (
                "newsletter.tasks.process_bounces" in worker_log.read_text()
                and "succeeded" in worker_log.read_text()
            ),
            60,
            worker,
            worker_log,
        )
        wait_for(lambda: "beat: Starting" in beat_log.read_text(), 30, beat, beat_log)
        time.sleep(2)
        assert beat.poll() is None, beat_log.read_text()
    finally:
        stop(beat)
        stop(worker)
