"""Production settings pass Django's deployment checks."""

import pytest

from testing.commands import PRODUCTION, run_manage


def test_check_deploy_is_clean_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    environment = {key: value for key, value in PRODUCTION.items() if key != "DJANGO_SECRET_KEY"}
    result = run_manage("check", **environment)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_a_bad_setting_stops_the_service_with_its_name():
    result = run_manage("check", **PRODUCTION, DIGEST_SEND_TIME="six")
    assert result.returncode != 0
    assert "DIGEST_SEND_TIME must be a time like 06:00" in result.stderr


def test_click_tracking_readers_also_records_who_clicked():
    script = "from django.conf import settings as s; print(s.CLICK_TRACKING, s.TRACK_READER_CLICKS)"
    for value, expected in [("0", "False False"), ("1", "True False"), ("Readers", "True True")]:
        result = run_manage("shell", "-c", script, **PRODUCTION, CLICK_TRACKING=value)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.splitlines()[-1] == expected, value
    # The variable of before says where its value goes now.
    result = run_manage("check", **PRODUCTION, TRACK_READER_CLICKS="1")
    assert result.returncode != 0
    assert "TRACK_READER_CLICKS is no longer read from the environment: CLICK_TRACKING=readers" in (
        result.stderr
    )


def test_a_line_break_in_a_header_setting_stops_the_service():
    for name in ["NEWSLETTER_NAME", "DEFAULT_FROM_EMAIL", "DIGEST_REPLY_TO"]:
        result = run_manage("check", **{**PRODUCTION, name: "Briefing\r\nBcc: all@example.net"})
        assert result.returncode != 0, name
        assert f"{name} must be a single line" in result.stderr
    # The List-Unsubscribe address is made of BOUNCE_DOMAIN, which must be a domain.
    result = run_manage("check", **PRODUCTION, BOUNCE_DOMAIN="b.example.com\r\nBcc: x@y.net")
    assert result.returncode != 0
    assert "BOUNCE_DOMAIN must be a domain name" in result.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "0", "PORT must be at least 1, got 0"),
        ("TRUSTED_PROXY_HOPS", "two", "TRUSTED_PROXY_HOPS must be a whole number, got 'two'"),
        ("DATABASE_URL", "mongodb://db/briefing", "DATABASE_URL must be a database URL"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must look like redis://"),
        ("STRIPE_SECRET_KEY", "pk_live_abc", "STRIPE_SECRET_KEY must be a Stripe secret"),
        ("CLICK_TRACKING", "everyone", "CLICK_TRACKING must be 0 (off), 1"),
        ("DIGEST_SKIP_PUBLIC_HOLIDAYS", "maybe", "DIGEST_SKIP_PUBLIC_HOLIDAYS must be true"),
        ("EMAIL_ESP", "postmark", "EMAIL_ESP must be one of postmark://"),
    ],
)
def test_each_kind_of_bad_value_names_its_variable_and_what_it_expects(name, value, message):
    result = run_manage("check", **PRODUCTION, **{name: value})
    assert result.returncode != 0, name
    assert message in result.stderr
