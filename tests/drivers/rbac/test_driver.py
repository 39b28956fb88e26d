"""The RbacMapping driver end to end, on both archive layouts (5.34 columns, 5.35 tables)."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from drivers.rbac.conftest import (
    DEPT_RULE,
    SHAPE,
    ArchiveFactory,
    Runner,
    bindings,
    checksum,
    execute,
    expected_dept_bindings,
    mapping,
    query,
    restamp,
)
from reconciler.drivers.rbac.archive_ddl import Release
from reconciler.drivers.rbac.archive_fixture import add_studies, delete_study
from reconciler.models import Mode
from reconciler.structs.runs import Outcome

pytestmark = pytest.mark.postgres
ADMINS = ("group:pacs-admins", "archive-admin", None)


def test_first_run_creates_the_declared_and_derived_rows_then_a_noop(
        runner: Runner, archive: str, rbac_database: str, schema: str, release: Release) -> None:
    obj = mapping(schema)
    first = runner(obj)
    assert first.outcome is Outcome.SUCCEEDED, first.error
    expected = expected_dept_bindings(archive, release) | {ADMINS}
    assert len(expected) > 50
    assert bindings(rbac_database, schema) == expected
    roles = query(rbac_database, f'SELECT r.name, p.name FROM "{schema}".role_permissions x JOIN '
                                 f'"{schema}".roles r ON r.id = x.role_id JOIN "{schema}".permissions p ON '
                                 f'p.id = x.permission_id')
    assert set(roles) == {("study-reader", "study:read"), ("study-reader", "series:read"),
                          ("archive-admin", "study:read"), ("archive-admin", "series:read"),
                          ("archive-admin", "study:export")}
    markers = query(rbac_database, f'SELECT DISTINCT managed_by FROM "{schema}".bindings')
    assert markers == [("reconciler:RbacMapping/default/archive-rbac",)]
    before = checksum(rbac_database, schema)
    second = runner(obj)
    assert second.outcome is Outcome.NOOP, second.error
    assert second.counts.unchanged == len(expected) + 3 + 2 + 5
    assert checksum(rbac_database, schema) == before


def test_the_plan_lists_grants_per_subject_and_never_a_star_scope(
        runner: Runner, archive: str, schema: str) -> None:
    plan = runner(mapping(schema), dry_run=True).plan
    assert plan is not None
    keys = [c.key for c in plan.changes if c.item == "binding"]
    assert keys == sorted(keys) and keys  # grouped by subject
    assert not any("*" in k for k in keys)
    assert plan.details["bySubject"]["group:pacs-admins"] == {"grant": ["archive-admin"], "revoke": []}
    facts = plan.details["facts"]["dept-readers"]
    # '*' ACLs and absent departments stayed in the archive: every fact read became a binding
    assert facts["facts"] == facts["bindings"] and facts["skipped"]["unknown"] == 0
    assert plan.details["layout"] in ("5.33", "5.35")


def test_foreign_rows_survive_and_full_authority_takes_them(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    assert runner(mapping(schema)).outcome is Outcome.SUCCEEDED
    execute(rbac_database, f'INSERT INTO "{schema}".subjects (name, managed_by) VALUES (%s, %s), (%s, NULL)',
            ("user:kim", "someone-else", "user:lee"))
    execute(rbac_database, f'INSERT INTO "{schema}".bindings (subject_id, role_id, scope) SELECT s.id, r.id, '
                           f"'acl:LEGACY' FROM \"{schema}\".subjects s, \"{schema}\".roles r WHERE s.name IN "
                           "('user:kim', 'user:lee') AND r.name = 'study-reader'")
    execute(rbac_database, f'INSERT INTO "{schema}".roles (name, description) VALUES (%s, %s)',
            ("legacy-viewer", "written by hand"))
    owned = runner(mapping(schema))
    assert owned.outcome is Outcome.NOOP, owned.error
    rows = bindings(rbac_database, schema)
    assert {("user:kim", "study-reader", "acl:LEGACY"), ("user:lee", "study-reader", "acl:LEGACY")} <= rows
    legacy = f'SELECT count(*) FROM "{schema}".roles WHERE name = %s'
    assert query(rbac_database, legacy, ("legacy-viewer",)) == [(1,)]
    full = runner(mapping(schema, ownership={"authority": "full"}, guards={"maxRevokes": "50%"}))
    assert full.outcome is Outcome.SUCCEEDED, full.error
    assert full.counts.deleted == 2 + 2 + 1  # two bindings, their two subjects, the role
    rows = bindings(rbac_database, schema)
    assert not {r for r in rows if r[0] in ("user:kim", "user:lee")}


def test_incremental_reads_only_new_studies_and_grants_their_bindings(
        runner: Runner, archive: str, rbac_database: str, schema: str, release: Release) -> None:
    obj = mapping(schema)
    assert runner(obj).outcome is Outcome.SUCCEEDED
    before = bindings(rbac_database, schema)
    restamp(archive, release, 1, "ACL-RESTAMPED")
    new_acls = tuple(f"ACL-NEW-{i}" for i in range(3))
    with psycopg.connect(archive, autocommit=True) as conn:
        add_studies(conn, release, replace(SHAPE, access_control_ids=new_acls, unrestricted=0.0), 20)
    result = runner(obj, mode=Mode.INCREMENTAL)
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert result.plan is not None
    facts = result.plan.details["facts"]["dept-readers"]
    assert facts["since"] is not None and facts["facts"] < 80  # 20 studies' series, not 240 studies'
    after = bindings(rbac_database, schema)
    assert before < after and result.counts.deleted == 0
    gained = after - before
    assert gained and all(scope.startswith("acl:ACL-NEW-") for _, _, scope in gained if scope)
    assert not any(scope == "acl:ACL-RESTAMPED" for _, _, scope in after)  # an old study: full runs see it
    assert runner(obj, mode=Mode.INCREMENTAL).outcome is Outcome.NOOP
    full = runner(obj)
    assert full.outcome is Outcome.SUCCEEDED, full.error
    assert bindings(rbac_database, schema) == expected_dept_bindings(archive, release) | {ADMINS}


def test_full_run_finds_restamped_and_deleted_studies(
        runner: Runner, archive: str, rbac_database: str, schema: str, release: Release) -> None:
    obj = mapping(schema, guards={"maxRevokes": "100%"})
    assert runner(obj).outcome is Outcome.SUCCEEDED
    for pk in range(2, 30, 2):
        restamp(archive, release, pk, "ACL-MOVED")
    with psycopg.connect(archive, autocommit=True) as conn:
        for pk in range(1, 30, 2):
            delete_study(conn, release, conn.execute("SELECT study_iuid FROM study WHERE pk = %s",
                                                     (pk,)).fetchone()[0])
    expected = expected_dept_bindings(archive, release) | {ADMINS}
    incremental = runner(obj, mode=Mode.INCREMENTAL)
    assert incremental.counts.deleted == 0  # no tombstones: only a full run can see deletions
    full = runner(obj)
    assert full.outcome is Outcome.SUCCEEDED, full.error
    assert full.counts.deleted > 0 and full.counts.created > 0
    assert bindings(rbac_database, schema) == expected


def test_proof_mode_converges_and_leaves_the_target_unchanged(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    first = runner(mapping(schema), dry_run=True, verify=True)
    assert first.outcome is Outcome.PLANNED, first.error
    assert first.plan is not None and first.plan.presentation.verification.converged is True
    assert checksum(rbac_database, schema).startswith("schema_version:absent")  # not even the schema
    assert runner(mapping(schema)).outcome is Outcome.SUCCEEDED
    execute(archive, "DELETE FROM mwl_item")  # unrelated; then a plan that changes something
    before = checksum(rbac_database, schema)
    auditors = {"subject": "group:auditors", "role": "study-reader", "scope": "acl:X"}
    changed = mapping(schema, bindings=[auditors])
    proof = runner(changed, dry_run=True, verify=True)
    assert proof.plan is not None
    verification = proof.plan.presentation.verification
    assert verification is not None and verification.converged and verification.remaining == 0
    assert proof.plan.counts.created == 2 and proof.plan.counts.deleted == 2  # subject+binding in, admin out
    assert checksum(rbac_database, schema) == before


def test_guard_aborts_a_mass_revocation_and_writes_nothing(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    assert runner(mapping(schema)).outcome is Outcome.SUCCEEDED
    before = checksum(rbac_database, schema)
    narrowed = mapping(schema, derive=[{**_rule(), "filters": [
        {"field": "institution", "operator": "equals", "values": ["SEOUL-GENERAL"]}]}])
    result = runner(narrowed)
    assert result.outcome is Outcome.ABORTED
    assert result.error is not None and "guard maxRevokes aborted the run" in result.error
    assert checksum(rbac_database, schema) == before
    planned = runner(narrowed, dry_run=True)
    assert planned.plan is not None and any("maxRevokes would abort" in w for w in planned.plan.warnings)


def test_an_aborted_run_records_nothing_applied_and_keeps_the_planned_figures(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    from datetime import UTC, datetime

    from reconciler.status import object_statuses

    obj = mapping(schema)
    assert runner(obj).outcome is Outcome.SUCCEEDED
    narrowed = mapping(schema, derive=[{**_rule(), "filters": [
        {"field": "institution", "operator": "equals", "values": ["SEOUL-GENERAL"]}]}])
    result = runner(narrowed)
    assert result.outcome is Outcome.ABORTED
    assert result.plan is not None
    planned = result.plan.counts.deleted
    assert planned > 10
    assert result.counts.deleted == 0 and result.counts.created == 0 and result.counts.updated == 0
    record = runner.store.run(result.run_id)
    assert record is not None and record.counts["deleted"] == 0 and record.counts["created"] == 0
    assert f"planned, not applied: 0 created, 0 updated, {planned} deleted" in record.warnings
    (row,) = object_statuses(runner.store, None, now=datetime.now(UTC))
    assert row.result == "aborted" and row.counts is not None and row.counts["deleted"] == 0


def test_empty_facts_never_revoke_everything(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    assert runner(mapping(schema)).outcome is Outcome.SUCCEEDED
    before = checksum(rbac_database, schema)
    execute(archive, "TRUNCATE series CASCADE")
    result = runner(mapping(schema, guards={"maxRevokes": "100%"}))
    assert result.outcome is Outcome.ABORTED
    assert result.error is not None and "dept-readers found no facts" in result.error
    assert checksum(rbac_database, schema) == before
    allowed = runner(mapping(schema, guards={"maxRevokes": "100%", "allowEmptyFacts": True}))
    assert allowed.outcome is Outcome.SUCCEEDED, allowed.error
    assert bindings(rbac_database, schema) == {ADMINS}


def test_a_failed_apply_leaves_the_target_exactly_as_it_was(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    assert runner(mapping(schema)).outcome is Outcome.SUCCEEDED
    victim = sorted(s for s, _, _ in bindings(rbac_database, schema) if s.startswith("dept:"))[0]
    execute(rbac_database, f"""
        CREATE FUNCTION "{schema}".refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'subject % is protected', OLD.name; END $$;
        CREATE TRIGGER protect BEFORE DELETE ON "{schema}".subjects FOR EACH ROW
        WHEN (OLD.name = '{victim}') EXECUTE FUNCTION "{schema}".refuse()""")
    before = checksum(rbac_database, schema)
    institution = victim.split(":", 1)[1].split("/", 1)[0]
    without = mapping(schema, guards={"maxRevokes": "100%"}, derive=[{**_rule(), "filters": [
        {"field": "institution", "operator": "notEquals", "values": [institution]}]}])
    result = runner(without)
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and "is protected" in result.error
    assert "nothing was written" in result.error
    assert checksum(rbac_database, schema) == before  # the victim's bindings were not revoked either


def test_an_unknown_layout_is_refused_naming_what_was_found(
        runner: Runner, make_archive: ArchiveFactory, rbac_database: str, schema: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_archive("5.35")
    execute(url, "DROP TABLE series_access_control_id")  # a half-applied 5.35 upgrade
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", url)
    monkeypatch.setenv("RBAC_DATABASE_URL", rbac_database)
    result = runner(mapping(schema))
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and "half-applied 5.35 upgrade" in result.error
    assert "the table study_access_control_id exists but series_access_control_id does not" in result.error
    assert checksum(rbac_database, schema).startswith("schema_version:absent")


def test_escape_hatch_query_feeds_templates_and_cannot_write(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    query_rule = {"name": "modality-readers", "subject": "modality:{modality}", "role": "study-reader",
                  "query": {"name": "ct_like", "sql": "SELECT DISTINCT modality FROM series "
                                                      "WHERE modality LIKE 'C%' -- CT and CR\n;"}}
    result = runner(mapping(schema, derive=[query_rule]))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert {b for b in bindings(rbac_database, schema) if b[0].startswith("modality:")} == {
        ("modality:CT", "study-reader", None), ("modality:CR", "study-reader", None)}
    writing = {**query_rule, "query": {"name": "sneaky", "sql": "SELECT nextval('study_pk_seq') AS modality"}}
    refused = runner(mapping(schema, derive=[writing]))
    assert refused.outcome is Outcome.FAILED
    assert refused.error is not None and "read-only transaction" in refused.error


def test_secret_values_never_appear_in_errors(runner: Runner, archive: str, schema: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", "postgresql://reader:s3cret-pw@127.0.0.1:1/archive")
    result = runner(mapping(schema))
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and "cannot connect to the archive database" in result.error
    assert "s3cret-pw" not in result.error and "env:ARCHIVE_DATABASE_URL" in result.error


def _rule() -> dict[str, object]:
    return dict(DEPT_RULE)


def test_delete_policy_removes_only_the_rows_the_mapping_created(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    import asyncio

    obj = mapping(schema, deletionPolicy="Delete")
    assert runner(obj).outcome is Outcome.SUCCEEDED
    execute(rbac_database, f'INSERT INTO "{schema}".subjects (name) VALUES (%s)', ("user:lee",))
    execute(rbac_database, f'INSERT INTO "{schema}".bindings (subject_id, role_id, scope) SELECT s.id, r.id, '
                           f"'acl:LEGACY' FROM \"{schema}\".subjects s, \"{schema}\".roles r WHERE "
                           "s.name = 'user:lee' AND r.name = 'study-reader'")
    result = asyncio.run(runner.orchestrator.delete(obj))
    assert result is not None and result.outcome is Outcome.SUCCEEDED, result and result.error
    assert result.trigger == "delete" and result.counts.deleted > 50
    assert bindings(rbac_database, schema) == {("user:lee", "study-reader", "acl:LEGACY")}
    # the role a foreign binding still uses stays whole, its permissions with it (owned, with a
    # warning) until that binding goes: the binding keeps granting what it granted
    assert runner.store.inventory(obj.ref) == frozenset({
        "role:study-reader", "role-permission:study-reader/study:read",
        "role-permission:study-reader/series:read", "permission:study:read", "permission:series:read"})
    assert result.plan is not None and any("study-reader" in w and "stays" in w for w in result.plan.warnings)
    orphan = mapping(schema, name="other")
    assert asyncio.run(runner.orchestrator.delete(orphan)) is None  # Orphan: nothing happens


# Part 1 of dcm4chee-arc-light's update-5.35-psql.sql ("can be applied on archive running
# archive 5.34"): both new tables, empty, with their foreign keys; the old columns keep NOT NULL.
UPDATE_5_35_PART_1 = (
    "CREATE TABLE study_access_control_id (study_fk bigint NOT NULL, access_control_id varchar(255))",
    "ALTER TABLE IF EXISTS study_access_control_id ADD CONSTRAINT study_acl_study_fk "
    "FOREIGN KEY (study_fk) REFERENCES study",
    "CREATE TABLE series_access_control_id (series_fk bigint NOT NULL, access_control_id varchar(255))",
    "ALTER TABLE IF EXISTS series_access_control_id ADD CONSTRAINT series_acl_series_fk "
    "FOREIGN KEY (series_fk) REFERENCES series",
)


def test_a_half_applied_5_35_upgrade_is_refused_and_the_watermark_stays(
        runner: Runner, make_archive: ArchiveFactory, rbac_database: str, schema: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_archive("5.34")
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", url)
    monkeypatch.setenv("RBAC_DATABASE_URL", rbac_database)
    obj = mapping(schema)
    assert runner(obj).outcome is Outcome.SUCCEEDED
    watermarks = runner.store.watermarks(obj.ref)
    before = checksum(rbac_database, schema)
    for statement in UPDATE_5_35_PART_1:
        execute(url, statement)
    # a study stamped in the window: the running 5.34 archive writes the old columns only
    with psycopg.connect(url, autocommit=True) as conn:
        add_studies(conn, "5.34", replace(SHAPE, access_control_ids=("ACL-WINDOW",), unrestricted=0.0,
                                          series_unrestricted=0.0, series_own=0.0), 1)
    for mode in (Mode.INCREMENTAL, Mode.FULL):
        result = runner(obj, mode=mode)
        assert result.outcome is Outcome.FAILED, (mode, result.outcome)
        assert result.error is not None and "half-applied 5.35 upgrade" in result.error
        assert "study.access_control_id and series.access_control_id are still NOT NULL" in result.error
        assert "part 2 of update-5.35-psql.sql" in result.error
        assert runner.store.watermarks(obj.ref) == watermarks  # the window's study is not skipped later
        assert checksum(rbac_database, schema) == before  # nothing revoked
    # part 2 (fill the tables, drop NOT NULL): now a 5.35 archive, and the window's study is granted
    execute(url, "INSERT INTO study_access_control_id SELECT pk, access_control_id FROM study "
                 "WHERE access_control_id <> '*'")
    execute(url, "INSERT INTO series_access_control_id SELECT pk, access_control_id FROM series "
                 "WHERE access_control_id <> '*'")
    execute(url, "ALTER TABLE study ALTER access_control_id DROP NOT NULL")
    execute(url, "ALTER TABLE series ALTER access_control_id DROP NOT NULL")
    after = runner(obj, mode=Mode.INCREMENTAL)
    assert after.outcome is Outcome.SUCCEEDED, after.error
    assert after.plan is not None and after.plan.details["layout"] == "5.35"
    window = {b for b in bindings(rbac_database, schema) if b[2] == "acl:ACL-WINDOW"}
    assert window and len(window) == len(query(url, "SELECT DISTINCT institution, department FROM series "
                                                    "WHERE access_control_id = 'ACL-WINDOW' "
                                                    "AND department <> '*'"))


def _restore_without_statistics(url: str, table: str) -> None:
    """`table` as pg_restore leaves it: rows and indexes (CREATE INDEX sets reltuples) but no
    column statistics until someone runs ANALYZE (autovacuum kept off so it stays that way)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table}_restored (LIKE {table} INCLUDING ALL) "
                     "WITH (autovacuum_enabled = false)")
        conn.execute(f"INSERT INTO {table}_restored SELECT * FROM {table}")
        conn.execute(f"DROP TABLE {table} CASCADE")
        conn.execute(f"ALTER TABLE {table}_restored RENAME TO {table}")


def test_missing_planner_statistics_are_named_with_the_fix(
        runner: Runner, make_archive: ArchiveFactory, rbac_database: str, schema: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_archive("5.34")
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", url)
    monkeypatch.setenv("RBAC_DATABASE_URL", rbac_database)
    _restore_without_statistics(url, "series")
    assert query(url, "SELECT count(*) FROM pg_stats WHERE tablename = 'series'") == [(0,)]
    result = runner(mapping(schema))
    assert result.outcome is Outcome.SUCCEEDED, result.error
    assert result.plan is not None
    (warning,) = [w for w in result.plan.warnings if "statistics" in w]
    assert "series" in warning and "study" not in warning.split(":")[0]
    assert "ANALYZE series" in warning
    record = runner.store.run(result.run_id)
    assert record is not None and warning in record.warnings
    execute(url, "ANALYZE series")
    again = runner(mapping(schema))
    assert again.plan is not None and not [w for w in again.plan.warnings if "statistics" in w]


def test_a_wrong_watermark_column_is_named_with_the_columns_that_exist(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    obj = mapping(schema, sync={"watermarkColumn": "created_at"})
    for mode in (Mode.FULL, Mode.INCREMENTAL):
        result = runner(obj, mode=mode)
        assert result.outcome is Outcome.FAILED
        assert result.error_type != "UndefinedColumn" and result.error is not None
        assert "sync.watermarkColumn 'created_at'" in result.error
        assert "table study has no column created_at" in result.error
        assert "created_time" in result.error and "updated_time" in result.error
        assert "study_time" not in result.error.split("all its columns")[0]  # varchar: not a timestamp
    assert checksum(rbac_database, schema).startswith("schema_version:absent")


@pytest.mark.parametrize("column", ["study_date", "study_time", "version"])
def test_a_watermark_column_that_is_not_a_timestamp_is_named_with_its_type(
        runner: Runner, archive: str, rbac_database: str, schema: str, column: str) -> None:
    obj = mapping(schema, sync={"watermarkColumn": column})
    for mode in (Mode.FULL, Mode.INCREMENTAL):
        result = runner(obj, mode=mode)
        assert result.outcome is Outcome.FAILED
        assert result.error_type not in ("AttributeError", "TypeError"), result.error
        assert f"sync.watermarkColumn {column!r}: study.{column} is " in (result.error or "")
        assert "not a timestamp" in (result.error or "") and "updated_time" in (result.error or "")
    assert checksum(rbac_database, schema).startswith("schema_version:absent")


def test_a_lost_store_still_revokes_what_carries_the_mappings_marker(
        runner: Runner, archive: str, rbac_database: str, schema: str, release: Release,
        tmp_path) -> None:
    """The marker in the target is the ownership claim: with a new store (a CI runner's,
    a reset state folder) a full run still revokes the marked bindings nobody wants any
    more, among them a marked binding edited by hand. Unmarked and foreign rows stay."""
    from reconciler.store import Store

    obj = mapping(schema, guards={"maxRevokes": "100%"})
    assert runner(obj).outcome is Outcome.SUCCEEDED
    fresh = Store.open(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        again = Runner(fresh)
        assert again(obj).outcome is Outcome.NOOP  # desired marked rows: adopted back, nothing written
        for pk in range(2, 12, 2):
            restamp(archive, release, pk, "ACL-MOVED")
        execute(rbac_database, f'UPDATE "{schema}".bindings SET scope = %s WHERE id = '
                               f'(SELECT min(id) FROM "{schema}".bindings WHERE scope IS NOT NULL)',
                ("acl:ACL-BY-HAND",))
        execute(rbac_database, f'INSERT INTO "{schema}".subjects (name) VALUES (%s)', ("user:by-hand",))
        execute(rbac_database, f'INSERT INTO "{schema}".bindings (subject_id, role_id, scope) '
                               f'SELECT s.id, r.id, NULL FROM "{schema}".subjects s, "{schema}".roles r '
                               f'WHERE s.name = %s AND r.name = %s', ("user:by-hand", "study-reader"))
        result = again(obj)
        assert result.outcome is Outcome.SUCCEEDED, result.error
        assert result.counts.deleted > 0
        expected = expected_dept_bindings(archive, release) | {ADMINS, ("user:by-hand", "study-reader", None)}
        assert bindings(rbac_database, schema) == expected
    finally:
        fresh.close()


def test_hand_edits_are_drift_and_refuse_drift_keeps_them(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    """A role description edited by hand, a binding this mapping wrote deleted by hand and a
    binding added by hand with the mapping's marker are drift: the plan names them, the run
    that puts them back says so (reverted), and `--refuse-drift` stops instead, writing
    nothing. A description changed in the spec is a change, not drift."""
    from reconciler.engine.guards import RefuseDrift

    obj = mapping(schema)
    first = runner(obj)
    assert first.outcome is Outcome.SUCCEEDED and first.drift == ()
    removed = query(rbac_database, f'SELECT b.id, s.name, r.name, b.scope FROM "{schema}".bindings b JOIN '
                                   f'"{schema}".subjects s ON s.id = b.subject_id JOIN "{schema}".roles r ON '
                                   f'r.id = b.role_id WHERE b.scope IS NOT NULL ORDER BY b.id LIMIT 1')[0]
    execute(rbac_database, f'DELETE FROM "{schema}".bindings WHERE id = %s', (removed[0],))
    execute(rbac_database, f'UPDATE "{schema}".roles SET description = %s WHERE name = %s',
            ("HACKED", "study-reader"))
    execute(rbac_database, f'INSERT INTO "{schema}".bindings (subject_id, role_id, scope, managed_by) '
                           f'SELECT s.id, r.id, %s, %s FROM "{schema}".subjects s, "{schema}".roles r '
                           f'WHERE s.name = %s AND r.name = %s',
            ("acl:BY-HAND", "reconciler:RbacMapping/default/archive-rbac", "group:pacs-admins",
             "study-reader"))
    edited = checksum(rbac_database, schema)
    expected = {"role:study-reader", f"{removed[1]} → {removed[2]} @ {removed[3]}",
                "group:pacs-admins → study-reader @ acl:BY-HAND"}

    plan = runner(obj, dry_run=True).plan
    assert plan is not None and set(plan.drift) == expected

    refused = runner(obj, guards=[RefuseDrift()])
    assert refused.outcome is Outcome.ABORTED, refused.error
    assert checksum(rbac_database, schema) == edited

    reverted = runner(obj)
    assert reverted.outcome is Outcome.SUCCEEDED, reverted.error
    assert set(reverted.reverted) == expected
    assert runner(obj).outcome is Outcome.NOOP

    changed = mapping(schema, roles=[{**role, "description": "Reads studies (new text)"}
                                     if role["name"] == "study-reader" else role
                                     for role in obj.spec.model_dump(by_alias=True)["roles"]])
    spec_change = runner(changed)
    assert spec_change.outcome is Outcome.SUCCEEDED and spec_change.counts.updated == 1
    assert spec_change.drift == () and spec_change.reverted == ()
