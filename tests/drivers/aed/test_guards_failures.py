"""Guards abort and injected failures leave the table byte-for-byte as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest

from drivers.aed.conftest import COLUMNS, COUNT, Runner, binding, checksum
from reconciler.emulator.egen import EgenEmulator, Faults
from reconciler.structs.runs import Outcome

pytestmark = pytest.mark.postgres


@pytest.fixture
def loaded(pg_url: str, runner: Runner, table: str) -> tuple[int, str | None]:
    with EgenEmulator(count=COUNT) as base:
        assert runner(binding(base, table)).outcome is Outcome.SUCCEEDED
    return checksum(pg_url, table)


def test_row_count_change_guard(loaded: tuple[int, str | None], pg_url: str, runner: Runner,
                                table: str) -> None:
    with EgenEmulator(count=COUNT - 400) as base:  # -13%
        result = runner(binding(base, table))
    assert result.outcome is Outcome.ABORTED and "maxRowCountChange" in (result.error or "")
    assert checksum(pg_url, table) == loaded
    with EgenEmulator(count=COUNT - 400) as base:  # a dry run reports it as a warning
        planned = runner(binding(base, table), dry_run=True)
    assert planned.plan is not None and any("maxRowCountChange" in w for w in planned.plan.warnings)


def test_first_load_into_an_empty_table_passes_the_row_count_guard(pg_url: str, runner: Runner,
                                                                   table: str) -> None:
    with EgenEmulator(count=500) as base:
        assert runner(binding(base, table)).outcome is Outcome.SUCCEEDED


def test_all_null_column_guard(loaded: tuple[int, str | None], pg_url: str, runner: Runner,
                               table: str) -> None:
    renamed = [dict(c) for c in COLUMNS]
    renamed[-1] = {**renamed[-1], "from": "modelName"}  # the API "renamed" the field
    with EgenEmulator(count=COUNT) as base:
        result = runner(binding(base, table, mapping={"columns": renamed}))
    assert result.outcome is Outcome.ABORTED and "model_name" in (result.error or "")
    assert checksum(pg_url, table) == loaded


def test_max_deletes_guard(loaded: tuple[int, str | None], pg_url: str, runner: Runner, table: str) -> None:
    with EgenEmulator(count=COUNT, changed_fraction=0.04) as base:
        result = runner(binding(base, table, deletion={"policy": "delete"}, guards={"maxDeletes": 3}))
    assert result.outcome is Outcome.ABORTED and "maxDeletes" in (result.error or "")
    assert checksum(pg_url, table) == loaded


def test_empty_source_guard(loaded: tuple[int, str | None], pg_url: str, runner: Runner, table: str) -> None:
    with EgenEmulator(count=COUNT, faults=Faults.parse(["empty"])) as base:
        result = runner(binding(base, table))
        assert result.outcome is Outcome.ABORTED and "allowEmpty" in (result.error or "")
        assert checksum(pg_url, table) == loaded
        allowed = runner(binding(base, table, guards={"allowEmpty": True, "maxRowCountChange": "100%"},
                                 deletion={"policy": "ignore"}))
    assert allowed.outcome is Outcome.NOOP, allowed.error


@pytest.mark.parametrize("fault", ["http500:page=3,times=50", "quota:page=4", "truncate:page=2,times=50"])
def test_source_failures_change_nothing(loaded: tuple[int, str | None], pg_url: str, runner: Runner,
                                        table: str, fault: str) -> None:
    with EgenEmulator(count=COUNT, changed_fraction=0.04, faults=Faults.parse([fault])) as base:
        result = runner(binding(base, table))
    assert result.outcome is Outcome.FAILED, result.error
    assert checksum(pg_url, table) == loaded


def test_process_killed_during_apply_changes_nothing(loaded: tuple[int, str | None], pg_url: str,
                                                     table: str, tmp_path: Path) -> None:
    """The upsert blocks on a lock another session holds; the process is killed there."""
    with EgenEmulator(count=COUNT, changed_fraction=0.04) as base:
        spec = binding(base, table)
        script = tmp_path / "run.py"
        script.write_text(textwrap.dedent(f"""
            import asyncio, json
            from reconciler.drivers import default_registry
            from reconciler.engine.orchestrator import Orchestrator
            from reconciler.structs.runs import Trigger
            from reconciler.models.aed import AedSourceBinding
            from reconciler.store import Store
            obj = AedSourceBinding.model_validate(json.loads({spec.model_dump_json(by_alias=True)!r}))
            orch = Orchestrator(store=Store.open("sqlite:///{tmp_path / 's.db'}"), drivers=default_registry())
            asyncio.run(orch.run(obj, trigger=Trigger.MANUAL))
            """))
        with psycopg.connect(pg_url) as locker:
            locker.execute(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE')
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            proc = subprocess.Popen([sys.executable, str(script)], env=env)
            deadline = time.monotonic() + 60
            waiting = False
            while time.monotonic() < deadline and not waiting:
                time.sleep(0.2)
                with psycopg.connect(pg_url, autocommit=True) as probe:
                    row = probe.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                        "c.oid = l.relation WHERE c.relname = %s AND NOT l.granted",
                                        (table,)).fetchone()
                    waiting = bool(row and row[0])
            assert waiting, "the run never reached the write"
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            locker.rollback()
    assert checksum(pg_url, table) == loaded
