"""The shipped Prometheus rules and Grafana dashboard against what the reconciler exports.

Every expression of deploy/prometheus/reconciler-rules.yaml and of the chart's dashboard must
name metrics that a real `reconciler serve` process exports on /metrics after real runs (a
renamed metric would otherwise leave an alert that never fires). With `promtool` on PATH
(Debian's `prometheus` package) the rules are also checked and their unit tests run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from .test_serve_process import Daemon, kv_spec, poll, serve, specs_dir  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "reconciler-rules.yaml"
DASHBOARD = REPO / "charts" / "reconciler" / "files" / "grafana-dashboard.json"
_SUFFIXES = ("_bucket", "_count", "_sum")


def rule_exprs() -> list[str]:
    groups = YAML(typ="safe", pure=True).load(RULES.read_text(encoding="utf-8"))["groups"]
    return [r["expr"] for g in groups for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def referenced(exprs: list[str]) -> set[str]:
    names = set()
    for expr in exprs:
        for name in re.findall(r"\breconciler_[a-z0-9_]+", expr):
            for suffix in _SUFFIXES:
                if name.endswith(suffix) and name != "reconciler_records_total":
                    name = name.removesuffix(suffix)
            names.add(name)
    return names


def exported(text: str) -> dict[str, bool]:
    """Family name -> whether it has samples, from the Prometheus text format."""
    families = {m: False for m in re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)}
    for sample in re.findall(r"^([a-z_:][a-z0-9_:]*)[{ ]", text, re.MULTILINE):
        base = sample
        for suffix in _SUFFIXES:
            if sample.endswith(suffix) and sample.removesuffix(suffix) in families:
                base = sample.removesuffix(suffix)
        families[base] = True
    return families


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool not on PATH (apt-get install prometheus)")
def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    check = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run(["promtool", "test", "rules", "reconciler-rules.test.yaml"], cwd=RULES.parent,
                          capture_output=True, text=True)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_every_rule_and_panel_names_a_metric_a_real_serve_exports(
        serve: Callable[..., Daemon], tmp_path: Path) -> None:  # noqa: F811 (the fixture)
    good, broken = tmp_path / "good.json", tmp_path / "broken.json"
    text = kv_spec("good", good, {"a": "1"}) + "---\n" + kv_spec("broken", broken, {"a": "1"},
                                                                  fail_on="observe")
    daemon = serve("--specs", str(specs_dir(tmp_path, text)))

    def scraped() -> Any:
        body = daemon.get("/metrics").text
        done = ('reconciler_runs_total{kind="KeyValueStore",name="good",namespace="default",'
                'outcome="succeeded"} 1.0' in body and 'type="driver"' in body)
        return body if done else None

    families = exported(poll(scraped, what="both start-up runs on /metrics"))
    wanted = referenced(rule_exprs()) | referenced(dashboard_exprs())
    assert len(wanted) >= 10
    missing = sorted(n for n in wanted if n not in families)
    assert missing == [], f"rules or dashboard name metrics the app does not export: {missing}"
    # Only the gauges of states these runs did not reach (a guard, a run in progress) have
    # no samples yet; everything else the rules read has real values.
    empty = sorted(n for n in wanted if not families[n])
    assert empty == ["reconciler_guard_tripped", "reconciler_run_started_timestamp_seconds"], empty
