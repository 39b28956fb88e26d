"""`reconciler db prune` as a real process, on a SQLite file and on a new PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import fresh_database
from test_pruning import AED, TEAM, _count, _ids, _run

from reconciler.store import Store
from reconciler.store import tables as t


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'reconciler.db'}"
    else:
        with fresh_database("reconciler_prune") as database:
            yield database


def _seed(url: str) -> dict[str, list[str]]:
    store = Store.open(url)
    try:
        # The runs are dated before test_pruning.NOW, which is in the past for the command.
        return {"team": [_run(store, TEAM, hours_ago=h) for h in range(6, 0, -1)],
                "aed": [_run(store, AED, hours_ago=h + 0.5) for h in range(2, 0, -1)]}
    finally:
        store.close()


def _prune(url: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_HISTORY")}
    environ |= {"RECONCILER_DATABASE_URL": url, "RECONCILER_STATE_DIR": str(tmp_path / "state"), **env}
    return subprocess.run([sys.executable, "-m", "reconciler.cli", "db", "prune", *args], env=environ,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


def _store_state(url: str) -> tuple[list[str], list[str], int]:
    store = Store.open(url, migrate=False)
    try:
        return sorted(_ids(store, TEAM)), sorted(_ids(store, AED)), _count(store, t.changes)
    finally:
        store.close()


def test_prune_keep_removes_old_runs_and_prints_what_it_removed(url: str, tmp_path: Path) -> None:
    runs = _seed(url)
    done = _prune(url, tmp_path, "--keep", "2")
    assert done.returncode == 0, done.stderr
    assert _store_state(url) == (runs["team"][-2:], runs["aed"], 4)
    lines = done.stdout.splitlines()
    assert lines[0] == "keeping the newest 2 runs of each object"
    assert lines[1].startswith("AgentConfig/team: removed 4 run(s); oldest kept: ")
    assert lines[-1] == "removed 4 run(s) of 1 object(s) and 4 changes, 8 events, 4 snapshots, 4 rejects"


def test_prune_dry_run_prints_the_same_and_removes_nothing(url: str, tmp_path: Path) -> None:
    _seed(url)
    before = _store_state(url)
    planned = _prune(url, tmp_path, "--keep", "2", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert _store_state(url) == before
    assert planned.stdout.splitlines()[-1].startswith("would remove 4 run(s) of 1 object(s)")


def test_prune_older_than_alone_ignores_the_configured_count(url: str, tmp_path: Path) -> None:
    runs = _seed(url)
    # Every seeded run is older than a day: all go but the newest of each object.
    done = _prune(url, tmp_path, "--older-than", "1d", RECONCILER_HISTORY_RETENTION_KEEP="100")
    assert done.returncode == 0, done.stderr
    assert _store_state(url)[:2] == (runs["team"][-1:], runs["aed"][-1:])


def test_prune_without_options_applies_the_configured_retention(url: str, tmp_path: Path) -> None:
    runs = _seed(url)
    done = _prune(url, tmp_path, RECONCILER_HISTORY_RETENTION_KEEP="3")
    assert done.returncode == 0, done.stderr
    assert _store_state(url)[:2] == (runs["team"][-3:], runs["aed"])


def test_prune_refuses_a_bad_duration_and_changes_nothing(url: str, tmp_path: Path) -> None:
    _seed(url)
    before = _store_state(url)
    refused = _prune(url, tmp_path, "--older-than", "30")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: --older-than: expected a duration such as 30s or 5m, got '30'"
    assert "Traceback" not in refused.stderr + refused.stdout
    assert _store_state(url) == before


def test_prune_with_retention_switched_off_says_so(url: str, tmp_path: Path) -> None:
    _seed(url)
    refused = _prune(url, tmp_path, RECONCILER_HISTORY_RETENTION_KEEP="0")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: no retention configured: give --keep N or --older-than")
