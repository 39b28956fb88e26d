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
