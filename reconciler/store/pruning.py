"""History retention: removing old runs, and everything recorded with them, from the store.

Every run leaves a row in `runs` and rows that hang off it: its `changes`, `events`,
`snapshots` (what rollback restores from) and `rejects`. Without retention a store grows
by a few kilobytes per run for ever, even when nothing changes. A `RetentionPolicy` says
which runs of an object to keep, with restic's `--keep-last` / `--keep-within` meaning:

- `keep`: the newest N runs of each object (0: no count rule);
- `max_age`: runs started within this duration;

a run is kept if *any* rule set keeps it, so adding a rule never removes more. Whatever
the rules say, these are always kept: the newest run of each object, its newest real (not
dry) run, which its status is computed from, and runs still in progress.

Runs are always removed oldest first, so what stays of an object's history is its recent
end. That is what rollback needs: `rollback --to RUN` rebuilds the target from the
snapshots of RUN and of the runs after it, never of runs before it, so every run still
listed by `history` remains a rollback point, and a pruned run is simply no longer one.

Events recorded without a run (schedule decisions of a SyncJob, for example) follow the
same rules, counted per object among themselves. The audit trail, the inventory, the
watermarks and the schedule state are current state or accountability, never pruned.

Removal goes in chunks of runs, each in its own transaction with all its rows, so a
large first prune never holds the store's write lock for long and never leaves a run
without its changes or changes without their run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select

from reconciler.models import ObjectRef
from reconciler.store import tables as t
from reconciler.store.repository import Store

CHUNK = 500
"""Runs removed per transaction."""

_OWNED = (t.changes, t.snapshots, t.rejects, t.events)
"""The tables whose rows belong to a run (by `run_id`) and go with it."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Which runs of each object to keep; see the module docstring for the rules."""

    keep: int = 0
    max_age: timedelta | None = None

    def __post_init__(self) -> None:
        if self.keep < 0:
            raise ValueError(f"keep must be 0 (no count rule) or a positive number of runs; got {self.keep}")

    @property
    def enabled(self) -> bool:
        return self.keep > 0 or self.max_age is not None

    def describe(self) -> str:
        from reconciler.models.common import format_duration

        rules = ([f"the newest {self.keep} runs of each object"] if self.keep else []) + (
            [f"runs of the last {format_duration(self.max_age)}"] if self.max_age else [])
        return " and ".join(rules) if rules else "everything (no retention)"


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What a prune removed (or, for a dry run, would remove)."""

    dry_run: bool
    runs: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    """Rows removed per table besides `runs` (`changes`, `events`, `snapshots`, `rejects`)."""
    objects: dict[ObjectRef, int] = field(default_factory=dict)
    """Runs removed per object."""
    oldest_kept: dict[ObjectRef, datetime] = field(default_factory=dict)
    """The start of the oldest run still kept, per object that lost runs."""

    @property
    def empty(self) -> bool:
        return self.runs == 0 and not any(self.rows.values())

    def lines(self) -> list[str]:
        """What was removed, one line per object and a total, for people."""
        verb = "would remove" if self.dry_run else "removed"
        out = [f"{ref.short}: {verb} {count} run(s); oldest kept: "
               f"{self.oldest_kept[ref].strftime('%Y-%m-%d %H:%M:%S')}"
               for ref, count in sorted(self.objects.items(), key=lambda item: item[0].short)
               if ref in self.oldest_kept]
        rows = ", ".join(f"{self.rows.get(name, 0)} {name}" for name in ("changes", "events", "snapshots",
                                                                         "rejects"))
        out.append(f"{verb} {self.runs} run(s) of {len(self.objects)} object(s) and {rows}")
        return out


def prune_history(store: Store, *, policy: RetentionPolicy, now: datetime, dry_run: bool = False,
                  actor: str | None = None) -> PruneReport:
    """Remove the runs `policy` does not keep, with their rows; return what went.

    With an `actor`, a prune that removed something is recorded in the audit trail."""
    if not policy.enabled:
        return PruneReport(dry_run=dry_run)
    # Times are compared in UTC: SQLite keeps them as naive UTC text.
    cutoff = now.astimezone(UTC) - policy.max_age if policy.max_age is not None else None
    doomed = _doomed_runs(store, policy=policy, cutoff=cutoff)
    rows: Counter[str] = Counter()
    objects: Counter[ObjectRef] = Counter(ref for _, ref in doomed)
    for chunk in _chunks([run_id for run_id, _ in doomed]):
        with store.engine.begin() as conn:
            for table in _OWNED:
                where = table.c.run_id.in_(chunk)
                if dry_run:
                    rows[table.name] += conn.execute(
                        select(func.count()).select_from(table).where(where)).scalar_one()
                else:
                    rows[table.name] += conn.execute(delete(table).where(where)).rowcount
            if not dry_run:
                conn.execute(delete(t.runs).where(t.runs.c.id.in_(chunk)))
    rows["events"] += _prune_runless_events(store, policy=policy, cutoff=cutoff, dry_run=dry_run)
    report = PruneReport(dry_run=dry_run, runs=len(doomed), rows=dict(rows), objects=dict(objects),
                         oldest_kept=_oldest_kept(store, objects, doomed) if objects else {})
    if actor is not None and not dry_run and not report.empty:
        store.record_audit(actor=actor, action="prune", detail={
            "policy": policy.describe(), "runs": report.runs, "rows": report.rows})
    return report


def _ranked(table: Any, columns: list[Any], order: list[Any], where: Any = None) -> Any:
    """`table` with each row's rank within its object (1: the newest)."""
    partition = [table.c.kind, table.c.namespace, table.c.name]
    rank = func.row_number().over(partition_by=partition, order_by=order).label("rank")
    query = select(*columns, *partition, rank)
    if where is not None:
        query = query.where(where)
    return query.subquery()


def _doomed_runs(store: Store, *, policy: RetentionPolicy,
                 cutoff: datetime | None) -> list[tuple[str, ObjectRef]]:
    """The runs to remove, oldest first: kept by no rule and by no exception."""
    r = t.runs
    newest_first = [r.c.started_at.desc(), r.c.id.desc()]
    ranked = _ranked(r, [r.c.id, r.c.started_at, r.c.outcome, r.c.dry_run], newest_first)
    real = _ranked(r, [r.c.id], newest_first, where=r.c.dry_run.is_(False))
    conditions = [ranked.c.rank > max(policy.keep, 1), ranked.c.outcome != "running",
                  real.c.id.is_(None) | (real.c.rank > 1)]
    if cutoff is not None:
        conditions.append(ranked.c.started_at < cutoff)
    query = (select(ranked.c.id, ranked.c.kind, ranked.c.namespace, ranked.c.name)
             .join(real, real.c.id == ranked.c.id, isouter=True)
             .where(and_(*conditions))
             .order_by(ranked.c.started_at, ranked.c.id))
    with store.engine.connect() as conn:
        return [(row.id, ObjectRef(row.kind, row.namespace, row.name)) for row in conn.execute(query)]


def _prune_runless_events(store: Store, *, policy: RetentionPolicy, cutoff: datetime | None,
                          dry_run: bool) -> int:
    e = t.events
    ranked = _ranked(e, [e.c.id, e.c.at], [e.c.at.desc(), e.c.id.desc()], where=e.c.run_id.is_(None))
    conditions = [ranked.c.rank > policy.keep] if policy.keep else [ranked.c.rank > 1]
    if cutoff is not None:
        conditions.append(ranked.c.at < cutoff)
    doomed = select(ranked.c.id).where(and_(*conditions))
    with store.engine.begin() as conn:
        ids = list(conn.execute(doomed).scalars())
        if not dry_run:
            for chunk in _chunks(ids):
                conn.execute(delete(e).where(e.c.id.in_(chunk)))
    return len(ids)


def _oldest_kept(store: Store, objects: Counter[ObjectRef],
                 doomed: list[tuple[str, ObjectRef]]) -> dict[ObjectRef, datetime]:
    """The oldest run kept of each object (for a dry run too: the doomed ones are skipped)."""
    r = t.runs
    gone = {run_id for run_id, _ in doomed}
    out: dict[ObjectRef, datetime] = {}
    with store.engine.connect() as conn:
        for ref, count in objects.items():
            # Among an object's `count + 1` oldest runs at most `count` are doomed.
            query = (select(r.c.id, r.c.started_at)
                     .where(r.c.kind == ref.kind, r.c.namespace == ref.namespace, r.c.name == ref.name)
                     .order_by(r.c.started_at, r.c.id).limit(count + 1))
            started = next(row.started_at for row in conn.execute(query) if row.id not in gone)
            out[ref] = started if started.tzinfo else started.replace(tzinfo=UTC)  # SQLite: naive UTC
    return out


def _chunks(ids: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


__all__ = ["PruneReport", "RetentionPolicy", "prune_history"]
