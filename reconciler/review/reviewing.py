"""What a spec change will do to the live targets: one read-only plan per changed object.

Each object the change adds or changes is planned at the head revision against its live
target: the orchestrator's dry run (observe and diff, guards evaluated as warnings, never
apply), recorded in the store as a `planned` run with trigger `git`, or with
`record=False` not recorded at all (the store is then only read, for the inventory of what
the reconciler owns: read-only credentials in CI). A removed object is planned as its
deletion: under `deletionPolicy: Delete` the plan of its teardown (what would be pruned);
otherwise a note that the target is left as it is. Objects that did not change are not
planned.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.engine.orchestrator import Orchestrator
from reconciler.errors import ReconcilerError
from reconciler.models import Mode
from reconciler.review.revisions import ObjectChange, RevisionDiff, SpecChange
from reconciler.structs.plans import Plan
from reconciler.structs.runs import Outcome, RunResult, Trigger

GUARD_WARNING = "would abort the run"


@dataclass(frozen=True, slots=True)
class TargetReview:
    """The plan of one changed object (None when nothing is planned, with the reason)."""

    change: SpecChange
    result: RunResult | None = None
    note: str = ""

    @property
    def plan(self) -> Plan | None:
        return self.result.plan if self.result is not None else None

    @property
    def failed(self) -> bool:
        return self.result is not None and self.result.outcome is Outcome.FAILED

    @property
    def guards_tripped(self) -> tuple[str, ...]:
        plan = self.plan
        return tuple(w for w in plan.warnings if GUARD_WARNING in w) if plan is not None else ()

    @property
    def has_changes(self) -> bool:
        plan = self.plan
        return plan is not None and (plan.has_changes or bool(plan.drift))


@dataclass(frozen=True, slots=True)
class Review:
    diff: RevisionDiff
    targets: tuple[TargetReview, ...]

    @property
    def changed(self) -> bool:
        return any(t.has_changes for t in self.targets)

    @property
    def errors(self) -> int:
        return sum(1 for t in self.targets if t.failed)

    @property
    def guards_tripped(self) -> int:
        return sum(1 for t in self.targets if t.guards_tripped)

    @property
    def warnings(self) -> int:
        return sum(len(t.plan.warnings) for t in self.targets if t.plan is not None)

    def summary(self) -> dict[str, int]:
        """The figures a CI status is set from (also embedded in the Markdown)."""
        return {"objects": len(self.targets), "changed": sum(1 for t in self.targets if t.has_changes),
                "guardsTripped": self.guards_tripped, "errors": self.errors, "warnings": self.warnings}


async def review_changes(orchestrator: Orchestrator, diff: RevisionDiff, *,
                         mode: Mode = Mode.FULL, record: bool = True) -> Review:
    """Plan every added, changed and removed object of `diff`, one after the other.
    `record=False` leaves the store untouched (read-only credentials in CI)."""
    reviews: list[TargetReview] = []
    for change in diff.changes:
        reviews.append(await _review_one(orchestrator, change, diff.head, mode, record))
    return Review(diff, tuple(reviews))


async def _review_one(orchestrator: Orchestrator, change: SpecChange, head: str, mode: Mode,
                      record: bool) -> TargetReview:
    obj = change.head if change.change is not ObjectChange.REMOVED else change.base
    assert obj is not None
    if not orchestrator.drivers.has(obj.KIND):
        return TargetReview(change, note=f"no driver for kind {obj.KIND} in this installation; not planned")
    if change.change is not ObjectChange.REMOVED:
        result = await orchestrator.run(obj, trigger=Trigger.GIT, mode=mode, dry_run=True, revision=head,
                                        record=record)
        return TargetReview(change, result)
    try:
        removal = await orchestrator.delete(obj, trigger=Trigger.GIT, dry_run=True, revision=head,
                                            record=record)
    except ReconcilerError as exc:
        return TargetReview(change, note=f"removal not planned: {exc}")
    if removal is None:
        return TargetReview(change, note="removing it prunes nothing: the target is left as it is "
                            "(deletionPolicy Orphan)")
    return TargetReview(change, removal, note="removing it prunes what the reconciler wrote "
                        "(deletionPolicy Delete)")
