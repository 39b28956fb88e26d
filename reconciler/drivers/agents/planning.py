"""The pure half of the AgentConfig driver: from spec and observed files to a plan.

`render_spec` asks each target's adapter for its entries and translation notes and merges
entries that several targets share (`AGENTS.md` for Codex and Rovo Dev is written once,
owned by the first target that renders it; two targets that disagree on one key are an
error). `plan_files` then walks every file: for each owned key it decides (see
`ownership`) and edits an in-memory document, so the new text of each file differs from
the old only where the reconciler owns keys. The plan carries one change per key, a
unified diff per file, the state of every key, the drift, and the new file texts that
`apply` writes.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.drivers.agents.clients import Reader, adapter_for
from reconciler.drivers.agents.documents import (
    MISSING,
    BlockDocument,
    Document,
    Format,
    open_document,
    refuse_legacy_settings,
)
from reconciler.drivers.agents.editing import FilePlanner, Tally
from reconciler.drivers.agents.entries import Entry, KeyParts, Note, Place, parse_key
from reconciler.drivers.agents.lists import LEVELS, identity, kind_of, list_level
from reconciler.drivers.agents.ownership import weakening_allowed
from reconciler.drivers.agents.specpatch import PatchError, describe, rule_of, spec_digest
from reconciler.drivers.agents.translating import rules_edited
from reconciler.errors import DriverError
from reconciler.models.agents import AgentConfig, ConflictPolicy
from reconciler.models.literals import mask_secrets, masked, secret_paths
from reconciler.structs.plans import Plan, Presentation, SpecProposal

WATERMARK_PREFIX = "applied:"


class TranslationError(DriverError):
    """`strict: true` and a canonical field some client cannot express."""


@dataclass(frozen=True, slots=True)
class FileState:
    """One native file as observed: its text (None = absent) and mode bits."""

    path: str  # absolute
    text: str | None
    mode: int | None = None
    mtime: float | None = None  # when the file last changed (last-write-wins)
    real: str | None = None  # where `path` leads, when it is (or sits under) a symbolic link


@dataclass(slots=True)
class Rendered:
    entries: list[Entry] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    shared: dict[str, list[str]] = field(default_factory=dict)
    places: dict[str, Place] = field(default_factory=dict)  # key → the target that owns it

    def files(self) -> dict[str, Format]:
        return {e.file: e.format for e in self.entries}


def render_spec(obj: AgentConfig) -> Rendered:
    """Every target's entries, shared keys merged, plus the translation report."""
    out = Rendered()
    by_key: dict[str, Entry] = {}
    for target in obj.spec.targets:
        place = Place.of(target, obj.metadata.name)
        rendering = adapter_for(target.client).render(obj.spec.for_target(target), place)
        out.notes += rendering.notes
        for entry in rendering.entries:
            first = by_key.get(entry.key)
            if first is None:
                by_key[entry.key] = entry
                out.entries.append(entry)
                out.places[entry.key] = place
            elif first.value != entry.value:
                raise DriverError(f"targets {first.client} and {entry.client} render different "
                                  f"content for {entry.key}; give one of them another root")
            else:
                out.shared.setdefault(entry.key, [str(first.client)]).append(str(entry.client))
    if obj.spec.strict and out.notes:
        listed = "; ".join(str(n) for n in out.notes)
        raise TranslationError(f"strict: {len(out.notes)} canonical field(s) cannot be expressed "
                               f"exactly: {listed}")
    return out


def format_of(file: str, is_block: bool, pointer: tuple[str, ...] | None = None) -> Format:
    """The format of a file known only by its inventory key (for pruning)."""
    if is_block:
        return Format.BLOCK
    if pointer == ():  # a key without a pointer is a whole file the reconciler owns
        return Format.TEXT
    name = file.rsplit("/", 1)[-1]
    if name.endswith((".json", ".jsonc")):
        return Format.JSON
    if name.endswith(".toml"):
        return Format.TOML
    if name.endswith((".yml", ".yaml")):
        return Format.YAML
    return Format.TEXT


def files_to_read(rendered: Rendered, inventory: Iterable[str]) -> dict[str, Format]:
    """Every file the plan looks at: rendered ones and those of owned keys."""
    files = rendered.files()
    for key in inventory:
        parts = parse_key(key)
        files.setdefault(parts.file, format_of(parts.file, parts.is_block, parts.pointer))
    return files


def watermark_key(key: str) -> str:
    return WATERMARK_PREFIX + hashlib.sha1(key.encode()).hexdigest()


def watermark_value(key: str, value: Any) -> str:
    return json.dumps({"key": key, "value": None if value is MISSING else value},
                      sort_keys=True, ensure_ascii=False)


def last_applied(watermarks: Mapping[str, str]) -> dict[str, Any]:
    """key → the value last written, from the target's watermarks."""
    out: dict[str, Any] = {}
    for name, raw in watermarks.items():
        if name.startswith(WATERMARK_PREFIX):
            data = json.loads(raw)
            if data.get("value") is not None:
                out[data["key"]] = data["value"]
    return out


def _diff(file: str, before: str | None, after: str | None) -> str:
    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True), (after or "").splitlines(keepends=True),
        fromfile="/dev/null" if before is None else f"a/{file}",
        tofile="/dev/null" if after is None else f"b/{file}",
    )
    # A diff shows the lines around a change, the user's own among them: literal secrets masked.
    shown = (line if line.startswith(("---", "+++", "@@")) else mask_secrets(line) for line in lines)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in shown)


def plan_files(obj: AgentConfig, rendered: Rendered, files: Mapping[str, FileState],
               inventory: frozenset[str], last: Mapping[str, Any],
               forced: Mapping[str, ConflictPolicy] | None = None) -> Plan:
    """The plan for one AgentConfig from its rendering and the observed files. `forced`
    (key → policy) overrides the configured policy of those keys for this plan: the keys a
    strategy resolution decided to impose the spec on."""
    config = obj.spec.conflict_policy
    entries_by_file: dict[str, list[Entry]] = {}
    for entry in rendered.entries:
        entries_by_file.setdefault(entry.file, []).append(entry)
    rendered_keys = {e.key for e in rendered.entries}
    pruned_by_file: dict[str, list[tuple[str, KeyParts]]] = {}
    for key in sorted(inventory - rendered_keys):
        parts = parse_key(key)
        pruned_by_file.setdefault(parts.file, []).append((key, parts))

    tally = Tally()
    diffs: dict[str, str] = {}
    writes: dict[str, dict[str, Any]] = {}
    planned: dict[str, str | None] = {}  # file → its text after the plan
    for file in sorted(set(entries_by_file) | set(pruned_by_file)):
        state = files[file]
        entries = entries_by_file.get(file, [])
        pruned = pruned_by_file.get(file, [])
        first = pruned[0][1] if pruned else KeyParts(file, (), False)
        fmt = entries[0].format if entries else format_of(file, first.is_block, first.pointer)
        doc = open_document(fmt, state.text, file, marker=obj.metadata.name)
        found = last.get(f"{file}{FOUND}")
        if not isinstance(found, dict):  # first contact: what the file holds before any write
            pointers = [e.pointer for e in entries] + [parts.pointer for _, parts in pruned]
            found = tally.watermarks[f"{file}{FOUND}"] = _found(state, doc, pointers)
        # A keyed value's own path is no container: a server taken over is the reconciler's
        # to remove whole (`"github": {}` is no server); only its parents are the user's.
        values = {e.pointer for e in entries if e.item is None}
        values |= {parts.pointer for _, parts in pruned if parts.item is None}
        kept = frozenset(tuple(path) for path, _ in found.get("containers", [])) - values
        planner = FilePlanner(file=file, doc=doc, tally=tally, inventory=inventory, last=last,
                              config=config, forced=forced, kept=kept)
        lists: dict[tuple[str, ...], tuple[list[Entry], list[tuple[str, KeyParts]]]] = {}
        for entry in entries:
            if entry.item is not None:
                lists.setdefault(entry.pointer, ([], []))[0].append(entry)
            else:
                planner.plan_key(entry.key, entry.pointer, entry, _item(fmt))
        for key, parts in pruned:
            if parts.item is not None:
                lists.setdefault(parts.pointer, ([], []))[1].append((key, parts))
            else:
                planner.plan_key(key, parts.pointer, None, _item(fmt))
        for pointer, (declared, dropped) in lists.items():
            planner.plan_list(pointer, declared, dropped)
        if planner.touched:
            _keep_found(doc, kept, found)
        # Render only an edited document: a serializer may normalise untouched files.
        after = doc.render() if planner.touched else state.text
        if after is None and found.get("exists") and fmt is not Format.TEXT:
            after = "{}\n" if fmt is Format.JSON else ""  # the user's file stays, as empty as it was
        planned[file] = after
        if after != state.text:
            refuse_legacy_settings(file, doc)
            diffs[file] = _diff(file, state.text, after)
            writes[file] = {"path": state.path, "before": state.text, "after": after,
                            "mode": state.mode}
    refuse_linked_disagreement(files, planned, rendered)
    adopt = {key: _adoption(obj, key, adopted, tally.policies.get(key, ConflictPolicy.ADOPT), rendered, files)
             | ({"foreign": True} if key in tally.foreign else {}) for key, adopted in tally.held.items()}
    held = set(adopt) & inventory
    warnings = [f"translation: {note}" for note in rendered.notes]
    # Each line names the policy in force (a strategy's decision on the key follows it).
    warnings += [(f"proposal: {key} is the file's own item, which the spec does not declare; policy "
                  f"{adopt[key]['policy']} keeps it and proposes it for the spec (see the proposed patch)"
                  if parse_key(key).item else f"proposal: {key} holds items the spec does not declare; "
                  f"policy {adopt[key]['policy']} keeps them and proposes them for the spec (see the "
                  "proposed patch)") if key in tally.proposals
                 else f"drift: {key} was changed outside the reconciler; policy {adopt[key]['policy']} keeps "
                 f"the file as it is until the spec takes the change (see the proposed patch)"
                 for key in adopt]
    warnings += tally.notes
    watermarks = {watermark_key(key): watermark_value(key, value)
                  for key, value in tally.watermarks.items()}
    return Plan(
        target=obj.ref, changes=tuple(tally.changes), unchanged=tally.unchanged, warnings=tuple(warnings),
        details={"states": tally.states, "translation": [str(n) for n in rendered.notes],
                 "shared": rendered.shared, "adopt": adopt},
        presentation=Presentation(
            files=Presentation.file_diffs(diffs),
            proposals=tuple(SpecProposal(key, str(info.get("canonical")), info.get("proposed"),
                                         str(info.get("note") or "")) for key, info in adopt.items())),
        handle=writes,
        drift=tuple(tally.drift), inventory=tuple(sorted(tally.owned | held)), watermarks=watermarks,
        takeovers=tuple(tally.takeovers), weakens=tuple(tally.weakens), pending=tuple(tally.pending),
    )


def _adoption(obj: AgentConfig, key: str, adopted: Entry | None, policy: ConflictPolicy, rendered: Rendered,
              files: Mapping[str, FileState]) -> dict[str, Any]:
    """What the plan says of one held key: the spec field, the file's and the spec's values,
    the patch that would adopt the file's (`proposed`), how it reads (`note`) and the
    security rules it would weaken (`weakens`: a strategy never accepts those on its own)."""
    desired = adopted.value if adopted is not None else MISSING
    parts = parse_key(key)
    file = parts.file
    info: dict[str, Any] = {
        "canonical": adopted.canonical if adopted else "", "spec": None if desired is MISSING else desired,
        "file": masked(_value_in(files[file], key, obj.metadata.name), (*parts.pointer[-1:], "")[0]),
        "client": str(adopted.client) if adopted else None, "policy": str(policy)}
    if adopted is None:
        return info
    # A whole list's target is its items'; a user's own item's is its list's (it renders none).
    prefix = (key.rsplit("#", 1)[0] if parts.item is not None else key) + "#"
    place = rendered.places.get(key) or next(found for k, found in rendered.places.items()
                                             if k.startswith(prefix))
    if adopted.format is Format.BLOCK:  # the rules, section by section: the fields edited
        info["canonical"], info["proposed"] = block_proposal(obj, adopted, files[file])
    else:
        info["proposed"] = proposed_value(adopted, place, files)
    proposed = info["proposed"]
    info["place"] = {"scope": str(place.scope), "root": place.root}
    if isinstance(proposed, Mapping) and "error" in proposed:
        return info
    permissions = obj.spec.permissions.model_dump(mode="json", by_alias=True, exclude_none=True)
    rule = rule_of(adopted.canonical)
    if rule is not None and list_level(adopted.pointer) is not None:
        # The rule's level is the list it sits in: the file's and the spec's values are levels
        # (so a move to allow and one to deny are two edits, never one proposal).
        info["file"] = proposed
        info["spec"] = next((level for level in LEVELS if rule in (permissions.get(level) or ())), None)
    with contextlib.suppress(PatchError):  # a field no patch can set has nothing to check
        info["specDigest"] = spec_digest(obj, info["canonical"])  # what accept checks against
    try:
        note, weakens = describe(permissions, info["canonical"], proposed)
    except PatchError:
        return info  # a field no patch can set: accept says so
    if weakens and weakening_allowed(adopted.pointer, obj.spec.conflict_policy):
        weakens = []
    info.update({"note": note} if note else {})
    info.update({"weakens": weakens} if weakens else {})
    return info


FOUND = "#@found"
"""Suffix of the pseudo-key whose watermark keeps what a file held when the reconciler
first met it (whether it existed, and the containers on the paths it writes)."""


def _found(state: FileState, doc: Document, pointers: list[tuple[str, ...]]) -> dict[str, Any]:
    """What the reconciler must never delete of a file: the file itself if it existed, and
    every object or list on the paths it is about to write that the user had already made
    (`{"mcpServers": {}}`, `"deny": []`); only what the reconciler created is its to remove."""
    containers: dict[tuple[str, ...], str] = {}
    for pointer in pointers:
        for end in range(1, len(pointer) + 1):
            value = doc.get(pointer[:end])
            if isinstance(value, Mapping):
                containers[pointer[:end]] = "object"
            elif isinstance(value, list):
                containers[pointer[:end]] = "list"
    return {"exists": state.text is not None,
            "containers": [[list(path), kind] for path, kind in sorted(containers.items())]}


def _keep_found(doc: Document, kept: frozenset[tuple[str, ...]], found: Mapping[str, Any]) -> None:
    """Put back, empty, a container the user had that removing the reconciler's own keys or
    items took with it anyway (the planner empties them in place; a document deletes the
    parents a deletion leaves empty)."""
    for path, kind in found.get("containers", []):
        if tuple(path) in kept and doc.get(tuple(path)) is MISSING:
            doc.set(tuple(path), {} if kind == "object" else [])


def _item(fmt: Format) -> str:
    return {Format.TEXT: "file", Format.BLOCK: "block"}.get(fmt, "key")


def _value_in(state: FileState, key: str, marker: str) -> Any:
    parts = parse_key(key)
    doc = open_document(format_of(parts.file, parts.is_block, parts.pointer), state.text, parts.file,
                        marker=marker)
    value = doc.get(parts.pointer)
    if parts.item is not None and isinstance(value, list):
        kind = kind_of(parts.pointer)
        value = next((v for v in value if identity(kind, v) == parts.item), MISSING)
    return None if value is MISSING else value


def rule_level(state: FileState, entry: Entry) -> Any:
    """The level the file gives the rule of an item entry (None: none). A Rovo Dev command
    item says it itself (`permission`); in lists named for a level (`permissions.allow`,
    `ask`, `deny`) it is the list that holds the rule, the strictest when several do, so an
    item moved from `ask` to `allow` reads as that rule's move, not as a removal."""
    kind = kind_of(entry.pointer)
    if list_level(entry.pointer) is None:
        item = _value_in(state, entry.key, entry.marker)
        level = item.get("permission") if isinstance(item, Mapping) else None
        if item is not None and level not in LEVELS:
            return {"error": f"the file's item {item!r} has no permission level (allow, ask, deny)"}
        return level
    doc = open_document(entry.format, state.text, entry.file, marker=entry.marker)
    for level in LEVELS:  # strictest first
        items = doc.get((*entry.pointer[:-1], level))
        if isinstance(items, list) and any(identity(kind, item) == entry.item for item in items):
            return level
    return None


def refuse_linked_disagreement(files: Mapping[str, FileState], planned: Mapping[str, str | None],
                                rendered: Rendered) -> None:
    """Two target files that are one file through a symbolic link (`CLAUDE.md` → `AGENTS.md`,
    a common way to share instructions) must come out of the plan with the same text: each
    is planned on its own, so differing texts would overwrite each other on every run."""
    by_real: dict[str, list[str]] = {}
    for file in planned:
        state = files[file]
        by_real.setdefault(state.real or state.path, []).append(file)
    for real, group in by_real.items():
        if len(group) > 1 and len({planned[file] for file in group}) > 1:
            clients = sorted({str(e.client) for e in rendered.entries if e.file in group})
            raise DriverError(f"{' and '.join(group)} are one file ({real}, through a symbolic link), "
                              f"and the targets of {', '.join(clients)} would write different text into "
                              "it; nothing was written: remove the link, or give one of the targets "
                              "another root")


def block_proposal(obj: AgentConfig, entry: Entry, state: FileState) -> tuple[str, Any]:
    """The spec patch a person's edit of the reconciler's block in an instruction file makes:
    (`rules[NAME].FIELD`, its new value) for one changed field, (`rules`, {field: value})
    for several; an error when the edit is not one of the rules' fields (see `rules_edited`)."""
    doc = open_document(Format.BLOCK, state.text, entry.file, marker=entry.marker)
    assert isinstance(doc, BlockDocument)
    block = doc.get(())
    block = "" if block is MISSING else block
    try:
        fields = rules_edited(obj.spec.rules, entry.sections, block, doc.outside())
    except ValueError as exc:
        return entry.canonical, {"error": f"cannot read the block back into the spec's rules: {exc}"}
    return next(iter(fields.items())) if len(fields) == 1 else ("rules", fields)


class _MemoryReader(Reader):
    """The observed file texts, as an adapter's `read` sees files (no I/O)."""

    def __init__(self, files: Mapping[str, FileState], place: Place) -> None:
        self.files, self.place = files, place

    def text(self, relative: str) -> str | None:
        state = self.files.get(self.place.file(relative))
        return state.text if state is not None else None

    def glob(self, relative_dir: str, pattern: str) -> list[str]:
        return []


def proposed_value(entry: Entry, place: Place, files: Mapping[str, FileState]) -> Any:
    """What the spec field behind `entry` would be if it took the file's current content.

    The client's adapter reads the observed files back into canonical form (as `import`
    does) and the field the entry came from is picked out: the spec patch of an Adopt.
    """
    try:
        found = adapter_for(entry.client).read(_MemoryReader(files, place), place, lambda _: None)
    except Exception as exc:  # a hand edit the adapter cannot read back
        return {"error": f"cannot read the edit back into the spec: {exc}"}
    canonical = entry.canonical
    if rule_of(canonical) is not None:
        return rule_level(files[entry.file], entry)
    if canonical.startswith("rules"):
        rules = found.get("rules") or []
        name = canonical[len("rules["):-1] if canonical.startswith("rules[") else None
        return [r for r in rules if name is None or r.get("name") == name]
    value: Any = found
    for part in canonical.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None  # removed by hand: the proposal is to drop the field
        value = value[part]
    if secret_paths(value, canonical.rsplit(".", 1)[-1]):
        return {"error": "the edit holds a literal secret, which a spec never holds: put it in the "
                         "server's env as a secret reference ({env: NAME})"}
    return value


