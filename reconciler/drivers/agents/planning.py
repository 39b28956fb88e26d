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

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.drivers.agents.clients import Reader, adapter_for
from reconciler.drivers.agents.documents import MISSING, Document, Format, open_document
from reconciler.drivers.agents.entries import Entry, Note, Place, parse_key
from reconciler.drivers.agents.ownership import Decision, State, decide
from reconciler.engine.planning import Change, Plan
from reconciler.errors import DriverError
from reconciler.models.agents import AgentConfig, ConflictPolicy, ConflictPolicyConfig

WATERMARK_PREFIX = "applied:"


class TranslationError(DriverError):
    """`strict: true` and a canonical field some client cannot express."""


@dataclass(frozen=True, slots=True)
class FileState:
    """One native file as observed: its text (None = absent) and mode bits."""

    path: str  # absolute
    text: str | None
    mode: int | None = None


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
        rendering = adapter_for(target.client).render(obj.spec, place)
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
        file, pointer, is_block = parse_key(key)
        files.setdefault(file, format_of(file, is_block, pointer))
    return files


def policy_for(entry: Entry | None, pointer: tuple[str, ...], config: ConflictPolicyConfig) -> ConflictPolicy:
    text = "/" + "/".join(pointer)
    for rule in config.paths:
        if text == rule.path or text.startswith(rule.path.rstrip("/") + "/"):
            return rule.policy
    if entry is not None and entry.policy is not None:
        return entry.policy
    if entry is not None and entry.client in config.clients:
        return config.clients[entry.client]
    return config.default


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
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)


def _write(doc: Document, pointer: tuple[str, ...], before: Any, after: Any) -> None:
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
                _write(doc, (*pointer, key), old, value)
    else:
        doc.set(pointer, after)


def _item(fmt: Format) -> str:
    return {Format.TEXT: "file", Format.BLOCK: "block"}.get(fmt, "key")


def _change(key: str, fmt: Format, decision: Decision, actual: Any) -> Change | None:
    if not decision.write:
        return None
    item = _item(fmt)
    if decision.value is MISSING:
        return Change.delete(key, actual, item=item)
    if actual is MISSING:
        return Change.create(key, decision.value, item=item)
    return Change.update(key, actual, decision.value, item=item)


def plan_files(obj: AgentConfig, rendered: Rendered, files: Mapping[str, FileState],
               inventory: frozenset[str], last: Mapping[str, Any]) -> Plan:
    """The plan for one AgentConfig from its rendering and the observed files."""
    config = obj.spec.conflict_policy
    entries_by_file: dict[str, list[Entry]] = {}
    for entry in rendered.entries:
        entries_by_file.setdefault(entry.file, []).append(entry)
    rendered_keys = {e.key for e in rendered.entries}
    pruned_by_file: dict[str, list[tuple[str, tuple[str, ...], bool]]] = {}
    for key in sorted(inventory - rendered_keys):
        file, pointer, is_block = parse_key(key)
        pruned_by_file.setdefault(file, []).append((key, pointer, is_block))

    changes: list[Change] = []
    states: dict[str, str] = {}
    diffs: dict[str, str] = {}
    writes: dict[str, dict[str, Any]] = {}
    drift: list[str] = []
    adopt: dict[str, Any] = {}
    owned: set[str] = set()
    watermarks: dict[str, str] = {}
    unchanged = 0
    for file in sorted(set(entries_by_file) | set(pruned_by_file)):
        state = files[file]
        entries = entries_by_file.get(file, [])
        first = pruned_by_file.get(file, [("", (), False)])[0]
        fmt = entries[0].format if entries else format_of(file, first[2], first[1])
        doc = open_document(fmt, state.text, file, marker=obj.metadata.name)
        work: list[tuple[str, tuple[str, ...], Entry | None]] = [(e.key, e.pointer, e) for e in entries]
        work += [(key, pointer, None) for key, pointer, _ in pruned_by_file.get(file, [])]
        touched = False
        for key, pointer, entry in work:
            desired = entry.value if entry is not None else MISSING
            actual = doc.get(pointer)
            policy = policy_for(entry, pointer, config)
            decision = decide(desired, actual, last.get(key, MISSING), owned=key in inventory,
                              policy=policy, preserve=entry.preserve if entry else ())
            states[key] = decision.state.value
            change = _change(key, fmt, decision, actual)
            if change is not None:
                changes.append(change)
                _write(doc, pointer, actual, decision.value)
                touched = True
            else:
                unchanged += decision.state is State.IN_SYNC
            if decision.drifted and policy is not ConflictPolicy.IGNORE:
                drift.append(key)
            if decision.held:
                adopt[key] = {"canonical": entry.canonical if entry else "",
                              "file": None if actual is MISSING else actual,
                              "spec": None if desired is MISSING else desired}
                if entry is not None:
                    adopt[key]["proposed"] = proposed_value(entry, rendered.places[key], files)
            keeps = entry is not None and not decision.release and (decision.write or
                                                                     decision.state is State.IN_SYNC)
            if keeps:
                owned.add(key)
                if last.get(key, MISSING) != desired:
                    watermarks[watermark_key(key)] = watermark_value(key, desired)
            elif decision.release or (entry is None and decision.write):
                watermarks[watermark_key(key)] = watermark_value(key, MISSING)
            elif key in inventory and not decision.held:
                owned.add(key)
        # Render only an edited document: a serializer may normalise untouched files.
        after = doc.render() if touched else state.text
        if after != state.text:
            diffs[file] = _diff(file, state.text, after)
            writes[file] = {"path": state.path, "before": state.text, "after": after,
                            "mode": state.mode}
    held = set(adopt) & inventory
    warnings = [f"translation: {note}" for note in rendered.notes]
    warnings += [f"drift: {key} was changed outside the reconciler; policy Adopt keeps the "
                 f"file as it is until the spec takes the change (see the proposed patch)"
                 for key in adopt]
    return Plan(
        target=obj.ref, changes=tuple(changes), unchanged=unchanged, warnings=tuple(warnings),
        details={"files": diffs, "states": states, "translation": [str(n) for n in rendered.notes],
                 "shared": rendered.shared, "adopt": adopt, "_writes": writes},
        drift=tuple(drift), inventory=tuple(sorted(owned | held)), watermarks=watermarks,
    )


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
    if canonical.startswith("rules"):
        rules = found.get("rules") or []
        name = canonical[len("rules["):-1] if canonical.startswith("rules[") else None
        return [r for r in rules if name is None or r.get("name") == name]
    value: Any = found
    for part in canonical.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None  # removed by hand: the proposal is to drop the field
        value = value[part]
    return value


