"""The inventory of owned keys at scale, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from reconciler.models import Mode, ObjectRef
from reconciler.store import Store
from reconciler.structs.plans import Counts
from reconciler.structs.runs import Outcome, RunResult, Trigger

TARGET = ObjectRef("RbacMapping", "default", "big")


def _run(store: Store, run_id: str, **inventory: list[str]) -> None:
    now = datetime.now(UTC)
    store.start_run(run_id=run_id, target=TARGET, trigger="manual", mode="full", dry_run=False,
                    revision=None, generation=None, started_at=now)
    store.finish_run(RunResult(run_id=run_id, target=TARGET, trigger=Trigger.MANUAL, mode=Mode.FULL,
                               dry_run=False, outcome=Outcome.SUCCEEDED, counts=Counts(),
                               started_at=now, finished_at=now), **inventory)


def test_an_inventory_larger_than_one_statement_binds_is_recorded_and_pruned(store: Store) -> None:
    keys = [f"binding:dept:{i:06d}|study-reader|acl:{i}" for i in range(70_000)]  # > 65,535 binds
    _run(store, "r1", owned_added=keys)
    assert len(store.inventory(TARGET)) == 70_000
    _run(store, "r2", owned_added=keys[:10], owned_removed=keys[10:])
    assert store.inventory(TARGET) == frozenset(keys[:10])
