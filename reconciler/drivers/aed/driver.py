"""The AedSourceBinding driver: the AED open API into one table, all or nothing.

`observe` opens one transaction on the target (kept until the run ends), pulls every page
concurrently, maps and validates each row as its page arrives (stages 1 and 2) and
stages the valid ones (COPY), records rejected rows with their rule and column, runs the
target's own constraints on the stage (stage 3), and compares stage and table in SQL.
`diff` turns those figures into a plan: the counts, a sample of the row changes with
their field diffs, and the figures the guards read. `apply` snapshots the rows it will
change into the store, runs the one upsert and, in full mode, the deletions or marks,
checks the counts (stage 4) and commits. `release` rolls back whatever was not
committed: a dry run, a tripped guard, a failed page, a killed process all leave the
table exactly as it was.

A rollback (`RunContext.rollback_to`) puts back every row the runs after the given one
changed, as it was right after that run: as a run up to it recorded leaving the row
(`AFTER` snapshots), else as the first later run found it; it is a recorded run of its own,
and `maxDeletes` weighs it against the rows in the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from reconciler.drivers.aed.guards import AedFacts, aed_guards
from reconciler.drivers.aed.mapping import Mapper, _typed
from reconciler.drivers.aed.targets import TRACKING, Comparison, Target, open_target
from reconciler.drivers.aed.validating import ValidationFailed, Validator, post_sync
from reconciler.engine.classifying import classify
from reconciler.engine.drivers import ApplyResult, RunContext
from reconciler.errors import DriverError, ReconcilerError, TargetError
from reconciler.models import Mode
from reconciler.models.aed import AedSourceBinding, AedSourceBindingSpec, ColumnType, RuleAction
from reconciler.structs.plans import Change, Counts, Plan, PlanMode, Presentation, RejectSample

SAMPLE = 100  # row changes listed per kind in a plan (the counts are always complete)
CREATED = "__created__"  # the snapshot item listing the keys a run created
AFTER = "__after__:"  # prefix of the snapshot items holding a row as a run left it (None: deleted)


@dataclass(slots=True)
class Observed:
    comparison: Comparison
    pages: int = 0
    source_rows: int = 0
    rejected: int = 0
    reject_samples: list[dict[str, Any]] = field(default_factory=list)
    restore: list[tuple[str, dict[str, Any] | None]] | None = None
    current_rows: dict[str, dict[str, Any]] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def _gc_paused() -> AsyncIterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _column_types(spec: AedSourceBindingSpec) -> dict[str, ColumnType]:
    types = {m.column: m.type for m in spec.mapping.columns}
    for column in TRACKING:
        types[column] = (ColumnType.DATE if column.endswith("_date") else
                         ColumnType.INTEGER if column == "consecutive_missing_days" else ColumnType.TEXT)
    return types


def typed_row(values: dict[str, Any], types: dict[str, ColumnType]) -> dict[str, Any]:
    """A snapshot row (JSON: decimals and dates as strings) back in column types."""
    return {c: _typed(v, types.get(c, ColumnType.TEXT)) for c, v in values.items()}


class AedSourceBindingDriver:
    kind: ClassVar[str] = "AedSourceBinding"

    def __init__(self) -> None:
        self._targets: dict[str, Target] = {}

    # --- observe ------------------------------------------------------------------------

    async def observe(self, obj: AedSourceBinding, ctx: RunContext) -> Observed:
        spec = obj.spec
        namespace = obj.metadata.namespace
        url = ctx.secrets.resolve(spec.target.database_url, namespace=namespace).reveal()
        # Every database call runs in a worker thread, one after another: the daemon's event
        # loop (API, scheduler, MQTT) keeps answering during a large pull.
        target = await asyncio.to_thread(open_target, url, spec)
        self._targets[ctx.run_id] = target
        await asyncio.to_thread(target.prepare)
        if ctx.rollback_to:
            return await asyncio.to_thread(self._observe_rollback, spec, target, ctx)
        from reconciler.drivers.aed.fetching import fetch_pages

        service_key = ctx.secrets.resolve(spec.source.service_key, namespace=namespace).reveal()
        mapper, validator = Mapper(spec), Validator(spec)
        observed = Observed(Comparison())
        rejects: list[dict[str, Any]] = []
        kept: set[str] = set()  # keys of rejected rows whose table rows are left as they are
        columns = tuple(m.column for m in spec.mapping.columns)

        def progress(done: int, total: int | None) -> None:
            if ctx.progress is not None:
                ctx.progress("pages fetched", done, total)

        pages = fetch_pages(spec.source, service_key, on_progress=progress, fields=mapper.needed_fields)
        # aclosing: a failure mid-pull stops the fetch at once. The pull allocates millions of
        # short-lived objects and no cycles: the cyclic GC only costs time here (about 1.3 s
        # of a 4.7 s run), so it is paused for the pull and resumed after.
        def take(page: Any) -> None:
            """Validate one page and stage it (CPU and COPY: in a worker thread)."""
            good: list[tuple[Any, ...]] = []
            bad_keys: list[str] = []
            keyless: list[tuple[Any, ...]] = []
            for item in page.items:
                row = validator.check(mapper.row(item))
                if row.problems:
                    rejects.extend({"key": row.key, "stage": p.stage, "rule": p.rule, "column": p.column,
                                    "message": p.message, "content": dict(item)} for p in row.problems)
                    observed.rejected += 1
                    if row.key and row.key not in kept:
                        kept.add(row.key)
                        bad_keys.append(row.key)
                    if not row.key or any(p.column == spec.target.key_column for p in row.problems):
                        # No usable key: the row is recognised in the table by its content.
                        failed = {p.column for p in row.problems}
                        keyless.append(tuple(None if name in failed else value
                                             for name, value in zip(columns, row.values, strict=True)))
                else:
                    good.append(row.values)
            observed.source_rows += len(page.items)
            target.load_stage(good)
            # A rejected row is still in the source: its row in the table is left as it is,
            # never taken for one the source dropped (deleted or marked missing).
            target.stage_rejected_keys(bad_keys)
            target.stage_rejected_rows(keyless)

        async with contextlib.aclosing(pages), _gc_paused():
            async for page in pages:
                observed.pages += 1
                await asyncio.to_thread(take, page)
                if ctx.progress is not None:
                    ctx.progress("rows validated", observed.source_rows, None)
        for key, rule, column, message in await asyncio.to_thread(target.run_database_checks):
            problem_action = validator.actions.get(rule, RuleAction.REJECT_ROW)
            if problem_action is RuleAction.FAIL_RUN:
                raise ValidationFailed(f"validation database.{rule} failed (action fail-run) on row {key!r}, "
                                       f"column {column}: {message}; nothing was written")
            rejects.append({"key": key, "stage": "database", "rule": rule, "column": column,
                            "message": message, "content": None})
            observed.rejected += 1
        observed.comparison = await asyncio.to_thread(target.compare, full=ctx.mode is Mode.FULL,
                                                      samples=SAMPLE)
        observed.reject_samples = rejects[:SAMPLE]
        if rejects and ctx.state is not None:
            await asyncio.to_thread(ctx.state.save_rejects, rejects)
        return observed

    def _observe_rollback(self, spec: AedSourceBindingSpec, target: Target, ctx: RunContext) -> Observed:
        assert ctx.state is not None and ctx.rollback_to is not None
        state, ref = ctx.state, ctx.state.target
        runs = sorted((r for r in state.runs(limit=100_000) if r.id >= ctx.rollback_to),
                      key=lambda r: r.id)
        if not runs or runs[0].id != ctx.rollback_to:
            raise DriverError(f"no run {ctx.rollback_to} of {ref.short}; see `reconciler history`")
        types = _column_types(spec)
        restore: dict[str, dict[str, Any] | None] = {}
        # Every row a later run changed, as it was before the first of them touched it ...
        for run in runs[1:]:
            for key, content in state.snapshots_of(run.id):
                if key == CREATED:
                    for created in content or []:
                        restore.setdefault(created, None)
                elif not key.startswith(AFTER):
                    restore.setdefault(key, typed_row(content, types) if content is not None else None)
        # ... unless a run up to the given one recorded how it left the row: that is the state
        # right after the run (a hand edit made later, which a later run corrected, is not
        # brought back).
        needed = set(restore)
        earlier = sorted((r for r in state.runs(limit=100_000) if r.id <= ctx.rollback_to
                          and not r.dry_run and r.outcome == "succeeded"), key=lambda r: r.id, reverse=True)
        for run in earlier:
            if not needed:
                break
            for key, content in state.snapshots_of(run.id):
                if key.startswith(AFTER) and key[len(AFTER):] in needed:
                    restore[key[len(AFTER):]] = typed_row(content, types) if content is not None else None
                    needed.discard(key[len(AFTER):])
        rows = sorted(restore.items())
        current = target.rows_of([k for k, _ in rows])
        return Observed(target.compare(full=False, samples=0), restore=rows, current_rows=current)

    # --- diff (pure) ----------------------------------------------------------------------

    def diff(self, obj: AedSourceBinding, actual: Observed, ctx: RunContext) -> Plan:
        if actual.restore is not None:
            return self._diff_rollback(obj, actual)
        c = actual.comparison
        changes: list[Change] = []
        for action, key, before, after in c.samples:
            if action == "create":
                changes.append(Change.create(key, after, item="row"))
            elif action == "update":
                changes.append(Change.update(key, before, after, item="row"))
            else:
                changes.append(Change.delete(key, before, item="row"))
        totals = Counts(created=c.inserts, updated=c.updates + c.ageing, deleted=c.absent,
                        unchanged=c.unchanged, invalid=actual.rejected)
        warnings = []
        if actual.rejected:
            recorded = ctx.state is not None and ctx.state.recorded
            where = (f"see `reconciler history --run {ctx.run_id}`" if recorded
                     else "this plan is not recorded; the first ones are listed with it")
            warnings.append(f"{actual.rejected} row(s) rejected by validation; {where}")
        policy = obj.spec.deletion.policy.value
        facts = AedFacts(current_rows=c.current, active_rows=c.active, source_rows=actual.source_rows,
                         valid_rows=c.staged, pages=actual.pages, null_columns=tuple(c.null_columns))
        details = {**facts.shown(), "deletion": policy if ctx.mode is Mode.FULL else "none (incremental)"}
        shown = Presentation(rejects=tuple(
            RejectSample(key=r.get("key"), stage=str(r["stage"]), rule=str(r["rule"]),
                         column=str(r["column"]), message=str(r["message"]))
            for r in actual.reject_samples[:20]))
        return Plan(target=obj.ref, changes=tuple(changes), unchanged=c.unchanged, invalid=actual.rejected,
                    warnings=tuple(warnings), details=details, presentation=shown, totals=totals, facts=facts)

    def _diff_rollback(self, obj: AedSourceBinding, actual: Observed) -> Plan:
        assert actual.restore is not None
        changes: list[Change] = []
        unchanged = 0
        for key, values in actual.restore:
            now = actual.current_rows.get(key)
            if values is None and now is None:
                unchanged += 1
            elif values is None:
                changes.append(Change.delete(key, now, item="row"))
            elif now is None:
                changes.append(Change.create(key, values, item="row"))
            elif {k: now.get(k) for k in values} != values:
                changes.append(Change.update(key, {k: now.get(k) for k in values}, values, item="row"))
            else:
                unchanged += 1
        c = actual.comparison  # the table as it is: what the guards weigh the rollback against
        facts = AedFacts(current_rows=c.current, active_rows=c.active, source_rows=0, valid_rows=0, pages=0)
        return Plan(target=obj.ref, changes=tuple(changes), unchanged=unchanged, mode=PlanMode.ROLLBACK,
                    details={"restoredRows": len(actual.restore), "currentRows": c.current}, facts=facts)

    # --- apply ----------------------------------------------------------------------------

    async def apply(self, plan: Plan, ctx: RunContext) -> ApplyResult:
        try:
            return await asyncio.to_thread(self._apply, plan, ctx)  # off the event loop
        except Exception as exc:
            if isinstance(exc, ReconcilerError) or classify(exc) != "database":
                raise  # ours say what they mean; only the database library's errors are reworded
            # The database's own words without its DETAIL and CONTEXT, which quote row data.
            diag = getattr(exc, "diag", None)
            said = (getattr(diag, "message_primary", None) or str(exc).splitlines()[0]).strip()
            column = getattr(diag, "column_name", None)
            where = f" (column {column})" if column else ""
            obj: AedSourceBinding = ctx.obj  # type: ignore[assignment]
            hint = ("" if obj.spec.validation.database.constraints.enabled else
                    " (with validation.database.constraints on, such rows are rejected instead)")
            raise TargetError(f"the target database refused the write: {said}{where}; nothing was "
                              f"written{hint}") from None

    def _apply(self, plan: Plan, ctx: RunContext) -> ApplyResult:
        obj: AedSourceBinding = ctx.obj  # type: ignore[assignment]
        target = self._targets[ctx.run_id]
        if plan.mode is PlanMode.ROLLBACK:
            return self._apply_rollback(plan, target, ctx)
        full = ctx.mode is Mode.FULL
        before, created = target.snapshot(full=full)
        if ctx.state is not None:
            ctx.state.save_snapshots([*before, (CREATED, created)])
        inserted, updated = target.upsert(ctx.run_id)
        deleted, aged = target.remove_absent(self._last_seen(ctx)) if full else (0, 0)
        post_sync(obj.spec, inserted=inserted, updated=updated, deleted=deleted,
                  current=plan.facts_as(AedFacts).current_rows)
        if ctx.state is not None and not target.all_new:
            # How this run left each row it changed: a rollback to it restores exactly that.
            # (A first load's rows are not repeated here: that would copy the whole table.)
            self._save_after(target, target.changed_keys(), ctx)
        target.commit()
        return ApplyResult(created=inserted, updated=updated + aged, deleted=deleted)

    def _apply_rollback(self, plan: Plan, target: Target, ctx: RunContext) -> ApplyResult:
        keys = [c.key for c in plan.changes]
        now = target.rows_of(keys)
        snapshots: list[tuple[str, Any]] = [(k, now[k]) for k in keys if k in now]
        snapshots.append((CREATED, [k for k in keys if k not in now]))
        if ctx.state is not None:
            ctx.state.save_snapshots(snapshots)
        rows: Sequence[tuple[str, dict[str, Any] | None]] = [
            (c.key, c.after) for c in plan.changes]
        created, updated, deleted = target.restore(rows)
        self._save_after(target, keys, ctx)
        target.commit()
        return ApplyResult(created=created, updated=updated, deleted=deleted)

    @staticmethod
    def _save_after(target: Target, keys: Sequence[str], ctx: RunContext) -> None:
        if ctx.state is None or not keys:
            return
        after = target.rows_of(keys)
        ctx.state.save_snapshots([(AFTER + key, after.get(key)) for key in keys])

    @staticmethod
    def _last_seen(ctx: RunContext) -> date:
        """The date of the previous successful run: when rows absent now were last pulled."""
        today = datetime.now(UTC).date()
        if ctx.state is None:
            return today
        for run in ctx.state.runs(limit=50):
            if run.id != ctx.run_id and not run.dry_run and run.outcome in ("succeeded", "noop"):
                return run.started_at.date()
        return today

    async def release(self, ctx: RunContext) -> None:
        target = self._targets.pop(ctx.run_id, None)
        if target is not None:
            await asyncio.to_thread(target.close)

    def guards(self, obj: AedSourceBinding) -> list[object]:
        return aed_guards(obj.spec.guards)
