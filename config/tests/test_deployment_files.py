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
    assert set(services) == {"proxy", "web", "worker", "beat", "db", "redis", "mailpit"}
    for name in ["proxy", "web", "worker", "db", "redis", "mailpit"]:
        assert "healthcheck" in services[name], name
    for name in ["web", "worker", "beat"]:
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


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
    assert "manage.py migrate" in web

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


def test_dockerfile_serves_the_wsgi_app_that_exists():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "config.wsgi:application" in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
    assert (ROOT / "requirements.txt").is_file()
