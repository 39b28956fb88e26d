"""The store behind narrow ports: what each part of the reconciler needs from it.

The engine, the scheduler and the status view do not depend on the store's class (nor on
SQLAlchemy): each names the few operations it uses, as a protocol here, and the store
(`reconciler.store.Store`) implements them all. The orchestrator takes a `RunStore`, the
per-target view a driver gets (`engine.drivers.TargetState`) a `TargetStore`, the
scheduler a `ScheduleBook`. A test or another backend provides just the port it needs.

- `RunLog`: runs (started, finished, abandoned); `EventLog`: what happened;
- `Ownership`: what the reconciler applied per target (inventory) and its cursors
  (watermarks);
- `Snapshots`: the prior content of what a run changed (rollback), and the rows it refused;
- `ProposalLog`: edits found in client files that the spec could take (AgentConfig);
- `TargetLocks`: one run per target at a time, across processes;
- `RunHistory`: runs, their changes and refused rows, the newest real run of each target;
- `ScheduleBook`: the scheduler's state per SyncJob and the SyncJobs declared;
- `AuditLog`: who did what through the API or the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from reconciler.models import ObjectRef
from reconciler.structs.plans import Change
from reconciler.structs.records import ChangeRecord, RunRecord
from reconciler.structs.runs import RunResult
from reconciler.structs.schedules import ScheduleState


class RunLog(Protocol):
    def abandon_running(self, target: ObjectRef, *, now: datetime) -> list[str]: ...

    def start_run(self, *, run_id: str, target: ObjectRef, trigger: str, mode: str, dry_run: bool,
                  revision: str | None, generation: int | None, started_at: datetime) -> None: ...

    def finish_run(self, result: RunResult, *, changes: Sequence[Change] = (),
                   owned_added: Iterable[str] = (), owned_removed: Iterable[str] = (),
                   watermarks: Mapping[str, str] | None = None) -> None: ...


class EventLog(Protocol):
    def record_event(self, *, target: ObjectRef, run_id: str | None, type_: str, reason: str,
                     message: str, data: Mapping[str, Any], at: datetime) -> None: ...


class Ownership(Protocol):
    def inventory(self, target: ObjectRef) -> frozenset[str]: ...

    def watermarks(self, target: ObjectRef) -> dict[str, str]: ...

    def watermark(self, target: ObjectRef, key: str) -> str | None: ...


class Snapshots(Protocol):
    def save_snapshots(self, run_id: str, target: ObjectRef, items: Iterable[tuple[str, Any]]) -> int: ...

    def snapshots(self, run_id: str) -> list[tuple[str, Any]]: ...

    def save_rejects(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int: ...


class ProposalLog(Protocol):
    def observe_proposals(self, target: ObjectRef, run_id: str, adopt: Mapping[str, Mapping[str, Any]],
                          decisions: Iterable[Mapping[str, Any]] = ()) -> list[str]: ...

    def rejected_proposals(self, target: ObjectRef) -> dict[str, str]: ...


class TargetLocks(Protocol):
    def target_lock(self, target: ObjectRef, *, timeout: float) -> AbstractAsyncContextManager[None]: ...


class ScheduleBook(Protocol):
    def schedule_state(self, job: ObjectRef) -> ScheduleState: ...

    def schedule_states(self) -> dict[ObjectRef, ScheduleState]: ...

    def save_schedule_state(self, job: ObjectRef, state: ScheduleState) -> None: ...

    def claim_schedule(self, job: ObjectRef, *, expected_next: datetime | None,
                       state: ScheduleState) -> bool: ...

    def declare_jobs(self, jobs: Iterable[Any], *, replace: bool = False) -> None: ...

    def declared_jobs(self) -> list[Any]: ...


class RunHistory(Protocol):
    def runs(self, target: ObjectRef | None = None, *, limit: int = 50,
             dry_run: bool | None = None) -> list[RunRecord]: ...

    def latest_runs(self) -> dict[ObjectRef, RunRecord]: ...

    def run(self, run_id: str) -> RunRecord | None: ...

    def changes(self, run_id: str) -> list[ChangeRecord]: ...

    def rejects(self, run_id: str, *, limit: int | None = None) -> list[dict[str, Any]]: ...


class AuditLog(Protocol):
    def record_audit(self, *, actor: str, action: str, obj: str | None = None,
                     source: str | None = None, detail: Mapping[str, Any] | None = None) -> None: ...


class TargetStore(Ownership, Snapshots, ProposalLog, RunHistory, Protocol):
    """What one run of one target reads and writes (through `TargetState`)."""


class RunStore(RunLog, EventLog, TargetStore, TargetLocks, Protocol):
    """What the orchestrator needs: the run log and events, a target's data, its lock."""


class StatusStore(RunHistory, ScheduleBook, Protocol):
    """What the status view reads: the newest real run of each target, the schedules."""


class SchedulerStore(ScheduleBook, EventLog, Protocol):
    """What the scheduler needs: its book, and events for missed and skipped runs."""
