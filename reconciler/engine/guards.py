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
    from reconciler.engine.planning import Plan


class Guard(Protocol):
    name: str

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
