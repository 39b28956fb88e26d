"""Check a status patch as a structural-schema API server would: every field the operator
sends must be declared by the generated CRD (a real server prunes undeclared fields and
the value is silently lost; kmock keeps them), with the declared type."""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML

from reconciler.artifacts.crds import render_crds

_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
          "array": list}


def status_schema(plural: str) -> dict[str, Any]:
    from reconciler.kinds import REGISTRY

    info = next(i for i in REGISTRY.all() if i.plural == plural)
    crd = YAML(typ="safe").load(render_crds((info.load_model(),))[f"{plural}.reconciler.dev.yaml"])
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


def problems(value: Any, schema: dict[str, Any], path: str = ".status") -> list[str]:
    """What a structural schema would prune or reject in `value` (empty: all kept)."""
    if value is None:
        return [] if schema.get("nullable") or path.count(".") <= 2 else [f"{path}: null not allowed"]
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return []
    expected = schema.get("type")
    wrong = expected is not None and not isinstance(value, _TYPES[expected])
    if wrong or (expected == "integer" and isinstance(value, bool)):
        return [f"{path}: expected {expected}, got {type(value).__name__}"]
    out: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                out += problems(item, props[key], f"{path}.{key}")
            elif "additionalProperties" in schema:
                out += problems(item, schema["additionalProperties"], f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                out.append(f"{path}.{key}: not declared by the CRD (pruned by the API server)")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += problems(item, schema["items"], f"{path}[{i}]")
    return out
