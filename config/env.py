"""Typed readers for settings that come from the environment.

Each reader fails loudly with the variable's name when the value cannot be
understood: a typo in production should stop the service at start, not make
it quietly fall back to a default.
"""

import datetime
import ipaddress
import os
import zoneinfo
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

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


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_float(name: str, default: float) -> float:
    raw = _raw(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def env_choice(name: str, default: str, choices: set[str]) -> str:
    """One of a few words (lower case)."""
    value = env_str(name, default).lower()
    if value not in choices:
        raise ImproperlyConfigured(
            f"{name} must be one of {', '.join(sorted(choices))}, got {value!r}"
        )
    return value


def env_fraction(name: str, default: float) -> float:
    """A number from 0 to 1."""
    value = env_float(name, default)
    if not 0 <= value <= 1:
        raise ImproperlyConfigured(f"{name} must be from 0 to 1, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


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
    ?timeout=N sets the socket timeout in seconds (default 30).
    """
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ImproperlyConfigured(
            f"{name} must look like smtp://user:password@host:587?tls=1, got {url!r}"
        )
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"tls", "ssl", "timeout"}
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
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None
    return {
        "host": parts.hostname,
        "port": port,
        "username": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "use_tls": use_tls,
        "use_ssl": use_ssl,
        "timeout": timeout,
    }
