"""The service's settings: what the operator sets, and what the service makes of it.

Each variable an operator may set is read here through a typed reader of
config.env, which stops the service at start, naming the variable and what
it expects, on a value it cannot use. README.md ("Configuration") is the one
reference for every variable and for the advanced settings below: the
comments here say why, not what. A `.env` file next to manage.py is read
first (`make run` writes one), or the file DJANGO_ENV_FILE names; real
environment variables win over it.
"""

import re
import warnings
from email.utils import parseaddr
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from sentry_sdk.utils import BadDsn, Dsn

from config.env import (
    Retired,
    env_address,
    env_addresses,
    env_backup_target,
    env_bool,
    env_choice,
    env_database,
    env_dns_label,
    env_domain,
    env_header,
    env_int,
    env_list,
    env_networks,
    env_optional,
    env_optional_url,
    env_options,
    env_path,
    env_pem_key,
    env_required,
    env_secret,
    env_str,
    env_time,
    env_timezone,
    env_url,
    esp_options,
    load_dotenv,
    refuse_retired,
    smtp_options,
)
from config.private_files import private_folder, private_sqlite_database

# The From domain, which DKIM signs for. An address helper of the readers'
# app, which reads no setting and no model when imported.
from subscriptions.addresses import domain_of_address

BASE_DIR = Path(__file__).resolve().parents[2]
# Local state of the demo: database, broker, outbox, caches. Private to the
# user the service runs as (config/private_files.py).
VAR_DIR = BASE_DIR / "var"

# Tests and benchmarks say "none", so that each process they start has
# exactly the environment they give it, whatever a developer's .env holds.
_env_file = env_str("DJANGO_ENV_FILE", str(BASE_DIR / ".env"))
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


# === Advanced settings: not read from the environment =====================
# Internal knobs: what the service is built around, not what a deployment
# chooses. README.md ("Advanced settings") says what each does; changing one
# is a code change, reviewed and tested like one. The variables that used to
# set them are refused at start when set to something else (the end of this
# module). The comments say why each value is what it is.

# Every form and the readers' CSV import fit in 1 MiB; the admin's article
# form takes a lead image of up to 5 MB with the article. deploy/Caddyfile
# caps bodies at the same 6 MB. Django's own two: a form's fields (not its
# files), and the size up to which an upload stays in memory.
REQUEST_MAX_BYTES = 1024 * 1024
UPLOAD_REQUEST_MAX_BYTES = 6 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# A PostgreSQL connection kept a minute spares each request and each batch
# a new backend (a cold one made the send 2x slower); a broken one is
# dropped by the health check before use.
DATABASE_CONN_MAX_AGE = 60
# A publish or an edit replaces a cached page at once (newsletter/pagecache.py);
# the expiry only bounds what a lost invalidation could serve.
PAGE_CACHE_SECONDS = 60
# Deployments sharing one Redis keep apart by a database number of their own
# in REDIS_URL, which also keeps their caches apart; a queue name would not.
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Written only without SMTP_URL or EMAIL_ESP: the demo and the tests.
OUTBOX_DIR = VAR_DIR / "outbox"

# Two failed batches in a row are an outage rather than one bad connection;
# an hour on the fallback before trying the first again spares readers a
# relay that flaps.
FALLBACK_AFTER_FAILURES = 2
FALLBACK_MINUTES = 60

# A batch is one claim, its connections to the relay and a constant handful
# of queries (docs/performance.md): 1,000 readers share them (a relay 50 ms
# away costs each batch a few round trips to connect), and a batch still
# ends far inside its time limits (one connection to a relay 150 ms away
# takes 150 s).
DIGEST_BATCH_SIZE = 1000
# A worker killed mid-batch repeats at most this many emails. Fewer means
# fewer repeats and more writes: on PostgreSQL each mark is a commit, and at
# 50 they took a tenth of the send's time.
DIGEST_CHECKPOINT_EVERY = 100
# A quarter of the lease (the renewal) plus one SMTP call (30 s, the mail
# timeout) fits inside it, so a live sender never loses its rows; a dead
# one's are handed on within the lease and a minute of the sweep.
DIGEST_LEASE_SECONDS = 45
# Soft limit first, so a batch records what it sent; both far below the
# broker's visibility timeout (config/tests/test_celery_settings.py).
DIGEST_BATCH_SOFT_TIME_LIMIT = 240
DIGEST_BATCH_TIME_LIMIT = 300
# The scheduler runs every minute and a batch takes seconds: a digest still
# not out a quarter of an hour after its reader's moment is a stuck send, and
# the alert says so (config/metrics.py, deploy/prometheus-alerts.yml).
DIGEST_SEND_SLOT = 15
# A morning digest later than this is no longer a morning digest: recorded
# missed, and its articles roll into the next one.
DIGEST_CATCH_UP_HOURS = 3
# Sentry is here for errors: tracing requests and tasks is a cost (and more
# data leaving) that a deployment asks for in code, not by accident.
SENTRY_TRACES_SAMPLE_RATE = 0.0
# An email with no news in it costs readers' trust and the sender's reputation.
DIGEST_SEND_WHEN_EMPTY = False
# A connection lost after the whole message went out means it was most likely
# delivered (RFC 1047): a possible miss is preferred to a likely duplicate.
DIGEST_RESEND_UNCONFIRMED = False

# The VERP local part (bounces+<signed id>@BOUNCE_DOMAIN): only the signed
# part matters, so no deployment needs another.
BOUNCE_LOCAL_PART = "bounces"
# A full mailbox three times in a month is a mailbox nobody reads; once is not.
BOUNCE_SOFT_LIMIT = 3
BOUNCE_SOFT_DAYS = 30
# Gmail's and Yahoo's bulk-sender rules: complaints under 0.1%, never past
# 0.3% (docs/deliverability.md); 2% hard bounces is a list gone stale.
HEALTH_HARD_BOUNCE_PERCENT = 2.0
HEALTH_COMPLAINT_PERCENT = 0.1
HEALTH_PAUSE_COMPLAINT_PERCENT = 0.3
# Gmail's Postmaster Tools group spam rates by the Feedback-ID's fields: the
# edition and the kind of email vary, this last one only names the sender.
FEEDBACK_ID_SENDER = "briefing"

# A link copied from a screen, a log or a forwarded email signs in for this
# long: short, and still enough to open the email on another device.
SIGN_IN_LINK_MINUTES = 15
# A year, with subdomains and preload (Django's deploy check asks for them);
# nothing in DEBUG, where the demo runs over plain HTTP.
SECURE_HSTS_SECONDS = 0 if DEBUG else 365 * 24 * 60 * 60
# The demo and the tests have no DNS; production asks, and a DNS that does
# not answer refuses nobody (subscriptions/addresses.py).
EMAIL_CHECK_DELIVERABILITY = not DEBUG
# A reader who had a subscription before (we or Stripe remember it) starts
# the next one paid, and is told so first: otherwise cancelling and coming
# back would be a new free trial each time.
ONE_TRIAL_PER_READER = True
# Referral rewards (subscriptions/actions/referrals.py): free months credited
# to the referrer's Stripe customer balance when a referred reader first pays,
# bonus months at these counts of paying referrals, at most this many months
# in any 365 days, and a refund or dispute within this many days of the paid
# invoice takes back a credit not yet used.
REFERRAL_REWARD_MONTHS = 1
REFERRAL_MILESTONES = {5: 1, 10: 2}
REFERRAL_MONTHS_PER_YEAR = 12
REFERRAL_TAKE_BACK_DAYS = 60
# Team subscriptions (subscriptions/teams.py): the per-seat yearly price is
# the individual plan's, less this percentage from this many seats (Stripe's
# volume pricing: every seat at the tier the quantity reaches), bought for
# this few to this many seats.
TEAM_VOLUME_DISCOUNT_PERCENT = 20
TEAM_VOLUME_DISCOUNT_FROM_SEATS = 5
TEAM_MIN_SEATS = 2
TEAM_MAX_SEATS = 500
# A week of nights to go back to; another rhythm says how many to keep with
# `manage.py backup --keep` (docs/operations.md).
BACKUP_KEEP = 7
# Stripe's servers; the tests point the SDK at their own (subscriptions/tests).
STRIPE_API_BASE: str | None = None
# The keys choose the billing backend (subscriptions/stripe_api.py); another
# backend is code, so it is chosen in code.
BILLING_BACKEND: str | None = None
# Outgoing webhooks (api/webhooks.py): retried with exponential backoff for
# three days (Stripe's own window), an endpoint that failed everything for
# that long is disabled and staff are emailed; their own Celery queue, so a
# slow endpoint never holds up a send.
WEBHOOK_RETRY_DAYS = 3
WEBHOOK_DISABLE_AFTER_DAYS = 3
WEBHOOK_QUEUE = "webhooks"
# A signature older than this is refused by the verification snippets in
# docs/api.md (replays of a captured delivery); Stripe's default too.
WEBHOOK_TOLERANCE_SECONDS = 300
# === End of the advanced settings ==========================================


# The demo's one address setting: bin/run-demo serves on PORT, and every
# process that reads these settings (the web server, the worker, a
# send_digest in another terminal) builds its links on the same port.
PORT = env_int("PORT", 8000, minimum=1, maximum=65535)
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
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
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

# SQLite in var/ unless DATABASE_URL says otherwise: the demo needs no server.
SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {
    "default": env_database(
        "DATABASE_URL",
        f"sqlite:///{SQLITE_PATH}",
        conn_max_age=DATABASE_CONN_MAX_AGE,
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

# Django serves uploaded files only with DEBUG on; in production the proxy in
# front serves MEDIA_ROOT at MEDIA_URL (README.md, "Media files").
MEDIA_URL = "media/"
MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")

# Backups (`manage.py backup`, operations/backups.py) hold readers' addresses
# and sessions: a folder target is made private to the service's user.
BACKUP_TARGET = env_backup_target("BACKUP_TARGET", str(VAR_DIR / "backups"))

# Email: to SMTP_URL, or through an ESP, or (neither) into OUTBOX_DIR, which
# the demo shows at /outbox/.
DEFAULT_FROM_EMAIL = env_address("DEFAULT_FROM_EMAIL", "The Morning Briefing <briefing@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
NEWSLETTER_NAME = env_header("NEWSLETTER_NAME", "The Morning Briefing")
SMTP_URL = env_optional("SMTP_URL")
OUTBOX_BACKEND = "config.outbox.OutboxBackend"


def outbox_mailer(folder: Path) -> dict[str, object]:
    """The mailer that writes every email into `folder`: the demo's, or a test's own."""
    return {"BACKEND": OUTBOX_BACKEND, "OPTIONS": {"directory": folder}}


# The provider and its credentials in one URL, like SMTP_URL (config.env.esp_options).
# The tracking webhook, /anymail/<esp>/tracking/, is mounted for that provider
# only (config/urls.py): anyone who can post to it can stop a reader's emails,
# hence its basic auth, and Mailgun's signature on top.
EMAIL_ESP: str | None = None
ANYMAIL: dict[str, str] = {}
MAILERS: dict[str, dict[str, object]]
_esp_url = env_optional("EMAIL_ESP")
if _esp_url:
    if SMTP_URL:
        raise ImproperlyConfigured("Set either SMTP_URL or EMAIL_ESP, not both.")
    EMAIL_ESP, _esp_backend_options, _esp_anymail = esp_options(_esp_url)
    if EMAIL_ESP == "sendgrid":
        # anymail still ships SendGrid's backend and webhook, without official
        # support (anymail#432), and says so on every connection; the README
        # says it once ("Email service providers").
        warnings.filterwarnings(
            "ignore", message="django-anymail has dropped official support for SendGrid"
        )
    # The tracking view reads Mailgun's key from ANYMAIL, not from the mail
    # backend's options: without it there every Mailgun event answered 500.
    ANYMAIL = {"WEBHOOK_SECRET": env_required("ANYMAIL_WEBHOOK_SECRET"), **_esp_anymail}
    MAILERS = {
        "default": {
            "BACKEND": f"anymail.backends.{EMAIL_ESP}.EmailBackend",
            "OPTIONS": _esp_backend_options,
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
    MAILERS = {"default": outbox_mailer(OUTBOX_DIR)}

# A send outlives a relay's outage on a second one (delivery/wire/carriers.py).
FALLBACK_SMTP_URL = env_optional("FALLBACK_SMTP_URL")
if FALLBACK_SMTP_URL:
    MAILERS["fallback"] = {
        "BACKEND": "delivery.wire.backend.SigningSMTPBackend",
        "OPTIONS": smtp_options(FALLBACK_SMTP_URL, name="FALLBACK_SMTP_URL"),
    }

# DKIM signing by the app, for an SMTP relay that does not sign (delivery/deliverability/dkim.py;
# ESPs sign with their own keys). The domain is the From address's: that is
# what DMARC aligns with, so there is nothing to choose.
DKIM_PRIVATE_KEY = env_pem_key("DKIM_PRIVATE_KEY")
DKIM_SELECTOR = env_dns_label("DKIM_SELECTOR")
DKIM_DOMAIN = domain_of_address(DEFAULT_FROM_EMAIL)
if DKIM_PRIVATE_KEY and not DKIM_SELECTOR:
    raise ImproperlyConfigured("DKIM_SELECTOR must be set with DKIM_PRIVATE_KEY (e.g. briefing1).")

# Bounces over plain SMTP (delivery/deliverability/): with a bounce domain, each
# email's envelope sender is signed (VERP), so a bounce can be believed.
BOUNCE_DOMAIN = env_domain("BOUNCE_DOMAIN")
BOUNCE_MAILBOX_URL = env_optional_url(
    "BOUNCE_MAILBOX_URL",
    schemes={"imap", "imaps", "pop3", "pop3s"},
    example="imaps://user:password@imap.example.com/INBOX",
)
# The mailto: half of List-Unsubscribe lands where bounces are read, so the
# same processor applies it; without a bounce domain a person reads it.
UNSUBSCRIBE_MAILTO = (
    f"{BOUNCE_LOCAL_PART}+unsubscribe@{BOUNCE_DOMAIN}"
    if BOUNCE_DOMAIN
    else parseaddr(DEFAULT_FROM_EMAIL)[1]
)

# The daily digest.
DIGEST_SEND_TIME = env_time("DIGEST_SEND_TIME", "06:00")
DIGEST_TIMEZONE = env_timezone("DIGEST_TIMEZONE", "America/New_York")
DIGEST_SKIP_PUBLIC_HOLIDAYS = env_bool("DIGEST_SKIP_PUBLIC_HOLIDAYS", False)
# A reader back after a week away gets that week, not a month of news.
DIGEST_MAX_BACKLOG_DAYS = env_int("DIGEST_MAX_BACKLOG_DAYS", 7, minimum=1)
# Emails a second across every worker on every host (an ESP account's quota,
# a relay's limit), shared through Redis (delivery/wire/rate.py); 0: no cap.
SEND_RATE_LIMIT = env_int("SEND_RATE_LIMIT", 0, minimum=0)
DIGEST_REPLY_TO = env_addresses("DIGEST_REPLY_TO")
# One choice, privacy first: off, stories only, or who clicked too (which
# the preferences page then discloses). No open-tracking pixel, ever.
CLICK_TRACKING, TRACK_READER_CLICKS = env_choice(
    "CLICK_TRACKING",
    "0",
    {
        **dict.fromkeys(["0", "false", "no", "off"], (False, False)),
        **dict.fromkeys(["1", "true", "yes", "on"], (True, False)),
        "readers": (True, True),
    },
    expected="0 (off), 1 (count each story's clicks) or readers (and who clicked)",
)

# Billing: Stripe's keys, and the publisher's offer.
STRIPE_SECRET_KEY = env_secret(
    "STRIPE_SECRET_KEY", prefixes=("sk_", "rk_"), kind="a Stripe secret (or restricted) key"
)
STRIPE_WEBHOOK_SECRET = env_secret(
    "STRIPE_WEBHOOK_SECRET", prefixes=("whsec_",), kind="a webhook endpoint's signing secret"
)
# Optional: setup_stripe's price is found by its lookup key without it.
STRIPE_PRICE_ID = env_optional("STRIPE_PRICE_ID")
TRIAL_DAYS = env_int("TRIAL_DAYS", 14, minimum=0)
# The free trial of a visitor who came by a reader's referral link.
REFERRAL_TRIAL_DAYS = env_int("REFERRAL_TRIAL_DAYS", 30, minimum=0)
TRIAL_REQUIRES_CARD = env_bool("TRIAL_REQUIRES_CARD", True)
PAST_DUE_GRACE_DAYS = env_int("PAST_DUE_GRACE_DAYS", 7, minimum=0)
# What Checkout asks and accepts beyond the card. Stripe Tax must be set up
# in the dashboard first: each is off until the publisher turns it on.
STRIPE_CHECKOUT = env_options(
    "STRIPE_CHECKOUT", {"automatic_tax", "tax_id_collection", "promotion_codes"}
)
STRIPE_AUTOMATIC_TAX = "automatic_tax" in STRIPE_CHECKOUT
STRIPE_TAX_ID_COLLECTION = "tax_id_collection" in STRIPE_CHECKOUT
ALLOW_PROMOTION_CODES = "promotion_codes" in STRIPE_CHECKOUT
# Several US states' automatic-renewal laws ask for a notice before a yearly
# renewal, each with its own window: the publisher's counsel picks the day.
RENEWAL_NOTICE_DAYS = env_int("RENEWAL_NOTICE_DAYS", 15, minimum=1)
WIN_BACK_DAYS = env_int("WIN_BACK_DAYS", 0, minimum=0)
# The keyless demo's stand-in for Stripe Checkout and the Customer Portal, an
# app of its own: installed (and routed, config/urls.py) only with DEBUG on
# and no Stripe key. The product never imports it; this path names it.
LOCAL_CHECKOUT_BACKEND = "demo_checkout.billing.LocalBilling"
if DEBUG and not STRIPE_SECRET_KEY:
    INSTALLED_APPS.append("demo_checkout")

# Celery. Without REDIS_URL the broker is a folder on disk (kombu's
# filesystem transport, made safe in config/filesystem_broker.py), so the
# demo needs no services at all.
REDIS_URL = env_optional_url(
    "REDIS_URL", schemes={"redis", "rediss"}, example="redis://localhost:6379/0"
)


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
# - a batch task is stopped after DIGEST_BATCH_TIME_LIMIT, soft limit first;
#   between two renewals of its rows' lease it makes at most one SMTP call;
# - the broker redelivers a task not acknowledged within the visibility
#   timeout: longer than a batch may run, and than its longest retry wait
#   (countdowns are held unacknowledged by the worker on Redis), so a live
#   task is never handed to a second worker. Lost tasks do not wait for it:
#   the sweep (every minute) notices rows nobody holds;
# - the batch task acknowledges late and workers prefetch 1: a batch lost
#   with its worker is redelivered, and no worker hoards batches others
#   could send.
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker(VAR_DIR / "broker")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
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
# Beat's crontabs (reconciliation, the billing checks, the dashboard's days
# and its Monday summary) in the newsroom's zone; the digests keep each
# reader's own time (newsletter.schedule).
CELERY_TIMEZONE = DIGEST_TIMEZONE
# Webhook deliveries wait on other people's servers: a queue of their own
# (a worker with -Q webhooks, docker-compose.yml), never the sends'.
CELERY_TASK_ROUTES = {"api.tasks.deliver_webhook": {"queue": WEBHOOK_QUEUE}}
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
    # Bounces, complaints and mailto: unsubscribes from BOUNCE_MAILBOX_URL
    # (does nothing without one).
    "process-bounces": {
        "task": "newsletter.tasks.process_bounces",
        "schedule": 5 * 60,
    },
    # Scheduled articles go live within a minute of their time.
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
    # And its readers by state (dashboard.daily).
    "dashboard-count-readers": {
        "task": "dashboard.tasks.count_readers",
        "schedule": 15 * 60,
    },
    # Webhook deliveries whose retry has come, and each zone's finished
    # morning send as an edition.sent event (api.tasks).
    "webhooks-retry": {
        "task": "api.tasks.retry_webhooks",
        "schedule": 60,
    },
    "webhooks-edition-sent": {
        "task": "api.tasks.emit_edition_sends",
        "schedule": 60,
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
# processes of one machine, which is what the demo runs). The public pages
# (newsletter/pagecache.py) have a cache of their own: the file-based cache
# culls a third of its entries when full, and page entries must not push the
# rate-limit counters out. Shared by every process too, so a publish in the
# admin or the worker reaches every web process.


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

# The publisher's figures (config/metrics.py) go only to a scraper with the
# token: a bearer token's characters (RFC 6750), long enough not to be guessed.
METRICS_TOKEN = env_optional("METRICS_TOKEN")

# The API's outgoing requests (webhook deliveries, lead images fetched by
# URL) never reach loopback, private or link-local addresses (SSRF:
# api/outbound.py) unless this allows them, for an endpoint on the
# publisher's own network.
API_ALLOW_PRIVATE_ADDRESSES = env_bool("API_ALLOW_PRIVATE_ADDRESSES", False)

# The versioned API (api/): keys, scopes and problem details throughout.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.authentication.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.authentication.KeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "The Morning Briefing API",
    "DESCRIPTION": "Readers, articles, editions and figures; webhooks are described in "
    "docs/api.md.",
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_PUBLIC": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.add_problems",
    ],
}
if METRICS_TOKEN is not None and not (
    len(METRICS_TOKEN) >= 16 and re.fullmatch(r"[A-Za-z0-9._~+/-]+=*", METRICS_TOKEN)
):
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 16 characters of letters, digits and -._~+/ "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')."
    )

# Security. Production (DEBUG off) gets secure cookies, HSTS and an HTTPS
# redirect; turning the redirect off is for a TLS-terminating proxy that
# already redirects, or for trying the stack over plain HTTP on localhost.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
# Not read by any script of ours; a sign-in cookie need not be sent on
# requests started by other sites (Lax is Django's default, kept on purpose).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
# Site-wide; pages whose URL holds a secret (sign-in, signup and unsubscribe
# links, the checkout's return) send no-referrer instead
# (subscriptions.headers.no_referrer), so the token never leaves in a Referer.
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Behind the proxy, the client's address (rate limits) is read from
# X-Forwarded-For only when the request comes from one of the trusted
# proxies (by default loopback and private networks, where compose's proxy
# lives), and then that many entries from the right: each proxy in front
# appends the address it saw, so that one was written by our outermost proxy
# and everything left of it by the client. gunicorn reached directly, from a
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

# Errors leave the machine only with a DSN, and only once readers' addresses,
# tokens, cookies and request bodies are scrubbed (config/sentry.py).
SENTRY_DSN = env_optional("SENTRY_DSN")
if SENTRY_DSN:
    try:
        Dsn(SENTRY_DSN)
    except BadDsn as error:
        raise ImproperlyConfigured(f"SENTRY_DSN is not a Sentry DSN: {error}") from None

# Every handler passes config.logfilters.RedactSecrets: Django logs request
# paths ("Bad Request: /signin/<token>/", runserver's access lines) and the
# sending code the addresses it could not reach, and no reader's address or
# token may be read in a log. Each line names its request, task, edition and
# zone (config/logcontext.py), so one send can be followed. Celery's worker
# and beat keep this configuration (config/celery.py); gunicorn's handlers
# get the same filters and format (config/gunicorn_conf.py).
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


# === Variables no longer read ===============================================
# Each became an advanced setting above, or moved into another variable. Set
# to what now holds anyway, it is only warned about, so an older .env keeps
# working; set to anything else, the service stops rather than quietly do
# otherwise than asked (config.env.refuse_retired).


def _constant(setting: str, value: object) -> Retired:
    shown = str(value) if isinstance(value, Path) else repr(value)
    return Retired(
        f'it is {setting} = {shown} in config/settings (README.md, "Advanced settings")',
        value=value,
    )


_mailgun = (
    "it goes in EMAIL_ESP=mailgun://<api key>@<api host>/<sending domain>?webhook_signing_key=<key>"
)
_retired = {
    name: _constant(name, globals()[name])
    for name in [
        "REQUEST_MAX_BYTES",
        "UPLOAD_REQUEST_MAX_BYTES",
        "DATA_UPLOAD_MAX_MEMORY_SIZE",
        "FILE_UPLOAD_MAX_MEMORY_SIZE",
        "DATABASE_CONN_MAX_AGE",
        "PAGE_CACHE_SECONDS",
        "OUTBOX_DIR",
        "FALLBACK_AFTER_FAILURES",
        "FALLBACK_MINUTES",
        "DIGEST_BATCH_SIZE",
        "DIGEST_CHECKPOINT_EVERY",
        "DIGEST_LEASE_SECONDS",
        "DIGEST_SEND_SLOT",
        "DIGEST_CATCH_UP_HOURS",
        "DIGEST_SEND_WHEN_EMPTY",
        "DIGEST_RESEND_UNCONFIRMED",
        "BOUNCE_LOCAL_PART",
        "BOUNCE_SOFT_LIMIT",
        "BOUNCE_SOFT_DAYS",
        "HEALTH_HARD_BOUNCE_PERCENT",
        "HEALTH_COMPLAINT_PERCENT",
        "HEALTH_PAUSE_COMPLAINT_PERCENT",
        "FEEDBACK_ID_SENDER",
        "SIGN_IN_LINK_MINUTES",
        "EMAIL_CHECK_DELIVERABILITY",
        "ONE_TRIAL_PER_READER",
        "STRIPE_API_BASE",
        "BILLING_BACKEND",
        "BACKUP_KEEP",
        "SENTRY_TRACES_SAMPLE_RATE",
    ]
} | {
    "CELERY_QUEUE": _constant("CELERY_TASK_DEFAULT_QUEUE", CELERY_TASK_DEFAULT_QUEUE),
    "DJANGO_HSTS_SECONDS": _constant("SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60),
    "UNSUBSCRIBE_MAILTO": Retired(
        "it is bounces+unsubscribe@BOUNCE_DOMAIN with BOUNCE_DOMAIN, else the From address",
        value=UNSUBSCRIBE_MAILTO,
    ),
    "DKIM_DOMAIN": Retired("it is the From address's domain", value=DKIM_DOMAIN),
    "TRACK_READER_CLICKS": Retired(
        "CLICK_TRACKING=readers records who clicked", value=TRACK_READER_CLICKS
    ),
    **{
        name: Retired(f"it goes in STRIPE_CHECKOUT={option}", value=False)
        for name, option in [
            ("STRIPE_AUTOMATIC_TAX", "automatic_tax"),
            ("STRIPE_TAX_ID_COLLECTION", "tax_id_collection"),
            ("ALLOW_PROMOTION_CODES", "promotion_codes"),
        ]
    },
    "POSTMARK_SERVER_TOKEN": Retired("it goes in EMAIL_ESP=postmark://<server token>@"),
    "MAILGUN_API_KEY": Retired(_mailgun),
    "MAILGUN_SENDER_DOMAIN": Retired(_mailgun),
    "MAILGUN_API_URL": Retired(_mailgun),
    "MAILGUN_WEBHOOK_SIGNING_KEY": Retired(_mailgun),
    "AMAZON_SES_CONFIGURATION_SET": Retired(
        "it goes in EMAIL_ESP=amazon_ses://?configuration_set=<name>"
    ),
    "STRIPE_PUBLISHABLE_KEY": Retired("nothing ever used it", harmless=True),
}
refuse_retired(_retired)
