# The newcomer path: `make run` serves the demo, `make test` runs the tests.
# Both create .venv with Python 3.12+ and install what they need.

PYTHON := $(shell bin/find-python)
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint format check clean

run: $(VENV)/.installed .env
	bin/run-demo

test: $(VENV)/.installed .env
	$(VENV)/bin/pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# What CI checks besides the tests.
check: $(VENV)/.installed .env
	$(PY) manage.py makemigrations --check --dry-run
	$(MAKE) lint

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
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
