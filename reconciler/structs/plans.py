"""Plans: the typed list of changes a run would make to one target.

A `Change` is one keyed item to create, update or delete, with its before and after
values and, for updates, the field-level differences (computed with deepdiff on the one
item, never on a whole table: drivers compare large sets by key and content hash first and
build changes only for the items that differ). A `Plan` is the changes plus the counts of
what stays as it is, the items the driver rejected, and warnings. Both are immutable: a
step that alters a plan returns a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, TypeVar

from reconciler.models import ObjectRef

_F = TypeVar("_F")


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed leaf inside an item: its path (`a.b[0]`), old and new value."""

    path: str
    before: Any = None
    after: Any = None


def _format_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_changes(before: Any, after: Any) -> tuple[FieldChange, ...]:
    """The leaf-level differences between two JSON-like values, in a stable order."""
    if before == after:
        return ()
    if not isinstance(before, dict | list) or not isinstance(after, dict | list):
        return (FieldChange("", before, after),)
    from deepdiff import DeepDiff  # imported on first use: deepdiff is slow to import

    tree = DeepDiff(before, after, view="tree", verbose_level=2)
    found: list[FieldChange] = []
    for report in tree.values():
        for level in report:
            path = _format_path(level.path(output_format="list"))
            old = None if _is_missing(level.t1) else level.t1
            new = None if _is_missing(level.t2) else level.t2
            found.append(FieldChange(path, old, new))
    return tuple(sorted(found, key=lambda c: c.path))


def _is_missing(value: Any) -> bool:
    return type(value).__name__ == "NotPresent"


@dataclass(frozen=True, slots=True)
class Change:
    """One item to create, update or delete, identified by a stable key."""

    action: Action
    key: str
    before: Any = None
    after: Any = None
    fields: tuple[FieldChange, ...] = ()
    item: str = "item"

    @classmethod
    def create(cls, key: str, after: Any, *, item: str = "item") -> Change:
        return cls(Action.CREATE, key, None, after, (), item)

    @classmethod
    def update(cls, key: str, before: Any, after: Any, *, item: str = "item") -> Change:
        return cls(Action.UPDATE, key, before, after, field_changes(before, after), item)

    @classmethod
    def delete(cls, key: str, before: Any, *, item: str = "item") -> Change:
        return cls(Action.DELETE, key, before, None, (), item)


@dataclass(frozen=True, slots=True)
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    invalid: int = 0

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted

    def summary(self) -> str:
        """`3 created, 1 updated, 0 deleted, 60 unchanged` (and `, N invalid` when there are
        any): how every front end, event and condition states a run's counts."""
        text = (f"{self.created} created, {self.updated} updated, {self.deleted} deleted, "
                f"{self.unchanged} unchanged")
        return text + (f", {self.invalid} invalid" if self.invalid else "")

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
        }


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a driver decided in a plan that is news of its own (a two-way sync decision:
    a hand edit accepted, overwritten or proposed). A real run publishes each as an event
    (`type`, with `data`); a dry run only shows them."""

    type: str
    reason: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FileDiff:
    """A file's unified diff (drivers that write whole files: AgentConfig)."""

    path: str
    diff: str


@dataclass(frozen=True, slots=True)
class SpecProposal:
    """An edit found in a target that the spec could take: `spec.<canonical> = proposed`,
    with how it reads to a reviewer (`note`, e.g. what it weakens)."""

    key: str
    canonical: str
    proposed: Any
    note: str = ""


@dataclass(frozen=True, slots=True)
class RejectSample:
    """One item refused by validation, as plans show it (never the item's content)."""

    key: str | None
    stage: str
    rule: str
    column: str
    message: str


@dataclass(frozen=True, slots=True)
class Verification:
    """Proof mode's verdict (`plan --verify`): the plan applied in a rolled-back
    transaction, then a second diff; `converged` when that diff is empty."""

    converged: bool
    remaining: int
    applied: Counts
    sample: tuple[str, ...] = ()
    """Keys of the first changes still left after applying."""


@dataclass(frozen=True, slots=True)
class Presentation:
    """What people see of a plan beyond its changes, typed: every renderer (text, Markdown,
    JSON, the PR comment, the CLI's proof line) reads these fields, never a driver's keys."""

    files: tuple[FileDiff, ...] = ()
    proposals: tuple[SpecProposal, ...] = ()
    rejects: tuple[RejectSample, ...] = ()
    verification: Verification | None = None

    @staticmethod
    def file_diffs(diffs: Mapping[str, str]) -> tuple[FileDiff, ...]:
        return tuple(FileDiff(path, diff) for path, diff in diffs.items())

    def diff_of_files(self) -> dict[str, str]:
        return {f.path: f.diff for f in self.files}

    def as_details(self) -> dict[str, Any]:
        """The JSON plan's `details` keys for these fields (the documented output format)."""
        out: dict[str, Any] = {}
        if self.files:
            out["files"] = self.diff_of_files()
        if self.rejects:
            out["rejects"] = [{"key": r.key, "stage": r.stage, "rule": r.rule, "column": r.column,
                               "message": r.message} for r in self.rejects]
        if self.verification is not None:
            v = self.verification
            out["verification"] = {"converged": v.converged, "rolledBack": True,
                                   "applied": v.applied.as_dict(), "remaining": v.remaining,
                                   "sample": list(v.sample)}
        return out


class PlanMode(StrEnum):
    """What a plan does: bring the target to the spec, or back to a recorded run."""

    RECONCILE = "reconcile"
    ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run would do to one target.

    Three typed channels keep what a plan carries apart: `facts` (the driver's figures, a
    frozen dataclass such as `AedFacts`, read by its guards: a renamed figure is a type
    error, not a guard that passes), `handle` (what apply needs that the plan computed,
    typed by the driver; never recorded, rendered or compared) and `presentation` (what people
    see: file diffs, proposals, rejected samples, a proof's verdict; typed, read by every
    renderer). `details` holds a driver's further figures for the JSON plan, read by no
    guard, no apply and no renderer.
    """

    target: ObjectRef
    changes: tuple[Change, ...] = ()
    unchanged: int = 0
    invalid: int = 0
    warnings: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
    presentation: Presentation = field(default_factory=Presentation)
    mode: PlanMode = PlanMode.RECONCILE
    notices: tuple[Notice, ...] = ()
    facts: Any = None
    handle: Any = field(default=None, compare=False, repr=False)
    drift: tuple[str, ...] = ()
    """Keys changed outside the reconciler (hand or client edits) that this plan found."""
    inventory: tuple[str, ...] | None = None
    """Every key the target owns once this plan is applied (None: derived from the changes).
    Recorded on every run that is not a dry run, even when nothing changes."""
    watermarks: dict[str, str] = field(default_factory=dict)
    """Bookkeeping recorded with the inventory (for example the last value written per key)."""
    totals: Counts | None = None
    """The full counts when `changes` is only a sample (large row sets)."""
    takeovers: tuple[str, ...] = ()
    """Keys that exist in the target but were never written by the reconciler, and that this
    plan overwrites or removes (each is a plan line of its own and a warning on apply)."""
    weakens: tuple[str, ...] = ()
    """Security rules this plan would weaken that the reconciler did not itself write (a deny
    removed, a deny turned into ask or allow, an ask into allow): one line each. The driver's
    guard refuses to apply such a plan unless the spec allows it for that path."""
    pending: tuple[str, ...] = ()
    """Keys the spec declares that this plan leaves unwritten on purpose (a conflict policy
    holds them: Adopt, IfNotPresent, Ignore). The target is not in sync while any remains."""

    @property
    def counts(self) -> Counts:
        if self.totals is not None:
            return self.totals
        by_action = {a: 0 for a in Action}
        for change in self.changes:
            by_action[change.action] += 1
        return Counts(
            created=by_action[Action.CREATE],
            updated=by_action[Action.UPDATE],
            deleted=by_action[Action.DELETE],
            unchanged=self.unchanged,
            invalid=self.invalid,
        )

    @property
    def has_changes(self) -> bool:
        return bool(self.changes) or self.counts.changed > 0

    @property
    def in_sync(self) -> bool:
        """Nothing to change, no drift, and nothing the spec declares left unwritten."""
        return not self.has_changes and not self.drift and not self.pending

    @property
    def sampled(self) -> bool:
        """Whether `changes` lists only some of the changes (see `totals`)."""
        return self.totals is not None and self.totals.changed > len(self.changes)

    def facts_as(self, kind: type[_F]) -> _F:
        """The plan's facts as `kind`; a guard given a plan without them is a bug, not a pass."""
        if not isinstance(self.facts, kind):
            raise TypeError(f"expected {kind.__name__} facts on the plan of {self.target.short}, "
                            f"got {type(self.facts).__name__}")
        return self.facts

    def with_warnings(self, *warnings: str) -> Plan:
        return replace(self, warnings=(*self.warnings, *warnings))

    def masked(self, scrub: Callable[[str], str]) -> Plan:
        """A copy with `scrub` applied to every string inside it (secret masking)."""
        return replace(
            self,
            changes=tuple(_map_strings(c, scrub) for c in self.changes),
            warnings=tuple(scrub(w) for w in self.warnings),
            weakens=tuple(scrub(w) for w in self.weakens),
            details=_map_strings(self.details, scrub),
            presentation=_map_strings(self.presentation, scrub),
        )


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, Change):
        return replace(
            value,
            key=fn(value.key),
            before=_map_strings(value.before, fn),
            after=_map_strings(value.after, fn),
            fields=tuple(_map_strings(f, fn) for f in value.fields),
        )
    if isinstance(value, FieldChange):
        return FieldChange(fn(value.path), _map_strings(value.before, fn), _map_strings(value.after, fn))
    if isinstance(value, FileDiff | SpecProposal | RejectSample | Presentation):
        return replace(value, **{f.name: _map_strings(getattr(value, f.name), fn) for f in fields(value)})
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_map_strings(v, fn) for v in value)
    return value
