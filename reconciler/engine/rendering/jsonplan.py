"""Stable JSON: sorted keys, one document for all targets, versioned format."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.structs.plans import Plan

FORMAT_VERSION = 1


def plan_document(plan: Plan) -> dict[str, Any]:
    t = plan.target
    return {
        "target": {"kind": t.kind, "namespace": t.namespace, "name": t.name},
        "counts": plan.counts.as_dict(),
        "warnings": list(plan.warnings),
        "drift": list(plan.drift),
        "takeovers": list(plan.takeovers),
        "weakens": list(plan.weakens),
        "pending": list(plan.pending),
        "details": {**{k: v for k, v in plan.details.items() if not k.startswith("_")},
                    **plan.presentation.as_details()},
        "changes": [
            {"action": str(c.action), "item": c.item, "key": c.key, "before": c.before,
             "after": c.after,
             "fields": [{"path": f.path, "before": f.before, "after": f.after} for f in c.fields]}
            for c in plan.changes
        ],
    }


def render_json(plans: Sequence[Plan]) -> str:
    from reconciler.structs.jsonable import jsonable

    totals = {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0, "invalid": 0}
    for plan in plans:
        for key, value in plan.counts.as_dict().items():
            totals[key] += value
    document = {
        "formatVersion": FORMAT_VERSION,
        "changed": any(p.has_changes for p in plans),
        "drifted": any(p.drift for p in plans),
        "inSync": all(p.in_sync for p in plans),
        "totals": totals,
        "plans": [plan_document(p) for p in plans],
    }
    return json.dumps(jsonable(document), sort_keys=True, ensure_ascii=False, indent=2)
