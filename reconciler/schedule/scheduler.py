"""The scheduler: starts each SyncJob's runs at their times, once, across restarts and replicas.

The model is Kubernetes' CronJob controller, reduced to one pure function and a thin loop:

- `decide(job, state, now, running)` looks at one job, its persisted `ScheduleState` and
  the time, and says what to do: nothing yet (`idle`), start a run (`run`), or record a
  due occurrence that will not run (`skipped`, `missed`, `blocked`, `suspended`). It also
  returns the state to persist. It has no clock, no store and no side effects.
- `Scheduler.tick` applies the decisions. Before anything happens it *claims* the
  decision: a compare-and-set on the job's stored `next_run_time`. With several daemons on
  one PostgreSQL store, all of them decide alike and exactly one claim succeeds; the
  others do nothing. Because the claim (with the new `next_run_time` and
  `last_schedule_time`) is stored *before* the run starts, a restart never repeats a run,
  and a due occurrence whose claim was never made is still pending after a restart.

The rules, in the order `decide` applies them to a due occurrence:

1. **Pending occurrence.** `state.next_run_time` is the *nominal* time of the next
   occurrence and the claim token (for an interval with jitter the run is due a little
   later, see `timing`). A new cron job waits for its first occurrence after now; a new
   interval job is due at once (plus its jitter). When `next_run_time` is empty (a new
   job, or the control layer cleared it after a spec change or a schedule override) or no
   longer fits the schedule (its schedule, interval or time zone changed), the job is
   rescheduled to its first occurrence after now, without running; an interval keeps its
   chain anchored at the last run.
2. **Suspend.** `state.suspended` (a runtime override, set through the API) wins over
   `spec.suspend`. A suspended job starts nothing, but its next run time keeps moving
   forward, so that resuming waits for the next occurrence instead of catching up.
   Occurrences passed while suspended are not counted as missed; a pending retry is dropped.
3. **Missed occurrences.** If several occurrences passed (the daemon was down), only the
   most recent may run; the earlier ones are counted in `state.missed`. With
   `startingDeadlineSeconds`, an occurrence later than the deadline does not run either
   and is counted as missed too (`missed`). Without a deadline the most recent one runs
   however late.
4. **Windows** (`spec.windows`, as Argo CD's sync windows, evaluated at the time the run
   would start): inside an open deny window, or outside every allow window when the job
   has any, the occurrence is not deferred but *blocked*: it does not run, an event
   records it, and the job waits for its next occurrence. Deferring would pile runs up at
   the end of every window; the next occurrence is what the schedule asked for.
5. **Concurrency**, when a run of the job's *target* (started by this scheduler, for any
   job of that target) is still in progress: `Forbid` skips the occurrence and counts it
   as missed (as CronJob does); `Replace` cancels the running run (the orchestrator
   records it as cancelled) and then starts the new one; `Allow` starts anyway, and the
   orchestrator's per-target lock makes the new run wait for the old one.
6. **Retries** (`spec.retry`): after a scheduled run ends `failed` or `aborted`, the job
   is retried `backoff · 2^(n-1)` later (at most `maxBackoff`), up to `limit` times per
   occurrence, but never later than the next regular occurrence, which then takes over
   with a fresh count. While a retry is pending, `next_run_time` holds the retry time (so
   the claim covers retries too) and `retry_at` says it is one. A retry waits while a run
   of the target is in progress, and a window blocks it like an occurrence.

Runs are started through the `start_run` callable (the daemon passes the orchestrator);
the scheduler tracks them as tasks, and when one ends it updates `failures` and
`retry_at` with another compare-and-set. Forced runs (API, annotation) are not started
here; they go to the orchestrator directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog

from reconciler.models import Mode, ObjectRef, SyncJob
from reconciler.models.syncjob import ConcurrencyPolicy, SyncJobSpec, WindowKind
from reconciler.ports import SchedulerStore
from reconciler.schedule.clock import Clock
from reconciler.schedule.timing import Timing, window_open
from reconciler.structs.runs import Outcome, RunResult, Trigger
from reconciler.structs.schedules import ScheduleState

log = structlog.get_logger("reconciler.schedule")

StartRun = Callable[[SyncJob, ObjectRef, Trigger, Mode, bool, datetime], Awaitable[RunResult]]
"""`start_run(job, target, trigger, mode, dry_run, scheduled_for)`: run the target once."""

_RETRIED_OUTCOMES = frozenset({Outcome.FAILED, Outcome.ABORTED})


class Action(StrEnum):
    """What a decision does with the job's pending occurrence."""

    IDLE = "idle"  # nothing is due (the state may still be written: first schedule, reschedule)
    RUN = "run"  # start a run
    SKIPPED = "skipped"  # due, but Forbid and a run of the target is in progress
    MISSED = "missed"  # due, but later than startingDeadlineSeconds
    BLOCKED = "blocked"  # due, but a window forbids runs now
    SUSPENDED = "suspended"  # the job is suspended (spec or runtime override)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one job at one instant, and the state to claim for it.

    `state` is the `ScheduleState` to store with a compare-and-set against
    `expected_next` (the `next_run_time` the decision was made from); None means nothing
    to store. `claimed` is filled in by `Scheduler.tick`: whether this process won it.
    """

    job: ObjectRef
    target: ObjectRef
    action: Action
    reason: str
    due: bool = False  # an occurrence or a retry came due (whatever the action)
    scheduled_for: datetime | None = None  # nominal time of the occurrence acted on (a retry: the original)
    due_at: datetime | None = None  # the instant it was due (jitter or retry time included)
    next_run_time: datetime | None = None  # when the job is next due after this decision (UTC)
    attempt: int = 1  # 1 for an occurrence's first run, n + 1 for its n-th retry
    missed: int = 0  # occurrences this decision records as missed
    replace: bool = False  # cancel the target's running run(s) first (Replace)
    suspended: bool = False
    expected_next: datetime | None = None
    state: ScheduleState | None = None
    claimed: bool = False

    @property
    def run(self) -> bool:
        return self.action is Action.RUN


def is_suspended(job: SyncJob, state: ScheduleState) -> bool:
    """The runtime override (`state.suspended`) wins over `spec.suspend`."""
    return state.suspended if state.suspended is not None else job.spec.suspend


def target_suspended(target: ObjectRef, jobs: Sequence[SyncJob],
                     state_of: Callable[[ObjectRef], ScheduleState]) -> bool:
    """A target is suspended when it has SyncJobs and all of them are (one rule for the
    daemon, the API, MQTT and the operator)."""
    mine = [j for j in jobs if j.target == target]
    return bool(mine) and all(is_suspended(j, state_of(j.ref)) for j in mine)


def timing_of(job: SyncJob, state: ScheduleState) -> tuple[Timing, str | None]:
    """The job's effective timing (a runtime override replaces the spec's) and a note if the
    override was unusable and ignored."""
    key = str(job.ref)
    try:
        return Timing.of(job.spec, key=key, override=state.override), None
    except ValueError as exc:
        return Timing.of(job.spec, key=key), f"runtime schedule override ignored: {exc}"


def _closing_window(spec: SyncJobSpec, at: datetime) -> str | None:
    """Why a window forbids a run at `at`, or None when runs are allowed."""
    allow_open, has_allow = False, False
    for window in spec.windows:
        zone = window.time_zone or spec.time_zone
        is_open = window_open(window.schedule, zone, window.duration, at)
        if window.kind is WindowKind.DENY and is_open:
            return f"deny window '{window.schedule}' ({zone}) is open"
        if window.kind is WindowKind.ALLOW:
            has_allow = True
            allow_open = allow_open or is_open
    if has_allow and not allow_open:
        return "no allow window is open"
    return None


def replace_state(state: ScheduleState, **changes: object) -> ScheduleState:
    """A copy of a (pydantic, frozen) schedule state with some fields changed."""
    return state.model_copy(update=changes)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def decide(job: SyncJob, state: ScheduleState, now: datetime, running: bool) -> Decision:
    """What to do with `job` at `now`, given its stored state and whether its target is busy."""
    now = now.astimezone(UTC)
    spec = job.spec
    suspended = is_suspended(job, state)
    timing, note = timing_of(job, state)
    base = Decision(job=job.ref, target=job.target, action=Action.IDLE, reason="",
                    suspended=suspended, expected_next=state.next_run_time)

    def done(action: Action, reason: str, new: ScheduleState | None, **fields: Any) -> Decision:
        if note:
            reason = f"{reason}; {note}"
        return replace(base, action=action, reason=reason, state=new, **fields)

    def next_due(new: ScheduleState) -> datetime | None:
        if new.retry_at is not None:
            return new.retry_at
        return timing.due(new.next_run_time) if new.next_run_time is not None else None

    current, changed = state, False

    # A pending retry: run it, wait for it, or drop it for the next regular occurrence.
    retry_at = current.retry_at
    if retry_at is not None:
        occurrence = current.last_schedule_time
        regular = (timing.following(occurrence) if occurrence is not None
                   else timing.first_after(now))
        dropped = replace_state(current, retry_at=None, next_run_time=regular)
        if suspended or timing.due(regular) <= now:
            current, changed = dropped, True  # the regular occurrence takes over below
        elif retry_at > now:
            return done(Action.IDLE, f"retry {current.failures} at {_iso(retry_at)}", None,
                        next_run_time=retry_at)
        elif running:
            return done(Action.IDLE, "retry waits for the target's running run", None,
                        next_run_time=retry_at)
        else:
            fields = {"due": True, "scheduled_for": occurrence or retry_at,
                      "due_at": retry_at, "next_run_time": next_due(dropped)}
            closed = _closing_window(spec, now)
            if closed:
                return done(Action.BLOCKED, f"retry blocked: {closed}", dropped, **fields)
            return done(Action.RUN, f"retry {current.failures} of the run for "
                        f"{_iso(occurrence or retry_at)}", dropped,
                        attempt=current.failures + 1, **fields)

    # The pending regular occurrence, (re)computed when missing or no longer on the schedule.
    pending = current.next_run_time
    reason = ""
    if pending is None:
        pending, changed, reason = timing.first_after(now, anchor=current.last_schedule_time), True, \
            f"scheduled {timing}"
    elif not timing.fits(pending, now):
        pending, changed, reason = timing.first_after(now, anchor=current.last_schedule_time), True, \
            f"rescheduled to {timing}"
    if changed:
        current = replace_state(current, next_run_time=pending)

    occurrences = timing.due_between(pending, now)
    if occurrences is None:
        idle = Action.SUSPENDED if suspended else Action.IDLE
        return done(idle, reason or ("suspended" if suspended else "not due"),
                    current if changed else None, next_run_time=timing.due(pending))

    latest = occurrences.latest
    following = timing.following(latest)
    late = now - timing.due(latest)
    moved = replace_state(current, next_run_time=following, retry_at=None)
    fields = {"due": True, "scheduled_for": latest, "due_at": timing.due(latest),
              "next_run_time": timing.due(following)}
    earlier = occurrences.count - 1

    if suspended:
        return done(Action.SUSPENDED, f"suspended: the occurrence at {_iso(latest)} does not run",
                    moved, **fields)
    deadline = spec.starting_deadline_seconds
    if deadline is not None and late > timedelta(seconds=deadline):
        return done(Action.MISSED, f"missed {occurrences.count} occurrence(s), the last at {_iso(latest)}: "
                    f"{late.total_seconds():.0f}s late, startingDeadlineSeconds is {deadline}",
                    replace_state(moved, missed=current.missed + occurrences.count, last_missed_time=latest),
                    missed=occurrences.count, **fields)
    closed = _closing_window(spec, now)
    if closed:
        return done(Action.BLOCKED, f"blocked: {closed}", moved, **fields)
    if running and spec.concurrency_policy is ConcurrencyPolicy.FORBID:
        return done(Action.SKIPPED, "skipped: a run of the target is in progress (Forbid)",
                    replace_state(moved, missed=current.missed + occurrences.count, last_missed_time=latest),
                    missed=occurrences.count, **fields)
    started = replace_state(moved, last_schedule_time=latest, failures=0, missed=current.missed + earlier,
                            last_missed_time=occurrences.previous if earlier else current.last_missed_time)
    replacing = running and spec.concurrency_policy is ConcurrencyPolicy.REPLACE
    text = f"run for {_iso(latest)}"
    if earlier:
        text += f" ({earlier} earlier occurrence(s) missed)"
    if replacing:
        text += ", replacing the running run"
    return done(Action.RUN, text, started, missed=earlier, replace=replacing, **fields)


def after_run(job: SyncJob, state: ScheduleState, *, occurrence: datetime | None, outcome: Outcome,
              now: datetime) -> ScheduleState | None:
    """The state after a scheduled run for `occurrence` ended, or None to leave it as is.

    A success clears the failure count. A failure counts one more and, within the retry
    limit, schedules a retry if it comes before the next regular occurrence. Nothing
    changes if a newer occurrence has been claimed since the run started (it owns the
    record now).
    """
    if occurrence is None or state.last_schedule_time != occurrence:
        return None
    timing, _ = timing_of(job, state)
    if outcome not in _RETRIED_OUTCOMES:
        if state.retry_at is not None:  # (overlapping runs) the pending retry is not needed now
            return replace_state(state, failures=0, retry_at=None, next_run_time=timing.following(occurrence))
        return replace_state(state, failures=0) if state.failures else None
    failures = state.failures + 1
    policy = job.spec.retry
    # Only when the job is still waiting for the occurrence that followed this run: then the
    # regular chain resumes from `last_schedule_time` once the retry is claimed.
    on_chain = state.retry_at is None and state.next_run_time == timing.following(occurrence)
    if failures <= policy.limit and on_chain and not is_suspended(job, state):
        delay = min(policy.backoff * 2 ** (failures - 1), policy.max_backoff)
        retry_at = now.astimezone(UTC) + delay
        assert state.next_run_time is not None
        if retry_at < timing.due(state.next_run_time):
            return replace_state(state, failures=failures, retry_at=retry_at, next_run_time=retry_at)
    return replace_state(state, failures=failures)


def next_run_for(job: SyncJob, state: ScheduleState, now: datetime) -> datetime | None:
    """When the job next runs, for status views: None while suspended; the due instant if a
    run is due now; otherwise the next occurrence (or pending retry) after the override."""
    decision = decide(job, state, now, running=False)
    if decision.suspended:
        return None
    if decision.run:
        return decision.due_at
    return decision.next_run_time


class Scheduler:
    """Runs `decide` for every job on every tick and applies the decisions (see the module doc).

    `jobs` is called on every tick, so spec changes apply at the next tick. `tick_seconds`
    is the resolution: a run starts at most one tick after it is due.
    """

    def __init__(self, store: SchedulerStore, *, clock: Clock, start_run: StartRun,
                 jobs: Callable[[], Sequence[SyncJob]], tick_seconds: float = 1.0) -> None:
        self.store = store
        self.clock = clock
        self.start_run = start_run
        self.jobs = jobs
        self.tick_seconds = tick_seconds
        self._runs: dict[ObjectRef, set[asyncio.Task[None]]] = {}
        self._last_good_tick = clock.now()
        self._ended = False

    # --- runs in progress --------------------------------------------------------------

    def is_running(self, target: ObjectRef) -> bool:
        """Whether a run this scheduler started for `target` is still in progress."""
        return bool(self._runs.get(target))

    @property
    def running(self) -> frozenset[ObjectRef]:
        return frozenset(t for t, tasks in self._runs.items() if tasks)

    def run_tasks(self) -> set[asyncio.Task[None]]:
        """The runs this scheduler started that are still in flight (a stopping daemon's grace)."""
        return {task for group in self._runs.values() for task in group if not task.done()}

    def alive(self) -> bool:
        """For readiness probes: the loop has not ended and a tick succeeded lately (within ten
        ticks, at least 30 s; a store that stays unreachable makes the scheduler not ready)."""
        allowed = max(timedelta(seconds=30), timedelta(seconds=10 * self.tick_seconds))
        return not self._ended and self.clock.now() - self._last_good_tick <= allowed

    # --- the loop ----------------------------------------------------------------------

    async def tick(self) -> list[Decision]:
        """Decide for every job once and apply what this process claims."""
        now = self.clock.now()
        states = await asyncio.to_thread(self.store.schedule_states)
        decisions = []
        for job in self.jobs():
            try:
                decisions.append(await self.tick_job(job, state=states.get(job.ref, ScheduleState()),
                                                     now=now))
            except Exception:  # one broken job must not stop the others
                log.exception("scheduling failed", job=str(job.ref))
        return decisions

    async def tick_job(self, job: SyncJob, *, state: ScheduleState | None = None,
                       now: datetime | None = None) -> Decision:
        """Decide for one job, claim the decision's state and apply it if the claim is ours.
        The daemon calls it for every job on each tick; the operator from each SyncJob's
        kopf timer (the same decisions, claims, events, retries and concurrency policy)."""
        now = now or self.clock.now()
        if state is None:
            state = await asyncio.to_thread(self.store.schedule_state, job.ref)
        decision = decide(job, state, now, self.is_running(job.target))
        if decision.state is not None:
            claimed = await asyncio.to_thread(self.store.claim_schedule, job.ref,
                                              expected_next=decision.expected_next, state=decision.state)
            decision = replace(decision, claimed=claimed)
            if decision.claimed:
                self._apply(job, decision, now)
        return decision

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set; runs still in progress are left to `shutdown`."""
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                    self._last_good_tick = self.clock.now()
                except Exception:  # the store is unreachable: try again next tick
                    log.exception("scheduler tick failed")
                sleeping = asyncio.ensure_future(self.clock.sleep(self.tick_seconds))
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({sleeping, stopping}, return_when=asyncio.FIRST_COMPLETED)
                for waiter in (sleeping, stopping):
                    waiter.cancel()
                await asyncio.gather(sleeping, stopping, return_exceptions=True)
        finally:
            self._ended = True

    async def shutdown(self, grace_seconds: float) -> None:
        """Wait up to `grace_seconds` (real time) for running runs, then cancel the rest.

        A cancelled run is recorded by the orchestrator with outcome `cancelled` (not retried).
        """
        tasks = {task for group in self._runs.values() for task in group}
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, grace_seconds))
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- applying a claimed decision ---------------------------------------------------

    def _apply(self, job: SyncJob, decision: Decision, now: datetime) -> None:
        log.info("schedule decision", job=str(job.ref), action=str(decision.action),
                 reason=decision.reason,
                 scheduled_for=decision.scheduled_for.isoformat() if decision.scheduled_for else None)
        if decision.action in (Action.MISSED, Action.SKIPPED, Action.BLOCKED):
            self.store.record_event(
                target=job.ref, run_id=None, type_=f"Schedule{decision.action.capitalize()}",
                reason=f"Occurrence{decision.action.capitalize()}", message=decision.reason,
                data={"scheduledFor": decision.scheduled_for, "missed": decision.missed,
                      "nextRunTime": decision.next_run_time}, at=now)
        if not decision.run:
            return
        replaced = set(self._runs.get(decision.target, ())) if decision.replace else set()
        task = asyncio.create_task(self._run(job, decision, replaced), name=f"scheduled run of {job.ref}")
        group = self._runs.setdefault(decision.target, set())
        group.add(task)
        task.add_done_callback(group.discard)

    async def _run(self, job: SyncJob, decision: Decision, replaced: set[asyncio.Task[None]]) -> None:
        for task in replaced:
            task.cancel()
        if replaced:
            await asyncio.gather(*replaced, return_exceptions=True)
        assert decision.scheduled_for is not None
        try:
            result = await self.start_run(job, decision.target, Trigger.SCHEDULE, job.spec.mode,
                                          job.spec.dry_run, decision.scheduled_for)
            outcome = result.outcome
        except asyncio.CancelledError:
            raise  # replaced or shut down: not a failure of the occurrence
        except Exception:  # the orchestrator records its own failures; this is a bug elsewhere
            log.exception("scheduled run raised", job=str(job.ref))
            outcome = Outcome.FAILED
        try:
            # On the loop: the next tick must see this bookkeeping (two small queries).
            self._after_run(job, decision, outcome, self.clock.now())
        except Exception:  # the run itself is recorded; only the retry bookkeeping is lost
            log.exception("could not record the end of a scheduled run", job=str(job.ref))

    def _after_run(self, job: SyncJob, decision: Decision, outcome: Outcome, ended: datetime) -> None:
        # Compare-and-set as well: another daemon may move the schedule on meanwhile.
        for _ in range(3):
            state = self.store.schedule_state(job.ref)
            new = after_run(job, state, occurrence=decision.scheduled_for, outcome=outcome, now=ended)
            if new is None or new == state:
                return
            if self.store.claim_schedule(job.ref, expected_next=state.next_run_time, state=new):
                if new.retry_at is not None:
                    log.info("scheduled retry", job=str(job.ref), at=_iso(new.retry_at),
                             failures=new.failures)
                return
        log.warning("could not record the end of a scheduled run", job=str(job.ref))
