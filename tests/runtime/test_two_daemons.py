"""Two `reconciler serve` processes on one PostgreSQL store: each scheduled occurrence runs
once, whichever process claims it (the store's compare-and-set claim and target lock)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
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
    procs, bases = [], []
    try:
        for _ in range(2):
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "reconciler.cli", "serve", "--specs", str(specs), "--port", str(port)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait(lambda base=base: _ready(base), timeout=30)
        time.sleep(10)
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
    assert len(starts) >= 3, starts  # the job ran every ~2 s while both processes were up
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert min(gaps) > 1.0, gaps  # never two runs for one occurrence
    assert len(starts) <= 10 / 2 + 3
