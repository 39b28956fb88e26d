"""The store: recording runs, changes, events, inventory, watermarks, snapshots, audit.

`Store` wraps one SQLAlchemy engine (SQLite by default, PostgreSQL in production) and
offers the few operations the engine and the front ends need, each in its own
transaction. A finished run is written in one transaction with its changes, inventory
update and watermarks, so the record and the ownership data never disagree.
The engine, scheduler and status reach it through the narrow ports of `reconciler.ports`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, update

from reconciler.errors import StoreError
from reconciler.models import ObjectRef
from reconciler.store import tables as t
from reconciler.store.migrating import ensure_schema
from reconciler.store.urls import normalise_url, parse_store_url, prepare_sqlite_folder
from reconciler.structs.jsonable import jsonable
from reconciler.structs.plans import Change
from reconciler.structs.records import ChangeRecord, RunRecord
from reconciler.structs.runs import RunResult
from reconciler.structs.schedules import ScheduleState

DECLARED = "declared"  # watermark key of a declared SyncJob


@overload
def _aware(value: datetime) -> datetime: ...
@overload
def _aware(value: datetime | None) -> datetime | None: ...
def _aware(value: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything we store is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _run_record(row: Any) -> RunRecord:
    m = row._mapping
    return RunRecord(
        id=m["id"], kind=m["kind"], namespace=m["namespace"], name=m["name"],
        trigger=m["trigger"], mode=m["mode"], dry_run=m["dry_run"], revision=m["revision"],
        generation=m["generation"], outcome=m["outcome"],
        counts={k: m[k] for k in ("created", "updated", "deleted", "unchanged", "invalid")},
        started_at=_aware(m["started_at"]), finished_at=_aware(m["finished_at"]),
        duration_seconds=m["duration_seconds"], error=m["error"], error_type=m["error_type"],
        warnings=list(m["warnings"] or []), drift=list(m["drift"] or []),
    )


def _target_filter(table: Any, target: ObjectRef) -> list[Any]:
    return [table.c.kind == target.kind, table.c.namespace == target.namespace,
            table.c.name == target.name]





def _chunks(keys: list[str], size: int = 10_000) -> Iterator[list[str]]:
    for start in range(0, len(keys), size):
        yield keys[start:start + size]

class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str, *, migrate: bool = True, sqlite_synchronous: str = "normal") -> Store:
        """The store at `url`, its schema upgraded (`migrate`); `sqlite_synchronous` is the
        SQLite store's durability (see `Settings.sqlite_synchronous`)."""
        if sqlite_synchronous not in ("normal", "full"):
            raise StoreError(f"sqlite_synchronous: expected normal or full, got {sqlite_synchronous!r}")
        parsed = parse_store_url(url)  # refuses a malformed URL in one line, as given
        url = normalise_url(url)
        kwargs: dict[str, Any] = {"future": True}
        if parsed.get_backend_name() == "sqlite":
            prepare_sqlite_folder(parsed)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(url, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            pragmas = functools.partial(_sqlite_pragmas, synchronous=sqlite_synchronous)
            event.listen(engine, "connect", pragmas)
        try:
            if migrate:
                ensure_schema(engine)
        except StoreError:
            raise
        except Exception as exc:  # the database is unreachable or refuses us
            engine.dispose()
            raise StoreError(f"cannot open the store at {parsed.render_as_string()}: "
                             f"{str(exc).splitlines()[0]}") from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def target_lock(self, target: ObjectRef, *, timeout: float) -> AbstractAsyncContextManager[None]:
        """Hold `target`'s lock (see `locking.py`); `LockTimeout` after `timeout` seconds."""
        from reconciler.store.locking import target_lock

        return target_lock(self, target, timeout=timeout)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def sqlite_path(self) -> Path | None:
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            return Path(database).expanduser().resolve()
        return None

    # --- runs ---------------------------------------------------------------------------

    def abandon_running(self, target: ObjectRef, *, now: datetime) -> list[str]:
        """Mark runs of `target` still `running` as failed (type `Abandoned`): the caller holds
        the target's lock, which a live run would hold, so whatever process ran them ended
        without finishing (killed). Returns their ids."""
        query = select(t.runs.c.id).where(*_target_filter(t.runs, target), t.runs.c.outcome == "running")
        with self.engine.begin() as conn:
            ids = list(conn.execute(query).scalars())
            if ids:
                conn.execute(update(t.runs).where(t.runs.c.id.in_(ids)).values(
                    outcome="failed", error_type="Abandoned", finished_at=now,
                    error="abandoned: the process running it ended before it finished (killed or "
                          "crashed); what it wrote, if anything, was not recorded"))
        return ids

    def start_run(
        self, *, run_id: str, target: ObjectRef, trigger: str, mode: str, dry_run: bool,
        revision: str | None, generation: int | None, started_at: datetime,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(t.runs).values(
                id=run_id, kind=target.kind, namespace=target.namespace, name=target.name,
                trigger=trigger, mode=mode, dry_run=dry_run, revision=revision,
                generation=generation, outcome="running", created=0, updated=0, deleted=0,
                unchanged=0, invalid=0, started_at=started_at, warnings=[],
            ))

    def finish_run(
        self, result: RunResult, *, changes: Sequence[Change] = (),
        owned_added: Iterable[str] = (), owned_removed: Iterable[str] = (),
        watermarks: Mapping[str, str] | None = None,
    ) -> None:
        """Record a run's end with its changes, inventory and watermarks, atomically. The
        run's row is `RunRecord.of(result)`, as `apply -o json` shows the run."""
        record = RunRecord.of(result)
        target = result.target
        with self.engine.begin() as conn:
            conn.execute(update(t.runs).where(t.runs.c.id == result.run_id).values(
                outcome=record.outcome, **record.counts, finished_at=record.finished_at,
                duration_seconds=record.duration_seconds, error=record.error,
                error_type=record.error_type, warnings=record.warnings, drift=record.drift,
            ))
            if changes:
                conn.execute(insert(t.changes), [
                    {"run_id": result.run_id, "seq": i, "action": str(ch.action),
                     "item": ch.item, "key": ch.key, "before": jsonable(ch.before),
                     "after": jsonable(ch.after),
                     "fields": [{"path": f.path, "before": jsonable(f.before),
                                 "after": jsonable(f.after)} for f in ch.fields]}
                    for i, ch in enumerate(changes)
                ])
            # In chunks: an inventory can hold hundreds of thousands of keys, more than one
            # statement may bind (SQLite: 32,766 variables; PostgreSQL: 65,535).
            removed = list(owned_removed)
            for chunk in _chunks(removed):
                conn.execute(delete(t.inventory).where(
                    *_target_filter(t.inventory, target), t.inventory.c.item_key.in_(chunk)))
            added = sorted(set(owned_added))
            for chunk in _chunks(added):
                conn.execute(delete(t.inventory).where(
                    *_target_filter(t.inventory, target), t.inventory.c.item_key.in_(chunk)))
            if added:
                conn.execute(insert(t.inventory), [
                    {"kind": target.kind, "namespace": target.namespace, "name": target.name,
                     "item_key": key, "run_id": result.run_id, "applied_at": result.finished_at}
                    for key in added
                ])
            for key, value in (watermarks or {}).items():
                conn.execute(delete(t.watermarks).where(
                    *_target_filter(t.watermarks, target), t.watermarks.c.key == key))
                conn.execute(insert(t.watermarks).values(
                    kind=target.kind, namespace=target.namespace, name=target.name, key=key,
                    value=value, run_id=result.run_id, updated_at=result.finished_at))

    def runs(self, target: ObjectRef | None = None, *, limit: int = 50,
             dry_run: bool | None = None) -> list[RunRecord]:
        """Runs, newest first, of one target or of all; `dry_run` False: real runs only."""
        query = select(t.runs).order_by(t.runs.c.started_at.desc(), t.runs.c.id).limit(limit)
        if target is not None:
            query = query.where(*_target_filter(t.runs, target))
        if dry_run is not None:
            query = query.where(t.runs.c.dry_run == dry_run)
        with self.engine.connect() as conn:
            return [_run_record(r) for r in conn.execute(query)]

    def run(self, run_id: str) -> RunRecord | None:
        """A run by id, or by an unambiguous id prefix (as printed by the CLI)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.runs).where(t.runs.c.id.startswith(run_id, autoescape=True)).limit(2)
            ).all()
        if len(rows) != 1:
            return None
        return _run_record(rows[0])

    def latest_runs(self) -> dict[ObjectRef, RunRecord]:
        """The newest real run of every target the store has seen. Dry runs (plans, PR
        reviews, API runs with dryRun) are recorded and queryable as plans, but the status
        of an object comes from real reconciliations only (as Flux's Ready)."""
        newest = (
            select(t.runs.c.kind, t.runs.c.namespace, t.runs.c.name,
                   func.max(t.runs.c.started_at).label("started_at"))
            .where(t.runs.c.dry_run.is_(False))
            .group_by(t.runs.c.kind, t.runs.c.namespace, t.runs.c.name).subquery()
        )
        query = select(t.runs).join(newest, (t.runs.c.kind == newest.c.kind)
                                    & (t.runs.c.namespace == newest.c.namespace)
                                    & (t.runs.c.name == newest.c.name)
                                    & (t.runs.c.started_at == newest.c.started_at)
                                    & t.runs.c.dry_run.is_(False))
        with self.engine.connect() as conn:
            records = [_run_record(r) for r in conn.execute(query)]
        return {r.target: r for r in sorted(records, key=lambda r: r.started_at)}

    def changes(self, run_id: str) -> list[ChangeRecord]:
        query = select(t.changes).where(t.changes.c.run_id == run_id).order_by(t.changes.c.seq)
        with self.engine.connect() as conn:
            return [ChangeRecord(seq=r.seq, action=r.action, item=r.item, key=r.key,
                                 before=r.before, after=r.after, fields=r.fields or [])
                    for r in conn.execute(query)]

    # --- events and audit ---------------------------------------------------------------

    def record_event(self, *, target: ObjectRef, run_id: str | None, type_: str, reason: str,
                     message: str, data: Mapping[str, Any], at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(t.events).values(
                run_id=run_id, kind=target.kind, namespace=target.namespace, name=target.name,
                type=type_, reason=reason, message=message, data=jsonable(data), at=at))

    def events(self, target: ObjectRef | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
        query = select(t.events).order_by(t.events.c.at.desc(), t.events.c.id.desc()).limit(limit)
        if target is not None:
            query = query.where(*_target_filter(t.events, target))
        with self.engine.connect() as conn:
            return [dict(r._mapping) | {"at": _aware(r.at)} for r in conn.execute(query)]

    def record_audit(self, *, actor: str, action: str, obj: str | None = None,
                     source: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(t.audit).values(
                at=datetime.now(UTC), actor=actor, action=action, object=obj, source=source,
                detail=jsonable(detail or {})))

    # --- ownership, watermarks, snapshots -----------------------------------------------

    def inventory(self, target: ObjectRef) -> frozenset[str]:
        query = select(t.inventory.c.item_key).where(*_target_filter(t.inventory, target))
        with self.engine.connect() as conn:
            return frozenset(conn.execute(query).scalars())

    def watermarks(self, target: ObjectRef) -> dict[str, str]:
        query = select(t.watermarks.c.key, t.watermarks.c.value).where(
            *_target_filter(t.watermarks, target))
        with self.engine.connect() as conn:
            return {r.key: r.value for r in conn.execute(query)}

    def watermark(self, target: ObjectRef, key: str) -> str | None:
        query = select(t.watermarks.c.value).where(
            *_target_filter(t.watermarks, target), t.watermarks.c.key == key)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    # --- declared SyncJobs ------------------------------------------------------------
    # What the spec sets applied or served declared, so that `reconciler status` without
    # a path can show the SyncJobs (their target, schedule and next run) as it does with one.
    # Kept as one watermark row per job (key `declared`: the job's document).

    def declare_jobs(self, jobs: Iterable[Any], *, replace: bool = False) -> None:
        """Record `jobs` (SyncJob models) as declared; `replace` forgets every other one (a
        daemon's whole spec set), otherwise they are added (an `apply` of one folder)."""
        now = datetime.now(UTC)
        jobs = list(jobs)
        with self.engine.begin() as conn:
            if replace:
                conn.execute(delete(t.watermarks).where(t.watermarks.c.kind == "SyncJob",
                                                        t.watermarks.c.key == DECLARED))
            for job in jobs:
                ref = job.ref
                conn.execute(delete(t.watermarks).where(*_target_filter(t.watermarks, ref),
                                                        t.watermarks.c.key == DECLARED))
                document = job.model_dump(mode="json", by_alias=True, exclude_none=True)
                document.pop("status", None)
                conn.execute(insert(t.watermarks).values(
                    kind=ref.kind, namespace=ref.namespace, name=ref.name, key=DECLARED,
                    value=json.dumps(document, sort_keys=True), run_id=None, updated_at=now))

    def declared_jobs(self) -> list[Any]:
        """The SyncJobs last declared (models), in name order; unreadable ones are skipped."""
        from reconciler.models import SyncJob

        query = select(t.watermarks.c.value).where(t.watermarks.c.kind == "SyncJob",
                                                   t.watermarks.c.key == DECLARED)
        with self.engine.connect() as conn:
            values = list(conn.execute(query).scalars())
        jobs = []
        for value in values:
            try:
                jobs.append(SyncJob.model_validate(json.loads(value)))
            except ValueError:
                continue  # declared by another version of the models
        return sorted(jobs, key=lambda j: j.ref)

    def save_snapshots(self, run_id: str, target: ObjectRef,
                       items: Iterable[tuple[str, Any]]) -> int:
        now = datetime.now(UTC)
        rows = [{"run_id": run_id, "kind": target.kind, "namespace": target.namespace,
                 "name": target.name, "item_key": key, "content": jsonable(content),
                 "created_at": now} for key, content in items]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(t.snapshots), rows)
        return len(rows)

    def save_rejects(self, run_id: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Rows a run refused: dicts with key, stage, rule, column, message, content."""
        batch = [{"run_id": run_id, "item_key": r.get("key"), "stage": r["stage"], "rule": r["rule"],
                  "column_name": r["column"], "message": r["message"], "content": jsonable(r.get("content"))}
                 for r in rows]
        if batch:
            with self.engine.begin() as conn:
                conn.execute(insert(t.rejects), batch)
        return len(batch)

    def rejects(self, run_id: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        query = select(t.rejects).where(t.rejects.c.run_id == run_id).order_by(t.rejects.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [{"key": r.item_key, "stage": r.stage, "rule": r.rule, "column": r.column_name,
                     "message": r.message, "content": r.content} for r in conn.execute(query)]

    # --- schedules ---------------------------------------------------------------------

    def schedule_state(self, job: ObjectRef) -> ScheduleState:
        query = select(t.schedules).where(*_target_filter(t.schedules, job))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return ScheduleState()
        return _schedule_state(row._mapping)

    def schedule_states(self) -> dict[ObjectRef, ScheduleState]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.schedules)).fetchall()
        return {ObjectRef(r.kind, r.namespace, r.name): _schedule_state(r._mapping) for r in rows}

    def save_schedule_state(self, job: ObjectRef, state: ScheduleState) -> None:
        values = {**state.model_dump(), "updated_at": datetime.now(UTC)}
        with self.engine.begin() as conn:
            done = conn.execute(update(t.schedules).where(*_target_filter(t.schedules, job))
                                .values(**values)).rowcount
            if not done:
                conn.execute(insert(t.schedules).values(kind=job.kind, namespace=job.namespace,
                                                        name=job.name, **values))

    def claim_schedule(self, job: ObjectRef, *, expected_next: datetime | None,
                       state: ScheduleState) -> bool:
        """Compare-and-set: store `state` only if the job's next run time is still
        `expected_next`. Several daemons on one store thus start a due run exactly once."""
        values = {**state.model_dump(), "updated_at": datetime.now(UTC)}
        condition = (t.schedules.c.next_run_time.is_(None) if expected_next is None
                     else t.schedules.c.next_run_time == expected_next)
        from sqlalchemy.exc import IntegrityError

        try:
            with self.engine.begin() as conn:
                done = conn.execute(update(t.schedules).where(*_target_filter(t.schedules, job), condition)
                                    .values(**values)).rowcount
                if done:
                    return True
                exists = conn.execute(select(func.count()).select_from(t.schedules)
                                      .where(*_target_filter(t.schedules, job))).scalar()
                if exists:
                    return False  # another daemon moved it on first
                conn.execute(insert(t.schedules).values(kind=job.kind, namespace=job.namespace,
                                                        name=job.name, **values))
                return True
        except IntegrityError:
            return False  # another daemon inserted it first

    # --- proposals (AgentConfig: see proposals.py) --------------------------------------

    def observe_proposals(self, target: ObjectRef, run_id: str, adopt: Mapping[str, Mapping[str, Any]],
                          decisions: Iterable[Mapping[str, Any]] = ()) -> list[str]:
        from reconciler.store.proposals import ProposalBook

        return ProposalBook(self.engine).observe(target, run_id, adopt, decisions)

    def rejected_proposals(self, target: ObjectRef) -> dict[str, str]:
        from reconciler.store.proposals import ProposalBook

        return ProposalBook(self.engine).rejected(target)

    def snapshots(self, run_id: str) -> list[tuple[str, Any]]:
        query = select(t.snapshots.c.item_key, t.snapshots.c.content).where(
            t.snapshots.c.run_id == run_id).order_by(t.snapshots.c.id)
        with self.engine.connect() as conn:
            return [(r.item_key, r.content) for r in conn.execute(query)]


_SCHEDULE_FIELDS = tuple(ScheduleState.model_fields)


def _schedule_state(m: Any) -> ScheduleState:
    """A `schedules` row (its `_mapping`) as a ScheduleState."""
    values: dict[str, Any] = {f: (_aware(m[f]) if isinstance(m[f], datetime) else m[f])
                              for f in _SCHEDULE_FIELDS}
    return ScheduleState(**values)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, synchronous: str = "normal") -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL + NORMAL: commits are not synced one by one (checkpoints are); safe from corruption
    # and from a crash of the process, not from a power loss for the last transactions.
    cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
    cursor.close()


def dumps(value: Any) -> str:
    return json.dumps(jsonable(value), sort_keys=True, ensure_ascii=False)
