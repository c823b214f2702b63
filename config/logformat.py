"""The two shapes of a log line (LOG_FORMAT): one JSON object, or one human line.

Both carry the request id, the Celery task and the edition and zone of a
send when the record has them (config.logcontext), and both pass the whole
line through config.logfilters.redact once more: whatever reached the
formatter without RedactSecrets' filter (an extra field, an exception
formatted anew) still leaves without an address or a token.
"""

import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

from config.logcontext import FIELDS
from config.logfilters import redact, redact_data

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# The JSON fields, in this order; any other extra a library adds to its
# records (Django's request object, Celery's task context) is left out.
JSON_FIELDS = (
    "time",
    "level",
    "logger",
    "process",
    "message",
    *FIELDS,
    "status_code",
    "exc_info",
    "stack_info",
)


class PlainFormatter(logging.Formatter):
    """`time LEVEL logger message [request_id=… task_id=… edition=… zone=…]`."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = " ".join(
            f"{name}={getattr(record, name)}" for name in FIELDS if hasattr(record, name)
        )
        return f"{line} [{context}]" if context else line

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(BaseJsonFormatter):
    """One JSON object per line: JSON_FIELDS, those the record has."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(process)d %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601, UTC
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {name: redact_data(log_data[name]) for name in JSON_FIELDS if name in log_data}


def formatter(log_format: str) -> logging.Formatter:
    """The formatter LOG_FORMAT names ("json" or "plain")."""
    return JsonFormatter() if log_format == "json" else PlainFormatter()
