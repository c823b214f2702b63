"""Settings of the benchmarks: the product's own, plus the bench app and its URLs.

`make bench` (bin/bench) runs every bench process with
DJANGO_SETTINGS_MODULE=bench.settings: the manage.py commands (bench_digest,
bench_pages, bench_report), the Celery workers bench_digest starts and the
gunicorn server bench_pages starts. The product's settings (config.settings)
do not install `bench`, so its commands are not the product's.
"""

import os

from config.settings import *  # noqa: F403
from config.settings import CELERY_TASK_DEFAULT_QUEUE

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405

# The site's own URLs plus the page bench's baseline, a trivial view.
ROOT_URLCONF = "bench.urls"
WSGI_APPLICATION = "bench.wsgi.application"

# The advanced settings are not read from the environment; the bench sets
# these for the processes it starts. A Celery queue of the run's own
# (bench_digest), so that no other worker on a shared Redis takes its tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("BENCH_CELERY_QUEUE") or CELERY_TASK_DEFAULT_QUEUE
# bench_pages' stand-in for Stripe's API.
STRIPE_API_BASE = os.environ.get("BENCH_STRIPE_API_BASE") or None
# No DNS can be asked here: each signup would wait out the deliverability
# check's timeout. Production asks its resolver.
EMAIL_CHECK_DELIVERABILITY = False
