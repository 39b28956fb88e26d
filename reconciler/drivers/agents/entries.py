"""What an adapter renders: owned entries in native files, and a translation report.

An `Entry` is one key the reconciler owns in one native file: a JSON pointer, TOML or
YAML path (`pointer`), or the whole file (`pointer == ()`), or its managed block in a
Markdown file. Its `key` (the displayed file path, as the spec wrote the root, plus the
pointer) is what the store's inventory records, so ownership survives a different `$HOME`.
`preserve` lists sub-paths inside the entry that belong to the client (Codex per-tool
approval tables): they are never removed, whatever the conflict policy.

A `Note` is one line of the translation report: a canonical field that a client drops or
can only express in a weaker form. With `strict: true` notes are errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.drivers.agents.documents import Format
from reconciler.models.agents import AgentClient, AgentTarget, ConflictPolicy, TargetScope


def escape_pointer(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def unescape_pointer(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


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

    @property
    def key(self) -> str:
        if self.format is Format.BLOCK:
            return f"{self.file}#block"
        if not self.pointer:
            return self.file
        return self.file + "#/" + "/".join(escape_pointer(p) for p in self.pointer)


def parse_key(key: str) -> tuple[str, tuple[str, ...], bool]:
    """(file, pointer, is_block) of an inventory key."""
    file, _, fragment = key.partition("#")
    if fragment == "block":
        return file, (), True
    if not fragment:
        return file, (), False
    return file, tuple(unescape_pointer(p) for p in fragment.lstrip("/").split("/")), False


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

    def put(self, relative: str, fmt: Format, pointer: tuple[str, ...], value: Any, *,
            canonical: str = "", preserve: tuple[tuple[str, ...], ...] = ()) -> None:
        self.entries.append(Entry(self.place.client, self.place.file(relative), fmt, pointer, value,
                                  canonical, preserve, self.place.marker, self.place.policy))

    def note(self, canonical: str, severity: str, detail: str) -> None:
        self.notes.append(Note(self.place.client, canonical, severity, detail))

    def dropped(self, canonical: str, detail: str) -> None:
        self.note(canonical, Severity.DROPPED, detail)

    def weakened(self, canonical: str, detail: str) -> None:
        self.note(canonical, Severity.WEAKENED, detail)
