"""Keep the secrets that travel in URLs out of log lines.

Sign-in, signup, unsubscribe, preferences, renewal, rejoin, gift and
address-change links carry their token in the path (an address change's
holds both addresses), and the checkout's return carries its session id in
the query: an access log (or Django's "Bad Request: /signin/…" warning)
would otherwise keep a copy that signs in, unsubscribes, reads a checkout or
names a reader's addresses. RedactSecrets replaces them with "[redacted]" in
a record's message and arguments (a tuple, or the mapping gunicorn's access
log formats from), leaving the rest of the line as it was, so logs still say
who asked for which page and when.
"""

import logging
import re
from collections.abc import MutableMapping

REDACTED = "[redacted]"
# A token is the path segment after one of these prefixes.
TOKEN_PATH = re.compile(
    r"(?P<prefix>/(?:signin|unsubscribe|preferences|subscribe/continue|test-checkout"
    r"|billing/renewal|billing/rejoin|gift/redeem|account/address)/)"
    r"[^/?#\s\"]+"
)
# ...or a query parameter's value (r: the reader's id in a tracked story link).
TOKEN_QUERY = re.compile(r"(?P<prefix>[?&](?:session_id|token|r)=)[^&#\s\"]+")


def redact(text: str) -> str:
    """The text with every token in a URL path or query replaced by [redacted]."""
    text = TOKEN_PATH.sub(rf"\g<prefix>{REDACTED}", text)
    return TOKEN_QUERY.sub(rf"\g<prefix>{REDACTED}", text)


def _redacted(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrites the record in place; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, MutableMapping):
            # Gunicorn's access atoms: a dict subclass whose lookups the
            # format relies on, so it is changed in place, not replaced.
            for key, value in record.args.items():
                record.args[key] = _redacted(value)
        elif isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True
