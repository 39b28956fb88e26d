"""`SyncJob`: *when* to reconcile a target, and the record of how it went.

A SyncJob is the schedule half of the desired state: a cron expression in an IANA time
zone, or an interval, for one target object (`targetRef`). Two SyncJobs may point at the
same target, for example an incremental run every night and a full run on Sundays. The
fields follow Kubernetes' CronJob (`suspend`, `concurrencyPolicy`,
`startingDeadlineSeconds`) so that operators meet no new vocabulary.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.models.common import (
    CronExpression,
    Duration,
    Mode,
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


class SyncJobSpec(SpecModel):
    target_ref: TargetRef
    schedule: CronExpression | None = Field(
        default=None, description="Cron expression (5 fields or @daily-style macros)."
    )
    interval: Duration | None = Field(default=None, description="Run every interval instead.")
    time_zone: TimeZoneName = Field(default="UTC", description="IANA zone of the schedule.")
    suspend: bool = False
    mode: Mode = Mode.FULL
    dry_run: bool = False
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    starting_deadline_seconds: int | None = Field(default=None, ge=1)
    history_limit: int = Field(default=10, ge=0, le=100)

    @model_validator(mode="after")
    def _schedule_or_interval(self) -> SyncJobSpec:
        if (self.schedule is None) == (self.interval is None):
            raise ValueError("expected exactly one of schedule (cron) or interval")
        return self


class SyncJobStatus(ObjectStatus):
    next_run_time: datetime | None = None
    last_schedule_time: datetime | None = None


class SyncJob(Resource):
    KIND: ClassVar[str] = "SyncJob"
    PLURAL: ClassVar[str] = "syncjobs"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("sj",)

    kind: Literal["SyncJob"]
    spec: SyncJobSpec
    status: SyncJobStatus | None = None
