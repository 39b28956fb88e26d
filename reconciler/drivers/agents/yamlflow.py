"""Edits inside YAML flow collections (`{...}`, `[...]`) that leave the other entries' bytes.

People write Rovo Dev's `toolPermissions` in flow style too: `toolPermissions: {}` as a
start, or `commands: [{command: "ls.*", permission: allow}, ...]` on one line. Rewriting
such a collection whole from its parsed value re-spells every item in it (a user's
`"ls.*"` loses its quotes), so `yamlspans` hands edits inside one to this module, which
changes only the span it must:

- a key that exists: its value's span is replaced by the new value in flow style;
- a key that does not: `, key: value` after the mapping's last entry (`key: value` inside an
  empty `{}`), the mappings it needs nested in flow style;
- a deleted key: its entry and one separating comma go;
- list items: a replaced item's span is replaced, a removed item goes with one separating
  comma, new items follow the last item.

Spans come from the node positions ruamel composes; the snippets from `yamlsnippets`
(quoted for every reader). Comments and line breaks inside a flow collection stay where they
are, except inside a removed span. An entry this module cannot place (a key without a
value, `? key`) is left to the caller's check, which refuses the edit rather than guess.
Pure: text in, text out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.drivers.agents.documents import ListEdit
from reconciler.drivers.agents.yamlnodes import MERGE, Steps, nested
from reconciler.drivers.agents.yamlsnippets import Style, dump, flow_entry, flow_items, flow_value


@dataclass(frozen=True, slots=True)
class FlowEntry:
    """One `key: value` entry of a flow mapping."""

    mapping: MappingNode
    index: int
    key: Node
    value: Node


def walk(node: Node, keys: Steps) -> list[FlowEntry]:
    """The entries of `keys[0]`, `keys[1]`, ... inside the flow mapping `node`, as far as
    they exist."""
    out: list[FlowEntry] = []
    for key in keys:
        if not isinstance(node, MappingNode):
            break
        index = next((i for i, (k, _) in enumerate(node.value) if isinstance(k, ScalarNode)
                      and str(k.tag) != MERGE and k.value == key), None)
        if index is None:
            break
        found = node.value[index]
        out.append(FlowEntry(node, index, found[0], found[1]))
        node = found[1]
    return out


def _start(node: Node) -> int:
    return int(node.start_mark.index)


def _end(node: Node, text: str) -> int:
    """After the node's last character (a scalar's trailing blanks excluded)."""
    if isinstance(node, ScalarNode):
        return _start(node) + len(text[_start(node):node.end_mark.index].rstrip())
    return int(node.end_mark.index)


def _spliced(text: str, edits: list[tuple[int, int, str]]) -> str:
    """`text` with each (start, end, replacement) applied; the spans do not overlap (an
    insertion at a removal's start goes first)."""
    out, at = [], 0
    for start, end, new in sorted(edits, key=lambda e: (e[0], e[1])):
        out += [text[at:start], new]
        at = end
    return "".join(out) + text[at:]


def value_set(text: str, holder: MappingNode, keys: Steps, value: Any, *, style: Style) -> str:
    """`keys` (below the flow mapping `holder`) set to `value`."""
    inner = walk(holder, keys)
    if len(inner) == len(keys):
        node = inner[-1].value
        return _spliced(text, [(_start(node), _end(node, text), flow_value(value, style=style))])
    node = inner[-1].value if inner else holder
    rest = keys[len(inner):]
    if not isinstance(node, MappingNode):  # a scalar on the way becomes a mapping
        flow = dump(nested(rest, value), style=style, flow=True).strip()
        return _spliced(text, [(_start(node), _end(node, text), flow)])
    entry = flow_entry(str(rest[0]), nested(rest[1:], value), style=style)
    if not node.value:
        return _spliced(text, [(_start(node) + 1, _start(node) + 1, entry)])
    at = _end(node.value[-1][1], text)
    return _spliced(text, [(at, at, ", " + entry)])


def key_deleted(text: str, entry: FlowEntry) -> str:
    """The flow mapping entry gone, with one separating comma."""
    pairs = entry.mapping.value
    if len(pairs) == 1:
        span = (_start(entry.key), _end(entry.value, text))
    elif entry.index == 0:
        span = (_start(entry.key), _start(pairs[1][0]))
    else:
        span = (_end(pairs[entry.index - 1][1], text), _end(entry.value, text))
    return _spliced(text, [(*span, "")])


def items_edited(text: str, seq: SequenceNode, edit: ListEdit, *, style: Style) -> str:
    """The flow sequence with `edit` applied; untouched items keep their bytes."""
    items: list[Node] = seq.value
    kept = [i for i in range(len(items)) if i not in edit.remove]
    edits: list[tuple[int, int, str]] = []
    if not kept:
        inner = (_start(items[0]), _end(items[-1], text)) if items else (_start(seq) + 1,) * 2
        return _spliced(text, [(*inner, flow_items(list(edit.append), style=style))])
    last = kept[-1]
    for i in edit.remove:
        if i < last:  # the item and the comma after it
            edits.append((_start(items[i]), _start(items[i + 1]), ""))
    if last < len(items) - 1:  # the items after the last kept one, each with the comma before it
        edits.append((_end(items[last], text), _end(items[-1], text), ""))
    for i, value in edit.replace.items():
        if i in edit.remove:
            continue
        edits.append((_start(items[i]), _end(items[i], text), flow_items([value], style=style)))
    if edit.append:
        at = _end(items[last], text)
        edits.append((at, at, ", " + flow_items(list(edit.append), style=style)))
    return _spliced(text, edits)

