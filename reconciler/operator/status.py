"""What the operator writes into `status` after a run (pure, unit-tested).

Conditions follow Kubernetes conventions (`Ready`, `Reconciling` only while true, `Stalled`,
`Drifted`) and are always sent whole: kopf patches status with a JSON merge patch, which
replaces lists. `observedGeneration` is the generation the run saw; `lastResult` carries
the run's outcome, counts and id; a SyncJob also gets `nextRunTime` and `lastScheduleTime`
(the printer columns of `kubectl get syncjobs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reconciler.engine import conditions
from reconciler.engine.runs import RunResult
from reconciler.models import Condition


def _conditions_of(status: Mapping[str, Any] | None) -> list[Condition]:
    raw = (status or {}).get("conditions") or []
    out = []
    for item in raw:
        try:
            out.append(Condition.model_validate(item))
        except ValueError:
            continue
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def run_status(result: RunResult, previous: Mapping[str, Any] | None, *,
               handled_request: str | None = None) -> dict[str, Any]:
    """The status patch after `result` (the whole conditions list)."""
    found = conditions.from_result(_conditions_of(previous), result, generation=result.generation)
    c = result.counts
    patch: dict[str, Any] = {
        "conditions": [cond.model_dump(mode="json", by_alias=True, exclude_none=True) for cond in found],
        "lastRunTime": _iso(result.started_at),
        "lastResult": {"outcome": str(result.outcome), "runId": result.run_id, "trigger": str(result.trigger),
                       "created": c.created, "updated": c.updated, "deleted": c.deleted,
                       "unchanged": c.unchanged, "invalid": c.invalid,
                       **({"error": result.error} if result.error else {})},
    }
    if result.generation is not None:
        patch["observedGeneration"] = result.generation
    if handled_request is not None:
        patch["lastHandledRunRequest"] = handled_request
    return patch


def refused_status(previous: Mapping[str, Any] | None, reason: str, message: str, *,
                   handled_request: str) -> dict[str, Any]:
    """A forced run refused (suspended): the token is handled, the reason is a condition."""
    found = conditions.set_condition(_conditions_of(previous), "RunRequestRefused",
                                     conditions.ConditionStatus.TRUE, reason, message)
    return {"conditions": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in found],
            "lastHandledRunRequest": handled_request}


def schedule_status(next_run: datetime | None, last_schedule: datetime | None) -> dict[str, Any]:
    return {"nextRunTime": _iso(next_run), "lastScheduleTime": _iso(last_schedule)}


