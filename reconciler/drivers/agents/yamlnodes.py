"""A YAML text as ruamel composes it: plain values, node positions, the spans of entries.

`yamlspans` edits a file's text, never a dumped tree; this module tells it what the text
holds and where. `parse` reads the values (as plain JSON-like Python values) and the node
tree with positions, refuses what the client could not read (a parse error, a duplicated
key, a top level that is not a mapping) with a line and column, and finds the nodes that are
written once and referred to again (anchors and their aliases) and the file's indentation.

**Spans.** An *entry* of a block mapping runs from the start of its key's line to the end
of its content: the last line before the next sibling key (or before the end of its
parent) that is neither blank nor a comment. An *item* of a block sequence runs the same
way from its dash's line. A comment block before the next key, or at the end of a mapping
or of the file, belongs to no entry and stays where it is.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarbool import ScalarBoolean

from reconciler.drivers.agents.documents import MISSING, DocumentError
from reconciler.drivers.agents.yamlsnippets import Style

MERGE = "tag:yaml.org,2002:merge"

Steps = tuple[str | int, ...]
"""A path into a document: keys of mappings, and numbers of items of block sequences
(`spec.rules[0].content` is `("spec", "rules", 0, "content")`)."""


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parsed:
    value: dict[str, Any]  # plain values, read from the text itself
    work: str  # the text with a final newline, which node positions refer to
    root: Node | None
    shared: frozenset[int]  # ids of nodes written once and referred to again (anchor + aliases)
    style: Style


def plain(value: Any) -> Any:
    """ruamel's round-trip values as plain JSON-like ones (dict, list, str, int, float, bool)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, TaggedScalar):
        return plain(value.value)
    if isinstance(value, ScalarBoolean):  # an anchored `true`: an int subclass, not a bool
        return bool(value)
    for kind in (bool, int, float, str):  # ScalarFloat, ScalarInt, quoted strings → builtins
        if isinstance(value, kind):
            return kind(value)
    return value


def is_flow(node: Node | None) -> bool:
    return isinstance(node, MappingNode | SequenceNode) and node.flow_style is True


def _survey(root: Node, text: str, source: str) -> tuple[frozenset[int], Style]:
    """Refuse duplicated keys; find shared nodes and the file's indentation style."""
    seen: set[int] = set()
    shared: set[int] = set()
    indents: Counter[int] = Counter()
    offsets: Counter[int] = Counter()

    def visit(node: Node) -> None:
        if id(node) in seen:
            shared.add(id(node))
            return
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            for item in node.value:
                visit(item)
        if not isinstance(node, MappingNode):
            return
        first: dict[tuple[str, str], ScalarNode] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode) and str(key.tag) != MERGE:
                earlier = first.setdefault((str(key.tag), key.value), key)
                if earlier is not key:
                    raise DocumentError(source, key.start_mark.line + 1, key.start_mark.column + 1,
                                        f"expected each key once in a mapping: duplicated key "
                                        f"{key.value!r} (first at line "
                                        f"{earlier.start_mark.line + 1})")
            below = value.start_mark.line > key.start_mark.line and not is_flow(value)
            if below and isinstance(value, MappingNode) and value.value:
                indents[value.value[0][0].start_mark.column - key.start_mark.column] += 1
            if below and isinstance(value, SequenceNode) and text[value.start_mark.index] == "-":
                offsets[value.start_mark.column - key.start_mark.column] += 1
            visit(key)
            visit(value)

    visit(root)
    return frozenset(shared), Style(
        mapping=indents.most_common(1)[0][0] if indents else 2,
        offset=offsets.most_common(1)[0][0] if offsets else 0)


def parse(text: str, source: str) -> Parsed:
    newline = "\r\n" if "\r\n" in text else "\n"
    # Positions come from the text with a final newline, so that every line of it ends
    # with one; values come from the text itself (a literal block at the very end reads
    # differently without its newline).
    work = text if not text or text.endswith("\n") else text + newline
    try:
        root = YAML(typ="rt").compose(work)
        shared, style = _survey(root, work, source) if root is not None else (frozenset(), Style())
        loaded = YAML(typ="rt").load(text) if text.strip() else None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise DocumentError(source, mark.line + 1 if mark else None, mark.column + 1 if mark else None,
                            str(exc.problem or exc.context)) from None
    if loaded is not None and not isinstance(loaded, Mapping):
        mark = root.start_mark if root is not None else None
        raise DocumentError(source, mark.line + 1 if mark else 1, mark.column + 1 if mark else 1,
                            "expected a mapping at the top level")
    return Parsed(plain(loaded or {}), work, root, shared, style)


# -- plain values along a path -------------------------------------------------------------


def value_at(doc: Any, path: Steps) -> Any:
    """The plain value at `path`, or `missing`."""
    value: Any = doc
    for key in path:
        if isinstance(key, int):
            value = value[key] if isinstance(value, list) and 0 <= key < len(value) else MISSING
        else:
            value = value.get(key, MISSING) if isinstance(value, dict) else MISSING
        if value is MISSING:
            break
    return value


def nested(keys: Steps, value: Any) -> Any:
    """`value` under the mappings `keys` name (`a.b` → `{a: {b: value}}`)."""
    for key in reversed(keys):
        value = {key: value}
    return value


def with_value(doc: dict[str, Any], path: Steps, value: Any) -> dict[str, Any]:
    """A copy of `doc` with `value` at `path` (missing mappings on the way made)."""
    out = copy.deepcopy(doc)
    holder: Any = out
    for key, following in pairwise(path):
        if isinstance(key, str) and isinstance(following, str) and not isinstance(holder.get(key), dict):
            holder[key] = {}
        holder = holder[key]
    holder[path[-1]] = copy.deepcopy(value)
    return out


def without(doc: dict[str, Any], path: Steps) -> dict[str, Any]:
    """A copy of `doc` without the value at `path`."""
    out = copy.deepcopy(doc)
    holder: Any = out
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    return out


def same(a: Any, b: Any) -> bool:
    """Equal, type for type (`1 == True == 1.0` in Python, not in the file)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def dotted(path: Steps) -> str:
    """`spec.rules[0].content`."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else f".{key}" if out else str(key)
    return out or "the top level"


# -- locating -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """One entry of a block mapping (with its `key`) or one item of a block sequence."""

    node: Node  # the entry's value, or the item
    key: ScalarNode | None
    start: int  # the start of its first line
    end: int  # after the newline of its last content line


@dataclass(frozen=True, slots=True)
class Trail:
    """How far a path exists as written keys of block mappings."""

    entries: tuple[Span, ...]  # the entries of path[0], path[1], ... that exist
    holder: Node | None  # what holds the next key: the root, or the last entry's value
    bound: int  # where the holder's content stops


def start_of_line(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def end_of_line(text: str, index: int) -> int:
    """After the newline of the line holding `index`."""
    return text.find("\n", index) + 1 or len(text)


def last_char(node: Node, text: str, seen: frozenset[int] = frozenset()) -> int:
    """The index of the node's last character; -1 for an empty scalar (ruamel places one at
    the next token, which may be the next key)."""
    if isinstance(node, ScalarNode):
        body = text[node.start_mark.index:node.end_mark.index].rstrip()
        return node.start_mark.index + len(body) - 1 if body else -1
    if is_flow(node) or not node.value or id(node) in seen:
        return node.end_mark.index - 1
    last, inner = node.value[-1], seen | {id(node)}
    if isinstance(node, MappingNode):
        return max(last_char(last[1], text, inner), last[0].end_mark.index - 1)
    return last_char(last, text, inner)


def content_end(text: str, *, start: int, bound: int, floor: int) -> int:
    """After the last line in [start, bound) that is neither blank nor a comment, or that
    holds `floor` (a literal block's line may look like a comment)."""
    end = bound
    while end > start:
        begins = start_of_line(text, end - 1)
        stripped = text[begins:end].strip()
        if begins <= max(floor, start) or (stripped and not stripped.startswith("#")):
            return end
        end = begins
    return end


def entry_spans(mapping: MappingNode, text: str, bound: int) -> list[Span]:
    starts = [start_of_line(text, key.start_mark.index) for key, _ in mapping.value]
    out = []
    for i, (key, value) in enumerate(mapping.value):
        limit = starts[i + 1] if i + 1 < len(starts) else bound
        floor = max(last_char(value, text), key.end_mark.index - 1)
        out.append(Span(value, key, starts[i],
                         content_end(text, start=starts[i], bound=limit, floor=floor)))
    return out


def _dash_lines(seq: SequenceNode, text: str, bound: int) -> tuple[int, list[int]]:
    """The dash column of a block sequence and the start of each line holding a dash."""
    pos = start_of_line(text, seq.start_mark.index)
    column = seq.start_mark.column if text[seq.start_mark.index] == "-" else -1
    dashes = []
    while pos < bound:
        end = end_of_line(text, pos)
        line = text[pos:end]
        if column < 0 and line.lstrip().startswith("-") and pos > seq.start_mark.index:
            column = len(line) - len(line.lstrip())  # after an anchor or a tag on the key's line
        if (column >= 0 and not line[:column].strip() and line[column:column + 1] == "-"
                and line[column + 1:column + 2] in ("", " ", "\t", "\r", "\n")):
            dashes.append(pos)
        pos = end
    return column, dashes


def item_spans(seq: SequenceNode, text: str, bound: int) -> tuple[int, list[Span]] | None:
    """The dash column and the spans of a block sequence's items; None if the dashes found
    do not match the items (a flow collection spread over lines, say)."""
    column, dashes = _dash_lines(seq, text, bound)
    if len(dashes) != len(seq.value):
        return None
    spans = []
    for i, (item, dash) in enumerate(zip(seq.value, dashes, strict=True)):
        limit = dashes[i + 1] if i + 1 < len(dashes) else bound
        end = content_end(text, start=dash, bound=limit, floor=last_char(item, text))
        spans.append(Span(item, None, dash, end))
    return column, spans


def node_at(root: Node | None, path: Steps) -> Node | None:
    """The node at `path` (through block and flow collections), or None."""
    node = root
    for key in path:
        if isinstance(key, int):
            node = node.value[key] if isinstance(node, SequenceNode) and 0 <= key < len(node.value) else None
        elif isinstance(node, MappingNode):
            node = next((v for k, v in node.value if isinstance(k, ScalarNode) and str(k.tag) != MERGE
                         and k.value == key), None)
        else:
            node = None
        if node is None:
            break
    return node


def places(root: Node, target: Node) -> list[Steps]:
    """Every path at which `target` occurs, in document order: first where it is written
    (with its anchor, which YAML puts before any alias), then at each alias."""
    found: list[Steps] = []

    def visit(node: Node, path: Steps, inside: frozenset[int]) -> None:
        if node is target:
            found.append(path)
            return
        if id(node) in inside:  # a recursive alias
            return
        inside |= {id(node)}
        if isinstance(node, MappingNode):
            for key, value in node.value:
                visit(value, (*path, key.value if isinstance(key, ScalarNode) else "?"), inside)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                visit(item, (*path, index), inside)

    visit(root, (), frozenset())
    return found
