"""ruamel's composer, charging a node budget and checking explicit tags as it goes.

Composition is where YAML events become nodes and aliases become references; nothing has
been expanded yet, so this is the last place where a hostile file costs only what it
weighs. :class:`BoundedComposer` charges every node and alias to a
:class:`~reconciler.loading.limits.NodeBudget` before composing it, so a refusal arrives
at the event that crossed a limit, with its line and column.

Explicit tags are checked here too. A spec is plain data: strings, numbers, booleans,
nulls, lists and mappings. The core tags for those are accepted when the value really is
one (`!!int 5`, `!!str 123`, `!!float 2.5`); `!!int abc` or `!!bool maybe` is refused
with its location instead of failing deep inside the constructor, and every other tag
(`!!omap`, `!!set`, `!!binary`, `!!python/...`, local `!tags`) is refused: no spec field
takes one.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.composer import Composer
from ruamel.yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent
from ruamel.yaml.nodes import ScalarNode

from reconciler.loading.limits import NodeBudget, Refused

_CORE = "tag:yaml.org,2002:"
# A scalar tag is accepted when the value, read without it, resolves to one of these.
_SCALAR_TAGS = {
    "int": {"int"},
    "float": {"float", "int"},
    "bool": {"bool"},
    "null": {"null"},
    "timestamp": {"timestamp"},
}
_EXPECTED = {"int": "an integer", "float": "a number", "bool": "true or false", "null": "null",
             "timestamp": "a date or timestamp"}
_ACCEPTED = "!!str, !!int, !!float, !!bool, !!null, !!timestamp, !!seq and !!map"


def _short(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag


class BoundedComposer(Composer):
    """A composer that refuses (with `Refused`) what a spec cannot be."""

    def __init__(self, loader: Any = None, *, budget: NodeBudget) -> None:
        super().__init__(loader)
        self.budget = budget

    def compose_document(self) -> Any:
        self.budget.start_document()
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            self.budget.alias(anchor=event.anchor, mark=event.start_mark)
            return super().compose_node(parent, index)
        self._check_tag(event)
        if isinstance(event, ScalarEvent):
            self.budget.scalar(anchor=event.anchor, mark=event.start_mark)
            return super().compose_node(parent, index)
        self.budget.start_collection(anchor=event.anchor, mark=event.start_mark)
        node = super().compose_node(parent, index)
        self.budget.end_collection()
        return node

    def _check_tag(self, event: Any) -> None:
        """Let a core tag through on a value of its type; refuse every other tag."""
        tag = event.tag  # the full tag, or None when there is none
        if tag is None or tag == "!":
            return
        name = tag[len(_CORE):] if tag.startswith(_CORE) else None
        if isinstance(event, ScalarEvent):
            if name == "str":
                # Read as an untagged string: the round-trip constructor would otherwise
                # wrap it in a TaggedScalar, which is not a str.
                event.ctag = None
                event.implicit = (False, False)
                return
            if name in _SCALAR_TAGS:
                plain = str(self.resolver.resolve(ScalarNode, event.value, (True, False)))
                if plain[len(_CORE):] in _SCALAR_TAGS[name]:
                    return
                raise Refused(
                    f"{_short(tag)} {event.value!r}: the value is not {_EXPECTED[name]}",
                    line=event.start_mark.line, column=event.start_mark.column)
        elif (name == "seq" and isinstance(event, SequenceStartEvent)) or (
                name == "map" and isinstance(event, MappingStartEvent)):
            return
        raise Refused(
            f"explicit YAML tag {_short(tag)} is not supported here (specs accept {_ACCEPTED}, "
            "on values of that type)",
            line=event.start_mark.line, column=event.start_mark.column)


def bounded_composer(budget: NodeBudget) -> type[Composer]:
    """A composer class for `YAML.Composer` (which ruamel instantiates itself) charging `budget`."""

    class Bounded(BoundedComposer):
        def __init__(self, loader: Any = None) -> None:
            super().__init__(loader, budget=budget)

    return Bounded
