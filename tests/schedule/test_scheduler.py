"""The scheduler: pure decisions first, then the loop on a fake clock over the real stores.

`FakeRuns` stands in for the orchestrator: it records each start and can fail or take
fake-clock time. Loop tests step the `FakeClock` and tick, as the daemon does every second.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from reconciler.errors import StoreError
from reconciler.models import Mode, ObjectRef, SyncJob
from reconciler.schedule.clock import FakeClock
from reconciler.schedule.scheduler import Action, Scheduler, after_run, decide, next_run_for
from reconciler.schedule.timing import jitter_offset
from reconciler.store import Store
from reconciler.store import tables as t
from reconciler.structs.plans import Counts
from reconciler.structs.runs import Outcome, RunResult, Trigger
from reconciler.structs.schedules import ScheduleState

NY = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def job(name: str = "nightly", **spec: Any) -> SyncJob:
    return SyncJob.model_validate({
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "SyncJob", "metadata": {"name": name},
        "spec": {"targetRef": {"kind": "AedSourceBinding", "name": "aed"}, **spec},
    })


TARGET = ObjectRef("AedSourceBinding", "default", "aed")


@dataclass(frozen=True, slots=True)
class Call:
    job: str
    target: ObjectRef
    trigger: Trigger
    mode: Mode
    dry_run: bool
    scheduled_for: datetime
    started: datetime


class FakeRuns:
    """A `start_run` that records calls; each run takes `seconds` of fake time, then ends
    with the next of `outcomes` (succeeded once they are used up)."""

    def __init__(self, clock: FakeClock, *, seconds: float = 0.0, outcomes: Iterable[Outcome] = ()) -> None:
        self.clock = clock
        self.seconds = seconds
        self.outcomes = iter(outcomes)
        self.calls: list[Call] = []
        self.cancelled: list[Call] = []
        self.finished: list[Call] = []

    async def __call__(self, sj: SyncJob, target: ObjectRef, trigger: Trigger, mode: Mode,
                       dry_run: bool, scheduled_for: datetime) -> RunResult:
        call = Call(sj.metadata.name, target, trigger, mode, dry_run, scheduled_for, self.clock.now())
        self.calls.append(call)
        try:
            if self.seconds:
                await self.clock.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled.append(call)
            raise
        self.finished.append(call)
        return RunResult(run_id=f"run-{len(self.calls)}", target=target, trigger=trigger, mode=mode,
                         dry_run=dry_run, outcome=next(self.outcomes, Outcome.SUCCEEDED), counts=Counts(),
                         started_at=call.started, finished_at=self.clock.now())

    @property
    def starts(self) -> list[datetime]:
        return [c.started for c in self.calls]


async def settle() -> None:
    """Let started runs and their bookkeeping proceed as far as they can without time passing."""
    for _ in range(20):
        await asyncio.sleep(0)


def scheduler_for(store: Store, clock: FakeClock, runs: FakeRuns, *jobs: SyncJob) -> Scheduler:
    return Scheduler(store, clock=clock, start_run=runs, jobs=lambda: jobs)


async def step(scheduler: Scheduler, clock: FakeClock, *, until: datetime,
               every: timedelta = timedelta(minutes=1)) -> None:
    """Tick, let runs proceed, move the clock on; until `until` (exclusive)."""
    while clock.now() < until:
        await scheduler.tick()
        await settle()
        clock.advance(every.total_seconds())
        await settle()


def at(state: ScheduleState | None = None, **fields: Any) -> ScheduleState:
    return (state or ScheduleState()).model_copy(update=fields)


# --- decide: pure ------------------------------------------------------------------------


def test_a_new_cron_job_waits_for_its_first_occurrence() -> None:
    d = decide(job(schedule="0 4 * * *"), ScheduleState(), utc(2026, 1, 1, 12, 0), running=False)
    assert (d.action, d.due, d.next_run_time) == (Action.IDLE, False, utc(2026, 1, 2, 4, 0))
    assert d.state == ScheduleState(next_run_time=utc(2026, 1, 2, 4, 0)) and d.expected_next is None


def test_a_new_interval_job_runs_at_once() -> None:
    now = utc(2026, 1, 1, 12, 0)
    d = decide(job(interval="15m"), ScheduleState(), now, running=False)
    assert (d.action, d.scheduled_for, d.next_run_time) == (Action.RUN, now, now + timedelta(minutes=15))
    assert d.state is not None and d.state.last_schedule_time == now


def test_a_due_cron_job_runs_the_occurrence_and_moves_to_the_next() -> None:
    d = decide(job(schedule="0 4 * * *", timeZone="Asia/Seoul"),
               ScheduleState(next_run_time=utc(2026, 1, 1, 19, 0)), utc(2026, 1, 1, 19, 0, 1), running=False)
    assert (d.action, d.scheduled_for, d.next_run_time) == (Action.RUN, utc(2026, 1, 1, 19, 0),
                                                           utc(2026, 1, 2, 19, 0))
    assert d.state == ScheduleState(last_schedule_time=utc(2026, 1, 1, 19, 0),
                                    next_run_time=utc(2026, 1, 2, 19, 0))
    assert d.expected_next == utc(2026, 1, 1, 19, 0)


def test_missed_occurrences_beyond_the_deadline_are_recorded_and_not_run() -> None:
    state = ScheduleState(next_run_time=utc(2026, 1, 1, 1, 0))
    d = decide(job(schedule="0 * * * *", startingDeadlineSeconds=300), state, utc(2026, 1, 1, 4, 10),
               running=False)
    assert (d.action, d.missed, d.scheduled_for) == (Action.MISSED, 4, utc(2026, 1, 1, 4, 0))
    assert d.state is not None
    assert (d.state.missed, d.state.last_missed_time, d.state.next_run_time) == (
        4, utc(2026, 1, 1, 4, 0), utc(2026, 1, 1, 5, 0))


def test_after_downtime_only_the_most_recent_occurrence_runs_within_the_deadline() -> None:
    state = ScheduleState(next_run_time=utc(2026, 1, 1, 1, 0))
    d = decide(job(schedule="0 * * * *", startingDeadlineSeconds=900), state, utc(2026, 1, 1, 4, 10),
               running=False)
    assert (d.action, d.scheduled_for, d.missed) == (Action.RUN, utc(2026, 1, 1, 4, 0), 3)
    assert d.state is not None
    assert (d.state.missed, d.state.last_missed_time) == (3, utc(2026, 1, 1, 3, 0))


def test_without_a_deadline_the_most_recent_occurrence_runs_however_late() -> None:
    state = ScheduleState(next_run_time=utc(2026, 1, 1, 4, 0))
    d = decide(job(schedule="0 4 * * *"), state, utc(2026, 1, 20, 12, 0), running=False)
    assert (d.action, d.scheduled_for, d.next_run_time) == (Action.RUN, utc(2026, 1, 20, 4, 0),
                                                           utc(2026, 1, 21, 4, 0))


def test_a_suspended_job_starts_nothing_but_its_next_run_time_moves_on() -> None:
    state = ScheduleState(next_run_time=utc(2026, 1, 1, 4, 0))
    d = decide(job(schedule="0 4 * * *", suspend=True), state, utc(2026, 1, 1, 4, 0, 30), running=False)
    assert (d.action, d.suspended, d.next_run_time) == (Action.SUSPENDED, True, utc(2026, 1, 2, 4, 0))
    assert d.state is not None and d.state.missed == 0 and d.state.last_schedule_time is None


def test_the_runtime_suspend_override_wins_over_the_spec() -> None:
    due = utc(2026, 1, 1, 4, 0)
    resumed = decide(job(schedule="0 4 * * *", suspend=True),
                     ScheduleState(next_run_time=due, suspended=False), due, running=False)
    paused = decide(job(schedule="0 4 * * *"), ScheduleState(next_run_time=due, suspended=True), due,
                    running=False)
    assert (resumed.action, paused.action) == (Action.RUN, Action.SUSPENDED)


def test_a_runtime_schedule_override_replaces_the_spec_schedule() -> None:
    now = utc(2026, 1, 1, 12, 0)
    state = ScheduleState(next_run_time=utc(2026, 1, 2, 4, 0), override={"schedule": "*/10 * * * *"})
    d = decide(job(schedule="0 4 * * *"), state, now + timedelta(minutes=3), running=False)
    assert (d.action, d.next_run_time) == (Action.IDLE, utc(2026, 1, 1, 12, 10))
    assert d.state is not None and d.state.next_run_time == utc(2026, 1, 1, 12, 10)


def test_an_unusable_override_is_ignored_and_said_so() -> None:
    state = ScheduleState(next_run_time=utc(2026, 1, 2, 4, 0), override={"schedule": "whenever"})
    d = decide(job(schedule="0 4 * * *"), state, utc(2026, 1, 1, 12, 0), running=False)
    assert d.next_run_time == utc(2026, 1, 2, 4, 0) and "override ignored" in d.reason


@pytest.mark.parametrize(("policy", "action", "replace"), [
    ("Forbid", Action.SKIPPED, False), ("Replace", Action.RUN, True), ("Allow", Action.RUN, False),
])
def test_concurrency_policy_decides_when_the_target_is_busy(policy: str, action: Action,
                                                            replace: bool) -> None:
    due = utc(2026, 1, 1, 4, 0)
    d = decide(job(schedule="0 4 * * *", concurrencyPolicy=policy), ScheduleState(next_run_time=due), due,
               running=True)
    assert (d.action, d.replace) == (action, replace)
    assert d.state is not None and d.state.missed == (1 if action is Action.SKIPPED else 0)


@pytest.mark.parametrize(("windows", "hour", "allowed"), [
    ([{"kind": "deny", "schedule": "0 3 * * *", "duration": "2h"}], 4, False),
    ([{"kind": "deny", "schedule": "0 3 * * *", "duration": "2h"}], 5, True),
    ([{"kind": "allow", "schedule": "0 22 * * *", "duration": "8h"}], 4, True),
    ([{"kind": "allow", "schedule": "0 22 * * *", "duration": "8h"}], 12, False),
    ([{"kind": "allow", "schedule": "0 22 * * *", "duration": "8h"},
      {"kind": "deny", "schedule": "0 3 * * *", "duration": "1h"}], 3, False),
    ([{"kind": "deny", "schedule": "0 3 * * *", "duration": "1h", "timeZone": "Asia/Seoul"}], 18, False),
])
def test_windows_allow_or_block_a_due_run(windows: list[dict[str, str]], hour: int, allowed: bool) -> None:
    due = utc(2026, 1, 1, hour, 0)
    d = decide(job(schedule="0 * * * *", windows=windows), ScheduleState(next_run_time=due), due,
               running=False)
    assert d.action is (Action.RUN if allowed else Action.BLOCKED)
    assert d.next_run_time == due + timedelta(hours=1)


def test_a_failed_run_is_retried_with_backoff_before_the_next_occurrence() -> None:
    sj = job(schedule="0 * * * *", retry={"limit": 2, "backoff": "1m", "maxBackoff": "90s"})
    occurrence = utc(2026, 1, 1, 4, 0)
    state = ScheduleState(last_schedule_time=occurrence, next_run_time=utc(2026, 1, 1, 5, 0))
    first = after_run(sj, state, occurrence=occurrence, outcome=Outcome.FAILED, now=occurrence)
    assert first is not None
    assert (first.failures, first.retry_at, first.next_run_time) == (1, utc(2026, 1, 1, 4, 1),
                                                                     utc(2026, 1, 1, 4, 1))
    retry = decide(sj, first, utc(2026, 1, 1, 4, 1), running=False)
    assert (retry.action, retry.attempt, retry.scheduled_for) == (Action.RUN, 2, occurrence)
    assert retry.state is not None and retry.state.next_run_time == utc(2026, 1, 1, 5, 0)
    second = after_run(sj, retry.state, occurrence=occurrence, outcome=Outcome.ABORTED,
                       now=utc(2026, 1, 1, 4, 2))
    assert second is not None and (second.failures, second.retry_at) == (2, utc(2026, 1, 1, 4, 3, 30))
    third = decide(sj, second, utc(2026, 1, 1, 4, 3, 30), running=False)
    assert third.state is not None
    exhausted = after_run(sj, third.state, occurrence=occurrence, outcome=Outcome.FAILED,
                          now=utc(2026, 1, 1, 4, 4))
    assert exhausted is not None
    assert (exhausted.failures, exhausted.retry_at, exhausted.next_run_time) == (
        3, None, utc(2026, 1, 1, 5, 0))


def test_no_retry_by_default_and_none_after_the_next_occurrence() -> None:
    occurrence = utc(2026, 1, 1, 4, 0)
    state = ScheduleState(last_schedule_time=occurrence, next_run_time=utc(2026, 1, 1, 4, 5))
    default = after_run(job(schedule="*/5 * * * *"), state, occurrence=occurrence,
                        outcome=Outcome.FAILED, now=occurrence)
    late = after_run(job(schedule="*/5 * * * *", retry={"limit": 3, "backoff": "10m"}), state,
                     occurrence=occurrence, outcome=Outcome.FAILED, now=occurrence)
    for new in (default, late):
        assert new is not None and (new.failures, new.retry_at) == (1, None)


def test_a_success_clears_the_failures_and_a_newer_claim_is_left_alone() -> None:
    occurrence = utc(2026, 1, 1, 4, 0)
    failing = ScheduleState(last_schedule_time=occurrence, next_run_time=utc(2026, 1, 1, 5, 0), failures=2)
    cleared = after_run(job(schedule="0 * * * *"), failing, occurrence=occurrence,
                        outcome=Outcome.NOOP, now=occurrence)
    assert cleared is not None and cleared.failures == 0
    newer = after_run(job(schedule="0 * * * *"), failing, occurrence=utc(2026, 1, 1, 3, 0),
                      outcome=Outcome.FAILED, now=occurrence)
    assert newer is None


def test_next_run_for_status_considers_suspend_and_overrides() -> None:
    now = utc(2026, 1, 1, 12, 0)
    state = ScheduleState(next_run_time=utc(2026, 1, 2, 4, 0))
    assert next_run_for(job(schedule="0 4 * * *"), state, now) == utc(2026, 1, 2, 4, 0)
    assert next_run_for(job(schedule="0 4 * * *", suspend=True), state, now) is None
    assert next_run_for(job(schedule="0 4 * * *"), at(state, suspended=True), now) is None
    assert next_run_for(job(schedule="0 4 * * *"), at(state, override={"interval": "1h"}), now) == now
    assert next_run_for(job(interval="1h"), ScheduleState(), now) == now


# --- the loop on a fake clock and the real stores ----------------------------------------


def test_cron_in_seoul_runs_once_a_day_at_four_local(store: Store) -> None:
    clock = FakeClock(utc(2026, 11, 24, 12, 0))
    runs = FakeRuns(clock)
    sj = job(schedule="0 4 * * *", timeZone="Asia/Seoul", mode="incremental", dryRun=True)
    scheduler = scheduler_for(store, clock, runs, sj)
    asyncio.run(step(scheduler, clock, until=utc(2026, 11, 25, 12, 0)))
    assert runs.calls == [Call("nightly", TARGET, Trigger.SCHEDULE, Mode.INCREMENTAL, True,
                               utc(2026, 11, 24, 19, 0), utc(2026, 11, 24, 19, 0))]
    state = store.schedule_state(sj.ref)
    assert (state.last_schedule_time, state.next_run_time) == (utc(2026, 11, 24, 19, 0),
                                                               utc(2026, 11, 25, 19, 0))


@pytest.mark.parametrize(("schedule", "start", "expected"), [
    ("30 2 * * *", utc(2026, 3, 7, 12, 0), [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]),
    ("30 1 * * *", utc(2026, 10, 31, 12, 0), [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]),
], ids=["spring-forward", "fall-back"])
def test_a_daily_run_happens_exactly_once_on_a_dst_change_day(store: Store, schedule: str, start: datetime,
                                                              expected: list[datetime]) -> None:
    clock = FakeClock(start)
    runs = FakeRuns(clock)
    scheduler = scheduler_for(store, clock, runs, job(schedule=schedule, timeZone=NY))
    asyncio.run(step(scheduler, clock, until=start + timedelta(days=2)))
    assert runs.starts == expected


def test_interval_runs_carry_a_deterministic_jitter(store: Store) -> None:
    start = utc(2026, 1, 1, 0, 0)
    sj = job("spread", interval="5m", jitter="1m")

    def run_once(s: Store) -> list[datetime]:
        clock = FakeClock(start)
        runs = FakeRuns(clock)
        asyncio.run(step(scheduler_for(s, clock, runs, sj), clock, until=start + timedelta(minutes=16),
                         every=timedelta(seconds=1)))
        return runs.starts

    first = run_once(store)
    # A new interval job is due at once, plus its jitter; then every interval, plus its jitter.
    nominal = [start + timedelta(minutes=5 * k) for k in range(4)]
    offsets = [jitter_offset(str(sj.ref), n, timedelta(minutes=1)) for n in nominal]
    # The fake clock steps whole seconds: each run starts within a second of its jittered time.
    assert len(first) == 4
    assert all(timedelta(0) <= s - (n + o) < timedelta(seconds=1)
               for s, n, o in zip(first, nominal, offsets, strict=True))
    assert len(set(offsets)) == 4 and all(o < timedelta(minutes=1) for o in offsets)
    with store.engine.begin() as conn:
        conn.execute(delete(t.schedules))
    assert run_once(store) == first


def test_missed_runs_beyond_the_deadline_are_recorded_after_a_restart(store: Store) -> None:
    sj = job(schedule="0 * * * *", startingDeadlineSeconds=60)
    store.save_schedule_state(sj.ref, ScheduleState(next_run_time=utc(2026, 1, 1, 1, 0)))
    clock = FakeClock(utc(2026, 1, 1, 3, 30))  # the daemon was down from 00:30 to 03:30
    runs = FakeRuns(clock)
    decisions = asyncio.run(scheduler_for(store, clock, runs, sj).tick())
    assert [d.action for d in decisions] == [Action.MISSED] and runs.calls == []
    state = store.schedule_state(sj.ref)
    assert (state.missed, state.last_missed_time, state.next_run_time) == (
        3, utc(2026, 1, 1, 3, 0), utc(2026, 1, 1, 4, 0))
    assert [e["type"] for e in store.events(sj.ref)] == ["ScheduleMissed"]


def test_a_due_run_whose_claim_was_never_made_runs_once_after_a_restart(store: Store) -> None:
    sj = job(schedule="0 * * * *", startingDeadlineSeconds=600)
    clock = FakeClock(utc(2026, 1, 1, 0, 30))
    runs = FakeRuns(clock)
    asyncio.run(scheduler_for(store, clock, runs, sj).tick())  # the first daemon schedules 01:00, then dies
    clock.set(utc(2026, 1, 1, 1, 4))
    asyncio.run(step(scheduler_for(store, clock, runs, sj), clock, until=utc(2026, 1, 1, 1, 30)))
    assert [(c.scheduled_for, c.started) for c in runs.calls] == [(utc(2026, 1, 1, 1, 0),
                                                                   utc(2026, 1, 1, 1, 4))]


def test_a_restart_does_not_repeat_a_run_that_already_started(store: Store) -> None:
    sj = job(schedule="0 * * * *")
    clock = FakeClock(utc(2026, 1, 1, 0, 59))
    runs = FakeRuns(clock, seconds=600)
    first = scheduler_for(store, clock, runs, sj)

    async def crash_during_the_run() -> None:
        await step(first, clock, until=utc(2026, 1, 1, 1, 2))
        await first.shutdown(0)  # the process dies while the run is in progress

    asyncio.run(crash_during_the_run())
    assert len(runs.calls) == 1 and len(runs.cancelled) == 1
    asyncio.run(step(scheduler_for(store, clock, runs, sj), clock, until=utc(2026, 1, 1, 1, 30)))
    assert len(runs.calls) == 1
    assert store.schedule_state(sj.ref).next_run_time == utc(2026, 1, 1, 2, 0)


@pytest.mark.parametrize("how", ["spec", "runtime"])
def test_a_suspended_job_does_not_run_but_keeps_its_next_run_time(store: Store, how: str) -> None:
    sj = job(schedule="0 * * * *", suspend=how == "spec")
    if how == "runtime":
        store.save_schedule_state(sj.ref, ScheduleState(suspended=True))
    clock = FakeClock(utc(2026, 1, 1, 0, 30))
    runs = FakeRuns(clock)
    asyncio.run(step(scheduler_for(store, clock, runs, sj), clock, until=utc(2026, 1, 1, 3, 30)))
    assert runs.calls == []
    state = store.schedule_state(sj.ref)
    assert (state.next_run_time, state.missed) == (utc(2026, 1, 1, 4, 0), 0)
    assert next_run_for(sj, state, clock.now()) is None
    assert next_run_for(sj, at(state, suspended=False), clock.now()) == utc(2026, 1, 1, 4, 0)
    store.save_schedule_state(sj.ref, at(state, suspended=False))  # resume: the next occurrence runs
    asyncio.run(step(scheduler_for(store, clock, runs, sj), clock, until=utc(2026, 1, 1, 4, 30)))
    assert runs.starts == [utc(2026, 1, 1, 4, 0)]


@pytest.mark.parametrize(("policy", "starts", "cancelled", "missed"), [
    ("Forbid", ["01:00", "03:00"], [], 1),
    ("Replace", ["01:00", "02:00", "03:00"], ["01:00", "02:00"], 0),
    ("Allow", ["01:00", "02:00", "03:00"], [], 0),
])
def test_concurrency_policies_with_a_run_longer_than_the_schedule(
        store: Store, policy: str, starts: list[str], cancelled: list[str], missed: int) -> None:
    sj = job(schedule="0 * * * *", concurrencyPolicy=policy)
    clock = FakeClock(utc(2026, 1, 1, 0, 30))
    runs = FakeRuns(clock, seconds=90 * 60)
    scheduler = scheduler_for(store, clock, runs, sj)

    async def scenario() -> None:
        await step(scheduler, clock, until=utc(2026, 1, 1, 3, 30))
        await scheduler.shutdown(0)

    asyncio.run(scenario())
    hhmm = [f"{c.started:%H:%M}" for c in runs.calls]
    assert hhmm == starts
    assert [f"{c.started:%H:%M}" for c in runs.cancelled if c.started < utc(2026, 1, 1, 3, 0)] == cancelled
    assert store.schedule_state(sj.ref).missed == missed


def test_forbid_applies_to_every_job_of_the_same_target(store: Store) -> None:
    full = job("full", schedule="0 * * * *")
    quick = job("quick", schedule="30 * * * *")
    clock = FakeClock(utc(2026, 1, 1, 0, 59))
    runs = FakeRuns(clock, seconds=45 * 60)
    asyncio.run(step(scheduler_for(store, clock, runs, full, quick), clock, until=utc(2026, 1, 1, 2, 1)))
    assert [(c.job, f"{c.started:%H:%M}") for c in runs.calls] == [("full", "01:00"), ("full", "02:00")]
    assert store.schedule_state(quick.ref).missed == 1


def test_failed_runs_are_retried_with_backoff_up_to_the_limit(store: Store) -> None:
    sj = job(schedule="0 * * * *", retry={"limit": 2, "backoff": "30s"})
    clock = FakeClock(utc(2026, 1, 1, 0, 59))
    runs = FakeRuns(clock, outcomes=[Outcome.FAILED, Outcome.ABORTED, Outcome.FAILED, Outcome.FAILED])
    asyncio.run(step(scheduler_for(store, clock, runs, sj), clock, until=utc(2026, 1, 1, 2, 2),
                     every=timedelta(seconds=10)))
    assert runs.starts == [utc(2026, 1, 1, 1, 0), utc(2026, 1, 1, 1, 0, 30), utc(2026, 1, 1, 1, 1, 30),
                           utc(2026, 1, 1, 2, 0), utc(2026, 1, 1, 2, 0, 30)]
    assert [c.scheduled_for for c in runs.calls[:3]] == [utc(2026, 1, 1, 1, 0)] * 3
    state = store.schedule_state(sj.ref)
    assert (state.failures, state.retry_at) == (0, None)  # the 02:00 retry succeeded


def test_windows_block_scheduled_runs_and_record_them(store: Store) -> None:
    sj = job(schedule="0 * * * *", windows=[{"kind": "deny", "schedule": "0 3 * * *", "duration": "2h"}])
    clock = FakeClock(utc(2026, 1, 1, 1, 30))
    runs = FakeRuns(clock)
    asyncio.run(step(scheduler_for(store, clock, runs, sj), clock, until=utc(2026, 1, 1, 6, 30)))
    assert [c.started.hour for c in runs.calls] == [2, 5, 6]
    assert sorted(e["type"] for e in store.events(sj.ref)) == ["ScheduleBlocked"] * 2


def test_run_forever_ticks_until_stopped_and_shutdown_waits_for_runs(store: Store) -> None:
    clock = FakeClock(utc(2026, 1, 1, 0, 0), auto_advance=True)
    runs = FakeRuns(clock)
    sj = job(interval="10m")
    scheduler = Scheduler(store, clock=clock, start_run=runs, jobs=lambda: [sj], tick_seconds=60)

    async def scenario() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(scheduler.run_forever(stop))
        while clock.now() < utc(2026, 1, 1, 1, 0):
            await asyncio.sleep(0)
        stop.set()
        await loop
        await scheduler.shutdown(1)

        assert not scheduler.alive()  # the loop has ended

    assert scheduler.alive()
    asyncio.run(scenario())
    assert runs.starts[:6] == [utc(2026, 1, 1, 0, 10 * k) for k in range(6)]


class UnreachableStore(Store):
    def schedule_states(self) -> dict[ObjectRef, ScheduleState]:
        raise StoreError("the database is unreachable")


def test_the_scheduler_is_not_alive_while_its_ticks_keep_failing(sqlite_store: Store) -> None:
    clock = FakeClock(utc(2026, 1, 1, 0, 0))
    broken = UnreachableStore(sqlite_store.engine)
    scheduler = scheduler_for(broken, clock, FakeRuns(clock), job(interval="10m"))

    async def scenario() -> None:
        stop = asyncio.Event()
        loop = asyncio.create_task(scheduler.run_forever(stop))
        await settle()
        clock.advance(15)
        await settle()
        assert scheduler.alive()  # a failed tick or two is tolerated
        for _ in range(30):
            clock.advance(1)
            await settle()
        assert not scheduler.alive()
        stop.set()
        await loop

    asyncio.run(scenario())


# --- two daemons on one PostgreSQL store -------------------------------------------------


@pytest.fixture
def two_pg_stores(pg_store: Store, pg_database: str) -> Iterator[tuple[Store, Store]]:
    def empty() -> None:
        with pg_store.engine.begin() as conn:
            conn.execute(delete(t.schedules))
            conn.execute(delete(t.events))

    empty()
    other = Store.open(pg_database)
    yield pg_store, other
    other.close()
    empty()


class RacingStore(Store):
    """A store whose first claim waits until the other daemon is about to claim as well, so
    that both have read and decided on the same state before either writes."""

    def __init__(self, store: Store, barrier: threading.Barrier) -> None:
        super().__init__(store.engine)
        self.barrier = barrier
        self.raced = False

    def claim_schedule(self, job: ObjectRef, *, expected_next: datetime | None,
                       state: ScheduleState) -> bool:
        if not self.raced:
            self.raced = True
            self.barrier.wait(timeout=10)
        return super().claim_schedule(job, expected_next=expected_next, state=state)


def _in_threads(*work: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * len(work)

    def run(i: int) -> None:
        results[i] = work[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_daemons_on_one_postgresql_store_start_a_due_run_once(two_pg_stores: tuple[Store, Store]) -> None:
    one, two = two_pg_stores
    sj = job(schedule="0 * * * *")
    one.save_schedule_state(sj.ref, ScheduleState(next_run_time=utc(2026, 1, 1, 1, 0)))
    barrier = threading.Barrier(2)
    runs = FakeRuns(FakeClock(utc(2026, 1, 1, 1, 0)))

    def daemon(store: Store) -> Sequence[Any]:
        async def tick() -> Sequence[Any]:
            scheduler = scheduler_for(RacingStore(store, barrier), FakeClock(utc(2026, 1, 1, 1, 0)), runs, sj)
            decisions = await scheduler.tick()
            await scheduler.shutdown(5)
            return decisions

        return asyncio.run(tick())

    first, second = _in_threads(lambda: daemon(one), lambda: daemon(two))
    assert [d.action for d in (*first, *second)] == [Action.RUN, Action.RUN]  # both found it due
    assert sorted(d.claimed for d in (*first, *second)) == [False, True]  # one claim won
    assert len(runs.calls) == 1
    assert one.schedule_state(sj.ref).next_run_time == utc(2026, 1, 1, 2, 0)


def test_two_daemons_ticking_the_same_day_share_the_runs_without_repeats(
        two_pg_stores: tuple[Store, Store]) -> None:
    one, two = two_pg_stores
    sj = job(schedule="*/15 * * * *")
    clock = FakeClock(utc(2026, 1, 1, 0, 0))
    runs = FakeRuns(clock)
    first, second = scheduler_for(one, clock, runs, sj), scheduler_for(two, clock, runs, sj)

    async def scenario() -> None:
        while clock.now() < utc(2026, 1, 1, 2, 0):
            for scheduler in (second, first) if clock.now().minute % 2 else (first, second):
                await scheduler.tick()
            await settle()
            clock.advance(60)

    asyncio.run(scenario())
    assert runs.starts == [utc(2026, 1, 1, 0, 15) + timedelta(minutes=15 * k) for k in range(7)]
