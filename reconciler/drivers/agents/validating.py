"""Client CLI validation: after writing a client's files, let the client itself load them.

The reconciler checks the shape of what it writes, but only the client knows whether it
accepts the result (a Codex `deny_unknown_fields` table, a Claude `url` entry without
`type`). So after an AgentConfig run wrote a target's files, it runs a read-only command
that makes that client parse its configuration: `claude mcp list`, `codex mcp list`,
`gemini mcp list`, `qwen mcp list`, `cursor-agent mcp list`. Rovo Dev documents no
read-only command (`acli rovodev mcp` opens the file in an editor), so it has none by
default. A target sets its own with `validate: {command: [..], timeout: 10s}`, or turns
it off with `validate: false`; a client whose program is not on PATH is skipped with a
note.

The command runs with a timeout, no stdin, and an isolated environment: only PATH, the
locale and a temporary directory pass through; HOME is the target's root at user scope
(the client reads the files just written there) and the working directory is the project
folder at project scope.

A failing command (non-zero exit, timeout, not startable) rolls that target's files back
to their text before the run (the run's snapshot), fails the run with the command's
message, and holds the target: later runs leave its files alone (a plan warning says why)
until its part of the spec or its files change. The other targets' files stay written.
The state of every target is kept as a watermark (`validation:<client>/<scope>/<root>`):
passed, failed (held) or skipped, with the command, its message and when.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from reconciler.drivers.agents.clients import adapter_for
from reconciler.drivers.agents.entries import Place, expand
from reconciler.errors import DriverError
from reconciler.models.agents import AgentClient, AgentConfig, AgentTarget, ClientValidation, TargetScope
from reconciler.structs.plans import Plan, Presentation

WATERMARK_PREFIX = "validation:"
DEFAULT_TIMEOUT = 10.0
MESSAGE_LIMIT = 2000

KNOWN_COMMANDS: dict[AgentClient, tuple[str, ...]] = {
    AgentClient.CLAUDE_CODE: ("claude", "mcp", "list"),
    AgentClient.CODEX: ("codex", "mcp", "list"),
    AgentClient.GEMINI_CLI: ("gemini", "mcp", "list"),
    AgentClient.QWEN_CODE: ("qwen", "mcp", "list"),
    AgentClient.CURSOR: ("cursor-agent", "mcp", "list"),
}
"""Each client's read-only command that loads its MCP configuration (none for Rovo Dev)."""

_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT")


class ClientCheckFailed(DriverError):
    """A client's own CLI rejected the files written for it (they were rolled back)."""

    failure_class = "client_check"


@dataclass(frozen=True, slots=True)
class TargetView:
    """One target of a spec: where it writes, which files, and a hash of what it renders."""

    target: AgentTarget
    place: Place
    files: tuple[str, ...]
    spec_hash: str

    @property
    def id(self) -> str:
        return target_id(self.place)


@dataclass(frozen=True, slots=True)
class Check:
    """What validating a target means now: a command, or why there is none."""

    command: tuple[str, ...] | None
    timeout: float = DEFAULT_TIMEOUT
    skipped: str | None = None  # why no command runs (None with no command: turned off)


@dataclass(slots=True)
class Validation:
    """What validating the targets a run wrote found."""

    rolled_back: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    watermarks: dict[str, str] = field(default_factory=dict)


def target_id(place: Place) -> str:
    return f"{place.client}/{place.scope}/{place.root}"


def watermark_name(place: Place) -> str:
    return WATERMARK_PREFIX + target_id(place)


def targets_of(obj: AgentConfig) -> list[TargetView]:
    """Every target with the files it renders (pure: the adapters render in memory)."""
    views: list[TargetView] = []
    for target in obj.spec.targets:
        place = Place.of(target, obj.metadata.name)
        rendering = adapter_for(target.client).render(obj.spec.for_target(target), place)
        payload = [[e.key, e.value] for e in rendering.entries]
        config = target.validation.model_dump(mode="json") if target.validation else target.validation
        digest = hashlib.sha256(json.dumps([payload, config], sort_keys=True, default=str,
                                           ensure_ascii=False).encode()).hexdigest()
        views.append(TargetView(target, place, tuple(sorted({e.file for e in rendering.entries})), digest))
    return views


def files_hash(texts: Mapping[str, str | None]) -> str:
    return hashlib.sha256(json.dumps(dict(texts), sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def check_for(target: AgentTarget, path: str | None = None) -> Check:
    """The command that validates `target`, found on PATH (`path`: the PATH to search)."""
    setting = target.validation
    if setting is False:
        return Check(None)
    if isinstance(setting, ClientValidation):
        command, timeout = tuple(setting.command), setting.timeout.total_seconds()
    else:
        known = KNOWN_COMMANDS.get(target.client)
        if known is None:
            return Check(None, skipped=f"{target.client} documents no read-only check command; set "
                                       "validate.command to run one")
        command, timeout = known, DEFAULT_TIMEOUT
    if shutil.which(command[0], path=path) is None and not os.path.isabs(command[0]):
        return Check(None, skipped=f"{command[0]} is not on PATH; `{' '.join(command)}` not run")
    return Check(command, timeout)


def run_check(check: Check, place: Place, environ: Mapping[str, str] | None = None) -> str | None:
    """Run the check; None if the client accepted its configuration, else the reason."""
    assert check.command is not None
    source = os.environ if environ is None else environ
    root = expand(place.root)
    env = {name: source[name] for name in _PASSED_THROUGH if name in source}
    env.update({"NO_COLOR": "1", "TERM": "dumb", "CI": "1"})
    with tempfile.TemporaryDirectory(prefix="reconciler-validate-") as tmp:
        env["TMPDIR"] = tmp
        if place.scope is TargetScope.USER:
            env["HOME"], cwd = str(root), str(root)
        else:
            env["HOME"], cwd = source.get("HOME", tmp), str(root)
        program = shutil.which(check.command[0], path=env.get("PATH")) or check.command[0]
        shown = " ".join(check.command)
        try:
            done = subprocess.run([program, *check.command[1:]], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, errors="replace", timeout=check.timeout)
        except subprocess.TimeoutExpired:
            return f"`{shown}` did not finish within {check.timeout:g}s"
        except OSError as exc:
            return f"`{shown}` could not start: {exc.strerror}"
    if done.returncode == 0:
        return None
    output = (done.stderr.strip() or done.stdout.strip() or "(no output)")
    if len(output) > MESSAGE_LIMIT:
        output = "…" + output[-MESSAGE_LIMIT:]
    return f"`{shown}` exited with status {done.returncode}: {output}"


def states(watermarks: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """target id → its recorded validation state."""
    out: dict[str, dict[str, Any]] = {}
    for name, raw in watermarks.items():
        if name.startswith(WATERMARK_PREFIX):
            try:
                out[name[len(WATERMARK_PREFIX):]] = json.loads(raw)
            except ValueError:
                continue
    return out


def _state(state: str, **extra: Any) -> str:
    return json.dumps({"state": state, "at": datetime.now(UTC).isoformat(timespec="seconds"), **extra},
                      sort_keys=True, ensure_ascii=False)


# --- held targets: stop syncing a client whose check failed --------------------------------------


def held_files(obj: AgentConfig, texts: Mapping[str, str | None],
               watermarks: Mapping[str, str]) -> dict[str, tuple[TargetView, dict[str, Any]]]:
    """Targets whose last check failed and whose spec part and files are still as they were
    then: target id → (view, state)."""
    recorded = states(watermarks)
    out: dict[str, tuple[TargetView, dict[str, Any]]] = {}
    for view in targets_of(obj):
        state = recorded.get(view.id)
        if not state or state.get("state") != "failed":
            continue
        current = files_hash({f: texts.get(f) for f in view.files})
        if state.get("spec") == view.spec_hash and state.get("files") == current:
            out[view.id] = (view, state)
    return out


def _in(key: str, files: set[str]) -> bool:
    return key.partition("#")[0] in files


def withhold(plan: Plan, files: set[str], inventory: Iterable[str]) -> Plan:
    """The plan without any change to `files`: their keys stay owned as they were."""
    if not files:
        return plan
    before = set(inventory)
    writes = {f: w for f, w in (plan.handle or {}).items() if f not in files}
    diffs = {f: d for f, d in plan.presentation.diff_of_files().items() if f not in files}
    kept_inventory = None
    if plan.inventory is not None:
        kept_inventory = tuple(sorted({k for k in plan.inventory if not _in(k, files)}
                                      | {k for k in before if _in(k, files)}))
    watermarks = {}
    for name, raw in plan.watermarks.items():
        try:
            key = json.loads(raw).get("key")
        except (ValueError, AttributeError):
            key = None
        if not (isinstance(key, str) and _in(key, files)):
            watermarks[name] = raw
    withheld = [c for c in plan.changes if _in(c.key, files)]
    return replace(
        plan, changes=tuple(c for c in plan.changes if not _in(c.key, files)),
        unchanged=plan.unchanged + len(withheld), handle=writes,
        presentation=replace(plan.presentation, files=Presentation.file_diffs(diffs)),
        inventory=kept_inventory, watermarks=watermarks,
        takeovers=tuple(t for t in plan.takeovers if not any(t.startswith(f + "#") or t == f for f in files)),
        weakens=tuple(w for w in plan.weakens if not any(f in w for f in files)),
        pending=tuple(p for p in plan.pending if not _in(p, files)),
    )


def hold(obj: AgentConfig, plan: Plan, texts: Mapping[str, str | None], watermarks: Mapping[str, str],
         inventory: Iterable[str]) -> Plan:
    """Leave out of the plan the files of held targets (with a warning each), and note the
    check each written target will get."""
    held = held_files(obj, texts, watermarks)
    files: set[str] = set()
    notes: list[str] = []
    for view, state in held.values():
        files.update(view.files)
        notes.append(f"validation: {view.id} is not synced since its check failed at {state.get('at')} "
                     f"({state.get('message')}); its files are left alone until its spec or files change")
    out = withhold(plan, files, inventory)
    written = set(out.handle or {})
    for view in targets_of(obj):
        if view.id in held or not written & set(view.files):
            continue
        check = check_for(view.target)
        if check.skipped:
            notes.append(f"validation: {view.id}: skipped: {check.skipped}")
    held_ids = sorted(held)
    details = {**out.details, "validation": {"held": held_ids}} if held_ids else out.details
    return replace(out, details=details).with_warnings(*notes) if notes or held_ids else out


# --- after apply wrote the files ------------------------------------------------------------------


def validate(obj: AgentConfig, writes: Mapping[str, Mapping[str, Any]],
             read_text: Any, environ: Mapping[str, str] | None = None) -> Validation:
    """Check every target whose files `writes` changed; roll back those that fail.

    `read_text(file)` reads a file's current text (for the files hash of a held target);
    the rollback writes each file's `before` text back (or removes a file the run created).
    """
    from reconciler.drivers.agents.driver import write_all

    out = Validation()
    for view in targets_of(obj):
        touched = [f for f in view.files if f in writes]
        if not touched:
            continue
        check = check_for(view.target, path=(environ or os.environ).get("PATH"))
        if check.command is None:
            if check.skipped:
                out.watermarks[watermark_name(view.place)] = _state("skipped", message=check.skipped)
            continue
        problem = run_check(check, view.place, environ)
        shown = " ".join(check.command)
        if problem is None:
            out.watermarks[watermark_name(view.place)] = _state("passed", command=shown)
            continue
        back = {f: {**writes[f], "before": writes[f]["after"], "after": writes[f]["before"]}
                for f in touched if f not in out.rolled_back}
        write_all(back)
        out.rolled_back.update(touched)
        texts = {f: (writes[f]["before"] if f in writes else read_text(f)) for f in view.files}
        out.watermarks[watermark_name(view.place)] = _state(
            "failed", command=shown, message=problem, spec=view.spec_hash, files=files_hash(texts))
        out.errors.append(f"validation failed for {view.id}: {problem}; its files were rolled back "
                          f"({', '.join(touched)}) and it is not synced until its spec or files change")
    return out
