"""`reconciler serve` as a real process, with real clients: WebSocket, SSE, SIGTERM, health.

Issue 15, findings 7, 8, 9 and 14. Every daemon here is `python -m reconciler.cli serve`
started with subprocess, talked to over loopback with httpx, the `websockets` client and
aiomqtt. The test driver (`kvstore_driver`, a plugin) can hold an apply for as long as a
spec says (`applyDelaySeconds`): a very long delay is an apply that never ends by itself,
so the only way such a daemon exits is its grace period running out. No assertion here
is about how long anything took; waits poll a condition with a generous deadline.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import git
import httpx
import pytest

from reconciler.store import Store

REPO = Path(__file__).resolve().parents[2]
ADMIN, VIEWER = "process-admin-token-1", "process-viewer-token-1"
FOREVER = 1_000_000  # seconds: an apply that only a cancellation ends


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kv_spec(name: str, target: Path, data: dict[str, str], *, delay: float = 0.0,
            fail_on: str | None = None) -> str:
    lines = ["apiVersion: reconciler.dev/v1alpha1", "kind: KeyValueStore", f"metadata: {{name: {name}}}",
             "spec:", f"  file: {target}", f"  data: {json.dumps(data)}"]
    if delay:
        lines.append(f"  applyDelaySeconds: {delay}")
    if fail_on:
        lines.append(f"  failOn: {fail_on}")
    return "\n".join(lines) + "\n"


def poll(predicate: Callable[[], Any], *, timeout: float = 60.0, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    """One `reconciler serve` process; its output goes to a file (a pipe nobody reads fills)."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.state = tmp_path / "state"
        self.log_path = tmp_path / f"serve-{self.port}.log"
        full_env = {**os.environ, "RECONCILER_STATE_DIR": str(self.state), "ADMIN_T": ADMIN,
                    "VIEWER_T": VIEWER, "RECONCILER_PLUGINS": "kvstore_driver",
                    "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
        for name in ("RECONCILER_DATABASE_URL", "RECONCILER_REDIS_URL", "RECONCILER_MQTT_HOST",
                     "RECONCILER_ALERT_WEBHOOK_URL"):
            full_env.pop(name, None)
        full_env.update(env or {})
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "serve", *args, "--port", str(self.port),
             "--admin-token-env", "ADMIN_T", "--viewer-token-env", "VIEWER_T"],
            env=full_env, stdout=self._log, stderr=subprocess.STDOUT, cwd=tmp_path)

    def up(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str, token: str = VIEWER) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def runs(self) -> list[Any]:
        store = Store.open(f"sqlite:///{self.state / 'reconciler.db'}")
        try:
            return list(store.runs(limit=100))
        finally:
            store.close()

    def exited(self, timeout: float = 90.0) -> int:
        """The exit code; fails the test if the process is still alive after `timeout`."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon is still running; its log:\n{self.log()}") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Daemon:
        daemon = Daemon(tmp_path, *args, env=env)
        started.append(daemon)
        poll(lambda: daemon.up() or daemon.proc.poll() is not None, what="the API")
        assert daemon.proc.poll() is None, daemon.log()
        return daemon

    yield start
    for daemon in started:
        daemon.close()


def specs_dir(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir(exist_ok=True)
    (folder / "kv.yaml").write_text(text)
    return folder


# --- finding 7: the WebSocket on a README install ------------------------------------------------


def test_the_package_declares_a_websocket_library_for_uvicorn() -> None:
    requires = importlib.metadata.requires("reconciler") or []
    plain = [r for r in requires if "extra ==" not in r]
    assert any(re.match(r"(websockets|wsproto|uvicorn\[standard\])\b", r) for r in plain), plain


def test_websocket_events_from_a_real_serve_process(serve, tmp_path: Path) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    target = tmp_path / "kv.json"
    daemon = serve("--specs", str(specs_dir(tmp_path, kv_spec("ws", target, {"a": "1"}))))
    ws_url = f"ws://127.0.0.1:{daemon.port}/ws/events"
    poll(lambda: target.exists(), what="the start-up reconcile")
    with pytest.raises(InvalidStatus), connect(f"{ws_url}?token=wrong", open_timeout=10) as ws:
        ws.recv(timeout=10)
    with connect(f"{ws_url}?token={VIEWER}", open_timeout=10) as ws:
        response = httpx.post(f"{daemon.base}/api/v1/objects/KeyValueStore/ws/run",
                              headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
        assert response.status_code == 202, response.text
        seen = [json.loads(ws.recv(timeout=30)) for _ in range(2)]
    assert [e["type"] for e in seen] == ["RunStarted", "RunNoop"]
    assert {e["name"] for e in seen} == {"ws"} and seen[0]["runId"] == seen[1]["runId"]
    assert "No supported WebSocket library" not in daemon.log()


# --- finding 8: SIGTERM with clients connected and runs in flight --------------------------------


class SseClient(threading.Thread):
    """Reads `/api/v1/events` until the server ends the stream; keeps every line."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.lines, self.ended, self.connected = base, [], threading.Event(), threading.Event()

    def run(self) -> None:
        try:
            with httpx.stream("GET", f"{self.base}/api/v1/events", timeout=httpx.Timeout(10, read=None),
                              headers={"Authorization": f"Bearer {VIEWER}"}) as response:
                for line in response.iter_lines():
                    self.connected.set()
                    self.lines.append(line)
        except httpx.HTTPError as exc:
            self.lines.append(f"error: {exc!r}")
        finally:
            self.ended.set()


def running_run(daemon: Daemon) -> bool:
    response = daemon.get("/api/v1/objects/KeyValueStore/slow/history")
    return response.status_code == 200 and any(r["outcome"] == "running" for r in response.json())


def test_sigterm_during_the_start_up_reconcile_with_sse_and_ws_clients_exits_after_grace(
        serve, tmp_path: Path) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    target = tmp_path / "slow.json"
    target.write_text('{"kept": "as it was"}')
    daemon = serve("--specs", str(specs_dir(tmp_path, kv_spec("slow", target, {"a": "1"}, delay=FOREVER))),
                   "--grace", "2s")
    poll(lambda: running_run(daemon), what="the start-up run to be applying")
    sse = SseClient(daemon.base)
    sse.start()
    assert sse.connected.wait(30)
    with connect(f"ws://127.0.0.1:{daemon.port}/ws/events?token={VIEWER}", open_timeout=10) as ws:
        daemon.proc.send_signal(signal.SIGTERM)
        # The apply never ends by itself: the process exits only because the grace ran out.
        assert daemon.exited() == 0, daemon.log()
        received = []
        with pytest.raises(ConnectionClosed):
            while True:
                received.append(json.loads(ws.recv(timeout=30)))
    assert sse.ended.wait(30), "the SSE stream was not closed"
    runs = daemon.runs()
    assert [r.outcome for r in runs] == ["cancelled"], runs
    assert runs[0].trigger == "manual" and runs[0].error
    assert target.read_text() == '{"kept": "as it was"}'  # the target was left as it was
    assert [e["type"] for e in received] == ["RunCancelled"], daemon.log()
    assert any(line == "event: RunCancelled" for line in sse.lines), sse.lines
    log = daemon.log()
    assert "daemon stopped" in log and "Traceback" not in log


def test_a_run_started_through_the_api_is_cancelled_after_grace_and_recorded(serve, tmp_path: Path) -> None:
    target = tmp_path / "slow.json"
    target.write_text('{"a": "1"}')  # the start-up run finds nothing to do
    folder = specs_dir(tmp_path, kv_spec("slow", target, {"a": "1"}, delay=FOREVER))
    daemon = serve("--specs", str(folder), "--grace", "1s")
    poll(lambda: [r for r in daemon.get("/api/v1/objects/KeyValueStore/slow/history").json()
                  if r["outcome"] == "noop"], what="the start-up run")
    target.write_text('{"a": "changed by hand"}')
    response = httpx.post(f"{daemon.base}/api/v1/objects/KeyValueStore/slow/run",
                          headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    assert response.status_code == 202, response.text
    poll(lambda: running_run(daemon), what="the API run to be applying")
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.exited() == 0, daemon.log()
    runs = daemon.runs()
    assert [(r.trigger, r.outcome) for r in runs] == [("api", "cancelled"), ("manual", "noop")]
    assert target.read_text() == '{"a": "changed by hand"}'  # the target was left as it was


def test_a_second_sigterm_exits_at_once_whatever_the_grace(serve, tmp_path: Path) -> None:
    target = tmp_path / "slow.json"
    daemon = serve("--specs", str(specs_dir(tmp_path, kv_spec("slow", target, {"a": "1"}, delay=FOREVER))),
                   "--grace", "24h")
    poll(lambda: running_run(daemon), what="the start-up run to be applying")
    sse = SseClient(daemon.base)
    sse.start()
    assert sse.connected.wait(30)
    daemon.proc.send_signal(signal.SIGTERM)
    poll(lambda: "daemon stopping" in daemon.log(), what="the first SIGTERM to be taken")
    assert daemon.proc.poll() is None  # a 24 h grace: still waiting for the apply
    assert httpx.get(f"{daemon.base}/readyz", timeout=10).status_code == 503  # not ready while stopping
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.exited() != 0, daemon.log()
    assert [r.outcome for r in daemon.runs()] == ["cancelled"]
    assert not target.exists()


# --- finding 9: health tells the truth about publishers and the process ---------------------------


def closed_port() -> int:
    return free_port()  # bound then released: nothing listens there


def test_unreachable_redis_mqtt_and_webhook_are_reported_degraded_with_backlog_metrics(
        serve, tmp_path: Path) -> None:
    target = tmp_path / "kv.json"
    folder = specs_dir(tmp_path, kv_spec("broken", target, {"a": "1"}, fail_on="apply"))
    env = {"RECONCILER_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
           "RECONCILER_MQTT_HOST": "127.0.0.1", "RECONCILER_MQTT_PORT": str(closed_port()),
           "RECONCILER_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{closed_port()}/hook-secret-path",
           "RECONCILER_ALERT_CONSECUTIVE_FAILURES": "1"}
    daemon = serve("--specs", str(folder), env=env)

    def degraded() -> dict[str, Any] | None:
        body = httpx.get(f"{daemon.base}/readyz", timeout=10).json()
        names = {d["component"] for d in body.get("degraded", [])}
        return body if {"redis", "mqtt", "alerts"} <= names else None

    body = poll(degraded, what="/readyz to report the three publishers degraded")
    assert body["status"] == "degraded" and body["ready"] is True
    reasons = {d["component"]: d["reason"] for d in body["degraded"]}
    assert "unreachable" in reasons["redis"] and "unreachable" in reasons["mqtt"], reasons
    assert "not delivered" in reasons["alerts"], reasons
    assert "hook-secret-path" not in json.dumps(body)
    assert httpx.get(f"{daemon.base}/readyz?strict=true", timeout=10).status_code == 503

    status = daemon.get("/api/v1/status")
    assert status.status_code == 200, status.text
    publishers = {p["name"]: p for p in status.json()["publishers"]}
    assert publishers["redis"]["ok"] is False and publishers["redis"]["pending"] > 0
    assert publishers["mqtt"]["ok"] is False and publishers["alerts"]["ok"] is False

    metrics = httpx.get(f"{daemon.base}/metrics", timeout=10).text
    pending = re.search(r'^reconciler_publisher_pending\{publisher="redis"\} (\S+)$', metrics, re.M)
    assert pending and float(pending.group(1)) > 0, metrics
    assert re.search(r'^reconciler_publisher_up\{publisher="mqtt"\} 0\.0$', metrics, re.M), metrics
    assert re.search(r'^reconciler_publisher_dropped_total\{publisher="redis"\} ', metrics, re.M), metrics

    health = httpx.get(f"{daemon.base}/healthz", timeout=10).json()
    assert health["status"] == "ok"
    process = health["process"]
    assert process["pid"] == daemon.proc.pid and process["memoryBytes"] > 0
    assert process["cpuSeconds"] > 0 and process["cpuPercent"] >= 0


def test_mqtt_health_payload_reports_process_cpu_and_memory(serve, tmp_path: Path) -> None:
    import aiomqtt

    prefix = f"reconciler-test-{uuid.uuid4().hex[:12]}"
    folder = specs_dir(tmp_path, kv_spec("kv", tmp_path / "kv.json", {"a": "1"}))
    daemon = serve("--specs", str(folder), env={"RECONCILER_MQTT_HOST": "127.0.0.1",
                                                "RECONCILER_MQTT_PREFIX": prefix})

    async def health() -> dict[str, Any]:
        async with aiomqtt.Client("127.0.0.1", 1883) as client:
            await client.subscribe(f"{prefix}/status/daemon", qos=1)
            async with asyncio.timeout(60):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    body = json.loads(message.payload)
                    if body.get("status") == "up":
                        await client.publish(f"{prefix}/status/daemon", b"", qos=1, retain=True)
                        return body
        raise AssertionError("no health payload")

    body = asyncio.run(health())
    assert body["process"]["pid"] == daemon.proc.pid
    assert body["process"]["memoryBytes"] > 0 and "cpuPercent" in body["process"]
    assert body["ready"] is True and body["degraded"] == []


# --- finding 14: a commit whose specs do not load -------------------------------------------------


def test_a_commit_whose_specs_do_not_load_is_reported_by_readyz_and_status(serve, tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path / "repo", initial_branch="main")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    work = Path(repo.working_tree_dir or "")
    target = tmp_path / "kv.json"

    def commit(text: str, message: str) -> str:
        (work / "specs").mkdir(exist_ok=True)
        (work / "specs" / "kv.yaml").write_text(text)
        repo.index.add(["specs/kv.yaml"])
        return str(repo.index.commit(message).hexsha)

    good = commit(kv_spec("kv", target, {"a": "1"}), "good")
    daemon = serve("--git", str(work), "--path", "specs", "--poll", "1s")
    body = httpx.get(f"{daemon.base}/readyz", timeout=10).json()
    assert body["specs"]["revision"] == good and body["specs"]["error"] is None, body

    bad = commit(kv_spec("kv", target, {"a": "1"}).replace("file:", "fiel:"), "broken")

    def reported() -> dict[str, Any] | None:
        body = httpx.get(f"{daemon.base}/readyz", timeout=10).json()
        return body if body["specs"].get("failedRevision") == bad else None

    body = poll(reported, what="/readyz to report the broken commit")
    assert body["status"] == "degraded" and body["specs"]["revision"] == good
    assert "specs/kv.yaml:5:3" in body["specs"]["error"] and "fiel" in body["specs"]["error"]
    assert {"component": "specs", "reason": body["specs"]["error"], "revision": bad} in body["degraded"]
    status = daemon.get("/api/v1/status").json()
    assert status["specs"]["failedRevision"] == bad and status["specs"]["revision"] == good

    fixed = commit(kv_spec("kv", target, {"a": "2"}), "fixed")
    poll(lambda: httpx.get(f"{daemon.base}/readyz", timeout=10).json()["specs"]["revision"] == fixed,
         what="the fixed commit to load")
    body = httpx.get(f"{daemon.base}/readyz", timeout=10).json()
    assert body["specs"]["error"] is None and body["status"] == "ok", body


# --- a run past the slow and long thresholds is a WARNING in the log, webhook or not ----------


def test_a_run_still_going_past_each_threshold_is_a_warning_in_the_log(serve, tmp_path: Path) -> None:
    target = tmp_path / "slow.json"
    env = {"RECONCILER_LOG_FORMAT": "json", "RECONCILER_ALERT_SLOW_RUN_SECONDS": "1",
           "RECONCILER_ALERT_LONG_RUN_SECONDS": "2"}  # and no RECONCILER_ALERT_WEBHOOK_URL
    daemon = serve("--specs", str(specs_dir(tmp_path, kv_spec("slow", target, {"a": "1"}, delay=FOREVER))),
                   "--grace", "1s", env=env)

    def warnings() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
        return [e for e in lines if e["event"].startswith("run still going")]

    seen = poll(lambda: len(warnings()) >= 2 and warnings(), what="both thresholds to pass")
    [run] = [r for r in daemon.runs() if r.outcome == "running"]
    assert [e["event"] for e in seen] == ["run still going after 1 s", "run still going after 2 s"]
    assert [e["threshold"] for e in seen] == ["slow", "long"]
    assert all(e["level"] == "warning" and e["run_id"] == run.id and e["kind"] == "KeyValueStore"
               and e["name"] == "slow" and e["namespace"] == "default" for e in seen), seen
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.exited() == 0, daemon.log()
