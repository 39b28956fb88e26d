"""`reconciler apply -o json`: one JSON line per run on stdout, for scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).parents[1]
AED_KEY = "apply-json-service-key-1"


def kv_spec(target: Path, data: dict[str, str], name: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: reconciler.dev/v1alpha1
        kind: KeyValueStore
        metadata: {{name: {name}}}
        spec:
          file: {target}
          data: {json.dumps(data)}
        """)


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state"),
           "RECONCILER_PLUGINS": "kvstore_driver", "EGEN_SERVICE_KEY": AED_KEY,
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    env.pop("RECONCILER_DATABASE_URL", None)

    def run(*args: str, **more_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=tmp_path,
                              env={**env, **more_env}, capture_output=True, text=True, timeout=120)

    return run


def lines(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line parsed as JSON (any other line fails the test)."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_apply_json_prints_one_line_of_counts_per_run(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(kv_spec(tmp_path / "a.json", {"a": "1", "b": "2"}, "first"))
    (specs / "b.yaml").write_text(kv_spec(tmp_path / "b.json", {"c": "3"}, "second"))
    first = cli("apply", "specs", "-o", "json")
    assert first.returncode == 0, first.stderr
    runs = {r["name"]: r for r in lines(first.stdout)}
    assert len(first.stdout.strip().splitlines()) == 2
    assert runs["first"]["kind"] == "KeyValueStore" and runs["first"]["namespace"] == "default"
    assert runs["first"]["outcome"] == "succeeded" and runs["first"]["dryRun"] is False
    assert runs["first"]["counts"] == {"created": 2, "updated": 0, "deleted": 0, "unchanged": 0, "invalid": 0}
    assert runs["second"]["counts"]["created"] == 1
    assert runs["first"]["runId"] and runs["first"]["error"] is None
    assert isinstance(runs["first"]["durationSeconds"], float)

    again = cli("apply", "specs", "--output", "json")
    assert again.returncode == 0, again.stderr
    for run in lines(again.stdout):
        assert run["outcome"] == "noop"
        assert run["counts"]["created"] == run["counts"]["updated"] == run["counts"]["deleted"] == 0


def test_apply_json_dry_run_says_so_and_counts_what_is_planned(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(kv_spec(tmp_path / "a.json", {"a": "1"}, "first"))
    result = cli("apply", "specs", "--dry-run", "-o", "json")
    assert result.returncode == 0, result.stderr
    [run] = lines(result.stdout)
    assert run["dryRun"] is True and run["outcome"] == "planned" and run["planned"]["created"] == 1
    # A dry run's counts are its plan's, as its history records them; nothing was written.
    assert run["counts"] == run["planned"]
    recorded = json.loads(cli("history", "--run", run["runId"], "-o", "json").stdout)["run"]
    assert run["counts"] == recorded["counts"]
    assert not (tmp_path / "a.json").exists()


def test_apply_json_failed_run_is_a_line_too_and_exits_1(cli, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    (specs / "a.yaml").write_text(kv_spec(blocker / "kv.json", {"a": "1"}, "broken"))
    result = cli("apply", "specs", "-o", "json")
    assert result.returncode == 1
    [run] = lines(result.stdout)
    assert run["outcome"] == "failed" and run["error"]
    assert set(run["counts"].values()) == {0}
    assert "error:" in result.stderr  # the human line goes to stderr, stdout stays JSON


# --- one report of a run: `apply -o json` says what `history --run ID -o json` says ------------


def aed_spec(base_url: str, table: str) -> str:
    from drivers.aed.conftest import COLUMNS

    spec = {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AedSourceBinding",
            "metadata": {"name": "aed"},
            "spec": {"source": {"baseUrl": base_url, "serviceKey": {"env": "EGEN_SERVICE_KEY"},
                                "pageSize": 100, "timeout": "10s"},
                     "target": {"databaseUrl": {"env": "AED_DATABASE_URL"}, "table": table},
                     "mapping": {"columns": COLUMNS},
                     "deletion": {"policy": "delete"}, "guards": {"maxDeletes": "5%"}}}
    return json.dumps(spec)  # YAML reads JSON


@pytest.mark.postgres
def test_apply_json_and_history_report_an_aborted_run_alike(cli, tmp_path: Path) -> None:
    from conftest import fresh_database

    from reconciler.emulator.egen import EgenEmulator

    specs = tmp_path / "specs"
    specs.mkdir()
    with fresh_database("reconciler_apply_json") as database_url:
        with EgenEmulator(count=500) as base:
            (specs / "aed.yaml").write_text(aed_spec(base, "aed_data"))
            first = cli("apply", "specs", "-o", "json", AED_DATABASE_URL=database_url)
            assert first.returncode == 0, first.stderr
        with EgenEmulator(count=400) as base:  # 100 rows gone: maxDeletes (5%) trips
            (specs / "aed.yaml").write_text(aed_spec(base, "aed_data"))
            applied = cli("apply", "specs", "-o", "json", AED_DATABASE_URL=database_url)
    assert applied.returncode == 1
    [run] = lines(applied.stdout)
    assert run["outcome"] == "aborted" and run["planned"]["deleted"] == 100
    shown = cli("history", "--run", run["runId"], "-o", "json")
    assert shown.returncode == 0, shown.stderr
    recorded = json.loads(shown.stdout)["run"]
    assert run["counts"] == recorded["counts"]
    assert run["warnings"] == recorded["warnings"]
    # Nothing was applied; what the plan wanted stays visible as planned.
    assert run["counts"]["created"] == run["counts"]["updated"] == run["counts"]["deleted"] == 0
    assert "planned, not applied: 0 created, 0 updated, 100 deleted" in run["warnings"]
