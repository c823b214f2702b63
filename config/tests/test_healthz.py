import pytest
from django.db import connection
from kombu import Connection

from config.celery import app as celery_app

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_answers_503_when_the_broker_is_unreachable(client, monkeypatch):
    # Nothing listens on port 9 of the loopback.
    monkeypatch.setattr(
        celery_app, "connection_for_write", lambda: Connection("redis://127.0.0.1:9/0")
    )

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "unavailable"}


def test_healthz_answers_503_when_the_database_is_unreachable(client, monkeypatch):
    from django.db import OperationalError

    def broken_cursor():
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", broken_cursor)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"
