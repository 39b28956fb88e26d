"""The status view: every object with its last run, and SyncJobs with their next run.

`reconciler status` (and later the HTTP API) read this one function. The facts come from
the store's runs; the spec set, when given, adds objects that never ran and the SyncJobs'
schedules. Ready is derived from the last run's outcome with the condition helpers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.engine.conditions import ready_for_outcome
from reconciler.loading.specs import SpecSet
from reconciler.models import ObjectRef, SyncJob
from reconciler.ports import RunHistory, StatusStore
from reconciler.structs.records import RunDetail, RunRecord
from reconciler.structs.runs import Outcome
from reconciler.structs.schedules import ScheduleState


class StatusRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    object: str
    kind: str
    namespace: str
    name: str
    ready: str
    reason: str
    message: str = ""
    last_run_id: str | None = None
    last_run_time: datetime | None = None
    result: str | None = None
    counts: dict[str, int] | None = None
    target: str | None = None
    schedule: str | None = None
    suspended: bool | None = None
    next_run_time: datetime | None = None
    drifted: list[str] = []


def _row(ref: ObjectRef, last: RunRecord | None, **extra: Any) -> StatusRow:
    if last is None:
        ready, reason, message = "Unknown", "NeverRun", "not reconciled yet"
    else:
        status, reason = ready_for_outcome(Outcome(last.outcome), last.error)
        ready = status.value
        c = last.counts
        message = last.error or (
            f"{c['created']} created, {c['updated']} updated, "
            f"{c['deleted']} deleted, {c['unchanged']} unchanged"
        )
    return StatusRow(
        object=ref.short,
        kind=ref.kind,
        namespace=ref.namespace,
        name=ref.name,
        ready=ready,
        reason=reason,
        message=message,
        last_run_id=last.id if last else None,
        last_run_time=last.started_at if last else None,
        result=last.outcome if last else None,
        counts=last.counts if last else None,
        drifted=list(last.drift) if last else [],
        **extra,
    )


def object_statuses(store: StatusStore, specs: SpecSet | None, *, now: datetime) -> list[StatusRow]:
    from reconciler.schedule.scheduler import is_suspended, next_run_for

    latest = store.latest_runs()
    states = store.schedule_states()
    rows: list[StatusRow] = []
    objects: list[Any]
    if specs is None:
        # What the store knows: every object that ran, and the SyncJobs that applied or
        # served spec sets declared (with their schedules), as with a path.
        jobs = store.declared_jobs()
        rows += [_row(ref, run) for ref, run in sorted(latest.items())]
        objects = jobs
    else:
        objects = list(specs)
    for obj in objects:
        if isinstance(obj, SyncJob):
            spec = obj.spec
            target = obj.target
            last = latest.get(target)
            state = states.get(obj.ref, ScheduleState())
            override = state.override or {}
            schedule = override.get("schedule") or (f"every {override['interval']}" if override.get(
                "interval") else spec.schedule or
                f"every {obj.model_dump(by_alias=True, mode='json')['spec']['interval']}")
            rows.append(
                _row(
                    obj.ref,
                    last,
                    target=target.short,
                    schedule=schedule + (" (override)" if override else ""),
                    suspended=is_suspended(obj, state),
                    next_run_time=next_run_for(obj, state, now),
                )
            )
        else:
            rows.append(_row(obj.ref, latest.get(obj.ref)))
    return rows


def declare(store: StatusStore, specs: SpecSet, *, whole: bool) -> None:
    """Remember the SyncJobs of `specs` for `status` without a path (`whole`: the spec set
    is everything this store serves, so jobs it lacks are forgotten)."""
    store.declare_jobs([o for o in specs if isinstance(o, SyncJob)], replace=whole)


def run_detail(store: RunHistory, run_id: str, *, rejects_limit: int | None = None) -> RunDetail | None:
    """A run (by id or unambiguous prefix) with its changes and refused rows, or None."""
    record = store.run(run_id)
    if record is None:
        return None
    return RunDetail(run=record, changes=store.changes(record.id),
                     rejects=store.rejects(record.id, limit=rejects_limit))
