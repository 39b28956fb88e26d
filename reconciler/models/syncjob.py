"""`SyncJob`: *when* to reconcile a target, and the record of how it went.

A SyncJob is the schedule half of the desired state: a cron expression in an IANA time
zone, or an interval, for one target object (`targetRef`). Two SyncJobs may point at the
same target, for example an incremental run every night and a full run on Sundays. The
fields follow Kubernetes' CronJob (`suspend`, `concurrencyPolicy`,
`startingDeadlineSeconds`) so that operators meet no new vocabulary; `jitter` and `retry`
follow Flux and Argo CD, and `windows` are Argo CD's sync windows, attached to the job.

The model only says what is wanted; `reconciler.schedule.scheduler` decides, occurrence
by occurrence, what happens (run, skip, miss, block), and documents the exact rules.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.models.common import (
    CronExpression,
    Duration,
    Mode,
    ObjectRef,
    Resource,
    SpecModel,
    TargetRef,
    TimeZoneName,
)
from reconciler.models.status import ObjectStatus


class ConcurrencyPolicy(StrEnum):
    """What to do when a run is due while the previous one still runs (as CronJob)."""

    FORBID = "Forbid"
    REPLACE = "Replace"
    ALLOW = "Allow"


class RetryPolicy(SpecModel):
    """Retries of a scheduled run that failed or was aborted by a guard.

    Retry `n` (1, 2, …) starts `backoff · 2^(n-1)` after the failed attempt ended, at most
    `maxBackoff` later, and only if it comes before the next regular occurrence; after
    `limit` retries the job waits for its next occurrence, which starts a fresh count.
    """

    limit: int = Field(default=0, ge=0, le=100,
                       description="Retries per occurrence after a failed run; 0 never retries.")
    backoff: Duration = Field(default=timedelta(seconds=30),
                              description="Delay before the first retry; doubled for each further one.")
    max_backoff: Duration = Field(default=timedelta(minutes=10),
                                  description="Upper bound of the delay between retries.")

    @model_validator(mode="after")
    def _cap_not_below_backoff(self) -> RetryPolicy:
        if self.max_backoff < self.backoff:
            raise ValueError("expected maxBackoff to be at least backoff")
        return self


class WindowKind(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class SyncWindow(SpecModel):
    """A recurring window in which scheduled runs are allowed or denied (as Argo CD's).

    A window opens at each occurrence of `schedule` and stays open for `duration`. A
    scheduled run that comes due while a deny window is open, or while no allow window is
    open although the job has allow windows, is not started: it is recorded as blocked and
    the job waits for its next occurrence. Deny beats allow. Forced runs ignore windows.
    """

    kind: WindowKind = Field(description="`allow`: runs only inside; `deny`: no runs inside.")
    schedule: CronExpression = Field(description="When the window opens (cron, 5 fields).")
    duration: Duration = Field(description="How long the window stays open, such as '2h'.")
    time_zone: TimeZoneName | None = Field(
        default=None, description="IANA zone of the window's schedule; the job's timeZone by default."
    )


class SyncJobSpec(SpecModel):
    target_ref: TargetRef
    schedule: CronExpression | None = Field(
        default=None, description="Cron expression (5 fields or @daily-style macros)."
    )
    interval: Duration | None = Field(default=None, description="Run every interval instead.")
    jitter: Duration | None = Field(
        default=None,
        description="Only with interval: delay each run by a pseudo-random part of this duration "
        "(the same for a given job and occurrence), at most the interval, to spread load.",
    )
    time_zone: TimeZoneName = Field(default="UTC", description="IANA zone of the schedule.")
    suspend: bool = False
    mode: Mode = Mode.FULL
    dry_run: bool = False
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    starting_deadline_seconds: int | None = Field(
        default=None, ge=1,
        description="A run that cannot start within this many seconds of its time is recorded as "
        "missed instead; unset: a late run always starts (only the most recent missed one).",
    )
    history_limit: int = Field(default=10, ge=0, le=100)
    retry: RetryPolicy = Field(
        default_factory=RetryPolicy, description="Retries after a failed or aborted scheduled run."
    )
    windows: list[SyncWindow] = Field(
        default_factory=list,
        description="Allow and deny windows for scheduled runs; none: runs are always allowed.",
    )

    @model_validator(mode="after")
    def _schedule_or_interval(self) -> SyncJobSpec:
        if (self.schedule is None) == (self.interval is None):
            raise ValueError("expected exactly one of schedule (cron) or interval")
        if self.jitter is not None:
            if self.interval is None:
                raise ValueError("jitter applies to interval only; remove it or use interval")
            if self.jitter > self.interval:
                raise ValueError("expected jitter to be at most the interval")
        return self


class SyncJobStatus(ObjectStatus):
    next_run_time: datetime | None = None
    last_schedule_time: datetime | None = None
    interval_seconds: int | None = Field(default=None, description="The interval, for interval jobs.")


class SyncJob(Resource):
    KIND: ClassVar[str] = "SyncJob"
    PLURAL: ClassVar[str] = "syncjobs"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("sj",)

    kind: Literal["SyncJob"]
    spec: SyncJobSpec
    status: SyncJobStatus | None = None

    @property
    def target(self) -> ObjectRef:
        """The object this job reconciles (`targetRef`, in the job's namespace by default)."""
        ref = self.spec.target_ref
        return ObjectRef(ref.kind, ref.namespace or self.metadata.namespace, ref.name)
