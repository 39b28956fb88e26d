"""Status shapes: the last result of a run and the conditions of an object.

The same facts feed the Kubernetes `status` subresource, `reconciler status` and the HTTP
API: one record (a run in the store), many views.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from reconciler.models.common import Condition, SpecModel


class RunCounts(SpecModel):
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    invalid: int = 0


class LastResult(SpecModel):
    """The last real run of an object (dry runs never appear here)."""

    run_id: str
    outcome: str
    trigger: str | None = None
    counts: RunCounts = Field(default_factory=RunCounts)
    duration_seconds: float = 0.0
    revision: str | None = None
    error: str | None = None


class ObjectStatus(SpecModel):
    """Status of a domain object (RbacMapping, AedSourceBinding, AgentConfig)."""

    conditions: list[Condition] = Field(default_factory=list)
    observed_generation: int | None = None
    last_run_time: datetime | None = None
    last_result: LastResult | None = None
    last_handled_run_request: str | None = None
    running: bool | None = Field(default=None, description="A run of the object is in progress.")
