"""Guards: checks between diff and apply that can stop a run before anything is written.

A guard looks at the plan (and the run context) and raises `GuardAborted` with its name
and figures when the plan is too dangerous to apply: too many deletes, a source that came
back empty, a column about to become all NULL. On a dry run a tripping guard becomes a
warning on the plan instead, so that a reviewer sees that the real run would stop.
Drivers add their own guards from their spec; `MaxDeletes` is built in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from reconciler.errors import GuardAborted
from reconciler.models.common import threshold_limit

if TYPE_CHECKING:
    from reconciler.engine.drivers import RunContext
    from reconciler.structs.plans import Plan


class Guard(Protocol):
    @property
    def name(self) -> str:
        """How the guard is named in messages (read-only: guards may be frozen dataclasses)."""

    def check(self, plan: Plan, ctx: RunContext) -> None:
        """Raise `GuardAborted` to stop the run."""


@dataclass(frozen=True, slots=True)
class MaxDeletes:
    """Abort when a plan deletes more than `limit` items (a count, or `'10%'` of the
    items the target holds now: deleted + updated + unchanged)."""

    limit: int | str
    name: str = "maxDeletes"

    def check(self, plan: Plan, ctx: RunContext) -> None:
        counts = plan.counts
        current = counts.deleted + counts.updated + counts.unchanged
        allowed = threshold_limit(self.limit, current)
        if counts.deleted > allowed:
            raise GuardAborted(
                self.name,
                f"{counts.deleted} deletes planned, at most {self.limit} allowed "
                f"({current} items in the target)",
                deletes=counts.deleted,
                limit=str(self.limit),
                current=current,
            )


@dataclass(frozen=True, slots=True)
class NeverWeaken:
    """Abort when a plan weakens security rules the reconciler did not write (`Plan.weakens`:
    a deny removed, a deny turned into ask or allow, an ask into allow). Always on: a driver
    leaves a weakening out of `weakens` only where the spec explicitly allows it."""

    name: str = "neverWeaken"

    def check(self, plan: Plan, ctx: RunContext) -> None:
        if plan.weakens:
            shown = "; ".join(plan.weakens[:5]) + (" …" if len(plan.weakens) > 5 else "")
            raise GuardAborted(
                self.name,
                f"{len(plan.weakens)} change(s) would weaken security rules the reconciler did not "
                f"write: {shown}. Nothing was written; allow it per path in the spec "
                "(conflictPolicy.paths[].allowWeakening) if that is intended",
                weakens=len(plan.weakens),
            )


@dataclass(frozen=True, slots=True)
class RefuseDrift:
    """Abort instead of reverting hand edits (`apply --refuse-drift`): the plan would put back
    keys someone changed outside the reconciler."""

    name: str = "refuseDrift"

    def check(self, plan: Plan, ctx: RunContext) -> None:
        changed = {c.key for c in plan.changes}
        reverted = [key for key in plan.drift if key in changed]
        if reverted:
            shown = ", ".join(reverted[:5]) + (" …" if len(reverted) > 5 else "")
            raise GuardAborted(
                self.name,
                f"{len(reverted)} key(s) were changed outside the reconciler and would be reverted: "
                f"{shown}; nothing was written (take the edit into the spec, or apply without "
                "--refuse-drift to revert it)",
                reverted=len(reverted),
            )
