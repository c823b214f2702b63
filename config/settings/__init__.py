"""Settings for the newsletter service, read from the environment.

Every variable is optional for the demo and has a safe development default;
README.md lists them all. A `.env` file next to manage.py is read first if it
exists (`make run` writes one for local development), or the file named by
DJANGO_ENV_FILE; real environment variables always win over it.
"""

import os
import re
from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from sentry_sdk.utils import BadDsn, Dsn

from config.env import (
    env_backup_target,
    env_bool,
    env_choice,
    env_float,
    env_fraction,
    env_header,
    env_int,
    env_list,
    env_networks,
    env_optional,
    env_required,
    env_str,
    env_time,
    env_timezone,
    env_url,
    load_dotenv,
    smtp_options,
)
from config.private_files import private_folder, private_sqlite_database

# The From domain's default for DKIM_DOMAIN. An address helper of the readers'
# app, which reads no setting and no model when imported.
from subscriptions.addresses import domain_of_address

BASE_DIR = Path(__file__).resolve().parents[2]
# Local state of the demo: database, broker, outbox, caches. Private to the
# user the service runs as (config/private_files.py).
VAR_DIR = BASE_DIR / "var"

# DJANGO_ENV_FILE names another file to read, or "none" for none at all.
_env_file = os.environ.get("DJANGO_ENV_FILE", str(BASE_DIR / ".env"))
if _env_file.lower() != "none":
    load_dotenv(Path(_env_file))

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_optional("DJANGO_SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off. "
            "For local development, `make run` writes a .env file with both."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - DEBUG only

# The demo's one address setting: bin/run-demo serves on PORT, and every
# process that reads these settings (the web server, the worker, a
# send_digest in another terminal) builds its links on the same port.
PORT = env_int("PORT", 8000, minimum=1)
SITE_URL = env_url("SITE_URL", f"http://127.0.0.1:{PORT}", schemes={"http", "https"})
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = [SITE_URL]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "anymail",
    "django_prose_editor",
    "newsletter",
    "delivery",
    "subscriptions",
    "dashboard",
    "operations",
]

MIDDLEWARE = [
    # Names the request (X-Request-ID) for its response, logs and errors, 413s too.
    "config.requestid.RequestIdMiddleware",
    # Refuses oversized bodies and stray file uploads before anything reads them.
    "config.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # The admin in the newsroom's zone (DIGEST_TIMEZONE), not the server's.
    "newsletter.middleware.newsroom_time_zone",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "newsletter.context_processors.site",
                # csp_nonce, for the admin's and the rich-text editor's tags.
                "django.template.context_processors.csp",
            ],
        },
    },
]

# Database: SQLite in var/ unless DATABASE_URL says otherwise.
SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{SQLITE_PATH}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write to the same file: WAL lets readers
    # carry on during a write, IMMEDIATE takes the write lock up front so two
    # writers queue up instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file too: an in-memory database locks whole tables and so
    # would not behave like the real one when threads or processes share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    private_folder(VAR_DIR)
    # Sessions and readers' addresses: made 0600 before SQLite would make it 0644.
    private_sqlite_database(str(DATABASES["default"]["NAME"]))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Every date-and-time format names its zone (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Uploaded files (articles' lead images). Django serves them only with DEBUG
# on; in production the web server or proxy in front serves MEDIA_ROOT at
# MEDIA_URL (README.md, "Media files").
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

# Backups (`manage.py backup`, operations/backups.py): the database and
# MEDIA_ROOT in one archive, written to a folder or to S3-compatible storage
# (s3://bucket/prefix; boto3 reads the endpoint and credentials from the
# standard AWS_* variables itself). Each successful backup then deletes all
# but the newest BACKUP_KEEP archives there. Archives hold readers'
# addresses and sessions: the folder is made private to the service's user.
BACKUP_TARGET = env_backup_target("BACKUP_TARGET", str(VAR_DIR / "backups"))
BACKUP_KEEP = env_int("BACKUP_KEEP", 7, minimum=1)

# Request bodies. Over REQUEST_MAX_BYTES (UPLOAD_REQUEST_MAX_BYTES on the
# admin's article form, which takes a lead image of up to 5 MB and the article,
# and the readers' CSV import) a request is refused with 413 before its body is read
# (config/middleware.py), and a file posted anywhere else is refused unread.
# Django's own: a form's fields (not files) may hold this much, and an upload
# this small stays in memory instead of going to a temporary file. The proxy
# in front caps bodies at UPLOAD_REQUEST_MAX_BYTES too (deploy/Caddyfile).
MIB = 1024 * 1024
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 1 * MIB, minimum=1024)
UPLOAD_REQUEST_MAX_BYTES = env_int("UPLOAD_REQUEST_MAX_BYTES", 6 * MIB, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1 * MIB, minimum=1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 1 * MIB, minimum=0)

# Email. With SMTP_URL the mail goes to that server; without it every
# message is written to var/outbox/ and can be read at /outbox/ (DEBUG only).
DEFAULT_FROM_EMAIL = env_header("DEFAULT_FROM_EMAIL", "The Morning Briefing <briefing@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
NEWSLETTER_NAME = env_header("NEWSLETTER_NAME", "The Morning Briefing")
OUTBOX_DIR = Path(env_str("OUTBOX_DIR", str(VAR_DIR / "outbox")))
SMTP_URL = env_optional("SMTP_URL")
# An email service provider through django-anymail instead of SMTP, e.g.
# amazon_ses, postmark or mailgun; its credentials come from the variables
# README.md lists. Bounces and complaints arrive at /anymail/<esp>/tracking/
# (that provider's only: config/urls.py), protected by ANYMAIL_WEBHOOK_SECRET
# ("user:password" basic auth) and, for Mailgun, by its signature too.
EMAIL_ESP = env_optional("EMAIL_ESP")
ESP_OPTIONS: dict[str, Callable[[], dict[str, str | None]]] = {
    "amazon_ses": lambda: {
        "configuration_set_name": env_optional("AMAZON_SES_CONFIGURATION_SET"),
    },
    "postmark": lambda: {"server_token": env_required("POSTMARK_SERVER_TOKEN")},
    "mailgun": lambda: {
        "api_key": env_required("MAILGUN_API_KEY"),
        "sender_domain": env_optional("MAILGUN_SENDER_DOMAIN"),
        "api_url": env_str("MAILGUN_API_URL", "https://api.mailgun.net/v3"),
    },
}
ANYMAIL: dict[str, str] = {}
if EMAIL_ESP:
    if SMTP_URL:
        raise ImproperlyConfigured("Set either SMTP_URL or EMAIL_ESP, not both.")
    if EMAIL_ESP not in ESP_OPTIONS:
        raise ImproperlyConfigured(
            f"EMAIL_ESP must be one of {', '.join(sorted(ESP_OPTIONS))}, got {EMAIL_ESP!r}"
        )
    ANYMAIL = {"WEBHOOK_SECRET": env_required("ANYMAIL_WEBHOOK_SECRET")}
    if EMAIL_ESP == "mailgun":
        # The tracking webhook view reads its key from ANYMAIL, not from the
        # mail backend's options; without it every Mailgun event answered 500
        # and no bounce was ever applied.
        ANYMAIL["MAILGUN_WEBHOOK_SIGNING_KEY"] = env_required("MAILGUN_WEBHOOK_SIGNING_KEY")
    MAILERS = {
        "default": {
            "BACKEND": f"anymail.backends.{EMAIL_ESP}.EmailBackend",
            "OPTIONS": {
                key: value for key, value in ESP_OPTIONS[EMAIL_ESP]().items() if value is not None
            },
        }
    }
elif SMTP_URL:
    MAILERS = {
        "default": {
            # Django's SMTP backend, DKIM-signing when DKIM_PRIVATE_KEY is set.
            "BACKEND": "delivery.wire.backend.SigningSMTPBackend",
            "OPTIONS": smtp_options(SMTP_URL),
        }
    }
else:
    MAILERS = {
        "default": {
            "BACKEND": "config.outbox.OutboxBackend",
            "OPTIONS": {"directory": OUTBOX_DIR},
        }
    }

# A second mail connection that carries the rest of a send once the first
# (SMTP_URL or the ESP) has failed FALLBACK_AFTER_FAILURES batches in a row,
# for FALLBACK_MINUTES (delivery/wire/carriers.py).
FALLBACK_SMTP_URL = env_optional("FALLBACK_SMTP_URL")
FALLBACK_AFTER_FAILURES = env_int("FALLBACK_AFTER_FAILURES", 2, minimum=1)
FALLBACK_MINUTES = env_int("FALLBACK_MINUTES", 60, minimum=1)
if FALLBACK_SMTP_URL:
    MAILERS["fallback"] = {
        "BACKEND": "delivery.wire.backend.SigningSMTPBackend",
        "OPTIONS": smtp_options(FALLBACK_SMTP_URL, name="FALLBACK_SMTP_URL"),
    }

# DKIM signing by the app, for an SMTP relay that does not sign (delivery/deliverability/dkim.py;
# ESPs sign with the keys set up in their dashboards). The public half goes in
# DNS at <DKIM_SELECTOR>._domainkey.<DKIM_DOMAIN>: `manage.py check_sending_domain`.
DKIM_PRIVATE_KEY = env_optional("DKIM_PRIVATE_KEY")
DKIM_SELECTOR = env_str("DKIM_SELECTOR", "")
DKIM_DOMAIN = env_str("DKIM_DOMAIN", "") or domain_of_address(DEFAULT_FROM_EMAIL)
if DKIM_PRIVATE_KEY and not DKIM_SELECTOR:
    raise ImproperlyConfigured("DKIM_SELECTOR must be set with DKIM_PRIVATE_KEY (e.g. briefing1).")

# The daily digest.
DIGEST_SEND_TIME = env_time("DIGEST_SEND_TIME", "06:00")
DIGEST_TIMEZONE = env_timezone("DIGEST_TIMEZONE", "America/New_York")
DIGEST_SEND_WHEN_EMPTY = env_bool("DIGEST_SEND_WHEN_EMPTY", False)
# A reader's digest goes out within this many minutes after their send
# moment (the scheduler runs every minute, well inside it).
DIGEST_SEND_SLOT = env_int("DIGEST_SEND_SLOT", 15, minimum=1)
# How far back a digest reaches for a reader back from a pause or a bounce.
DIGEST_MAX_BACKLOG_DAYS = env_int("DIGEST_MAX_BACKLOG_DAYS", 7, minimum=1)
# A send missed (beat or workers down) still goes out this many hours after
# the reader's send moment; later, their morning is over and it is recorded
# as missed.
DIGEST_CATCH_UP_HOURS = env_int("DIGEST_CATCH_UP_HOURS", 3, minimum=1)
# Also no digest on a reader's national public holidays (their country from
# their time zone, the `holidays` package); the publisher's no-send days
# apply everywhere either way.
DIGEST_SKIP_PUBLIC_HOLIDAYS = env_bool("DIGEST_SKIP_PUBLIC_HOLIDAYS", False)
DIGEST_BATCH_SIZE = env_int("DIGEST_BATCH_SIZE", 500, minimum=1)
# A sender marks its rows sent every this many emails: a worker killed
# mid-batch leaves at most this many readers who got the email and will get
# it again. Fewer means fewer repeats and more database writes (on
# PostgreSQL each mark is a commit: at 50, a tenth of the send's time).
DIGEST_CHECKPOINT_EVERY = env_int("DIGEST_CHECKPOINT_EVERY", 100, minimum=1)
# Count which stories readers open from the digest, through signed redirect
# links (newsletter/clicks.py); off by default. Who clicked only with
# TRACK_READER_CLICKS too, which the preferences page then discloses.
CLICK_TRACKING = env_bool("CLICK_TRACKING", False)
TRACK_READER_CLICKS = env_bool("TRACK_READER_CLICKS", False)
# A sender holds the rows it claims for this long and renews the hold every
# quarter of it while it works; rows of a sender that died are handed on by
# the sweep (every minute) once it runs out. Longer than one SMTP call may
# take (the mail connection's timeout), so a live sender never loses them.
DIGEST_LEASE_SECONDS = env_int("DIGEST_LEASE_SECONDS", 45, minimum=2)
# A connection lost after the whole message went out, before the server's
# answer: most likely delivered (RFC 1047). Off: recorded as sent, "not
# confirmed". On: sent once more (at most), as some publishers prefer a
# possible duplicate to a possible miss.
DIGEST_RESEND_UNCONFIRMED = env_bool("DIGEST_RESEND_UNCONFIRMED", False)
DIGEST_REPLY_TO = env_list("DIGEST_REPLY_TO", [])
# Bounces over plain SMTP (delivery/deliverability/). With BOUNCE_DOMAIN set, every
# email's envelope sender is bounces+<signed id>@BOUNCE_DOMAIN (VERP), so a bounce
# names the delivery it is about; BOUNCE_MAILBOX_URL is the mailbox (IMAP or
# POP3) that address delivers into, read by `manage.py process_bounces` and beat.
BOUNCE_DOMAIN = env_str("BOUNCE_DOMAIN", "").strip().lower()
BOUNCE_LOCAL_PART = env_str("BOUNCE_LOCAL_PART", "bounces")
BOUNCE_MAILBOX_URL = env_optional("BOUNCE_MAILBOX_URL")
# Soft bounces (a full mailbox, a refusal of the message) suppress an address
# once this many arrive within BOUNCE_SOFT_DAYS; a hard bounce or a complaint at once.
BOUNCE_SOFT_LIMIT = env_int("BOUNCE_SOFT_LIMIT", 3, minimum=1)
BOUNCE_SOFT_DAYS = env_int("BOUNCE_SOFT_DAYS", 30, minimum=1)
# Send health, per edition, as results arrive: staff are emailed (and the
# desk shows a banner) past these rates; past the pause rate the rest of the
# day's sends wait until staff resume them. Percentages.
HEALTH_HARD_BOUNCE_PERCENT = env_float("HEALTH_HARD_BOUNCE_PERCENT", 2.0)
HEALTH_COMPLAINT_PERCENT = env_float("HEALTH_COMPLAINT_PERCENT", 0.1)
HEALTH_PAUSE_COMPLAINT_PERCENT = env_float("HEALTH_PAUSE_COMPLAINT_PERCENT", 0.3)
# Where the mailto: half of List-Unsubscribe points: with BOUNCE_DOMAIN, an
# address of the bounce mailbox (read by the same processor); else the From address.
UNSUBSCRIBE_MAILTO = env_header(
    "UNSUBSCRIBE_MAILTO",
    f"{BOUNCE_LOCAL_PART}+unsubscribe@{BOUNCE_DOMAIN}"
    if BOUNCE_DOMAIN
    else parseaddr(DEFAULT_FROM_EMAIL)[1],
)
# The Feedback-ID header (Gmail's Postmaster Tools groups spam rates by it).
FEEDBACK_ID_SENDER = env_str("FEEDBACK_ID_SENDER", "briefing")

# Billing (used by the Stripe integration).
STRIPE_SECRET_KEY = env_optional("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env_optional("STRIPE_PUBLISHABLE_KEY")
STRIPE_WEBHOOK_SECRET = env_optional("STRIPE_WEBHOOK_SECRET")
STRIPE_PRICE_ID = env_optional("STRIPE_PRICE_ID")
STRIPE_API_BASE = env_optional("STRIPE_API_BASE")
TRIAL_DAYS = env_int("TRIAL_DAYS", 14, minimum=0)
TRIAL_REQUIRES_CARD = env_bool("TRIAL_REQUIRES_CARD", True)
# One free trial per reader: a reader who had a subscription before (we or
# Stripe remember it) starts the next one paid, and is told so first.
ONE_TRIAL_PER_READER = env_bool("ONE_TRIAL_PER_READER", True)
# Days a past_due reader keeps getting the digest while Stripe retries the card.
PAST_DUE_GRACE_DAYS = env_int("PAST_DUE_GRACE_DAYS", 7, minimum=0)
# Stripe Tax: Checkout computes and collects tax (automatic_tax), asking the
# address it needs; set up Stripe Tax in the dashboard first.
STRIPE_AUTOMATIC_TAX = env_bool("STRIPE_AUTOMATIC_TAX", False)
# Checkout lets a business reader give their tax id (VAT number etc.).
STRIPE_TAX_ID_COLLECTION = env_bool("STRIPE_TAX_ID_COLLECTION", False)
# Checkout accepts Stripe promotion codes (created in the Stripe dashboard).
ALLOW_PROMOTION_CODES = env_bool("ALLOW_PROMOTION_CODES", False)
# Days before each yearly renewal the reader is told the date and the amount
# (several US states' automatic-renewal laws ask for such a notice).
RENEWAL_NOTICE_DAYS = env_int("RENEWAL_NOTICE_DAYS", 15, minimum=1)
# Days after a membership ends that one "come back" email goes out; 0: never.
WIN_BACK_DAYS = env_int("WIN_BACK_DAYS", 0, minimum=0)
# The billing backend, a dotted path (subscriptions.billing): every billing
# call goes to it. Unset, the keys choose it (subscriptions.stripe_api):
# Stripe with STRIPE_SECRET_KEY; with DEBUG on and no key, the keyless demo's
# LOCAL_CHECKOUT_BACKEND; otherwise none, and signups say they are not open.
BILLING_BACKEND = env_optional("BILLING_BACKEND")
# The keyless demo's stand-in for Stripe Checkout and the Customer Portal, an
# app of its own: installed (and routed, config/urls.py) only with DEBUG on
# and no Stripe key. The product never imports it; this path names it.
LOCAL_CHECKOUT_BACKEND = "demo_checkout.billing.LocalBilling"
if DEBUG and not STRIPE_SECRET_KEY:
    INSTALLED_APPS.append("demo_checkout")
elif BILLING_BACKEND == LOCAL_CHECKOUT_BACKEND:
    raise ImproperlyConfigured(
        "BILLING_BACKEND: the local test checkout is only for the keyless demo "
        "(DJANGO_DEBUG on, no STRIPE_SECRET_KEY)."
    )

# Celery. Without REDIS_URL the broker is a folder on disk (kombu's
# filesystem transport, made safe in config/filesystem_broker.py), so the
# demo needs no services at all.
REDIS_URL = env_optional("REDIS_URL")


def filesystem_broker(folder: Path) -> tuple[str, dict[str, object]]:
    """The broker URL and transport options of the embedded broker in `folder`.

    `embedded://` is kombu's filesystem transport with whole-file writes
    (config/filesystem_broker.py, registered under that name by
    config/celery.py): kombu's own lets a worker read a message still being
    written, and die of it.
    """
    # Queued tasks hold readers' addresses: the folders are this user's only.
    for subfolder in [folder, folder / "processed", folder / "control"]:
        private_folder(subfolder)
    return "embedded://localhost//", {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        # The folder is polled; the default second would idle workers between batches.
        "polling_interval": 0.1,
    }


# How the send's tasks, leases and broker fit together (config/tests/
# test_celery_settings.py checks these relations):
# - a batch task is stopped after DIGEST_BATCH_TIME_LIMIT (soft limit first,
#   so it records what it sent); its rows' leases (DIGEST_LEASE_SECONDS,
#   renewed every quarter) outlive one SMTP call (the mail timeout) by far;
# - the broker redelivers a task not acknowledged within the visibility
#   timeout: longer than a batch may run, and than its longest retry wait
#   (countdowns are held unacknowledged by the worker on Redis), so a live
#   task is never handed to a second worker. Lost tasks do not wait for it:
#   the sweep (every minute) notices rows nobody holds;
# - the batch task acknowledges late and workers prefetch 1: a batch lost
#   with its worker is redelivered,
#   and no worker hoards batches others could send.
DIGEST_BATCH_SOFT_TIME_LIMIT = 240
DIGEST_BATCH_TIME_LIMIT = 300
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker(VAR_DIR / "broker")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The queue tasks go to and workers consume: separate deployments (or the
# benchmark) can share one Redis by using queues of their own.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery closes the database connection around every task, unless this is
# set; a batch then pays a new connection (on PostgreSQL, a new backend with
# cold caches: it made the send 2x slower). Workers keep theirs instead, by
# the web's rules: config.celery closes them when CONN_MAX_AGE says or when
# unusable (CONN_HEALTH_CHECKS), before and after each task.
CELERY_DB_REUSE_MAX = 2**31
# On a broker connection loss, running batches carry on (they need the
# database and the mail server, not the broker) and record what they sent;
# cancelling them (Celery 6's default) would repeat up to a checkpoint's
# worth of emails each. Their late acknowledgements may be lost with the
# connection: the redelivered task then finds its rows sent and does nothing.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Beat's crontabs (reconciliation) in the newsroom's zone; the digests keep
# each reader's own time (newsletter.schedule).
CELERY_TIMEZONE = DIGEST_TIMEZONE
CELERY_BEAT_SCHEDULE = {
    # Every reader's own morning: each minute, the sends that have come due
    # in any zone (delivery.scheduler.schedule_due_sends).
    "send-due-digests": {
        "task": "newsletter.tasks.send_due_digests",
        "schedule": 60,
    },
    # Rows nobody holds (a dead sender's, a lost task's): back within about
    # a lease and a minute.
    "resume-stalled-sends": {
        "task": "newsletter.tasks.resume_stalled_sends",
        "schedule": 60,
    },
    # Re-fetch recently changed and suspicious subscriptions from Stripe, so
    # a lost webhook cannot leave a reader wrongly in or out for long.
    "reconcile-memberships": {
        "task": "subscriptions.tasks.reconcile_memberships",
        "schedule": crontab(minute=17),
    },
    # The daily checks of the billing year, hourly so a notice goes out the
    # hour its day comes: renewal notices, win-back emails (each once).
    "billing-lifecycle": {
        "task": "subscriptions.tasks.billing_lifecycle",
        "schedule": crontab(minute=41),
    },
    # Scheduled articles go live within a minute of their time.
    # Bounces, complaints and mailto: unsubscribes from BOUNCE_MAILBOX_URL
    # (does nothing without one).
    "process-bounces": {
        "task": "newsletter.tasks.process_bounces",
        "schedule": 5 * 60,
    },
    "publish-scheduled-articles": {
        "task": "newsletter.tasks.publish_scheduled_articles",
        "schedule": 60,
    },
    # The dashboard's sending figures read each edition's counts per zone
    # (dashboard.sends); recounted while an edition can still change.
    "dashboard-snapshot-sends": {
        "task": "dashboard.tasks.snapshot_sends",
        "schedule": 15 * 60,
    },
    "dashboard-count-readers": {
        "task": "dashboard.tasks.count_readers",
        "schedule": 15 * 60,
    },
    # The week's figures to the staff who opted in, Monday morning in the newsroom.
    "dashboard-weekly-summary": {
        "task": "dashboard.tasks.send_weekly_summaries",
        "schedule": crontab(minute=0, hour=7, day_of_week="mon"),
    },
    # And each day's membership history, once the day is over (dashboard.daily).
    "dashboard-snapshot-days": {
        "task": "dashboard.tasks.snapshot_days",
        "schedule": crontab(minute=7),
    },
}

# The cache holds rate-limit counters, so it must be shared by every web
# process: Redis when there is one, else files in var/cache (shared by the
# processes of one machine, which is what the demo runs).
# Beside it, the public pages as anonymous visitors see them
# (newsletter/pagecache.py), for at most PAGE_CACHE_SECONDS (0: not cached);
# any write to the articles, sections or editions replaces them at once. A
# cache of their own: the file-based cache culls a third of its entries when
# full, and page entries must not push the rate-limit counters out. Shared by
# every process like the default, so a publish in the admin or the worker
# reaches every web process.
PAGE_CACHE_SECONDS = env_int("PAGE_CACHE_SECONDS", 60, minimum=0)


def file_caches(folder: Path) -> dict[str, dict[str, object]]:
    """Both caches as files in `folder` (cache/ and page-cache/), for a machine without Redis."""
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(folder / "cache"),
        },
        "pages": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(folder / "page-cache"),
            "TIMEOUT": PAGE_CACHE_SECONDS,
            "OPTIONS": {"MAX_ENTRIES": 2000},
        },
    }


if REDIS_URL:
    CACHES: dict[str, dict[str, object]] = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "briefing",
        },
        "pages": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "briefing-pages",
            "TIMEOUT": PAGE_CACHE_SECONDS,
        },
    }
else:
    CACHES = file_caches(VAR_DIR)

# Prometheus metrics at /metrics (config/metrics.py), for a scraper that
# sends `Authorization: Bearer <METRICS_TOKEN>`; unset, the URL answers 404.
# A bearer token's characters (RFC 6750), long enough not to be guessed.
METRICS_TOKEN = env_optional("METRICS_TOKEN")
if METRICS_TOKEN is not None and not (
    len(METRICS_TOKEN) >= 16 and re.fullmatch(r"[A-Za-z0-9._~+/-]+=*", METRICS_TOKEN)
):
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 16 characters of letters, digits and -._~+/ "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')."
    )

# Security. Production (DEBUG off) gets secure cookies, HSTS and an HTTPS
# redirect; DJANGO_SECURE_SSL_REDIRECT=0 is for a TLS-terminating proxy that
# already redirects, or for trying the stack over plain HTTP on localhost.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# Not read by any script of ours; a sign-in cookie need not be sent on
# requests started by other sites (Lax is Django's default, kept on purpose).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("DJANGO_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
# Site-wide; pages whose URL holds a secret (sign-in, signup and unsubscribe
# links, the checkout's return) send no-referrer instead
# (subscriptions.views.no_referrer), so the token never leaves in a Referer.
SECURE_REFERRER_POLICY = "same-origin"
# How long an emailed sign-in (or signup) link works. Short, because a link
# copied from a screen, a log or a forwarded email signs in for that long.
# Refuse, on the reader forms, an address whose domain DNS says has no mail
# server (email-validator's deliverability check). Off in DEBUG (the demo and
# the tests, which have no DNS) unless set; a DNS that does not answer refuses nobody.
EMAIL_CHECK_DELIVERABILITY = env_bool("EMAIL_CHECK_DELIVERABILITY", not DEBUG)
SIGN_IN_LINK_MINUTES = env_int("SIGN_IN_LINK_MINUTES", 15, minimum=1)
X_FRAME_OPTIONS = "DENY"
BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Behind the proxy, the client's address (rate limits) is read from
# X-Forwarded-For only when the request comes from one of TRUSTED_PROXIES
# (default: loopback and private networks, where compose's proxy lives), and
# then TRUSTED_PROXY_HOPS entries from the right: each proxy in front appends
# the address it saw, so that one was written by our outermost proxy and
# everything left of it by the client. gunicorn reached directly, from a
# public address, has its X-Forwarded-For ignored (subscriptions/ratelimit.py).
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 1, minimum=1)
TRUSTED_PROXIES = env_networks(
    "TRUSTED_PROXIES",
    ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)

# Content Security Policy (Django's own middleware). Scripts and styles come
# from this site only; the few inline tags (the rich-text editor's import map
# in the admin) carry the per-request nonce. No inline script, no style
# attributes, no plugins, no framing. Forms may post here and lead on to
# Stripe Checkout and the Customer Portal (browsers apply form-action to the
# redirect after a POST). The email previews (outbox, editors' desk) relax
# style-src for their sandboxed frames only: EMAIL_PREVIEW_CSP.
# The rich-text editor (Tiptap, inside django-prose-editor) injects one fixed
# <style> of its base CSS without a nonce; its hash allows exactly that one.
# config/tests/test_csp.py recomputes it from the installed editor, so an
# upgrade that changes it fails the tests instead of the editors' page.
TIPTAP_BASE_CSS_HASH = "'sha256-PlumsSlvJ7vvWzjqibGAYKq92O3y/4JTxWWsWJvyUYA='"
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE, TIPTAP_BASE_CSS_HASH],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF, "https://checkout.stripe.com", "https://billing.stripe.com"],
}
# The policy of the pages that show an email (the dev outbox, the editors'
# desk). An email shown in a sandboxed srcdoc frame inherits the page's
# policy, and emails are styled inline (style attributes and a <style>
# block, as mail clients need): those pages allow inline styles. Scripts stay
# as strict as everywhere (the frames are sandboxed without allow-scripts too).
EMAIL_PREVIEW_CSP: dict[str, list[str]] = {**SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE]}

# Errors go to Sentry (or a service that speaks its protocol) when SENTRY_DSN
# is set: from the web (config/wsgi.py, manage.py), the worker and beat
# (config/celery.py), with readers' addresses, tokens, cookies and request
# bodies scrubbed first (config/sentry.py). Beat's schedule is monitored as
# Sentry cron check-ins. Nothing is sent without a DSN.
SENTRY_DSN = env_optional("SENTRY_DSN")
if SENTRY_DSN:
    try:
        Dsn(SENTRY_DSN)
    except BadDsn as error:
        raise ImproperlyConfigured(f"SENTRY_DSN is not a Sentry DSN: {error}") from None
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT", "production")
# The share of requests and tasks traced (performance); 0: errors only.
SENTRY_TRACES_SAMPLE_RATE = env_fraction("SENTRY_TRACES_SAMPLE_RATE", 0.0)

# Logs: one line per event on standard error, a JSON object with LOG_FORMAT=json
# (config/logformat.py), carrying the request id (config.middleware.
# RequestIdMiddleware), the Celery task and a send's edition and zone
# (config/logcontext.py). Every handler passes config.logfilters.RedactSecrets,
# which writes readers' addresses as [address] and the tokens of sign-in,
# signup, unsubscribe and preferences links and Checkout session ids as
# [redacted]: Django logs request paths ("Bad Request: /signin/<token>/",
# runserver's access lines), the sending code the addresses it could not
# reach. Celery's worker and beat keep this configuration (config/celery.py),
# and gunicorn's own handlers get the same filters and format
# (config/gunicorn_conf.py).
LOG_FORMAT = env_choice("LOG_FORMAT", "plain", {"plain", "json"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "log_context": {"()": "config.logcontext.LogContext"},
        "redact_secrets": {"()": "config.logfilters.RedactSecrets"},
    },
    "formatters": {
        "plain": {"()": "config.logformat.PlainFormatter"},
        "json": {"()": "config.logformat.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["log_context", "redact_secrets"],
        },
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # The SDK logs every API request at INFO; our own code logs what matters.
        "stripe": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # flufl.bounce logs each of its detectors for every message at INFO.
        "flufl.bounce": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # The Sentry SDK's own messages (with its `debug` option only) through ours.
        "sentry_sdk.errors": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
