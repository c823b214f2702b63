"""Hostile review, reader pages: rate limits before DNS; personal pages kept out of caches."""

import socket

import dns.resolver
import pytest

from subscriptions import addresses, preferences, ratelimit, views
from subscriptions.tests.factories import make_subscriber
from subscriptions.tests.test_sign_in import signed_in
from testing.clock import MONDAY_BEFORE_SEND

# dnspython measures its lifetime with time.time(): the clock must run.
pytestmark = [pytest.mark.django_db, pytest.mark.clock(MONDAY_BEFORE_SEND, tick=True)]

HOUR = 3600


class SilentDNS:
    """A name server on a local UDP port that takes every query and answers none."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.setblocking(False)
        self.port = self.socket.getsockname()[1]

    def queries(self) -> int:
        """How many queries arrived since the last call."""
        count = 0
        while True:
            try:
                self.socket.recv(4096)
            except BlockingIOError:
                return count
            count += 1


@pytest.fixture
def silent_dns(settings, monkeypatch):
    """The forms' DNS check on, with the real resolver asking a server that never answers."""
    dns_server = SilentDNS()
    # email-validator asks dnspython's default resolver, one per process.
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = dns_server.port
    monkeypatch.setattr(dns.resolver, "default_resolver", resolver)
    settings.EMAIL_CHECK_DELIVERABILITY = True
    # What a request that does ask DNS waits (3 s in production), kept short here.
    monkeypatch.setattr(addresses, "DNS_TIMEOUT", 0.2)
    yield dns_server
    dns_server.socket.close()


def use_up(scope: str, identity: str, limit: int) -> None:
    while ratelimit.allow(scope, identity, limit=limit, window_seconds=HOUR):
        pass


# --- Rate limits come before the DNS check ----------------------------------------------


@pytest.mark.faults
def test_a_sign_in_request_over_its_limit_asks_no_dns(client, silent_dns):
    response = client.post("/signin/", {"email": "ada@slow-dns.example.org"})
    assert response.status_code == 200
    assert silent_dns.queries() >= 1  # under the limit, the domain is looked up

    use_up("sign-in-ip", "127.0.0.1", views.SIGN_IN_LIMIT_PER_IP)
    response = client.post("/signin/", {"email": "grace@slow-dns.example.org"})

    assert response.status_code == 429
    assert silent_dns.queries() == 0


@pytest.mark.faults
def test_a_sign_in_request_over_the_addresss_limit_asks_no_dns(client, silent_dns, mailoutbox):
    use_up("sign-in-email", "ada@slow-dns.example.org", views.SIGN_IN_LIMIT_PER_EMAIL)

    response = client.post("/signin/", {"email": "ada@slow-dns.example.org"})

    # The same page as ever (which addresses get mail is nobody's business), no lookup, no mail.
    assert response.status_code == 200
    assert "Check your inbox" in response.content.decode()
    assert silent_dns.queries() == 0
    assert mailoutbox == []


@pytest.mark.faults
def test_a_signup_over_the_addresss_limit_asks_no_dns(client, silent_dns, fake_stripe):
    form = {"email": "ada@slow-dns.example.org", "time_zone": "Europe/London"}
    assert client.post("/subscribe/", form).status_code == 200
    assert silent_dns.queries() >= 1

    use_up("subscribe-email", "ada@slow-dns.example.org", views.SIGNUP_LIMIT_PER_EMAIL)
    response = client.post("/subscribe/", form)

    assert response.status_code == 429
    assert silent_dns.queries() == 0


@pytest.mark.faults
def test_an_address_change_over_its_limit_asks_no_dns(silent_dns):
    reader = make_subscriber("ada@example.com")
    browser = signed_in(reader)
    assert browser.post("/account/address/", {"email": "ada@slow-dns.example.org"}).status_code
    assert silent_dns.queries() >= 1

    use_up("email-change", "ada@example.com", views.SIGN_IN_LIMIT_PER_EMAIL)
    response = browser.post("/account/address/", {"email": "ada.l@slow-dns.example.org"})

    assert response.status_code == 429
    assert silent_dns.queries() == 0


def test_an_address_dns_says_receives_no_mail_is_still_refused_with_the_reason(
    client, settings, monkeypatch
):
    settings.EMAIL_CHECK_DELIVERABILITY = True

    def nxdomain(resolver, name, *args, **kwargs):
        raise dns.resolver.NXDOMAIN

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", nxdomain)

    for path in ["/signin/", "/subscribe/"]:
        response = client.post(path, {"email": "ada@no-mail-here.example.org"})
        assert "not a domain that receives email" in response.content.decode(), path


# --- Personal pages are kept out of every cache ------------------------------------------


def cache_directives(response) -> set[str]:
    return {part.strip() for part in response.get("Cache-Control", "").split(",")}


@pytest.mark.parametrize("path", ["/account/", "/account/data/"])
def test_the_account_pages_are_private_and_never_stored(path):
    browser = signed_in(make_subscriber("ada@example.com"))

    response = browser.get(path)

    assert response.status_code == 200
    assert "ada@example.com" in response.content.decode()
    assert {"private", "no-store"} <= cache_directives(response)


def test_the_account_page_with_a_refused_new_address_is_private_and_never_stored():
    browser = signed_in(make_subscriber("ada@example.com"))

    response = browser.post("/account/address/", {"email": "ada@example.com"})

    assert response.status_code == 400
    assert {"private", "no-store"} <= cache_directives(response)


def test_the_preferences_page_of_an_emailed_link_is_private_and_never_stored(client):
    reader = make_subscriber("ada@example.com")
    path = preferences.preferences_url(reader).removeprefix("http://127.0.0.1:8000")

    shown = client.get(path)
    refused = client.post(path, {"time_zone": "Not/A_Zone", "send_time": "06:00"})

    assert shown.status_code == 200
    assert "ada@example.com" in shown.content.decode()
    assert refused.status_code == 400
    for response in (shown, refused):
        assert {"private", "no-store"} <= cache_directives(response)
