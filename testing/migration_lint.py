"""Migrations that are safe to run while the previous release still serves (make check).

django-migration-linter renders each migration's SQL with `sqlmigrate` on
PostgreSQL and reads it for backward-incompatible or locking statements:
a NOT NULL column without a default the database keeps, a column renamed,
dropped or changed in type, a table renamed or dropped, a unique constraint
added to an existing table. On top of its checks, an index built without
CONCURRENTLY on one of the big tables (BIG_TABLES) is an error here, not a
warning: it blocks every write to the table (the send's claims and marks,
signups, bounces) for as long as the build takes.

A migration flagged for a reason recorded in the accepted list
(testing/accepted_migrations.toml: the migrations that already ran in
production, and contract-phase migrations reviewed as such) passes for that
reason only; anything else flagged fails the check. The rules for writing
migrations that pass: docs/operations.md, "Upgrades".

Run by `bin/lint-migrations`, which sets Django up on PostgreSQL first.
"""

import logging
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.db.migrations import Migration
from django_migration_linter import MigrationLinter
from django_migration_linter.sql_analyser.analyser import (
    ANALYSER_STRING_MAPPING,
    analyse_sql_statements,
)
from django_migration_linter.sql_analyser.base import Check, CheckMode, CheckType
from django_migration_linter.sql_analyser.postgresql import PostgresqlAnalyser

ACCEPTED_FILE = Path(__file__).with_name("accepted_migrations.toml")

# The tables that grow with the list: one row per reader, membership, digest
# sent or bounce. Anything that locks them locks the send and the signups.
BIG_TABLES = frozenset(
    {
        "subscriptions_subscriber",
        "subscriptions_membership",
        "newsletter_delivery",
        "newsletter_bounceevent",
    }
)

CREATE_INDEX = re.compile(r'CREATE (?:UNIQUE )?INDEX (?!CONCURRENTLY)\S+ ON "?(\w+)"?')
# Functions PostgreSQL evaluates per row: a column added with one as its
# default rewrites the whole table under an exclusive lock.
VOLATILE_DEFAULT = re.compile(
    r"ADD COLUMN .* DEFAULT \(?(?:gen_random_uuid|random|clock_timestamp|uuid_generate_v\d)\(",
    re.IGNORECASE,
)


CREATE_TABLE = re.compile(r'CREATE TABLE "?(\w+)"?')


def creates_index_on_big_table(sql_statements: list[str], **kwargs: object) -> bool:
    """An index built without CONCURRENTLY on a big table this migration did not create."""
    created = set()
    for sql in sql_statements:
        if table := CREATE_TABLE.match(sql):
            created.add(table.group(1))
        index = CREATE_INDEX.search(sql)
        if index and index.group(1) in BIG_TABLES - created:
            return True
    return False


def adds_column_with_volatile_default(sql: str, **kwargs: object) -> bool:
    return bool(VOLATILE_DEFAULT.search(sql))


class BriefingAnalyser(PostgresqlAnalyser):
    migration_checks: list[Check] = [
        *PostgresqlAnalyser.migration_checks,
        Check(
            code="CREATE_INDEX_ON_BIG_TABLE",
            fn=creates_index_on_big_table,
            message=(
                "CREATE INDEX without CONCURRENTLY on a big table blocks its writes while "
                "it builds: AddIndexConcurrently in a migration with atomic = False"
            ),
            mode=CheckMode.TRANSACTION,
            type=CheckType.ERROR,
        ),
        Check(
            code="VOLATILE_DEFAULT",
            fn=adds_column_with_volatile_default,
            message="a column added with a volatile default rewrites the whole table",
            mode=CheckMode.ONE_LINER,
            type=CheckType.ERROR,
        ),
    ]


ANALYSER = "briefing-postgresql"
ANALYSER_STRING_MAPPING[ANALYSER] = BriefingAnalyser


@dataclass
class Finding:
    app_label: str
    name: str
    errors: dict[str, str] = field(default_factory=dict)  # code: message (and table)
    warnings: list[str] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return f"{self.app_label}.{self.name}"

    @property
    def refused(self) -> dict[str, str]:
        return {code: text for code, text in self.errors.items() if code not in self.accepted}


@dataclass
class Report:
    findings: list[Finding]
    # Accepted entries that name no migration, or codes the migration no longer has.
    stale: list[str]

    @property
    def ok(self) -> bool:
        return not self.stale and not any(finding.refused for finding in self.findings)


def load_accepted(path: Path) -> dict[str, set[str]]:
    """`app.migration` → the codes accepted for it; each entry must give its reason."""
    accepted: dict[str, set[str]] = {}
    for app_label, migrations in tomllib.loads(path.read_text()).items():
        for name, entry in migrations.items():
            if not str(entry.get("reason", "")).strip():
                raise ValueError(f"{path}: {app_label}.{name} is accepted without a reason")
            accepted[f"{app_label}.{name}"] = set(entry["codes"])
    return accepted


def _describe(issue: object) -> str:
    message = str(getattr(issue, "message", issue))
    table = getattr(issue, "table", None)
    return f"{message} (table {table})" if table else message


def lint(accepted_file: Path = ACCEPTED_FILE, app_labels: Iterable[str] | None = None) -> Report:
    """Every migration of our apps (or of `app_labels`), rendered for PostgreSQL and read."""
    accepted = load_accepted(accepted_file)
    linter = MigrationLinter(
        no_cache=True, no_output=True, analyser_string=ANALYSER, include_apps=app_labels
    )
    migrations: list[Migration] = sorted(
        (
            migration
            for migration in linter._gather_all_migrations()
            if not linter.should_ignore_migration(migration.app_label, migration.name)
        ),
        key=lambda migration: (migration.app_label, migration.name),
    )
    findings = []
    for migration in migrations:
        finding = Finding(migration.app_label, migration.name)
        finding.accepted = accepted.pop(finding.key, set())
        sql = linter.get_sql(migration.app_label, migration.name)
        errors, _, warnings = analyse_sql_statements(BriefingAnalyser, sql)
        data_errors, _, data_warnings = linter.analyse_data_migration(migration)
        for issue in [*errors, *data_errors]:
            finding.errors.setdefault(issue.code, _describe(issue))
        finding.warnings = sorted({_describe(issue) for issue in [*warnings, *data_warnings]})
        findings.append(finding)
    stale = [
        f"{key}: no such migration"
        for key in sorted(accepted)
        if app_labels is None or key.partition(".")[0] in app_labels
    ]
    for finding in findings:
        unused = finding.accepted - set(finding.errors)
        if unused:
            stale.append(f"{finding.key}: accepted {sorted(unused)}, which it no longer has")
    return Report(findings, stale)


def print_report(report: Report, accepted_file: Path = ACCEPTED_FILE) -> None:
    for finding in report.findings:
        if finding.refused:
            print(f"{finding.key}: UNSAFE while the previous release serves")
            for code, text in sorted(finding.refused.items()):
                print(f"    {code}: {text}")
        elif finding.errors:
            print(f"{finding.key}: accepted ({', '.join(sorted(finding.errors))})")
            continue  # reviewed: its warnings were read then
        else:
            print(f"{finding.key}: ok")
        for warning in finding.warnings:
            print(f"    warning: {warning}")
    for line in report.stale:
        print(f"{accepted_file.name}: {line}")
    if report.ok:
        print("Migrations: safe to run while the previous release serves.")
    else:
        print(
            "\nMigrations: unsafe ones above. Write them expand/contract "
            "(docs/operations.md, 'Upgrades'), or, for a contract step reviewed as such, "
            f"record it with its reason in {accepted_file}."
        )


def main(accepted_file: Path = ACCEPTED_FILE, app_labels: Iterable[str] | None = None) -> int:
    # The linter logs each sqlmigrate call at INFO; the report says it all.
    logging.getLogger("django_migration_linter").setLevel(logging.WARNING)
    report = lint(accepted_file, app_labels)
    print_report(report, accepted_file)
    return 0 if report.ok else 1
