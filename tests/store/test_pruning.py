"""History retention on SQLite and PostgreSQL: which runs go, and that their rows go too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from reconciler.models import ObjectRef
from reconciler.store import Store
from reconciler.store import tables as t
from reconciler.store.pruning import RetentionPolicy, prune_history

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TEAM = ObjectRef("AgentConfig", "default", "team")
AED = ObjectRef("AedSourceBinding", "default", "aed")
NIGHTLY = ObjectRef("SyncJob", "default", "nightly")


def _run(store: Store, ref: ObjectRef, hours_ago: float, *, dry_run: bool = False,
         outcome: str = "succeeded") -> str:
    """One recorded run with a change, two events, a snapshot and a reject."""
    started = NOW - timedelta(hours=hours_ago)
    run_id = f"{int(started.timestamp() * 1000):012x}{ref.name:0>20}"[:32]
    store.start_run(run_id=run_id, target=ref, trigger="manual", mode="full", dry_run=dry_run,
                    revision=None, generation=None, started_at=started)
    with store.engine.begin() as conn:
        conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(outcome=outcome))
        conn.execute(insert(t.changes).values(run_id=run_id, seq=0, action="update", item="row",
                                              key="k", before={"a": 1}, after={"a": 2}, fields=[]))
    for reason in ("RunStarted", "RunFinished"):
        store.record_event(target=ref, run_id=run_id, type_="Normal", reason=reason, message=reason,
                           data={}, at=started)
    store.save_snapshots(run_id, ref, [("k", {"a": 1})])
    store.save_rejects(run_id, [{"key": "x", "stage": "map", "rule": "type", "column": "c",
                                 "message": "bad"}])
    return run_id


def _ids(store: Store, ref: ObjectRef) -> list[str]:
    return [r.id for r in store.runs(ref, limit=10_000)]


def _count(store: Store, table: t.Table, run_ids: list[str] | None = None) -> int:
    query = select(func.count()).select_from(table)
    if run_ids is not None:
        query = query.where(table.c.run_id.in_(run_ids))
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def test_keep_leaves_the_newest_runs_of_each_object_and_removes_the_rest_with_their_rows(
        store: Store) -> None:
    team = [_run(store, TEAM, hours_ago=h) for h in range(10, 0, -1)]
    aed = [_run(store, AED, hours_ago=h + 0.5) for h in range(5, 0, -1)]

    report = prune_history(store, policy=RetentionPolicy(keep=3), now=NOW)

    assert sorted(_ids(store, TEAM)) == team[-3:]
    assert sorted(_ids(store, AED)) == aed[-3:]
    gone = team[:-3] + aed[:-3]
    for table in (t.changes, t.snapshots, t.rejects, t.events):
        assert _count(store, table, gone) == 0, table.name
        assert _count(store, table, team[-3:] + aed[-3:]) > 0, table.name
    assert report.runs == 9 and report.objects == {TEAM: 7, AED: 2}
    assert report.rows == {"changes": 9, "snapshots": 9, "rejects": 9, "events": 18}
    assert report.oldest_kept[TEAM] == NOW - timedelta(hours=3)


def test_max_age_removes_only_runs_older_than_the_duration(store: Store) -> None:
    runs = [_run(store, TEAM, hours_ago=h) for h in (50, 30, 20, 10, 1)]
    prune_history(store, policy=RetentionPolicy(max_age=timedelta(hours=24)), now=NOW)
    assert sorted(_ids(store, TEAM)) == runs[2:]


def test_a_run_is_kept_when_any_rule_keeps_it(store: Store) -> None:
    runs = [_run(store, TEAM, hours_ago=h) for h in (50, 40, 30, 20, 10, 1)]
    # keep=4 alone would remove 50 and 40; max_age=45h alone would remove 50 only.
    prune_history(store, policy=RetentionPolicy(keep=4, max_age=timedelta(hours=45)), now=NOW)
    assert sorted(_ids(store, TEAM)) == runs[1:]


def test_the_newest_run_and_the_newest_real_run_of_an_object_are_always_kept(store: Store) -> None:
    old_real = [_run(store, TEAM, hours_ago=h) for h in (100, 90)]
    dry = [_run(store, TEAM, hours_ago=h, dry_run=True, outcome="planned") for h in (80, 70)]
    prune_history(store, policy=RetentionPolicy(max_age=timedelta(hours=1)), now=NOW)
    # Every run is older than an hour: the newest (a plan) stays, and so does the newest real
    # run, which the object's status is computed from.
    assert sorted(_ids(store, TEAM)) == [old_real[1], dry[1]]
    assert store.latest_runs()[TEAM].id == old_real[1]


def test_runs_in_progress_are_never_removed(store: Store) -> None:
    running = _run(store, TEAM, hours_ago=30, outcome="running")
    done = [_run(store, TEAM, hours_ago=h) for h in (20, 10)]
    prune_history(store, policy=RetentionPolicy(keep=1), now=NOW)
    assert sorted(_ids(store, TEAM)) == [running, done[1]]


def test_a_dry_run_reports_what_would_go_and_removes_nothing(store: Store) -> None:
    [_run(store, TEAM, hours_ago=h) for h in range(6, 0, -1)]
    tables = (t.runs, t.changes, t.events, t.snapshots)
    before = {table.name: _count(store, table) for table in tables}

    planned = prune_history(store, policy=RetentionPolicy(keep=2), now=NOW, dry_run=True)

    assert {table.name: _count(store, table) for table in tables} == before
    done = prune_history(store, policy=RetentionPolicy(keep=2), now=NOW)
    assert (planned.runs, planned.rows, planned.objects) == (done.runs, done.rows, done.objects) == (
        4, {"changes": 4, "snapshots": 4, "rejects": 4, "events": 8}, {TEAM: 4})
    assert planned.lines()[-1].startswith("would remove 4 run(s) of 1 object(s)")
    assert done.lines()[-1].startswith("removed 4 run(s) of 1 object(s)")


def test_events_without_a_run_follow_the_same_rules_per_object(store: Store) -> None:
    for hours_ago in range(10, 0, -1):
        store.record_event(target=NIGHTLY, run_id=None, type_="Normal", reason="ScheduleSkipped",
                           message="skipped", data={}, at=NOW - timedelta(hours=hours_ago))
    report = prune_history(store, policy=RetentionPolicy(keep=4), now=NOW)
    kept = store.events(NIGHTLY)
    assert [e["at"] for e in kept] == [NOW - timedelta(hours=h) for h in (1, 2, 3, 4)]
    assert report.rows["events"] == 6 and report.runs == 0


def test_inventory_watermarks_and_audit_are_not_pruned(store: Store) -> None:
    runs = [_run(store, TEAM, hours_ago=h) for h in (3, 2, 1)]
    with store.engine.begin() as conn:
        conn.execute(insert(t.inventory).values(kind=TEAM.kind, namespace=TEAM.namespace, name=TEAM.name,
                                                item_key="file#/a", run_id=runs[0], applied_at=NOW))
        conn.execute(insert(t.watermarks).values(kind=TEAM.kind, namespace=TEAM.namespace, name=TEAM.name,
                                                 key="w", value="1", run_id=runs[0], updated_at=NOW))
    store.record_audit(actor="cli:me", action="run", obj=TEAM.short)
    prune_history(store, policy=RetentionPolicy(keep=1), now=NOW, actor="cli:me")
    assert store.inventory(TEAM) == frozenset({"file#/a"})
    assert store.watermarks(TEAM) == {"w": "1"}
    with store.engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(t.audit).order_by(t.audit.c.id))]
    assert actions == ["run", "prune"]


def test_no_rule_means_no_retention(store: Store) -> None:
    runs = [_run(store, TEAM, hours_ago=h) for h in (3, 2, 1)]
    report = prune_history(store, policy=RetentionPolicy(), now=NOW)
    assert report.empty and sorted(_ids(store, TEAM)) == runs


def test_a_negative_keep_is_refused() -> None:
    with pytest.raises(ValueError, match="keep must be 0"):
        RetentionPolicy(keep=-1)


def test_many_runs_are_removed_in_chunks(store: Store) -> None:
    count = 1200  # more than two chunks
    rows = [{"id": f"{i:032d}", "kind": TEAM.kind, "namespace": TEAM.namespace, "name": TEAM.name,
             "trigger": "schedule", "mode": "full", "dry_run": False, "outcome": "noop",
             "started_at": NOW - timedelta(minutes=count - i), "warnings": []} for i in range(count)]
    with store.engine.begin() as conn:
        conn.execute(insert(t.runs), rows)
        conn.execute(insert(t.changes), [{"run_id": r["id"], "seq": 0, "action": "update", "item": "row",
                                          "key": "k"} for r in rows])
    report = prune_history(store, policy=RetentionPolicy(keep=5), now=NOW)
    assert report.runs == count - 5 and report.rows["changes"] == count - 5
    assert sorted(_ids(store, TEAM)) == [r["id"] for r in rows[-5:]]
    assert _count(store, t.changes) == 5
