"""Two `reconciler serve` processes on one PostgreSQL store: each scheduled occurrence runs
once, whichever process claims it (the store's compare-and-set claim and target lock)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import fresh_database

from runtime.test_serve import _ready, free_port, wait

pytestmark = pytest.mark.postgres
SPECS = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {{name: team}}
spec:
  mcpServers: {{github: {{command: npx}}}}
  targets: [{{client: claude-code, scope: project, root: "{root}"}}]
---
apiVersion: reconciler.dev/v1alpha1
kind: SyncJob
metadata: {{name: team-often}}
spec:
  targetRef: {{kind: AgentConfig, name: team}}
  interval: 2s
"""


@pytest.fixture
def store_url() -> Iterator[str]:
    with fresh_database("reconciler_ha") as url:
        yield url


def test_two_serve_processes_run_each_occurrence_once(tmp_path: Path, store_url: str) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "team.yaml").write_text(SPECS.format(root=tmp_path / "project"))
    env = {**os.environ, "RECONCILER_DATABASE_URL": store_url.replace("postgresql://", "postgresql+psycopg://"),
           "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    procs, bases, logs = [], [], []
    try:
        for i in range(2):
            port = free_port()
            logs.append(tmp_path / f"serve-{i}.log")
            with logs[-1].open("wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "reconciler.cli", "serve", "--specs", str(specs), "--port",
                     str(port)], env=env, stdout=out, stderr=subprocess.STDOUT))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait(lambda base=base: _ready(base), timeout=30)
        # Both processes up together until three scheduled runs happened (however slow the
        # machine): poll the store, no fixed wait.
        wait(lambda: _scheduled_runs(store_url) >= 3, timeout=90)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    with psycopg.connect(store_url) as conn:
        starts = [r[0] for r in conn.execute(
            "SELECT started_at FROM runs WHERE trigger = 'schedule' AND name = 'team' ORDER BY started_at")]
        claims = conn.execute("SELECT count(*) FROM schedules").fetchone()
    assert claims is not None and claims[0] == 1
    # Each occurrence was claimed by exactly one process: the claimed runs, read from both
    # processes' logs, name distinct occurrences, and each claim made one run.
    claimed = [m.group(1) for log in logs for line in log.read_text(errors="replace").splitlines()
               if "schedule decision" in line and "action=run" in line
               for m in [re.search(r"scheduled_for=(\S+)", line)] if m]
    assert len(claimed) >= 3 and len(set(claimed)) == len(claimed), claimed
    assert len(starts) == len(claimed), (starts, claimed)

def _scheduled_runs(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM runs WHERE trigger = 'schedule' AND name = 'team' "
                           "AND outcome <> 'running'").fetchone()
    return int(row[0]) if row else 0
