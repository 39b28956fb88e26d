"""Every shipped example folder loads and validates as a whole spec set."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.loading import load_specs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("folder", ["agents", "aed", "rbac", "kubernetes/resources"])
def test_example_folder_is_a_valid_spec_set(folder: str) -> None:
    specs = load_specs(EXAMPLES / folder)
    assert len(specs) > 0
    targets = {o.ref for o in specs if o.KIND != "SyncJob"}
    for job in specs.of_kind("SyncJob"):
        assert job.target in targets, f"{folder}: {job.ref.short} points at a missing {job.target.short}"


def test_kubernetes_resources_hold_secret_references_only() -> None:
    specs = load_specs(EXAMPLES / "kubernetes" / "resources")
    kinds = {o.KIND for o in specs}
    assert {"AedSourceBinding", "AgentConfig", "RbacMapping", "SyncJob"} <= kinds
    rbac = next(o for o in specs if o.KIND == "RbacMapping")
    assert rbac.spec.source.database_url.secret_ref is not None  # type: ignore[attr-defined]
    assert rbac.spec.target.database_url.secret_ref is not None  # type: ignore[attr-defined]
