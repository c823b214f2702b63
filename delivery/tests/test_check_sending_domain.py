"""`manage.py check_sending_domain`: the records to publish, and DNS checked against them.

DNS is a recorded set of answers (a fake resolver): never the internet.
"""

from io import StringIO
from types import SimpleNamespace

import dns.resolver
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from delivery.deliverability.dkim import dns_record
from testing.dkim import SELECTOR, TEST_PRIVATE_KEY

DKIM_TXT = dns_record(TEST_PRIVATE_KEY.encode())


class RecordedDNS:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    def resolve(self, qname: str, rdtype: str):
        self.asked.append((qname, rdtype))
        if qname not in self.answers:
            raise dns.resolver.NXDOMAIN
        # As DNS returns a long TXT: in strings of at most 255 bytes.
        return [
            SimpleNamespace(strings=[text[i : i + 255].encode() for i in range(0, len(text), 255)])
            for text in self.answers[qname]
        ]


@pytest.fixture
def sending_domain(settings):
    settings.DEFAULT_FROM_EMAIL = "The Morning Briefing <briefing@example.com>"
    settings.EMAIL_ESP = "postmark"
    settings.DKIM_SELECTOR, settings.DKIM_DOMAIN = SELECTOR, "example.com"
    settings.DKIM_PRIVATE_KEY = TEST_PRIVATE_KEY


def run(*args: str, resolver: RecordedDNS | None = None) -> str:
    out = StringIO()
    call_command("check_sending_domain", *args, stdout=out, resolver=resolver)
    return out.getvalue()


GOOD = {
    "example.com": ["google-site-verification=abc", "v=spf1 include:spf.mtasv.net ~all"],
    f"{SELECTOR}._domainkey.example.com": [DKIM_TXT],
    "_dmarc.example.com": ["v=DMARC1; p=quarantine; rua=mailto:d@example.com"],
}


def test_it_prints_the_three_records_to_publish(sending_domain):
    out = run()
    assert "SPF: TXT example.com\n  v=spf1 include:spf.mtasv.net ~all" in out
    assert f"DKIM: TXT {SELECTOR}._domainkey.example.com\n  {DKIM_TXT}" in out
    assert "DMARC: TXT _dmarc.example.com\n  v=DMARC1; p=none;" in out


def test_with_verp_the_bounce_domain_needs_its_own_spf_record(sending_domain, settings):
    settings.EMAIL_ESP = None
    settings.MAILERS = {"default": {"OPTIONS": {"host": "relay.example.net"}}}
    settings.BOUNCE_DOMAIN = "bounces.example.com"
    out = run()
    assert "SPF: TXT bounces.example.com\n  v=spf1 a:relay.example.net ~all" in out


def test_published_records_are_found(sending_domain):
    dns_answers = RecordedDNS(GOOD)
    out = run("--check", resolver=dns_answers)
    assert "SPF: found" in out and "DKIM: found" in out and "DMARC: found" in out
    assert {qname for qname, rdtype in dns_answers.asked if rdtype == "TXT"} == set(GOOD)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"example.com": ["v=spf1 include:_spf.google.com ~all"]}, "SPF: mismatched"),
        # Two SPF records make SPF fail (RFC 7208 §4.5) even if one is right.
        (
            {"example.com": ["v=spf1 include:spf.mtasv.net ~all", "v=spf1 mx -all"]},
            "SPF: mismatched",
        ),
        ({"example.com": ["some-other-txt"]}, "SPF: missing"),
        ({f"{SELECTOR}._domainkey.example.com": ["v=DKIM1; k=rsa; p=MIIBold"]}, "DKIM: mismatched"),
        ({f"{SELECTOR}._domainkey.example.com": None}, "DKIM: missing"),
        ({"_dmarc.example.com": None}, "DMARC: missing"),
    ],
)
def test_a_missing_or_wrong_record_is_named_and_fails(sending_domain, change, expected):
    answers = {**GOOD, **change}
    answers = {name: texts for name, texts in answers.items() if texts is not None}
    with pytest.raises(CommandError, match="1 of 3 records"):
        out = StringIO()
        call_command("check_sending_domain", "--check", stdout=out, resolver=RecordedDNS(answers))
    assert expected in out.getvalue()


def test_without_a_key_the_app_says_who_must_sign(settings, sending_domain):
    settings.DKIM_PRIVATE_KEY = None
    settings.EMAIL_ESP = None
    settings.MAILERS = {"default": {"BACKEND": "delivery.wire.backend.SigningSMTPBackend",
                                    "OPTIONS": {"host": "smtp.example.net"}}}  # fmt: skip
    out = run()
    assert "the app does not sign" in out
    assert "v=spf1 a:smtp.example.net ~all" in out
    assert "_domainkey" not in out
