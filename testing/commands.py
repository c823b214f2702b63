"""Running manage.py in a fresh process with exactly the environment a test gives.

Settings are read once per process, so tests of how the environment becomes
settings run manage.py anew, without the developer's .env file.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ISOLATED_PREFIXES = (
    "DJANGO_", "DATABASE_", "SMTP_", "REDIS_", "EMAIL_", "ANYMAIL_", "POSTMARK_", "MAILGUN_",
    "DKIM_", "SENTRY_", "LOG_", "BACKUP_", "AWS_", "MEDIA_ROOT",
)  # fmt: skip


def run_manage(*args: str, **environment: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith(ISOLATED_PREFIXES)}
    env["DJANGO_ENV_FILE"] = "none"
    env.update(environment)
    return subprocess.run(  # noqa: S603 - our own manage.py with fixed arguments
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
    # On a parent of the site's domain, as the deploy checks
    # (delivery/deliverability/domain_checks.py) expect.
    "DEFAULT_FROM_EMAIL": "The Morning Briefing <briefing@example.com>",
}
