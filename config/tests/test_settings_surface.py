"""What an operator may set: few variables, each typed, each documented in one place.

config/settings reads every variable through a typed reader of config.env
(env_bool, env_int, env_url, ...: each names the variable, and what it
expects, when it refuses a value). These tests find those reads by parsing
the module, count them, and hold README.md's tables and .env.example to
them both ways: nothing read goes undocumented, and nothing documented is
not read. The advanced settings (constants, not variables) are held to
their own table the same way. (config.env.refuse_retired reads the names of
variables no longer read, to refuse them: those are not the operator's.)
"""

import ast
import re
from pathlib import Path

import pytest

import config.env
from config import settings as product_settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "config" / "settings" / "__init__.py"
README = ROOT / "README.md"
ENV_EXAMPLE = ROOT / ".env.example"
MAXIMUM = 45

READERS = {name for name in vars(config.env) if name.startswith("env_")}
ADVANCED_START = "# === Advanced settings: not read from the environment"
ADVANCED_END = "# === End of the advanced settings"
README_VARIABLES = ("## Configuration\n", "### Advanced settings (not read from the environment)\n")
# Read by other programs, not by config/settings: sentry-sdk, boto3 (Amazon SES, an s3://
# backup target) and docker-compose.yml. .env.example may list them; README.md
# names them beside the tables, and they are not counted.
READ_BY_OTHERS = re.compile(r"AWS_[A-Z0-9_]+|BACKUP_AT|BRIEFING_VERSION|SENTRY_ENVIRONMENT")
TABLE_ROW = re.compile(r"^\| ((?:`[A-Z][A-Z0-9_]+`(?: / )?)+) \|", re.MULTILINE)


def reader_calls(tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in READERS
    ]


def operator_variables() -> set[str]:
    """Every variable config/settings reads, by the literal name it gives its reader."""
    names = set()
    for call in reader_calls(ast.parse(SETTINGS.read_text())):
        first = call.args[0] if call.args else None
        assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
            f"a reader without a literal variable name: {ast.unparse(call)}"
        )
        names.add(first.value)
    return names


def names_in_rows(text: str) -> set[str]:
    return {name for row in TABLE_ROW.findall(text) for name in re.findall(r"`(\w+)`", row)}


def readme_section(start: str, end: str) -> str:
    readme = README.read_text()
    begin = readme.index(start)
    return readme[begin : readme.index(end, begin + len(start))]


def advanced_group() -> tuple[str, set[str]]:
    """The source of the advanced group and the settings it assigns."""
    source = SETTINGS.read_text()
    group = source[source.index(ADVANCED_START) : source.index(ADVANCED_END)]
    assigned = set()
    for node in ast.parse(group).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        assigned |= {target.id for target in targets if isinstance(target, ast.Name)}
    return group, assigned


def test_every_variable_goes_through_a_typed_reader():
    tree = ast.parse(SETTINGS.read_text())
    # No way around the readers: the module does not even import os.
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [alias.name for alias in node.names] + [getattr(node, "module", "")]
            assert "os" not in modules, "config/settings reads the environment through config.env"
    assert reader_calls(tree)
    operator_variables()  # each read names its variable literally


def test_an_operator_sets_at_most_45_variables():
    variables = operator_variables()
    assert len(variables) <= MAXIMUM, (
        f"{len(variables)} variables (at most {MAXIMUM}): make the internal ones advanced "
        f"settings (README.md, Configuration): {sorted(variables)}"
    )
    assert len(variables) > 20  # the parse found them


def test_each_variable_is_in_the_readme_tables_and_only_those():
    documented = names_in_rows(readme_section(*README_VARIABLES))
    variables = operator_variables()
    assert variables - documented == set(), "read, but missing from README.md's tables"
    assert documented - variables == set(), "in README.md's tables, but not read"


def test_each_variable_is_in_the_example_env_and_only_those():
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    others = {name for name in listed if READ_BY_OTHERS.fullmatch(name)}
    variables = operator_variables()
    assert variables - listed == set(), "read, but missing from .env.example"
    assert listed - others - variables == set(), "in .env.example, but not read"
    configuration = readme_section(*README_VARIABLES)
    assert [name for name in others if f"`{name}`" not in configuration] == []


def test_the_advanced_settings_are_constants_documented_in_their_own_table():
    group, assigned = advanced_group()
    assert not reader_calls(ast.parse(group)), "the advanced group reads no variable"
    documented = names_in_rows(
        readme_section(README_VARIABLES[1], "\n## ")  # up to the next chapter
    )
    assert assigned - documented == set(), "advanced, but missing from README.md's table"
    assert documented - assigned == set(), "in README.md's advanced table, but not in the group"
    assert assigned & operator_variables() == set()


def test_variables_no_longer_read_are_neither_read_nor_documented_as_variables():
    retired = set(product_settings._retired)
    assert retired & operator_variables() == set()
    assert retired & names_in_rows(readme_section(*README_VARIABLES)) == set()
    example = ENV_EXAMPLE.read_text()
    assert [name for name in retired if re.search(rf"^#? ?{name}=", example, re.M)] == []


@pytest.mark.parametrize("name", ["REQUEST_MAX_BYTES", "DIGEST_LEASE_SECONDS", "BILLING_BACKEND"])
def test_an_advanced_setting_is_a_django_setting_all_the_same(settings, name):
    # The code reads settings.X exactly as when X came from the environment.
    assert hasattr(settings, name)
    assert getattr(settings, name) == getattr(product_settings, name)
