"""deploy/prometheus/alerts.yml passes promtool, and its rules and deploy/grafana/'s dashboards name only metrics that
/metrics exports."""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from core import replica
from tasks.console import metrics as figures

PROJECT = Path(__file__).resolve().parents[2]
ALERTS = PROJECT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = PROJECT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARDS = sorted((PROJECT / "deploy" / "grafana").glob("*.json"))
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    found = {}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                found[f"{path.name}: {panel['title']} ({target['refId']})"] = target["expr"]
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                found[f"{path.name}: ${variable['name']}"] = variable["definition"]
    return found


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads: what is left once strings, label matchers, ranges, grouping
    clauses, function calls, keywords and numbers are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expression)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\boffset\s+\w+", "", text)
    text = re.sub(r"\blabel_values\(\s*(\w+)\s*,\s*\w+\s*\)", r"\1", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match.group() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


@pytest.fixture
def scraped(client, make_task, caseworker_alice, api_as, monkeypatch):
    """Sample names of a /metrics scrape after requests were served (latency histogram, a claim among them), with a
    read replica configured and a standby streaming from the primary (their gauges are exported only then)."""
    figures.forget_settled_counts()
    read_gauges = figures.database_gauges

    def with_a_standby():
        gauges = read_gauges()
        gauges.replication_lag = [("standby1", "10.0.0.2", 0.5)]
        return gauges

    monkeypatch.setattr(figures, "database_gauges", with_a_standby)
    make_task("intake", "Waiting")
    assert api_as(caseworker_alice).post("/api/workflow/tasks/claim/next").status_code == 200
    monkeypatch.setattr(replica, "replica_configured", lambda: True)
    # Lagging past its limit, so that no read goes to it (there is no replica connection here).
    state = replica.ReplicaState(
        up=True, lag_seconds=120.0, replayed_position=1, problem="120 s behind", checked_at=time.monotonic()
    )
    monkeypatch.setattr(replica, "replica_state", lambda: state)
    response = client.get("/metrics")
    assert response.status_code == 200
    families = list(text_string_to_metric_families(response.content.decode()))
    figures.forget_settled_counts()
    return [sample for family in families for sample in family.samples]


def test_promtool_accepts_the_alert_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)")

    checked = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_expressions())} rules found" in checked.stdout


def test_the_database_alerts_pass_their_promtool_unit_tests():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)")

    tested = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        cwd=ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_alerts_cover_sla_capacity_claim_errors_and_the_replica():
    expressions = alert_expressions()
    named = set().union(*(metric_names(e) for e in expressions.values()))

    assert {
        "workflow_queue_overdue_tasks",
        "workflow_queue_load_ratio",
        "http_request_duration_seconds_count",
        "workflow_replica_lag_seconds",
        "workflow_db_slow_statements",
        "workflow_db_replication_lag_seconds",
        "workflow_db_longest_lock_wait_seconds",
        "workflow_db_deadlocks_total",
    } <= named
    assert "> 0.9" in expressions["WorkflowQueueNearCapacity"]  # the design's capacity alert: 90 %


@pytest.mark.django_db
def test_every_metric_an_alert_or_dashboard_names_is_exported(scraped):
    expressions = {**alert_expressions(), **dashboard_expressions()}
    assert len(DASHBOARDS) == 4 and expressions

    exported = {sample.name for sample in scraped}
    assert "workflow_replica_lag_seconds" in exported and "http_request_duration_seconds_bucket" in exported
    assert "workflow_db_replication_lag_seconds" in exported and "workflow_db_slow_statements" in exported

    missing = {
        where: sorted(metric_names(expression) - exported)
        for where, expression in expressions.items()
        if metric_names(expression) - exported
    }

    assert not missing, missing


@pytest.mark.django_db
def test_the_claim_alert_matches_the_claim_route_as_exported(scraped):
    routes = {s.labels["route"] for s in scraped if s.name == "http_request_duration_seconds_count"}
    claim_pattern = re.search(r'route=~"([^"]+)"', alert_expressions()["WorkflowClaimErrors"]).group(1)

    assert any(re.fullmatch(claim_pattern, route) and "claim/next" in route for route in routes), routes


def test_metric_names_are_read_out_of_promql():
    expression = (
        'histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{route=~"x"}[5m])))'
        " > 1 and workflow_queue_load_ratio offset 1h"
    )

    assert metric_names(expression) == {"http_request_duration_seconds_bucket", "workflow_queue_load_ratio"}
