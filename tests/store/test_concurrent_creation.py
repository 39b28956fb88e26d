"""Several processes creating one new SQLite store at once all succeed.

Each round starts real `reconciler` processes (half `db upgrade`, half `history`, which
opens the store and upgrades an empty schema) on one new database path. Every process
signals that it is ready and then waits for a start file, so they all reach the schema
creation together; no sleeps decide the timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from reconciler.store import Store
from reconciler.store.migrating import HEAD_REVISION, current_revision

PROCESSES = 6
ROUNDS = 4

# Wait for the start file, then run the CLI exactly as `python -m reconciler.cli` would.
_BARRIER = """
import os, runpy, sys, time
ready, go = sys.argv[1], sys.argv[2]
open(ready, "w").close()
deadline = time.monotonic() + 120
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("the start file never appeared")
    time.sleep(0.001)
sys.argv = ["reconciler", *sys.argv[3:]]
runpy.run_module("reconciler.cli", run_name="__main__")
"""


def _wait_for(condition: object, what: str, timeout: float = 120.0) -> None:
    """Poll `condition` with a generous deadline (not a speed claim)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_processes_creating_a_new_sqlite_store_at_once_all_succeed(tmp_path: Path) -> None:
    for round_ in range(ROUNDS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        database = folder / "state" / "reconciler.db"
        env = {**os.environ, "RECONCILER_DATABASE_URL": f"sqlite:///{database}",
               "RECONCILER_STATE_DIR": str(folder / "state")}
        go = folder / "go"
        procs = []
        for i in range(PROCESSES):
            command = ["db", "upgrade"] if i % 2 == 0 else ["history"]
            procs.append(subprocess.Popen(
                [sys.executable, "-c", _BARRIER, str(folder / f"ready{i}"), str(go), *command],
                env=env, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        ready = [folder / f"ready{i}" for i in range(PROCESSES)]
        _wait_for(lambda ready=ready: all(r.exists() for r in ready), "every process to be ready")
        go.touch()
        failures = []
        for proc in procs:
            _out, err = proc.communicate(timeout=180)
            if proc.returncode != 0:
                failures.append(f"{proc.args[3:]} exited {proc.returncode}: {err.strip()[-2000:]}")
        assert failures == [], f"round {round_}:\n" + "\n".join(failures)
        store = Store.open(f"sqlite:///{database}", migrate=False)
        try:
            assert current_revision(store.engine) == HEAD_REVISION
        finally:
            store.close()
