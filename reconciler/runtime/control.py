"""The control surface of a running reconciler: what the API, MQTT and git watcher call.

A `Controller` holds the current spec set (from a folder or a git commit) and the
runtime (store, orchestrator, bus). It answers status and history from the store, starts
forced runs (refused on a suspended object unless asked to run anyway, and recorded with
their trigger either way), suspends and resumes SyncJobs by a runtime override kept in the
store, and takes a new spec set: objects whose spec changed are reconciled, with the
commit SHA recorded on their runs; removed objects are left alone (nothing is pruned
unless a spec says so). No domain logic lives here: every run goes through the
orchestrator. Every run it starts is a task it keeps (`tasks`), so that a stopping daemon
can let them finish within its grace and cancel the rest; once `closing` is set, new
runs are refused and a new spec set starts no further runs.

The controller is the keeper of the specs for its runs (`orchestrator.SpecKeeper`): a run
plans with the spec the controller holds once the run has its target's lock, and a spec
that a run wrote back (a client's edit accepted by AgentConfig's two-way sync) replaces
the controller's before the lock is released, so no later run, file-watch, scheduled,
forced or queued, plans with the spec from before the write-back. A spec set read from the
source before such a write-back (`take(..., since=...)`) does not undo it: the object
keeps the written spec until the source is read again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog

from reconciler.assembly import Runtime
from reconciler.engine.orchestrator import new_run_id
from reconciler.errors import ReconcilerError
from reconciler.loading.specs import SpecSet
from reconciler.models import Mode, ObjectRef, Resource, SyncJob
from reconciler.structs.runs import RunResult, Trigger

log = structlog.get_logger("reconciler.control")
DEFAULT_RUN_WAIT_SECONDS = 60.0  # how long a caller waits for a forced run by default, and at most
MAX_RUN_WAIT_SECONDS = 3600.0
T = TypeVar("T")


class NotFound(ReconcilerError):
    """No such object in the current spec set."""


class Refused(ReconcilerError):
    """A request that the object's state does not allow (a run of a suspended object)."""


@dataclass(slots=True)
class StartedRun:
    """A forced run that was accepted: its id at once (the caller can follow it), its result
    when `Controller.wait_for_run` sees it end."""

    run_id: str
    ref: ObjectRef
    task: asyncio.Task[RunResult | None]
    refusal: str | None = None  # why it never started, when it was refused after acceptance


def spec_hash(obj: Resource) -> str:
    body = obj.model_dump(mode="json", by_alias=True, exclude={"status"})
    body.get("metadata", {}).pop("generation", None)
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(slots=True)
class Controller:
    runtime: Runtime
    specs: SpecSet
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    closing: bool = False
    started: dict[str, StartedRun] = field(default_factory=dict)  # accepted runs not yet ended
    write_backs: int = 0  # how many specs runs wrote back so far (see `take`'s `since`)
    written_back: dict[ObjectRef, int] = field(default_factory=dict)  # ref → `write_backs` after its last

    # --- lookups --------------------------------------------------------------------------

    @property
    def store(self) -> Any:
        return self.runtime.store

    def objects(self) -> list[Resource]:
        return list(self.specs)

    def get(self, ref: ObjectRef) -> Resource:
        for obj in self.specs:
            if obj.ref == ref:
                return obj
        raise NotFound(f"no object {ref.short} in the current specs")

    def jobs(self) -> list[SyncJob]:
        return [o for o in self.specs if isinstance(o, SyncJob)]

    def job_target(self, job: SyncJob) -> ObjectRef:
        return job.target  # resolved in one place: the model

    def jobs_of(self, target: ObjectRef) -> list[SyncJob]:
        return [j for j in self.jobs() if self.job_target(j) == target]

    def suspended(self, obj: Resource) -> bool:
        """A SyncJob's suspension (the runtime override wins); a target is suspended when all
        of its SyncJobs are."""
        from reconciler.schedule.scheduler import is_suspended, target_suspended

        if isinstance(obj, SyncJob):
            return is_suspended(obj, self.store.schedule_state(obj.ref))
        return target_suspended(obj.ref, self.jobs(), self.store.schedule_state)

    # --- the specs runs plan with (orchestrator.SpecKeeper) --------------------------------

    def current(self, ref: ObjectRef) -> Resource | None:
        return self.specs.get(ref)

    def written(self, obj: Resource) -> None:
        self.specs = self.specs.replacing(obj)
        self.write_backs += 1
        self.written_back[obj.ref] = self.write_backs

    async def reconcile(self, obj: Resource, **kwargs: Any) -> RunResult:
        """One run of `obj` (`Orchestrator.run`'s arguments), with the controller as its spec
        keeper: every run the daemon starts goes through here."""
        kwargs.setdefault("revision", self.specs.revision)
        return await self.runtime.orchestrator.run(obj, keeper=self, **kwargs)

    # --- forced runs ----------------------------------------------------------------------

    def check_runnable(self, ref: ObjectRef, *, even_if_suspended: bool = False) -> Resource:
        """The object, if a forced run of it may start now; NotFound or Refused otherwise."""
        obj = self.get(ref)
        if self.closing:
            raise Refused("the daemon is shutting down; no new runs")
        if isinstance(obj, SyncJob):
            self.get(self.job_target(obj))
        if self.suspended(obj) and not even_if_suspended:
            raise Refused(f"{ref.short} is suspended; resume it, or ask for the run with "
                          "--even-if-suspended (evenIfSuspended: true)")
        return obj

    async def run_now(self, ref: ObjectRef, *, trigger: Trigger, mode: Mode | None = None,
                      dry_run: bool = False, even_if_suspended: bool = False,
                      actor: str = "system", source: str | None = None,
                      run_id: str | None = None, rollback_to: str | None = None) -> RunResult:
        """Run an object (a SyncJob runs its target with its mode) now, with `trigger`;
        `rollback_to` (a run of the target, by id or prefix) restores the target as it was
        right after that run."""
        obj = self.check_runnable(ref, even_if_suspended=even_if_suspended)
        target, job = obj, None
        if isinstance(obj, SyncJob):
            job = obj
            target = self.get(self.job_target(obj))
        if rollback_to is not None:
            rollback_to = self.runtime.orchestrator.rollback_point(target.ref, rollback_to)
        if mode is None:
            mode = job.spec.mode if job is not None else Mode.FULL
        self.store.record_audit(actor=actor, action="rollback" if rollback_to else "run", obj=ref.short,
                                source=source,
                                detail={"trigger": str(trigger), "mode": str(mode), "dryRun": dry_run,
                                        "rollbackTo": rollback_to,
                                        "evenIfSuspended": even_if_suspended,
                                        "suspended": self.suspended(obj)})
        return await self.reconcile(target, trigger=trigger, mode=mode, dry_run=dry_run, run_id=run_id,
                                    rollback_to=rollback_to)

    def start_run(self, ref: ObjectRef, **kwargs: Any) -> StartedRun:
        """`run_now` in the background, named before it starts: the API answers 202 with the
        run id. NotFound and Refused (suspended, shutting down) are raised here, before
        anything starts; a refusal after that (the daemon began to stop) ends the task with
        None and `refusal` set."""
        self.check_runnable(ref, even_if_suspended=bool(kwargs.get("even_if_suspended")))
        run_id = new_run_id()

        async def run() -> RunResult | None:
            try:
                return await self.run_now(ref, run_id=run_id, **kwargs)
            except ReconcilerError as exc:
                log.warning("run not started", object=ref.short, reason=str(exc))
                started.refusal = str(exc)
                return None
            finally:
                self.started.pop(run_id, None)

        started = StartedRun(run_id, ref, self.spawn(run()))
        if not started.task.done():
            self.started[run_id] = started
        return started

    async def wait_for_run(self, started: StartedRun, *, timeout: float) -> RunResult | None:
        """The run's result once it ended, or None when `timeout` seconds passed first (the run
        goes on; waiting never cancels it). Refused when it never started or was cancelled."""
        done, _ = await asyncio.wait({started.task}, timeout=timeout)
        if not done:
            return None
        if started.task.cancelled():
            raise Refused(f"run {started.run_id} was cancelled: the daemon is shutting down")
        result = started.task.result()
        if result is None:
            raise Refused(f"run {started.run_id} was not started: {started.refusal or 'refused'}")
        return result

    def spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `work` (runs of objects) as a task that a stopping daemon waits for or cancels."""
        if self.closing:
            work.close()
            raise Refused("the daemon is shutting down; no new runs")
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # --- suspend, resume, schedule overrides -----------------------------------------------

    def _jobs_for(self, ref: ObjectRef) -> list[SyncJob]:
        obj = self.get(ref)
        jobs = [obj] if isinstance(obj, SyncJob) else self.jobs_of(ref)
        if not jobs:
            raise Refused(f"{ref.short} has no SyncJob to suspend or resume")
        return jobs

    def set_suspended(self, ref: ObjectRef, suspended: bool, *, actor: str,
                      source: str | None = None) -> None:
        for job in self._jobs_for(ref):
            state = self.store.schedule_state(job.ref)
            self.store.save_schedule_state(job.ref, state.model_copy(update={"suspended": suspended}))
        self.store.record_audit(actor=actor, action="suspend" if suspended else "resume", obj=ref.short,
                                source=source)

    def schedule(self, ref: ObjectRef) -> dict[str, Any]:
        job = self.get(ref)
        if not isinstance(job, SyncJob):
            raise Refused(f"{ref.short} is not a SyncJob")
        state = self.store.schedule_state(ref)
        spec = job.model_dump(mode="json", by_alias=True)["spec"]
        return {"spec": {k: spec.get(k) for k in ("schedule", "interval", "timeZone", "suspend")},
                "override": state.override, "suspendedOverride": state.suspended,
                "nextRunTime": state.next_run_time, "lastScheduleTime": state.last_schedule_time,
                "missed": state.missed}

    def set_schedule(self, ref: ObjectRef, override: dict[str, Any] | None, *, actor: str,
                     source: str | None = None) -> None:
        """A runtime override of a SyncJob's schedule (None clears it); validated like a spec."""
        job = self.get(ref)
        if not isinstance(job, SyncJob):
            raise Refused(f"{ref.short} is not a SyncJob")
        if override is not None:
            merged = {**job.model_dump(mode="json", by_alias=True)["spec"], **override}
            if "schedule" in override:
                merged.pop("interval", None)
            if "interval" in override:
                merged.pop("schedule", None)
            SyncJob.model_validate({**job.model_dump(mode="json", by_alias=True), "spec": merged})
        state = self.store.schedule_state(ref)
        self.store.save_schedule_state(ref, state.model_copy(update={
            "override": override, "spec_hash": spec_hash(job) if override is not None else None,
            "next_run_time": None}))
        self.store.record_audit(actor=actor, action="schedule" if override else "schedule-clear",
                                obj=ref.short, source=source, detail={"override": override})

    # --- new specs (a commit) -------------------------------------------------------------

    def changed(self, new: SpecSet) -> list[Resource]:
        """Objects of `new` that are new or whose spec differs from the current set."""
        old = {o.ref: spec_hash(o) for o in self.specs}
        return [o for o in new if old.get(o.ref) != spec_hash(o)]

    async def take(self, new: SpecSet, *, trigger: Trigger = Trigger.GIT,
                   since: int | None = None) -> list[RunResult]:
        """Adopt a new spec set; reconcile the targets whose specs changed (a changed SyncJob
        only reschedules). Schedule overrides of changed SyncJobs are cleared. `since`: the
        `write_backs` count read before `new` was loaded; an object whose spec a run wrote
        back after that keeps the written spec (`new` may have been read before the write)."""
        if since is not None:
            new = new.replacing(*[obj for ref, n in self.written_back.items()
                                  if n > since and (obj := self.specs.get(ref)) is not None])
        changed = self.changed(new)
        self.specs = new
        from reconciler.drivers.agents.specpatch import remember

        remember(new.origins)  # where each spec lives: write-back of accepted edits
        from reconciler.status import declare

        declare(self.store, new, whole=True)  # for `reconciler status` without a path
        results: list[RunResult] = []
        for obj in changed:
            if self.closing:
                break
            if isinstance(obj, SyncJob):
                state = self.store.schedule_state(obj.ref)
                if state.override is not None or state.next_run_time is not None:
                    self.store.save_schedule_state(obj.ref, state.model_copy(update={
                        "override": None, "spec_hash": None, "next_run_time": None}))
                continue
            if not self.runtime.drivers.has(obj.KIND):
                continue
            log.info("spec changed", object=obj.ref.short, revision=new.revision)
            results.append(await self.reconcile(obj, trigger=trigger, mode=Mode.FULL, revision=new.revision))
        return results

    async def drain(self, timeout: float) -> None:
        """Wait for background runs (shutdown); those still running are cancelled and recorded."""
        if not self.tasks:
            return
        _, pending = await asyncio.wait(set(self.tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


