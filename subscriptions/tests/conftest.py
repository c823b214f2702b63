"""Fixtures for the reader tests: Stripe at the HTTP level, signed webhooks, eager tasks."""

import json
import uuid

import pytest
import responses
from django.conf import settings as django_settings

from config.celery import app as celery_app
from subscriptions.tests import stripe_objects
from subscriptions.tests.stripe_objects import FakeStripe


@pytest.fixture(autouse=True)
def reader_test_settings(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = stripe_objects.WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_objects.API_BASE
    settings.STRIPE_PRICE_ID = "price_1SbAnnual46usd"
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.TRIAL_DAYS = 14
    settings.TRIAL_REQUIRES_CARD = True
    # Rate-limit counters of one test must not be seen by the next, and the
    # Redis cache is shared with whatever else uses that database.
    default_cache = {**django_settings.CACHES["default"], "KEY_PREFIX": uuid.uuid4().hex}
    settings.CACHES = {**django_settings.CACHES, "default": default_cache}
    # Tasks run where they are queued, so a test sees their effects.
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield settings
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


@pytest.fixture
def fake_stripe():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeStripe(mock)


class Webhooks:
    """Post Stripe events, signed for real, to the real endpoint."""

    def __init__(self, client, capture) -> None:
        self.client = client
        self.capture = capture

    def post_raw(self, payload: str, signature: str | None):
        with self.capture(execute=True):
            return stripe_objects.post_webhook(self.client, payload, signature)

    def post(self, event_type: str, obj: dict, *, event_id: str | None = None, **sign):
        payload = json.dumps(stripe_objects.event(event_type, obj, event_id=event_id))
        return self.post_raw(payload, stripe_objects.signed(payload, **sign))


@pytest.fixture
def webhooks(client, django_capture_on_commit_callbacks):
    return Webhooks(client, django_capture_on_commit_callbacks)
