"""Settings read from the environment fail loudly on values they cannot use."""

import datetime

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("Yes", True), ("off", False), ("0", False)]
)
def test_env_bool_reads_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("FLAG", raw)
    assert env.env_bool("FLAG", not expected) is expected


def test_env_bool_refuses_anything_else(monkeypatch):
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="FLAG must be true or false"):
        env.env_bool("FLAG", False)


def test_env_int_refuses_words_and_values_below_minimum(monkeypatch):
    monkeypatch.setenv("TRIAL_DAYS", "fourteen")
    with pytest.raises(ImproperlyConfigured, match="TRIAL_DAYS must be a whole number"):
        env.env_int("TRIAL_DAYS", 14)
    monkeypatch.setenv("TRIAL_DAYS", "-1")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env.env_int("TRIAL_DAYS", 14, minimum=0)


def test_env_time_and_timezone(monkeypatch):
    monkeypatch.setenv("DIGEST_SEND_TIME", "05:45")
    assert env.env_time("DIGEST_SEND_TIME", "06:00") == datetime.time(5, 45)
    monkeypatch.setenv("DIGEST_SEND_TIME", "6am")
    with pytest.raises(ImproperlyConfigured, match="DIGEST_SEND_TIME"):
        env.env_time("DIGEST_SEND_TIME", "06:00")
    monkeypatch.setenv("DIGEST_TIMEZONE", "Mars/Olympus_Mons")
    with pytest.raises(ImproperlyConfigured, match="IANA time zone"):
        env.env_timezone("DIGEST_TIMEZONE", "UTC")


def test_unset_and_empty_values_take_the_default(monkeypatch):
    monkeypatch.delenv("SITE_URL", raising=False)
    assert env.env_url("SITE_URL", "http://127.0.0.1:8000/", schemes={"http"}) == (
        "http://127.0.0.1:8000"
    )
    monkeypatch.setenv("NAME", "")
    assert env.env_str("NAME", "fallback") == "fallback"
    assert env.env_optional("NAME") is None


def test_site_url_must_be_a_url(monkeypatch):
    monkeypatch.setenv("SITE_URL", "example.com")
    with pytest.raises(ImproperlyConfigured, match="SITE_URL must be a http or https URL"):
        env.env_url("SITE_URL", "http://x", schemes={"http", "https"})


def test_smtp_url_with_starttls_and_credentials():
    options = env.smtp_options("smtp://user%40example.com:p%3Ass@mail.example.com:587?tls=1")
    assert options == {
        "host": "mail.example.com",
        "port": 587,
        "username": "user@example.com",
        "password": "p:ss",
        "use_tls": True,
        "use_ssl": False,
        "timeout": 30,
    }


def test_smtps_url_means_implicit_tls_on_465():
    options = env.smtp_options("smtps://relay.example.com")
    assert (options["port"], options["use_ssl"], options["use_tls"]) == (465, True, False)


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "smtp://",
        "smtp://host?tls=maybe",
        "smtp://host?tsl=1",
        "smtps://host?tls=1",
    ],
)
def test_bad_smtp_urls_are_refused(url):
    with pytest.raises(ImproperlyConfigured, match="SMTP_URL"):
        env.smtp_options(url)


def test_dotenv_file_fills_only_unset_variables(tmp_path, monkeypatch):
    dotenv = tmp_path / ".env"
    dotenv.write_text('# comment\n\nFROM_FILE="quoted value"\nALREADY_SET=from-file\n')
    monkeypatch.delenv("FROM_FILE", raising=False)
    monkeypatch.setenv("ALREADY_SET", "from-environment")

    env.load_dotenv(dotenv)

    import os

    assert os.environ["FROM_FILE"] == "quoted value"
    assert os.environ["ALREADY_SET"] == "from-environment"
    monkeypatch.delenv("FROM_FILE")


def test_dotenv_file_with_a_malformed_line_is_refused(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("JUST_A_WORD\n")
    with pytest.raises(ImproperlyConfigured, match=r"\.env:1: expected KEY=VALUE"):
        env.load_dotenv(dotenv)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/srv/briefing/backups", "/srv/briefing/backups"),
        ("var/backups", "var/backups"),
        ("s3://briefing-backups", "s3://briefing-backups"),
        ("s3://briefing-backups/nightly/", "s3://briefing-backups/nightly"),
    ],
)
def test_env_backup_target_takes_a_folder_or_an_s3_url(monkeypatch, raw, expected):
    monkeypatch.setenv("BACKUP_TARGET", raw)
    assert env.env_backup_target("BACKUP_TARGET", "var/backups") == expected


@pytest.mark.parametrize("raw", ["s3://", "s3:///nightly", "s4://briefing/nightly", "ftp://host/x"])
def test_env_backup_target_refuses_other_urls_and_a_bucketless_one(monkeypatch, raw):
    monkeypatch.setenv("BACKUP_TARGET", raw)
    with pytest.raises(ImproperlyConfigured, match="BACKUP_TARGET must"):
        env.env_backup_target("BACKUP_TARGET", "var/backups")
