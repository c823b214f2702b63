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
        "connections": env.SMTP_CONNECTIONS,
        "max_connections": env.MAX_SMTP_CONNECTIONS,
    }
    assert env.smtp_options("smtp://relay.example.com?connections=20")["connections"] == 20
    options = env.smtp_options("smtp://relay.example.com?max_connections=200")
    assert options["max_connections"] == 200


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
        "smtp://host?connections=0",
        "smtp://host?connections=51",
        "smtp://host?max_connections=0",
        "smtp://host?max_connections=many",
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


def test_env_int_refuses_values_above_maximum(monkeypatch):
    monkeypatch.setenv("PORT", "80000")
    with pytest.raises(ImproperlyConfigured, match="PORT must be at most 65535, got 80000"):
        env.env_int("PORT", 8000, minimum=1, maximum=65535)


def test_env_choice_takes_its_words_in_any_case_from_a_set_or_a_mapping(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert env.env_choice("LOG_FORMAT", "plain", {"plain", "json"}) == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ImproperlyConfigured, match="LOG_FORMAT must be one of json, plain"):
        env.env_choice("LOG_FORMAT", "plain", {"plain", "json"})
    choices = {"0": "off", "1": "stories", "readers": "readers"}
    monkeypatch.setenv("CLICK_TRACKING", "Readers")
    assert env.env_choice("CLICK_TRACKING", "0", choices, expected="0, 1 or readers") == "readers"
    monkeypatch.setenv("CLICK_TRACKING", "everyone")
    with pytest.raises(ImproperlyConfigured, match="CLICK_TRACKING must be 0, 1 or readers"):
        env.env_choice("CLICK_TRACKING", "0", choices, expected="0, 1 or readers")


def test_a_secret_of_the_wrong_kind_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "pk_live_publishable123")
    with pytest.raises(ImproperlyConfigured, match=r"must be .* starting with sk_") as refused:
        env.env_secret("STRIPE_SECRET_KEY", prefixes=("sk_", "rk_"), kind="a secret key")
    assert "starting with pk_" in str(refused.value)
    assert "publishable123" not in str(refused.value)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_1")
    assert env.env_secret("STRIPE_SECRET_KEY", prefixes=("sk_",), kind="a secret key") == (
        "sk_test_1"
    )


def test_optional_urls_need_their_scheme_and_a_host_and_never_show_the_password(monkeypatch):
    schemes = {"redis", "rediss"}
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert env.env_optional_url("REDIS_URL", schemes=schemes, example="redis://host") is None
    monkeypatch.setenv("REDIS_URL", "redis://:pw@cache:6379/0")
    assert env.env_optional_url("REDIS_URL", schemes=schemes, example="redis://host") == (
        "redis://:pw@cache:6379/0"
    )
    for bad in ["localhost:6379", "http://:hunter2@cache/0", "redis:///0"]:
        monkeypatch.setenv("REDIS_URL", bad)
        with pytest.raises(ImproperlyConfigured, match="REDIS_URL must look like") as refused:
            env.env_optional_url("REDIS_URL", schemes=schemes, example="redis://host")
        assert "hunter2" not in str(refused.value)


def test_database_urls(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/briefing")
    assert env.env_database("DATABASE_URL", "sqlite:///x")["NAME"] == "briefing"
    monkeypatch.setenv("DATABASE_URL", "mongodb://u:secret@db/briefing")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL must be a database URL") as bad:
        env.env_database("DATABASE_URL", "sqlite:///x")
    assert "secret" not in str(bad.value)


def test_addresses_and_domains(monkeypatch):
    monkeypatch.setenv("DEFAULT_FROM_EMAIL", "The Briefing <news@example.com>")
    assert env.env_address("DEFAULT_FROM_EMAIL", "x@y") == "The Briefing <news@example.com>"
    monkeypatch.setenv("DEFAULT_FROM_EMAIL", "The Briefing")
    with pytest.raises(ImproperlyConfigured, match="DEFAULT_FROM_EMAIL must be an email address"):
        env.env_address("DEFAULT_FROM_EMAIL", "x@y")
    monkeypatch.setenv("DIGEST_REPLY_TO", "Editors <editors@example.com>, desk@example.com")
    assert env.env_addresses("DIGEST_REPLY_TO") == [
        "Editors <editors@example.com>",
        "desk@example.com",
    ]
    monkeypatch.setenv("DIGEST_REPLY_TO", "editors at example.com")
    with pytest.raises(ImproperlyConfigured, match="DIGEST_REPLY_TO must be an email address"):
        env.env_addresses("DIGEST_REPLY_TO")
    monkeypatch.setenv("BOUNCE_DOMAIN", "Bounces.Example.com.")
    assert env.env_domain("BOUNCE_DOMAIN") == "bounces.example.com"
    for bad in ["bounces@example.com", "https://bounces.example.com", "localhost"]:
        monkeypatch.setenv("BOUNCE_DOMAIN", bad)
        with pytest.raises(ImproperlyConfigured, match="BOUNCE_DOMAIN must be a domain name"):
            env.env_domain("BOUNCE_DOMAIN")


def test_a_private_key_must_be_pem(monkeypatch):
    monkeypatch.setenv(
        "DKIM_PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----"
    )
    assert env.env_pem_key("DKIM_PRIVATE_KEY")
    monkeypatch.setenv("DKIM_PRIVATE_KEY", "ssh-rsa AAAAB3Nza")
    with pytest.raises(ImproperlyConfigured, match="DKIM_PRIVATE_KEY must be a private key in PEM"):
        env.env_pem_key("DKIM_PRIVATE_KEY")


def test_esp_urls():
    assert env.esp_options("postmark://server-token@") == (
        "postmark",
        {"server_token": "server-token"},
        {},
    )
    assert env.esp_options(
        "mailgun://key-1@api.eu.mailgun.net/mg.example.com?webhook_signing_key=signing"
    ) == (
        "mailgun",
        {
            "api_key": "key-1",
            "api_url": "https://api.eu.mailgun.net/v3",
            "sender_domain": "mg.example.com",
        },
        {"MAILGUN_WEBHOOK_SIGNING_KEY": "signing"},
    )
    assert env.esp_options("mailgun://key-1@?webhook_signing_key=s")[1] == {
        "api_key": "key-1",
        "api_url": "https://api.mailgun.net/v3",
    }
    assert env.esp_options("amazon_ses://?configuration_set=briefing") == (
        "amazon_ses",
        {"configuration_set_name": "briefing"},
        {},
    )
    assert env.esp_options("amazon_ses://") == ("amazon_ses", {}, {})
    assert env.esp_options("sendgrid://SG.key%2Fwith-slash@") == (
        "sendgrid",
        {"api_key": "SG.key/with-slash"},
        {},
    )


def test_each_esps_api_base_url_is_part_of_its_url():
    assert env.esp_options("postmark://t@?api_url=http://127.0.0.1:8025/")[1] == {
        "server_token": "t",
        "api_url": "http://127.0.0.1:8025/",
    }
    mailgun = (
        "mailgun://k@/mg.example.com?webhook_signing_key=s&api_url=https://mg.proxy.example/v3"
    )
    assert env.esp_options(mailgun)[1]["api_url"] == "https://mg.proxy.example/v3"
    assert env.esp_options("sendgrid://k@?api_url=https://api.eu.sendgrid.com/v3/")[1] == {
        "api_key": "k",
        "api_url": "https://api.eu.sendgrid.com/v3/",
    }
    assert env.esp_options("amazon_ses://?api_url=https://email.eu-west-1.amazonaws.com")[1] == {
        "client_params": {"endpoint_url": "https://email.eu-west-1.amazonaws.com"}
    }
    # The credentials go with every call: never in the clear past this machine.
    with pytest.raises(ImproperlyConfigured, match="api_url must be an https:// URL"):
        env.esp_options("postmark://secret@?api_url=http://api.example.com/")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postmark", "EMAIL_ESP must be one of postmark://"),
        ("carrier_pigeon://secret@", "got carrier_pigeon://"),
        ("postmark://", "postmark must look like postmark://<server token>@"),
        ("mailgun://secret@", "webhook signing key"),
        ("amazon_ses://secret@", "AWS_ACCESS_KEY_ID"),
        ("postmark://secret@?tls=1", "postmark takes no option tls"),
        ("sendgrid://", "sendgrid must look like sendgrid://<api key>@"),
        ("sendgrid://secret@api.sendgrid.com", "sendgrid must look like"),
    ],
)
def test_bad_esp_urls_are_refused_without_showing_the_key(url, message):
    with pytest.raises(ImproperlyConfigured, match="EMAIL_ESP") as refused:
        env.esp_options(url)
    assert message in str(refused.value)
    assert "secret" not in str(refused.value)


def test_a_retired_variable_set_to_another_value_stops_the_service(monkeypatch):
    retired = {"OLD_LIMIT": env.Retired("it is the constant OLD_LIMIT = 10", value=10)}
    monkeypatch.setenv("OLD_LIMIT", "20")
    with pytest.raises(ImproperlyConfigured, match="OLD_LIMIT is no longer read"):
        env.refuse_retired(retired)
    monkeypatch.setenv("OLD_LIMIT", "10")
    with pytest.warns(UserWarning, match="OLD_LIMIT is no longer read"):
        env.refuse_retired(retired)
    monkeypatch.setenv("OLD_LIMIT", "")
    env.refuse_retired(retired)


def test_a_renamed_variable_is_always_refused_and_a_dead_one_only_warned_about(monkeypatch):
    monkeypatch.setenv("OLD_TOKEN", "t")
    monkeypatch.setenv("NEVER_USED", "15")
    with pytest.raises(ImproperlyConfigured, match=r"OLD_TOKEN .* put it in EMAIL_ESP"):
        env.refuse_retired({"OLD_TOKEN": env.Retired("put it in EMAIL_ESP")})
    with pytest.warns(UserWarning, match="NEVER_USED"):
        env.refuse_retired({"NEVER_USED": env.Retired("it never did anything", harmless=True)})


def test_a_dkim_selector_is_a_dns_label(monkeypatch):
    monkeypatch.setenv("DKIM_SELECTOR", "briefing1")
    assert env.env_dns_label("DKIM_SELECTOR") == "briefing1"
    monkeypatch.setenv("DKIM_SELECTOR", "briefing 1._domainkey")
    with pytest.raises(ImproperlyConfigured, match="DKIM_SELECTOR must be a DNS label"):
        env.env_dns_label("DKIM_SELECTOR")


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


def test_env_options_takes_known_options_and_names_the_unknown(monkeypatch):
    choices = {"automatic_tax", "tax_id_collection", "promotion_codes"}
    assert env.env_options("STRIPE_CHECKOUT", choices) == frozenset()
    monkeypatch.setenv("STRIPE_CHECKOUT", " promotion_codes, automatic_tax ")
    assert env.env_options("STRIPE_CHECKOUT", choices) == {"promotion_codes", "automatic_tax"}
    monkeypatch.setenv("STRIPE_CHECKOUT", "automatic_tax,coupons")
    with pytest.raises(ImproperlyConfigured, match="STRIPE_CHECKOUT has coupons: expected"):
        env.env_options("STRIPE_CHECKOUT", choices)
