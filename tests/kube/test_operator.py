"""The operator's handlers with real runs and a real store, called as kopf calls them.

Not covered here: kopf's own machinery against an API server (kmock's emulator discovered
the resources but kopf never started watching them in this environment; see the issue's
closing note). The handlers' logic is what these tests check.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kopf
import pytest

from reconciler.assembly import open_runtime
from reconciler.operator.handlers import RUN_NOW, Operator
from reconciler.settings import Settings


class Patch(dict):
    """What kopf hands a handler as `patch`: `patch.status` is a dict that gets merged."""

    @property
    def status(self) -> dict[str, Any]:
        return self.setdefault("status", {})


def agent(root: Path, **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig",
            "metadata": {"name": "team", "namespace": "ns1", "generation": 3, "annotations": annotations},
            "spec": {"mcpServers": {"github": {"command": "npx"}},
                     "targets": [{"client": "claude-code", "scope": "project", "root": str(root)}]}}


def job(suspend: bool = False) -> dict[str, Any]:
    return {"apiVersion": "reconciler.dev/v1alpha1", "kind": "SyncJob",
            "metadata": {"name": "team-job", "namespace": "ns1", "generation": 1},
            "spec": {"targetRef": {"kind": "AgentConfig", "name": "team"}, "interval": "1m",
                     "suspend": suspend}}


@pytest.fixture
def operator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Operator:
    monkeypatch.setattr(kopf, "info", lambda *a, **k: None)
    monkeypatch.setattr(kopf, "warn", lambda *a, **k: None)
    runtime = open_runtime(Settings(state_dir=tmp_path / "state"))
    return Operator(runtime, kopf.OperatorRegistry(), tick_seconds=1)


def test_create_runs_and_patches_conditions(operator: Operator, tmp_path: Path) -> None:
    patch = Patch()
    asyncio.run(operator.reconcile(body=agent(tmp_path / "p"), patch=patch))
    status = patch.status
    assert (tmp_path / "p" / ".mcp.json").exists()
    ready = [c for c in status["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True" and ready[0]["observedGeneration"] == 3
    assert status["observedGeneration"] == 3 and status["lastResult"]["outcome"] == "succeeded"
    assert status["lastResult"]["trigger"] == "spec"
    assert not [c for c in status["conditions"] if c["type"] == "Reconciling"]


def test_annotation_runs_once_per_token(operator: Operator, tmp_path: Path) -> None:
    body = agent(tmp_path / "p", **{RUN_NOW: "1700000000"})
    patch = Patch()
    asyncio.run(operator.run_now(body=body, new="1700000000", patch=patch))
    assert patch.status["lastHandledRunRequest"] == "1700000000"
    runs = operator.runtime.store.runs(limit=10)
    assert [r.trigger for r in runs] == ["annotation"]
    body["status"] = patch.status
    again = Patch()
    asyncio.run(operator.run_now(body=body, new="1700000000", patch=again))
    assert again.status == {} and len(operator.runtime.store.runs(limit=10)) == 1


def test_suspended_object_refuses_the_annotation(operator: Operator, tmp_path: Path) -> None:
    asyncio.run(operator.track_job(body=job(suspend=True)))
    patch = Patch()
    asyncio.run(operator.run_now(body=agent(tmp_path / "p"), new="42", patch=patch))
    assert patch.status["lastHandledRunRequest"] == "42"
    refused = [c for c in patch.status["conditions"] if c["type"] == "RunRequestRefused"]
    assert refused and refused[0]["reason"] == "Suspended"
    assert operator.runtime.store.runs(limit=10) == []
    allowed = agent(tmp_path / "p", **{"reconciler.dev/run-even-if-suspended": "true"})
    patch = Patch()
    asyncio.run(operator.run_now(body=allowed, new="43", patch=patch))
    assert patch.status["lastResult"]["outcome"] == "succeeded"


def test_syncjob_timer_runs_the_target_when_due_and_fills_printer_columns(operator: Operator,
                                                                          tmp_path: Path) -> None:
    asyncio.run(operator.reconcile(body=agent(tmp_path / "p"), patch=Patch()))
    patch = Patch()
    asyncio.run(operator.tick(body=job(), patch=patch))
    triggers = [r.trigger for r in operator.runtime.store.runs(limit=10)]
    assert triggers.count("schedule") == 1
    status = patch.status
    assert status["nextRunTime"] and status["lastScheduleTime"] and status["lastResult"]["outcome"]
    from reconciler.artifacts.crds import render_crds

    crd = render_crds()["syncjobs.reconciler.dev.yaml"]
    for path in ("lastRunTime", "lastResult.outcome", "nextRunTime"):
        assert f".status.{path}" in crd
        value: Any = status
        for part in path.split("."):
            value = value[part]
        assert value
    second = Patch()
    asyncio.run(operator.tick(body=job(), patch=second))  # not due again within the minute
    assert [r.trigger for r in operator.runtime.store.runs(limit=10)].count("schedule") == 1
