"""Planning the edits of one native file: owned keys, owned list items, the managed block.

`planning.plan_files` opens each file as a document and hands it here with the entries the
spec renders into it and the inventory keys it no longer renders. Three kinds of work:

- **Keys** (an MCP server entry, `toolPermissions.default`, a rule file, the Markdown
  block): `ownership.decide` says what to write under the conflict policy; the document is
  edited key by key.
- **Items of set-lists** (`permissions.deny`, Rovo's `bash.commands`): each declared item is
  decided on its own (`lists` tells items apart), missing items are appended, items the
  reconciler added and the spec dropped are removed, and every other item keeps its place
  and its bytes. A foreign item that differs from the spec's item of the same identity is
  not rewritten (it is *pending*) unless the path has `authority: Full`, which also removes
  the items nobody declared.
- **Shape**: a parent that is not an object, an owned list that is not a list, an owned
  object that is a scalar: the file is refused with its location (nothing is guessed).

Along the way it records what the plan must show: drift, *takeovers* (keys or items that
exist but were never written by the reconciler and that the plan overwrites or removes),
*weakenings* (a deny removed, a level lowered, where the reconciler did not write the
stricter value; refused by the engine unless the path allows it) and *pending* keys (the
spec declares them, the policy leaves them unwritten). Pure: the document is in memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.drivers.agents.documents import MISSING, BlockDocument, Document, ListEdit, refuse_shape
from reconciler.drivers.agents.entries import Entry, KeyParts, escape_pointer, parse_key
from reconciler.drivers.agents.lists import (
    ItemKind,
    identity,
    kind_of,
    level_of,
    list_level,
    normal,
    rank,
    rule_of,
    weaker,
)
from reconciler.drivers.agents.ownership import (
    Decision,
    State,
    authority_for,
    decide,
    policy_for,
    weakening_allowed,
)
from reconciler.drivers.agents.specpatch import level_field
from reconciler.models.agents import Authority, ConflictPolicy, ConflictPolicyConfig
from reconciler.models.literals import masked
from reconciler.structs.plans import Change


@dataclass(slots=True)
class Tally:
    """What the plan of one AgentConfig collects over its files."""

    changes: list[Change] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    drift: list[str] = field(default_factory=list)
    held: dict[str, Entry | None] = field(default_factory=dict)  # Adopt: key → entry
    owned: set[str] = field(default_factory=set)
    watermarks: dict[str, Any] = field(default_factory=dict)  # key → value (MISSING = released)
    takeovers: list[str] = field(default_factory=list)
    weakens: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    proposals: list[str] = field(default_factory=list)  # Adopt: lists with the user's own items
    foreign: set[str] = field(default_factory=set)  # held keys that are others' items: never removed
    policies: dict[str, ConflictPolicy] = field(default_factory=dict)  # held key → its policy
    notes: list[str] = field(default_factory=list)
    unchanged: int = 0


FOREIGN = "foreign:"  # watermark of the items others held in a list under Adopt


def _item(entry_format: str) -> str:
    return {"text": "file", "block": "block"}.get(entry_format, "key")


def _change(key: str, item: str, value: Any, actual: Any) -> Change:
    """The change as the plan, the run's record and the API show it: a literal secret the
    file holds (a user's own token in a server's env) is masked in both values."""
    name = (*parse_key(key).pointer[-1:], "")[0]  # the key's own name: what a value is for
    if value is MISSING:
        return Change.delete(key, masked(actual, name), item=item)
    if actual is MISSING:
        return Change.create(key, masked(value, name), item=item)
    return Change.update(key, masked(actual, name), masked(value, name), item=item)


def respelled(desired: Any, actual: Any, env_ref: re.Pattern[str]) -> Any:
    """`desired`, with each env reference that the file spells another way for the same
    variable (Qwen's `$X` for `${X}`, also after the same text, as in `Bearer $X`) taken
    from the file: the user's spelling is kept."""
    if isinstance(desired, Mapping) and isinstance(actual, Mapping):
        return {k: respelled(v, actual.get(k, MISSING), env_ref) for k, v in desired.items()}
    if isinstance(desired, str) and isinstance(actual, str) and desired != actual:
        for start in (i for i, ch in enumerate(desired) if ch == "$"):
            if not actual.startswith(desired[:start]):
                break
            want, have = env_ref.fullmatch(desired[start:]), env_ref.fullmatch(actual[start:])
            if want and have and want.group(1) == have.group(1):
                return actual
    return desired


def without_implied(desired: Any, actual: Any, implied: Mapping[str, Any]) -> Any:
    """`desired` without each key of `implied` that the user's entry leaves out and whose
    value is what the client reads its absence as (Rovo Dev's `transport`)."""
    if not implied or not isinstance(desired, Mapping) or not isinstance(actual, Mapping):
        return desired
    return {k: v for k, v in desired.items()
            if not (k in implied and k not in actual and implied[k] == v)}


def check_parents(doc: Document, file: str, pointer: tuple[str, ...]) -> None:
    """Every existing parent of `pointer` must be an object: never replace a user's value."""
    for depth in range(1, len(pointer)):
        value = doc.get(pointer[:depth])
        if value is MISSING:
            return
        if not isinstance(value, Mapping):
            raise refuse_shape(doc, file, pointer[:depth], "an object (a table) holding "
                               f"{pointer[depth]!r}", value)


class FilePlanner:
    """The edits of one document, decided key by key and item by item."""

    def __init__(self, *, file: str, doc: Document, tally: Tally, inventory: frozenset[str],
                 last: Mapping[str, Any], config: ConflictPolicyConfig,
                 forced: Mapping[str, ConflictPolicy] | None = None,
                 kept: frozenset[tuple[str, ...]] = frozenset()) -> None:
        self.file, self.doc, self.tally = file, doc, tally
        self.inventory, self.last, self.config = inventory, last, config
        self.forced: Mapping[str, ConflictPolicy] = forced or {}  # key → policy for this run
        self.kept = kept  # the user's own containers (objects, lists): emptied in place, never deleted
        self.touched = False

    # --- keys -------------------------------------------------------------------------------

    def plan_key(self, key: str, pointer: tuple[str, ...], entry: Entry | None, item_name: str) -> None:
        t, doc = self.tally, self.doc
        check_parents(doc, self.file, pointer)
        desired = self._desired(entry)
        actual = doc.get(pointer)
        if entry is not None and entry.env_ref is not None:
            desired = respelled(desired, actual, entry.env_ref)
        if entry is not None:
            desired = without_implied(desired, actual, dict(entry.implied))
            if (entry.meaning is not None and isinstance(desired, str) and isinstance(actual, str)
                    and desired != actual and entry.meaning(desired) == entry.meaning(actual)):
                desired = actual  # the same rule, written another way: the user's bytes stay
        if isinstance(desired, Mapping) and actual is not MISSING and not isinstance(actual, Mapping):
            raise refuse_shape(doc, self.file, pointer, "an object", actual)
        policy = self.forced.get(key) or policy_for(entry, pointer, self.config)
        last = self.last.get(key, MISSING)
        decision = decide(desired, actual, last, owned=key in self.inventory, policy=policy,
                          preserve=entry.preserve if entry else (), sets=entry.sets if entry else ())
        t.states[key] = decision.state.value
        if decision.write:
            t.changes.append(_change(key, item_name, decision.value, actual))
            self._write(pointer, actual, decision.value)
            if decision.state is State.TAKEOVER:
                t.takeovers.append(key)
            security = (entry.security if entry is not None else rank(actual) is not None)
            ranks = dict(entry.ranks) if entry is not None and entry.ranks else None
            if security and actual is not MISSING and actual != last and not weakening_allowed(
                    pointer, self.config):
                if decision.value is MISSING and (rank(actual, ranks) or 0) > 0:
                    t.weakens.append(f"{key}: removes {actual!r}, which the reconciler did not write")
                elif weaker(decision.value, actual, ranks):
                    t.weakens.append(f"{key}: turns {actual!r} into {decision.value!r}; the reconciler "
                                     f"did not write {actual!r}")
        else:
            t.unchanged += decision.state is State.IN_SYNC
        self._record(key, entry, decision, policy, desired)

    def _desired(self, entry: Entry | None) -> Any:
        if entry is None:
            return MISSING
        if not entry.sections or not isinstance(self.doc, BlockDocument):
            return entry.value
        # A rule whose text is already in the file outside the block (the user's own, or
        # what `import` read from it) is not repeated inside the block.
        outside = self.doc.outside()
        kept = [section for content, section in entry.sections if content.strip() not in outside]
        return "\n\n".join(kept) + "\n" if kept else MISSING

    def _record(self, key: str, entry: Entry | None, decision: Decision, policy: ConflictPolicy,
                desired: Any) -> None:
        t = self.tally
        if decision.drifted and policy is not ConflictPolicy.IGNORE:
            t.drift.append(key)
        if decision.held:
            t.held[key] = entry
            t.policies[key] = policy
            if entry is not None:
                t.pending.append(key)
        last = self.last.get(key, MISSING)
        # A key is the reconciler's once it wrote it; one that already held the spec's value
        # stays the user's (so that dropping it from the spec never deletes the user's key).
        keeps = entry is not None and not decision.release and desired is not MISSING and (
            decision.write or (decision.state is State.IN_SYNC and key in self.inventory))
        if keeps:
            t.owned.add(key)
            if last != desired:
                t.watermarks[key] = desired
        elif decision.release or (entry is None and decision.write) or (
                entry is not None and desired is MISSING and key in self.inventory):
            t.watermarks[key] = MISSING
        elif key in self.inventory and not decision.held:
            t.owned.add(key)

    def _write(self, pointer: tuple[str, ...], before: Any, after: Any) -> None:
        if after is MISSING:
            self._delete(pointer)
        else:
            write_value(self.doc, pointer, before, after)
        self.touched = True

    def _delete(self, pointer: tuple[str, ...]) -> None:
        """Delete the value at `pointer` with the parents that leaves empty, up to a container
        of the user's: that one is emptied where it stands, with its comments around it (a
        deletion then a re-creation would move it to the end of the file, reformatted)."""
        for end in range(len(pointer) - 1, 0, -1):
            ancestor = pointer[:end]
            value = self.doc.get(ancestor)
            alone = isinstance(value, Mapping) and list(value) == [pointer[end]]
            if ancestor in self.kept:
                if alone:
                    self.doc.set(ancestor, {})
                    return
                break
            if not alone:
                break
        self.doc.delete(pointer)

    # --- items of set-lists -----------------------------------------------------------------

    def plan_list(self, pointer: tuple[str, ...], entries: list[Entry],
                  pruned: list[tuple[str, KeyParts]]) -> None:
        t, doc = self.tally, self.doc
        check_parents(doc, self.file, pointer)
        actual = doc.get(pointer)
        if actual is not MISSING and not isinstance(actual, list):
            raise refuse_shape(doc, self.file, pointer, "a list", actual)
        items: list[Any] = actual if isinstance(actual, list) else []
        kind = kind_of(pointer)
        index: dict[str, int] = {}
        for i, item in enumerate(items):
            index.setdefault(identity(kind, item), i)
        policy = next((self.forced[e.key] for e in entries if e.key in self.forced), None) or policy_for(
            entries[0] if entries else None, pointer, self.config)
        full = authority_for(pointer, self.config) is Authority.FULL
        may_weaken = weakening_allowed(pointer, self.config)
        remove: set[int] = set()
        replace: dict[int, Any] = {}
        append: list[Any] = []
        declared: set[str] = set()
        others = self._other_levels(pointer, kind)
        for entry in entries:
            assert entry.item is not None
            declared.add(entry.item)
            key = entry.key
            at = index.get(entry.item)
            found = items[at] if at is not None else MISSING
            last = self.last.get(key, MISSING)
            ours = key in self.inventory
            elsewhere = others.get(entry.item)
            if at is None and not ours and not full and weaker(pointer[-1], elsewhere):
                # The user's own, stricter rule for the same thing (they deny what the spec
                # asks): theirs stays, the spec's is pending, never a second, looser copy. A
                # stricter spec rule (a deny beside the user's allow) is written: it weakens nothing.
                t.states[key] = State.TAKEOVER.value
                t.pending.append(key)
                t.notes.append(f"{key}: the file's own {elsewhere} rule for {entry.item!r} stays; the "
                               f"spec's {pointer[-1]} is not written")
                continue
            norm = (lambda v: v if v is MISSING else normal(kind, v))  # noqa: E731
            if at is not None and not ours and not full and norm(found) != norm(entry.value):
                # Someone else's item with this identity says something else: never rewritten
                # without authority over the list.
                t.states[key] = State.TAKEOVER.value
                t.pending.append(key)
                t.notes.append(f"{key}: the file has its own {found!r}; the spec's {entry.value!r} is not "
                               "written (authority: Full on the path would take the item over)")
                continue
            decision = decide(norm(entry.value), norm(found), norm(last), owned=ours, policy=policy)
            t.states[key] = decision.state.value
            if decision.write:
                if at is None:
                    append.append(entry.value)
                else:
                    replace[at] = entry.value
                    if found != last and weaker(level_of(kind, entry.value, pointer),
                                                level_of(kind, found, pointer)) and not may_weaken:
                        t.weakens.append(f"{key}: turns {found!r} into {entry.value!r}; the reconciler "
                                         f"did not write {found!r}")
                    if decision.state is State.TAKEOVER:
                        t.takeovers.append(key)
                t.changes.append(_change(key, "item", entry.value, found))
            else:
                t.unchanged += decision.state is State.IN_SYNC
            self._record(key, entry, decision, policy, entry.value)
        for key, parts in pruned:
            assert parts.item is not None
            at = index.get(parts.item)
            if at is None or at in replace:
                t.watermarks[key] = MISSING
                continue
            found, last = items[at], self.last.get(key, MISSING)
            decision = decide(MISSING, normal(kind, found), last if last is MISSING else normal(kind, last),
                              owned=True, policy=policy)
            t.states[key] = decision.state.value
            if decision.write:
                remove.add(at)
                t.changes.append(_change(key, "item", MISSING, found))
                if found != last and (rank(level_of(kind, found, pointer)) or 0) > 0 and not may_weaken:
                    t.weakens.append(f"{key}: removes {found!r}, which was changed outside the reconciler")
            self._record(key, None, decision, policy, MISSING)
        if full:
            self._take_over_list(pointer, kind, items, declared, remove, replace, may_weaken)
        elif policy.effective is ConflictPolicy.ADOPT and entries:
            self._propose_foreign(pointer, kind, items, entries, policy)
        if remove or replace or append:
            edit = ListEdit(frozenset(remove), replace, tuple(append))
            if remove and not edit.applied(items):
                # The reconciler took out the last items, all its own: the list goes, with the
                # parents that leaves empty (no `"deny": []` left behind), unless it is the user's.
                if pointer in self.kept:
                    doc.set(pointer, [])
                else:
                    self._delete(pointer)
            else:
                doc.edit_list(pointer, edit)
            self.touched = True

    def _other_levels(self, pointer: tuple[str, ...], kind: ItemKind) -> dict[str, str]:
        """Items of the sibling level lists (`allow` / `ask` / `deny` beside this one) that the
        reconciler did not write: identity → the level the user gave them."""
        level = list_level(pointer)
        if level is None:
            return {}
        out: dict[str, str] = {}
        for other in ("allow", "ask", "deny"):
            if other == level:
                continue
            sibling = (*pointer[:-1], other)
            values = self.doc.get(sibling)
            base = f"{self.file}#/{'/'.join(escape_pointer(p) for p in sibling)}"
            for item in values if isinstance(values, list) else ():
                name = identity(kind, item)
                if f"{base}#{name}" not in self.inventory:
                    out.setdefault(name, other)
        return out

    def _propose_foreign(self, pointer: tuple[str, ...], kind: ItemKind, items: list[Any],
                         entries: list[Entry], policy: ConflictPolicy) -> None:
        """Adopt: items others put in the list stay (as under every policy) and are proposed
        for the spec. Those the list held when the reconciler first saw it are the user's
        own (a proposal, not drift); one added since is a hand edit: reported as drifted
        until the spec takes it. The items seen are kept as a watermark. A list of items
        of one level (`permissions.deny`) is proposed whole, as the client holds it; Rovo
        Dev's `bash.commands` mixes levels, so each of its items is a proposal of its own
        (its rule at its level), and an item no canonical rule means exactly (`rm.*`)
        cannot be proposed: a note says so, and it stays in the file."""
        declared = {entry.item for entry in entries}
        ours = {entry.item for entry in entries if entry.key in self.inventory}
        known = declared | {k.rsplit("#", 1)[-1] for k in self.inventory if k.startswith(entries[0].file)}
        found = {identity(kind, item): item for item in items if identity(kind, item) not in known | ours}
        # The list as one field of the spec (its items are each a rule's level, see `put_items`).
        level = list_level(pointer)
        whole = replace(entries[0], item=None, value=[entry.value for entry in entries],
                        canonical=f"permissions.{level}" if level else entries[0].canonical)
        mark = FOREIGN + whole.key
        seen = self.last.get(mark, MISSING)
        baseline = sorted(found) if seen is MISSING else sorted(set(seen) & set(found))
        # Items the run imposes the spec on (a person rejected them, or another client's edit
        # of the list won) are not removed, as no item of others ever is: they are the file's
        # own from now on, no longer drift.
        rejected = {name for name in found
                    if whole.key in self.forced or f"{whole.key}#{name}" in self.forced}
        baseline = sorted(set(baseline) | rejected)
        if seen is MISSING or baseline != sorted(seen):
            self.tally.watermarks[mark] = baseline
        if not found:
            return
        if kind is not ItemKind.ROVO_COMMAND:
            self._hold(whole, policy, drifted=bool(set(found) - set(baseline)))
            return
        regexes = [name for name, item in found.items() if rule_of(kind, item) is None]
        if regexes:
            self.tally.notes.append(f"{whole.key}: {', '.join(map(repr, regexes))}: no canonical rule "
                                    "matches exactly the same commands; not proposed for the spec (left "
                                    "in the file as written)")
        for name, item in found.items():
            rule = rule_of(kind, item)
            if rule is not None:
                held = replace(entries[0], item=name, value=None, canonical=level_field(rule))
                self._hold(held, policy, drifted=name not in baseline)

    def _hold(self, entry: Entry, policy: ConflictPolicy, *, drifted: bool) -> None:
        (self.tally.drift if drifted else self.tally.proposals).append(entry.key)
        self.tally.foreign.add(entry.key)
        self.tally.held[entry.key] = entry
        self.tally.policies[entry.key] = policy

    def _take_over_list(self, pointer: tuple[str, ...], kind: ItemKind, items: list[Any], declared: set[str],
                        remove: set[int], replace: dict[int, Any], may_weaken: bool) -> None:
        """`authority: Full`: items nobody declared go (each one a takeover)."""
        from reconciler.drivers.agents.entries import escape_pointer

        base = self.file + "#/" + "/".join(escape_pointer(p) for p in pointer)
        for at, found in enumerate(items):
            name = identity(kind, found)
            if at in remove or at in replace or name in declared:
                continue
            key = f"{base}#{name}"
            remove.add(at)
            self.tally.changes.append(_change(key, "item", MISSING, found))
            self.tally.takeovers.append(key)
            if (rank(level_of(kind, found, pointer)) or 0) > 0 and not may_weaken:
                self.tally.weakens.append(f"{key}: removes {found!r}, which the reconciler did not write")


def write_value(doc: Document, pointer: tuple[str, ...], before: Any, after: Any) -> None:
    """Change `before` into `after` at `pointer` with the fewest edits (keeps layout)."""
    if after is MISSING:
        doc.delete(pointer)
    elif isinstance(before, Mapping) and isinstance(after, Mapping) and pointer:
        for key in before:
            if key not in after:
                doc.delete((*pointer, key))
        for key, value in after.items():
            old = before.get(key, MISSING)
            if old != value:
                write_value(doc, (*pointer, key), old, value)
    else:
        doc.set(pointer, after)
