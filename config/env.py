"""Typed readers for settings that come from the environment.

Each reader fails loudly with the variable's name when the value cannot be
understood: a typo in production should stop the service at start, not make
it quietly fall back to a default.
"""

import datetime
import ipaddress
import os
import re
import warnings
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any, overload
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def load_dotenv(path: Path) -> None:
    """Read KEY=VALUE lines from `path` into os.environ.

    Variables already set in the environment win, so an operator can always
    override the file. Blank lines and lines starting with # are skipped.
    """
    if not path.is_file():
        return
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ImproperlyConfigured(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(key.strip(), value)


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_header(name: str, default: str) -> str:
    """A value that goes into email headers: one line, so it cannot start another header."""
    value = env_str(name, default)
    if "\r" in value or "\n" in value:
        raise ImproperlyConfigured(f"{name} must be a single line (it goes into email headers)")
    return value


def env_optional(name: str) -> str | None:
    value = _raw(name)
    return value or None


def env_required(name: str) -> str:
    value = _raw(name)
    if not value:
        raise ImproperlyConfigured(f"{name} must be set.")
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false (1/0, yes/no), got {value!r}")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {number}")
    return number


def env_float(name: str, default: float) -> float:
    raw = _raw(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_path(name: str, default: Path) -> Path:
    return Path(env_str(name, str(default)))


@overload
def env_choice(name: str, default: str, choices: set[str], *, expected: str = "") -> str: ...
@overload
def env_choice[T](
    name: str, default: str, choices: Mapping[str, T], *, expected: str = ""
) -> T: ...
def env_choice(
    name: str, default: str, choices: set[str] | Mapping[str, Any], *, expected: str = ""
) -> Any:
    """One of a few words, in any case: the word itself, or what `choices` maps it to."""
    value = env_str(name, default).lower()
    if value not in choices:
        expected = expected or f"one of {', '.join(sorted(choices))}"
        raise ImproperlyConfigured(f"{name} must be {expected}, got {value!r}")
    return choices[value] if isinstance(choices, Mapping) else value


def env_secret(name: str, *, prefixes: tuple[str, ...], kind: str) -> str | None:
    """An optional key whose kind shows in its prefix (Stripe's sk_, whsec_, price_).

    A key of the wrong kind (the publishable pk_ key pasted for the secret
    one) is refused at start; the message shows the prefix only, never the key.
    """
    value = env_optional(name)
    if value is not None and not value.startswith(prefixes):
        prefix, underscore, _ = value.partition("_")
        shown = f"one starting with {prefix}_" if underscore and len(prefix) <= 6 else "another"
        raise ImproperlyConfigured(
            f"{name} must be {kind}, starting with {' or '.join(prefixes)}; got {shown}"
        )
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_options(name: str, choices: set[str]) -> frozenset[str]:
    """Comma-separated options out of `choices`; none when unset."""
    options = frozenset(env_list(name, []))
    unknown = options - choices
    if unknown:
        raise ImproperlyConfigured(
            f"{name} has {', '.join(sorted(unknown))}: expected a comma-separated list "
            f"of {', '.join(sorted(choices))}"
        )
    return options


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def env_networks(name: str, default: list[str]) -> list[IPNetwork]:
    """Comma-separated addresses or CIDR networks (a bare address is its own /32 or /128)."""
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must list IP addresses or networks like 10.0.0.0/8, got {item!r}"
            ) from None
    return networks


def env_time(name: str, default: str) -> datetime.time:
    value = env_str(name, default)
    try:
        return datetime.time.fromisoformat(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a time like 06:00, got {value!r}") from None


def env_timezone(name: str, default: str) -> str:
    value = env_str(name, default)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be an IANA time zone such as America/New_York, got {value!r}"
        ) from None
    return value


def env_url(name: str, default: str, *, schemes: set[str]) -> str:
    value = env_str(name, default)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        expected = " or ".join(sorted(schemes))
        raise ImproperlyConfigured(f"{name} must be a {expected} URL, got {value!r}")
    return value.rstrip("/")


def env_optional_url(name: str, *, schemes: set[str], example: str) -> str | None:
    """An optional URL of one of `schemes`, with a host; it may hold a password, never shown."""
    value = env_optional(name)
    if value is None:
        return None
    parts = urlsplit(value)
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if parts.scheme not in schemes or not host:
        raise ImproperlyConfigured(
            f"{name} must look like {example}, got a {parts.scheme or 'schemeless'} URL"
            + ("" if host else " without a host")
        )
    return value


def env_database(name: str, default: str, **options: Any) -> dict[str, Any]:
    """A database URL (dj-database-url's forms), as Django's DATABASES entry."""
    value = env_str(name, default)
    try:
        return dict(dj_database_url.parse(value, **options))
    except ValueError as error:
        scheme = urlsplit(value).scheme or "schemeless"
        raise ImproperlyConfigured(
            f"{name} must be a database URL such as postgres://user:password@host:5432/name "
            f"or sqlite:///path, got a {scheme} URL ({error})"
        ) from None


# Something at something: whether the domain can receive mail is for DNS and
# the deploy checks (delivery/deliverability/domain_checks.py) to say, not for start-up.
ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")


def _address(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ImproperlyConfigured(f"{name} must be a single line (it goes into email headers)")
    address = parseaddr(value, strict=False)[1]
    if not ADDRESS.fullmatch(address):
        raise ImproperlyConfigured(
            f"{name} must be an email address such as Briefing <briefing@example.com>, "
            f"got {value!r}"
        )
    return value


def env_address(name: str, default: str) -> str:
    """An email address, with or without a display name: "Briefing <news@example.com>"."""
    return _address(name, env_str(name, default))


def env_addresses(name: str) -> list[str]:
    """Comma-separated email addresses (none by default)."""
    value = env_str(name, "")
    if "\r" in value or "\n" in value:
        raise ImproperlyConfigured(f"{name} must be a single line (it goes into email headers)")
    return [
        _address(name, f"{display} <{address}>" if display else address)
        for display, address in getaddresses([value])
        if address
    ]


DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")


def env_domain(name: str) -> str:
    """A host name such as bounces.example.com, lower case, or "" when unset."""
    value = env_str(name, "").strip().rstrip(".").lower()
    if value and not DOMAIN.fullmatch(value):
        raise ImproperlyConfigured(
            f"{name} must be a domain name such as bounces.example.com, got {value!r}"
        )
    return value


LABELS = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


def env_dns_label(name: str) -> str:
    """A DNS name's label or labels, such as a DKIM selector (briefing1), or "" when unset."""
    value = env_str(name, "")
    if value and not LABELS.fullmatch(value.lower()):
        raise ImproperlyConfigured(
            f"{name} must be a DNS label such as briefing1 (letters, digits and -), got {value!r}"
        )
    return value


def env_pem_key(name: str) -> str | None:
    """A private key in PEM form; `\\n` may stand for its line breaks (one-line .env files)."""
    value = env_optional(name)
    if value is None:
        return None
    text = value.replace("\\n", "\n")
    if "-----BEGIN" not in text or "PRIVATE KEY-----" not in text:
        raise ImproperlyConfigured(
            f"{name} must be a private key in PEM form (-----BEGIN PRIVATE KEY----- ...)"
        )
    return value


def env_backup_target(name: str, default: str) -> str:
    """A folder path, or s3://bucket/prefix for S3-compatible storage (the prefix optional).

    Any other scheme is refused, so a typo such as s4:// is not taken for a
    folder of that name.
    """
    value = env_str(name, default)
    parts = urlsplit(value)
    if parts.scheme == "s3":
        if not parts.netloc or parts.query or parts.fragment:
            raise ImproperlyConfigured(
                f"{name} must look like s3://bucket or s3://bucket/prefix, got {value!r}"
            )
        return f"s3://{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
    if "://" in value:
        raise ImproperlyConfigured(
            f"{name} must be a folder path or an s3://bucket/prefix URL, got {value!r}"
        )
    return value


def smtp_options(url: str, *, name: str = "SMTP_URL") -> dict:
    """Turn smtp://user:pass@host:587?tls=1 into SMTP backend OPTIONS.

    smtps:// means implicit TLS (port 465); ?tls=1 means STARTTLS;
    ?timeout=N sets the socket timeout in seconds (default 30);
    ?connections=N the connections each worker process sends a batch over
    at once (default SMTP_CONNECTIONS, at most MAX_SMTP_CONNECTIONS: a
    relay's per-client limit is per host); ?max_connections=N the most that
    every worker together holds to the relay (default MAX_SMTP_CONNECTIONS,
    Postfix's limit per client).
    """
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name} must look like smtp://user:password@host:587?tls=1, got {url!r}"
        )
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"tls", "ssl", "timeout", "connections", "max_connections"}
    if unknown:
        raise ImproperlyConfigured(f"{name} has unknown options: {', '.join(sorted(unknown))}")

    def flag(key: str) -> bool:
        value = query.get(key, "0").lower()
        if value not in TRUE_WORDS | FALSE_WORDS:
            raise ImproperlyConfigured(f"{name}: {key} must be 1 or 0, got {value!r}")
        return value in TRUE_WORDS

    use_ssl = parts.scheme == "smtps" or flag("ssl")
    use_tls = flag("tls")
    if use_ssl and use_tls:
        raise ImproperlyConfigured(
            f"{name}: choose either implicit TLS (smtps) or STARTTLS (tls=1)"
        )
    try:
        port = parts.port or (465 if use_ssl else 25)
        timeout = int(query.get("timeout", "30"))
        connections = int(query.get("connections", str(SMTP_CONNECTIONS)))
        max_connections = int(query.get("max_connections", str(MAX_SMTP_CONNECTIONS)))
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None
    if not 1 <= connections <= MAX_SMTP_CONNECTIONS:
        raise ImproperlyConfigured(
            f"{name}: connections must be 1 to {MAX_SMTP_CONNECTIONS} (Postfix's default "
            f"limit per client host), got {connections}"
        )
    if not 1 <= max_connections <= MAX_RELAY_CONNECTIONS:
        raise ImproperlyConfigured(
            f"{name}: max_connections must be 1 to {MAX_RELAY_CONNECTIONS}, got {max_connections}"
        )
    return {
        "host": parts.hostname,
        "port": port,
        "username": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "use_tls": use_tls,
        "use_ssl": use_ssl,
        "timeout": timeout,
        "connections": connections,
        "max_connections": max_connections,
    }


# Connections per worker process to an SMTP relay far enough away to need
# them (delivery.batches.SMTPPool): each pipelined, so a relay 50 ms away
# takes about 20 emails a second per connection. Two processes of 25 make
# 50 to one relay, Postfix's default per client host, which max_connections
# (the cap every worker shares) keeps however many processes there are.
SMTP_CONNECTIONS = 25
MAX_SMTP_CONNECTIONS = 50
# A relay of one's own may allow more (Postfix: smtpd_client_connection_count_limit).
MAX_RELAY_CONNECTIONS = 1000

ESP_URL_FORMS = {
    "postmark": "postmark://<server token>@",
    "mailgun": "mailgun://<api key>@api.mailgun.net/<sending domain>?webhook_signing_key=<key>",
    "amazon_ses": "amazon_ses://?configuration_set=<name>",
    "sendgrid": "sendgrid://<api key>@",
}


def esp_options(url: str, *, name: str = "EMAIL_ESP") -> tuple[str, dict[str, Any], dict[str, str]]:
    """Turn EMAIL_ESP's URL into the provider, its anymail backend OPTIONS and ANYMAIL entries.

    postmark://TOKEN@ (the server token); mailgun://KEY@HOST/DOMAIN with the
    API key, the API host (api.mailgun.net, or api.eu.mailgun.net in the EU;
    empty for the first) and the sending domain (empty: the From address's),
    ?webhook_signing_key=... required; sendgrid://KEY@ (the API key);
    amazon_ses:// with an optional
    ?configuration_set=... (boto reads the AWS_* variables). Credentials are
    percent-encoded like any URL's, and no message repeats them. Each takes
    ?api_url=... for another API base URL (a region, a proxy, a test's fake
    API): https, or http on this machine's loopback only, since the
    credentials go with every call.
    """
    esp, separator, rest = url.partition("://")
    forms = ", ".join(ESP_URL_FORMS.values())
    if not separator or esp not in ESP_URL_FORMS:
        shown = f"{esp}://" if separator else "a value that is not a URL"
        raise ImproperlyConfigured(f"{name} must be one of {forms}; got {shown}")
    parts = urlsplit("//" + rest)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    allowed = {"mailgun": {"webhook_signing_key"}, "amazon_ses": {"configuration_set"}}
    unknown = set(query) - allowed.get(esp, set()) - {"api_url"}
    if unknown:
        raise ImproperlyConfigured(
            f"{name}: {esp} takes no option {', '.join(sorted(unknown))} ({ESP_URL_FORMS[esp]})"
        )
    key = unquote(parts.password or parts.username or "")
    try:
        host = parts.hostname or ""
    except ValueError:
        host = ""
    path = unquote(parts.path.strip("/"))
    api_url = esp_api_url(query.get("api_url"), name)
    if esp == "postmark":
        if not key or host or path:
            raise ImproperlyConfigured(f"{name} for postmark must look like {ESP_URL_FORMS[esp]}")
        return esp, {"server_token": key, **({"api_url": api_url} if api_url else {})}, {}
    if esp == "sendgrid":
        if not key or host or path:
            raise ImproperlyConfigured(f"{name} for sendgrid must look like {ESP_URL_FORMS[esp]}")
        return esp, {"api_key": key, **({"api_url": api_url} if api_url else {})}, {}
    if esp == "mailgun":
        signing_key = query.get("webhook_signing_key", "")
        if not key or not signing_key or "/" in path:
            raise ImproperlyConfigured(
                f"{name} for mailgun must look like {ESP_URL_FORMS[esp]}: the API key and "
                "Mailgun's webhook signing key (Sending -> Webhooks) are required"
            )
        mailgun = {"api_key": key, "api_url": api_url or f"https://{host or 'api.mailgun.net'}/v3"}
        if path:
            mailgun["sender_domain"] = path
        return esp, mailgun, {"MAILGUN_WEBHOOK_SIGNING_KEY": signing_key}
    if key or host or path:
        raise ImproperlyConfigured(
            f"{name} for amazon_ses must look like {ESP_URL_FORMS[esp]} "
            "(the AWS credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_DEFAULT_REGION)"
        )
    options: dict[str, Any] = {}
    if query.get("configuration_set"):
        options["configuration_set_name"] = query["configuration_set"]
    if api_url:
        options["client_params"] = {"endpoint_url": api_url}
    return esp, options, {}


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def esp_api_url(url: str | None, name: str) -> str | None:
    """An ESP's API base URL from EMAIL_ESP's ?api_url=: https, or http on loopback only."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in LOOPBACK:
        return url
    raise ImproperlyConfigured(
        f"{name}: api_url must be an https:// URL (http:// only on this machine's loopback)"
    )


@dataclass(frozen=True)
class Retired:
    """A variable settings no longer read, and what took its place.

    `value` is the constant it became: set to that same value it is only
    warned about (an old .env keeps working); set to anything else it stops
    the service, since ignoring it would quietly undo what the operator asked
    for. `value=None` (a renamed variable, a value moved into another): always
    refused. `harmless=True` (it never did anything): only warned about.
    """

    instead: str
    value: object = None
    harmless: bool = False


def _same(raw: str, value: object) -> bool:
    try:
        if isinstance(value, bool):
            return raw.lower() in (TRUE_WORDS if value else FALSE_WORDS)
        if isinstance(value, int | float):
            return type(value)(raw) == value
        if isinstance(value, Path):
            return Path(raw).resolve() == value.resolve()
    except ValueError:
        return False
    return value is not None and raw == str(value)


def refuse_retired(retired: Mapping[str, Retired]) -> None:
    """Stop at start on a variable no longer read, set to what the service would not do.

    Reads the environment directly, not through the readers above: these are
    not variables an operator sets any more (config/tests count those).
    """
    for name, entry in retired.items():
        raw = os.environ.get(name, "").strip()
        if not raw:
            continue
        if entry.harmless or (entry.value is not None and _same(raw, entry.value)):
            warnings.warn(
                f"{name} is no longer read from the environment ({entry.instead}); "
                "remove it from the environment or .env.",
                stacklevel=2,
            )
            continue
        raise ImproperlyConfigured(
            f"{name} is no longer read from the environment: {entry.instead}. "
            "Remove it from the environment or .env."
        )
