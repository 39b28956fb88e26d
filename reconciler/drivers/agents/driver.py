"""The AgentConfig driver: observe the clients' files, plan per key, write atomically.

`observe` renders the spec (so it knows which files matter), reads every such file and
every file of a key the reconciler owns, parses them all (one unparsable file fails the
run before anything is written), and loads the last-applied values from the store.
`diff` is `planning.plan_files`, pure. `apply` checks that no file changed since it was
read, stores a snapshot of each file it is about to change, then writes them all by
temp file + fsync + rename, keeping each file's mode; if a write fails, the files already
replaced are put back.

A rollback (`RunContext.rollback_to`) plans the reconciler's own keys back to how they
were right after that run, from the snapshots (see restoring.py), and is applied like any
other plan, as a recorded run.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from reconciler.drivers.agents.contexts import unloaded_rules
from reconciler.drivers.agents.documents import open_document
from reconciler.drivers.agents.entries import expand, parse_key
from reconciler.drivers.agents.planning import (
    FileState,
    Rendered,
    _diff,
    files_to_read,
    format_of,
    last_applied,
    plan_files,
    render_spec,
)
from reconciler.drivers.agents.resolving import resolve
from reconciler.drivers.agents.restoring import RestorePoint, owned_in, plan_rollback, restore_points
from reconciler.drivers.agents.specpatch import PatchError, patch_text, patched, spec_file
from reconciler.drivers.agents.validating import ClientCheckFailed, hold, validate, withhold
from reconciler.engine.drivers import ApplyResult, RunContext
from reconciler.engine.events import EventType
from reconciler.errors import ConflictError, DriverError, ReconcilerError
from reconciler.models.agents import AgentConfig, ConflictPolicy
from reconciler.structs.plans import Change, Notice, Plan, PlanMode, Presentation


@dataclass(frozen=True, slots=True)
class Observed:
    rendered: Rendered
    files: dict[str, FileState]
    last: dict[str, Any]
    restore: dict[str, RestorePoint] | None = None  # rollback: file → what it restores
    watermarks: Mapping[str, str] | None = None  # the target's, as observed (validation state)
    notes: tuple[str, ...] = ()  # warnings found while observing (see contexts.py)


def read_file(display: str) -> FileState:
    path = expand(display)
    real = os.path.realpath(path)
    real_or_none = real if real != str(path) else None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return FileState(str(path), None, real=real_or_none)
    except IsADirectoryError:
        raise DriverError(f"{display}: expected a file, got a directory") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DriverError(f"{display}: cannot read the existing file: not UTF-8 at byte {exc.start}; "
                          "nothing was written to any client") from None
    info = path.stat()
    return FileState(str(path), text, stat.S_IMODE(info.st_mode), info.st_mtime, real_or_none)


def _text_or_none(display: str) -> str | None:
    """A file read only to look at (never written by this run): unreadable is unknown."""
    try:
        return read_file(display).text
    except (DriverError, OSError):
        return None


class AgentConfigDriver:
    kind: ClassVar[str] = "AgentConfig"

    async def observe(self, obj: AgentConfig, ctx: RunContext) -> Observed:
        rendered = render_spec(obj)
        wanted = files_to_read(rendered, ctx.inventory)
        restore = restore_points(ctx, ctx.rollback_to) if ctx.rollback_to else None
        for file in restore or {}:
            wanted.setdefault(file, format_of(file, False, ()))
        if not ctx.dry_run:  # under the target lock: no run of this target is writing now
            remove_stale_temps([expand(file) for file in wanted])
        files = {file: read_file(file) for file in sorted(wanted)}
        for file, fmt in wanted.items():  # refuse before anything is written
            open_document(fmt, files[file].text, file, marker=obj.metadata.name)
        marks = ctx.state.watermarks() if ctx.state is not None else {}
        notes = unloaded_rules(obj, rendered, lambda file: files[file].text if file in files
                               else _text_or_none(file))
        return Observed(rendered, files, last_applied(marks), restore, marks, tuple(notes))

    def teardown(self, obj: AgentConfig) -> AgentConfig:
        """The spec whose run removes everything this object wrote and nothing else: the same
        targets with no servers, rules or permissions (every inventory key is then pruned)."""
        empty = obj.spec.model_copy(update={"mcp_servers": {}, "rules": [],
                                            "permissions": type(obj.spec.permissions)()})
        return obj.model_copy(update={"spec": empty})

    def watch_paths(self, obj: AgentConfig) -> list[Path]:
        """The native files of every target, for the daemon's file watcher (hand edits)."""
        return [expand(file) for file in render_spec(obj).files()]

    def diff(self, obj: AgentConfig, actual: Observed, ctx: RunContext) -> Plan:
        if actual.restore is not None:
            located = spec_file(obj.ref)
            return plan_rollback(obj, actual.rendered, actual.files, actual.restore, ctx.inventory,
                                 actual.last, located.path if located else None)
        plan = plan_files(obj, actual.rendered, actual.files, ctx.inventory, actual.last)
        plan = resolve_plan(obj, actual, ctx, plan)
        plan = hold(obj, plan, {f: s.text for f, s in actual.files.items()}, actual.watermarks or {},
                    ctx.inventory)
        return replace(plan, warnings=(*plan.warnings, *actual.notes)) if actual.notes else plan

    def record_plan(self, obj: AgentConfig, plan: Plan, ctx: RunContext) -> None:
        """A real run's held edits become proposals (pending) and its strategies'
        decisions are recorded with them (see store/proposals.py)."""
        assert ctx.state is not None
        ctx.state.observe_proposals(plan.details.get("adopt") or {}, plan.details.get("decisions") or ())

    async def apply(self, plan: Plan, ctx: RunContext) -> ApplyResult:
        # The plan's handle: file → its text before and after (what apply writes).
        writes: Mapping[str, Mapping[str, Any]] = plan.handle or {}
        for file, write in writes.items():
            unchanged_since_read(file, write["before"])
        if ctx.state is not None:
            # What the reconciler owned in each file before and after, for a later rollback.
            after = plan.inventory if plan.inventory is not None else ctx.inventory
            ctx.state.save_snapshots(
                (file, {"path": w["path"], "before": w["before"], "after": w["after"], "mode": w["mode"],
                        "ownedBefore": owned_in(ctx.inventory, file), "owned": owned_in(after, file),
                        "spec": bool(w.get("spec"))}) for file, w in writes.items())
        write_all(writes, if_unchanged=True)
        if plan.mode is PlanMode.ROLLBACK:
            return ApplyResult.from_plan(plan, ctx.inventory)
        assert isinstance(ctx.obj, AgentConfig)
        # The spec file, once written, stays so even when a client's check puts its files back.
        spec = next((w["spec"] for w in writes.values() if isinstance(w.get("spec"), AgentConfig)), None)
        checked = validate(ctx.obj, writes, lambda file: read_file(file).text)
        if not checked.rolled_back:
            result = ApplyResult.from_plan(plan, ctx.inventory)
            return replace(result, watermarks={**result.watermarks, **checked.watermarks}, spec_written=spec)
        kept = withhold(plan, checked.rolled_back, ctx.inventory)
        result = ApplyResult.from_plan(kept, ctx.inventory)
        return replace(result, watermarks={**result.watermarks, **checked.watermarks},
                       failed=ClientCheckFailed("; ".join(checked.errors)), spec_written=spec)


def _rejected_keys(obj: AgentConfig, ctx: RunContext, adopt: Mapping[str, Any],
                   drift: set[str]) -> dict[str, ConflictPolicy]:
    """Held keys whose current edit a person rejected: the spec is imposed on them. Items the
    file added to a list stay (no item of others is ever removed): once they are the file's
    own, no longer drift, there is nothing left to impose."""
    if ctx.state is None:
        return {}
    from reconciler.store.proposals import fingerprint

    rejected = set(ctx.state.rejected_proposals().values())
    return {key: ConflictPolicy.OVERRIDE for key, info in adopt.items()
            if fingerprint(obj.ref, key, info.get("file")) in rejected
            and (key in drift or not info.get("foreign"))}


def resolve_plan(obj: AgentConfig, actual: Observed, ctx: RunContext, plan: Plan) -> Plan:
    """The plan once the run-wide strategies spoke (see resolving.py): accepted edits patch
    the spec (and its file, written by apply like a client file), imposed ones are written
    over, rejected proposals re-imposed. Decisions go to `details["decisions"]` and the
    run's warnings."""
    adopt = plan.details.get("adopt") or {}
    if not adopt:
        return plan
    located = spec_file(obj.ref)
    rejected = _rejected_keys(obj, ctx, adopt, set(plan.drift))
    # A person's reject is the decision: the strategies decide only the other edits.
    res = resolve(obj, adopt, set(plan.drift) - set(rejected), actual.files,
                  located.changed_at if located else None)
    forced = {**rejected, **res.forced}
    decisions = [d.as_dict() for d in res.decisions]
    for key in rejected:
        info = adopt[key]
        decisions.append({"key": key, "canonical": info.get("canonical"), "client": info.get("client"),
                          "policy": adopt[key].get("policy"), "outcome": "imposed",
                          "reason": "the proposal was rejected: " + (
                              "its items stay in the file as the file's own (items others add to a list "
                              "are never removed) and the spec does not take them" if info.get("foreign")
                              else "the spec is re-imposed")})
    # Edits the spec cannot take are proposed instead (a run never fails on them, and the
    # other fields still sync): nowhere to write (a git revision), or the spec file or model
    # refuses the patch (a value shared through an anchor, an invalid spec).
    refused = (dict.fromkeys(res.patches, "no spec file to write back (a git revision)") if located is None
               else _unwritable(obj, located.path, res.patches))
    if refused:
        for d in decisions:
            if d["outcome"] in ("accepted", "overwritten") and d["canonical"] in refused:
                d["outcome"], d["reason"] = "proposed", refused[d["canonical"]]
        forced = {key: policy for key, policy in forced.items()
                  if key in rejected or adopt[key].get("canonical") not in refused}
        for canonical in refused:
            del res.patches[canonical]
    if not res.patches and not forced:  # nothing taken or imposed: the decisions are still said
        return replace(plan, details={**plan.details, "decisions": decisions}, notices=_notices(decisions),
                       warnings=(*plan.warnings, *_decision_lines(decisions))) if decisions else plan
    target_obj, rendered, files = obj, actual.rendered, dict(actual.files)
    spec_write: dict[str, Any] | None = None
    if res.patches:
        assert located is not None
        body = _body(obj)
        body["spec"] = patched(body.get("spec") or {}, res.patches.items())
        target_obj = AgentConfig.model_validate(body)
        rendered = render_spec(target_obj)
        for file in files_to_read(rendered, ctx.inventory):
            files.setdefault(file, read_file(file))
        before = located.path.read_text(encoding="utf-8")
        after = patch_text(before, obj.ref, res.patches.items(), source=str(located.path))
        # `spec`: the object as the written file declares it, the run's spec once apply wrote it.
        spec_write = {"path": str(located.path), "before": before, "after": after,
                      "mode": stat.S_IMODE(located.path.stat().st_mode), "spec": target_obj}
        # The spec changed when the edit it takes was made, not when this run writes it: a
        # client saved while the run writes (after that edit) is newer than the spec, and
        # last-write-wins gives it the next run. Never set back to before the spec's own time.
        taken = max((files[parse_key(d.key).file].mtime or 0.0 for d in res.decisions
                     if d.outcome == "accepted"), default=0.0)
        if taken > located.changed_at:
            spec_write["mtime"] = taken
    new = plan_files(target_obj, rendered, files, ctx.inventory, actual.last, forced=forced)
    changes = list(new.changes)
    writes = dict(new.handle or {})
    diffs = new.presentation.diff_of_files()
    if spec_write is not None:
        spec_key = str(spec_write["path"])
        for canonical, value in res.patches.items():
            changes.append(Change.update(f"spec:{spec_key}#{canonical}", None, value, item="spec"))
        writes[spec_key] = spec_write
        diffs[spec_key] = _diff(spec_key, spec_write["before"], spec_write["after"])
    warnings = [*new.warnings, *_decision_lines(decisions)]
    details = {**new.details, "decisions": decisions, "specPatch": dict(res.patches)}
    for d in decisions:
        d.setdefault("info", adopt.get(d["key"]) or {})
    shown = replace(new.presentation, files=Presentation.file_diffs(diffs))
    return replace(new, changes=tuple(changes), handle=writes, details=details, presentation=shown,
                   warnings=tuple(warnings), notices=_notices(decisions))


def _body(obj: AgentConfig) -> dict[str, Any]:
    """The object as its spec file says it (camelCase, defaults left out)."""
    body = obj.model_dump(mode="json", by_alias=True, exclude={"status"}, exclude_defaults=True)
    body["apiVersion"], body["kind"] = obj.api_version, obj.KIND
    return body


def _unwritable(obj: AgentConfig, path: Path, patches: Mapping[str, Any]) -> dict[str, str]:
    """The accepted patches (canonical field → value) the spec cannot take, each with why:
    its file refuses the edit, or the patched spec would not be valid. Tried in order, each
    on top of those taken before it."""
    from pydantic import ValidationError

    text, body = path.read_text(encoding="utf-8"), _body(obj)
    taken: list[tuple[str, Any]] = []
    refused: dict[str, str] = {}
    for canonical, value in patches.items():
        trial = [*taken, (canonical, value)]
        try:
            patch_text(text, obj.ref, trial, source=str(path))
            AgentConfig.model_validate({**body, "spec": patched(body.get("spec") or {}, trial)})
        except PatchError as exc:
            refused[canonical] = f"cannot write it into the spec file: {exc}"
        except ValidationError as exc:
            problems = "; ".join(str(e["msg"]) for e in exc.errors())
            refused[canonical] = f"the spec would not be valid with it: {problems}"
        else:
            taken = trial
    return refused


def _decision_lines(decisions: list[dict[str, Any]]) -> list[str]:
    return [f"{d['policy']}: {d['key']}: {d['outcome']}: {d['reason']}" for d in decisions]


def _notices(decisions: list[dict[str, Any]]) -> tuple[Notice, ...]:
    """Each two-way sync decision as an event of its own (`SyncDecision`), published by the
    run that carries it out."""
    return tuple(Notice(EventType.SYNC_DECISION, str(d.get("outcome") or "decided").capitalize(),
                        f"{d.get('policy')}: {d.get('key')}: {d.get('outcome')}: {d.get('reason')}",
                        {k: d.get(k) for k in ("key", "canonical", "client", "policy", "outcome", "reason")})
                 for d in decisions)


TEMP_MARK = ".reconciler-"
"""Temporary files are `.<name>.reconciler-<random>.tmp` beside the file they replace: hidden,
ending in `.tmp` (no client reads `*.tmp`, and none matches its `*.md` / `*.mdc` / `*.toml`
globs), and recognisable, so that a run can remove those a killed run left behind."""


def _temp_glob(path: Path) -> str:
    return f".{path.name}{TEMP_MARK}*.tmp"


def written_path(path: Path) -> Path:
    """The file a write of `path` goes to: the end of its symlinks, if it is one (dotfiles
    managers link client files from a repository; the link stays, its target is written)."""
    return path.resolve() if path.is_symlink() else path


def remove_stale_temps(paths: list[Path]) -> list[Path]:
    """Remove the temporary files of earlier killed runs next to `paths` (under the target
    lock, so no run of this target is writing them now); the paths removed."""
    removed: list[Path] = []
    for path in map(written_path, paths):
        if not path.parent.is_dir():
            continue
        for stale in path.parent.glob(_temp_glob(path)):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed.append(stale)
    return removed


def unchanged_since_read(file: str, text: str | None) -> None:
    """`ConflictError` when `file` no longer holds `text`, the text its write was planned from."""
    if read_file(file).text != text:
        raise ConflictError(f"{file} changed after it was read; nothing was written, run again")


def atomic_write(path: Path, text: str, mode: int | None, *,
                 check: Callable[[], None] | None = None) -> None:
    """Write `text` to `path` (through its symlinks) by a rename: a reader sees the old file or
    the new one, never half of it; the temporary file is named so that no client reads it.
    `check` runs right before the rename (it raises to leave the file as it is)."""
    path = written_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TEMP_MARK}", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode if mode is not None else 0o644)
        if check is not None:
            check()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_all(writes: Mapping[str, Mapping[str, Any]], *, if_unchanged: bool = False) -> None:
    """Write every file; if one fails, put back those already written, then raise.

    `if_unchanged`: each file is checked again right before it is replaced, not only when
    apply began: a person's save landing while the run stores its snapshots or writes the
    files before it (each write waits for a disk sync) is not overwritten; the run fails as
    a conflict and the next run sees the edit. Clients share no lock with us, so a save in
    the instant between that last check and the rename can still be lost."""
    done: list[Mapping[str, Any]] = []
    wrote: dict[str, str | None] = {}  # real path → what this call wrote there (linked files are one)
    try:
        for file, write in writes.items():
            path = Path(write["path"])
            real = os.path.realpath(path)
            expected = wrote.get(real, write["before"])
            check = partial(unchanged_since_read, file, expected) if if_unchanged else None
            if write["after"] is None:
                if check is not None:
                    check()
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, write["after"], write["mode"], check=check)
                if write.get("mtime") is not None:  # the time its content stands for (a spec write-back)
                    os.utime(path, (time.time(), write["mtime"]))
            wrote[real] = write["after"]
            done.append(write)
    except (OSError, ReconcilerError) as exc:
        for write in reversed(done):
            path = Path(write["path"])
            if write["before"] is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, write["before"], write["mode"])
        if isinstance(exc, ReconcilerError):
            raise
        raise DriverError(f"cannot write {exc.filename}: {exc.strerror}; the files already "
                          "written were restored") from None
