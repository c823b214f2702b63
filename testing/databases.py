"""Another database beside the test database, of the same engine: somewhere to restore into.

`another_database` makes one (a new SQLite file, or a new PostgreSQL database
on the test database's server, dropped afterwards) and yields its
DATABASE_URL and name; `pointed_at(name)` points this process's default
connection at it for a while, so a test can read what was restored and run
the product's code there, under the test's own clock.
"""

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.db import connection


@dataclass(frozen=True)
class Database:
    url: str
    name: str


@contextlib.contextmanager
def another_database(folder: Path) -> Iterator[Database]:
    """An empty database of the test database's engine; a PostgreSQL one is dropped afterwards."""
    if connection.vendor == "sqlite":
        path = folder / f"elsewhere-{uuid.uuid4().hex[:8]}.sqlite3"
        yield Database(f"sqlite:///{path}", str(path))
        return
    import psycopg

    settings_dict = connection.settings_dict
    user = quote(settings_dict.get("USER") or "postgres", safe="")
    password = settings_dict.get("PASSWORD") or ""
    credentials = f"{user}:{quote(password, safe='')}" if password else user
    server = f"{settings_dict.get('HOST') or '127.0.0.1'}:{settings_dict.get('PORT') or 5432}"
    name = f"briefing_elsewhere_{uuid.uuid4().hex[:10]}"
    administration = f"postgres://{credentials}@{server}/postgres"
    with psycopg.connect(administration, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Database(f"postgres://{credentials}@{server}/{name}", name)
    finally:
        with psycopg.connect(administration, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def pointed_at(name: str) -> Iterator[None]:
    """The default connection on the database `name` (of the same server or folder) meanwhile."""
    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
