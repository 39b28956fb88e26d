"""The driver contract and the registry of drivers by kind.

A driver knows one kind of target. `observe` reads the actual state (I/O, read-only);
`diff` compares it with the spec and returns a `Plan` (pure: no I/O, unit-tested with
plain values); `apply` changes exactly what the plan names, in one transaction where the
target has transactions and by atomic replacement where it writes files. The orchestrator
owns everything around those three calls: locking, guards, recording, events.

What a driver may know about the run comes in a `RunContext`: the object, the mode, the
secrets resolver, the inventory of keys the reconciler owns in this target (ownership:
delete only what we created) and a narrow view of the store for watermarks and snapshots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import structlog

from reconciler.errors import NoDriverError
from reconciler.loading.secrets import SecretResolver
from reconciler.models import Mode, ObjectRef, Resource
from reconciler.structs.plans import Action, Plan
from reconciler.structs.runs import Trigger

if TYPE_CHECKING:
    from reconciler.engine.guards import Guard
    from reconciler.ports import TargetStore
    from reconciler.structs.records import RunRecord

log = structlog.get_logger("reconciler.run")

ProgressCallback = Callable[[str, int, int | None], None]
"""(task description, units done so far, total or None)."""


@dataclass(frozen=True, slots=True)
class TargetState:
    """What a driver may read and write in the store during one run of one target.

    A run that is not recorded (`record=False`: a pull-request plan on read-only
    credentials) has no row in `runs` to attach anything to: its writes (snapshots,
    rejected rows) are dropped here, so a driver never needs to know, and the store is only
    read."""

    store: TargetStore
    target: ObjectRef
    run_id: str
    recorded: bool = True

    def watermark(self, key: str) -> str | None:
        return self.store.watermark(self.target, key)

    def watermarks(self) -> dict[str, str]:
        return self.store.watermarks(self.target)

    def save_snapshots(self, items: Iterable[tuple[str, Any]]) -> int:
        if not self.recorded:
            return 0
        return self.store.save_snapshots(self.run_id, self.target, items)

    def save_rejects(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """The rows the run refused (dicts with key, stage, rule, column, message, content),
        recorded with the run; each is also logged at DEBUG (`item rejected`: key, stage, rule,
        column, problem; never its content), every one of them and as it is stored, so that the
        log matches `history --run ID` without a second copy of tens of thousands of rows."""
        logged = _logged_rejects(rows)
        if not self.recorded:
            for _ in logged:
                pass
            return 0
        return self.store.save_rejects(self.run_id, logged)

    def snapshots_of(self, run_id: str) -> list[tuple[str, Any]]:
        return self.store.snapshots(run_id)

    def runs(self, *, limit: int = 50) -> list[RunRecord]:
        """This target's runs, newest first (dry runs included)."""
        return self.store.runs(self.target, limit=limit)

    def observe_proposals(self, adopt: Mapping[str, Mapping[str, Any]],
                          decisions: Iterable[Mapping[str, Any]] = ()) -> list[str]:
        """Record the run's held edits as proposals and its strategies' decisions."""
        if not self.recorded:
            return []
        return self.store.observe_proposals(self.target, self.run_id, adopt, decisions)

    def rejected_proposals(self) -> dict[str, str]:
        """key → the id of its rejected proposal (the spec is re-imposed while it matches)."""
        return self.store.rejected_proposals(self.target)


def _logged_rejects(rows: Iterable[Mapping[str, Any]]) -> Iterable[Mapping[str, Any]]:
    debug = log.bind().debug  # resolved once: at INFO and above each call is a no-op
    for row in rows:
        debug("item rejected", key=row.get("key"), stage=row["stage"], rule=row["rule"],
              column=row["column"], problem=row["message"])
        yield row


@dataclass(frozen=True, slots=True)
class RunContext:
    run_id: str
    obj: Resource
    mode: Mode
    dry_run: bool
    trigger: Trigger
    secrets: SecretResolver
    inventory: frozenset[str] = frozenset()
    revision: str | None = None
    state: TargetState | None = None
    progress: ProgressCallback | None = None
    log: Any = None
    rollback_to: str | None = None
    """Restore the target to its state right after this run (drivers with snapshots)."""
    verify: bool = False
    """Proof mode (dry runs): apply in a transaction, re-observe, diff again, roll back."""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What apply did. By default the orchestrator derives it from the plan."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    owned_added: tuple[str, ...] = ()
    owned_removed: tuple[str, ...] = ()
    watermarks: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    failed: Exception | None = None
    """Part of the plan could not be kept (a client's own check rejected its files, which
    were put back): the run fails with this error, and what the result lists was applied."""
    spec_written: Resource | None = None
    """The object as the apply left its spec, when it wrote the spec itself (AgentConfig's
    two-way sync writes an accepted client edit back into the spec file): from now on this is
    the object's spec, for whoever keeps specs between runs (see `orchestrator.SpecKeeper`)."""

    @classmethod
    def from_plan(cls, plan: Plan, inventory: frozenset[str] = frozenset(), **extra: Any) -> ApplyResult:
        """The result of applying `plan` in full; `inventory` is what the target owned before."""
        counts = plan.counts
        if plan.inventory is not None:
            added: tuple[str, ...] = plan.inventory
            removed = tuple(sorted(inventory - set(plan.inventory)))
        else:
            added = tuple(c.key for c in plan.changes if c.action is not Action.DELETE)
            removed = tuple(c.key for c in plan.changes if c.action is Action.DELETE)
        extra.setdefault("watermarks", dict(plan.watermarks))
        return cls(created=counts.created, updated=counts.updated, deleted=counts.deleted,
                   owned_added=added, owned_removed=removed, **extra)

    @classmethod
    def bookkeeping(cls, plan: Plan, inventory: frozenset[str]) -> ApplyResult | None:
        """What a run that changes nothing still records (the plan's inventory, watermarks)."""
        if plan.inventory is None and not plan.watermarks:
            return None
        result = cls.from_plan(plan, inventory)
        return replace(result, created=0, updated=0, deleted=0)


@runtime_checkable
class Driver(Protocol):
    kind: ClassVar[str]

    async def observe(self, spec: Any, ctx: RunContext) -> Any: ...

    def diff(self, spec: Any, actual: Any, ctx: RunContext) -> Plan: ...

    async def apply(self, plan: Plan, ctx: RunContext) -> ApplyResult: ...


# --- optional capabilities, as typed protocols --------------------------------------------


@runtime_checkable
class Releases(Protocol):
    """Frees what the driver holds across observe and apply (an open transaction)."""

    async def release(self, ctx: RunContext) -> None: ...


@runtime_checkable
class Verifies(Protocol):
    """Proof mode: apply in a transaction, observe and diff again, roll back."""

    async def verify(self, obj: Any, plan: Plan, ctx: RunContext) -> Plan: ...


@runtime_checkable
class DerivesGuards(Protocol):
    """Guards derived from the spec (`maxDeletes`, row-count limits, ...)."""

    def guards(self, spec: Any) -> Sequence[Guard]: ...


@runtime_checkable
class TearsDown(Protocol):
    """`deletionPolicy: Delete`: the spec whose run removes what the object wrote."""

    def teardown(self, obj: Any) -> Any: ...


@runtime_checkable
class WatchesPaths(Protocol):
    """Target files the daemon watches for hand edits."""

    def watch_paths(self, obj: Any) -> Sequence[Any]: ...


@runtime_checkable
class RecordsPlan(Protocol):
    """Keeps what a real run found beyond its changes (AgentConfig: the client edits the
    spec holds, as proposals). Called after `diff` on every recorded real run, so that
    `diff` itself stays pure."""

    def record_plan(self, obj: Any, plan: Plan, ctx: RunContext) -> None: ...


def capabilities(driver: Driver) -> frozenset[str]:
    """The optional capabilities a driver has, by name (for `reconciler kinds` and docs)."""
    table = {"release": Releases, "verify": Verifies, "guards": DerivesGuards, "teardown": TearsDown,
             "watch_paths": WatchesPaths, "record_plan": RecordsPlan}
    return frozenset(name for name, protocol in table.items() if isinstance(driver, protocol))


async def release(driver: Driver, ctx: RunContext) -> None:
    """Let a driver free what it holds across observe and apply (optional `release(ctx)`):
    called once at the end of every run, whatever happened (a transaction still open after
    a dry run, a guard or a failure is rolled back there)."""
    if isinstance(driver, Releases):
        await driver.release(ctx)


async def prove(driver: Driver, obj: Resource, plan: Plan, ctx: RunContext) -> Plan:
    """Proof mode (`plan --verify`): a driver with an optional `verify(obj, plan, ctx)` applies
    the plan inside a transaction, observes again, diffs again and rolls back, and returns the
    plan with its verdict (`presentation.verification`: converged when the second diff is empty)."""
    if not isinstance(driver, Verifies):
        return plan.with_warnings(f"{obj.KIND} has no proof mode: --verify checked nothing")
    return await driver.verify(obj, plan, ctx)


async def record_plan(driver: Driver, obj: Resource, plan: Plan, ctx: RunContext) -> None:
    """Let a driver keep what a real, recorded run found (optional `record_plan`); the store
    writes run in a worker thread, off the event loop."""
    if isinstance(driver, RecordsPlan) and not ctx.dry_run and ctx.state is not None and ctx.state.recorded:
        await asyncio.to_thread(driver.record_plan, obj, plan, ctx)


def driver_guards(driver: Driver, spec: Resource) -> Sequence[Guard]:
    """Guards a driver derives from its spec (optional `guards(spec)` method)."""
    return tuple(driver.guards(spec)) if isinstance(driver, DerivesGuards) else ()


DriverFactory = Callable[[], Driver]


class DriverRegistry:
    """Drivers by kind; a factory per kind so drivers are built only when used."""

    def __init__(self) -> None:
        self._factories: dict[str, DriverFactory] = {}
        self._instances: dict[str, Driver] = {}

    def register(self, kind: str, factory: DriverFactory) -> None:
        self._factories[kind] = factory
        self._instances.pop(kind, None)

    def _discover(self, kind: str) -> None:
        """A kind registered (entry point, plugin) after this registry was built."""
        from reconciler.kinds import REGISTRY

        info = REGISTRY.find(kind)
        factory = info.driver_factory() if info is not None else None
        if factory is not None:
            self._factories[kind] = factory

    def has(self, kind: str) -> bool:
        if kind not in self._factories:
            self._discover(kind)
        return kind in self._factories

    def kinds(self) -> list[str]:
        return sorted(self._factories)

    def get(self, kind: str) -> Driver:
        if kind not in self._instances:
            if kind not in self._factories:
                self._discover(kind)
            if kind not in self._factories:
                available = ", ".join(self.kinds()) or "none"
                raise NoDriverError(f"no driver for kind {kind}; drivers available: {available}")
            self._instances[kind] = self._factories[kind]()
        return self._instances[kind]
