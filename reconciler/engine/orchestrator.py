"""The orchestrator: one run of one target, the same for every front end.

`Orchestrator.run` is the only way anything reconciles. It takes the target's lock,
records the run as started, builds the `RunContext`, then calls the driver's observe and
diff, runs the guards, applies (unless it is a dry run or there is nothing to do), and
records the end of the run with its changes, the inventory of owned keys and the
watermarks in one store transaction. It publishes events on the bus at start and end, and
while a run still goes past a duration threshold (a WARNING too: see overruns.py). A front
end that keeps specs between runs (the daemon) passes itself as the run's `SpecKeeper`:
the run then plans with the keeper's spec as it is once the lock is held, and a spec the
apply wrote back goes to the keeper before the lock is released.

Failures never escape: a driver error, a guard, an unreachable target or a lock timeout
all give a `RunResult` with the outcome and the error recorded, so a scheduler or an API
handler can carry on. A run cut short (its task cancelled: a daemon's shutdown grace ran
out) is recorded as `cancelled`, announced with `RunCancelled`, and the cancellation goes
on up. A run cancelled before or during an apply that honours cancellation leaves the
target as it was; an apply already running in a worker thread is not stopped by it. Every
text that leaves a run (plan, error, warnings, events) is scrubbed of the secret values the
run resolved.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

import structlog

from reconciler.engine.classifying import classify
from reconciler.engine.drivers import (
    ApplyResult,
    Driver,
    DriverRegistry,
    ProgressCallback,
    RunContext,
    TargetState,
    driver_guards,
    prove,
    record_plan,
    release,
)
from reconciler.engine.events import Event, EventBus, EventType
from reconciler.engine.failures import summarize_unexpected
from reconciler.engine.guards import Guard, NeverWeaken
from reconciler.engine.overruns import DurationLimits, Threshold, watch_duration
from reconciler.errors import GuardAborted, ReconcilerError
from reconciler.loading.secrets import SecretResolver
from reconciler.logs import scrubbing
from reconciler.models import DeletionPolicy, Mode, ObjectRef, Resource
from reconciler.ports import RunStore
from reconciler.structs.plans import Counts, Plan
from reconciler.structs.runs import Outcome, RunResult, Trigger

log = structlog.get_logger("reconciler.run")

_EVENT_FOR_OUTCOME = {
    Outcome.SUCCEEDED: EventType.RUN_SUCCEEDED,
    Outcome.NOOP: EventType.RUN_NOOP,
    Outcome.PLANNED: EventType.RUN_PLANNED,
    Outcome.ABORTED: EventType.GUARD_TRIPPED,
    Outcome.FAILED: EventType.RUN_FAILED,
    Outcome.CANCELLED: EventType.RUN_CANCELLED,
}


class SpecKeeper(Protocol):
    """Who keeps the specs between runs (the daemon's controller). A run takes its target's
    spec from the keeper once it holds the target's lock, not when it was asked for: a run
    queued behind another plans with the spec that one left. A spec the run's apply wrote
    back (`ApplyResult.spec_written`) goes to the keeper before the lock is released."""

    def current(self, ref: ObjectRef) -> Resource | None:
        """The object's spec now; None: keep the one the run was started with."""
        ...

    def written(self, obj: Resource) -> None:
        """A run wrote `obj`'s spec back: it is the object's spec from now on."""
        ...


def new_run_id() -> str:
    # Time-ordered prefix (milliseconds) so that ids sort like runs; random tail.
    return f"{int(datetime.now(UTC).timestamp() * 1000):012x}{uuid.uuid4().hex[:20]}"


class Orchestrator:
    def __init__(
        self,
        *,
        store: RunStore,
        drivers: DriverRegistry,
        bus: EventBus | None = None,
        guards: Sequence[Guard] = (),
        lock_timeout: float = 600.0,
        secrets: Callable[[], SecretResolver] = SecretResolver,
        duration_limits: DurationLimits | None = None,
    ) -> None:
        self.store = store
        self.drivers = drivers
        self.bus = bus or EventBus()
        self.guards = tuple(guards)
        self.lock_timeout = lock_timeout
        self.duration_limits = duration_limits or DurationLimits()
        self._secrets = secrets

    def rollback_point(self, target: ObjectRef, to: str) -> str:
        """The id of `target`'s run `to` (an id or an unambiguous prefix, as `history` prints
        it), the point a rollback restores; `ReconcilerError` when it is not one of its runs."""
        record = self.store.run(to)
        if record is None or record.target != target:
            raise ReconcilerError(f"no run {to!r} of {target.short} (or the prefix is ambiguous); "
                                  f"see `reconciler history {target.short}`")
        return record.id

    async def run(
        self,
        obj: Resource,
        *,
        trigger: Trigger,
        mode: Mode = Mode.FULL,
        dry_run: bool = False,
        revision: str | None = None,
        progress: ProgressCallback | None = None,
        rollback_to: str | None = None,
        record: bool = True,
        verify: bool = False,
        guards: Sequence[Guard] = (),
        run_id: str | None = None,
        keeper: SpecKeeper | None = None,
    ) -> RunResult:
        """One run of `obj`. `record=False` (dry runs only: a pull-request review with read-only
        credentials) writes nothing to the store: no run, changes or events are recorded.
        `verify` (dry runs only) asks the driver to prove the plan (see `drivers.prove`).
        `guards` are checked for this run only, after the orchestrator's and the driver's
        (for example `RefuseDrift` for `apply --refuse-drift`). `run_id` (from `new_run_id`) lets
        a caller name the run before it starts, to answer with it at once (a forced API run).
        `keeper`: where the spec is taken from under the lock and a written-back spec goes
        (see `SpecKeeper`); without one, the run plans with `obj`."""
        if not record and not dry_run:
            raise ValueError("only a dry run can be left unrecorded")
        if verify and not dry_run:
            raise ValueError("only a dry run can be verified")
        run_id = run_id or new_run_id()
        target = obj.ref
        started = datetime.now(UTC)
        secrets = self._secrets()
        with structlog.contextvars.bound_contextvars(
            run_id=run_id, kind=target.kind, name=target.name, namespace=target.namespace
        ), scrubbing(secrets.scrub):
            try:
                async with self.store.target_lock(target, timeout=self.lock_timeout):
                    started = datetime.now(UTC)
                    kept = keeper.current(target) if keeper is not None else None
                    obj = kept if kept is not None else obj
                    if record:
                        # Holding the lock: a run of this target still `running` was left by a
                        # process that died (kill -9); it is closed as failed, not left forever.
                        # The store's writes run in a worker thread: the daemon's event loop
                        # (API, scheduler, publishers) keeps answering while a run is recorded.
                        for stale in await asyncio.to_thread(self.store.abandon_running, target,
                                                             now=started):
                            log.warning("run abandoned by a process that ended", abandoned=stale)
                        await asyncio.to_thread(
                            self.store.start_run,
                            run_id=run_id, target=target, trigger=str(trigger), mode=str(mode),
                            dry_run=dry_run, revision=revision,
                            generation=obj.metadata.generation, started_at=started,
                        )
                    self._publish(record, Event(EventType.RUN_STARTED, target, run_id, "Progressing",
                                        f"{'planning' if dry_run else 'reconciling'} "
                                        f"{target.short} ({mode}, trigger {trigger})"))
                    log.info("run started", trigger=str(trigger), mode=str(mode), dry_run=dry_run)
                    ctx = RunContext(
                        run_id=run_id, obj=obj, mode=mode, dry_run=dry_run, trigger=trigger,
                        secrets=secrets, inventory=await asyncio.to_thread(self.store.inventory, target),
                        revision=revision, state=TargetState(self.store, target, run_id, recorded=record),
                        progress=progress, log=log, rollback_to=rollback_to, verify=verify,
                    )
                    def overrun(threshold: Threshold, seconds: float) -> None:
                        self._still_running(record, ctx, threshold, seconds)

                    disarm = watch_duration(self.duration_limits, overrun)
                    try:
                        return await self._reconcile(ctx, started, record, tuple(guards), keeper)
                    finally:
                        disarm()
            except asyncio.CancelledError:
                self._fail_recorded(run_id, obj, trigger, mode, dry_run, revision, started,
                                    "run cancelled before it finished (the daemon was stopped)",
                                    "Cancelled", secrets, record,
                                    outcome=Outcome.CANCELLED, failure="cancelled")
                raise
            except Exception as exc:  # lock timeout or store failure before the run began
                message = str(exc) if isinstance(exc, ReconcilerError) else summarize_unexpected(exc)
                return self._fail_recorded(run_id, obj, trigger, mode, dry_run, revision,
                                           started, message, type(exc).__name__, secrets, record,
                                           failure=classify(exc))

    async def delete(self, obj: Resource, *, trigger: Trigger = Trigger.DELETE, dry_run: bool = False,
                     revision: str | None = None, record: bool = True) -> RunResult | None:
        """What deleting `obj` does to its target. Under `deletionPolicy: Orphan` (the default)
        nothing: None. Under `Delete`, a recorded run of the driver's teardown spec (the same
        targets, nothing desired), which removes only what the inventory says the reconciler
        created; its result says whether the target is clean (the caller keeps its finalizer
        until it is). With `dry_run`, the plan of that teardown (what removing the spec would prune)."""
        policy = getattr(obj.spec, "deletion_policy", DeletionPolicy.ORPHAN)  # type: ignore[attr-defined]
        if policy is not DeletionPolicy.DELETE:
            return None
        from reconciler.engine.drivers import TearsDown

        driver = self.drivers.get(obj.KIND)
        if not isinstance(driver, TearsDown):
            raise ReconcilerError(f"{obj.KIND} does not support deletionPolicy: Delete")
        return await self.run(driver.teardown(obj), trigger=trigger, dry_run=dry_run, revision=revision,
                              record=record)

    async def _reconcile(self, ctx: RunContext, started: datetime, record: bool = True,
                         extra_guards: tuple[Guard, ...] = (), keeper: SpecKeeper | None = None,
                         ) -> RunResult:
        obj, secrets = ctx.obj, ctx.secrets
        plan: Plan | None = None
        applied: ApplyResult | None = None
        warnings: tuple[str, ...] = ()
        driver: Driver | None = None
        unexpected = False
        try:
            driver = self.drivers.get(obj.KIND)
            actual = await driver.observe(obj, ctx)
            plan = driver.diff(obj, actual, ctx)
            await record_plan(driver, obj, plan, ctx)
            if secrets.has_secrets:
                plan = plan.masked(secrets.scrub)
            guards: tuple[Guard, ...] = (*self.guards, NeverWeaken(), *driver_guards(driver, obj),
                                         *extra_guards)
            for guard in guards:
                try:
                    guard.check(plan, ctx)
                except GuardAborted as exc:
                    if not ctx.dry_run:
                        raise
                    plan = plan.with_warnings(f"guard {exc.guard} would abort the run: "
                                              f"{secrets.scrub(str(exc).split(': ', 1)[-1])}")
            if ctx.dry_run and ctx.verify:
                plan = await prove(driver, obj, plan, ctx)
                if secrets.has_secrets:
                    plan = plan.masked(secrets.scrub)
            warnings = plan.warnings
            if ctx.dry_run:
                outcome = Outcome.PLANNED
            elif not plan.has_changes:
                outcome = Outcome.NOOP
                applied = ApplyResult.bookkeeping(plan, ctx.inventory)
            else:
                applied = await driver.apply(plan, ctx)
                if keeper is not None and applied.spec_written is not None:
                    keeper.written(applied.spec_written)  # still under the lock: before any later run
                warnings = (*warnings, *applied.warnings)
                outcome = Outcome.SUCCEEDED
            error = error_type = failure = None
            if applied is not None and applied.failed is not None:  # applied in part
                outcome, error = Outcome.FAILED, secrets.scrub(str(applied.failed))
                error_type, failure = type(applied.failed).__name__, classify(applied.failed)
        except GuardAborted as exc:
            outcome, error, error_type = Outcome.ABORTED, secrets.scrub(str(exc)), "GuardAborted"
            failure = classify(exc)
        except ReconcilerError as exc:
            outcome, error, error_type = Outcome.FAILED, secrets.scrub(str(exc)), type(exc).__name__
            failure = classify(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug or an unexpected library error: recorded with its type, never re-raised. Its
            # text (SQL, row values) stays in the log; the run carries a one-line summary.
            log.exception("driver raised an unexpected error")
            outcome, error, error_type = (Outcome.FAILED, secrets.scrub(summarize_unexpected(exc)),
                                          type(exc).__name__)
            failure = classify(exc)
            unexpected = True
        finally:
            if driver is not None:
                try:
                    await release(driver, ctx)
                except Exception:
                    log.exception("driver release failed")

        counts = plan.counts if plan is not None else Counts()
        if applied is not None:
            counts = replace(counts, created=applied.created, updated=applied.updated,
                             deleted=applied.deleted)
        elif not ctx.dry_run and plan is not None:
            # Nothing was applied (a tripped guard, a failed apply): the run's counts say what
            # was written (0); what the plan wanted stays visible as planned (the plan, a warning).
            if plan.counts.changed:
                p = plan.counts
                warnings = (*warnings, f"planned, not applied: {p.created} created, {p.updated} updated, "
                                       f"{p.deleted} deleted")
            counts = replace(counts, created=0, updated=0, deleted=0)
        result = RunResult(
            run_id=ctx.run_id, target=obj.ref, trigger=ctx.trigger, mode=ctx.mode,
            dry_run=ctx.dry_run, outcome=outcome, counts=counts, started_at=started,
            finished_at=datetime.now(UTC), revision=ctx.revision, plan=plan, error=error,
            error_type=error_type, generation=obj.metadata.generation, unexpected=unexpected,
            failure=failure, warnings=tuple(secrets.scrub(w) for w in warnings),
        )
        recorded = plan.changes if plan is not None and outcome is not Outcome.NOOP else ()
        if record:
            await asyncio.to_thread(
                self.store.finish_run, result, changes=recorded,
                owned_added=applied.owned_added if applied else (),
                owned_removed=applied.owned_removed if applied else (),
                watermarks=applied.watermarks if applied else None,
            )
        self._announce(result, record)
        return result

    def _fail_recorded(
        self, run_id: str, obj: Resource, trigger: Trigger, mode: Mode, dry_run: bool,
        revision: str | None, started: datetime, error: str, error_type: str,
        secrets: SecretResolver, record: bool = True, outcome: Outcome = Outcome.FAILED,
        failure: str | None = None,
    ) -> RunResult:
        """Record a run that failed outside the driver (lock timeout) or was cancelled."""
        result = RunResult(
            run_id=run_id, target=obj.ref, trigger=trigger, mode=mode, dry_run=dry_run,
            outcome=outcome, counts=Counts(), started_at=started,
            finished_at=datetime.now(UTC), revision=revision, error=secrets.scrub(error),
            error_type=error_type, generation=obj.metadata.generation, failure=failure,
        )
        if not record:
            self._announce(result, record)
            return result
        try:
            if self.store.run(run_id) is None:
                self.store.start_run(run_id=run_id, target=obj.ref, trigger=str(trigger),
                                     mode=str(mode), dry_run=dry_run, revision=revision,
                                     generation=obj.metadata.generation, started_at=started)
            self.store.finish_run(result)
        except Exception:
            log.exception("could not record the failed run")
        self._announce(result)
        return result

    def _still_running(self, record: bool, ctx: RunContext, threshold: Threshold, seconds: float) -> None:
        """The run passed a duration threshold (see `overruns`): a WARNING and an event."""
        message = f"run still going after {seconds:g} s"
        log.warning(message, threshold=threshold, seconds=seconds, dry_run=ctx.dry_run)
        self._publish(record, Event(EventType.RUN_STILL_RUNNING, ctx.obj.ref, ctx.run_id,
                                    "SlowRun" if threshold == "slow" else "LongRun", message,
                                    {"threshold": threshold, "seconds": seconds, "dryRun": ctx.dry_run,
                                     "trigger": str(ctx.trigger)}))

    def _announce(self, result: RunResult, record: bool = True) -> None:
        c = result.counts
        data = {"outcome": str(result.outcome), **c.as_dict(),
                "durationSeconds": round(result.duration_seconds, 3),
                "revision": result.revision, "trigger": str(result.trigger), "dryRun": result.dry_run}
        if result.error_type:
            data |= {"errorType": result.error_type, "failure": result.failure}
        message = result.error or f"{result.outcome}: {c.summary()}"
        self._publish(record, Event(_EVENT_FOR_OUTCOME.get(result.outcome, EventType.RUN_FAILED),
                            result.target, result.run_id, str(result.outcome).capitalize(),
                            message, data))
        if result.plan is not None and not result.dry_run and result.outcome in (Outcome.SUCCEEDED,
                                                                                  Outcome.NOOP):
            for notice in result.plan.notices:
                self._publish(record, Event(notice.type, result.target, result.run_id, notice.reason,
                                            notice.message, dict(notice.data)))
        if result.drift or result.reverted:
            parts = [f"{len(result.drift)} key(s) changed outside the reconciler"] if result.drift else []
            if result.reverted:
                parts.append(f"{len(result.reverted)} hand-edited key(s) reverted to the spec")
            self._publish(record, Event(EventType.DRIFT_DETECTED, result.target, result.run_id,
                                "DriftDetected", "; ".join(parts),
                                {"keys": list(result.drift), "reverted": list(result.reverted)}))
        _log_detail(result)
        if c.invalid and result.plan is not None:
            log.warning("rows rejected by validation", rejected=c.invalid,
                        valid=c.created + c.updated + c.unchanged)
        # A failed run or a tripped guard needs someone (ERROR); a cancelled one may not.
        level = ("info" if result.outcome.ok else
                 "warning" if result.outcome is Outcome.CANCELLED else "error")
        getattr(log, level)("run finished", outcome=str(result.outcome), error=result.error,
                            failure=result.failure, duration=round(result.duration_seconds, 3),
                            **c.as_dict())

    def _publish(self, record: bool, event: Event) -> None:
        if record:
            try:
                self.store.record_event(target=event.target, run_id=event.run_id, type_=event.type,
                                        reason=event.reason, message=event.message,
                                        data=event.data, at=event.at)
            except Exception:
                log.exception("could not record an event")
        self.bus.publish(event)


def _log_detail(result: RunResult) -> None:
    """Each planned change at DEBUG (dropped cheaply at other levels; the plan's sample on
    large sets). Rejected items are logged as the driver hands them to the run, every one
    (`TargetState.save_rejects`), not from the plan's short sample of them."""
    plan = result.plan
    if plan is None:
        return
    for change in plan.changes:
        log.debug("item planned", action=str(change.action), key=change.key, item=change.item,
                  fields=[f.path for f in change.fields][:50])
