"""Per-key ownership: what an owned key should become, and whether someone else changed it.

Three values decide the fate of one key: `desired` (what the spec renders now), `actual`
(what the file holds) and `last` (what the reconciler wrote the last time it applied).
A key is *in sync* when writing `desired` would not change the file. Otherwise it is
*new* (never written and absent), *taken over* (present but never ours), *changed by the
spec* (the file still holds `last`), *drifted* (the file no longer holds `last`: a hand
or client edit), a *conflict* (both), or *pruned* (ours, no longer in the spec).

The conflict policy then says what to do about drift and conflicts: `Override` writes the
spec, `Merge` writes the spec but keeps fields others added inside owned objects,
`IfNotPresent` writes only what is missing, `Ignore` leaves the key, `Adopt` leaves it and
proposes a spec patch (the run reports `Drifted`). Sub-paths that belong to the client
(`preserve`) survive every policy. A list inside an owned value is one value and is
replaced whole under every policy, `Merge` included (a server's `args` merged with its old
`args` would be a different command), unless it is named in `sets`: then items others put
in it (those the reconciler did not write last time) stay, under every policy.
Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from reconciler.drivers.agents.documents import MISSING
from reconciler.models.agents import Authority, ConflictPolicy, ConflictPolicyConfig, PathPolicy

if TYPE_CHECKING:
    from reconciler.drivers.agents.entries import Entry


class State(StrEnum):
    IN_SYNC = "in-sync"
    NEW = "new"
    TAKEOVER = "takeover"  # present in the file, never written by the reconciler
    SPEC_CHANGED = "changed-by-spec"
    DRIFT = "drift"  # changed by hand (or by the client)
    CONFLICT = "conflict"  # changed by hand and by the spec
    PRUNE = "prune"  # owned, removed from the spec


Paths = Sequence[tuple[str, ...]]


def _children(paths: Paths, prefix: tuple[str, ...]) -> set[str]:
    return {p[len(prefix)] for p in paths if len(p) == len(prefix) + 1 and p[: len(prefix)] == prefix}


def merged(actual: Any, desired: Any, policy: ConflictPolicy, preserve: Paths = (),
           prefix: tuple[str, ...] = (), *, sets: Paths = (), last: Any = MISSING) -> Any:
    """The value the key gets when `desired` is written over `actual` under `policy`.

    `last` (what the reconciler wrote last time, at the same depth) tells, inside the
    `sets` sub-lists, the items it wrote from the items others added."""
    if actual is MISSING or desired is MISSING:
        return desired
    if isinstance(desired, Mapping) and isinstance(actual, Mapping):
        out: dict[str, Any] = {}
        keep = _children(preserve, prefix)
        before = last if isinstance(last, Mapping) else {}
        for key, value in actual.items():
            if key in desired:
                out[key] = merged(value, desired[key], policy, preserve, (*prefix, key), sets=sets,
                                  last=before.get(key, MISSING))
            elif policy is ConflictPolicy.MERGE or key in keep:
                out[key] = value
            elif (*prefix, key) in sets and isinstance(value, list):
                ours = prior if isinstance(prior := before.get(key), list) else []
                foreign = [item for item in value if item not in ours]
                if foreign:
                    out[key] = foreign
        for key, value in desired.items():
            if key not in out:
                out[key] = value
        return out
    if isinstance(desired, list) and isinstance(actual, list) and prefix in sets:
        ours = last if isinstance(last, list) else []
        kept = [item for item in actual if item in desired or item not in ours]
        return kept + [item for item in desired if item not in actual]
    return desired


def holds(actual: Any, value: Any, policy: ConflictPolicy, preserve: Paths = (), *,
          sets: Paths = (), last: Any = MISSING) -> bool:
    """Whether `actual` already reflects `value` (writing it would change nothing)."""
    if actual is MISSING:
        return value is MISSING
    return _equal(merged(actual, value, policy, preserve, sets=sets, last=last), actual)


def _equal(a: Any, b: Any) -> bool:
    # Key order is not a difference (JSON objects are unordered), list order is.
    return a == b


@dataclass(frozen=True, slots=True)
class Decision:
    state: State
    write: bool  # the key changes in the file (set or delete)
    value: Any  # the value to write (MISSING = delete the key)
    held: bool = False  # drift left in place under Adopt (reported as Drifted)
    release: bool = False  # ownership dropped (pruned, or left behind by policy)

    @property
    def drifted(self) -> bool:
        return self.state in (State.DRIFT, State.CONFLICT)


def decide(desired: Any, actual: Any, last: Any, *, owned: bool, policy: ConflictPolicy,
           preserve: Paths = (), sets: Paths = ()) -> Decision:
    """What to do with one key. `desired` MISSING = removed from the spec."""
    policy = policy.effective  # central-authoritative = Override, manual-review etc. = Adopt
    # Merge compares only the fields the spec names; every other policy compares the owned
    # value as a whole (client sub-paths and foreign items of set-lists excepted).
    view = ConflictPolicy.MERGE if policy is ConflictPolicy.MERGE else ConflictPolicy.OVERRIDE

    def holding(value: Any) -> bool:
        return holds(actual, value, view, preserve, sets=sets, last=last)

    if desired is MISSING:
        if not owned or actual is MISSING:
            return Decision(State.PRUNE, False, MISSING, release=True)
        edited = last is not MISSING and not holding(last)
        if edited and policy in (ConflictPolicy.IGNORE, ConflictPolicy.IF_NOT_PRESENT):
            return Decision(State.PRUNE, False, actual, release=True)
        if edited and policy is ConflictPolicy.ADOPT:
            return Decision(State.CONFLICT, False, actual, held=True)
        # The whole entry goes, client sub-paths too: a Codex server table left with only
        # its approval tables would stop Codex from starting ("invalid transport").
        return Decision(State.PRUNE, True, MISSING)
    if holding(desired):
        return Decision(State.IN_SYNC, False, actual)
    target = merged(actual, desired, view, preserve, sets=sets, last=last)
    if actual is MISSING and (not owned or last is MISSING):
        return Decision(State.NEW, True, target)
    if not owned or last is MISSING:
        state = State.TAKEOVER
    else:
        edited = actual is MISSING or not holding(last)
        changed = not _equal(desired, last)
        state = State.SPEC_CHANGED if not edited else State.CONFLICT if changed else State.DRIFT
    if policy is ConflictPolicy.IF_NOT_PRESENT:
        # Create once, never update: only a key that is missing is written.
        return Decision(state, actual is MISSING and state is not State.DRIFT, target)
    if state is State.SPEC_CHANGED:
        return Decision(state, True, target)
    if policy is ConflictPolicy.IGNORE:
        return Decision(state, False, actual)
    if policy is ConflictPolicy.ADOPT:
        return Decision(state, False, actual, held=True)
    return Decision(state, True, target)


# --- which policy applies where -----------------------------------------------------------


def _rules_for(pointer: tuple[str, ...], config: ConflictPolicyConfig) -> list[PathPolicy]:
    """The path rules that cover `pointer`, most specific first."""
    text = "/" + "/".join(pointer)
    found = [rule for rule in config.paths
             if text == rule.path or text.startswith(rule.path.rstrip("/") + "/")]
    return sorted(found, key=lambda rule: len(rule.path), reverse=True)


def policy_for(entry: Entry | None, pointer: tuple[str, ...], config: ConflictPolicyConfig) -> ConflictPolicy:
    for rule in _rules_for(pointer, config):
        if rule.policy is not None:
            return rule.policy
    if entry is not None and entry.policy is not None:
        return entry.policy
    if entry is not None and entry.client in config.clients:
        return config.clients[entry.client]
    return config.default


def authority_for(pointer: tuple[str, ...], config: ConflictPolicyConfig) -> Authority:
    rules = _rules_for(pointer, config)
    return rules[0].authority if rules else Authority.ITEMS


def weakening_allowed(pointer: tuple[str, ...], config: ConflictPolicyConfig) -> bool:
    return any(rule.allow_weakening for rule in _rules_for(pointer, config))
