"""deploy/'s alert rules and Grafana dashboard: valid, and about series /metrics serves.

promtool (Debian's prometheus package, installed when missing) checks the
rules, runs their scenarios (deploy/prometheus-alerts.test.yml) and parses
every query of the dashboard.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from subscriptions.models import StripeEvent
from testing.clock import MONDAY_BEFORE_SEND
from testing.prometheus import PromtoolUnavailable, ensure_promtool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus-alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
TOKEN = "test-metrics-token-4kQ8Zr2mXv1Ab"
# Alerts the operators' documentation promises (docs/operations.md).
EXPECTED_ALERTS = {
    "BriefingMorningNotFinished",
    "BriefingDigestsMissed",
    "BriefingBeatSilent",
    "BriefingBeatNeverRecorded",
    "BriefingHardBounceRateHigh",
    "BriefingComplaintRateHigh",
    "BriefingQueueGrowing",
    "BriefingBrokerBacklogGrowing",
    "BriefingStripeEventsFailing",
    "BriefingWebhooksBehind",
    "BriefingMetricsDown",
}
SERIES = re.compile(r"\bbriefing_[a-z0-9_]+")


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    try:
        binary = ensure_promtool()
    except PromtoolUnavailable as reason:
        pytest.skip(str(reason))
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture
def served(client, settings) -> set[str]:
    """Every series name a scrape serves, with a Stripe event so its lag is there too."""
    settings.METRICS_TOKEN = TOKEN
    StripeEvent.objects.create(
        event_id="evt_served", type="charge.succeeded", payload={},
        stripe_created_at=MONDAY_BEFORE_SEND,
    )  # fmt: skip
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        names.update(sample.name for sample in family.samples)
    return names


def test_the_alert_rules_are_yaml_with_the_expected_alerts():
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == EXPECTED_ALERTS
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in {"page", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


@pytest.mark.django_db
def test_every_series_the_rules_and_the_dashboard_use_is_served(served):
    used = {
        name
        for expr in [rule["expr"] for rule in alert_rules()] + dashboard_queries()
        for name in SERIES.findall(expr)
    }
    assert len(used) > 15
    assert used - served == set()


@pytest.mark.django_db
def test_every_series_served_and_every_alert_is_documented(served):
    docs = (ROOT / "docs" / "operations.md").read_text()
    section = docs.split("## Metrics and alerts", 1)[1]
    series = {name for name in served if not name.endswith(("_created",))}
    undocumented = {name for name in series if not re.search(rf"`{name}[`{{]", section)}
    # A counter is documented by its samples' name (_total), not the family's.
    undocumented -= {name for name in undocumented if f"{name}_total" in series}
    assert undocumented == set()
    assert {alert for alert in EXPECTED_ALERTS if f"`{alert}`" not in section} == set()


def test_promtool_accepts_the_rules_and_their_scenarios_pass():
    checked = promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in checked.stdout

    tested = promtool("test", "rules", RULE_TESTS.name, cwd=RULES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_promtool_refuses_a_broken_rule(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("> 300", "> > 300"))
    result = promtool("check", "rules", broken.name, cwd=tmp_path)
    assert result.returncode != 0


def test_the_dashboard_is_json_whose_every_query_is_promql(tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    queries = dashboard_queries()
    assert len(queries) > 15
    # Each query as a recording rule: promtool parses every expression it checks.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": expr}
                    for n, expr in enumerate(queries)
                ],
            }
        ]
    }
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", "dashboard.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
