"""When a SyncJob is next due: cron in an IANA time zone, or a fixed interval.

Cron expressions are evaluated in the job's time zone with croniter on zone-aware
datetimes, so that "04:00 Asia/Seoul" stays 04:00 local time; results are returned in UTC.

Daylight-saving changes follow Vixie cron, which most operators know:

- *spring forward*: a wall-clock time that does not exist that day (02:30 in New York on
  the second Sunday of March) runs once at the first instant after the gap (03:00 local),
  which is what croniter yields;
- *fall back*: a wall-clock time that happens twice (01:30 on the first Sunday of
  November) runs once, at its first occurrence, when the hour field names hours; a
  schedule whose hour field is `*` (`*/15 * * * *`, `@hourly`) keeps running in real time
  through the repeated hour, since skipping would leave a gap of an hour or more.

Interval jobs have no calendar: their occurrences form a chain anchored at the first run,
`n, n + interval, n + 2·interval, …` (the *nominal* times, in UTC). `jitter` delays each
occurrence by a pseudo-random amount in `[0, jitter)` derived from the job's identity and
the nominal time, so that every daemon, every restart and every test computes the same
instant. Jitter never exceeds the interval, so occurrences stay in order.

`Timing` is the effective schedule of one job: the spec's, or a runtime override of it.
Everything here is pure: no clock, no store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter

from reconciler.models import SyncJobSpec
from reconciler.models.common import CronExpression, TimeZoneName, format_duration, parse_duration

MAX_COUNTED_OCCURRENCES = 100
"""Past occurrences are counted one by one up to this many (CronJob stops at 100 too)."""

_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
_SECOND = timedelta(seconds=1)


@cache
def _adapter(kind: Any) -> TypeAdapter[str]:
    # Built on first use, like the spec models: only runtime overrides need them.
    return TypeAdapter(kind)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"expected a time-zone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _repeats_allowed(expression: str) -> bool:
    """Whether the schedule runs through a repeated (fall-back) hour: its hour field is `*`."""
    fields = _MACROS.get(expression.strip().lower(), expression).split()
    return len(fields) >= 2 and fields[1] == "*"


def _is_repeat(local: datetime, zone: ZoneInfo) -> bool:
    """Whether this wall-clock time already happened earlier the same night (fall back)."""
    first = local.replace(tzinfo=None).replace(tzinfo=zone, fold=0)
    return first.astimezone(UTC) < local.astimezone(UTC)


def cron_next(expression: str, zone: str, after: datetime) -> datetime:
    """The first occurrence of a cron expression strictly after `after` (UTC)."""
    from croniter import croniter  # imported here: only schedules pay for it

    tz = ZoneInfo(zone)
    skip_repeats = not _repeats_allowed(expression)
    it = croniter(expression, _utc(after).astimezone(tz))
    while True:
        nxt: datetime = it.get_next(datetime)
        if not (skip_repeats and _is_repeat(nxt, tz)):
            return nxt.astimezone(UTC)


def cron_prev(expression: str, zone: str, at: datetime) -> datetime:
    """The latest occurrence of a cron expression at or before `at` (UTC)."""
    from croniter import croniter

    tz = ZoneInfo(zone)
    skip_repeats = not _repeats_allowed(expression)
    # Cron has minute resolution: starting one second later makes `at` itself a candidate.
    it = croniter(expression, (_utc(at) + _SECOND).astimezone(tz))
    while True:
        prev: datetime = it.get_prev(datetime)
        if not (skip_repeats and _is_repeat(prev, tz)):
            return prev.astimezone(UTC)


def jitter_offset(key: str, nominal: datetime, jitter: timedelta | None) -> timedelta:
    """A delay in `[0, jitter)`, the same for the same key and nominal time (millisecond steps)."""
    if not jitter:
        return timedelta(0)
    digest = hashlib.blake2b(f"{key}@{_utc(nominal).isoformat()}".encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64
    return timedelta(milliseconds=int(fraction * jitter / timedelta(milliseconds=1)))


@dataclass(frozen=True, slots=True)
class Occurrences:
    """The occurrences that have come due: the latest, the one before it, how many (capped)."""

    latest: datetime
    previous: datetime | None
    count: int


@dataclass(frozen=True, slots=True)
class Timing:
    """The effective schedule of one job: exactly one of `schedule` (cron) and `interval`.

    `key` identifies the job (it seeds the jitter). Nominal times are UTC; `due` turns a
    nominal time into the instant the run is due (adding jitter to interval occurrences).
    """

    key: str
    schedule: str | None = None
    interval: timedelta | None = None
    time_zone: str = "UTC"
    jitter: timedelta | None = None

    @classmethod
    def of(cls, spec: SyncJobSpec, *, key: str, override: Mapping[str, Any] | None = None) -> Timing:
        """The spec's timing, or a runtime override of it (`{schedule|interval, timeZone, jitter}`).

        The override's keys (camelCase, as in the spec) replace the spec's: a `schedule`
        replaces the spec's interval and an `interval` its schedule; a key it does not give
        keeps the spec's value. Raises `ValueError` for an override that is not valid.
        """
        schedule, interval, jitter = spec.schedule, spec.interval, spec.jitter
        zone = spec.time_zone
        if override:
            if override.get("schedule") is not None and override.get("interval") is not None:
                raise ValueError("a schedule override takes exactly one of schedule and interval")
            if override.get("schedule") is not None:
                schedule, interval = _adapter(CronExpression).validate_python(override["schedule"]), None
            if override.get("interval") is not None:
                schedule, interval = None, parse_duration(override["interval"])
            if override.get("jitter") is not None:
                jitter = parse_duration(override["jitter"])
            named = override.get("timeZone") or override.get("time_zone")
            if named:
                zone = _adapter(TimeZoneName).validate_python(named)
        if interval is None:
            return cls(key=key, schedule=schedule, time_zone=zone)
        return cls(key=key, interval=interval, time_zone=zone,
                   jitter=min(jitter, interval) if jitter is not None else None)

    def __str__(self) -> str:
        if self.schedule is not None:
            return f"{self.schedule} ({self.time_zone})"
        assert self.interval is not None
        return f"every {format_duration(self.interval)}"

    def due(self, nominal: datetime) -> datetime:
        """The instant an occurrence is due: its nominal time plus the job's jitter."""
        return _utc(nominal) + jitter_offset(self.key, nominal, self.jitter)

    def following(self, nominal: datetime) -> datetime:
        """The nominal time of the occurrence after `nominal`."""
        if self.interval is not None:
            return _utc(nominal) + self.interval
        assert self.schedule is not None
        return cron_next(self.schedule, self.time_zone, nominal)

    def first_after(self, at: datetime, *, anchor: datetime | None = None) -> datetime:
        """The nominal time of the first occurrence strictly after `at`.

        For an interval the chain is anchored at `anchor` (a past nominal time); without an
        anchor the first occurrence is `at` itself (a new interval job runs at once).
        """
        if self.schedule is not None:
            return cron_next(self.schedule, self.time_zone, at)
        assert self.interval is not None
        if anchor is None:
            return _utc(at)
        steps = max(0, (_utc(at) - _utc(anchor)) // self.interval + 1)
        return _utc(anchor) + steps * self.interval

    def is_occurrence(self, nominal: datetime) -> bool:
        """Whether a nominal time belongs to this cron schedule (always true for intervals)."""
        if self.schedule is None:
            return True
        return cron_next(self.schedule, self.time_zone, _utc(nominal) - _SECOND) == _utc(nominal)

    def fits(self, pending: datetime, now: datetime) -> bool:
        """Whether a stored pending occurrence still belongs to this timing at `now`.

        A cron occurrence must be on the schedule and not later than the first occurrence
        after now; an interval occurrence not more than one interval ahead. Anything else
        was computed for another schedule (the spec or an override changed).
        """
        if self.interval is not None:
            return _utc(pending) <= _utc(now) + self.interval
        assert self.schedule is not None
        return self.is_occurrence(pending) and _utc(pending) <= cron_next(self.schedule, self.time_zone, now)

    def due_between(self, pending: datetime, now: datetime) -> Occurrences | None:
        """The occurrences from `pending` (a nominal time) on that are due at `now`, or None."""
        now = _utc(now)
        if self.due(pending) > now:
            return None
        if self.interval is not None:
            steps = (now - _utc(pending)) // self.interval
            latest = _utc(pending) + steps * self.interval
            if self.due(latest) > now:  # jitter pushes the last one past now
                steps -= 1
                latest -= self.interval
            previous = latest - self.interval if steps else None
            return Occurrences(latest, previous, min(steps + 1, MAX_COUNTED_OCCURRENCES))
        previous, latest, count = None, _utc(pending), 1
        while count < MAX_COUNTED_OCCURRENCES:
            nxt = self.following(latest)
            if nxt > now:
                return Occurrences(latest, previous, count)
            previous, latest, count = latest, nxt, count + 1
        # Down for a long time: jump straight to the most recent occurrence.
        assert self.schedule is not None
        newest = cron_prev(self.schedule, self.time_zone, now)
        if newest != latest:
            previous, latest = cron_prev(self.schedule, self.time_zone, newest - _SECOND), newest
        return Occurrences(latest, previous, count)


def window_open(schedule: str, zone: str, duration: timedelta, at: datetime) -> bool:
    """Whether a window that opens at each occurrence of `schedule` for `duration` is open at `at`.

    Every opening lasts equally long, so only the latest opening at or before `at` matters.
    """
    return _utc(at) < cron_prev(schedule, zone, at) + duration


def next_run_time(spec: SyncJobSpec, *, after: datetime, last_run: datetime | None = None) -> datetime:
    """The first time strictly after `after` at which the job is due (UTC).

    A rough answer from the spec and the last run alone, for views without scheduler state;
    `reconciler.schedule.scheduler.next_run_for` gives the scheduler's own answer.
    """
    if spec.interval is not None:
        if last_run is None:
            return after.astimezone(UTC)
        due = last_run + spec.interval
        return max(due, after).astimezone(UTC)
    assert spec.schedule is not None
    return cron_next(spec.schedule, spec.time_zone, after)
