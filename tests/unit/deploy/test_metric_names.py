"""The Prometheus rules and the Grafana dashboard in ``deploy/`` use metric names the service
really exports (read from a live app's ``/metrics`` after some traffic); ``promtool`` checks
the rules and the scrape config when it is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SCRAPE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "trajops-dashboard.json"
METRIC = re.compile(r"\btrajops_[a-z0-9_]+\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def exported_names(exposition: str) -> set[str]:
    """Every series name the exposition can hold, including metrics without samples yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(f"{family.name}{s}" for s in SUFFIXES.get(family.type, ()))
        names.update(s.name for s in family.samples)
    return names


def test_deploy_files_use_exported_metric_names(client: httpx.Client) -> None:
    body = {"agents": [{"agent_id": "m", "positions": [[0.2 * i, 0.0] for i in range(8)]}]}
    assert client.post("/v1/predict", json=body).status_code == 200
    assert client.get("/v1/models", headers={"X-API-Key": ""}).status_code == 401
    client.get("/no/such/route")
    exposition = client.get("/metrics").text
    exported = exported_names(exposition)
    assert "trajops_http_requests_total" in exported, "the parser read the exposition"
    rules, panels = rule_exprs(), dashboard_exprs()
    assert len(rules) >= 8 and len(panels) >= 10
    used = {name for expr in rules + panels for name in METRIC.findall(expr)}
    missing = sorted(used - exported)
    assert not missing, f"deploy/ references metrics the service does not export: {missing}"
    for needed in ("trajops_log_spool_backlog_rows", "trajops_online_ade_meters_sum"):
        assert needed in used, f"{needed} is exported but no rule or panel uses it"
    assert 'route="/v1/predict"' in exposition, "the route label the latency rules filter on"


def test_promtool_accepts_rules_and_scrape_config(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not on PATH (apt-get install prometheus provides it)")
    rules = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout
    # The scrape config reads the API key from a file that exists only in a deployment.
    (tmp_path / "key").write_text("tjo_example")
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    config = SCRAPE.read_text().replace("/etc/prometheus/trajops_api_key", str(tmp_path / "key"))
    (tmp_path / "prometheus.yml").write_text(config)
    check = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
