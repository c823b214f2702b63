"""Hostile review, the admin's sign-in: password guessing limited per address and per username."""

import datetime
import uuid

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from config import admin_login
from newsletter.tests.factories import make_staff

pytestmark = [pytest.mark.django_db, pytest.mark.faults]

PASSWORD = "the-right-password-7Qm"


@pytest.fixture(autouse=True)
def own_rate_limit_counters(settings):
    # Counters of one test (or one run) must not be seen by the next.
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": uuid.uuid4().hex,
        },
    }


@pytest.fixture
def editor():
    user = make_staff("editor")
    user.set_password(PASSWORD)
    user.save()
    return user


def sign_in(client: Client, username: str, password: str, address: str = "198.51.100.7"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def signed_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def test_the_right_password_signs_in(client, editor):
    response = sign_in(client, "editor", PASSWORD)

    assert response.status_code == 302
    assert signed_in(client)


def test_after_the_guesses_a_username_allows_even_the_right_password_is_refused(client, editor):
    for guess in range(admin_login.LIMIT_PER_USERNAME):
        response = sign_in(client, "editor", f"guess-{guess}")
        assert response.status_code == 200
        assert "correct username and password" in response.content.decode()

    response = sign_in(client, "editor", PASSWORD)

    assert response.status_code == 200
    assert admin_login.TOO_MANY in response.content.decode()
    assert not signed_in(client)


def test_guesses_from_many_addresses_still_count_against_the_username(client, editor):
    for guess in range(admin_login.LIMIT_PER_USERNAME):
        sign_in(client, "editor", f"guess-{guess}", address=f"203.0.113.{guess + 1}")

    response = sign_in(client, "editor", PASSWORD, address="192.0.2.44")

    assert admin_login.TOO_MANY in response.content.decode()
    assert not signed_in(client)


def test_one_address_guessing_many_usernames_is_limited(client, editor):
    for guess in range(admin_login.LIMIT_PER_ADDRESS):
        sign_in(client, f"user-{guess}", "guess")

    refused = sign_in(client, "editor", PASSWORD)
    assert admin_login.TOO_MANY in refused.content.decode()
    assert not signed_in(client)

    # The editor, from another address, is not locked out by that.
    assert sign_in(Client(), "editor", PASSWORD, address="192.0.2.44").status_code == 302


def test_the_limit_ends_with_its_window(client, editor, clock):
    for guess in range(admin_login.LIMIT_PER_USERNAME + 1):
        sign_in(client, "editor", f"guess-{guess}")
    assert admin_login.TOO_MANY in sign_in(client, "editor", PASSWORD).content.decode()

    clock.shift(datetime.timedelta(seconds=admin_login.WINDOW_SECONDS))

    assert sign_in(client, "editor", PASSWORD).status_code == 302
    assert signed_in(client)
