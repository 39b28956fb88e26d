"""A real `reconciler serve` applies the history retention at start and on its timer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from reconciler.models import ObjectRef
from reconciler.store import Store
from reconciler.store import tables as t
from runtime.test_serve import _ready, free_port, wait

TEAM = ObjectRef("AgentConfig", "default", "team")
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
  interval: 1s
"""


def _seed_old_runs(url: str, count: int) -> list[str]:
    store = Store.open(url)
    try:
        start = datetime.now(UTC) - timedelta(days=2)
        ids = []
        for i in range(count):
            run_id = f"{i:032d}"
            store.start_run(run_id=run_id, target=TEAM, trigger="manual", mode="full", dry_run=False,
                            revision=None, generation=None, started_at=start + timedelta(minutes=i))
            store.record_event(target=TEAM, run_id=run_id, type_="Normal", reason="RunFinished",
                               message="old", data={}, at=start + timedelta(minutes=i))
            ids.append(run_id)
        with store.engine.begin() as conn:
            conn.execute(t.runs.update().values(outcome="noop"))
        return ids
    finally:
        store.close()


def _state(url: str) -> tuple[set[str], int, int]:
    """(run ids of the team, runs the daemon's prunes removed (audit), events of seeded runs)."""
    store = Store.open(url, migrate=False)
    try:
        with store.engine.connect() as conn:
            ids = set(conn.execute(select(t.runs.c.id).where(t.runs.c.name == "team")).scalars())
            prunes = sum(detail["runs"] for detail in conn.execute(select(t.audit.c.detail).where(
                t.audit.c.action == "prune", t.audit.c.actor == "daemon")).scalars())
            old_events = len(conn.execute(select(t.events.c.id).where(t.events.c.message == "old")).all())
        return ids, prunes, old_events
    finally:
        store.close()


def test_serve_prunes_history_at_start_and_every_interval(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state' / 'reconciler.db'}"
    seeded = _seed_old_runs(url, 12)
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "team.yaml").write_text(SPECS.format(root=tmp_path / "project"))
    env = {**os.environ, "RECONCILER_DATABASE_URL": url, "RECONCILER_STATE_DIR": str(tmp_path / "state"),
           "RECONCILER_HISTORY_RETENTION_KEEP": "3", "RECONCILER_HISTORY_RETENTION_INTERVAL": "1s"}
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "serve", "--specs", str(specs),
                                 "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait(lambda: _ready(f"http://127.0.0.1:{port}"), timeout=60)
        # The seeded runs go (with their events) at the first prune; then the SyncJob adds a
        # run a second, and later prunes remove the daemon's own runs beyond the newest three.
        wait(lambda: not (_state(url)[0] & set(seeded)) and _state(url)[2] == 0, timeout=90)
        wait(lambda: _state(url)[1] >= len(seeded) + 3, timeout=120)
        assert len(_state(url)[0]) >= 3
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert "history pruned" in log, log[-3000:]
