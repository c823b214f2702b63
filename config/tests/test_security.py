"""Production settings pass Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "SMTP_", "REDIS_"))
    }
    # Only what the test says: not the developer's .env file.
    env["DJANGO_ENV_FILE"] = "none"
    env.update(environment)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k3Jx9-production-like-secret-key-with-enough-entropy-8fQz2LmP0vWc",
    "DJANGO_ALLOWED_HOSTS": "briefing.example.com",
    "SITE_URL": "https://briefing.example.com",
}


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    environment = {key: value for key, value in PRODUCTION.items() if key != "DJANGO_SECRET_KEY"}
    result = manage("check", **environment)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_a_bad_setting_stops_the_service_with_its_name():
    result = manage("check", **PRODUCTION, DIGEST_SEND_TIME="six")
    assert result.returncode != 0
    assert "DIGEST_SEND_TIME must be a time like 06:00" in result.stderr
