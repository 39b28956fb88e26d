"""Per-key ownership: what an owned key should become, and whether someone else changed it.

Three values decide the fate of one key: `desired` (what the spec renders now), `actual`
(what the file holds) and `last` (what the reconciler wrote the last time it applied).
A key is *in sync* when writing `desired` would not change the file. Otherwise it is
*new* (never written and absent), *taken over* (present but never ours), *changed by the
spec* (the file still holds `last`), *drifted* (the file no longer holds `last`: a hand
or client edit), a *conflict* (both), or *pruned* (ours, no longer in the spec).

The conflict policy then says what to do about drift and conflicts: `Override` writes the
spec, `Merge` writes the spec but keeps fields others added inside owned objects (and
items others added to owned lists), `IfNotPresent` writes only what is missing,
`Ignore` leaves the key, `Adopt` leaves it and proposes a spec patch (the run reports
`Drifted`). Sub-paths that belong to the client (`preserve`) survive every policy.
Everything here is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reconciler.drivers.agents.documents import MISSING
from reconciler.models.agents import ConflictPolicy


class State(StrEnum):
    IN_SYNC = "in-sync"
    NEW = "new"
    TAKEOVER = "takeover"  # present in the file, never written by the reconciler
    SPEC_CHANGED = "changed-by-spec"
    DRIFT = "drift"  # changed by hand (or by the client)
    CONFLICT = "conflict"  # changed by hand and by the spec
    PRUNE = "prune"  # owned, removed from the spec


def _preserved(actual: Any, preserve: Sequence[tuple[str, ...]], prefix: tuple[str, ...] = ()) -> set[str]:
    return {p[len(prefix)] for p in preserve if len(p) == len(prefix) + 1 and p[: len(prefix)] == prefix}


def merged(actual: Any, desired: Any, policy: ConflictPolicy,
           preserve: Sequence[tuple[str, ...]] = (), prefix: tuple[str, ...] = ()) -> Any:
    """The value the key gets when `desired` is written over `actual` under `policy`."""
    if actual is MISSING or desired is MISSING:
        return desired
    if isinstance(desired, Mapping) and isinstance(actual, Mapping):
        out: dict[str, Any] = {}
        keep = _preserved(actual, preserve, prefix)
        for key, value in actual.items():
            if key in desired:
                out[key] = merged(value, desired[key], policy, preserve, (*prefix, key))
            elif policy is ConflictPolicy.MERGE or key in keep:
                out[key] = value
        for key, value in desired.items():
            if key not in out:
                out[key] = value
        return out
    if isinstance(desired, list) and isinstance(actual, list) and policy is ConflictPolicy.MERGE:
        return list(desired) + [item for item in actual if item not in desired]
    return desired


def holds(actual: Any, value: Any, policy: ConflictPolicy, preserve: Sequence[tuple[str, ...]] = ()) -> bool:
    """Whether `actual` already reflects `value` (writing it would change nothing)."""
    if actual is MISSING:
        return value is MISSING
    return _equal(merged(actual, value, policy, preserve), actual)


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
           preserve: Sequence[tuple[str, ...]] = ()) -> Decision:
    """What to do with one key. `desired` MISSING = removed from the spec."""
    # Merge compares only the fields the spec names; every other policy compares the owned
    # value as a whole (client sub-paths excepted).
    view = ConflictPolicy.MERGE if policy is ConflictPolicy.MERGE else ConflictPolicy.OVERRIDE
    if desired is MISSING:
        if not owned or actual is MISSING:
            return Decision(State.PRUNE, False, MISSING, release=True)
        edited = last is not MISSING and not holds(actual, last, view, preserve)
        if edited and policy in (ConflictPolicy.IGNORE, ConflictPolicy.IF_NOT_PRESENT):
            return Decision(State.PRUNE, False, actual, release=True)
        if edited and policy is ConflictPolicy.ADOPT:
            return Decision(State.CONFLICT, False, actual, held=True)
        # The whole entry goes, client sub-paths too: a Codex server table left with only
        # its approval tables would stop Codex from starting ("invalid transport").
        return Decision(State.PRUNE, True, MISSING)
    if holds(actual, desired, view, preserve):
        return Decision(State.IN_SYNC, False, actual)
    target = merged(actual, desired, view, preserve)
    if actual is MISSING and (not owned or last is MISSING):
        return Decision(State.NEW, True, target)
    if not owned or last is MISSING:
        state = State.TAKEOVER
    else:
        edited = actual is MISSING or not holds(actual, last, view, preserve)
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

