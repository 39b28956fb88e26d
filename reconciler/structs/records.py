"""Runs as the store keeps them: what `history`, `status`, the API and the dashboard show.

A `RunRecord` is one row of the run log (its counts, outcome, error, times, warnings and
drift); a `ChangeRecord` one change of that run (before, after, the fields that moved).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.models import ObjectRef
from reconciler.structs.runs import RunResult


class RunRecord(BaseModel):
    """A run as stored: what `history`, `status` and the API show."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    namespace: str
    name: str
    trigger: str
    mode: str
    dry_run: bool
    revision: str | None
    generation: int | None
    outcome: str
    counts: dict[str, int]
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    error: str | None
    error_type: str | None
    warnings: list[str]
    drift: list[str] = []

    @property
    def target(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)

    @classmethod
    def of(cls, result: RunResult) -> RunRecord:
        """A run's result as the store records it: the one report of a run, which `history`,
        the API and `apply -o json` all show (its counts, warnings and drift)."""
        ref = result.target
        return cls(
            id=result.run_id, kind=ref.kind, namespace=ref.namespace, name=ref.name,
            trigger=str(result.trigger), mode=str(result.mode), dry_run=result.dry_run,
            revision=result.revision, generation=result.generation, outcome=str(result.outcome),
            counts=result.counts.as_dict(), started_at=result.started_at, finished_at=result.finished_at,
            duration_seconds=result.duration_seconds, error=result.error, error_type=result.error_type,
            warnings=list(result.warnings), drift=list(dict.fromkeys((*result.drift, *result.reverted))),
        )


class ChangeRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    action: str
    item: str
    key: str
    before: Any
    after: Any
    fields: list[dict[str, Any]]


class RunDetail(BaseModel):
    """One run with its changes and the rows it refused: what `history --run`, the API's
    `GET /api/v1/runs/{id}` and the dashboard's object page show (built by
    `reconciler.status.run_detail`)."""

    model_config = ConfigDict(frozen=True)

    run: RunRecord
    changes: list[ChangeRecord]
    rejects: list[dict[str, Any]]
