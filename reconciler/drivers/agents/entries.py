"""What an adapter renders: owned entries in native files, and a translation report.

An `Entry` is one key the reconciler owns in one native file: a JSON pointer, TOML or
YAML path (`pointer`), or the whole file (`pointer == ()`), or its managed block in a
Markdown file. Its `key` (the displayed file path, as the spec wrote the root, plus the
pointer) is what the store's inventory records, so ownership survives a different `$HOME`.
`preserve` lists sub-paths inside the entry that belong to the client (Codex per-tool
approval tables): they are never removed, whatever the conflict policy.

An entry with an `item` is one item of a list that is a *set* (a permission allow / ask /
deny list, Rovo Dev's `bash.commands`): the reconciler owns that item, never the list, so
items someone else put in the list are never removed, reordered or rewritten. Its key is
the list's key plus `#` and the item's identity (see `lists`). `sets` names sub-lists inside
an owned object that are sets in the same sense (Codex `disabled_tools`, Gemini
`excludeTools`); every other list is one value, replaced whole. `security` marks a key
whose value is a permission level (`allow` / `ask` / `deny`), so that a change that
weakens it is caught. A Markdown block's `sections` are its rules one by one, so that a
rule whose text is already in the file (written by hand, or imported from it) is not
written a second time.

A `Note` is one line of the translation report: a canonical field that a client drops or
can only express in a weaker form. With `strict: true` notes are errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from reconciler.drivers.agents.documents import Format
from reconciler.models.agents import AgentClient, AgentTarget, ConflictPolicy, TargetScope


def escape_pointer(part: str) -> str:
    # `~2` for `#` is ours (not RFC 6901): `#` separates a list's key from an item's identity.
    return part.replace("~", "~0").replace("/", "~1").replace("#", "~2")


def unescape_pointer(part: str) -> str:
    return part.replace("~2", "#").replace("~1", "/").replace("~0", "~")


def expand(display: str, cwd: Path | None = None) -> Path:
    """The absolute path of a displayed path: `~` and `$VARS` expanded, relative to cwd."""
    path = Path(os.path.expandvars(os.path.expanduser(display)))
    return path if path.is_absolute() else (cwd or Path.cwd()) / path


@dataclass(frozen=True, slots=True)
class Entry:
    client: AgentClient
    file: str  # as displayed: the root as written in the spec + the relative path
    format: Format
    pointer: tuple[str, ...]
    value: Any
    canonical: str = ""  # where it comes from in the spec, e.g. mcpServers.github
    preserve: tuple[tuple[str, ...], ...] = ()
    marker: str = ""  # block marker for Format.BLOCK
    policy: ConflictPolicy | None = None  # the target's own policy, if it set one
    item: str | None = None  # identity of one item of the set-list at `pointer`
    sets: tuple[tuple[str, ...], ...] = ()  # sub-lists of the value that are sets of items
    security: bool = False  # the value is a permission level (allow / ask / deny)
    sections: tuple[tuple[str, str], ...] = ()  # Format.BLOCK: (rule content, its section)
    # The client's spellings of an env reference (group 1: the variable), e.g. `$X` and `${X}`
    # for Qwen Code: a value in the file that names the same variable another way is kept.
    env_ref: re.Pattern[str] | None = None
    # Keys of an object value that the client reads as this value when they are absent
    # (Rovo Dev: no `transport` on a command is stdio): a user's entry that leaves one out
    # is not given it.
    implied: tuple[tuple[str, Any], ...] = ()
    # With `security`, how strict each value is, when not a level (allow / ask / deny): a
    # client's default permission modes, e.g. Claude's dontAsk 3 … bypassPermissions 0.
    ranks: tuple[tuple[str, int], ...] = ()
    # A whole text file's meaning (a rule file's front matter and body): a file that says the
    # same thing another way (quotes, a flow list, key order) is in sync and keeps its bytes.
    meaning: Callable[[str], Any] | None = None

    @property
    def key(self) -> str:
        if self.format is Format.BLOCK:
            return f"{self.file}#block"
        if not self.pointer:
            return self.file
        base = self.file + "#/" + "/".join(escape_pointer(p) for p in self.pointer)
        return base if self.item is None else f"{base}#{self.item}"


class KeyParts(NamedTuple):
    file: str
    pointer: tuple[str, ...]
    is_block: bool
    item: str | None = None


def parse_key(key: str) -> KeyParts:
    """The parts of an inventory key: file, pointer, whether a Markdown block, item identity."""
    file, _, fragment = key.partition("#")
    if fragment == "block":
        return KeyParts(file, (), True)
    if not fragment:
        return KeyParts(file, (), False)
    pointer, sep, item = fragment.partition("#")
    return KeyParts(file, tuple(unescape_pointer(p) for p in pointer.lstrip("/").split("/")), False,
                    item if sep else None)


class Severity:
    DROPPED = "dropped"
    WEAKENED = "weakened"


@dataclass(frozen=True, slots=True)
class Note:
    client: AgentClient
    field: str  # canonical path, e.g. mcpServers.docs.transport
    severity: str
    detail: str

    def __str__(self) -> str:
        return f"{self.client}: {self.field} {self.severity}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Place:
    """Where one target writes: its client, scope and root (displayed and expanded)."""

    client: AgentClient
    scope: TargetScope
    root: str  # as written (default '~' or '.'), used in keys
    marker: str  # the object's name, for Markdown blocks
    overrides: dict[str, Any] = field(default_factory=dict)
    policy: ConflictPolicy | None = None

    @classmethod
    def of(cls, target: AgentTarget, marker: str) -> Place:
        return cls(target.client, target.scope, target.effective_root.rstrip("/") or "/",
                   marker, dict(target.overrides), target.conflict_policy)

    @property
    def user(self) -> bool:
        return self.scope is TargetScope.USER

    def file(self, relative: str) -> str:
        return f"{self.root}/{relative}"


@dataclass(slots=True)
class Rendering:
    """An adapter's output for one target: entries and notes, built up by helpers."""

    place: Place
    entries: list[Entry] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    env_ref: re.Pattern[str] | None = None  # the client's env-reference spellings (see Entry)

    def put(self, relative: str, fmt: Format, pointer: tuple[str, ...], value: Any, *,
            canonical: str = "", preserve: tuple[tuple[str, ...], ...] = (),
            sets: tuple[tuple[str, ...], ...] = (), security: bool = False,
            sections: tuple[tuple[str, str], ...] = (), implied: Mapping[str, Any] | None = None,
            ranks: Mapping[str, int] | None = None, meaning: Callable[[str], Any] | None = None) -> None:
        self.entries.append(Entry(self.place.client, self.place.file(relative), fmt, pointer, value,
                                  canonical, preserve, self.place.marker, self.place.policy,
                                  sets=sets, security=security or ranks is not None, sections=sections,
                                  env_ref=self.env_ref, implied=tuple((implied or {}).items()),
                                  ranks=tuple((ranks or {}).items()), meaning=meaning))

    def put_items(self, relative: str, fmt: Format, pointer: tuple[str, ...], items: list[Any], *,
                  canonical: str = "", rules: Sequence[str | None] = ()) -> None:
        """Each item of a set-list as an entry of its own (the list itself stays shared).
        `rules`, beside `items`, names the canonical permission rule each item is: an item's
        field is then that rule's level (`permissions[RULE]`), so that moving it to another
        level list, or out of every one, is an edit of that one rule (see specpatch)."""
        from reconciler.drivers.agents.lists import identity, kind_of
        from reconciler.drivers.agents.specpatch import level_field

        kind = kind_of(pointer)
        for value, rule in zip(items, [*rules, *[None] * (len(items) - len(rules))], strict=True):
            self.entries.append(Entry(self.place.client, self.place.file(relative), fmt, pointer, value,
                                      level_field(rule) if rule else canonical, (), self.place.marker,
                                      self.place.policy, item=identity(kind, value)))

    def fold(self, relative: str, path: tuple[str, ...], value: Any) -> bool:
        """Set `path` inside the value of an entry that holds it (an override of a field of an
        owned MCP server entry); False when no entry holds that path."""
        file = self.place.file(relative)
        for index, entry in enumerate(self.entries):
            depth = len(entry.pointer)
            if (entry.file == file and entry.item is None and depth and len(path) > depth
                    and path[:depth] == entry.pointer and isinstance(entry.value, dict)):
                folded = _set_in(entry.value, path[depth:], value)
                self.entries[index] = replace(entry, value=folded)
                return True
        return False

    def note(self, canonical: str, severity: str, detail: str) -> None:
        self.notes.append(Note(self.place.client, canonical, severity, detail))

    def dropped(self, canonical: str, detail: str) -> None:
        self.note(canonical, Severity.DROPPED, detail)

    def weakened(self, canonical: str, detail: str) -> None:
        self.note(canonical, Severity.WEAKENED, detail)


def _set_in(value: dict[str, Any], path: tuple[str, ...], new: Any) -> dict[str, Any]:
    out = dict(value)
    if len(path) == 1:
        out[path[0]] = new
        return out
    inner = out.get(path[0])
    out[path[0]] = _set_in(inner if isinstance(inner, dict) else {}, path[1:], new)
    return out
