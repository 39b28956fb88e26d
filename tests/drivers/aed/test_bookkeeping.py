"""Issue 17, AED items 1-3 and 6: the bookkeeping around the data, on real PostgreSQL.

Rejected rows are never taken for rows the source dropped; a rollback is measured
against the table and restores exactly the state right after the run it names; a first
load with no valid row is a guard trip; stage 3 knows the table's UNIQUE constraints and
unmapped NOT NULL columns, keeps `updated_at`, and the address-list operation's rows get
their sido and gugun.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

from drivers.aed.conftest import COLUMNS, Runner, binding, checksum, query
from reconciler.drivers.aed.regions import gugun_belongs
from reconciler.emulator.egen import EgenEmulator
from reconciler.loading import load_specs
from reconciler.models.aed import AedSourceBinding
from reconciler.structs.runs import Outcome

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[3]


# --- item 1: rejected rows are never marked missing or deleted ---------------------------------


@pytest.mark.parametrize("policy", ["mark", "delete"])
@pytest.mark.parametrize(("count", "rejected"), [(1000, 10), (2000, 21)])
def test_rejected_rows_are_never_marked_missing_or_deleted(pg_url: str, runner: Runner, table: str,
                                                           policy: str, count: int, rejected: int) -> None:
    with EgenEmulator(count=count) as base:
        first = runner(binding(base, table, deletion={"policy": policy}))
    assert first.outcome is Outcome.SUCCEEDED, first.error
    before = checksum(pg_url, table)
    with EgenEmulator(count=count, dirty_fraction=rejected / count) as base:
        result = runner(binding(base, table, deletion={"policy": policy}))
    assert result.counts.invalid == rejected, result.error
    assert result.counts.deleted == 0
    assert result.outcome is Outcome.NOOP, result.error
    rows = dict(query(pg_url, f'SELECT equipment_serial, data_status FROM "{table}"'))
    assert len(rows) == count and set(rows.values()) == {"active"}
    assert checksum(pg_url, table) == before


# --- item 2: rollback with the shipped example spec --------------------------------------------


def _example(base: str) -> AedSourceBinding:
    specs = load_specs(ROOT / "examples" / "aed")
    obj = next(o for o in specs if isinstance(o, AedSourceBinding))
    spec = obj.spec.model_copy(update={"source": obj.spec.source.model_copy(update={"base_url": base})})
    return obj.model_copy(update={"spec": spec})


@pytest.fixture
def example_env(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AED_DATABASE_URL", pg_url)
    monkeypatch.setenv("EGEN_SERVICE_KEY", "example-key")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.aed_data")
    return pg_url


def test_rollback_after_an_ordinary_day_with_the_example_spec(example_env: str, runner: Runner) -> None:
    url = example_env
    count = 3000
    with EgenEmulator(count=count) as base:
        first = runner(_example(base))
    assert first.outcome is Outcome.SUCCEEDED, first.error
    after_first = checksum(url, "aed_data")
    with EgenEmulator(count=count, changed_fraction=0.02) as base:
        day = runner(_example(base))
        assert day.outcome is Outcome.SUCCEEDED, day.error
        assert day.counts.created > 0 and day.counts.deleted > 0
        back = runner(_example(base), rollback_to=first.run_id)
    assert back.outcome is Outcome.SUCCEEDED, back.error
    assert checksum(url, "aed_data") == after_first


def test_rollback_restores_the_state_right_after_the_run_not_a_later_corrected_hand_edit(
        example_env: str, runner: Runner) -> None:
    url = example_env
    count = 2000
    with EgenEmulator(count=count) as base:
        assert runner(_example(base)).outcome is Outcome.SUCCEEDED
    with EgenEmulator(count=count, changed_fraction=0.02) as base:
        day = runner(_example(base))
        assert day.outcome is Outcome.SUCCEEDED, day.error
        after_day = checksum(url, "aed_data")
        # a row the day's run wrote (rows untouched since a first load: see the README's limit)
        serial = query(url, "SELECT equipment_serial FROM aed_data WHERE sync_batch_id = %s "
                            "ORDER BY equipment_serial LIMIT 1", (day.run_id,))[0][0]
        query(url, "UPDATE aed_data SET model_name = 'HAND EDIT' WHERE equipment_serial = %s", (serial,))
        corrected = runner(_example(base))  # the next run puts the registry's value back
        assert corrected.outcome is Outcome.SUCCEEDED and corrected.counts.updated == 1, corrected.error
        back = runner(_example(base), rollback_to=day.run_id)
    assert back.outcome in (Outcome.SUCCEEDED, Outcome.NOOP), back.error
    assert query(url, "SELECT model_name FROM aed_data WHERE equipment_serial = %s", (serial,))[0][0] \
        != "HAND EDIT"
    assert checksum(url, "aed_data") == after_day


# --- item 3: a first load where every row is rejected -----------------------------------------


def test_first_load_with_every_row_rejected_is_a_guard_trip(pg_url: str, runner: Runner, table: str) -> None:
    with EgenEmulator(count=300, dirty_fraction=1.0) as base:
        result = runner(binding(base, table))
    assert result.outcome is Outcome.ABORTED, (result.outcome, result.error)
    assert "300" in (result.error or "") and "rejected" in (result.error or "")
    assert checksum(pg_url, table)[0] in (-1, 0)


# --- item 6: stage 3 pre-checks, updated_at, the address-list operation -------------------------


def _create(url: str, table: str, extra: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{table}" ({extra} equipment_serial text NOT NULL UNIQUE, sido text, gugun text, '
            "installation_institution text, installation_address text, installation_position text, "
            "latitude numeric, longitude numeric, manufacturer text, model_name text, "
            "data_status text NOT NULL DEFAULT 'active', first_seen_date date, last_seen_date date, "
            "consecutive_missing_days integer NOT NULL DEFAULT 0, deletion_suspected_date date, "
            "sync_batch_id text)")


def test_unmapped_not_null_column_without_default_fails_before_the_write(pg_url: str, runner: Runner,
                                                                        table: str) -> None:
    _create(pg_url, table, "id BIGINT PRIMARY KEY,")
    with EgenEmulator(count=200) as base:
        result = runner(binding(base, table))
    assert result.outcome is Outcome.FAILED
    error = result.error or ""
    assert "id" in error and "NOT NULL" in error and "default" in error, error
    assert "violates" not in error  # found before the write, not by the database refusing it
    assert checksum(pg_url, table)[0] == 0


def test_unmapped_not_null_column_with_a_default_is_fine(pg_url: str, runner: Runner, table: str) -> None:
    _create(pg_url, table, "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,")
    with EgenEmulator(count=200) as base:
        result = runner(binding(base, table))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert checksum(pg_url, table)[0] == 200


def test_unique_constraints_other_than_the_key_are_checked_in_stage_3(pg_url: str, runner: Runner,
                                                                      table: str) -> None:
    _create(pg_url, table, "")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT one_per_place UNIQUE (installation_institution)')
    with EgenEmulator(count=1000) as base:
        items = EgenEmulator(count=1000).items
        result = runner(binding(base, table))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    orgs = [i["org"].strip() for i in items]
    duplicates = len(orgs) - len(set(orgs))
    assert duplicates > 0  # the data set has institutions with several AEDs
    rejects = runner.store.rejects(result.run_id)
    assert {(r["stage"], r["rule"], r["column"]) for r in rejects} == {
        ("database", "constraints", "one_per_place")}
    assert result.counts.invalid == duplicates == len(rejects)
    assert checksum(pg_url, table)[0] == 1000 - duplicates
    # a second run: a staged row whose value another table row holds is refused as well
    with EgenEmulator(count=1000) as base:
        again = runner(binding(base, table))
    assert again.outcome is Outcome.NOOP, again.error
    assert again.counts.invalid == duplicates


def test_unique_constraints_are_checked_in_stage_3_on_sqlite_too(runner: Runner, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The quickstart's SQLite target: an inline UNIQUE and a unique index, read from
    `PRAGMA index_list`, refuse duplicates row by row before the write (an IntegrityError
    at the write rolled the whole run back before)."""
    import sqlite3

    db = tmp_path / "aed.db"
    monkeypatch.setenv("AED_TEST_DB", f"sqlite:///{db}")
    monkeypatch.setenv("AED_TEST_KEY", "test-service-key-0042")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE aed (equipment_serial text PRIMARY KEY, sido text, gugun text, "
            "installation_institution text UNIQUE, installation_address text, installation_position text, "
            "latitude real, longitude real, manufacturer text, model_name text, "
            "data_status text NOT NULL DEFAULT 'active', first_seen_date date, last_seen_date date, "
            "consecutive_missing_days integer NOT NULL DEFAULT 0, deletion_suspected_date date, "
            "sync_batch_id text)")
        conn.execute("CREATE UNIQUE INDEX one_address ON aed (installation_address)")
    with EgenEmulator(count=1000) as base:
        items = EgenEmulator(count=1000).items
        result = runner(binding(base, "aed"))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    rejects = runner.store.rejects(result.run_id)
    assert {r["column"] for r in rejects} <= {"sqlite_autoindex_aed_2", "one_address"}
    assert any(r["column"] == "sqlite_autoindex_aed_2" for r in rejects)
    assert {(r["stage"], r["rule"]) for r in rejects} == {("database", "constraints")}
    orgs = [i["org"].strip() for i in items]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT installation_institution, installation_address FROM aed").fetchall()
    assert len(rows) == 1000 - len(rejects) == result.counts.created
    assert len({r[0] for r in rows}) == len(rows) and len({r[1] for r in rows}) == len(rows)
    assert len(orgs) - len(set(orgs)) > 0  # the data set does hold duplicates


def test_updated_at_is_maintained_where_the_table_has_it(pg_url: str, runner: Runner, table: str) -> None:
    _create(pg_url, table, "updated_at timestamptz,")
    with EgenEmulator(count=500) as base:
        assert runner(binding(base, table)).outcome is Outcome.SUCCEEDED
    first = dict(query(pg_url, f'SELECT equipment_serial, updated_at FROM "{table}"'))
    assert len(first) == 500 and all(v is not None for v in first.values())
    with EgenEmulator(count=500, changed_fraction=0.04) as base:
        result = runner(binding(base, table, mapping={"columns": COLUMNS}), mode=__import__(
            "reconciler.models", fromlist=["Mode"]).Mode.INCREMENTAL)
    assert result.outcome is Outcome.SUCCEEDED and result.counts.updated > 0, result.error
    second = dict(query(pg_url, f'SELECT equipment_serial, updated_at FROM "{table}"'))
    moved = [k for k in first if second[k] != first[k]]
    assert len(moved) == result.counts.updated
    assert all(second[k] > first[k] for k in moved)
    assert all(second[k] is not None for k in second)


def test_shipped_mapping_works_for_the_address_list_operation(pg_url: str, runner: Runner,
                                                              table: str) -> None:
    text = (ROOT / "examples" / "aed" / "aedsourcebinding.yaml").read_text()
    assert "from: sido" in text  # the shipped mapping, unchanged
    columns: list[dict[str, Any]] = [dict(c) for c in COLUMNS]
    with EgenEmulator(count=3000) as base:
        obj = binding(base, table, source={"operation": "getEgytAedManageInfoInqire",
                                           "params": {"Q0": "서울특별시", "Q1": ""}},
                      mapping={"columns": columns})
        result = runner(obj)
    assert result.outcome is Outcome.SUCCEEDED, result.error
    rows = query(pg_url, f'SELECT sido, gugun, installation_address FROM "{table}"')
    assert rows and all(sido == "서울" for sido, _, _ in rows)
    assert all(gugun is not None and gugun_belongs(sido, gugun) for sido, gugun, _ in rows)
    assert all(address.startswith("서울특별시 ") for _, _, address in rows)


def test_example_spec_loads() -> None:
    assert os.path.exists(ROOT / "examples" / "aed" / "aedsourcebinding.yaml")


# --- item 5: a refused key answered with code 99 ------------------------------------------------


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response><header><resultCode>99</resultCode>'
    b"<resultMsg>SERVICE KEY IS NOT REGISTERED ERROR.</resultMsg></header></response>",
    b'{"response":{"header":{"resultCode":"99","resultMsg":"SERVICE KEY IS NOT REGISTERED ERROR."}}}',
    b'{"resultCode":"99","resultMsg":"SERVICE KEY IS NOT REGISTERED ERROR."}',
    b"<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg><returnAuthMsg>SERVICE KEY IS NOT "
    b"REGISTERED ERROR.</returnAuthMsg><returnReasonCode>99</returnReasonCode></cmmMsgHeader>"
    b"</OpenAPI_ServiceResponse>",
])
def test_code_99_key_not_registered_is_an_authentication_failure(body: bytes) -> None:
    from reconciler.drivers.aed.parsing import ApiError, RetryClass, parse_page

    with pytest.raises(ApiError) as caught:
        parse_page(body)
    error = caught.value
    assert error.retry_class is RetryClass.FAIL and not error.retryable and error.authentication
    assert "authentication failed" in str(error) and "serviceKey" in str(error)


def test_code_99_key_not_registered_fails_the_run_without_retrying(pg_url: str, runner: Runner,
                                                                   table: str) -> None:
    from reconciler.emulator.egen import Faults

    with EgenEmulator(count=200, faults=Faults.parse(["unregistered-key-99"])) as base:
        obj = binding(base, table, source={"retries": {"limit": 3, "backoff": "10ms", "maxBackoff": "20ms"}})
        result = runner(obj)
    assert result.outcome is Outcome.FAILED
    error = result.error or ""
    assert "SERVICE KEY IS NOT REGISTERED" in error and "serviceKey" in error, error
    assert "test-service-key-0042" not in error
    assert result.failure == "auth"  # what it means, as code 30 is; not a source_error


def test_a_target_database_that_cannot_be_reached_is_a_database_failure(
        runner: Runner, table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AED_TEST_DB", "postgresql://postgres:pw@127.0.0.1:9/nowhere")
    with EgenEmulator(count=20) as base:
        result = runner(binding(base, table))
    assert result.outcome is Outcome.FAILED
    assert "cannot connect to the target database" in (result.error or "")
    assert result.failure == "database"


def test_code_99_key_fault_is_answered_once_per_request() -> None:
    import asyncio

    from reconciler.drivers.aed.fetching import fetch_pages
    from reconciler.drivers.aed.parsing import ApiError
    from reconciler.emulator.egen import Faults
    from reconciler.models.aed import AedSource

    emulator = EgenEmulator(count=50, faults=Faults.parse(["unregistered-key-99"]))
    emulator.start()
    try:
        source = AedSource.model_validate({"baseUrl": emulator.base_url, "serviceKey": {"env": "K"},
                                           "pageSize": 10,
                                           "retries": {"limit": 4, "backoff": "1ms", "maxBackoff": "2ms"}})

        async def pull() -> None:
            async for _ in fetch_pages(source, "k"):
                pass

        with pytest.raises(ApiError):
            asyncio.run(pull())
        assert emulator.request_count == 1  # not retried
    finally:
        emulator.stop()


# --- rows missing from the source age every day, changes or not ---------------------------------


def _three_rows_gone(pg_url: str, table: str, runner: Runner, obj: Any) -> Any:
    """A first load, three rows the registry does not hold (`GONE-0..2`), and the full run
    that marks them missing: its result."""
    assert runner(obj).outcome is Outcome.SUCCEEDED
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for n in range(3):
            conn.execute(f'INSERT INTO "{table}" (equipment_serial, data_status) VALUES (%s, %s)',
                         (f"GONE-{n}", "active"))
    marked = runner(obj)
    assert marked.outcome is Outcome.SUCCEEDED and marked.counts.deleted == 3
    return marked


def test_missing_rows_age_and_turn_suspected_in_a_run_with_nothing_else_to_do(
        pg_url: str, runner: Runner, table: str) -> None:
    """`consecutive_missing_days` and `deletion_suspected` follow the calendar, not whether
    something unrelated changed that day: a run whose only work is the ageing is not a no-op."""
    _create(pg_url, table, "updated_at timestamptz,")
    with EgenEmulator(count=100) as base:
        obj = binding(base, table)
        _three_rows_gone(pg_url, table, runner, obj)
        assert runner(obj).outcome is Outcome.NOOP  # missing since today: nothing moves on
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"UPDATE \"{table}\" SET last_seen_date = current_date - 8, updated_at = NULL "
                         "WHERE equipment_serial LIKE 'GONE-%'")
        aged = runner(obj)
        assert aged.outcome is Outcome.SUCCEEDED, (aged.outcome, aged.error)
        assert aged.counts.updated == 3
        again = runner(obj)
        assert again.outcome is Outcome.NOOP
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(f'SELECT data_status, consecutive_missing_days, deletion_suspected_date, '
                            f'updated_at IS NOT NULL FROM "{table}" WHERE equipment_serial LIKE %s',
                            ("GONE-%",)).fetchall()
    assert {(status, days, flagged is not None, touched) for status, days, flagged, touched in rows} == {
        ("deletion_suspected", 8, True, True)}


def test_a_rollback_puts_back_the_ageing_of_the_runs_after_it(pg_url: str, runner: Runner,
                                                              table: str) -> None:
    """A full run ages the rows missing since earlier runs; a rollback to the run before it
    gives them back their day count and status (the aged rows were in no snapshot, so a
    rollback left them `deletion_suspected`)."""
    _create(pg_url, table, "updated_at timestamptz,")
    missing = ("SELECT equipment_serial, data_status, consecutive_missing_days, deletion_suspected_date, "
               f'last_seen_date FROM "{table}" WHERE equipment_serial LIKE %s ORDER BY 1')
    with EgenEmulator(count=100) as base:
        obj = binding(base, table)
        marked = _three_rows_gone(pg_url, table, runner, obj)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"UPDATE \"{table}\" SET last_seen_date = current_date - 8 "
                         "WHERE equipment_serial LIKE 'GONE-%'")  # eight days pass
        aged = runner(obj)
        assert aged.outcome is Outcome.SUCCEEDED and aged.counts.updated == 3, aged.error
        back = runner(obj, rollback_to=marked.run_id)
    assert back.outcome is Outcome.SUCCEEDED, (back.outcome, back.error)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(missing, ("GONE-%",)).fetchall()
    assert {(status, days, suspected) for _, status, days, suspected, _ in rows} == {("missing", 0, None)}


def test_values_longer_than_a_varchar_column_are_rejected_rows_not_a_failed_run(
        pg_url: str, runner: Runner, table: str) -> None:
    """A target column narrower than the spec's length rule (or without one) is checked in
    stage 3 like the other constraints: its long values are rejected rows, the rest sync."""
    _create(pg_url, table, "")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{table}" ALTER COLUMN model_name TYPE varchar(10)')
    with EgenEmulator(count=300) as base:
        items = EgenEmulator(count=300).items
        result = runner(binding(base, table))
        again = runner(binding(base, table))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    long = sum(1 for i in items if len((i.get("model") or "").strip()) > 10)
    assert long > 0
    rejects = runner.store.rejects(result.run_id)
    assert {(r["stage"], r["rule"], r["column"]) for r in rejects} == {
        ("database", "constraints", "model_name")}
    assert len(rejects) == long and result.counts.invalid == long
    assert checksum(pg_url, table)[0] == 300 - long
    assert again.outcome is Outcome.NOOP and again.counts.invalid == long


def test_a_write_the_database_refuses_fails_the_run_in_its_words_without_row_data(
        pg_url: str, runner: Runner, table: str) -> None:
    _create(pg_url, table, "")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{table}" ALTER COLUMN model_name TYPE varchar(10)')
    with EgenEmulator(count=300) as base:
        models = {(i.get("model") or "").strip() for i in EgenEmulator(count=300).items}
        result = runner(binding(base, table, validation={"database": {"constraints": {"enabled": False}}}))
    assert result.outcome is Outcome.FAILED
    error = result.error or ""
    assert error.startswith("the target database refused the write: value too long for type character "
                            "varying(10)"), error
    assert "constraints on, such rows are rejected" in error
    assert not result.unexpected and result.failure == "database"
    assert not any(m and m in error for m in models)  # libpq's CONTEXT quotes the row: not shown
    assert checksum(pg_url, table)[0] == 0


def test_missing_rows_age_on_a_sqlite_target_too(runner: Runner, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The same ageing through SQLite's date functions (the quickstart's target)."""
    import sqlite3

    db = tmp_path / "aed.db"
    monkeypatch.setenv("AED_TEST_DB", f"sqlite:///{db}")
    monkeypatch.setenv("AED_TEST_KEY", "test-service-key-0042")
    with EgenEmulator(count=50) as base:
        obj = binding(base, "aed")
        assert runner(obj).outcome is Outcome.SUCCEEDED
        with sqlite3.connect(db) as conn:
            conn.executemany("INSERT INTO aed (equipment_serial, data_status) VALUES (?, 'active')",
                             [(f"GONE-{n}",) for n in range(2)])
        assert runner(obj).counts.deleted == 2
        assert runner(obj).outcome is Outcome.NOOP
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE aed SET last_seen_date = date('now', '-9 days') "
                         "WHERE equipment_serial LIKE 'GONE-%'")
        aged = runner(obj)
        assert aged.outcome is Outcome.SUCCEEDED and aged.counts.updated == 2, (aged.outcome, aged.error)
        assert runner(obj).outcome is Outcome.NOOP
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT data_status, consecutive_missing_days, deletion_suspected_date IS NOT "
                            "NULL FROM aed WHERE equipment_serial LIKE 'GONE-%'").fetchall()
    assert set(rows) == {("deletion_suspected", 9, 1)}
