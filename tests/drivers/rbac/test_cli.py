"""`reconciler plan --verify` and `apply` on an RbacMapping, as users run them (real processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from drivers.rbac.conftest import checksum, mapping
from reconciler.loading import load_specs

pytestmark = pytest.mark.postgres
REPO = Path(__file__).parents[3]


def reconciler(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECONCILER_STATE_DIR": str(tmp_path / "state"), "RECONCILER_LOG_FORMAT": "json"}
    env.pop("RECONCILER_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_plan_verify_proves_the_plan_and_writes_nothing(tmp_path: Path, archive: str, rbac_database: str,
                                                        schema: str) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    with (specs / "rbac.yaml").open("w") as out:
        YAML().dump(mapping(schema).model_dump(by_alias=True, mode="json", exclude_none=True), out)
    proof = reconciler(tmp_path, "plan", "specs", "--verify", "--format", "json")
    assert proof.returncode == 0, proof.stderr[-2000:]
    document = json.loads(proof.stdout)
    assert document["plans"][0]["details"]["verification"]["converged"] is True
    assert "verify: RbacMapping/archive-rbac: proven" in proof.stderr
    assert checksum(rbac_database, schema).startswith("schema_version:absent")
    applied = reconciler(tmp_path, "apply", "specs")
    assert applied.returncode == 0 and "RbacMapping/archive-rbac: succeeded" in applied.stdout
    again = reconciler(tmp_path, "plan", "specs", "--verify", "--detailed-exitcode")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "No changes." in again.stdout


def test_the_example_spec_set_is_valid() -> None:
    specs = load_specs(REPO / "examples" / "rbac")
    assert sorted(o.KIND for o in specs) == ["RbacMapping", "SyncJob", "SyncJob"]


HEADER = "apiVersion: reconciler.dev/v1alpha1\nkind: RbacMapping\nmetadata: {name: m}\nspec:\n"


def validate(tmp_path: Path, name: str, spec: str) -> subprocess.CompletedProcess[str]:
    """`reconciler validate specs` on one RbacMapping file whose spec (indented) is `spec`."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / name).write_text(HEADER + spec)
    return reconciler(tmp_path, "validate", "specs")


def test_validate_names_every_problem_between_fields_at_its_own_place(tmp_path: Path) -> None:
    result = validate(tmp_path, "bad.yaml", (
        "  permissions:\n"
        '    - {name: "study:read"}\n'
        '    - {name: "study:read"}\n'
        "  roles:\n"
        '    - {name: study-reader, permissions: ["study:read", "study:write"]}\n'
        "    - {name: study-reader}\n"
        "  bindings:\n"
        '    - {subject: "group:readers", role: study-raeder}\n'
        '    - {subject: " group:x ", role: study-reader}\n'
        "  target:\n"
        "    databaseUrl: {env: RBAC_DATABASE_URL}\n"
        "    managedSchema: {schema: rbac}\n"))
    assert result.returncode == 1
    where = "specs/bad.yaml"
    for expected in (f"{where}:7:14: spec.permissions[1].name: expected unique permission names",
                     f"{where}:10:14: spec.roles[1].name: expected unique role names",
                     f"{where}:9:56: spec.roles[0].permissions[1]: expected role 'study-reader' to use",
                     f"{where}:12:40: spec.bindings[0].role: expected binding of 'group:readers' to name",
                     f"{where}:13:17: spec.bindings[1].subject: expected a subject without surrounding"):
        assert expected in result.stderr, result.stderr
    assert "5 problem(s)" in result.stderr


def test_validate_names_a_misspelt_placeholder_and_filter_field_with_the_columns(tmp_path: Path) -> None:
    result = validate(tmp_path, "rule.yaml", (
        "  source: {databaseUrl: {env: ARCHIVE_DATABASE_URL}}\n"
        '  permissions: [{name: "study:read"}]\n'
        '  roles: [{name: study-reader, permissions: ["study:read"]}]\n'
        "  derive:\n"
        "    - name: dept-readers\n"
        "      facts: study-access-control\n"
        "      filters: [{field: modalty, operator: equals, values: [CT]}]\n"
        '      subject: "dept:{institution}/{departmnet}"\n'
        "      role: study-reader\n"
        '      scope: "acl:{access_control_id}"\n'
        "  target:\n"
        "    databaseUrl: {env: RBAC_DATABASE_URL}\n"
        "    managedSchema: {schema: rbac}\n"))
    assert result.returncode == 1
    subject = ("specs/rule.yaml:12:16: spec.derive[0].subject: expected placeholder {departmnet} to be a "
               "column of fact set 'study-access-control', got 'departmnet'; did you mean 'department'?")
    field = ("specs/rule.yaml:11:25: spec.derive[0].filters[0].field: expected the filter's field to be a "
             "column of fact set 'study-access-control', got 'modalty'; did you mean 'modality'?")
    assert subject in result.stderr and field in result.stderr, result.stderr
