"""Generated files: committed JSON Schemas and CRDs match the models; CRDs are structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.artifacts import render_crds, render_json_schemas
from reconciler.artifacts.crds import crd
from reconciler.models import BUILTIN_KINDS, SyncJob

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize(("folder", "render"), [
    ("specs/schemas", render_json_schemas),
    ("charts/reconciler/crds", render_crds),
])
def test_committed_generated_files_match_the_models(folder: str, render) -> None:
    expected = render()
    committed = {p.name: p.read_text(encoding="utf-8") for p in (REPO / folder).iterdir()}
    stale = sorted(name for name, text in expected.items() if committed.get(name) != text)
    assert not stale, f"regenerate with `reconciler schema` / `reconciler crds`: {stale}"
    assert set(committed) == set(expected)


def _walk(node: Any, path: str = "") -> list[str]:
    """Every place in a schema that breaks Kubernetes' structural-schema rules."""
    bad: list[str] = []
    if not isinstance(node, dict):
        return bad
    if "$ref" in node or "$defs" in node:
        bad.append(f"{path}: $ref")
    has_type = "type" in node or node.get("x-kubernetes-int-or-string") \
        or node.get("x-kubernetes-preserve-unknown-fields")
    if not has_type:
        bad.append(f"{path}: no type")
    if "properties" in node and "additionalProperties" in node:
        bad.append(f"{path}: properties with additionalProperties")
    for key, value in node.get("properties", {}).items():
        bad += _walk(value, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        bad += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        bad += _walk(node["additionalProperties"], f"{path}{{}}")
    return bad


@pytest.mark.parametrize("model", BUILTIN_KINDS, ids=lambda m: m.KIND)
def test_crd_schemas_are_structural(model) -> None:
    schema = crd(model)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []


def test_syncjob_crd_has_short_name_status_and_printer_columns() -> None:
    text = render_crds()["syncjobs.reconciler.dev.yaml"]
    document = YAML(typ="safe").load(text)
    version = document["spec"]["versions"][0]
    assert document["spec"]["names"]["shortNames"] == ["sj"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if c.get("priority", 0) == 0]
    assert columns == ["Target", "Schedule", "Suspended", "Last Run", "Result", "Next Run", "Age"]
    # kubectl renders a `date` column as an age: a time in the future prints `<invalid>`.
    types = {c["name"]: c["type"] for c in version["additionalPrinterColumns"]}
    assert types["Next Run"] == "string" and types["Last Run"] == "date"
    assert types["Running"] == "boolean"
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["concurrencyPolicy"]["enum"] == ["Forbid", "Replace", "Allow"]


def test_json_schema_knows_every_syncjob_field() -> None:
    import json

    schema = json.loads(render_json_schemas()["syncjob.json"])
    spec = schema["$defs"]["SyncJobSpec"]["properties"]
    assert {"targetRef", "schedule", "interval", "timeZone", "suspend", "mode", "dryRun",
            "concurrencyPolicy", "startingDeadlineSeconds", "historyLimit"} <= set(spec)
    assert SyncJob.KIND == "SyncJob"
