"""The HTTP API in process: auth and roles, forced runs, suspend, schedules, runs, health."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reconciler.access import Role, TokenTable
from reconciler.api.app import create_app
from reconciler.assembly import open_runtime
from reconciler.loading import load_specs
from reconciler.runtime.control import Controller
from reconciler.settings import Settings

ADMIN, VIEWER = "admin-token-123456", "viewer-token-654321"
SPECS = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {{name: team}}
spec:
  mcpServers:
    github: {{command: npx, args: ["-y", "gh"]}}
  targets: [{{client: claude-code, scope: project, root: "{root}"}}]
---
apiVersion: reconciler.dev/v1alpha1
kind: SyncJob
metadata: {{name: team-every-5m}}
spec:
  targetRef: {{kind: AgentConfig, name: team}}
  interval: 5m
"""


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Controller]]:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "agents.yaml").write_text(SPECS.format(root=tmp_path / "project"))
    runtime = open_runtime(Settings(state_dir=tmp_path / "state"))
    controller = Controller(runtime, load_specs(tmp_path / "specs"))
    tokens = TokenTable()
    tokens.add(ADMIN, Role.ADMIN)
    tokens.add(VIEWER, Role.VIEWER)
    app = create_app(controller, tokens=tokens, webhook_secret="hook-secret", on_push=lambda: None)
    with TestClient(app) as test_client:
        yield test_client, controller
    runtime.close()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for_run(controller: Controller, trigger: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [r for r in controller.store.runs(limit=20) if r.trigger == trigger]
        if runs and runs[0].outcome != "running":
            return runs[0].model_dump()
        time.sleep(0.05)
    raise AssertionError(f"no finished {trigger} run")


def test_tokens_and_roles(client: tuple[TestClient, Controller]) -> None:
    http, _ = client
    assert http.get("/healthz").status_code == 200
    assert http.get("/api/v1/objects").status_code == 401
    assert http.get("/api/v1/objects", headers=auth("wrong")).status_code == 401
    listed = http.get("/api/v1/objects", headers=auth(VIEWER))
    assert listed.status_code == 200
    assert {o["object"] for o in listed.json()} == {"AgentConfig/team", "SyncJob/team-every-5m"}
    refused = http.post("/api/v1/objects/AgentConfig/team/run", headers=auth(VIEWER))
    assert refused.status_code == 403
    assert http.post("/api/v1/objects/AgentConfig/team/suspend").status_code == 401


def test_forced_run_is_recorded_with_its_trigger_and_audited(client: tuple[TestClient, Controller],
                                                             tmp_path: Path) -> None:
    http, controller = client
    response = http.post("/api/v1/objects/AgentConfig/team/run", headers=auth(ADMIN))
    assert response.status_code == 202, response.text
    run = wait_for_run(controller, "api")
    assert run["outcome"] == "succeeded"
    assert (tmp_path / "project" / ".mcp.json").exists()
    detail = http.get(f"/api/v1/runs/{run['id']}", headers=auth(VIEWER)).json()
    assert detail["run"]["trigger"] == "api" and detail["changes"]
    history = http.get("/api/v1/objects/AgentConfig/team/history", headers=auth(VIEWER)).json()
    assert history[0]["id"] == run["id"]
    with controller.store.engine.connect() as conn:
        from sqlalchemy import select

        from reconciler.store import tables as t

        audit = conn.execute(select(t.audit)).fetchall()
    assert any(a.action == "run" and a.actor.startswith("admin:") and ADMIN not in a.actor for a in audit)
    assert http.get("/api/v1/objects/AgentConfig/nope", headers=auth(VIEWER)).status_code == 404


def test_suspend_refuses_runs_unless_asked(client: tuple[TestClient, Controller]) -> None:
    http, controller = client
    assert http.post("/api/v1/objects/SyncJob/team-every-5m/suspend", headers=auth(ADMIN)).status_code == 200
    status = http.get("/api/v1/objects/SyncJob/team-every-5m", headers=auth(VIEWER)).json()
    assert status["suspended"] is True
    refused = http.post("/api/v1/objects/SyncJob/team-every-5m/run", headers=auth(ADMIN))
    assert refused.status_code == 409 and "suspended" in refused.json()["detail"]
    forced = http.post("/api/v1/objects/SyncJob/team-every-5m/run", headers=auth(ADMIN),
                       json={"evenIfSuspended": True})
    assert forced.status_code == 202
    wait_for_run(controller, "api")
    assert http.post("/api/v1/objects/SyncJob/team-every-5m/resume", headers=auth(ADMIN)).status_code == 200
    assert http.get("/api/v1/objects/SyncJob/team-every-5m",
                    headers=auth(VIEWER)).json()["suspended"] is False


def test_schedule_override_put_get_delete(client: tuple[TestClient, Controller]) -> None:
    http, _ = client
    path = "/api/v1/objects/SyncJob/team-every-5m/schedule"
    assert http.get(path, headers=auth(VIEWER)).json()["override"] is None
    bad = http.put(path, headers=auth(ADMIN), json={"schedule": "not a cron"})
    assert bad.status_code == 422
    put = http.put(path, headers=auth(ADMIN), json={"schedule": "0 4 * * *", "timeZone": "Asia/Seoul"})
    assert put.status_code == 200, put.text
    assert put.json()["override"] == {"schedule": "0 4 * * *", "timeZone": "Asia/Seoul"}
    assert http.delete(path, headers=auth(ADMIN)).json()["override"] is None
    assert http.put(path, headers=auth(VIEWER), json={"interval": "1m"}).status_code == 403


def test_health_metrics_export_and_webhook(client: tuple[TestClient, Controller]) -> None:
    http, controller = client
    assert http.get("/readyz").json()["ready"] is True
    http.post("/api/v1/objects/AgentConfig/team/run", headers=auth(ADMIN))
    wait_for_run(controller, "api")
    metrics = http.get("/metrics").text
    assert 'reconciler_runs_total{kind="AgentConfig",name="team",namespace="default",outcome="succeeded"}' \
        in metrics
    csv_text = http.get("/api/v1/export?format=csv", headers=auth(VIEWER)).text
    assert csv_text.startswith("run_id,kind,namespace,name") and "AgentConfig" in csv_text
    body = b'{"ref": "refs/heads/main"}'
    signature = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert http.post("/api/v1/webhooks/git", content=body,
                     headers={"X-Hub-Signature-256": "sha256=00"}).status_code == 401
    assert http.post("/api/v1/webhooks/git", content=body,
                     headers={"X-Hub-Signature-256": signature}).status_code == 202
    assert http.post("/api/v1/webhooks/git", content=body,
                     headers={"X-Gitlab-Token": "hook-secret"}).status_code == 202
    assert "/api/v1/objects/{kind}/{name}/run" in http.get("/openapi.json").json()["paths"]


def test_events_over_websocket_and_logs(client: tuple[TestClient, Controller]) -> None:
    from reconciler.engine.events import Event, EventType
    from reconciler.models import ObjectRef

    http, controller = client
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), http.websocket_connect("/ws/events?token=wrong") as ws:
        ws.receive_json()
    with http.websocket_connect(f"/ws/events?token={VIEWER}") as ws:
        target = ObjectRef("AgentConfig", "default", "team")
        controller.runtime.bus.publish(Event(EventType.GUARD_TRIPPED, target, "r1", "GuardTripped",
                                             "maxDeletes", {"outcome": "aborted"}))
        message = ws.receive_json()
    assert message["type"] == "GuardTripped" and message["name"] == "team" and message["runId"] == "r1"
    assert http.get("/api/v1/logs?level=info", headers=auth(VIEWER)).status_code == 200
    assert http.get("/api/v1/logs").status_code == 401
