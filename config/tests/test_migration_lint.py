"""bin/lint-migrations flags what would lock or break the previous release, and only that.

A probe app written for the test holds one migration per risky change and
one of the same changes made safely (expand: nullable, a database default,
an index built concurrently); the real command renders them for PostgreSQL
(skipped where none answers on 127.0.0.1:5432) and must refuse exactly the
risky ones. The rule for the big tables is checked on the SQL Django writes.
"""

import os
import re
import socket
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django_migration_linter.sql_analyser.analyser import analyse_sql_statements

from testing import migration_lint

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get(
    "MIGRATION_LINT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)

MIGRATIONS = {
    "0001_initial": """
        operations = [
            migrations.CreateModel(
                name="Reading",
                fields=[
                    ("id", models.BigAutoField(primary_key=True)),
                    ("title", models.CharField(max_length=100)),
                    ("note", models.CharField(max_length=100, null=True)),
                    ("old", models.IntegerField(null=True)),
                ],
            ),
            migrations.AddIndex("reading", models.Index(fields=["note"], name="probe_note")),
        ]
    """,
    # The previous release inserts rows without this column: they fail.
    "0002_not_null_without_database_default": """
        operations = [migrations.AddField("reading", "count", models.IntegerField(default=0))]
    """,
    "0003_type_change": """
        operations = [migrations.AlterField("reading", "title", models.TextField())]
    """,
    "0004_rename": """
        operations = [migrations.RenameField("reading", "title", "headline")]
    """,
    "0005_drop_column": """
        operations = [migrations.RemoveField("reading", "old")]
    """,
    "0006_set_not_null": """
        operations = [
            migrations.AlterField("reading", "note", models.CharField(max_length=100)),
        ]
    """,
    "0007_expand_safely": """
        atomic = False
        operations = [
            migrations.AddField("reading", "source", models.CharField(max_length=50, null=True)),
            migrations.AddField("reading", "shares", models.IntegerField(db_default=0)),
            AddIndexConcurrently(
                "reading", models.Index(fields=["source"], name="probe_source")
            ),
        ]
    """,
    "0008_drop_index_safely": """
        atomic = False
        operations = [RemoveIndexConcurrently("reading", "probe_note")]
    """,
}
RISKY = {
    "0002_not_null_without_database_default": {"NOT_NULL"},
    "0003_type_change": {"ALTER_COLUMN"},
    "0004_rename": {"RENAME_COLUMN"},
    "0005_drop_column": {"DROP_COLUMN"},
    "0006_set_not_null": {"NOT_NULL"},
}


def postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def probe_project(tmp_path: Path) -> Path:
    """An app `probe` with MIGRATIONS, and settings that install it beside ours."""
    package = tmp_path / "probe"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "migrations" / "__init__.py").write_text("")
    previous = None
    for name, body in MIGRATIONS.items():
        dependencies = f"[('probe', '{previous}')]" if previous else "[]"
        (package / "migrations" / f"{name}.py").write_text(
            "from django.db import migrations, models\n\n"
            "from config.migration_operations import (\n"
            "    AddIndexConcurrently,\n    RemoveIndexConcurrently,\n)\n\n\n"
            "class Migration(migrations.Migration):\n"
            f"    dependencies = {dependencies}\n" + textwrap.indent(textwrap.dedent(body), "    ")
        )
        previous = name
    (tmp_path / "probe_settings.py").write_text(
        "from config.settings import *  # noqa\n"
        "from config.settings import INSTALLED_APPS\n\n"
        "INSTALLED_APPS = [*INSTALLED_APPS, 'probe']\n"
    )
    return tmp_path


def lint_probe(project: Path, accepted: str) -> tuple[int, str, dict[str, set[str]]]:
    """Run bin/lint-migrations on the probe app; its exit status, output and refusals."""
    if not postgres_answers():
        pytest.skip("needs PostgreSQL on 127.0.0.1:5432 to render the migrations' SQL")
    accepted_file = project / "accepted.toml"
    accepted_file.write_text(accepted)
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "probe_settings",
        "PYTHONPATH": str(project),
        "MIGRATION_LINT_DATABASE_URL": POSTGRES,
    }
    result = subprocess.run(
        [sys.executable, "bin/lint-migrations", "--app", "probe", "--accepted", accepted_file],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in result.stderr, result.stderr
    refused: dict[str, set[str]] = {}
    current = None
    for line in result.stdout.splitlines():
        if match := re.fullmatch(r"probe\.(\w+): UNSAFE .*", line):
            current = match.group(1)
            refused[current] = set()
        elif current and (code := re.fullmatch(r" {4}([A-Z_]+): .*", line)):
            refused[current].add(code.group(1))
        elif not line.startswith(" "):
            current = None
    return result.returncode, result.stdout, refused


def test_risky_migrations_are_refused_and_the_safe_ones_pass(probe_project):
    status, output, refused = lint_probe(probe_project, accepted="")

    assert status == 1, output
    assert refused == RISKY, output
    assert "probe.0001_initial: ok" in output  # a new table and its index lock nobody
    assert "probe.0007_expand_safely: ok" in output
    assert "probe.0008_drop_index_safely: ok" in output


def test_an_accepted_contract_step_passes_for_its_reason_only(probe_project):
    accepted = "".join(
        f'[probe.{name}]\ncodes = {sorted(codes)!r}\nreason = "Contract step of release 7."\n'
        for name, codes in RISKY.items()
    ).replace("'", '"')

    status, output, refused = lint_probe(probe_project, accepted)
    assert (status, refused) == (0, {}), output
    assert "probe.0005_drop_column: accepted (DROP_COLUMN)" in output

    # Accepting a migration for one reason does not excuse another.
    narrower = accepted.replace('codes = ["NOT_NULL"]', "codes = []", 1)
    status, output, refused = lint_probe(probe_project, narrower)
    assert (status, refused) == (1, {"0002_not_null_without_database_default": {"NOT_NULL"}})


def test_the_accepted_list_cannot_go_stale(probe_project):
    accepted = (
        '[probe.0007_expand_safely]\ncodes = ["NOT_NULL"]\nreason = "It was risky once."\n'
        '[probe.0099_gone]\ncodes = ["DROP_COLUMN"]\nreason = "Renumbered."\n'
    )
    status, output, _ = lint_probe(probe_project, accepted)

    assert status == 1
    assert "probe.0007_expand_safely: accepted ['NOT_NULL'], which it no longer has" in output
    assert "probe.0099_gone: no such migration" in output


def test_an_accepted_migration_must_say_why(tmp_path):
    accepted = tmp_path / "accepted.toml"
    accepted.write_text('[newsletter.0002_article_lead_image]\ncodes = ["NOT_NULL"]\n')
    with pytest.raises(ValueError, match="without a reason"):
        migration_lint.load_accepted(accepted)


# The SQL Django writes on PostgreSQL for an index, as sqlmigrate prints it.
INDEX = 'CREATE INDEX "delivery_probe" ON "{table}" ("edition_id", "status", "id");'


@pytest.mark.parametrize("table", sorted(migration_lint.BIG_TABLES))
def test_an_index_on_a_big_table_must_be_built_concurrently(table):
    def error_codes(statements: list[str]) -> set[str]:
        errors, _, _ = analyse_sql_statements(migration_lint.BriefingAnalyser, statements)
        return {error.code for error in errors}

    plain = INDEX.format(table=table)
    assert "CREATE_INDEX_ON_BIG_TABLE" in error_codes(["BEGIN;", plain, "COMMIT;"])
    concurrent = plain.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY")
    assert error_codes([concurrent]) == set()
    # A table made in the same migration is empty: its index locks nobody.
    created = f'CREATE TABLE "{table}" ("id" bigint NOT NULL PRIMARY KEY);'
    assert error_codes(["BEGIN;", created, plain, "COMMIT;"]) == set()


def test_an_index_on_a_small_table_is_only_a_warning():
    errors, _, warnings = analyse_sql_statements(
        migration_lint.BriefingAnalyser, [INDEX.format(table="newsletter_section")]
    )
    assert errors == []
    assert [warning.code for warning in warnings] == ["CREATE_INDEX"]


def test_the_concurrent_index_operations_also_run_on_sqlite(probe_project):
    """The demo and the tests migrate SQLite, where PostgreSQL's CONCURRENTLY does not exist."""
    database = probe_project / "probe.sqlite3"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "probe_settings",
        "PYTHONPATH": str(probe_project),
        "DATABASE_URL": f"sqlite:///{database}",
    }

    def migrate(*target: str) -> None:
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "probe", *target],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr

    def indexes() -> set[str]:
        with sqlite3.connect(database) as sqlite:
            rows = sqlite.execute("PRAGMA index_list('probe_reading')").fetchall()
        return {row[1] for row in rows}

    migrate()
    assert {"probe_source"} <= indexes() and "probe_note" not in indexes()
    migrate("0006_set_not_null")  # and back
    assert "probe_note" in indexes() and "probe_source" not in indexes()
