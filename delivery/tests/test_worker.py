"""The send goes through the real broker to a real Celery worker.

The broker is whatever the settings configure: the filesystem transport by
default, Redis when REDIS_URL is set (as in CI's second run).
"""

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command

from config.celery import app
from delivery.models import Delivery
from newsletter.models import Edition
from newsletter.tests.factories import make_article
from subscriptions.tests.factories import make_subscriber
from testing.clock import MONDAY_BEFORE_SEND
from testing.concurrency import wait_for

pytestmark = pytest.mark.clock(MONDAY_BEFORE_SEND)


@pytest.mark.django_db(transaction=True)
def test_a_queued_send_is_delivered_by_a_worker(smtp_server, celery_queue):
    make_article(title="Through the broker")
    make_subscriber("reader@example.com")
    make_subscriber("another@example.com")

    with start_worker(app, perform_ping_check=False, queues=[celery_queue]):
        call_command("send_digest", "--date", "2026-11-30")
        assert wait_for(lambda: len(smtp_server.received()) == 2)
        assert wait_for(lambda: Edition.objects.get().status == Edition.Status.SENT)

    assert sorted(r for mail in smtp_server.received() for r in mail.rcpt_tos) == [
        "another@example.com",
        "reader@example.com",
    ]
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
