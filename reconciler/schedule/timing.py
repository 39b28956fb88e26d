"""When a SyncJob is next due: cron in an IANA time zone, or a fixed interval.

Cron expressions are evaluated in the job's time zone with croniter on zone-aware
datetimes, so that "04:00 Asia/Seoul" stays 04:00 local time; results are returned in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from reconciler.models import SyncJobSpec


def next_run_time(spec: SyncJobSpec, *, after: datetime, last_run: datetime | None = None) -> datetime:
    """The first time strictly after `after` at which the job is due (UTC)."""
    if spec.interval is not None:
        if last_run is None:
            return after.astimezone(UTC)
        due = last_run + spec.interval
        return max(due, after).astimezone(UTC)
    from croniter import croniter

    assert spec.schedule is not None
    local = after.astimezone(ZoneInfo(spec.time_zone))
    nxt = croniter(spec.schedule, local).get_next(datetime)
    return nxt.astimezone(UTC)
