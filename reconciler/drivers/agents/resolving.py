"""Resolving hand edits for the whole run: last-write-wins and priority.

Key by key, `ownership.decide` holds a drifted key under `last-write-wins` and `priority`
(as under `manual-review`); the plan's `details["adopt"]` then lists, per held key, the
canonical field it renders, the client, the file's value read back into canonical form
(`proposed`) and the policy. `resolve` looks at all of them together:

- **last-write-wins**: an edit newer than the spec (the file's mtime against the spec
  file's mtime, or the commit time) is *accepted*; an older one, or a tie, is *imposed*
  (the spec is written over it). Without a known spec time (a git revision) the edit is
  proposed instead.
- **priority**: of the clients that edited the same canonical field, the one with the
  highest target `priority` wins (the first target on a tie); its edit is accepted unless
  its priority is lower than the spec's own (`conflictPolicy.specPriority`): then it is
  proposed. The other clients' edits are imposed over.

An edit that weakens a security rule (`details["adopt"][key]["weakens"]`: a deny or ask
removed or lowered, where the path does not allow weakening) is never resolved: it is
proposed, for a person to accept or reject. So is an edit the client's adapter cannot read
back into the spec (its `proposed` is an error): it is neither taken nor written over. An
edit that is items a client added to a list (`foreign`) cannot be written over when the
spec wins: items others put in a list are never removed, so it is proposed too, rather than
"imposed" by a run that changes nothing. A rule moved from one level list to another (`ask`
to `allow`) is one held key, the field of that rule's level (`permissions[RULE]`, see
`planning.rule_level`): one decision.

An accepted edit becomes a spec patch (canonical field → value); the driver re-plans with
the patched spec, so the same run writes the winning value into every other client, and
writes the patch into the spec file. Only edits (drift) are resolved: items that were in
a list before the reconciler first saw it stay proposals. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.drivers.agents.entries import parse_key
from reconciler.drivers.agents.planning import FileState
from reconciler.models.agents import AgentConfig, ConflictPolicy


@dataclass(frozen=True, slots=True)
class Decision:
    """What the resolution did with one held key (recorded on the run and the proposal)."""

    key: str
    canonical: str
    client: str | None
    policy: str
    outcome: str  # accepted | imposed | proposed | overwritten
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "canonical": self.canonical, "client": self.client,
                "policy": self.policy, "outcome": self.outcome, "reason": self.reason}


@dataclass(slots=True)
class Resolution:
    patches: dict[str, Any] = field(default_factory=dict)  # canonical → accepted value
    forced: dict[str, ConflictPolicy] = field(default_factory=dict)  # key → policy this run
    decisions: list[Decision] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.patches and not self.forced


def _priority(obj: AgentConfig, client: str | None, place: Mapping[str, Any] | None) -> int:
    for target in obj.spec.targets:
        if str(target.client) == client and (place is None or (
                str(target.scope) == place.get("scope")
                and (target.effective_root.rstrip("/") or "/") == place.get("root"))):
            return target.priority
    return 0


def resolve(obj: AgentConfig, adopt: Mapping[str, Mapping[str, Any]], drift: set[str],
            files: Mapping[str, FileState], spec_changed_at: float | None) -> Resolution:
    """The accepted patches and imposed keys of one run (see the module docstring)."""
    out = Resolution()
    by_field: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for key, info in adopt.items():
        policy = ConflictPolicy(info.get("policy", ConflictPolicy.ADOPT))
        if not policy.resolves or key not in drift or not info.get("canonical"):
            continue
        if info.get("weakens"):
            # Security rules are never weakened silently: no strategy takes such an edit
            # on its own (it would reach every client); it waits for a person.
            out.decisions.append(Decision(
                key, str(info["canonical"]), info.get("client"), str(policy), "proposed",
                f"the edit weakens {'; '.join(info['weakens'])}: proposed for review (allowWeakening "
                "on the path lets the strategy take it)"))
            continue
        proposed = info.get("proposed")
        if isinstance(proposed, Mapping) and "error" in proposed:
            # An edit the spec cannot take (read back) is neither taken nor written over: the
            # person's edit stays, and its proposal says why (`review reject` re-imposes).
            out.decisions.append(Decision(
                key, str(info["canonical"]), info.get("client"), str(policy), "proposed",
                f"{proposed['error']}: proposed for review (accept cannot take it: edit the spec by "
                "hand, or reject it)"))
            continue
        by_field.setdefault(str(info["canonical"]), []).append((key, info))
    spec_priority = obj.spec.conflict_policy.spec_priority
    for canonical, edits in sorted(by_field.items()):
        policy = ConflictPolicy(edits[0][1]["policy"])

        def mtime(item: tuple[str, Mapping[str, Any]]) -> float:
            return files[parse_key(item[0]).file].mtime or 0.0

        def note(key: str, info: Mapping[str, Any], outcome: str, reason: str,
                 canonical: str = canonical, policy: ConflictPolicy = policy) -> None:
            out.decisions.append(Decision(key, canonical, info.get("client"), str(policy), outcome, reason))

        def impose(key: str, info: Mapping[str, Any], outcome: str, reason: str) -> None:
            """The spec wins over this edit: written over it, unless the edit is items the file
            added to a list, which are never removed (it then waits for a person)."""
            if info.get("foreign"):
                note(key, info, "proposed", f"{reason}, but items others add to a list are never removed "
                     "(authority: Full on the path would take the list over): proposed for review")
            else:
                out.forced[key] = ConflictPolicy.OVERRIDE
                note(key, info, outcome, f"{reason}: the spec is written over the edit")

        winner: tuple[str, Mapping[str, Any]] | None = None
        if policy is ConflictPolicy.LAST_WRITE_WINS:
            newest = max(edits, key=mtime, default=None)
            if newest is None:
                pass
            elif spec_changed_at is None:
                note(newest[0], newest[1], "proposed", "the spec's change time is unknown (not a "
                     "spec file): the edit is proposed for review")
                newest = None
            elif mtime(newest) > spec_changed_at:
                winner = newest
            for key, info in edits:
                if winner is not None and key == winner[0]:
                    note(key, info, "accepted", "the file changed after the spec: the edit is "
                         "written back into the spec and to every other client")
                elif newest is not None or winner is not None or spec_changed_at is not None:
                    impose(key, info, "imposed" if winner is None else "overwritten",
                           "the spec changed after the file (or at the same time)" if winner is None
                           else "a newer edit of the same field in another client won")
        else:  # priority
            ranked = sorted(edits, key=lambda item: -_priority(obj, item[1].get("client"),
                                                               item[1].get("place")))
            best = ranked[0] if ranked else None
            if best is not None and _priority(obj, best[1].get("client"),
                                              best[1].get("place")) >= spec_priority:
                winner = best
            for key, info in edits:
                if winner is not None and key == winner[0]:
                    note(key, info, "accepted", "the highest-priority client's edit: written back "
                         "into the spec and to every other client")
                elif winner is not None:
                    impose(key, info, "overwritten", f"a higher-priority client "
                           f"({winner[1].get('client')}) edited the same field")
                else:
                    note(key, info, "proposed", f"the client's priority is lower than the spec's "
                         f"({spec_priority}): the edit is proposed for review")
        if winner is not None:
            out.patches[canonical] = winner[1].get("proposed")
            # Every other key of this field takes the new spec value, edited or not.
            for key, info in adopt.items():
                if info.get("canonical") == canonical and key != winner[0] and not (
                        info.get("foreign") and key in drift):
                    out.forced[key] = ConflictPolicy.OVERRIDE
    return out
