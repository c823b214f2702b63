"""What a log line is about: the request, the Celery task, the edition and zone being sent.

Context variables, so every record logged while a request is served or a
task runs carries them without passing them down: the request id (set by
config.middleware.RequestIdMiddleware, cleared when the response is
finished), the task's id and name (config/celery.py, from Celery's
task_prerun and task_postrun signals), and fields a piece of work binds
for its duration (`scoped` and `bind`: the edition a batch sends). The
LogContext filter, on every handler of settings.LOGGING, copies them onto
each record; a field given with `extra=` wins over the bound one.
"""

import contextvars
import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

# The fields, in the order the human format writes them.
FIELDS = ("request_id", "task_id", "task", "edition", "zone")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "log_request_id", default=None
)
_task: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "log_task", default=None
)
_fields: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "log_fields", default=MappingProxyType({})
)


def set_request_id(request_id: str | None) -> None:
    _request_id.set(request_id)


def request_id() -> str | None:
    return _request_id.get()


def enter_task(task_id: str, name: str) -> contextvars.Token[tuple[str, str] | None]:
    """The task now running; the token puts back the one it ran inside (an eager task's caller)."""
    return _task.set((task_id, name))


def leave_task(token: contextvars.Token[tuple[str, str] | None]) -> None:
    _task.reset(token)


def bind(**fields: object) -> None:
    """Add fields to every record from here to the end of the enclosing `scoped` call."""
    _fields.set(MappingProxyType({**_fields.get(), **{k: str(v) for k, v in fields.items()}}))


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add fields to every record logged inside the block."""
    token = _fields.set(_fields.get())
    try:
        bind(**fields)
        yield
    finally:
        _fields.reset(token)


def scoped[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Fields bound inside the function are gone when it returns or raises."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with bound():
            return function(*args, **kwargs)

    return wrapper


def current() -> dict[str, str]:
    """The fields a record logged now would carry."""
    fields = dict(_fields.get())
    task = _task.get()
    if task is not None:
        fields["task_id"], fields["task"] = task
    request = _request_id.get()
    if request is not None:
        fields["request_id"] = request
    return fields


class LogContext(logging.Filter):
    """Copies the current fields onto the record (as attributes named after them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
