# The newcomer path: `make run` serves the demo, `make test` runs the tests.
# Both create .venv with Python 3.12+ and install what they need.

PYTHON := $(shell bin/find-python)

# Python keeps the project's compiled bytecode (__pycache__/, ignored by git)
# even where the environment asks it not to: otherwise every test process,
# and every worker or manage.py a test starts, compiles the project anew
# (a pytest process spends 3 of its 6.5 s of collection doing so).
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test e2e e2e-tools bench bench-dashboard faults lint format check clean spamassassin

run: $(VENV)/.installed .env
	bin/run-demo

# The whole suite in four processes on this 2-core machine (pytest-xdist: many
# tests wait on servers and processes they start, so four keep both cores busy;
# `load` hands tests out in order, so each process runs the tests that flush
# the database after the others, as pytest-django orders them), then a line
# coverage report (printed, not a gate; pyproject.toml says why lines only).
# CI narrows its later passes: PYTEST_ARGS='-m "not faults"' COVERAGE= (.ci/run).
COVERAGE ?= --cov --cov-report=term:skip-covered
PARALLEL ?= -n 4 --dist load
test: $(VENV)/.installed .env
	$(VENV)/bin/pytest $(PARALLEL) $(COVERAGE) $(PYTEST_ARGS)

# The browser tests (e2e/): journeys, accessibility (axe-core) and screenshots
# against a live server, in Debian's chromium. Artifacts go to test-artifacts/.
e2e: $(VENV)/.installed .env e2e-tools
	@status=0; $(VENV)/bin/pytest e2e || status=$$?; \
	echo; \
	echo "Browser test artifacts in $(CURDIR)/test-artifacts/:"; \
	echo "  screenshots/  pages (375 px and 1280 px) and the digest email (375/800 px, light/dark)"; \
	echo "  axe/          axe-core reports, every violation of every impact, per page"; \
	echo "  e2e-logs/     the web server's and the Celery worker's logs"; \
	exit $$status

# Debian's chromium (Playwright's own browser download is not used) and
# axe-core from npm at the version package-lock.json pins, when missing.
e2e-tools: node_modules/.package-lock.json
	@if ! test -x "$${CHROMIUM:-/usr/bin/chromium}"; then \
		echo "Installing chromium..."; \
		apt-get update -qq && apt-get install -y -qq chromium; \
	fi

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# The fault-injection tests against real processes, and the table of what
# each fault cost (docs/reliability.md). PostgreSQL and Redis when present.
faults: $(VENV)/.installed .env
	bin/faults

# The send and page benchmarks; writes docs/performance.md (see docs/).
bench: $(VENV)/.installed .env bench-tools
	$(VENV)/bin/pip install --quiet -r requirements-bench.txt
	bin/bench

# The dashboard's queries over a million readers and five years, in a database
# of their own (docs/dashboard-performance.md). The SQLite file is rebuilt;
# for PostgreSQL, BENCH_DASHBOARD_DATABASE_URL names an empty database.
BENCH_DASHBOARD_DATABASE_URL ?= sqlite:///$(CURDIR)/var/bench-dashboard.sqlite3
BENCH_DASHBOARD_ARGS ?= --readers 1000000 --years 5
bench-dashboard: $(VENV)/.installed .env
	@case "$(BENCH_DASHBOARD_DATABASE_URL)" in sqlite:*) rm -f var/bench-dashboard.sqlite3*;; esac
	DJANGO_SETTINGS_MODULE=bench.settings DATABASE_URL=$(BENCH_DASHBOARD_DATABASE_URL) \
		$(PY) manage.py migrate --noinput -v0
	DJANGO_SETTINGS_MODULE=bench.settings DATABASE_URL=$(BENCH_DASHBOARD_DATABASE_URL) \
		$(PY) manage.py bench_dashboard $(BENCH_DASHBOARD_ARGS)

# smtp-sink (Debian's postfix package) and wrk, installed when missing.
bench-tools:
	@if ! command -v wrk >/dev/null || ! test -x /usr/sbin/smtp-sink; then \
		echo "Installing postfix (for smtp-sink) and wrk..."; \
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
		apt-get update -qq && apt-get install -y -qq postfix wrk; \
	fi

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# What CI checks besides the tests: migrations (none missing, and none that
# would lock a big table or break the release still serving: rendered for the
# PostgreSQL that MIGRATION_LINT_DATABASE_URL names, the local one by
# default), the pre-commit hooks (ruff, django-upgrade, djhtml) on every
# file, the types, the import contracts, and the import graph (no cycle;
# docs/architecture.md's rules are the contracts).
check: $(VENV)/.installed .env
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) bin/lint-migrations
	$(MAKE) lint
	$(VENV)/bin/pre-commit run --all-files --show-diff-on-failure
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q config/tests/test_architecture.py

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Local development settings: DEBUG on and a secret key of this checkout's own.
# Real environment variables override anything in it.
.env:
	printf 'DJANGO_DEBUG=1\nDJANGO_SECRET_KEY=%s\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache node_modules test-artifacts

# SpamAssassin (Debian's), for the test that scores every email the project
# sends (delivery/tests/test_spamassassin.py), installed when missing.
spamassassin: $(VENV)/.installed .env
	@command -v spamassassin >/dev/null || { apt-get update -qq && apt-get install -y -qq spamassassin; }
	$(VENV)/bin/pytest -q delivery/tests/test_spamassassin.py
