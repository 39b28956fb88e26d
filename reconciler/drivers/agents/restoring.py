"""Rolling an AgentConfig back: what the reconciler owned, as it was right after a run.

Every apply stores a snapshot of each file it changes: the text before and after, and the
keys of that file the reconciler owned before and after (`owned`). A rollback to run R
(`RunContext.rollback_to`) finds, for every file changed by R or since, its text right
after R and the keys it owned then (`RestorePoint`), and plans the files *as they are
now* back to those keys' values with the planner an apply uses, every key imposed: a key
it owned at R is written back as it was, a key it has owned since and did not own at R is
removed, and everything else in the file (a key, an item, a comment, a byte the user added
since) stays as it is now. A snapshot from before `owned` was recorded restores the keys
the reconciler owns now (a warning says so).

The spec file that a two-way strategy wrote back into (`last-write-wins`, `priority`) is
rolled back the same way, by field: only the spec fields those write-backs changed since R
go back to what they were before the first of them, through the spec patch the write-back
itself uses (comments and layout kept); a server or comment added by hand since stays.
When a person has edited one of those fields since the last write-back, the rollback is
refused (nothing is written): it would overwrite that edit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reconciler.drivers.agents.documents import MISSING, open_document
from reconciler.drivers.agents.entries import Entry, parse_key
from reconciler.drivers.agents.lists import identity, kind_of
from reconciler.drivers.agents.planning import FileState, Rendered, _diff, format_of, plan_files
from reconciler.drivers.agents.specpatch import PatchError, patch_text
from reconciler.engine.drivers import RunContext
from reconciler.errors import DriverError
from reconciler.loading.documents import parse_documents
from reconciler.models.agents import AgentConfig, ConflictPolicy
from reconciler.models.common import ObjectRef
from reconciler.structs.plans import Change, Plan, PlanMode, Presentation


@dataclass(frozen=True, slots=True)
class RestorePoint:
    """One file as a rollback to run R needs it."""

    text: str | None  # right after R (None: absent)
    owned: frozenset[str] | None  # its keys the reconciler owned then (None: not recorded)
    spec: bool = False  # the spec file a strategy wrote back into
    # Every later change of it by a run, oldest first: (text before, text after).
    writes: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class _Gathered:
    text: str | None
    owned: frozenset[str] | None
    spec: bool
    writes: list[tuple[str, str]] = field(default_factory=list)


def owned_in(inventory: Iterable[str], file: str) -> list[str]:
    """The keys of `inventory` that live in `file` (what a snapshot records as `owned`)."""
    return sorted(key for key in inventory if parse_key(key).file == file)


def restore_points(ctx: RunContext, run_id: str) -> dict[str, RestorePoint]:
    """file → what a rollback to run `run_id` restores of it, for every file changed then or since."""
    assert ctx.state is not None
    state = ctx.state
    runs = [r for r in state.runs(limit=100_000) if r.id >= run_id]
    if not any(r.id == run_id for r in runs):
        raise DriverError(f"no run {run_id} of {state.target.short}; see `reconciler history`")
    found: dict[str, _Gathered] = {}
    for run in sorted(runs, key=lambda r: r.id):
        for file, snap in state.snapshots_of(run.id):
            at = run.id == run_id
            owned = snap.get("owned" if at else "ownedBefore")
            point = found.setdefault(file, _Gathered(
                snap["after"] if at else snap["before"],
                frozenset(owned) if isinstance(owned, list) else None, bool(snap.get("spec"))))
            if not at and snap["before"] is not None and snap["after"] is not None:
                point.writes.append((snap["before"], snap["after"]))
    return {file: RestorePoint(p.text, p.owned, p.spec, tuple(p.writes)) for file, p in found.items()}


def plan_rollback(obj: AgentConfig, rendered: Rendered, files: Mapping[str, FileState],
                  points: Mapping[str, RestorePoint], inventory: frozenset[str], last: Mapping[str, Any],
                  spec_path: Path | None = None) -> Plan:
    """The plan that puts the reconciler's keys back as they were right after the run (see
    the module docstring); every other byte of the files stays as it is now."""
    marker = obj.metadata.name
    current = {entry.key: entry for entry in rendered.entries}
    entries: list[Entry] = []
    keys: set[str] = set()
    warnings: list[str] = []
    spec_points = {file: point for file, point in points.items()
                   if point.spec or (spec_path is not None and Path(file) == spec_path)}
    for file, point in sorted(points.items()):
        if file in spec_points:
            continue
        now = set(owned_in(inventory, file))
        if point.owned is None:
            warnings.append(f"rollback: {file}: the snapshot predates ownership records; only the keys "
                            "the reconciler owns now are restored")
        then = point.owned if point.owned is not None else frozenset(now)
        keys |= now | then
        for key in sorted(then):
            value = _value_at(point.text, key, marker)
            if value is MISSING:
                continue  # pruned by the plan below if the reconciler wrote it since
            entry = current.get(key)
            entries.append(replace(entry, value=value, sections=()) if entry is not None
                           else _entry(obj, key, value, current.values()))
    restoring = Rendered(entries=entries)
    plan = plan_files(obj, restoring, files, frozenset(keys), last,
                      forced=dict.fromkeys(keys, ConflictPolicy.OVERRIDE))
    # Keys of other files stay the reconciler's; those of the restored files are the plan's.
    others = {key for key in inventory if key not in keys}
    plan = replace(plan, mode=PlanMode.ROLLBACK, inventory=tuple(sorted(others | set(plan.inventory or ()))),
                   warnings=(*warnings, *plan.warnings))
    for file, point in sorted(spec_points.items()):
        plan = _with_spec(plan, obj.ref, file, point, files[file])
    return plan


def _entry(obj: AgentConfig, key: str, value: Any, rendered: Iterable[Entry]) -> Entry:
    """An entry for a key the spec no longer renders: the value it had, in its file's format."""
    parts = parse_key(key)
    fmt = format_of(parts.file, parts.is_block, parts.pointer)
    client = next((e.client for e in rendered if e.file == parts.file), obj.spec.targets[0].client)
    return Entry(client, parts.file, fmt, parts.pointer, value, marker=obj.metadata.name, item=parts.item)


def _value_at(text: str | None, key: str, marker: str) -> Any:
    """The value of an owned key in a file's text (MISSING: not there)."""
    parts = parse_key(key)
    doc = open_document(format_of(parts.file, parts.is_block, parts.pointer), text, parts.file, marker=marker)
    value = doc.get(parts.pointer)
    if parts.item is None or value is MISSING:
        return value
    kind = kind_of(parts.pointer)
    return next((v for v in value if identity(kind, v) == parts.item), MISSING) if isinstance(value, list) \
        else MISSING


# --- the spec file ------------------------------------------------------------------------


def _spec_of(text: str, ref: ObjectRef, source: str) -> dict[str, Any]:
    """The `spec` of `ref` in a spec file's text (plain values)."""
    for doc in parse_documents(text, source=source):
        data = doc.data
        meta = data.get("metadata") if isinstance(data, dict) else None
        if (isinstance(meta, dict) and data.get("kind") == ref.kind and meta.get("name") == ref.name
                and meta.get("namespace", "default") == ref.namespace):
            spec = data.get("spec")
            return spec if isinstance(spec, dict) else {}
    return {}


def _fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Every field a write-back patches (see specpatch), with its value in `spec`."""
    out: dict[str, Any] = {}
    for name, server in (spec.get("mcpServers") or {}).items():
        out[f"mcpServers.{name}"] = server
    for name, value in (spec.get("permissions") or {}).items():
        out[f"permissions.{name}"] = value
    for rule in spec.get("rules") or []:
        if isinstance(rule, Mapping) and rule.get("name"):
            out.setdefault(f"rules[{rule['name']}]", []).append(rule)
    return out


def _with_spec(plan: Plan, ref: ObjectRef, file: str, point: RestorePoint, state: FileState) -> Plan:
    """`plan` and the spec file's fields that write-backs changed since the run, put back."""
    if not point.writes or state.text is None:
        return plan
    original: dict[str, Any] = {}  # field → its value before the first write-back that changed it
    written: dict[str, Any] = {}  # field → what the last write-back that changed it wrote
    for before, after in point.writes:
        old, new = _fields(_spec_of(before, ref, file)), _fields(_spec_of(after, ref, file))
        for name in old.keys() | new.keys():
            if old.get(name) != new.get(name):
                original.setdefault(name, old.get(name))
                written[name] = new.get(name)
    now = _fields(_spec_of(state.text, ref, file))
    edited = sorted(name for name in written if now.get(name) != written[name])
    if edited:
        raise DriverError(f"rollback refused: {file} was edited by hand in {', '.join(edited)} after the "
                          "reconciler wrote it back there; nothing was written (put those fields back by "
                          "hand, or edit the spec instead of rolling back)")
    patches = sorted(((name, value) for name, value in original.items() if now.get(name) != value),
                     key=lambda patch: patch[0])
    if not patches:
        return plan
    try:
        text = patch_text(state.text, ref, patches, source=file)
    except PatchError as exc:
        raise DriverError(f"rollback refused: {exc}") from None
    changes = [Change.update(f"spec:{file}#{name}", now.get(name), value, item="spec")
               for name, value in patches]
    writes = {**(plan.handle or {}), file: {"path": state.path, "before": state.text, "after": text,
                                            "mode": state.mode, "spec": True}}
    diffs = {**plan.presentation.diff_of_files(), file: _diff(file, state.text, text)}
    return replace(plan, changes=(*plan.changes, *changes), handle=writes,
                   presentation=replace(plan.presentation, files=Presentation.file_diffs(diffs)))
