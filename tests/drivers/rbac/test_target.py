"""The RBAC target: a mapping onto existing tables, a schema that is not ours, spec refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.rbac.conftest import Runner, execute, mapping, query
from reconciler.errors import SpecError
from reconciler.loading import load_specs
from reconciler.structs.runs import Outcome

pytestmark = pytest.mark.postgres

EXISTING = """
CREATE SCHEMA "{s}";
CREATE TABLE "{s}"."AppRole" ("RoleId" serial PRIMARY KEY, "RoleName" text UNIQUE NOT NULL);
CREATE TABLE "{s}".perm (id serial PRIMARY KEY, name text UNIQUE NOT NULL, description text);
CREATE TABLE "{s}".role_perm (role_id int REFERENCES "{s}"."AppRole",
                              permission_id int REFERENCES "{s}".perm);
CREATE TABLE "{s}".principal (id serial PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE "{s}".grants (subject_id int REFERENCES "{s}".principal, role_id int REFERENCES "{s}"."AppRole",
                           "Scope" text);
INSERT INTO "{s}"."AppRole" ("RoleName") VALUES ('legacy-viewer');
INSERT INTO "{s}".principal (name) VALUES ('user:kim');
INSERT INTO "{s}".grants SELECT 1, 1, 'acl:OLD';
"""


def existing(schema: str) -> dict[str, object]:
    return {"databaseUrl": {"env": "RBAC_DATABASE_URL"}, "existingSchema": {"tables": {
        "roles": {"table": f"{schema}.AppRole", "columns": {"id": "RoleId", "name": "RoleName"}},
        "permissions": {"table": f"{schema}.perm"},
        "rolePermissions": {"table": f"{schema}.role_perm"},
        "subjects": {"table": f"{schema}.principal"},
        "bindings": {"table": f"{schema}.grants", "columns": {"scope": "Scope"}}}}}


def test_a_mapping_onto_existing_tables_with_quoted_names_keeps_their_rows(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    execute(rbac_database, EXISTING.format(s=schema))
    obj = mapping(schema, target=existing(schema), guards={"maxRevokes": "100%"})
    first = runner(obj)
    assert first.outcome is Outcome.SUCCEEDED, first.error
    names = {r[0] for r in query(rbac_database, f'SELECT "RoleName" FROM "{schema}"."AppRole"')}
    assert names == {"legacy-viewer", "study-reader", "archive-admin"}
    grants = query(rbac_database, f'SELECT p.name, g."Scope" FROM "{schema}".grants g '
                                  f'JOIN "{schema}".principal p ON p.id = g.subject_id')
    assert ("user:kim", "acl:OLD") in grants and ("group:pacs-admins", None) in grants
    assert len(grants) > 50
    assert runner(obj).outcome is Outcome.NOOP
    fewer = mapping(schema, target=existing(schema), derive=[], guards={"maxRevokes": "100%"})
    removed = runner(fewer)
    assert removed.outcome is Outcome.SUCCEEDED, removed.error
    left = query(rbac_database, f'SELECT p.name, g."Scope" FROM "{schema}".grants g '
                                f'JOIN "{schema}".principal p ON p.id = g.subject_id')
    assert sorted(left, key=str) == sorted([("user:kim", "acl:OLD"), ("group:pacs-admins", None)], key=str)


def test_an_existing_table_without_a_required_column_is_named(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    execute(rbac_database, EXISTING.format(s=schema))
    target = existing(schema)
    target["existingSchema"]["tables"]["bindings"]["columns"] = {}  # type: ignore[index]
    result = runner(mapping(schema, target=target))
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and f"{schema}.grants has no column 'scope'" in result.error


def test_a_schema_someone_else_created_is_not_taken_over(
        runner: Runner, archive: str, rbac_database: str, schema: str) -> None:
    execute(rbac_database, f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".roles (id int)')
    result = runner(mapping(schema))
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and "no schema_version table" in result.error
    assert query(rbac_database, "SELECT to_regclass(%s)", (f'"{schema}".bindings',)) == [(None,)]


def test_an_escape_hatch_that_is_not_a_single_select_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "rbac.yaml").write_text("""\
apiVersion: reconciler.dev/v1alpha1
kind: RbacMapping
metadata: {name: m}
spec:
  source: {databaseUrl: {env: A}}
  roles: [{name: reader}]
  derive:
    - name: sneaky
      query: {name: q, sql: "SELECT 1 AS x; UPDATE study SET access_control_id = '*'"}
      subject: "x:{x}"
      role: reader
  target: {databaseUrl: {env: T}, managedSchema: {}}
""")
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path)
    message = str(info.value)
    assert "rbac.yaml:" in message and "spec.derive[0].query.sql" in message
    assert "expected a single SELECT statement" in message
