"""`manage.py check --deploy` knows what makes this product's mail fail in production."""

import pytest
from django.core.checks import Warning as CheckWarning

from delivery.deliverability import domain_checks as checks
from testing.commands import PRODUCTION, run_manage
from testing.dkim import TEST_PRIVATE_KEY

ESP = {
    "EMAIL_ESP": "postmark://server-token@",
    "ANYMAIL_WEBHOOK_SECRET": "tracking:Zq3v8NwX1pLr6TfYb2Hk",
}


def deploy_check(**environment: str):
    return run_manage(
        "check", "--deploy", "--fail-level", "WARNING", **{**PRODUCTION, **environment}
    )


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"SMTP_URL": "smtp://user:pass@smtp.example.net:587?tls=1"},
        {"SMTP_URL": "smtps://user:pass@smtp.example.net"},
        {"SMTP_URL": "smtp://127.0.0.1:25"},  # a relay on this machine: nothing crosses a network
        {"DEFAULT_FROM_EMAIL": "Briefing <news@briefing.example.com>"},  # the site's own domain
        ESP,
        {"DKIM_SELECTOR": "briefing1", "DKIM_PRIVATE_KEY": TEST_PRIVATE_KEY},
        {
            "BOUNCE_DOMAIN": "bounces.example.com",
            "BOUNCE_MAILBOX_URL": "imaps://bounces:secret@imap.example.net/INBOX",
        },
    ],
    ids=["smtp-default", "tls", "smtps", "local-relay", "site-domain", "esp", "dkim", "bounces"],
)
def test_good_production_settings_pass_with_tls_smtp_or_an_esp(environment):
    result = deploy_check(**environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("environment", "code", "words"),
    [
        ({"SITE_URL": "http://briefing.example.com"}, "briefing.W001", "not https"),
        ({"DEFAULT_FROM_EMAIL": "Briefing <briefing@localhost>"}, "briefing.W002", "no public"),
        ({"DEFAULT_FROM_EMAIL": "briefing@203.0.113.7"}, "briefing.W002", "no public"),
        ({"DEFAULT_FROM_EMAIL": "briefing@[2001:db8::1]"}, "briefing.W002", "no public"),
        ({"DEFAULT_FROM_EMAIL": "briefing@briefing-mail.net"}, "briefing.W003", "not the site"),
        # A look-alike suffix is not a parent domain.
        ({"DEFAULT_FROM_EMAIL": "briefing@ple.com"}, "briefing.W003", "not the site"),
        ({**ESP, "ANYMAIL_WEBHOOK_SECRET": "tracking:short"}, "briefing.W004", "weak"),
        ({**ESP, "ANYMAIL_WEBHOOK_SECRET": "no-colon-at-all-but-long"}, "briefing.W004", "weak"),
        ({"SMTP_URL": "smtp://user:pass@smtp.example.net:25"}, "briefing.W005", "plain text"),
        ({"SMTP_URL": "smtp://smtp.example.net:587?tls=0"}, "briefing.W005", "plain text"),
        (
            {"BOUNCE_DOMAIN": "bounces.other.net", "BOUNCE_MAILBOX_URL": "imaps://u:p@h/"},
            "briefing.W007",
            "not the From domain",
        ),
        ({"BOUNCE_DOMAIN": "bounces.example.com"}, "briefing.W008", "pile up unread"),
        ({**ESP, "BOUNCE_DOMAIN": "bounces.example.com"}, "briefing.W008", "ESP chooses"),
        (
            {"BOUNCE_MAILBOX_URL": "imaps://u:p@imap.example.net/"},
            "briefing.W009",
            "kept for a person",
        ),
    ],
)
def test_each_deliverability_mistake_fails_the_deploy_check(environment, code, words):
    result = deploy_check(**environment)
    assert result.returncode != 0, result.stdout
    assert code in result.stderr, result.stderr
    assert words in result.stderr


def test_the_demo_on_localhost_over_http_is_not_warned_about():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_DEBUG="1", SITE_URL="http://127.0.0.1:8000", SMTP_URL="smtp://mail.example.net:25",
    )  # fmt: skip
    for code in ["W001", "W002", "W003", "W005"]:
        assert f"briefing.{code}" not in result.stderr + result.stdout


def test_an_esp_without_any_webhook_secret_is_a_warning(settings):
    # The environment cannot produce this (settings refuse to start without
    # ANYMAIL_WEBHOOK_SECRET); another settings module could.
    settings.DEBUG = False
    settings.EMAIL_ESP = "mailgun"
    settings.ANYMAIL = {}
    [warning] = checks.check_esp_webhook_secret(None)
    assert isinstance(warning, CheckWarning) and warning.id == "briefing.W004"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "tracking:Zq3v8NwX1pLr6TfYb2Hk"}
    [warning] = checks.check_esp_webhook_secret(None)
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in warning.msg
    settings.ANYMAIL["MAILGUN_WEBHOOK_SIGNING_KEY"] = "key"
    assert checks.check_esp_webhook_secret(None) == []


def test_a_dkim_domain_that_does_not_align_is_a_warning(settings):
    # The environment cannot produce this (the signing domain is the From
    # address's); another settings module could.
    settings.DEBUG = False
    settings.DKIM_PRIVATE_KEY = TEST_PRIVATE_KEY
    settings.DEFAULT_FROM_EMAIL = "Briefing <briefing@example.com>"
    settings.DKIM_DOMAIN = "mail.net"
    [warning] = checks.check_dkim_alignment(None)
    assert warning.id == "briefing.W006"
    assert "does not align" in warning.msg
    settings.DKIM_DOMAIN = "example.com"
    assert checks.check_dkim_alignment(None) == []


@pytest.mark.parametrize(
    ("host", "local"),
    [("localhost", True), ("127.0.0.1", True), ("[::1]", True), ("mail.localhost", True),
     ("10.0.0.5", False), ("smtp.example.net", False), ("localhost.evil.example", False)],
)  # fmt: skip
def test_what_counts_as_a_local_relay(host, local):
    assert checks.is_local_host(host) is local


def test_dkim_without_a_selector_stops_the_service():
    result = run_manage("check", **PRODUCTION, DKIM_PRIVATE_KEY=TEST_PRIVATE_KEY)
    assert result.returncode != 0
    assert "DKIM_SELECTOR must be set" in result.stderr
