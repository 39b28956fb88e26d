"""What one spec file may cost to load: bytes, nodes, nodes added by aliases, nesting depth.

YAML lets a few hundred bytes describe billions of values: an anchor on a list of nine
items, a second list of nine aliases to it, and so on ("billion laughs"). The composed
node graph stays small, because an alias is a reference, but every consumer that walks
the data (our plain-data copy, validation) expands it. A long flat list does the same
damage honestly, one byte at a time. So a file is charged for the data it *means*, not the
bytes it is written in, while it is being composed and before anything is expanded:

- every node costs one; an alias costs the size of the node it names, computed once when
  that node was finished, so the charge is exact and O(1) per alias;
- the nodes added by aliases are counted separately, because a legitimate spec uses a few
  anchors for shared settings and a hostile one thousands;
- collections nest at most `max_depth` deep (the plain-data copy and validation recurse);
- an alias inside the node it names (a recursive structure) is refused outright.

The first charge that crosses a limit raises :class:`Refused` at the event that
crossed it, so a refusal names the line and column, the limit and the setting that raises
it. Counts are per file, across all its documents.

:class:`NodeBudget` is driven by events. The loader runs it twice: once over libyaml's
event stream (C, about fifty times faster than ruamel's pure-Python scanner, so a
megabyte of numbers is refused in a fraction of a second), then inside ruamel's composer,
which is what guarantees the bound: if libyaml is missing, or reads a file differently from
ruamel, the composer still refuses at the same place. A file under `PRECHECK_FROM_BYTES`
skips the first pass: ruamel reads it in milliseconds whatever it holds (aliases are
charged in O(1)), and the pass would cost more than it saves (importing PyYAML alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LoaderLimits:
    """Bounds on one spec file; the defaults are generous for hand-written specs."""

    max_bytes: int = 1_048_576
    max_nodes: int = 100_000
    max_alias_nodes: int = 10_000
    max_depth: int = 64


# The environment variable that raises each limit, named in refusals.
SETTING_OF = {
    "max_bytes": "RECONCILER_SPEC_MAX_BYTES",
    "max_nodes": "RECONCILER_SPEC_MAX_NODES",
    "max_alias_nodes": "RECONCILER_SPEC_MAX_ALIAS_NODES",
    "max_depth": "RECONCILER_SPEC_MAX_DEPTH",
}


class Refused(Exception):
    """A spec file refused at a place (0-based line and column, as YAML marks are): a limit
    crossed, or (from the composer) a tag no spec takes."""

    def __init__(self, message: str, *, line: int, column: int) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(message)


def _limit_text(limits: LoaderLimits, name: str) -> str:
    return f"the limit is {getattr(limits, name):,} ({SETTING_OF[name]})"


class NodeBudget:
    """Charges the nodes of one file as its events arrive; raises `Refused` when over."""

    def __init__(self, limits: LoaderLimits) -> None:
        self.limits = limits
        self.nodes = 0
        self.alias_nodes = 0
        self._open: list[tuple[str | None, int]] = []  # (anchor, nodes charged before it)
        self._depth = 0
        self._sizes: dict[str, int | None] = {}  # anchor -> expanded size; None while open

    def start_document(self) -> None:
        """Anchors are scoped to their document; counts go on across the file."""
        self._sizes = {}
        self._open = []
        self._depth = 0

    def _charge(self, count: int, mark: Any) -> None:
        self.nodes += count
        if self.nodes > self.limits.max_nodes:
            raise Refused(
                f"too many values: more than {self.limits.max_nodes:,} nodes in this file "
                f"(aliases counted expanded); {_limit_text(self.limits, 'max_nodes')}",
                line=mark.line, column=mark.column)

    def scalar(self, *, anchor: str | None, mark: Any) -> None:
        self._charge(1, mark)
        if anchor is not None:
            self._sizes[anchor] = 1

    def start_collection(self, *, anchor: str | None, mark: Any) -> None:
        self._depth += 1
        if self._depth > self.limits.max_depth:
            raise Refused(
                f"nested too deeply: more than {self.limits.max_depth} levels of lists and "
                f"mappings; {_limit_text(self.limits, 'max_depth')}",
                line=mark.line, column=mark.column)
        self._open.append((anchor, self.nodes))
        self._charge(1, mark)
        if anchor is not None:
            self._sizes[anchor] = None

    def end_collection(self) -> None:
        anchor, before = self._open.pop()
        self._depth -= 1
        if anchor is not None:
            self._sizes[anchor] = self.nodes - before

    def alias(self, *, anchor: str, mark: Any) -> None:
        if anchor not in self._sizes:
            return  # an undefined alias: the composer reports it as a YAML error
        size = self._sizes[anchor]
        if size is None:
            raise Refused(
                f"the alias *{anchor} is inside the node it refers to (a recursive structure)",
                line=mark.line, column=mark.column)
        self.alias_nodes += size
        if self.alias_nodes > self.limits.max_alias_nodes:
            raise Refused(
                f"aliases expand to too many values: more than {self.limits.max_alias_nodes:,} "
                f"nodes added by aliases in this file (*{anchor} adds {size:,}); "
                f"{_limit_text(self.limits, 'max_alias_nodes')}",
                line=mark.line, column=mark.column)
        self._charge(size, mark)


# Below this size the libyaml pass is skipped (see the module's docstring).
PRECHECK_FROM_BYTES = 16_384


def precheck_events(text: str, *, limits: LoaderLimits) -> None:
    """Run the budget over libyaml's events, when libyaml is there; raise `Refused`.

    A file libyaml cannot parse is left to ruamel, whose composer charges the same budget
    and reports syntax errors in its own words. A small file is left to ruamel too."""
    if len(text) < PRECHECK_FROM_BYTES:
        return
    try:
        import yaml
        from yaml._yaml import CParser  # the C extension: absent without libyaml
    except ImportError:
        return
    budget = NodeBudget(limits)
    parser = CParser(text)
    try:
        while True:
            event = parser.get_event()
            if isinstance(event, yaml.ScalarEvent):
                budget.scalar(anchor=event.anchor, mark=event.start_mark)
            elif isinstance(event, yaml.CollectionStartEvent):
                budget.start_collection(anchor=event.anchor, mark=event.start_mark)
            elif isinstance(event, yaml.CollectionEndEvent):
                budget.end_collection()
            elif isinstance(event, yaml.AliasEvent) and event.anchor is not None:
                budget.alias(anchor=event.anchor, mark=event.start_mark)
            elif isinstance(event, yaml.DocumentStartEvent):
                budget.start_document()
            elif isinstance(event, yaml.StreamEndEvent):
                return
    except yaml.YAMLError:
        return
    finally:
        parser.dispose()
