"""What the scheduler persists per SyncJob, so that a restart neither repeats nor loses a run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ScheduleState(BaseModel):
    """What the scheduler persists per SyncJob (so a restart neither repeats nor loses a run)."""

    model_config = ConfigDict(frozen=True)

    last_schedule_time: datetime | None = None
    next_run_time: datetime | None = None
    suspended: bool | None = None  # a runtime override of spec.suspend (API, MQTT)
    override: dict[str, Any] | None = None  # a runtime schedule override: {schedule|interval, timeZone}
    missed: int = 0
    last_missed_time: datetime | None = None
    failures: int = 0  # consecutive failed scheduled runs (retry back-off)
    retry_at: datetime | None = None
    spec_hash: str | None = None  # the spec the override was set against
