"""Guards of an RbacMapping: stop a run that would take too much access away at once.

Two failure modes look like a legitimate diff: an archive that answers with nothing (a
wrong database, a restore in progress, a changed layout) and a template or filter edit that
matches far fewer facts. Both make a full run revoke bindings people rely on. The guards
read the figures the plan carries, typed (`RbacFacts`):

- `maxRevokes` (default 10%): the bindings a run revokes, as a count or as a share of the
  bindings this mapping owns, must not exceed the threshold;
- `allowEmptyFacts: false` (default): when a derive rule found no facts at all, the run
  may not revoke anything — an empty fact set never empties the bindings.

A tripped guard aborts before the first write; on a dry run it becomes a plan warning.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.engine.drivers import RunContext
from reconciler.errors import GuardAborted
from reconciler.models.common import threshold_limit
from reconciler.models.rbac import RbacGuards
from reconciler.structs.plans import Plan


@dataclass(frozen=True, slots=True)
class RbacFacts:
    """The binding figures of one plan, as its guards read them."""

    grant: int  # bindings the plan grants
    revoke: int  # bindings it revokes
    revocable: int  # bindings this mapping owns (what a revocation can take away)
    empty_rules: tuple[str, ...] = ()  # derive rules that found no facts (full runs only)


def _figures(plan: Plan) -> tuple[int, int]:
    facts = plan.facts_as(RbacFacts)
    return facts.revoke, facts.revocable


@dataclass(frozen=True, slots=True)
class MaxRevokes:
    limit: int | str
    name: str = "maxRevokes"

    def check(self, plan: Plan, ctx: RunContext) -> None:
        revokes, owned = _figures(plan)
        allowed = threshold_limit(self.limit, owned)
        if revokes > allowed:
            raise GuardAborted(
                self.name, f"{revokes} of the {owned} bindings this mapping owns would be revoked, at most "
                f"{self.limit} allowed; check the archive and the derive rules, or raise guards.maxRevokes",
                revokes=revokes, owned=owned, limit=str(self.limit))


@dataclass(frozen=True, slots=True)
class EmptyFacts:
    name: str = "allowEmptyFacts"

    def check(self, plan: Plan, ctx: RunContext) -> None:
        empty = plan.facts_as(RbacFacts).empty_rules
        revokes, _ = _figures(plan)
        if empty and revokes:
            raise GuardAborted(
                self.name, f"derive rule(s) {', '.join(empty)} found no facts in the archive and {revokes} "
                "binding(s) would be revoked; an empty fact set never revokes (set guards.allowEmptyFacts: "
                "true if the archive really is empty)", revokes=revokes, rules=",".join(empty))


def rbac_guards(spec: RbacGuards) -> list[object]:
    guards: list[object] = [MaxRevokes(spec.max_revokes)]
    if not spec.allow_empty_facts:
        guards.insert(0, EmptyFacts())
    return guards
