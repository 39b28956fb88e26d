"""Schedule maths: cron in IANA zones across DST, interval chains, jitter, windows, overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reconciler.models import SyncJob
from reconciler.schedule.timing import (
    MAX_COUNTED_OCCURRENCES,
    Timing,
    cron_next,
    cron_prev,
    jitter_offset,
    window_open,
)

NY = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def spec(**fields: object):
    return SyncJob.model_validate({
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "SyncJob", "metadata": {"name": "j"},
        "spec": {"targetRef": {"kind": "AedSourceBinding", "name": "aed"}, **fields},
    }).spec


def test_cron_in_seoul_is_due_at_19_utc_the_day_before() -> None:
    assert cron_next("0 4 * * *", "Asia/Seoul", utc(2026, 11, 24, 12, 0)) == utc(2026, 11, 24, 19, 0)


def test_a_time_skipped_by_spring_forward_runs_at_the_end_of_the_gap() -> None:
    # 2026-03-08 02:30 does not exist in New York: the clock jumps from 02:00 EST to 03:00 EDT.
    first = cron_next("30 2 * * *", NY, utc(2026, 3, 8, 0, 0))
    assert first == utc(2026, 3, 8, 7, 0)  # 03:00 EDT
    assert cron_next("30 2 * * *", NY, first) == utc(2026, 3, 9, 6, 30)  # 02:30 EDT


def test_a_time_repeated_by_fall_back_runs_once_at_its_first_occurrence() -> None:
    # 2026-11-01 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
    first = cron_next("30 1 * * *", NY, utc(2026, 11, 1, 0, 0))
    assert first == utc(2026, 11, 1, 5, 30)
    assert cron_next("30 1 * * *", NY, first) == utc(2026, 11, 2, 6, 30)


def test_a_schedule_with_a_wildcard_hour_keeps_running_through_the_repeated_hour() -> None:
    times, at = [], utc(2026, 11, 1, 4, 50)
    for _ in range(4):
        at = cron_next("*/30 * * * *", NY, at)
        times.append(at)
    assert times == [utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 0),
                     utc(2026, 11, 1, 6, 30)]


def test_the_previous_occurrence_includes_the_instant_itself_and_skips_repeats() -> None:
    assert cron_prev("0 4 * * *", "UTC", utc(2026, 1, 2, 4, 0)) == utc(2026, 1, 2, 4, 0)
    assert cron_prev("0 4 * * *", "UTC", utc(2026, 1, 2, 3, 59)) == utc(2026, 1, 1, 4, 0)
    assert cron_prev("30 1 * * *", NY, utc(2026, 11, 1, 7, 0)) == utc(2026, 11, 1, 5, 30)


def test_jitter_is_deterministic_bounded_and_differs_between_jobs_and_occurrences() -> None:
    nominal, jitter = utc(2026, 1, 1, 0, 0), timedelta(minutes=1)
    one = jitter_offset("SyncJob/default/a", nominal, jitter)
    assert one == jitter_offset("SyncJob/default/a", nominal, jitter)
    offsets = {jitter_offset(f"SyncJob/default/{n}", nominal + timedelta(minutes=5 * k), jitter)
               for n in "abcdef" for k in range(5)}
    assert all(timedelta(0) <= o < jitter for o in offsets)
    assert len(offsets) > 20
    assert jitter_offset("SyncJob/default/a", nominal, None) == timedelta(0)


def test_interval_occurrences_due_after_a_gap_give_the_latest_and_how_many() -> None:
    timing = Timing(key="k", interval=timedelta(minutes=10))
    got = timing.due_between(utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 35))
    assert got is not None
    assert (got.latest, got.previous, got.count) == (utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 0, 20), 4)
    assert timing.due_between(utc(2026, 1, 1, 0, 40), utc(2026, 1, 1, 0, 35)) is None


def test_jitter_can_keep_the_last_interval_occurrence_from_being_due_yet() -> None:
    timing = Timing(key="k", interval=timedelta(minutes=10), jitter=timedelta(minutes=10))
    start = utc(2026, 1, 1, 0, 0)
    offset = timing.due(start + timedelta(minutes=10)) - (start + timedelta(minutes=10))
    assert offset > timedelta(0)
    got = timing.due_between(start, start + timedelta(minutes=10))  # before the jittered due time
    assert got is not None and got.latest == start


def test_cron_occurrences_after_a_long_gap_are_counted_up_to_a_cap() -> None:
    timing = Timing(key="k", schedule="*/5 * * * *")
    got = timing.due_between(utc(2026, 1, 1, 0, 0), utc(2026, 1, 10, 0, 2))
    assert got is not None
    assert got.latest == utc(2026, 1, 10, 0, 0)
    assert got.previous == utc(2026, 1, 9, 23, 55)
    assert got.count == MAX_COUNTED_OCCURRENCES


def test_a_window_is_open_from_each_start_for_its_duration() -> None:
    hours = timedelta(hours=2)
    assert window_open("0 3 * * *", "UTC", hours, utc(2026, 1, 1, 3, 0))
    assert window_open("0 3 * * *", "UTC", hours, utc(2026, 1, 1, 4, 59))
    assert not window_open("0 3 * * *", "UTC", hours, utc(2026, 1, 1, 5, 0))
    assert not window_open("0 3 * * *", "UTC", hours, utc(2026, 1, 1, 2, 59))
    assert window_open("0 3 * * *", "Asia/Seoul", hours, utc(2026, 1, 1, 18, 30))  # 03:30 KST


def test_an_override_replaces_the_spec_schedule_and_keeps_its_zone() -> None:
    base = spec(schedule="0 4 * * *", timeZone="Asia/Seoul")
    timing = Timing.of(base, key="k", override={"interval": "15m"})
    assert (timing.schedule, timing.interval, timing.time_zone) == (None, timedelta(minutes=15), "Asia/Seoul")
    cron = Timing.of(spec(interval="1h", jitter="5m"), key="k", override={"schedule": "@daily"})
    assert (cron.schedule, cron.interval, cron.jitter) == ("@daily", None, None)


def test_an_override_of_the_time_zone_alone_keeps_the_spec_schedule() -> None:
    timing = Timing.of(spec(schedule="0 4 * * *"), key="k", override={"timeZone": "Asia/Seoul"})
    assert (timing.schedule, timing.time_zone) == ("0 4 * * *", "Asia/Seoul")


@pytest.mark.parametrize("override", [{"schedule": "not cron"}, {"interval": "soon"},
                                      {"schedule": "@daily", "interval": "1h"},
                                      {"schedule": "@daily", "timeZone": "Mars/Base"}])
def test_an_invalid_override_is_refused(override: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"expected|exactly one"):
        Timing.of(spec(schedule="@daily"), key="k", override=override)


def test_a_pending_occurrence_from_another_schedule_does_not_fit() -> None:
    daily = Timing(key="k", schedule="0 4 * * *")
    now = utc(2026, 1, 1, 12, 0)
    assert daily.fits(utc(2026, 1, 2, 4, 0), now)
    assert daily.fits(utc(2026, 1, 1, 4, 0), now)  # past, still on the schedule (missed)
    assert not daily.fits(utc(2026, 1, 2, 5, 0), now)  # not an occurrence
    assert not daily.fits(utc(2026, 1, 3, 4, 0), now)  # an earlier occurrence comes first
    every = Timing(key="k", interval=timedelta(minutes=5))
    assert every.fits(now + timedelta(minutes=5), now)
    assert not every.fits(now + timedelta(hours=1), now)
