"""Runs: why one started (trigger), how it ended (outcome), and the result value.

A run is one pass of observe → diff → guards → apply over one target. Its result is the
single record every view reads: the store keeps it, status conditions are computed from
it, the CLI prints it and events announce it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from reconciler.models import Mode, ObjectRef
from reconciler.structs.plans import Counts, Plan


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    GIT = "git"
    ANNOTATION = "annotation"
    FILE_WATCH = "file-watch"
    API = "api"
    ROLLBACK = "rollback"
    MQTT = "mqtt"
    SPEC = "spec"  # a Kubernetes object created or its spec changed
    DELETE = "delete"  # a Kubernetes object deleted under deletionPolicy: Delete


class Outcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # changes applied
    NOOP = "noop"  # nothing to change
    PLANNED = "planned"  # dry run: changes computed, nothing written
    ABORTED = "aborted"  # a guard stopped the run before anything was written
    FAILED = "failed"
    CANCELLED = "cancelled"  # cut short (a shutdown's grace ran out): the target left as it was

    @property
    def ok(self) -> bool:
        return self in (Outcome.SUCCEEDED, Outcome.NOOP, Outcome.PLANNED)


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    target: ObjectRef
    trigger: Trigger
    mode: Mode
    dry_run: bool
    outcome: Outcome
    counts: Counts
    started_at: datetime
    finished_at: datetime
    revision: str | None = None
    plan: Plan | None = None
    error: str | None = None
    error_type: str | None = None
    generation: int | None = None
    unexpected: bool = False
    """The error is not a `ReconcilerError` (a bug or a library failure): `error` is only its
    one-line summary (see `engine.failures`), the details are in the log."""
    failure: str | None = None
    """The failure class of a run that did not end well (`source_unavailable`, `auth`,
    `validation`, `guard:maxDeletes`, `database`, ...: see `engine.classifying`)."""
    warnings: tuple[str, ...] = ()
    """The run's warnings as recorded: the plan's, the apply's and, for a run that applied
    nothing of its plan, `planned, not applied: ...` (scrubbed of the run's secrets)."""

    def __post_init__(self) -> None:
        # Every front end, the store and the events show `error`: URL userinfo and every
        # secret the process knows are masked here, once (see `reconciler.redaction`).
        if self.error:
            from reconciler.redaction import redact

            object.__setattr__(self, "error", redact(self.error))

    @property
    def drift(self) -> tuple[str, ...]:
        """Keys still changed outside the reconciler after this run (not re-imposed)."""
        if self.plan is None or not self.plan.drift:
            return ()
        if self.dry_run or self.outcome not in (Outcome.SUCCEEDED, Outcome.NOOP):
            return self.plan.drift
        fixed = {c.key for c in self.plan.changes}
        return tuple(k for k in self.plan.drift if k not in fixed)

    @property
    def reverted(self) -> tuple[str, ...]:
        """Keys changed outside the reconciler that this run put back to the spec."""
        if self.plan is None or self.dry_run or self.outcome is not Outcome.SUCCEEDED:
            return ()
        fixed = {c.key for c in self.plan.changes}
        return tuple(k for k in self.plan.drift if k in fixed)

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()
