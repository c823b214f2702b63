"""The product does not need the demo: it never imports it, and with Stripe keys it is absent."""

import ast
from pathlib import Path

import pytest

from testing.commands import PRODUCTION, run_manage

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ["config", "newsletter", "subscriptions"]
IMPORTERS = {"import_module", "import_string", "__import__"}


def modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (lazy imports in functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) in IMPORTERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def is_demo(name: str) -> bool:
    return name == "demo_checkout" or name.startswith("demo_checkout.")


@pytest.mark.parametrize("package", PRODUCT)
def test_the_product_never_imports_the_demo(package):
    # Settings name its billing backend and config.urls includes its URLs, by
    # dotted path; no product module imports it, tests included.
    offenders = {
        str(path.relative_to(ROOT)): sorted(filter(is_demo, imported_modules(path)))
        for path in modules(package).values()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_stripe_adapter_never_imports_webhook_handling():
    ours = {
        name: path
        for package in [*PRODUCT, "demo_checkout"]
        for name, path in modules(package).items()
    }
    reached, todo = set(), ["subscriptions.stripe_api", "subscriptions.billing"]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        todo.extend(other for other in imported_modules(ours[name]) if other in ours)
    assert "subscriptions.webhooks" not in reached
    assert "subscriptions.actions" not in reached
    assert not any(map(is_demo, reached))


# What a fresh process with this environment has: is the app installed, what
# do its URLs answer, was any of it loaded, and which tables did migrate make.
PROBE = """
import sys
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client

call_command("migrate", verbosity=0)
client = Client(HTTP_HOST=HOST)
print("installed", apps.is_installed("demo_checkout"))
for url in ["/test-checkout/portal/", "/test-checkout/cs_test_local_x/"]:
    print("status", client.get(url, secure=True).status_code)
print("loaded", any(name.split(".")[0] == "demo_checkout" for name in sys.modules))
print("tables", sorted(t for t in connection.introspection.table_names() if "localstripe" in t))
"""


def probe(tmp_path, host: str, **environment: str) -> list[str]:
    script = f"HOST = {host!r}\n{PROBE}"
    # Empty is unset: whatever the calling shell exports does not count.
    environment = {"STRIPE_SECRET_KEY": "", "BILLING_BACKEND": "", **environment}
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        script,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **environment,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({**PRODUCTION, "STRIPE_SECRET_KEY": "sk_live_x"}, id="production"),
        pytest.param({"DJANGO_DEBUG": "1", "STRIPE_SECRET_KEY": "sk_test_x"}, id="debug"),
    ],
)
def test_with_a_stripe_key_the_test_checkout_does_not_exist(tmp_path, environment):
    host = "briefing.example.com" if environment.get("DJANGO_DEBUG") == "0" else "127.0.0.1"
    assert probe(tmp_path, host, **environment) == [
        "installed False",
        "status 404",
        "status 404",
        "loaded False",
        "tables []",
    ]


def test_in_the_keyless_demo_it_is_installed_and_routed(tmp_path):
    assert probe(tmp_path, "127.0.0.1", DJANGO_DEBUG="1") == [
        "installed True",
        "status 302",  # the portal: sign in first
        "status 404",  # no such test checkout
        "loaded True",
        "tables ['demo_checkout_localstripeobject']",
    ]


def test_settings_refuse_the_local_checkout_outside_the_keyless_demo():
    # Only the keys choose it; the environment cannot name it (BILLING_BACKEND
    # is an advanced setting, not a variable).
    result = run_manage(
        "check",
        **PRODUCTION,
        STRIPE_SECRET_KEY="sk_live_x",
        BILLING_BACKEND="demo_checkout.billing.LocalBilling",
    )
    assert result.returncode != 0
    assert "BILLING_BACKEND is no longer read from the environment" in result.stderr
