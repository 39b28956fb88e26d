"""Spec patches: a client's edit taken into the AgentConfig spec, in memory and in its file.

A proposal (see `proposals`) says "the spec field `canonical` should become `value`":
`mcpServers.NAME` (a server, or None to drop it), `permissions.allow|ask|deny|defaultMode`
(the list or mode as the client holds it), `permissions[RULE]` (the level one rule has:
`allow`, `ask` or `deny`, or None for none; the rule leaves the other lists: a Rovo Dev
command item whose `permission` was edited moves its rule from `deny` to `ask`) or
`rules[NAME]` (the rule, as a one-item list, or an empty list to drop it), `rules[NAME].FIELD`
(one field of a rule: `description`, `paths` or `content`, as a person edited it in the
reconciler's block of an instruction file) or `rules` (several such fields at once, a
mapping of `rules[NAME].FIELD` to values). `patched`
applies such patches to a spec body (plain dicts, camelCase as in the YAML); `patch_text`
applies them to the text of the spec file that declares the object, changing only the
bytes of the patched fields (`specwriting`): comments, quotes, flow collections and the
other documents of the file stay. What a patch writes takes the style of what it replaces
(a string its quotes, a list its flow style, a new rule the quotes of the list's first),
and a server patch keeps the spec's keys the client's file leaves out when they say what
the spec would mean without them (`transport: http` beside a `url`). `weakened` says
which rules a patch would let through more easily (a deny or ask removed or lowered):
those are never accepted without a person.

Where the spec came from is recorded per object by `remember` (the daemon does it for
every spec set it takes): `spec_file` answers with the file (folder mode) and the time the
spec last changed (the file's mtime); specs from a git revision have no file here, so a
hand edit under last-write-wins is then proposed rather than accepted. For those,
`spec_blob` answers with the file's path inside the repository (the loader records
`REV:PATH`), and a daemon following a git branch registers its `SpecWriter` (`use_git`):
accepting a proposal then makes a commit on a branch of the daemon's clone
(`runtime/writeback.py`) instead of writing a file.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reconciler.drivers.agents.specwriting import PatchError, rewrite
from reconciler.errors import SpecError
from reconciler.models.common import ObjectRef

_RULE = re.compile(r"^rules\[(?P<name>[^\]]+)\](?:\.(?P<field>description|paths|content))?$")
_LEVEL = re.compile(r"^permissions\[(?P<rule>.+)\]$")
LEVELS = ("allow", "ask", "deny")  # as the spec lists them; deny is the strictest
_RANK = {"allow": 0, "ask": 1, "deny": 2}


@dataclass(frozen=True, slots=True)
class SpecFile:
    path: Path
    changed_at: float  # epoch seconds: when the spec last changed


@dataclass(frozen=True, slots=True)
class Committed:
    """A spec patch committed in git mode."""

    repository: str  # the daemon's clone, where the branch is
    branch: str  # the new local branch holding the commit
    commit: str
    path: str  # the spec file, relative to the repository's root
    base: str  # the branch the commit was based on
    pushed_to: str | None = None  # the remote branch it was pushed to (`--write-back`)


class SpecWriter(Protocol):
    """Where the spec lives when it is not a file here: a git branch (see `runtime/writeback.py`)."""

    @property
    def watched(self) -> str: ...

    def commit(self, *, path: str, change: Callable[[str], str], branch: str, message: str) -> Committed: ...


_ORIGINS: dict[ObjectRef, str] = {}
_WRITER: list[SpecWriter] = []


def use_git(writer: SpecWriter | None) -> None:
    """Register the daemon's git write-back (None: none, folder mode)."""
    _WRITER[:] = [writer] if writer is not None else []


def git_writer() -> SpecWriter | None:
    return _WRITER[0] if _WRITER else None


def spec_blob(ref: ObjectRef) -> str | None:
    """The repository-relative path of the file declaring `ref` in a git revision (`REV:PATH`
    as the loader records it), or None when it is not from a git revision."""
    source = _ORIGINS.get(ref)
    if source is None or Path(source).is_file():
        return None
    rev, sep, path = source.partition(":")
    if not (sep and rev and path.strip("/")):
        return None
    return path.strip("/")


def remember(origins: Mapping[ObjectRef, Any]) -> None:
    """Record where each object was declared (`SpecSet.origins`), replacing what was known."""
    _ORIGINS.clear()
    for ref, origin in origins.items():
        _ORIGINS[ref] = str(getattr(origin, "source", origin))


def spec_file(ref: ObjectRef) -> SpecFile | None:
    """The file declaring `ref` and when it last changed; None for a git revision or unknown."""
    source = _ORIGINS.get(ref)
    if source is None or not Path(source).is_file():
        return None  # unknown, or `rev:path` of a git revision
    path = Path(source).resolve()
    try:
        return SpecFile(path, path.stat().st_mtime)
    except OSError:
        return None


# --- patches on plain bodies -------------------------------------------------------------


def _locate(canonical: str) -> tuple[str, ...]:
    match = _RULE.match(canonical)
    if match:
        return ("rules", match.group("name"), *([match.group("field")] if match.group("field") else []))
    parts = tuple(canonical.split("."))
    if len(parts) == 2 and parts[0] in ("mcpServers", "permissions"):
        return parts
    raise PatchError(f"cannot patch spec field {canonical!r}: expected mcpServers.NAME, "
                     "permissions.FIELD, permissions[RULE], rules[NAME], rules[NAME].FIELD or rules "
                     "(a mapping of rules[NAME].FIELD to values)")


def _set_rule_field(spec: MutableMapping[str, Any], name: str, field: str, value: Any) -> None:
    """One field of the rule `name` (its description, paths or content) set; an empty value
    is the field's default, left out."""
    rules = spec.get("rules") or ()
    rule = next((r for r in rules if isinstance(r, MutableMapping) and r.get("name") == name), None)
    if rule is None:
        raise PatchError(f"cannot patch rules[{name}].{field}: the spec has no rule {name!r}")
    if value in (None, "", []):
        if field == "content":
            raise PatchError(f"cannot patch rules[{name}].content: a rule needs content")
        rule.pop(field, None)
    else:
        _assign(rule, field, value)


def _assign(container: MutableMapping[str, Any], key: str, value: Any) -> None:
    """Set `key` to `value`, editing nested mappings in place (their styles stay)."""
    old = container.get(key)
    if isinstance(old, MutableMapping) and isinstance(value, Mapping):
        for k in [k for k in old if k not in value]:
            del old[k]
        for k, v in value.items():
            if old.get(k) != v:
                _assign(old, k, v)
    else:
        container[key] = _styled_like(old, value)


def _styled_like(old: Any, value: Any) -> Any:
    """`value` in the style of `old`, the spec's value it replaces (ruamel's round-trip
    values; plain ones pass through): a string in its quotes, a list in its flow or block
    style with the items it keeps spelled as they were and new strings quoted like its first."""
    from ruamel.yaml.comments import CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, ScalarString, SingleQuotedScalarString

    if isinstance(value, str) and not isinstance(value, ScalarString):
        quoted = isinstance(old, DoubleQuotedScalarString | SingleQuotedScalarString)
        return type(old)(value) if quoted else value
    if isinstance(value, list) and isinstance(old, CommentedSeq):
        first = old[0] if old else None
        return _like(old, [old[old.index(v)] if v in old else _styled_like(first, v) for v in value])
    return value


def _kept_implied(old: Any, value: Any) -> Any:
    """A server patch `value` with the keys of the spec's server (`old`) it leaves out that
    change nothing (`transport: http` beside a `url` is what the spec means without it):
    a client's file reads back without them, and the spec keeps its own spelling."""
    from pydantic import ValidationError

    from reconciler.models.agents import McpServer

    if not isinstance(old, Mapping) or not isinstance(value, Mapping):
        return value
    try:
        meant = McpServer.model_validate(_plain(value))
        out = dict(value)
        for key in [key for key in old if key not in value]:
            if McpServer.model_validate({**_plain(value), key: _plain(old[key])}) == meant:
                out[key] = old[key]
    except ValidationError:
        return value
    return out


def level_field(rule: str) -> str:
    """The canonical field of one rule's level (`permissions[Bash(rm -rf *)]`)."""
    return f"permissions[{rule}]"


def rule_of(canonical: str) -> str | None:
    """The rule of a `permissions[RULE]` field, else None."""
    match = _LEVEL.match(canonical)
    return match.group("rule") if match else None


def _like(sample: Any, items: list[Any]) -> Any:
    """A new list for the spec, in the flow or block style of `sample` (a ruamel list)."""
    from ruamel.yaml.comments import CommentedSeq

    if not isinstance(sample, CommentedSeq):
        return items
    seq = CommentedSeq(items)
    if sample.fa.flow_style():
        seq.fa.set_flow_style()
    return seq


def _set_level(spec: MutableMapping[str, Any], rule: str, level: Any) -> None:
    """`rule` out of every permission list, then into `level`'s (None: into none)."""
    if level is not None and level not in LEVELS:
        raise PatchError(f"cannot give {rule} the level {level!r}: expected one of {', '.join(LEVELS)}")
    section = spec.get("permissions")
    if not isinstance(section, MutableMapping):
        if level is None:
            return
        spec["permissions"] = section = {}
    lists = [section[n] for n in LEVELS if isinstance(section.get(n), list)]
    first = next((items[0] for items in lists if items), None)  # how the file quotes rules
    sample, place, moved = None, len(section), None
    for name in LEVELS:
        items = section.get(name)
        if not isinstance(items, list) or rule not in items:
            continue
        sample = items if sample is None else sample
        for index in reversed([i for i, item in enumerate(items) if item == rule]):
            moved = items.pop(index)
        if not items:
            place = min(place, list(section).index(name))
            del section[name]
    if level is None:
        return
    target = section.get(level)
    if not isinstance(target, list):
        target = _like(sample if sample is not None else next(iter(lists), None), [])
        insert = getattr(section, "insert", None)
        if insert is not None and place < len(section):
            insert(place, level, target)  # where the list it left was
        else:
            section[level] = target
    if rule not in target:  # spelled as in the list it left when it makes a new one
        target.append(_styled_like(target[0], rule) if target else moved or _styled_like(first, rule))


def apply_patch(spec: MutableMapping[str, Any], canonical: str, value: Any) -> None:
    """Apply one patch to a spec body (plain or ruamel containers)."""
    rule = rule_of(canonical)
    if rule is not None:
        _set_level(spec, rule, value)
        return
    if canonical == "rules" and isinstance(value, Mapping):  # several fields of the rules at once
        for field, new in value.items():
            if not field.startswith("rules["):
                raise PatchError(f"cannot patch spec field {field!r} as part of rules")
            apply_patch(spec, field, new)
        return
    where = _locate(canonical)
    if len(where) == 3:
        _set_rule_field(spec, where[1], where[2], value)
        return
    if where[0] == "rules":
        rules = spec.setdefault("rules", [])
        at = next((i for i, r in enumerate(rules) if r.get("name") == where[1]), None)
        new = [r for r in (value or []) if isinstance(r, Mapping)]
        if at is None:
            rules.extend(new)
        elif new:
            for k in [k for k in rules[at] if k not in new[0]]:
                del rules[at][k]
            for k, v in new[0].items():
                if rules[at].get(k) != v:
                    rules[at][k] = v
        else:
            del rules[at]
        return
    section = spec.get(where[0])
    if value is None or (value == [] and where[0] == "permissions"):
        if isinstance(section, MutableMapping) and where[1] in section:
            del section[where[1]]
        return
    if not isinstance(section, MutableMapping):
        spec[where[0]] = section = {}
    if where[0] == "mcpServers":
        value = _kept_implied(section.get(where[1]), value)
    _assign(section, where[1], value)


def patched(body: Mapping[str, Any], patches: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of the spec body with the patches applied."""
    import copy

    spec = copy.deepcopy(dict(body))
    for canonical, value in patches:
        apply_patch(spec, canonical, value)
    return spec


def _levels(permissions: Any) -> dict[str, str]:
    """rule → its strictest level in a spec's `permissions` (plain or ruamel)."""
    out: dict[str, str] = {}
    if isinstance(permissions, Mapping):
        for level in LEVELS:  # loosest first: a stricter list overrides
            for rule in permissions.get(level) or ():
                out[str(rule)] = level
    return out


# How strict each canonical default mode is (no mode: the clients' own default, which asks).
_MODE_RANK = {"plan": 2, "default": 2, "acceptEdits": 1, "bypassPermissions": 0}


def weakened(permissions: Mapping[str, Any], patches: Iterable[tuple[str, Any]]) -> list[str]:
    """The rules the patches would let through more easily: a deny or ask rule removed or
    turned looser (`Bash(rm -rf *): deny → ask`), and a looser default mode (`defaultMode:
    default → bypassPermissions`: every client then allows what it asked about)."""
    before = _levels(permissions)
    changed = patched({"permissions": permissions}, patches).get("permissions") or {}
    after = _levels(changed)
    out = []
    for rule, level in before.items():
        new = after.get(rule)
        if _RANK[level] > 0 and (new is None or _RANK[new] < _RANK[level]):
            out.append(f"{rule}: {level} → {new or 'none'}")
    old_mode = str(permissions.get("defaultMode") or "default")
    new_mode = str(changed.get("defaultMode") or "default") if isinstance(changed, Mapping) else "default"
    if _MODE_RANK.get(new_mode, 2) < _MODE_RANK.get(old_mode, 2):
        out.append(f"defaultMode: {old_mode} → {new_mode}")
    return out


def describe(permissions: Mapping[str, Any], canonical: str, value: Any) -> tuple[str, list[str]]:
    """How a patch reads to a reviewer (`moves Bash(x) from deny to ask`, '' when `spec.FIELD
    = VALUE` says it all) and the rules it weakens (see `weakened`)."""
    weakens = weakened(permissions, [(canonical, value)])
    rule = rule_of(canonical)
    if rule is None:
        return ("weakens " + "; ".join(weakens) if weakens else ""), weakens
    old = _levels(permissions).get(rule)
    what = (f"moves {rule} from {old} to {value}" if old and value else f"removes {rule} from {old}"
            if old else f"adds {rule} to {value}")
    return (f"{what}: this weakens a security rule of every client" if weakens else what), weakens


def field_value(spec: Mapping[str, Any], canonical: str) -> Any:
    """What a spec body says for the field a patch sets (None: nothing): the server, the
    list or mode, the rule's level, the named rule (as a one-item list, or empty)."""
    rule = rule_of(canonical)
    if rule is not None:
        return _levels(spec.get("permissions")).get(rule)
    if canonical == "rules":  # several rules' fields in one patch: all the rules
        return list(spec.get("rules") or ())
    where = _locate(canonical)
    if where[0] == "rules":
        return [r for r in spec.get("rules") or () if isinstance(r, Mapping) and r.get("name") == where[1]]
    section = spec.get(where[0])
    return section.get(where[1]) if isinstance(section, Mapping) else None


def spec_field(obj: Any, canonical: str) -> Any:
    """What `obj`'s spec says for the field `canonical`, as the spec file states it (plain
    JSON, defaults left out); `PatchError` for a field no patch can set."""
    body = obj.model_dump(mode="json", by_alias=True, exclude={"status"}, exclude_defaults=True)
    return field_value(body.get("spec") or {}, canonical)


def spec_digest(obj: Any, canonical: str) -> str:
    """A digest of `spec_field(obj, canonical)`. A proposal records it when a run sees the
    edit; accept compares it with the spec as it is then, so that a proposal never overwrites
    a newer change of that field (see `deciding`)."""
    raw = json.dumps(spec_field(obj, canonical), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def declared(text: str, ref: ObjectRef, *, source: str) -> Any:
    """The object `ref` as the spec file's text declares it, loaded as the loader loads it;
    `PatchError` when the text does not hold it or does not load."""
    from reconciler.loading.documents import parse_documents
    from reconciler.loading.specs import build_spec_set

    try:
        obj = build_spec_set(parse_documents(text, source=source)).get(ref)
    except SpecError as exc:
        raise PatchError(f"{source} does not load ({exc.problems[0]}); nothing was written") from None
    if obj is None:
        raise PatchError(f"{source}: no {ref.short} in this file; nothing was written")
    return obj


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- patches on the spec file's text ----------------------------------------------------


def patch_text(text: str, ref: ObjectRef, patches: Iterable[tuple[str, Any]], *, source: str,
               must_change: bool = False) -> str:
    """The spec file's text with the patches applied to `ref`'s spec, only the patched
    fields' bytes changed (see `specwriting`). `must_change`: a patch that leaves the spec as
    it was (the spec already says it, or the field means nothing) is a `PatchError`, never
    a silent success."""
    patches = list(patches)

    def change(spec: Any) -> None:
        for canonical, value in patches:
            apply_patch(spec, canonical, value)

    out = rewrite(text, ref, change, source=source)
    if must_change and out == text:
        fields = ", ".join(f"{field} = {json.dumps(value, ensure_ascii=False)}" for field, value in patches)
        raise PatchError(f"{source}: the patch ({fields}) changes nothing in the spec of {ref.short}; "
                         "nothing was written")
    return out
