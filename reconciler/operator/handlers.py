"""kopf handlers: causes in, orchestrator runs out, status patched.

- A domain object (AgentConfig, AedSourceBinding, RbacMapping) is reconciled on create, on
  every operator start (resume) and on a spec change (a new generation); its status gets
  the run's conditions and result.
- `kubectl annotate KIND NAME reconciler.dev/run-now="$(date +%s)" --overwrite` runs the
  object once per new value and echoes the value into `status.lastHandledRunRequest` (the
  annotation is never removed, as Flux's `requestedAt`). A suspended object (all of its
  SyncJobs suspended) refuses it, with the reason in a condition and an Event, unless the
  annotation `reconciler.dev/run-even-if-suspended: "true"` is also set.
- A SyncJob is ticked by a kopf timer through the daemon's own `Scheduler.tick_job`: the
  same decisions, store claim (so replicas and restarts neither repeat nor skip an
  occurrence), `dryRun`, retries, concurrency policy, missed / skipped / blocked events.
  A job is ticked only once its target object has been seen, so a due occurrence is never
  claimed and used up before its target can run. `nextRunTime`, `lastScheduleTime`,
  `intervalSeconds`, `running` and the target's last real run are patched for the printer
  columns. The run-now annotation works on a SyncJob too: it runs the job's target (with
  the job's mode and dryRun), refused while the job is suspended.
- Every target object carries the finalizer `reconciler.dev/finalizer`. Deleting it never
  touches its target by default (`deletionPolicy: Orphan`; the store keeps the history);
  under `deletionPolicy: Delete` the orchestrator's teardown run removes what the inventory
  says the reconciler created, and the finalizer is released only once that run succeeded.

Kubernetes Events are posted for run started, succeeded, failed, guard tripped and drift,
with the counts. Secrets referenced with `secretRef` are read from the object's namespace
with the credentials the operator logged in with (`SecretReader`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kopf

from reconciler.assembly import Runtime
from reconciler.models import API_GROUP, KINDS, Mode, ObjectRef, Resource, SyncJob
from reconciler.operator.secrets import SecretReader
from reconciler.operator.status import last_result, refused_status, run_status, schedule_status
from reconciler.structs.runs import Outcome, RunResult, Trigger

VERSION = "v1alpha1"
RUN_NOW = "reconciler.dev/run-now"
FINALIZER = "reconciler.dev/finalizer"
EVEN_IF_SUSPENDED = "reconciler.dev/run-even-if-suspended"


def resource_of(body: Any) -> Resource:
    """The typed object of a custom resource body (status left out)."""
    meta = body.get("metadata", {})
    document = {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
                "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations", "generation")
                             if meta.get(k) is not None},
                "spec": body.get("spec", {})}
    return KINDS[str(body.get("kind"))].model_validate(document)


class Operator:
    """The handlers of one operator process, registered on `registry`."""

    def __init__(self, runtime: Runtime, registry: kopf.OperatorRegistry, *,
                 tick_seconds: float = 10.0, secrets: SecretReader | None = None) -> None:
        self.runtime = runtime
        self.registry = registry
        self.tick_seconds = tick_seconds
        self.secrets = secrets
        self.objects: dict[ObjectRef, Resource] = {}  # every target object seen, for SyncJobs
        self.jobs: dict[ObjectRef, SyncJob] = {}
        self.running: set[ObjectRef] = set()
        from reconciler.schedule.clock import SystemClock
        from reconciler.schedule.scheduler import Scheduler

        self.scheduler = Scheduler(runtime.store, clock=SystemClock(), start_run=self._scheduled_run,
                                   jobs=lambda: [j for j in self.jobs.values() if j.target in self.objects],
                                   tick_seconds=tick_seconds)
        self._register()

    # --- running ------------------------------------------------------------------------

    async def _run(self, obj: Resource, trigger: Trigger, mode: Mode = Mode.FULL, *,
                   dry_run: bool = False) -> RunResult:
        self.running.add(obj.ref)
        try:
            return await self.runtime.orchestrator.run(obj, trigger=trigger, mode=mode, dry_run=dry_run)
        finally:
            self.running.discard(obj.ref)

    def _suspended(self, ref: ObjectRef) -> bool:
        from reconciler.schedule.scheduler import target_suspended

        return target_suspended(ref, list(self.jobs.values()), self.runtime.store.schedule_state)

    @staticmethod
    def _announce(body: Any, result: RunResult) -> None:
        counts = result.counts.summary()
        if result.outcome in (Outcome.SUCCEEDED, Outcome.NOOP):
            kopf.info(body, reason="RunSucceeded",
                      message=f"{result.outcome}: {counts} [run {result.run_id}]")
        elif result.outcome is Outcome.ABORTED:
            kopf.warn(body, reason="GuardTripped", message=result.error or "a guard stopped the run")
        elif result.outcome is Outcome.FAILED:
            kopf.warn(body, reason="RunFailed", message=result.error or "the run failed")
        elif result.outcome is Outcome.CANCELLED:
            kopf.warn(body, reason="RunCancelled", message=result.error or "the run was cancelled")
        if result.reverted:
            kopf.warn(body, reason="DriftDetected", message=f"{len(result.reverted)} key(s) changed outside "
                      "the reconciler were reverted to the spec: " + ", ".join(result.reverted[:5]))
        elif result.drift:
            kopf.warn(body, reason="DriftDetected", message=f"{len(result.drift)} key(s) changed outside "
                      "the reconciler")

    # --- handlers -----------------------------------------------------------------------

    def login(self, **kwargs: Any) -> Any:
        """In a pod: its service account; elsewhere: the kubeconfig (KUBECONFIG). The same
        credentials read the Secrets that specs reference."""
        connection = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
        if self.secrets is not None:
            self.secrets.connect(connection)
        return connection

    def _register(self) -> None:
        registry = self.registry
        kopf.on.login(registry=registry)(self.login)
        from reconciler.kinds import REGISTRY, SCHEDULER_KIND

        for info in REGISTRY.targets():  # built-in and plugin kinds alike
            plural = info.plural
            kopf.on.resume(API_GROUP, VERSION, plural, registry=registry)(self.reconcile)
            kopf.on.create(API_GROUP, VERSION, plural, registry=registry)(self.reconcile)
            kopf.on.update(API_GROUP, VERSION, plural, field="spec", registry=registry)(self.reconcile)
            kopf.on.field(API_GROUP, VERSION, plural, field=("metadata", "annotations", RUN_NOW),
                          registry=registry)(self.run_now)
            kopf.on.delete(API_GROUP, VERSION, plural, registry=registry)(self.finalize)
        jobs = REGISTRY.get(SCHEDULER_KIND).plural
        kopf.on.resume(API_GROUP, VERSION, jobs, registry=registry)(self.track_job)
        kopf.on.create(API_GROUP, VERSION, jobs, registry=registry)(self.track_job)
        kopf.on.update(API_GROUP, VERSION, jobs, field="spec", registry=registry)(self.track_job)
        kopf.on.delete(API_GROUP, VERSION, jobs, registry=registry, optional=True)(self.forget_job)
        kopf.on.field(API_GROUP, VERSION, jobs, field=("metadata", "annotations", RUN_NOW),
                      registry=registry)(self.run_job_now)
        kopf.timer(API_GROUP, VERSION, jobs, interval=self.tick_seconds, registry=registry)(self.tick)

    async def reconcile(self, body: Any, patch: Any, **_: Any) -> None:
        obj = resource_of(body)
        self.objects[obj.ref] = obj
        kopf.info(body, reason="RunStarted", message=f"reconciling generation {obj.metadata.generation}")
        result = await self._run(obj, Trigger.SPEC)
        patch.status.update(run_status(result, body.get("status")))
        self._announce(body, result)

    async def run_now(self, body: Any, new: Any, patch: Any, **_: Any) -> None:
        token = str(new) if new else None
        status = body.get("status") or {}
        if token is None or token == status.get("lastHandledRunRequest"):
            return
        obj = resource_of(body)
        self.objects[obj.ref] = obj
        allowed = (body.get("metadata", {}).get("annotations", {}) or {}).get(EVEN_IF_SUSPENDED) == "true"
        if self._suspended(obj.ref) and not allowed:
            message = f"run request {token} refused: {obj.ref.short} is suspended"
            kopf.warn(body, reason="RunRequestRefused", message=message)
            patch.status.update(refused_status(status, "Suspended", message, handled_request=token))
            return
        result = await self._run(obj, Trigger.ANNOTATION)
        patch.status.update(run_status(result, status, handled_request=token))
        self._announce(body, result)

    async def finalize(self, body: Any, **_: Any) -> None:
        """The object is being deleted: its `deletionPolicy` decides what happens to the target."""
        obj = resource_of(body)
        self.objects.pop(obj.ref, None)
        result = await self.runtime.orchestrator.delete(obj)
        if result is None:
            kopf.info(body, reason="Orphaned", message="deletionPolicy Orphan: the target is left as "
                      "it is; the run history stays in the store")
            return
        self._announce(body, result)
        if not result.outcome.ok:
            raise kopf.TemporaryError(f"deletionPolicy Delete: the teardown run {result.run_id} "
                                      f"{result.outcome}; the finalizer stays until it succeeds", delay=30)

    async def track_job(self, body: Any, **_: Any) -> None:
        job = resource_of(body)
        assert isinstance(job, SyncJob)
        self.jobs[job.ref] = job

    async def forget_job(self, body: Any, **_: Any) -> None:
        self.jobs.pop(resource_of(body).ref, None)

    async def _scheduled_run(self, job: SyncJob, target: ObjectRef, trigger: Trigger, mode: Mode,
                             dry_run: bool, scheduled_for: datetime) -> RunResult:
        """The scheduler's `start_run`: run the target object as last seen."""
        obj = self.objects[target]
        self.running.add(target)
        try:
            return await self.runtime.orchestrator.run(obj, trigger=trigger, mode=mode, dry_run=dry_run)
        finally:
            self.running.discard(target)

    def _job_status(self, job: SyncJob) -> dict[str, Any]:
        from reconciler.schedule.scheduler import next_run_for

        store = self.runtime.store
        state = store.schedule_state(job.ref)
        latest = store.runs(job.target, limit=1, dry_run=False)
        last = latest[0] if latest else None
        interval = job.spec.interval
        return schedule_status(
            next_run=next_run_for(job, state, datetime.now(UTC)), last_schedule=state.last_schedule_time,
            interval_seconds=int(interval.total_seconds()) if interval is not None else None,
            running=job.target in self.running or self.scheduler.is_running(job.target),
            last=None if last is None else last_result(
                run_id=last.id, outcome=last.outcome, trigger=last.trigger, counts=last.counts,
                duration_seconds=last.duration_seconds, revision=last.revision, error=last.error),
            last_run_time=None if last is None else last.started_at)

    async def tick(self, body: Any, patch: Any, **_: Any) -> None:
        """One SyncJob's turn of the shared scheduler; its status for the printer columns."""
        job = resource_of(body)
        assert isinstance(job, SyncJob)
        self.jobs[job.ref] = job
        if job.target not in self.objects:
            # Not claimed: the occurrence stays pending until the target can run.
            message = f"target {job.target.short} not found (yet); the schedule waits for it"
            patch.status.update(refused_status(body.get("status"), "TargetNotFound", message,
                                               condition="Stalled"))
            return
        await self.scheduler.tick_job(job)
        patch.status.update(await asyncio.to_thread(self._job_status, job))

    async def run_job_now(self, body: Any, new: Any, patch: Any, **_: Any) -> None:
        """`kubectl annotate syncjob NAME reconciler.dev/run-now=...`: run the job's target once
        (the job's mode and dryRun), refused while the job is suspended."""
        from reconciler.schedule.scheduler import is_suspended

        token = str(new) if new else None
        status = body.get("status") or {}
        if token is None or token == status.get("lastHandledRunRequest"):
            return
        job = resource_of(body)
        assert isinstance(job, SyncJob)
        self.jobs[job.ref] = job
        allowed = (body.get("metadata", {}).get("annotations", {}) or {}).get(EVEN_IF_SUSPENDED) == "true"
        state = await asyncio.to_thread(self.runtime.store.schedule_state, job.ref)
        refusal = None
        if job.target not in self.objects:
            refusal = ("TargetNotFound", f"run request {token} refused: target {job.target.short} not found")
        elif is_suspended(job, state) and not allowed:
            refusal = ("Suspended", f"run request {token} refused: {job.ref.short} is suspended")
        if refusal is not None:
            kopf.warn(body, reason="RunRequestRefused", message=refusal[1])
            patch.status.update(refused_status(status, *refusal, handled_request=token))
            return
        result = await self._run(self.objects[job.target], Trigger.ANNOTATION, job.spec.mode,
                                 dry_run=job.spec.dry_run)
        self._announce(body, result)
        patch.status.update(await asyncio.to_thread(self._job_status, job))
        patch.status.update({"lastHandledRunRequest": token})
