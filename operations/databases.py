"""The database as one file, and back.

PostgreSQL: `pg_dump --format=custom` inside a snapshot this process exported,
so the row counts and migrations the manifest records are those of the very
state dumped; `pg_restore` in one transaction, so a restore that fails leaves
nothing half-written. SQLite: the sqlite3 module's online backup API
(`Connection.backup`), in one step, so the copy is consistent however busy
the web server and the workers are, and the same API the other way round.
"""

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.apps import apps
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from operations.archives import BackupError

ENGINES = {
    "django.db.backends.postgresql": "postgresql",
    "django.db.backends.sqlite3": "sqlite",
}
ENGINE_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
DUMP_FILES = {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}
MIGRATIONS_TABLE = "django_migrations"
# pg_dump and pg_restore run as long as the database is large, never forever.
CLIENT_TIMEOUT_SECONDS = 6 * 60 * 60


class Cursor(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


@dataclass
class Snapshot:
    """The database as one file, with what the manifest says of it."""

    engine: str
    path: Path
    tool: str
    server_version: str
    migrations: list[tuple[str, str]]
    rows: dict[str, int]
    notes: list[str] = field(default_factory=list)


def engine_of(alias: str = "default") -> str:
    engine = connections[alias].settings_dict["ENGINE"]
    if engine not in ENGINES:
        raise BackupError(f"Backups cover PostgreSQL and SQLite; this database is {engine}.")
    return ENGINES[engine]


def describe_database(alias: str = "default") -> str:
    """The database as an operator would name it (never with its password)."""
    settings_dict = connections[alias].settings_dict
    if engine_of(alias) == "sqlite":
        return f"the SQLite database {settings_dict['NAME']}"
    host = settings_dict.get("HOST") or "localhost"
    port = settings_dict.get("PORT") or 5432
    return f"the PostgreSQL database {settings_dict['NAME']!r} on {host}:{port}"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def count_rows(cursor: Cursor, tables: Iterable[str]) -> dict[str, int]:
    counts = {}
    for table in sorted(tables):
        cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608 - a quoted table name
        counts[table] = int(cursor.fetchone()[0])
    return counts


def applied_migrations(cursor: Cursor, tables: Iterable[str]) -> list[tuple[str, str]]:
    if MIGRATIONS_TABLE not in tables:
        return []
    cursor.execute(f"SELECT app, name FROM {MIGRATIONS_TABLE} ORDER BY app, name")  # noqa: S608
    return [(str(app), str(name)) for app, name in cursor.fetchall()]


def table_names(alias: str = "default") -> list[str]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        return sorted(connection.introspection.table_names(cursor))


def take_snapshot(alias: str, into: Path) -> Snapshot:
    """Dump the database `alias` into a file in `into`."""
    if engine_of(alias) == "postgresql":
        return _snapshot_postgresql(alias, into)
    return _snapshot_sqlite(alias, into)


def _snapshot_sqlite(alias: str, into: Path) -> Snapshot:
    name = str(connections[alias].settings_dict["NAME"])
    if not Path(name).is_file():
        raise BackupError(f"The SQLite database {name} does not exist: nothing to back up.")
    destination = into / DUMP_FILES["sqlite"]
    source = sqlite3.connect(name, timeout=20)
    try:
        copy = sqlite3.connect(destination)
        try:
            # pages=-1 (the default): the whole database in one step, under
            # one read lock, so the copy is one consistent state.
            source.backup(copy)
            (check,) = copy.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise BackupError(f"The SQLite database {name} is damaged: {check}")
            tables = _sqlite_tables(copy)
            cursor = copy.cursor()
            migrations = applied_migrations(cursor, tables)
            rows = count_rows(cursor, tables)
        finally:
            copy.close()
    except sqlite3.Error as error:
        raise BackupError(f"Could not copy the SQLite database {name}: {error}") from error
    finally:
        source.close()
    return Snapshot(
        engine="sqlite",
        path=destination,
        tool=f"sqlite3 {sqlite3.sqlite_version}",
        server_version=sqlite3.sqlite_version,
        migrations=migrations,
        rows=rows,
    )


def _sqlite_tables(connection: sqlite3.Connection) -> list[str]:
    found = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
        "ESCAPE '\\' ORDER BY name"
    )
    return [str(name) for (name,) in found]


def _snapshot_postgresql(alias: str, into: Path) -> Snapshot:
    pg_dump = client_tool("pg_dump")
    tool = client_version(pg_dump)
    destination = into / DUMP_FILES["postgresql"]
    # A connection of its own: the exported snapshot lives as long as its
    # transaction, which must stay open until pg_dump has taken it up.
    connection = connections.create_connection(alias)
    try:
        with connection.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SHOW server_version")
            server_version = str(cursor.fetchone()[0])
            cursor.execute("SHOW server_version_num")
            server_major = int(cursor.fetchone()[0]) // 10000
            note = check_dump_client(tool, server_major)
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot_id = str(cursor.fetchone()[0])
            tables = connection.introspection.table_names(cursor)
            migrations = applied_migrations(cursor, tables)
            rows = count_rows(cursor, tables)
            _run(
                [pg_dump, "--format=custom", f"--snapshot={snapshot_id}", f"--file={destination}"],
                libpq_environment(connection.settings_dict),
                what="pg_dump",
            )
            cursor.execute("COMMIT")
    finally:
        connection.close()
    return Snapshot(
        engine="postgresql",
        path=destination,
        tool=tool,
        server_version=server_version,
        migrations=migrations,
        rows=rows,
        notes=[note] if note else [],
    )


def client_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} was not found on PATH: install the PostgreSQL client tools "
            "(Debian: postgresql-client) of the same major version as the server."
        )
    return path


def client_version(path: str) -> str:
    """`pg_dump --version`'s answer, e.g. "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"."""
    result = _run([path, "--version"], dict(os.environ), what=Path(path).name)
    return result.strip()


def major_version(tool: str) -> int:
    """15 of "pg_dump (PostgreSQL) 15.20 (Debian …)"."""
    found = re.search(r"\(PostgreSQL\)\s+(\d+)", tool)
    if found is None:
        raise BackupError(f"Cannot tell the version of the PostgreSQL client from {tool!r}.")
    return int(found.group(1))


def check_dump_client(tool: str, server_major: int) -> str | None:
    """Refuse a pg_dump older than the server; return a note when it is newer.

    pg_dump refuses to dump a newer server. A newer pg_dump works, but its
    archive can only be restored into a server of its own version or later
    (pg_dump 17 writes `SET transaction_timeout`, which 16 does not know).
    """
    client_major = major_version(tool)
    if client_major < server_major:
        raise BackupError(
            f"{tool} cannot dump a PostgreSQL {server_major} server (pg_dump refuses a server "
            f"newer than itself). Install the PostgreSQL {server_major} client tools "
            f"(Debian: postgresql-client-{server_major}) and put them first on PATH."
        )
    if client_major > server_major:
        return (
            f"pg_dump {client_major} is newer than the PostgreSQL {server_major} server: this "
            f"archive restores only into PostgreSQL {client_major} or later. Install the "
            f"PostgreSQL {server_major} client tools for archives the same server can take back."
        )
    return None


def check_restore_client(archive_tool: str, restore_tool: str, server_major: int) -> None:
    """Refuse, before anything is written, a restore that pg_restore or the server cannot do."""
    dumped_by = major_version(archive_tool)
    if major_version(restore_tool) < dumped_by:
        raise BackupError(
            f"The archive was written by {archive_tool}; {restore_tool} cannot read it. "
            f"Install the PostgreSQL {dumped_by} client tools (or later), first on PATH."
        )
    if server_major < dumped_by:
        raise BackupError(
            f"The archive was written by pg_dump {dumped_by}, and the target server is "
            f"PostgreSQL {server_major}: restore it into PostgreSQL {dumped_by} or later."
        )


def server_major_version(alias: str = "default") -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        return int(cursor.fetchone()[0]) // 10000


def libpq_environment(settings_dict: dict[str, Any]) -> dict[str, str]:
    """The environment pg_dump and pg_restore connect with: PGHOST and the rest.

    Django's own dbshell mapping covers the password and the SSL and service
    options; the password goes by environment, never on a command line.
    """
    from django.db.backends.postgresql.client import DatabaseClient

    _args, environment = DatabaseClient.settings_to_cmd_args_env(settings_dict, [])
    wanted = {
        "PGHOST": settings_dict.get("HOST"),
        "PGPORT": settings_dict.get("PORT"),
        "PGUSER": settings_dict.get("USER"),
        "PGDATABASE": settings_dict.get("NAME"),
    }
    values = {key: str(value) for key, value in wanted.items() if value}
    return {**os.environ, **(environment or {}), **values}


def _run(command: list[str], environment: dict[str, str], *, what: str) -> str:
    try:
        result = subprocess.run(  # noqa: S603 - the PostgreSQL client tools, fixed arguments
            command,
            env=environment,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BackupError(f"{what} could not run: {error}") from error
    if result.returncode != 0:
        raise BackupError(
            f"{what} failed (exit status {result.returncode}): {result.stderr.strip()}"
        )
    return result.stdout


def restore_snapshot(engine: str, dump: Path, tool: str, alias: str, *, replace: bool) -> None:
    """Load `dump` into the database `alias`: whole, or (on PostgreSQL) not at all."""
    if engine == "postgresql":
        _restore_postgresql(dump, tool, alias, replace=replace)
    else:
        _restore_sqlite(dump, alias)


def _restore_postgresql(dump: Path, archive_tool: str, alias: str, *, replace: bool) -> None:
    pg_restore = client_tool("pg_restore")
    check_restore_client(archive_tool, client_version(pg_restore), server_major_version(alias))
    connection = connections[alias]
    connection.close()
    command = [
        pg_restore,
        # One transaction: a restore that fails leaves the database as it was.
        "--single-transaction",
        "--exit-on-error",
        # Elsewhere, the roles of the original server need not exist: the
        # restoring user owns what it restores.
        "--no-owner",
        "--no-privileges",
        f"--dbname={connection.settings_dict['NAME']}",
    ]
    if replace:
        command += ["--clean", "--if-exists"]
    _run(
        [*command, str(dump)],
        libpq_environment(connection.settings_dict),
        what="pg_restore (one transaction: nothing was written)",
    )


def _restore_sqlite(dump: Path, alias: str) -> None:
    connection = connections[alias]
    connection.close()
    name = str(connection.settings_dict["NAME"])
    try:
        source = sqlite3.connect(dump)
        try:
            target = sqlite3.connect(name, timeout=20)
            try:
                # One step: the target's pages are replaced in one transaction.
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as error:
        raise BackupError(f"Could not restore into the SQLite database {name}: {error}") from error


def code_migrations() -> tuple[set[tuple[str, str]], set[str]]:
    """The migrations this code knows (and those they replace), and the installed apps' labels."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    known = set(loader.disk_migrations)
    for migration in loader.disk_migrations.values():
        known.update(migration.replaces)
    return known, {config.label for config in apps.get_app_configs()}


def unapplied_migrations(applied: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The migrations of this code's installed apps that `applied` lacks (`migrate` runs them)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    done = set(applied)
    labels = {config.label for config in apps.get_app_configs()}
    return sorted(
        key
        for key, migration in loader.disk_migrations.items()
        if key[0] in labels
        and key not in done
        and not (migration.replaces and all(old in done for old in migration.replaces))
    )
