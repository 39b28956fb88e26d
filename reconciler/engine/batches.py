"""Reconciling a whole spec set: which objects are targets, in which order.

A spec set mixes targets (RbacMapping, AedSourceBinding, AgentConfig, plugin kinds) and
SyncJobs, which say *when* to reconcile a target and are run by the scheduler, not here.
`select_targets` picks the targets (all, or those named) and reports names that match
nothing; `reconcile_set` runs them one after another through the orchestrator, so that
one failing target does not stop the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.engine.drivers import DriverRegistry, ProgressCallback
from reconciler.engine.guards import Guard
from reconciler.engine.orchestrator import Orchestrator
from reconciler.errors import ReconcilerError
from reconciler.loading.specs import SpecSet
from reconciler.models import Mode, ObjectRef, Resource, SyncJob
from reconciler.structs.runs import RunResult, Trigger


@dataclass(frozen=True, slots=True)
class Selection:
    targets: tuple[Resource, ...]
    without_driver: tuple[Resource, ...]


def select_targets(specs: SpecSet, drivers: DriverRegistry,
                   only: Sequence[ObjectRef] = ()) -> Selection:
    candidates = [o for o in specs if not isinstance(o, SyncJob)]
    if only:
        wanted = set(only)
        missing = [r for r in only if r not in {o.ref for o in candidates}]
        if missing:
            known = ", ".join(o.ref.short for o in candidates) or "none"
            raise ReconcilerError(
                f"no target {', '.join(r.short for r in missing)} in the specs; targets: {known}")
        candidates = [o for o in candidates if o.ref in wanted]
    return Selection(
        targets=tuple(o for o in candidates if drivers.has(o.KIND)),
        without_driver=tuple(o for o in candidates if not drivers.has(o.KIND)),
    )


async def reconcile_set(
    orchestrator: Orchestrator, targets: Sequence[Resource], *, trigger: Trigger, mode: Mode,
    dry_run: bool, revision: str | None = None, progress: ProgressCallback | None = None,
    verify: bool = False, guards: Sequence[Guard] = (),
) -> list[RunResult]:
    results = []
    for obj in targets:
        results.append(await orchestrator.run(obj, trigger=trigger, mode=mode, dry_run=dry_run,
                                              revision=revision, progress=progress, verify=verify,
                                              guards=guards))
    return results
