"""The four validation stages and what a failed rule does.

1. format (per row, found while mapping): required fields, types, lengths;
2. business (per row, and across the pull): duplicate keys, coordinates inside Korea's
   bounding box, the gugun belonging to the sido;
3. database (against the target, before writing): NOT NULL and CHECK constraints and
   foreign keys of the target table, evaluated on the staged rows in SQL;
4. post-sync (after writing, inside the transaction): inserted / updated / deleted
   counts against the spec's limits.

Every rule has an action: `reject-row` drops the row and records it with the rule and
column that rejected it (queryable by run), `fail-run` fails the whole run, which then
changes nothing. Stage 4 can only fail the run.
"""

from __future__ import annotations

from dataclasses import replace

from reconciler.drivers.aed.mapping import Problem, Row
from reconciler.drivers.aed.regions import gugun_belongs
from reconciler.errors import DriverError
from reconciler.models.aed import AedSourceBindingSpec, RuleAction
from reconciler.models.common import threshold_limit


class ValidationFailed(DriverError):
    """A rule whose action is fail-run found a problem: the run changes nothing."""


def _column_from(spec: AedSourceBindingSpec, field: str) -> int | None:
    for index, mapping in enumerate(spec.mapping.columns):
        if mapping.source_field.lower() == field.lower():
            return index
    return None


class Validator:
    """Stages 1 and 2 for a stream of rows, and the actions of every rule."""

    def __init__(self, spec: AedSourceBindingSpec) -> None:
        v = spec.validation
        self.actions: dict[str, RuleAction] = {
            "required": v.format.required.action, "types": v.format.types.action,
            "lengths": v.format.lengths.action, "duplicateKeys": v.business.duplicate_keys.action,
            "bounds": v.business.bounds.action, "sidoGugun": v.business.sido_gugun.action,
            "constraints": v.database.constraints.action, "foreignKeys": v.database.foreign_keys.action,
        }
        self.names = tuple(m.column for m in spec.mapping.columns)
        self.key_column = spec.target.key_column
        self.bounds = v.business.bounds if v.business.bounds.enabled else None
        self.lat = _column_from(spec, "wgs84Lat")
        self.lon = _column_from(spec, "wgs84Lon")
        self.sido = _column_from(spec, "sido") if v.business.sido_gugun.enabled else None
        self.gugun = _column_from(spec, "gugun") if v.business.sido_gugun.enabled else None
        self.check_duplicates = v.business.duplicate_keys.enabled
        self.seen: set[str] = set()

    def action(self, problem: Problem) -> RuleAction:
        return self.actions.get(problem.rule, RuleAction.REJECT_ROW)

    def business(self, row: Row) -> list[Problem]:
        found: list[Problem] = []
        values = row.values
        if self.bounds is not None and self.lat is not None and self.lon is not None:
            lat, lon = values[self.lat], values[self.lon]
            if lat is not None and lon is not None:
                (lat_min, lat_max), (lon_min, lon_max) = self.bounds.latitude, self.bounds.longitude
                if not (lat_min <= lat <= lat_max and lon_min <= lon <= lon_max):
                    columns = f"{self.names[self.lat]},{self.names[self.lon]}"
                    found.append(Problem("business", "bounds", columns,
                                         f"({lat}, {lon}) is outside latitude {lat_min}–{lat_max}, "
                                         f"longitude {lon_min}–{lon_max}"))
        if self.sido is not None and self.gugun is not None:
            sido, gugun = values[self.sido], values[self.gugun]
            if sido and gugun and not gugun_belongs(str(sido), str(gugun)):
                found.append(Problem("business", "sidoGugun", self.names[self.gugun],
                                     f"{gugun!r} is not a district of {sido!r}"))
        if self.check_duplicates and row.key is not None:
            if row.key in self.seen:
                found.append(Problem("business", "duplicateKeys", self.key_column,
                                     f"key {row.key!r} appears more than once in the source"))
            else:
                self.seen.add(row.key)
        return found

    def check(self, row: Row) -> Row:
        """The row with every stage-1 and stage-2 problem; a clean row has none.

        Raises `ValidationFailed` when a problem's rule has the action fail-run."""
        problems = [*row.problems, *self.business(row)]
        if row.key is None and not any(p.rule == "required" for p in problems):
            problems.append(Problem("format", "required", self.key_column, "the key column is empty"))
        if not problems:
            return row
        self.fail_on(problems, row.key)
        return replace(row, problems=tuple(problems))

    def fail_on(self, problems: list[Problem], key: str | None) -> None:
        for problem in problems:
            if self.action(problem) is RuleAction.FAIL_RUN:
                raise ValidationFailed(
                    f"validation {problem.stage}.{problem.rule} failed (action fail-run) on row "
                    f"{key!r}, column {problem.column}: {problem.message}; nothing was written")


def post_sync(spec: AedSourceBindingSpec, *, inserted: int, updated: int, deleted: int, current: int) -> None:
    """Stage 4: the counts against the spec's limits (raises, so the transaction rolls back)."""
    rule = spec.validation.post_sync
    if not rule.enabled:
        return
    for name, count, limit in (("maxInserted", inserted, rule.max_inserted),
                               ("maxUpdated", updated, rule.max_updated),
                               ("maxDeleted", deleted, rule.max_deleted)):
        if limit is None or current == 0:
            continue
        allowed = threshold_limit(limit, current)
        if count > allowed:
            raise ValidationFailed(
                f"validation postSync.{name} failed: {count} rows, at most {limit} of {current} "
                "allowed; the transaction was rolled back, nothing was written")
