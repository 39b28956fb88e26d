"""Runs as the store keeps them: what `history`, `status`, the API and the dashboard show.

A `RunRecord` is one row of the run log (its counts, outcome, error, times, warnings and
drift); a `ChangeRecord` one change of that run (before, after, the fields that moved).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from reconciler.models import ObjectRef


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
