"""`plan --base/--head --no-record` as the shipped CI workflow runs it, when the AED source
serves a row that validation rejects: the plan succeeds and the pull-request Markdown shows
the reject; and an unexpected driver error reaches the comment as one line, never as SQL,
row data or a traceback.

The spec is the shipped example (examples/aed), pointed at the project's emulator over
HTTP and a real PostgreSQL target; the store is a PostgreSQL database of its own, as in CI.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import git
import pytest
from conftest import fresh_database
from drivers.aed.conftest import aed_database, checksum, table  # noqa: F401
from ruamel.yaml import YAML
from sqlalchemy.exc import IntegrityError

from reconciler.emulator.egen import EgenEmulator
from reconciler.engine.drivers import DriverRegistry, RunContext
from reconciler.engine.orchestrator import Orchestrator
from reconciler.loading.specs import SpecSet
from reconciler.review.rendering import render_review_json, render_review_markdown
from reconciler.review.reviewing import review_changes
from reconciler.review.revisions import diff_spec_sets
from reconciler.store import Store
from reconciler.structs.plans import Plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aed" / "aedsourcebinding.yaml"
ROWS = 1000


def _example(base_url: str, table_name: str, *, placeholders: list[str] | None = None) -> dict[str, Any]:
    with EXAMPLE.open() as fh:
        document: dict[str, Any] = YAML(typ="safe").load(fh)
    spec = document["spec"]
    spec["source"].update(baseUrl=f"{base_url}", pageSize=500, timeout="10s",
                          retries={"limit": 1, "backoff": "10ms", "maxBackoff": "20ms"})
    spec["target"]["table"] = table_name
    if placeholders is not None:
        spec["mapping"]["placeholders"] = placeholders
    return document


def _dump(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        YAML().dump(document, fh)


@pytest.fixture(scope="module")
def store_url() -> Iterator[str]:
    """The reconciler's store on a PostgreSQL database of its own (the CI workflow's set-up)."""
    with fresh_database("reconciler_review_store") as url:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def ci(tmp_path: Path, aed_database: str, store_url: str, table: str  # noqa: F811
       ) -> Iterator[tuple[Callable[..., subprocess.CompletedProcess[str]], EgenEmulator]]:
    """A repository whose head commit edits the example spec, already applied at base from
    ROWS clean rows served by the emulator."""
    emulator = EgenEmulator(count=ROWS)
    base_url = emulator.start()
    try:
        work = tmp_path / "repo"
        work.mkdir()
        repository = git.Repo.init(work)
        with repository.config_writer() as config:
            config.set_value("user", "name", "Test").set_value("user", "email", "test@example.com")
        spec = work / "specs" / "aed.yaml"
        emulator_url = base_url  # the service path already
        _dump(spec, _example(emulator_url, table))
        repository.index.add(["specs/aed.yaml"])
        repository.index.commit("base")
        env = {**os.environ, "RECONCILER_DATABASE_URL": store_url, "AED_DATABASE_URL": aed_database,
               "EGEN_SERVICE_KEY": "sentinel-egen-key-5521", "RECONCILER_STATE_DIR": str(tmp_path / "state"),
               "COLUMNS": "200"}

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=300)

        applied = run("apply", "specs")
        assert applied.returncode == 0, applied.stdout + applied.stderr[-3000:]
        _dump(spec, _example(emulator_url, table, placeholders=["필요", "신규", "미정", "없음", "-"]))
        repository.index.add(["specs/aed.yaml"])
        repository.index.commit("head: one more placeholder")
        yield run, emulator
    finally:
        emulator.stop()


def test_no_record_plan_with_a_rejected_row_succeeds_and_shows_the_reject(
        ci: tuple[Callable[..., subprocess.CompletedProcess[str]], EgenEmulator],
        aed_database: str, table: str) -> None:  # noqa: F811
    run, emulator = ci
    rows_before = checksum(aed_database, table)
    emulator.set_dirty_fraction(1 / ROWS)  # exactly one row validation rejects

    result = run("plan", "--base", "HEAD~1", "--head", "HEAD", "--path", "specs", "--format", "markdown",
                 "--no-record", "--detailed-exitcode")
    text = result.stdout
    assert result.returncode in (0, 2), result.stdout + result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "IntegrityError" not in text + result.stderr
    assert "[SQL" not in text and "INSERT INTO" not in text.upper()
    assert "1 row(s) rejected by validation" in text
    assert "could not be planned" not in text
    assert checksum(aed_database, table) == rows_before

    as_json = run("plan", "--base", "HEAD~1", "--head", "HEAD", "--path", "specs", "--format", "json",
                  "--no-record")
    assert as_json.returncode == 0, as_json.stderr[-3000:]
    (obj,) = json.loads(as_json.stdout)["objects"]
    assert obj["outcome"] == "planned" and obj["error"] is None
    assert obj["plan"]["counts"]["invalid"] == 1
    # the rejected row is kept as it is in the table, not taken for a row the source dropped
    rejected = obj["plan"]["details"]["rejects"][0]["key"]
    assert obj["plan"]["counts"]["deleted"] == 0
    assert rejected not in {c["key"] for c in obj["plan"]["changes"]}
    assert obj["plan"]["details"]["rejects"][0]["rule"]


# --- an unexpected error in a driver ---------------------------------------------------------

class _ExplodingDriver:
    """A driver whose observe fails the way a database library fails: a long message with
    the statement, the row's values and the server's detail lines."""

    kind: ClassVar[str] = "AedSourceBinding"

    async def observe(self, spec: Any, ctx: RunContext) -> Any:
        raise IntegrityError(
            'INSERT INTO aed_data (equipment_serial, installation_address) VALUES (%(s)s, %(a)s)',
            {"s": "SERIAL-ROW-DATA-9931", "a": "서울특별시 비밀주소 12"},
            Exception('duplicate key value violates unique constraint "aed_pkey"\n'
                      'DETAIL:  Key (equipment_serial)=(SERIAL-ROW-DATA-9931) already exists.'))

    def diff(self, spec: Any, actual: Any, ctx: RunContext) -> Plan:
        raise AssertionError("not reached")

    async def apply(self, plan: Plan, ctx: RunContext) -> Any:
        raise AssertionError("not reached")


def test_an_unexpected_driver_error_is_one_line_without_sql_or_row_data(tmp_path: Path) -> None:
    from reconciler.loading import load_specs

    spec = tmp_path / "specs" / "aed.yaml"
    _dump(spec, _example("http://127.0.0.1:9/B552657/AEDInfoInqireService", "aed_data"))
    head = load_specs(spec.parent)
    drivers = DriverRegistry()
    drivers.register("AedSourceBinding", _ExplodingDriver)  # type: ignore[arg-type]
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        orchestrator = Orchestrator(store=store, drivers=drivers)
        review = asyncio.run(review_changes(orchestrator, diff_spec_sets(SpecSet(revision="a" * 40), head),
                                            record=False))
    finally:
        store.close()
    (target,) = review.targets
    assert target.failed and target.result is not None and target.result.error
    assert "\n" not in target.result.error
    markdown = render_review_markdown(review)
    for text in (markdown, render_review_json(review)):
        assert "SERIAL-ROW-DATA-9931" not in text and "비밀주소" not in text
        assert "INSERT" not in text and "[SQL" not in text and "DETAIL" not in text
        assert "Traceback" not in text
    (row,) = [line for line in markdown.splitlines() if "`aed-registry`" in line]
    assert "IntegrityError" in row and "could not be planned" in markdown
