import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from subscriptions import sessions
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_with_session():
    request = RequestFactory().get("/")
    request.session = SessionStore()
    request.session.save()
    return request


def test_sign_in_remembers_the_reader_under_a_new_session_key(request_with_session):
    reader = make_subscriber()
    old_key = request_with_session.session.session_key

    sessions.sign_in(request_with_session, reader)

    assert sessions.current_subscriber(request_with_session) == reader
    assert request_with_session.session.session_key != old_key


def test_sign_out_forgets_the_reader(request_with_session):
    sessions.sign_in(request_with_session, make_subscriber())
    sessions.sign_out(request_with_session)
    assert sessions.current_subscriber(request_with_session) is None


def test_a_deleted_reader_is_signed_out(request_with_session):
    reader = make_subscriber()
    sessions.sign_in(request_with_session, reader)
    reader.delete()
    assert sessions.current_subscriber(request_with_session) is None


def test_email_status_changes_are_timestamped_once():
    reader = make_subscriber()
    assert reader.is_entitled
    assert reader.set_email_status(Subscriber.EmailStatus.UNSUBSCRIBED) is True
    changed_at = reader.email_status_changed_at
    assert reader.set_email_status(Subscriber.EmailStatus.UNSUBSCRIBED) is False
    reader.refresh_from_db()
    assert reader.email_status_changed_at == changed_at
    assert not reader.is_entitled
