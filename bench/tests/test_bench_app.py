"""The benchmark is an app of its own: installed by bench.settings, never by the product."""

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from bench.management.commands.bench_pages import latency_ms
from testing.commands import PRODUCTION, run_manage

ROOT = Path(settings.BASE_DIR)
PRODUCT_PACKAGES = ["config", "newsletter", "subscriptions"]
BENCH_COMMANDS = ["bench_digest", "bench_pages", "bench_report"]


def test_the_product_lists_no_bench_command():
    result = run_manage("help", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "send_digest" in result.stdout
    for command in BENCH_COMMANDS:
        assert command not in result.stdout


def test_the_bench_settings_add_the_bench_commands():
    result = run_manage("help", **PRODUCTION, DJANGO_SETTINGS_MODULE="bench.settings")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "send_digest" in result.stdout
    for command in BENCH_COMMANDS:
        assert command in result.stdout


def imported_modules(path: Path) -> list[str]:
    modules: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
    return modules


def test_no_product_module_imports_bench():
    sources = [path for package in PRODUCT_PACKAGES for path in (ROOT / package).rglob("*.py")]
    assert len(sources) > 50  # the walk found the product
    offenders = [
        f"{path.relative_to(ROOT)}: import {module}"
        for path in sources
        for module in imported_modules(path)
        if module == "bench" or module.startswith("bench.")
    ]
    assert offenders == []


def test_the_product_settings_do_not_install_bench():
    assert "bench" not in settings.INSTALLED_APPS
    assert settings.ROOT_URLCONF == "config.urls"


@pytest.mark.django_db
def test_the_page_bench_urls_are_the_site_plus_a_trivial_view(client):
    with override_settings(ROOT_URLCONF="bench.urls"):
        trivial = client.get("/bench/trivial/")
        healthz = client.get("/healthz")
    assert trivial.status_code == 200
    assert trivial.content == b"ok"
    assert healthz.status_code == 200
    assert client.get("/bench/trivial/").status_code == 404  # not a URL of the product


def test_wrk_latencies_are_read_in_milliseconds():
    output = "  Latency Distribution\n     50%  812.00us\n     75%    1.20ms\n     99%    1.50s\n"
    assert latency_ms(output, "50%") == 0.81
    assert latency_ms(output, "75%") == 1.2
    assert latency_ms(output, "99%") == 1500
