"""Keep readers' addresses and the secrets that sign them in out of log lines.

Sign-in, signup, unsubscribe, preferences, renewal, rejoin, gift and
address-change links carry their token in the path (an address change's
holds both addresses), and the checkout's return carries its session id in
the query: an access log (or Django's "Bad Request: /signin/…" warning)
would otherwise keep a copy that signs in, unsubscribes, reads a checkout or
names a reader's addresses. The same tokens also travel bare (a task's
arguments, an exception's message), and the sending code names the readers
it could not reach by address. `redact` replaces each token with
"[redacted]" and each email address with "[address]", leaving the rest of
the line as it was, so logs still say who asked for which page and when.

RedactSecrets applies it to a record's message, its exception and its
stack, on every handler of settings.LOGGING and on gunicorn's loggers
(config/gunicorn_conf.py); config/sentry.py applies it to every event sent
to Sentry.
"""

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[redacted]"
ADDRESS = "[address]"
# A token is the path segment after one of these prefixes.
TOKEN_PATH = re.compile(
    r"(?P<prefix>/(?:signin|unsubscribe|preferences|subscribe/continue|test-checkout"
    r"|billing/renewal|billing/rejoin|gift/redeem|account/address"
    r"|teams/manage|teams/seat|teams/join)/)"
    r"[^/?#\s\"]+"
)
# ...or a query parameter's value (r: the reader's id in a tracked story link).
TOKEN_QUERY = re.compile(r"(?P<prefix>[?&](?:session_id|token|r)=)[^&#\s\"]+")
# The same tokens anywhere else. Django's signed values (sign-in, signup,
# address-change, gift and click links) end in ":" and a base64 HMAC-SHA256
# of 43 characters; the page-scoped reader tokens (subscriptions.tokens) are
# "<id>-" and 22 characters.
SIGNED_VALUE = re.compile(r"(?<![\w.:-])[\w.-]+(?::[\w-]+)?:[\w-]{43}(?![\w-])", re.ASCII)
READER_TOKEN = re.compile(r"(?<![\w-])\d+-[\w-]{22}(?![\w-])", re.ASCII)
# An email address, also percent-encoded in a query string (%40), with an
# internationalised local part or domain (\w is Unicode here). Its first
# character is no quote, so 'ada@example.com' keeps its quotes.
EMAIL_ADDRESS = re.compile(r"[\w.+-][\w.+'%-]*(?:@|%40)[\w-]+(?:\.[\w-]+)+")


def redact(text: str) -> str:
    """The text with every token replaced by [redacted] and every email address by [address]."""
    if not text:
        return text
    text = TOKEN_PATH.sub(rf"\g<prefix>{REDACTED}", text)
    text = TOKEN_QUERY.sub(rf"\g<prefix>{REDACTED}", text)
    text = SIGNED_VALUE.sub(REDACTED, text)
    text = READER_TOKEN.sub(REDACTED, text)
    return EMAIL_ADDRESS.sub(ADDRESS, text)


def redact_data(value: Any) -> Any:
    """`redact` applied to every string in nested dicts, lists and tuples (dict keys too)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(key): redact_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    return value


def _redacted(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrites the record in place; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            # The whole message, rendered: an argument that is no string (a
            # reader, an exception, Celery's context dict) can hold an address.
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # Arguments that do not fit the format: logging reports that when
            # it writes the line; redact the parts as they are.
            self._redact_parts(record)
        else:
            record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            # Formatters write exc_text when it is set, instead of formatting
            # the exception again (config.logformat's JSON formatter too).
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True

    @staticmethod
    def _redact_parts(record: logging.LogRecord) -> None:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, MutableMapping):
            # Gunicorn's access atoms: a dict subclass whose lookups the
            # format relies on, so it is changed in place, not replaced.
            for key, value in record.args.items():
                record.args[key] = _redacted(value)
        elif isinstance(record.args, Mapping):
            record.args = {key: _redacted(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
