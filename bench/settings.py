"""Settings of the benchmarks: the product's own, plus the bench app and its URLs.

`make bench` (bin/bench) runs every bench process with
DJANGO_SETTINGS_MODULE=bench.settings: the manage.py commands (bench_digest,
bench_pages, bench_report), the Celery workers bench_digest starts and the
gunicorn server bench_pages starts. The product's settings (config.settings)
do not install `bench`, so its commands are not the product's.
"""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405

# The site's own URLs plus the page bench's baseline, a trivial view.
ROOT_URLCONF = "bench.urls"
WSGI_APPLICATION = "bench.wsgi.application"
