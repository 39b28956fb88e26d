"""Anomaly guards of an AedSourceBinding: stop a run that looks wrong before any write.

The peers' worst failures (dlt, Airbyte, bruin) were loads that silently emptied or
truncated a table after a bad pull. These guards read the figures the plan carries, typed
(`AedFacts`): the rows in the table now, the valid rows pulled, the owned columns that
came back all NULL; and the plan's counts for deletions. A rollback plan (restoring a
recorded run) carries no pull and is not checked by them, except `maxDeletes`, which
weighs the deletions of a run and of a rollback against the rows in the table. A pull
whose rows were all rejected is stopped too (`noValidRows`): a first load cannot be
checked against the table, and "nothing to write" must not read as success. A tripped
guard aborts the run with the table untouched; on a dry run it becomes a plan warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.engine.drivers import RunContext
from reconciler.errors import GuardAborted
from reconciler.models.aed import AedGuards
from reconciler.models.common import threshold_limit
from reconciler.structs.plans import Plan, PlanMode


@dataclass(frozen=True, slots=True)
class AedFacts:
    """The figures of one pull against the table, as the plan carries them."""

    current_rows: int  # rows in the table now
    active_rows: int  # of those, rows not marked missing
    source_rows: int  # rows the API returned
    valid_rows: int  # rows that passed validation (staged)
    pages: int
    null_columns: tuple[str, ...] = ()  # owned columns that would be NULL in every row

    def shown(self) -> dict[str, Any]:
        """The figures as `details` shows them (history, API, pull-request comments)."""
        return {"currentRows": self.current_rows, "activeRows": self.active_rows,
                "sourceRows": self.source_rows, "validRows": self.valid_rows, "pages": self.pages,
                "nullColumns": list(self.null_columns)}


@dataclass(frozen=True, slots=True)
class EmptySource:
    """A pull with no rows at all (an error envelope read as empty, a broken gateway)."""

    name: str = "allowEmpty"

    def check(self, plan: Plan, ctx: RunContext) -> None:
        if plan.mode is PlanMode.ROLLBACK:
            return
        if plan.facts_as(AedFacts).source_rows == 0:
            raise GuardAborted(self.name, "the source returned no rows; set guards.allowEmpty: true to "
                               "accept an empty registry", sourceRows=0)


@dataclass(frozen=True, slots=True)
class NoValidRows:
    """A pull with rows, none of which passed validation (every coordinate missing, a changed
    format): nothing could be written, and a run that says `noop` would hide it. Always on."""

    name: str = "noValidRows"

    def check(self, plan: Plan, ctx: RunContext) -> None:
        if plan.mode is PlanMode.ROLLBACK:
            return
        facts = plan.facts_as(AedFacts)
        if facts.source_rows > 0 and facts.valid_rows == 0:
            raise GuardAborted(self.name, f"all {facts.source_rows} rows of the source were rejected by "
                               "validation; nothing would be written (see the run's rejects for the rules "
                               "and columns)", sourceRows=facts.source_rows, validRows=0)


@dataclass(frozen=True, slots=True)
class TableMaxDeletes:
    """`maxDeletes` measured against the table: at most `limit` rows (a count, or a share of
    the rows in the table now) deleted or marked missing, by a run or by a rollback."""

    limit: int | str
    name: str = "maxDeletes"

    def check(self, plan: Plan, ctx: RunContext) -> None:
        deletes = plan.counts.deleted
        current = plan.facts_as(AedFacts).current_rows
        allowed = threshold_limit(self.limit, current)
        if deletes > allowed:
            raise GuardAborted(self.name, f"{deletes} deletes planned, at most {self.limit} allowed "
                               f"({current} rows in the table)", deletes=deletes, limit=str(self.limit),
                               current=current)


@dataclass(frozen=True, slots=True)
class RowCountChange:
    """The valid rows pulled differ from the rows in the table by more than `limit`
    (a count, or a share of the table). A first load into an empty table passes."""

    limit: int | str
    name: str = "maxRowCountChange"

    def check(self, plan: Plan, ctx: RunContext) -> None:
        if plan.mode is PlanMode.ROLLBACK:
            return
        facts = plan.facts_as(AedFacts)
        current, pulled = facts.active_rows, facts.valid_rows
        if current == 0:
            return
        allowed = threshold_limit(self.limit, current)
        change = abs(pulled - current)
        if change > allowed:
            share = 100.0 * change / current
            raise GuardAborted(
                self.name, f"the pull has {pulled} valid rows against {current} in the table "
                f"({share:.1f}% change, at most {self.limit} allowed)",
                pulled=pulled, current=current, limit=str(self.limit))


@dataclass(frozen=True, slots=True)
class AllNullColumns:
    """An owned column that would hold only NULLs (a renamed or dropped API field)."""

    name: str = "forbidAllNullColumns"

    def check(self, plan: Plan, ctx: RunContext) -> None:
        if plan.mode is PlanMode.ROLLBACK:
            return
        columns = plan.facts_as(AedFacts).null_columns
        if columns:
            raise GuardAborted(self.name, f"owned column(s) {', '.join(columns)} would be NULL in every "
                               "row; did the API rename a field?", columns=",".join(columns))


def aed_guards(spec: AedGuards) -> list[object]:
    guards: list[object] = [NoValidRows(), RowCountChange(spec.max_row_count_change)]
    if not spec.allow_empty:
        guards.insert(0, EmptySource())
    if spec.forbid_all_null_columns:
        guards.append(AllNullColumns())
    if spec.max_deletes is not None:
        guards.append(TableMaxDeletes(spec.max_deletes))
    return guards
