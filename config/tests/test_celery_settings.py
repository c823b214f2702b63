"""The send's time limits, leases and broker settings fit together (config/settings)."""

import time

import pytest
from celery.signals import task_postrun, task_prerun
from django.db import connections

from config.celery import app
from delivery import leases, tasks
from delivery.tasks import RETRY_MAX_SECONDS


def test_a_batch_is_stopped_long_before_the_broker_would_hand_it_to_another_worker(settings):
    soft, hard = settings.DIGEST_BATCH_SOFT_TIME_LIMIT, settings.DIGEST_BATCH_TIME_LIMIT
    assert (tasks.send_delivery_batch.soft_time_limit, tasks.send_delivery_batch.time_limit) == (
        soft,
        hard,
    )
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)

    assert soft < hard < visibility
    # On Redis a retry's countdown is held unacknowledged: the longest one too.
    assert RETRY_MAX_SECONDS + hard < visibility
    # The soft limit leaves time to record what was sent, retries included.
    assert hard - soft >= 30


def test_a_live_sender_never_loses_its_lease(settings):
    smtp_timeout = 30  # config.env.smtp_options' default
    lease = settings.DIGEST_LEASE_SECONDS

    # Renewed every quarter; between two renewals at most one SMTP call.
    assert leases.heartbeat_every() == lease / 4
    assert leases.heartbeat_every() + smtp_timeout < lease
    # A write retried after a lost connection fits in the soft time limit.
    assert leases.RETRY_FOR.total_seconds() < settings.DIGEST_BATCH_SOFT_TIME_LIMIT


def test_the_sweep_runs_every_minute_and_workers_take_one_batch_at_a_time(settings):
    assert settings.CELERY_BEAT_SCHEDULE["resume-stalled-sends"]["schedule"] == 60
    assert app.conf.worker_prefetch_multiplier == 1
    batch = tasks.send_delivery_batch
    assert batch.acks_late and batch.reject_on_worker_lost


def test_running_batches_carry_on_when_the_broker_connection_drops():
    # Cancelling them would repeat each one's unrecorded emails.
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss is False


class FakeTask:
    def __init__(self, *, eager: bool) -> None:
        self.request = type("Request", (), {"is_eager": eager})()


@pytest.mark.django_db(transaction=True)
def test_a_worker_keeps_its_database_connection_between_tasks_by_conn_max_age(settings):
    # Celery would close it around every task (a new PostgreSQL backend per batch).
    assert app.conf.get("CELERY_DB_REUSE_MAX") >= 10**6
    connection = connections["default"]
    connection.ensure_connection()
    opened = connection.connection
    connection.settings_dict["CONN_MAX_AGE"] = 60
    connection.close_at = time.monotonic() + 60
    try:
        task_postrun.send(sender=None, task=FakeTask(eager=False))
        task_prerun.send(sender=None, task=FakeTask(eager=False))
        assert connection.connection is opened

        # Once CONN_MAX_AGE is up, the next task starts on a new one.
        connection.close_at = time.monotonic() - 1
        task_prerun.send(sender=None, task=FakeTask(eager=False))
        assert connection.connection is None
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = settings.DATABASES["default"]["CONN_MAX_AGE"]


@pytest.mark.django_db
def test_an_eager_task_leaves_its_callers_connection_alone():
    connection = connections["default"]
    connection.ensure_connection()
    opened = connection.connection
    connection.close_at = time.monotonic() - 1  # it would be closed, were it a worker's
    task_postrun.send(sender=None, task=FakeTask(eager=True))
    assert connection.connection is opened
