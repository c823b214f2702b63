"""Addresses are normalised one way everywhere; look-alike letters cannot stand in for others."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from subscriptions.addresses import display_email, mask_addresses, normalise_email
from subscriptions.models import Subscriber
from subscriptions.tests.factories import make_subscriber
from subscriptions.tests.signup_flow import ask_to_subscribe, link_in, sign_up

pytestmark = pytest.mark.django_db

FORM = {"name": "", "time_zone": "Europe/London"}


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Sam.Jones@Example.COM ", "Sam.Jones@example.com"),
        ("zoe@bücher.example", "zoe@xn--bcher-kva.example"),
        ("zoe@BÜCHER.example", "zoe@xn--bcher-kva.example"),
        ("zoe@xn--bcher-kva.example", "zoe@xn--bcher-kva.example"),
    ],
)
def test_one_stored_form_per_address(typed, stored):
    assert normalise_email(typed) == stored


@pytest.mark.parametrize(
    "typed", ["\u017fam.jones@example.com", "sam.j\u0131ones@example.com", "josé@example.com"]
)
def test_local_parts_with_letters_beyond_ascii_are_refused(typed):
    with pytest.raises(ValidationError, match="plain letters"):
        normalise_email(typed)


def test_idn_domains_are_shown_in_unicode():
    assert display_email("zoe@xn--bcher-kva.example") == "zoe@bücher.example"
    assert display_email("sam@example.com") == "sam@example.com"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("550 5.1.1 <ada@example.com>: no such user", "550 5.1.1 <[address]>: no such user"),
        (
            "SMTPRecipientsRefused: {'Ada.Jones+news@example.co.uk': (554, b'5.7.1 refused')}",
            "SMTPRecipientsRefused: {'[address]': (554, b'5.7.1 refused')}",
        ),
        ("Final-Recipient: rfc822;zoe@bücher.example", "Final-Recipient: rfc822;[address]"),
        ('"ada lovelace"@example.com bounced', "[address] bounced"),
        ("to=<a@b@example.com>, relay=mx", "to=<[address]>, relay=mx"),
        ("mailto:bob@example.org,carol@[192.0.2.1]", "mailto:[address],[address]"),
        ("4.2.0 Greylisted, try again later", "4.2.0 Greylisted, try again later"),
    ],
)
def test_addresses_in_a_text_are_masked_whole(text, masked):
    assert mask_addresses(text) == masked
    # Long texts without an address are read once, and come back as they were.
    assert mask_addresses('"[x' * 100_000) == '"[x' * 100_000


@pytest.mark.faults
@pytest.mark.parametrize(
    "look_alike", ["\u017fam.jones@example.com", "samuel.j\u0131ones@example.com"]
)
def test_a_look_alike_signup_is_refused_and_writes_nothing(client, fake_stripe, look_alike):
    response = client.post("/subscribe/", {**FORM, "email": look_alike})

    assert response.status_code == 400
    assert "plain letters before the @" in response.content.decode()
    assert not Subscriber.objects.exists()
    assert fake_stripe.requests("POST", "/v1/customers") == []


@pytest.mark.faults
def test_look_alike_spellings_do_not_become_readers_of_their_own(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    # Each variant used to count as a new address for the per-address rate
    # limit, and on PostgreSQL (UPPER) a squatter's variant matched the real
    # reader's signup. Only plain spellings get through, as one reader.
    variants = ["\u017fam.jones@example.com", "sam.jones@example.com", "SAM.JONES@EXAMPLE.COM"]
    statuses = [
        ask_to_subscribe(
            client, {**FORM, "email": v}, django_capture_on_commit_callbacks
        ).status_code
        for v in variants
    ]
    assert statuses == [400, 200, 200]
    assert [mail.to for mail in mailoutbox] == [
        ["sam.jones@example.com"],
        ["SAM.JONES@example.com"],
    ]

    first, second = (link_in(mail) for mail in mailoutbox)
    assert client.post(first, {"time_zone": "Europe/London"}).status_code == 303
    assert Client().post(second, {"time_zone": "Europe/London"}).status_code == 400

    assert list(Subscriber.objects.values_list("email", flat=True)) == ["sam.jones@example.com"]


def test_a_reader_with_an_idn_domain_signs_up_and_sees_it_in_unicode(
    client, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    response = sign_up(
        client,
        {**FORM, "email": "zoe@bücher.example"},
        mailoutbox,
        django_capture_on_commit_callbacks,
    )

    assert response.status_code == 303
    assert mailoutbox[0].to == ["zoe@xn--bcher-kva.example"]
    reader = Subscriber.objects.get()
    assert reader.email == "zoe@xn--bcher-kva.example"
    assert reader.display_email == "zoe@bücher.example"
    [customer] = fake_stripe.requests("POST", "/v1/customers")
    assert customer["email"] == "zoe@xn--bcher-kva.example"


def test_sign_in_finds_the_reader_by_either_spelling_of_the_domain(
    client, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    make_subscriber("zoe@xn--bcher-kva.example")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/signin/", {"email": "Zoe@Bücher.example"})

    assert response.status_code == 200
    assert [message.to for message in mailoutbox] == [["zoe@xn--bcher-kva.example"]]
