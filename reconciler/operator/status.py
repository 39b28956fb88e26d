"""What the operator writes into `status` after a run (pure, unit-tested).

Conditions follow Kubernetes conventions (`Ready`, `Reconciling` only while true, `Stalled`,
`Drifted`) and are always sent whole: kopf patches status with a JSON merge patch, which
replaces lists. `observedGeneration` is the generation the run saw; `lastResult` carries
the run's outcome, trigger, counts, duration and id; a SyncJob also gets `nextRunTime`,
`lastScheduleTime`, `intervalSeconds`, `running` and its target's last real run (the
printer columns of `kubectl get syncjobs`). Every patch is built from the typed models the
CRDs are generated from (`ObjectStatus`, `SyncJobStatus`, `LastResult`), so nothing is sent
that a structural-schema API server would prune. Dry runs never move status.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from reconciler.engine import conditions
from reconciler.models import Condition
from reconciler.models.status import LastResult, ObjectStatus, RunCounts
from reconciler.models.syncjob import SyncJobStatus
from reconciler.structs.runs import RunResult


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


def _dump(status: ObjectStatus, *fields: str) -> dict[str, Any]:
    """The named fields of a typed status as the CRD declares them (camelCase, JSON); a
    field named but None is sent as null (a JSON merge patch then removes it)."""
    data = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    aliases = {name: info.alias or name for name, info in type(status).model_fields.items()}
    return {aliases[f]: data.get(aliases[f]) for f in fields}


def last_result(*, run_id: str, outcome: str, trigger: str | None, counts: Mapping[str, int],
                duration_seconds: float | None, revision: str | None, error: str | None) -> LastResult:
    """The one way a run becomes `status.lastResult` (from a run result or a stored run)."""
    return LastResult(run_id=run_id, outcome=str(outcome), trigger=None if trigger is None else str(trigger),
                      counts=RunCounts.model_validate(dict(counts)),
                      duration_seconds=round(duration_seconds or 0.0, 3), revision=revision, error=error)


def result_of(result: RunResult) -> LastResult:
    c = result.counts
    return last_result(run_id=result.run_id, outcome=result.outcome, trigger=result.trigger,
                       counts={"created": c.created, "updated": c.updated, "deleted": c.deleted,
                               "unchanged": c.unchanged, "invalid": c.invalid},
                       duration_seconds=(result.finished_at - result.started_at).total_seconds(),
                       revision=result.revision, error=result.error)


def run_status(result: RunResult, previous: Mapping[str, Any] | None, *,
               handled_request: str | None = None) -> dict[str, Any]:
    """The status patch after `result` (the whole conditions list). A dry run moves nothing
    but the handled request: only real reconciliations change conditions and results."""
    if result.dry_run:
        return {"lastHandledRunRequest": handled_request} if handled_request is not None else {}
    found = conditions.from_result(_conditions_of(previous), result, generation=result.generation)
    status = ObjectStatus(conditions=found, observed_generation=result.generation,
                          last_run_time=result.started_at, last_result=result_of(result),
                          last_handled_run_request=handled_request, running=False)
    fields = ["conditions", "last_run_time", "last_result", "running"]
    if result.generation is not None:
        fields.append("observed_generation")
    if handled_request is not None:
        fields.append("last_handled_run_request")
    return _dump(status, *fields)


def refused_status(previous: Mapping[str, Any] | None, reason: str, message: str, *,
                   handled_request: str | None = None,
                   condition: str = "RunRequestRefused") -> dict[str, Any]:
    """A run that cannot happen (suspended, target not found): the reason is a condition;
    a forced run's token is handled."""
    found = conditions.set_condition(_conditions_of(previous), condition,
                                     conditions.ConditionStatus.TRUE, reason, message)
    status = ObjectStatus(conditions=found, last_handled_run_request=handled_request)
    if handled_request is None:
        return _dump(status, "conditions")
    return _dump(status, "conditions", "last_handled_run_request")


def schedule_status(*, next_run: datetime | None, last_schedule: datetime | None,
                    interval_seconds: int | None, running: bool,
                    last: LastResult | None, last_run_time: datetime | None) -> dict[str, Any]:
    """A SyncJob's schedule and the last real run of its target, typed as the CRD says."""
    status = SyncJobStatus(next_run_time=next_run, last_schedule_time=last_schedule,
                           interval_seconds=interval_seconds, running=running, last_result=last,
                           last_run_time=last_run_time)
    fields = ["next_run_time", "last_schedule_time", "interval_seconds", "running"]
    if last is not None:
        fields += ["last_result", "last_run_time"]
    return _dump(status, *fields)
