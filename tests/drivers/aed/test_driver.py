"""The AedSourceBinding driver end to end: emulator over HTTP → real PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drivers.aed.conftest import COLUMNS, COUNT, Runner, binding, checksum, query
from reconciler.drivers.aed.regions import gugun_belongs
from reconciler.emulator.egen import EgenEmulator
from reconciler.models import Mode
from reconciler.structs.runs import Outcome

pytestmark = pytest.mark.postgres


def test_first_full_load_then_a_noop(emulator: EgenEmulator, runner: Runner, pg_url: str, table: str) -> None:
    obj = binding(emulator.base_url, table)
    first = runner(obj)
    assert first.outcome is Outcome.SUCCEEDED, first.error
    assert first.counts.created == COUNT and first.counts.invalid == 0
    assert checksum(pg_url, table)[0] == COUNT
    before = checksum(pg_url, table)
    second = runner(obj)
    assert second.outcome is Outcome.NOOP, second.error
    assert (second.counts.created, second.counts.updated, second.counts.deleted) == (0, 0, 0)
    assert second.counts.unchanged == COUNT
    assert checksum(pg_url, table) == before


def test_mapping_transforms(emulator: EgenEmulator, runner: Runner, pg_url: str, table: str) -> None:
    assert runner(binding(emulator.base_url, table)).outcome is Outcome.SUCCEEDED
    items = {i["serialSeq"]: i for i in emulator.items}
    rows = query(pg_url, f'SELECT equipment_serial, sido, gugun, installation_address, latitude, model_name, '
                         f'installation_institution, data_status FROM "{table}"')
    assert len(rows) == COUNT
    for serial, sido, gugun, address, latitude, model, org, status in rows:
        item = items[serial]
        assert len(sido) <= 4 and gugun_belongs(sido, gugun)  # short sido name, consistent gugun
        assert address.startswith(sido) or address.split(" ", 1)[0] in (item["sido"], sido)
        assert isinstance(latitude, Decimal) and latitude == Decimal(item["wgs84Lat"].strip())
        assert model not in ("없음", "미정", "필요", "신규")
        assert org == org.strip()
        assert status == "active"


def test_incremental_writes_changes_and_never_deletes(pg_url: str, runner: Runner, table: str) -> None:
    with EgenEmulator(count=COUNT) as base:
        obj = binding(base, table)
        assert runner(obj).outcome is Outcome.SUCCEEDED
    with EgenEmulator(count=COUNT, changed_fraction=0.04) as base:
        obj = binding(base, table)
        result = runner(obj, mode=Mode.INCREMENTAL)
        assert result.outcome is Outcome.SUCCEEDED, result.error
        assert result.counts.updated > 0 and result.counts.created > 0 and result.counts.deleted == 0
        assert checksum(pg_url, table)[0] == COUNT + result.counts.created
        again = runner(obj, mode=Mode.INCREMENTAL)
        assert again.outcome is Outcome.NOOP


@pytest.mark.parametrize("policy", ["mark", "delete", "ignore"])
def test_full_mode_handles_absent_rows_per_policy(pg_url: str, runner: Runner, table: str,
                                                  policy: str) -> None:
    with EgenEmulator(count=COUNT) as base:
        original = {i["serialSeq"] for i in EgenEmulator(count=COUNT).items}
        assert runner(binding(base, table, deletion={"policy": policy})).outcome is Outcome.SUCCEEDED
    with EgenEmulator(count=COUNT, changed_fraction=0.04) as base:
        emu_items = {i["serialSeq"] for i in EgenEmulator(count=COUNT, changed_fraction=0.04).items}
        removed = original - emu_items
        assert removed
        result = runner(binding(base, table, deletion={"policy": policy}))
        assert result.outcome is Outcome.SUCCEEDED, result.error
    rows = dict(query(pg_url, f'SELECT equipment_serial, data_status FROM "{table}"'))
    if policy == "mark":
        assert result.counts.deleted == len(removed)
        assert all(rows[s] == "missing" for s in removed)
        last = query(pg_url, f'SELECT last_seen_date FROM "{table}" WHERE data_status = %s', ("missing",))
        assert last and all(r[0] is not None for r in last)
    elif policy == "delete":
        assert result.counts.deleted == len(removed)
        assert not (removed & set(rows))
    else:
        assert result.counts.deleted == 0 and removed <= set(rows)


def test_rejected_rows_are_recorded_with_rule_and_column(pg_url: str, runner: Runner, table: str) -> None:
    with EgenEmulator(count=COUNT, dirty_fraction=0.01) as base:
        result = runner(binding(base, table))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert result.counts.invalid > 0
    assert result.counts.created == COUNT - result.counts.invalid
    rejects = runner.store.rejects(result.run_id)
    rules = {(r["stage"], r["rule"]) for r in rejects}
    assert ("business", "bounds") in rules and ("business", "sidoGugun") in rules
    assert all(r["column"] and r["message"] for r in rejects)
    assert any(r["content"] for r in rejects)


def test_fail_run_rule_changes_nothing(pg_url: str, runner: Runner, table: str) -> None:
    with EgenEmulator(count=COUNT) as base:
        assert runner(binding(base, table)).outcome is Outcome.SUCCEEDED
    before = checksum(pg_url, table)
    with EgenEmulator(count=COUNT, dirty_fraction=0.01, changed_fraction=0.02) as base:
        strict = {"business": {"bounds": {"action": "fail-run"}}}
        result = runner(binding(base, table, validation=strict))
    assert result.outcome is Outcome.FAILED and "bounds" in (result.error or "")
    assert checksum(pg_url, table) == before


def test_database_stage_checks_the_targets_constraints(pg_url: str, runner: Runner, table: str) -> None:
    with EgenEmulator(count=COUNT) as base:
        assert runner(binding(base, table)).outcome is Outcome.SUCCEEDED
        query(pg_url, f'DELETE FROM "{table}" WHERE latitude >= 37.5')
        with __import__("psycopg").connect(pg_url, autocommit=True) as conn:
            conn.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT lat_south CHECK (latitude < 37.5)')
        result = runner(binding(base, table))
    assert result.outcome is Outcome.NOOP, result.error  # nothing valid left to write
    rejects = runner.store.rejects(result.run_id)
    assert rejects and {(r["stage"], r["rule"], r["column"]) for r in rejects} == {
        ("database", "constraints", "lat_south")}
    assert result.counts.created == 0  # every row north of 37.5 was refused by the table's CHECK


def test_post_sync_limits_roll_back(pg_url: str, runner: Runner, table: str) -> None:
    with EgenEmulator(count=COUNT) as base:
        assert runner(binding(base, table)).outcome is Outcome.SUCCEEDED
    before = checksum(pg_url, table)
    with EgenEmulator(count=COUNT, changed_fraction=0.04) as base:
        result = runner(binding(base, table, validation={"postSync": {"maxUpdated": 5}}))
    assert result.outcome is Outcome.FAILED and "maxUpdated" in (result.error or "")
    assert checksum(pg_url, table) == before


def test_rollback_restores_a_previous_runs_rows(pg_url: str, runner: Runner, table: str) -> None:
    with EgenEmulator(count=COUNT) as base:
        first = runner(binding(base, table, deletion={"policy": "delete"}))
    after_first = checksum(pg_url, table)
    with EgenEmulator(count=COUNT, changed_fraction=0.04) as base:
        obj = binding(base, table, deletion={"policy": "delete"})
        changed = runner(obj)
        assert changed.outcome is Outcome.SUCCEEDED and changed.counts.changed > 0
        assert checksum(pg_url, table) != after_first
        back = runner(obj, rollback_to=first.run_id)
    assert back.outcome is Outcome.SUCCEEDED, back.error
    assert checksum(pg_url, table) == after_first


def test_secrets_never_leave_the_run(pg_url: str, runner: Runner, table: str) -> None:
    with EgenEmulator(count=200, faults=None) as base:
        result = runner(binding(base, table, source={"baseUrl": base + "/nowhere"}))
    assert result.outcome is Outcome.FAILED
    assert "test-service-key-0042" not in (result.error or "")
    for event in runner.store.events(result.target):
        assert "test-service-key-0042" not in str(event)


def test_sqlite_target_has_the_same_semantics(runner: Runner, tmp_path, monkeypatch: pytest.MonkeyPatch,
                                              table: str) -> None:
    import sqlite3

    db = tmp_path / "aed.db"
    monkeypatch.setenv("AED_TEST_DB", f"sqlite:///{db}")
    monkeypatch.setenv("AED_TEST_KEY", "sqlite-test-key")
    with EgenEmulator(count=COUNT) as base:
        first = runner(binding(base, table))
        assert first.outcome is Outcome.SUCCEEDED and first.counts.created == COUNT, first.error
        assert runner(binding(base, table)).outcome is Outcome.NOOP
    with EgenEmulator(count=COUNT, changed_fraction=0.04) as base:
        changed = runner(binding(base, table))
    assert changed.outcome is Outcome.SUCCEEDED, changed.error
    assert changed.counts.updated > 0 and changed.counts.deleted > 0
    with sqlite3.connect(db) as conn:
        statuses = dict(conn.execute(f'SELECT data_status, count(*) FROM "{table}" GROUP BY 1').fetchall())
    assert statuses["missing"] == changed.counts.deleted
    back = runner(binding(base, table), rollback_to=first.run_id)
    assert back.outcome is Outcome.SUCCEEDED, back.error
    with sqlite3.connect(db) as conn:
        missing = conn.execute(f'SELECT count(*) FROM "{table}" WHERE data_status = ?', ("missing",))
        assert missing.fetchone()[0] == 0
        assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == COUNT


def test_database_work_runs_off_the_event_loop(emulator: EgenEmulator, runner: Runner, pg_url: str,
                                                table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The daemon runs observe/apply on its one event loop: a COPY or an upsert done there
    # stalls the API, the scheduler and MQTT for the whole run. Every call to the target
    # database must come from a worker thread.
    import threading

    from reconciler.drivers.aed import targets

    on_loop: list[str] = []
    for name in ("prepare", "load_stage", "stage_rejected_keys", "run_database_checks", "compare",
                 "snapshot", "upsert", "remove_absent", "commit", "close"):
        method = getattr(targets.Target, name)

        def spy(self, *args, __name=name, __method=method, **kwargs):  # type: ignore[no-untyped-def]
            if threading.current_thread() is threading.main_thread():
                on_loop.append(__name)
            return __method(self, *args, **kwargs)

        monkeypatch.setattr(targets.Target, name, spy)
    result = runner(binding(emulator.base_url, table))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert on_loop == []


def test_owned_columns_are_the_only_ones_written(emulator: EgenEmulator, runner: Runner, pg_url: str,
                                                 table: str) -> None:
    """`ownedColumns` a subset (not in the mapping's order): only those are staged and
    written; a mapped column it leaves out keeps what the table holds."""
    assert runner(binding(emulator.base_url, table)).outcome is Outcome.SUCCEEDED
    query(pg_url, f'UPDATE "{table}" SET model_name = \'hand-set\', latitude = latitude + 1')
    owned = binding(emulator.base_url, table,
                    mapping={"columns": COLUMNS, "ownedColumns": ["latitude", "equipment_serial", "sido"]})
    result = runner(owned)
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert result.counts.updated == COUNT  # latitude put back on every row
    items = {i["serialSeq"]: i for i in emulator.items}
    rows = query(pg_url, f'SELECT equipment_serial, latitude, model_name FROM "{table}"')
    assert len(rows) == COUNT
    for serial, latitude, model in rows:
        assert latitude == Decimal(items[serial]["wgs84Lat"].strip())
        assert model == "hand-set"
    assert runner(owned).outcome is Outcome.NOOP
