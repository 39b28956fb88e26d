"""The orchestrator against real stores (SQLite and PostgreSQL) with the test driver."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import kvstore_driver
import pytest
from kvstore_driver import KeyValueStore, KeyValueStoreDriver

from reconciler.engine.drivers import DriverRegistry
from reconciler.engine.events import EventBus
from reconciler.engine.orchestrator import Orchestrator
from reconciler.loading.secrets import SecretResolver
from reconciler.models import Mode
from reconciler.store import Store
from reconciler.structs.runs import Outcome, Trigger

SENTINEL = "s3cr3t-SENTINEL-value-42"


def kv(path: Path, data: dict[str, str], name: str = "settings", **spec: Any) -> KeyValueStore:
    return KeyValueStore.model_validate({
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "KeyValueStore",
        "metadata": {"name": name}, "spec": {"file": str(path), "data": data, **spec},
    })


def orchestrator(store: Store, **kwargs: Any) -> Orchestrator:
    registry = DriverRegistry()
    registry.register("KeyValueStore", KeyValueStoreDriver)
    return Orchestrator(store=store, drivers=registry, **kwargs)


def run(orch: Orchestrator, obj: KeyValueStore, **kwargs: Any):
    kwargs.setdefault("trigger", Trigger.MANUAL)
    return asyncio.run(orch.run(obj, **kwargs))


def test_a_run_is_recorded_with_its_counts(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "kv.json"
    target.write_text(json.dumps({"a": "old", "b": "same"}))
    result = run(orchestrator(store), kv(target, {"a": "new", "b": "same", "c": "added"}),
                 revision="abc123")
    assert result.outcome is Outcome.SUCCEEDED
    assert json.loads(target.read_text()) == {"a": "new", "b": "same", "c": "added"}
    [record] = store.runs(result.target)
    assert record.outcome == "succeeded"
    assert record.counts == {"created": 1, "updated": 1, "deleted": 0, "unchanged": 1, "invalid": 0}
    assert record.revision == "abc123" and record.trigger == "manual"
    changes = store.changes(result.run_id)
    assert [(c.action, c.key) for c in changes] == [("update", "a"), ("create", "c")]
    assert changes[0].fields == [{"path": "value", "before": "old", "after": "new"}]


def test_a_second_identical_run_is_recorded_as_noop(store: Store, tmp_path: Path) -> None:
    obj = kv(tmp_path / "kv.json", {"a": "1"})
    orch = orchestrator(store)
    run(orch, obj)
    before = (tmp_path / "kv.json").stat().st_mtime_ns
    second = run(orch, obj)
    assert second.outcome is Outcome.NOOP
    assert second.counts.changed == 0 and second.counts.unchanged == 1
    assert (tmp_path / "kv.json").stat().st_mtime_ns == before
    assert [r.outcome for r in store.runs(obj.ref)] == ["noop", "succeeded"]


def test_a_failing_driver_gives_a_failed_run_not_a_crash(store: Store, tmp_path: Path) -> None:
    result = run(orchestrator(store), kv(tmp_path / "kv.json", {"a": "1"}, failOn="observe"))
    assert result.outcome is Outcome.FAILED
    assert "simulated failure" in (result.error or "")
    assert result.error_type == "DriverError"
    [record] = store.runs(result.target)
    assert record.outcome == "failed" and "simulated failure" in (record.error or "")
    assert not (tmp_path / "kv.json").exists()


def test_an_unexpected_exception_is_recorded_with_its_type(store: Store, tmp_path: Path) -> None:
    result = run(orchestrator(store), kv(tmp_path / "kv.json", {"a": "1"}, failOn="apply"))
    assert result.outcome is Outcome.FAILED
    assert result.error_type == "RuntimeError"
    assert store.runs(result.target)[0].error_type == "RuntimeError"


def test_two_concurrent_runs_of_one_target_are_serialized(store: Store, tmp_path: Path) -> None:
    kvstore_driver.INTERVALS.clear()
    orch = orchestrator(store)
    first = kv(tmp_path / "kv.json", {"a": "1"}, applyDelaySeconds=0.3)
    second = kv(tmp_path / "kv.json", {"a": "2"}, applyDelaySeconds=0.3)

    async def both():
        return await asyncio.gather(orch.run(first, trigger=Trigger.API),
                                    orch.run(second, trigger=Trigger.SCHEDULE))

    results = asyncio.run(both())
    assert {r.outcome for r in results} == {Outcome.SUCCEEDED}
    (_, _s1, e1), (_, s2, _e2) = sorted(kvstore_driver.INTERVALS, key=lambda i: i[1])
    assert s2 >= e1, "the second apply started before the first one finished"
    assert len(store.runs(first.ref)) == 2


def test_runs_of_different_targets_do_not_wait_for_each_other(store: Store, tmp_path: Path) -> None:
    kvstore_driver.INTERVALS.clear()
    orch = orchestrator(store)
    one = kv(tmp_path / "one.json", {"a": "1"}, name="one", applyDelaySeconds=0.3)
    two = kv(tmp_path / "two.json", {"a": "1"}, name="two", applyDelaySeconds=0.3)

    async def both():
        return await asyncio.gather(orch.run(one, trigger=Trigger.API),
                                    orch.run(two, trigger=Trigger.API))

    asyncio.run(both())
    (_, _s1, e1), (_, s2, _e2) = sorted(kvstore_driver.INTERVALS, key=lambda i: i[1])
    assert s2 < e1, "runs of different targets were serialized"


def test_a_lock_held_too_long_fails_the_waiting_run(store: Store, tmp_path: Path) -> None:
    orch = orchestrator(store, lock_timeout=0.2)
    slow = kv(tmp_path / "kv.json", {"a": "1"}, applyDelaySeconds=1.0)

    async def both():
        first = asyncio.create_task(orch.run(slow, trigger=Trigger.API))
        await asyncio.sleep(0.1)
        second = await orch.run(slow, trigger=Trigger.API)
        return await first, second

    first, second = asyncio.run(both())
    assert first.outcome is Outcome.SUCCEEDED
    assert second.outcome is Outcome.FAILED and second.error_type == "LockTimeout"
    assert store.run(second.run_id) is not None


def test_a_dry_run_plans_and_writes_nothing(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "kv.json"
    target.write_text(json.dumps({"a": "old"}))
    result = run(orchestrator(store), kv(target, {"a": "new"}), dry_run=True)
    assert result.outcome is Outcome.PLANNED
    assert result.counts.updated == 1
    assert json.loads(target.read_text()) == {"a": "old"}
    assert store.inventory(result.target) == frozenset()


def test_only_keys_the_reconciler_created_are_deleted(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "kv.json"
    target.write_text(json.dumps({"foreign": "theirs"}))
    orch = orchestrator(store)
    run(orch, kv(target, {"ours": "1", "also": "2"}))
    assert store.inventory(kv(target, {}).ref) == {"ours", "also"}
    result = run(orch, kv(target, {"ours": "1"}))
    assert result.counts.deleted == 1
    assert json.loads(target.read_text()) == {"foreign": "theirs", "ours": "1"}
    assert store.inventory(result.target) == {"ours"}


def test_a_guard_aborts_before_anything_is_written(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "kv.json"
    orch = orchestrator(store)
    run(orch, kv(target, {"a": "1", "b": "2", "c": "3"}))
    before = target.read_bytes()
    result = run(orch, kv(target, {}, maxDeletes=1))
    assert result.outcome is Outcome.ABORTED
    assert "maxDeletes" in (result.error or "") and "3 deletes planned" in (result.error or "")
    assert target.read_bytes() == before
    assert store.inventory(result.target) == {"a", "b", "c"}


def test_a_tripping_guard_is_a_warning_on_a_dry_run(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "kv.json"
    orch = orchestrator(store)
    run(orch, kv(target, {"a": "1", "b": "2"}))
    result = run(orch, kv(target, {}, maxDeletes="10%"), dry_run=True)
    assert result.outcome is Outcome.PLANNED
    assert any("maxDeletes would abort" in w for w in result.plan.warnings)


def test_secret_values_never_reach_the_store(store: Store, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KV_TOKEN", SENTINEL)
    target = tmp_path / "kv.json"
    orch = orchestrator(store, secrets=lambda: SecretResolver())
    applied = run(orch, kv(target, {"a": "1"}, token={"env": "KV_TOKEN"}))
    assert json.loads(target.read_text())["token"] == SENTINEL  # the target gets the value
    failed = run(orch, kv(target, {"a": "2"}, token={"env": "KV_TOKEN"}, failOn="apply"))
    assert failed.outcome is Outcome.FAILED and "***" in (failed.error or "")
    dumped = json.dumps([r.model_dump(mode="json") for r in store.runs()])
    dumped += json.dumps([c.model_dump(mode="json") for r in (applied, failed)
                          for c in store.changes(r.run_id)])
    dumped += json.dumps(store.events(), default=str)
    assert SENTINEL not in dumped
    assert "***" in dumped


def test_events_are_published_and_stored_for_start_and_end(store: Store, tmp_path: Path) -> None:
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    result = run(orchestrator(store, bus=bus), kv(tmp_path / "kv.json", {"a": "1"}))
    assert [e.type for e in seen] == ["RunStarted", "RunSucceeded"]
    assert all(e.run_id == result.run_id for e in seen)
    assert seen[1].data["created"] == 1
    assert [e["type"] for e in store.events(result.target)] == ["RunSucceeded", "RunStarted"]


def test_a_failing_subscriber_does_not_fail_the_run(store: Store, tmp_path: Path) -> None:
    bus = EventBus()

    def broken(_event):
        raise ValueError("subscriber bug")

    bus.subscribe(broken)
    result = run(orchestrator(store, bus=bus), kv(tmp_path / "kv.json", {"a": "1"}))
    assert result.outcome is Outcome.SUCCEEDED


def test_a_kind_without_driver_gives_a_failed_run(store: Store, tmp_path: Path) -> None:
    orch = Orchestrator(store=store, drivers=DriverRegistry())
    result = run(orch, kv(tmp_path / "kv.json", {"a": "1"}), mode=Mode.INCREMENTAL)
    assert result.outcome is Outcome.FAILED
    assert "no driver for kind KeyValueStore" in (result.error or "")


@pytest.mark.parametrize("outcome", ["succeeded"])
def test_latest_runs_gives_the_newest_run_per_target(store: Store, tmp_path: Path, outcome: str) -> None:
    orch = orchestrator(store)
    run(orch, kv(tmp_path / "a.json", {"a": "1"}, name="a"))
    run(orch, kv(tmp_path / "a.json", {"a": "1"}, name="a"))
    run(orch, kv(tmp_path / "b.json", {"a": "1"}, name="b"))
    latest = store.latest_runs()
    assert {ref.name: r.outcome for ref, r in latest.items()} == {"a": "noop", "b": outcome}


def test_a_dry_run_never_becomes_the_status_of_an_object(store: Store, tmp_path: Path) -> None:
    # Flux semantics: `plan`, a recorded PR plan or an API run with dryRun is queryable as a
    # plan, but Ready and lastResult come from the last real reconciliation.
    orch = orchestrator(store)
    obj = kv(tmp_path / "a.json", {"a": "1"}, name="a")
    run(orch, obj)
    changed = kv(tmp_path / "a.json", {"a": "2"}, name="a")
    planned = asyncio.run(orch.run(changed, trigger=Trigger.MANUAL, dry_run=True))
    assert planned.outcome is Outcome.PLANNED
    assert store.runs(obj.ref, limit=1)[0].dry_run  # recorded as a plan
    latest = store.latest_runs()[obj.ref]
    assert latest.outcome == "succeeded" and not latest.dry_run
    assert store.runs(obj.ref, limit=1, dry_run=False)[0].id == latest.id
    from reconciler.engine import conditions

    before = conditions.from_result((), run(orch, obj))
    assert conditions.from_result(before, planned) == before


def test_the_orchestrator_records_runs_off_the_event_loop(store: Store, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A run's record (start, its changes, inventory, watermarks) is written in a worker
    # thread: the daemon's loop keeps serving the API and the scheduler meanwhile.
    import threading

    on_loop: list[str] = []
    for name in ("abandon_running", "start_run", "inventory", "finish_run"):
        method = getattr(Store, name)

        def spy(self, *args, __name=name, __method=method, **kwargs):  # type: ignore[no-untyped-def]
            if threading.current_thread() is threading.main_thread():
                on_loop.append(__name)
            return __method(self, *args, **kwargs)

        monkeypatch.setattr(Store, name, spy)
    result = run(orchestrator(store), kv(tmp_path / "a.json", {"a": "1"}, name="a"))
    assert result.outcome is Outcome.SUCCEEDED and on_loop == []


def test_a_rollback_point_is_a_run_of_the_same_target_by_id_or_prefix(store: Store, tmp_path: Path) -> None:
    from reconciler.errors import ReconcilerError

    orch = orchestrator(store)
    mine = run(orch, kv(tmp_path / "a.json", {"a": "1"}, name="mine"))
    other = run(orch, kv(tmp_path / "b.json", {"b": "1"}, name="other"))
    assert orch.rollback_point(mine.target, mine.run_id[:12]) == mine.run_id
    with pytest.raises(ReconcilerError, match=r"no run .* of KeyValueStore/mine"):
        orch.rollback_point(mine.target, other.run_id)  # another target's run
    with pytest.raises(ReconcilerError, match="no run 'nope'"):
        orch.rollback_point(mine.target, "nope")
