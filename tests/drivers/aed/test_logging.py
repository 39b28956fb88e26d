"""An AED run's log, from a real `reconciler apply` process (emulator over HTTP → PostgreSQL).

At `--log-level debug` a run logs one `item rejected` line per rejected row it recorded
(key, stage, rule, column, problem; never the row's content), every one of them: the
WARNING line's figure and `history --run ID` must be matched by the log, not only by a
sample of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.aed.conftest import COUNT, binding
from reconciler.emulator.egen import EgenEmulator
from reconciler.store import Store

pytestmark = pytest.mark.postgres


def test_debug_logs_every_rejected_row_the_run_recorded(pg_url: str, table: str, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    env.pop("RECONCILER_DATABASE_URL", None)
    with EgenEmulator(count=COUNT, dirty_fraction=0.03) as base:
        spec = binding(base, table).model_dump(mode="json", by_alias=True, exclude_none=True)
        (specs / "aed.yaml").write_text(json.dumps(spec))  # YAML reads JSON
        done = subprocess.run([sys.executable, "-m", "reconciler.cli", "--log-format", "json",
                               "--log-level", "debug", "apply", "specs", "-o", "json"],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [run] = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert run["outcome"] == "succeeded" and run["counts"]["invalid"] > 20
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    rejected = [e for e in logged if e["event"] == "item rejected"]
    store = Store.open(f"sqlite:///{tmp_path / 'state' / 'reconciler.db'}")
    try:
        recorded = store.rejects(run["runId"])
    finally:
        store.close()
    assert [(e["key"], e["rule"], e["column"]) for e in rejected] == [
        (r["key"], r["rule"], r["column"]) for r in recorded]
    assert all(e["level"] == "debug" and e["run_id"] == run["runId"] and e["problem"] for e in rejected)
    assert not any("content" in e for e in rejected)  # the row's values stay in the store
