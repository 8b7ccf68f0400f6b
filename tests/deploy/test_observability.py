"""deploy/prometheus, deploy/grafana and deploy/filebeat: checked with promtool and amtool (Debian's
prometheus and prometheus-alertmanager, installed by `make install`), and against the metrics and log
fields the app really writes."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kefu.obs.logs import build_formatter
from kefu.obs.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
ALERTS = (
    "KefuTurnLatencyHigh",
    "KefuErrorRateHigh",
    "KefuLlmCircuitOpen",
    "KefuHandoffWaitHigh",
    "KefuKafkaLagGrowing",
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian package {package}; `make install` installs it)")
    return found


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# --- the metric names a PromQL expression reads, and those the app exposes ---

_NOT_METRICS = {"bool", "offset", "and", "or", "unless", "inf", "nan"}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects (functions, grouping labels, strings, label matchers,
    ranges, numbers and Grafana variables left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = _GROUPING.sub(" ", expr)
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    found = re.findall(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", expr)
    return {name for name, call in found if not call and name.lower() not in _NOT_METRICS}


def exposed_names() -> set[str]:
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def test_metric_names_are_read_out_of_promql() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (job, le) (rate(kefu_turn_duration_seconds_bucket{stage="total"}[5m])))'
        ' > 1.5 and on(job) max without (instance) (up{job=~"kefu.*"}) * $price / 1e6 or vector(0)'
    )
    assert metric_names(expr) == {"kefu_turn_duration_seconds_bucket", "up"}


# --- alerts ---


def _rules() -> list[dict[str, Any]]:
    return [rule for group in _yaml(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    promtool = _tool("promtool", "prometheus")
    checked = _run(promtool, "check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in checked.stdout


def test_promtool_unit_tests_fire_and_hold_every_alert() -> None:
    promtool = _tool("promtool", "prometheus")
    tested = _run(promtool, "test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Each alert is shown both firing and not firing (an evaluation that expects nothing).
    cases = [case for test in _yaml(PROMETHEUS / "alerts_test.yml")["tests"] for case in test["alert_rule_test"]]
    for alert in ALERTS:
        mine = [case for case in cases if case["alertname"] == alert]
        assert any(case["exp_alerts"] for case in mine), f"{alert}: no case where it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{alert}: no case where it holds back"


def test_alerts_have_severity_and_both_languages() -> None:
    rules = _rules()
    assert sorted(r["alert"] for r in rules) == sorted(ALERTS)
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        notes = rule["annotations"]
        assert set(notes) == {"summary", "summary_zh", "description", "description_zh"}, rule["alert"]
        assert CJK.search(notes["summary_zh"]) and CJK.search(notes["description_zh"]), rule["alert"]
        assert not CJK.search(notes["summary"] + notes["description"]), rule["alert"]
        assert metric_names(rule["expr"]) <= exposed_names(), rule["alert"]
    latency = next(r for r in rules if r["alert"] == "KefuTurnLatencyHigh")
    assert 'stage="total"' in latency["expr"] and "> 1.5" in latency["expr"] and latency["for"] == "5m"


def test_prometheus_config_and_alertmanager() -> None:
    promtool = _tool("promtool", "prometheus")
    checked = _run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = _yaml(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    scraped = {(name, sd["port"]) for job in ("kefu-api", "kefu-worker") for sd in jobs[job]["dns_sd_configs"]
               for name in sd["names"]}  # fmt: skip
    assert scraped == {("kefu", 8000), ("kefu-worker", 8001)}
    compose = DEPLOY / "compose" / "compose.yaml"
    if compose.exists():  # the names are the compose file's services
        assert {name for name, _ in scraped} <= set(_yaml(compose)["services"])
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is not installed (Debian package prometheus-alertmanager)")
    checked = _run(amtool, "check-config", str(PROMETHEUS / "alertmanager.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- Grafana ---


def _panels() -> list[dict[str, Any]]:
    board = json.loads((GRAFANA / "dashboards" / "kefu.json").read_text(encoding="utf-8"))
    return [p for p in board["panels"] if p["type"] != "row"]


def test_dashboard_reads_only_what_the_app_exposes() -> None:
    board = json.loads((GRAFANA / "dashboards" / "kefu.json").read_text(encoding="utf-8"))
    [source] = _yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    exposed = exposed_names() | {"process_cpu_seconds_total", "process_resident_memory_bytes"}
    exprs = []
    for panel in _panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"], panel["title"]
            names = metric_names(target["expr"])
            assert names and names <= exposed, (panel["title"], names - exposed)
            exprs.append(target["expr"])
    variables = {v["name"]: v for v in board["templating"]["list"]}
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == source["uid"]
            metric = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["query"]["query"])
            assert metric is not None and metric[1] in exposed, variable["name"]
    used = " ".join(exprs)
    for name in variables:
        assert f"${name}" in used, f"variable {name} is used by no panel"
    # What the dashboard is for: each of these is read by some panel.
    for needed in (
        "kefu_turns_total", "kefu_turn_duration_seconds_bucket", "kefu_intents_total", "kefu_fallbacks_total",
        "kefu_abstentions_total", "kefu_handoffs_total", "kefu_handoff_queue_length",
        "kefu_handoff_wait_seconds_bucket",
        "kefu_csat_score_sum", "kefu_guard_actions_total", "kefu_pii_detected_total", "kefu_llm_tokens_total",
        "kefu_llm_first_token_seconds_bucket", "kefu_llm_circuit_state", "kefu_kafka_consumer_lag",
        "kefu_inflight_requests", "kefu_http_requests_total",
    ):  # fmt: skip
        assert needed in used, needed
    for quantile in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (stage, le)" in used
    cost = next(p for p in _panels() if "$price_prompt" in p["targets"][0]["expr"])
    assert "kefu_llm_tokens_total" in cost["targets"][0]["expr"]
    by_variant = [p for p in _panels() if any("by (variant" in t["expr"] for t in p["targets"])]
    assert {
        "kefu_llm_calls_total",
        "kefu_llm_first_token_seconds_bucket",
        "kefu_llm_tokens_total",
        "kefu_csat_score_sum",
    } <= {n for p in by_variant for t in p["targets"] for n in metric_names(t["expr"])}


def test_dashboard_layout_and_provisioning() -> None:
    board = json.loads((GRAFANA / "dashboards" / "kefu.json").read_text(encoding="utf-8"))
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
    occupied: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells
    [provider] = _yaml(GRAFANA / "provisioning" / "dashboards" / "kefu.yml")["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/dashboards"
    compose = DEPLOY / "compose" / "compose.yaml"
    if compose.exists():  # the compose file mounts the dashboard where the provider looks
        volumes = _yaml(compose)["services"]["grafana"]["volumes"]
        assert "../grafana/dashboards/kefu.json:/etc/grafana/dashboards/kefu.json:ro" in volumes


# --- Filebeat ---


def test_filebeat_ships_kefu_json_lines_to_elasticsearch() -> None:
    config = _yaml(DEPLOY / "filebeat" / "filebeat.yml")
    [provider] = config["filebeat.autodiscover"]["providers"]
    assert provider["type"] == "docker"
    [template] = provider["templates"]
    services = {c["equals"]["docker.container.labels.com_docker_compose_service"] for c in template["condition"]["or"]}
    assert services == {"kefu", "kefu-worker"}
    [stream] = template["config"]
    assert stream["type"] == "filestream" and stream["id"]
    parsers = [next(iter(p)) for p in stream["parsers"]]
    assert parsers == ["container", "ndjson"]  # Docker's wrapper first, then kefu's line
    ndjson = stream["parsers"][1]["ndjson"]
    assert ndjson["target"] == "" and ndjson["add_error_key"] is True

    output = config["output.elasticsearch"]
    assert output["hosts"] and output["index"] == "kefu-logs"
    assert re.fullmatch(config["setup.template.pattern"].replace("*", ".*"), output["index"])
    assert config["setup.template.name"] == "kefu-logs" and config["setup.ilm.policy_name"] == "kefu-logs"

    # The fields the processors read are the ones kefu's log lines have.
    processors = {next(iter(p)): next(iter(p.values())) for p in config["processors"]}
    renamed = {r["from"] for r in processors["rename"]["fields"]}
    stream_out = io.StringIO()
    handler = logging.StreamHandler(stream_out)
    handler.setFormatter(build_formatter())
    logger = logging.getLogger("kefu.test.filebeat")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.warning("turn", extra={"conversation_id": "c-1"})
    logger.handlers.clear()
    line = json.loads(stream_out.getvalue())
    assert processors["timestamp"]["field"] in line and renamed <= set(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", line["ts"]), line["ts"]
