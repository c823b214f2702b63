"""docker-compose.yml, the Dockerfile and the docs agree with the code.

No Docker engine runs in CI, so these check what can be checked without one:
the files parse, every service the design names is there with a health
check, and every command names modules and settings that exist.
"""

import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml

from config.tests.test_settings_surface import operator_variables

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def command_words(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else command


def test_compose_has_the_whole_stack_with_health_checks(compose):
    services = compose["services"]
    # What a plain `docker compose up` starts: services without a profile.
    started = {name for name, service in services.items() if not service.get("profiles")}
    assert started == {
        "proxy", "web", "worker", "webhooks", "beat", "db", "redis", "mailpit", "migrate",
    }  # fmt: skip
    assert set(services) - started == {"backup"}
    for name in ["proxy", "web", "worker", "webhooks", "db", "redis", "mailpit"]:
        assert "healthcheck" in services[name], name
    for name in ["web", "worker", "webhooks", "beat"]:
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_migrates_once_before_the_app_starts(compose):
    services = compose["services"]
    migrate = services["migrate"]
    assert command_words(migrate)[:3] == ["python", "manage.py", "migrate"]
    assert migrate["restart"] == "no"  # a one-off: done is done
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    # Fails fast rather than queueing every query behind a lock it waits for.
    assert "lock_timeout" in migrate["environment"]["PGOPTIONS"]
    for name in ["web", "worker", "webhooks", "beat"]:
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        # An upgrade rolls them while the previous release serves: none migrates.
        assert "migrate" not in command_words(services[name]), name


def seconds(duration: str) -> int:
    """A compose duration of seconds ("330s") or minutes and seconds ("5m30s")."""
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match and duration, duration
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def test_compose_gives_a_stopping_worker_time_to_finish_its_batch(compose):
    from django.conf import settings

    worker = compose["services"]["worker"]
    # SIGTERM is Celery's warm shutdown; Docker's SIGKILL must not come before
    # the longest batch is over (killed, it would be recovered by its lease).
    assert seconds(worker["stop_grace_period"]) > settings.DIGEST_BATCH_TIME_LIMIT
    assert seconds(compose["services"]["web"]["stop_grace_period"]) > 30  # gunicorn's graceful


def test_compose_tags_each_release_so_the_previous_one_can_come_back(compose):
    assert compose["x-app"]["image"] == "morning-briefing:${BRIEFING_VERSION:-latest}"
    assert compose["services"]["beat"]["deploy"]["replicas"] == 1


def test_compose_redis_is_durable(compose):
    redis = compose["services"]["redis"]
    assert "--appendonly yes" in redis["command"]
    assert redis["volumes"] == ["redisdata:/data"]
    assert "redisdata" in compose["volumes"]


def test_compose_commands_name_modules_that_exist(compose):
    services = compose["services"]
    web = " ".join(command_words(services["web"]))
    wsgi_target = re.search(r"gunicorn (\S+):(\w+)", web)
    assert wsgi_target is not None, web
    module = importlib.import_module(wsgi_target.group(1))
    assert callable(getattr(module, wsgi_target.group(2)))

    for name, role in [("worker", "worker"), ("beat", "beat")]:
        words = command_words(services[name])
        assert words[:3] == ["celery", "-A", "config"], name
        assert words[3] == role
    celery_module = importlib.import_module("config")
    assert celery_module.celery_app.main == "config"


def test_compose_environment_uses_settings_the_code_reads(compose):
    # Each variable documented and counted: config/tests/test_settings_surface.py.
    environment = compose["x-app"]["environment"]
    variables = operator_variables()
    for variable in environment:
        assert variable in variables, variable
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert environment["REDIS_URL"].startswith("redis://redis:")
    assert environment["SMTP_URL"].endswith("mailpit:1025}")


def test_compose_backup_service_is_optional_and_keeps_its_archives_in_a_volume(compose):
    backup = compose["services"]["backup"]
    assert backup["profiles"] == ["backup"]
    assert backup["image"] == compose["services"]["web"]["image"]
    assert backup["environment"]["BACKUP_TARGET"] == "${BACKUP_TARGET:-/backups}"
    assert "python manage.py backup" in " ".join(command_words(backup))
    assert "backups:/backups" in backup["volumes"]
    # The web service's uploads, which a backup holds and a restore puts back.
    assert "media:/app/var/media" in backup["volumes"]
    assert "media:/app/var/media" in compose["services"]["web"]["volumes"]
    assert "backups" in compose["volumes"]
    # The rest of the app's environment, merged, not replaced.
    assert backup["environment"]["DATABASE_URL"] == compose["x-app"]["environment"]["DATABASE_URL"]


def test_the_image_has_the_postgresql_client_of_composes_server(compose):
    """pg_dump refuses a newer server, and a newer pg_dump's archive does not restore into it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    client = re.search(r"^ARG PG_MAJOR=(\d+)$", dockerfile, re.MULTILINE)
    server = re.fullmatch(r"postgres:(\d+)(\.\d+)?", compose["services"]["db"]["image"])
    assert client is not None and server is not None
    assert client.group(1) == server.group(1)
    assert "postgresql-client-${PG_MAJOR}" in dockerfile
    # The backups volume takes the image folder's owner: the app's user writes there.
    assert "chown -R app:app var staticfiles /backups" in dockerfile


def test_dockerfile_serves_the_wsgi_app_that_exists():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "config.wsgi:application" in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
    assert (ROOT / "requirements.txt").is_file()


def test_webhook_deliveries_have_a_worker_of_their_own(compose):
    from django.conf import settings

    words = command_words(compose["services"]["webhooks"])
    assert words[words.index("--queues") + 1] == settings.WEBHOOK_QUEUE
    assert settings.CELERY_TASK_ROUTES["api.tasks.deliver_webhook"] == {
        "queue": settings.WEBHOOK_QUEUE
    }
    # The sends' worker does not take them: it consumes the default queue alone.
    assert "--queues" not in command_words(compose["services"]["worker"])
