FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# pg_dump and pg_restore for `manage.py backup` and `restore`, of the same major
# version as compose's PostgreSQL (postgres:16): an older pg_dump refuses a
# newer server, and a newer one's archives do not restore into it. Debian
# carries one version only, so they come from the PostgreSQL project's own
# apt repository (apt.postgresql.org.sh, shipped by postgresql-common).
ARG PG_MAJOR=16
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates postgresql-common \
    && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
    && apt-get install -y --no-install-recommends postgresql-client-${PG_MAJOR} \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN useradd --create-home --uid 1000 app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# collectstatic needs settings to load; this key exists only at build time.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret python manage.py collectstatic --noinput \
    && mkdir -p var/media /backups && chown -R app:app var staticfiles /backups

USER app
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "-c", "python:config.gunicorn_conf"]
