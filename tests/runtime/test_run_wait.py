"""A forced run through a real `reconciler serve`: it answers with its run id and a Location
the caller can follow, `?wait=true` answers when the run ended (bounded by `timeout`), and
`reconciler run --server --wait` / `history --server -o table` are what a user runs.

Real processes: the daemon is `python -m reconciler.cli serve` on a free port, the clients
are httpx and the `reconciler` command in subprocesses; the AED source is the project's
emulator over HTTP, made slow on purpose where a run must outlast a wait.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.emulator.egen import EgenEmulator
from reconciler.emulator.faults import Faults
from runtime.daemon_process import free_port, is_ready
from runtime.daemon_process import wait_for as poll_until

ADMIN, VIEWER = "run-wait-admin-token-1", "run-wait-viewer-token-1"
AGENTS = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {{name: team}}
spec:
  mcpServers:
    github: {{command: npx, args: ["-y", "gh"]}}
  targets: [{{client: claude-code, scope: project, root: "{root}"}}]
---
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {{name: broken}}
spec:
  mcpServers:
    github: {{command: npx}}
  targets: [{{client: claude-code, scope: project, root: "{blocked}"}}]
---
apiVersion: reconciler.dev/v1alpha1
kind: SyncJob
metadata: {{name: team-daily}}
spec:
  targetRef: {{kind: AgentConfig, name: team}}
  interval: 24h
"""
AED = """\
apiVersion: reconciler.dev/v1alpha1
kind: AedSourceBinding
metadata: {{name: aed}}
spec:
  source: {{baseUrl: "{base_url}", serviceKey: {{env: EGEN_SERVICE_KEY}}, pageSize: 100, timeout: 120s,
           retries: {{limit: 0}}}}
  target: {{databaseUrl: {{env: AED_DATABASE_URL}}, table: aed_data, createTable: true}}
  mapping:
    columns:
      - {{column: equipment_serial, from: serialSeq, required: true}}
      - {{column: installation_address, from: buildAddress}}
"""


# Poll with a generous deadline (not a speed claim).
wait_for = functools.partial(poll_until, timeout=120.0, step=0.1)


@dataclass(frozen=True)
class Daemon:
    base: str
    env: dict[str, str]
    work: Path

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=self.work, env=self.env,
                              capture_output=True, text=True, timeout=300)


def _serve(work: Path, env: dict[str, str]) -> Iterator[Daemon]:
    port = free_port()
    log = (work / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler.cli", "serve", "--specs", str(work / "specs"), "--port", str(port),
         "--admin-token-env", "ADMIN_T", "--viewer-token-env", "VIEWER_T", "--grace", "5s"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or is_ready(base))
        assert proc.poll() is None, (work / "serve.log").read_text()
        yield Daemon(base, {**env, "RECONCILER_TOKEN": ADMIN}, work)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _env(work: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "RECONCILER_STATE_DIR": str(work / "state"), "ADMIN_T": ADMIN, "VIEWER_T": VIEWER,
           "COLUMNS": "250", **extra}
    env.pop("RECONCILER_DATABASE_URL", None)
    return env


@pytest.fixture(scope="module")
def agents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    work = tmp_path_factory.mktemp("run-wait")
    (work / "specs").mkdir()
    (work / "blocked").write_text("a file where the broken object wants a folder\n")
    specs = AGENTS.format(root=work / "project", blocked=work / "blocked")
    (work / "specs" / "agents.yaml").write_text(specs)
    yield from _serve(work, _env(work))


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def _finished(daemon: Daemon, location: str) -> dict[str, Any] | None:
    run = httpx.get(f"{daemon.base}{location}", headers=admin(), timeout=30).json()["run"]
    return run if run["outcome"] not in ("running", "queued") else None


def test_a_forced_run_answers_with_its_run_id_and_location(agents: Daemon) -> None:
    response = httpx.post(f"{agents.base}/api/v1/objects/AgentConfig/team/run", headers=admin(), json={},
                          timeout=30)
    assert response.status_code == 202, response.text
    run_id = response.json()["runId"]
    assert run_id and response.headers["location"] == f"/api/v1/runs/{run_id}"
    assert response.json()["location"] == f"/api/v1/runs/{run_id}"
    run = wait_for(lambda: _finished(agents, response.headers["location"]))
    assert run["id"] == run_id and run["trigger"] == "api" and run["outcome"] in ("succeeded", "noop")


def test_wait_true_answers_when_the_run_ended_with_its_result(agents: Daemon) -> None:
    response = httpx.post(f"{agents.base}/api/v1/objects/AgentConfig/team/run",
                          params={"wait": "true", "timeout": 120}, headers=admin(), json={}, timeout=150)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["finished"] is True and answer["ok"] is True
    assert answer["outcome"] in ("succeeded", "noop") and answer["run"]["id"] == answer["runId"]
    assert response.headers["location"] == f"/api/v1/runs/{answer['runId']}"

    failed = httpx.post(f"{agents.base}/api/v1/objects/AgentConfig/broken/run",
                        params={"wait": "true"}, headers=admin(), json={}, timeout=150)
    assert failed.status_code == 200, failed.text
    assert failed.json()["outcome"] == "failed" and failed.json()["ok"] is False and failed.json()["error"]


@pytest.mark.parametrize("timeout", ["0", "-1", "3601", "soon"])
def test_the_wait_is_bounded(agents: Daemon, timeout: str) -> None:
    response = httpx.post(f"{agents.base}/api/v1/objects/AgentConfig/team/run",
                          params={"wait": "true", "timeout": timeout}, headers=admin(), json={}, timeout=30)
    assert response.status_code == 422, response.text


def test_a_refused_run_gets_no_run_id(agents: Daemon) -> None:
    missing = httpx.post(f"{agents.base}/api/v1/objects/AgentConfig/nope/run", headers=admin(), json={},
                         timeout=30)
    assert missing.status_code == 404 and "runId" not in missing.json()


def test_cli_run_server_wait_prints_the_outcome_and_exits_non_zero_on_failure(agents: Daemon) -> None:
    ok = agents.cli("run", "AgentConfig/team", "--server", agents.base, "--wait")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("AgentConfig/team: ") and "[run " in ok.stdout
    assert any(word in ok.stdout for word in ("succeeded (", "noop ("))

    failed = agents.cli("run", "AgentConfig/broken", "--server", agents.base, "--wait")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "AgentConfig/broken: failed (" in failed.stdout
    assert "error: AgentConfig/broken: failed: " in failed.stderr

    accepted = agents.cli("run", "AgentConfig/team", "--server", agents.base)
    assert accepted.returncode == 0, accepted.stderr
    run_id = accepted.stdout.split("AgentConfig/team: run ", 1)[1].split(" ", 1)[0]
    assert f"reconciler history --server {agents.base} --run {run_id}" in accepted.stdout
    wait_for(lambda: _finished(agents, f"/api/v1/runs/{run_id}"))


def test_history_server_prints_a_table(agents: Daemon) -> None:
    done = agents.cli("run", "AgentConfig/team", "--server", agents.base, "--wait")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.rsplit("[run ", 1)[1].split("]", 1)[0]
    table = agents.cli("history", "AgentConfig/team", "--server", agents.base, "-o", "table")
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header[:6] == ["RUN", "STARTED", "TARGET", "TRIGGER", "MODE", "OUTCOME"]
    assert run_id in table.stdout and '"id"' not in table.stdout
    one = agents.cli("history", "--run", run_id, "--server", agents.base, "-o", "table")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith(f"run {run_id} AgentConfig/default/team ") or one.stdout.startswith(
        f"run {run_id} AgentConfig/team ")
    as_json = agents.cli("history", "AgentConfig/team", "--server", agents.base, "-o", "json")
    assert as_json.returncode == 0 and as_json.stdout.lstrip().startswith("[")


def test_every_server_command_reports_an_error_answer_in_one_line(agents: Daemon) -> None:
    """`--server` commands share one client (cli/remote.py): an error answer, a daemon that
    does not answer, or a token variable that is not set is one line and exit 1."""
    missing = agents.cli("history", "--run", "nope", "--server", agents.base)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == f"error: {agents.base}: 404 no run 'nope' (or the prefix is ambiguous)"
    unknown = agents.cli("run", "AgentConfig/nope", "--server", agents.base)
    assert unknown.returncode == 1 and unknown.stderr.startswith(f"error: {agents.base}: 404 ")
    no_token = agents.cli("status", "--server", agents.base, "--token-env", "NOT_SET_ANYWHERE")
    assert no_token.returncode == 1
    assert no_token.stderr.strip() == ("error: --token-env NOT_SET_ANYWHERE: the environment variable "
                                       "is not set")
    closed = agents.cli("clients", "specs", "--server", f"http://127.0.0.1:{free_port()}")
    assert closed.returncode == 1 and "Traceback" not in closed.stderr
    assert closed.stderr.startswith("error: http://127.0.0.1:") and "ConnectError" in closed.stderr


# --- a run that outlasts the wait -------------------------------------------------------------

@pytest.fixture
def slow_aed(tmp_path: Path) -> Iterator[tuple[Daemon, EgenEmulator]]:
    emulator = EgenEmulator(count=300)
    base_url = emulator.start()
    try:
        (tmp_path / "specs").mkdir()
        (tmp_path / "specs" / "aed.yaml").write_text(AED.format(base_url=base_url))
        env = _env(tmp_path, EGEN_SERVICE_KEY="any-key", AED_DATABASE_URL=f"sqlite:///{tmp_path / 'aed.db'}")
        for daemon in _serve(tmp_path, env):
            history = f"{daemon.base}/api/v1/objects/AedSourceBinding/aed/history"
            # the start-up reconcile has ended before the source turns slow
            wait_for(lambda: [r for r in httpx.get(history, headers=admin(), timeout=30).json()  # noqa: B023
                              if r["outcome"] not in ("running", "queued")])
            yield daemon, emulator
    finally:
        emulator.stop()


def test_a_wait_that_times_out_answers_202_and_the_run_goes_on(slow_aed: tuple[Daemon, EgenEmulator]) -> None:
    daemon, emulator = slow_aed
    emulator.set_faults(Faults.parse(["slow:seconds=60"]))  # no page can arrive within the wait
    url = f"{daemon.base}/api/v1/objects/AedSourceBinding/aed/run"
    first = httpx.post(url, params={"wait": "true", "timeout": 1}, headers=admin(), json={}, timeout=60)
    assert first.status_code == 202, first.text
    assert first.json()["finished"] is False
    location = first.headers["location"]

    # a second forced run waits for the first one's lock: it is known, and queued
    second = httpx.post(url, headers=admin(), json={}, timeout=30)
    assert second.status_code == 202
    queued = httpx.get(f"{daemon.base}{second.headers['location']}", headers=admin(), timeout=30)
    assert queued.status_code == 200 and queued.json()["run"]["outcome"] == "queued"

    emulator.set_faults(Faults())  # new requests answer at once; the slow one is cut short below
    emulator.stop()
    first_run = wait_for(lambda: _finished(daemon, location))
    assert first_run["id"] == first.json()["runId"]
    wait_for(lambda: _finished(daemon, second.headers["location"]))
