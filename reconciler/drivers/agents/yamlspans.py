"""YAML files edited by text spans: bytes outside the edited keys never change.

A Rovo Dev `~/.rovodev/config.yml` is kept by hand: a comment header, a literal system
prompt, `null` and `~` spelled their own way, a `powershell` list indented differently
from `bash.commands`, comments between list items. Loading it into a round-trip tree and
dumping the tree re-spells all of that (ruamel applies one indentation to the whole file,
writes `null` as nothing, drops comment blocks it cannot attach, adds a final newline).
So this module never dumps the document. The text *is* the document; ruamel.yaml composes
it only to learn where each node starts and ends, and every edit replaces one span of the
text, then parses the result again so that the next edit sees true positions.

**Spans** (see `yamlnodes`): an entry of a block mapping runs from its key's line to its last
content line, an item of a block sequence from its dash's line; comment blocks between
them belong to no entry and stay where they are.

**Edits.** `set` of an existing key rewrites as little as it can: a one-line scalar is
replaced in place (key, spacing and trailing comment stay), a flow collection is rewritten
as one, a block value under a bare `key:` line keeps that line, anything else is rewritten
after the key (whose spelling stays). A new key goes after the last entry of the deepest
existing mapping (or as the entry number a caller names), at that mapping's indentation,
with any missing mappings in the snippet. A path may go through the items of a block
sequence by number (`rules.0.content`: a key of the mapping that is item 0); items are
added and removed by `edit_list` only. `delete` removes the entry, or its highest ancestor
the deletion would leave empty. `edit_list` removes, replaces and appends items of a block
sequence; untouched items keep every byte. Inside a flow collection (`{...}`, `[...]`) the
edit is made by `yamlflow` the same way: only the entry or item concerned changes, the
others keep their bytes (a user's `"ls.*"` keeps its quotes). Snippets come from
`yamlsnippets`: ruamel in block style with the file's own mapping indentation and sequence
style (dashes indented under their key or not, whichever the file does most), or in flow
style inside a flow collection, with every string quoted that a plain scalar would not
carry back unchanged through PyYAML (YAML 1.1) and ruamel (1.2), in block and in flow
context.

**Checks.** A file the client could not read is refused with `DocumentError` at a line and
column: a parse error, a duplicated key (ruamel refuses it too, but names only the second
occurrence), a top level that is not a mapping. After each edit the new text is parsed and
its values compared, type for type, with the intended result, as ruamel reads it and, when
PyYAML could read the file before the edit, as PyYAML reads it; an edit that would change
anything else (an alias of the edited anchor, a key inherited through `<<`, a scalar a YAML
1.1 reader takes otherwise) is refused the same way and the text stays as it was. A file
only ruamel reads (a `?` bare inside a flow collection) is edited around the user's bytes,
which are not the reconciler's to fix. Anchors, aliases and merge keys are otherwise read
as ruamel reads them; editing inside an anchored or aliased node is refused up front.

**Not done.** Comments are never removed, except those inside a removed or rewritten span
(between two lines of its content, or after its value on the same line); a comment next to
a deleted key stays. Blank lines around a removed span are not tidied. A file without a
final newline keeps ending without one: text added at the end goes after a newline and the
new text's final newline is dropped (unless that would change a literal block's value).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.drivers.agents import yamlflow
from reconciler.drivers.agents.documents import MISSING, DocumentError, ListEdit
from reconciler.drivers.agents.yamlnodes import (
    MERGE,
    Span,
    Steps,
    Trail,
    dotted,
    end_of_line,
    entry_spans,
    is_flow,
    item_spans,
    nested,
    node_at,
    parse,
    places,
    plain,
    same,
    value_at,
    with_value,
    without,
)
from reconciler.drivers.agents.yamlsnippets import dump, strict_reading

_COLON = re.compile(r"[ \t]*:")
_DASHES = re.compile(r"(?:[ \t]*-[ \t]+)+")  # `- ` or `- - `: the dashes of list items
_UNKNOWN: Any = object()


# -- writing ------------------------------------------------------------------------------


def _setting(path: Steps, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda doc: with_value(doc, path, plain(value))


class YamlSpanDocument:
    """A YAML file as its text, edited one span at a time (see the module docstring)."""

    def __init__(self, text: str | None, source: str) -> None:
        self._source = source
        self._absent = text is None
        self._text = text or ""
        self._parsed = parse(self._text, source)
        self._emptied = False
        self._strict_value: Any = _UNKNOWN

    # -- reading

    def get(self, path: Steps) -> Any:
        value = value_at(self._parsed.value, path)
        return value if value is MISSING else copy.deepcopy(value)

    def where(self, path: Steps) -> tuple[int, int] | None:
        if not path:
            return 1, 1
        trail = self._trail(path)
        if len(trail.entries) < len(path):
            return None
        mark = (trail.entries[-1].key or trail.entries[-1].node).start_mark
        return mark.line + 1, mark.column + 1

    def alias(self, path: Steps) -> str | None:
        """The anchor's name when the value at `path` is an alias (`*name`) of a node written
        elsewhere; None when it is written here (or absent)."""
        root = self._parsed.root
        node = node_at(root, path)
        if root is None or node is None or id(node) not in self._parsed.shared:
            return None
        return None if places(root, node)[0] == path else str(node.anchor)

    def render(self) -> str | None:
        if not self._parsed.value and (self._emptied or (self._absent and not self._text)):
            return None
        return self._text

    # -- editing

    def set(self, path: Steps, value: Any, *, position: int | None = None) -> None:
        """`path` set to `value`; a new key of a block mapping goes in as its entry number
        `position` (None: after the last one)."""
        if not path:
            raise ValueError("set needs a key path")
        change = _setting(path, value)
        trail = self._trail(path)
        done = len(trail.entries)
        rest = path[done:]
        self._no_items(path, rest)
        if done == len(path):
            self._guard(path, trail.entries[:-1], target=trail.entries[-1])
            work = self._replaced(trail.entries[-1], value, path)
        elif isinstance(trail.holder, MappingNode) and is_flow(trail.holder):
            self._guard(path, trail.entries)
            self._guard_flow(trail.holder, rest, path)
            work = yamlflow.value_set(self._parsed.work, trail.holder, rest, value, style=self._parsed.style)
        elif isinstance(trail.holder, MappingNode) or not done:
            self._guard(path, trail.entries)
            work = self._inserted(trail, str(rest[0]), nested(rest[1:], value),
                                  position=position if len(rest) == 1 else None)
        else:  # the value at path[:done] is not a mapping: it becomes one
            self._guard(path, trail.entries[:-1], target=trail.entries[-1])
            work = self._replaced(trail.entries[-1], nested(rest, value), path[:done])
        self._commit(work, change, path)

    def delete(self, path: Steps) -> None:
        if not path or self.get(path) is MISSING:
            self._emptied = not self._parsed.value  # as every document does: no keys, no file
            return
        top = len(path)  # the key goes, and each parent its deletion leaves empty
        while top > 1 and len(self.get(path[:top - 1])) == 1:
            top -= 1
        path = path[:top]
        trail = self._trail(path)
        work = self._parsed.work
        done = len(trail.entries)
        holder = trail.holder
        self._no_items(path, path[done:] + path[-1:])  # an item goes by edit_list
        inner = yamlflow.walk(holder, path[done:]) if holder is not None and is_flow(holder) else []
        if done == len(path):
            entry = trail.entries[-1]
            self._guard(path, trail.entries[:-1], target=entry)
            self._colon(entry, path)
            work = work[:entry.start] + work[entry.end:]
        elif holder is not None and inner and len(inner) == len(path) - done:
            self._guard(path, trail.entries)
            self._guard_flow(holder, path[done:-1], path)
            work = yamlflow.key_deleted(work, inner[-1])
        else:
            raise self._refusal(path, f"{dotted(path)} is not written here but inherited "
                                "through a merge key (<<)")
        self._commit(work, lambda doc: without(doc, path), path)
        self._emptied = not self._parsed.value

    def edit_list(self, path: Steps, edit: ListEdit) -> None:
        current = self.get(path)
        if current is MISSING or current is None:
            if edit.append:
                self.set(path, list(edit.append))
            return
        if not isinstance(current, list):
            raise self._refusal(path, f"expected a list at {dotted(path)}, found "
                                f"{'a mapping' if isinstance(current, dict) else 'a scalar'}")
        wrong = [i for i in (*edit.remove, *edit.replace) if not 0 <= i < len(current)]
        if wrong:
            raise IndexError(f"{dotted(path)} has {len(current)} items, no item {wrong[0]}")
        after = edit.applied(current)

        def change(doc: dict[str, Any]) -> dict[str, Any]:
            held = value_at(doc, path)  # a strict reader's list: its own items, the same positions
            return with_value(doc, path, plain(edit.applied(held) if isinstance(held, list) else after))

        trail = self._trail(path)
        done = len(trail.entries)
        self._no_items(path, path[done:])
        entry = trail.entries[-1] if done == len(path) else None
        node = entry.node if entry is not None else None
        if node is None and trail.holder is not None and is_flow(trail.holder):
            inner = yamlflow.walk(trail.holder, path[done:])
            node = inner[-1].value if len(inner) == len(path) - done else None
        if node is None or id(node) in self._parsed.shared or not after or not isinstance(node, SequenceNode):
            # A list reached through an alias or a merge key, or one left empty (`key: []`: a
            # bare `key:` would read as null): rewritten whole.
            self.set(path, after)
            return
        self._guard(path, trail.entries[:-1] if entry is not None else trail.entries)
        if entry is None:
            assert trail.holder is not None
            self._guard_flow(trail.holder, path[done:], path)
        if is_flow(node):
            work = yamlflow.items_edited(self._parsed.work, node, edit, style=self._parsed.style)
            self._commit(work, change, path)
            return
        assert entry is not None  # a block sequence sits in a block mapping
        found = item_spans(node, self._parsed.work, entry.end)
        if found is None:
            raise self._refusal(path, f"cannot tell the items of {dotted(path)} apart; edit it by hand")
        column, spans = found
        self._commit(self._items_edited(spans, column, edit), change, path)

    # -- the text of one edit

    def _trail(self, path: Steps) -> Trail:
        work, node = self._parsed.work, self._parsed.root
        bound = node.end_mark.index if node is not None else len(work)
        entries: list[Span] = []
        for key in path:
            if isinstance(key, int):  # an item of a block sequence
                found = item_spans(node, work, bound) if isinstance(node, SequenceNode) and not is_flow(
                    node) else None
                if found is None or not 0 <= key < len(found[1]):
                    break
                entries.append(found[1][key])
                node, bound = found[1][key].node, found[1][key].end
                continue
            if not isinstance(node, MappingNode) or is_flow(node):
                break
            entry = next((e for e in entry_spans(node, work, bound) if e.key is not None
                          and str(e.key.tag) != MERGE and e.key.value == key), None)
            if entry is None:
                break
            entries.append(entry)
            node, bound = entry.node, entry.end
        return Trail(tuple(entries), node, bound)

    def _colon(self, entry: Span, path: Steps, *, after_dash: bool = False) -> int:
        """Where the entry's `:` is; refuses a key that does not start its line (`? key`), or,
        with `after_dash`, its line after the dash of a list item (`- name: x`)."""
        work, key = self._parsed.work, entry.key
        assert key is not None
        colon = _COLON.match(work, key.end_mark.index)
        before = work[entry.start:key.start_mark.index]
        if colon is None or (before.strip() and not (after_dash and _DASHES.fullmatch(before))):
            raise self._refusal(path, f"the key {key.value!r} does not start its own line "
                                "('? key', or after '---'); edit it by hand")
        return colon.end() - 1

    def _block(self, key: str, value: Any, *, column: int) -> str:
        """`key: value` as block lines at `column`, each ending with the file's newline."""
        lines = dump({key: value}, style=self._parsed.style).splitlines()
        return "".join((" " * column + line if line else "") + self._newline for line in lines)

    def _inline(self, value: Any) -> str | None:
        """A scalar's one-line spelling, or None (a collection, a literal block)."""
        if isinstance(value, Mapping | list | tuple):
            return None
        lines = dump({"k": value}, style=self._parsed.style).splitlines()
        return lines[0][3:] if len(lines) == 1 and lines[0].startswith("k: ") else None

    def _replaced(self, entry: Span, value: Any, path: Steps) -> str:
        work, node = self._parsed.work, entry.node
        key = entry.key
        if key is None:
            raise self._refusal(path, f"{dotted(path)} is an item of a list; edit the list")
        colon = self._colon(entry, path, after_dash=True)  # the edit starts after the key
        after_colon = work[colon + 1:end_of_line(work, colon)].strip()
        bare = not after_colon or after_colon.startswith("#")
        # An alias's node carries its anchor's positions: only its entry's lines are its own.
        here = id(node) not in self._parsed.shared or entry.start <= node.start_mark.index < entry.end
        scalar = self._inline(value)
        written = node.start_mark.index < node.end_mark.index
        one_line = here and written and "\n" not in work[node.start_mark.index:node.end_mark.index]
        if scalar is not None and one_line and isinstance(node, ScalarNode) and node.style not in ("|", ">"):
            return work[:node.start_mark.index] + scalar + work[node.end_mark.index:]
        if scalar is not None and bare and isinstance(node, ScalarNode) and not written:
            return work[:colon + 1] + " " + scalar + work[colon + 1:]  # `key:   # note` → `key: v   # note`
        if isinstance(value, Mapping | list | tuple) and here and is_flow(node):
            flow = dump(value, style=self._parsed.style, flow=True).strip()
            return work[:node.start_mark.index] + flow + work[node.end_mark.index:]
        column = key.start_mark.column
        lines = self._block("k", value, column=column)
        if bare and value and isinstance(value, Mapping | list | tuple):
            first = end_of_line(work, colon)  # keep the `key:` line and its comment
            return work[:first] + lines[end_of_line(lines, 0):] + work[entry.end:]
        return work[:key.end_mark.index] + lines[column + 1:] + work[entry.end:]

    def _inserted(self, trail: Trail, key: str, value: Any, *, position: int | None = None) -> str:
        work, holder = self._parsed.work, trail.holder
        if isinstance(holder, MappingNode) and holder.value:
            spans = entry_spans(holder, work, trail.bound)
            first = spans[0].key
            assert first is not None
            at, column = spans[-1].end, first.start_mark.column
            if position is not None and 0 < position < len(spans):
                at = spans[position - 1].end  # before the comments above the next key
            elif position == 0 and not work[spans[0].start:first.start_mark.index].strip():
                at = spans[0].start  # (not before the dash of a list item)
        else:  # an empty document, perhaps with comments
            at, column = len(work), 0
        return work[:at] + self._block(key, value, column=column) + work[at:]

    def _items_edited(self, spans: list[Span], column: int, edit: ListEdit) -> str:
        work = self._parsed.work
        pieces = [work[:spans[0].start]]
        for i, span in enumerate(spans):
            if i in edit.remove:
                pass
            elif i in edit.replace:
                pieces.append(self._item_lines([edit.replace[i]], column))
            else:
                pieces.append(work[span.start:span.end])
            pieces.append(work[span.end:spans[i + 1].start if i + 1 < len(spans) else span.end])
        if edit.append:
            pieces.append(self._item_lines(list(edit.append), column))
        return "".join(pieces) + work[spans[-1].end:]

    def _item_lines(self, items: list[Any], column: int) -> str:
        """Items as block sequence lines with their dashes at `column`."""
        offset = self._parsed.style.offset
        lines = dump({"k": items}, style=self._parsed.style).splitlines()[1:]
        return "".join((" " * column + line[offset:] if line else "") + self._newline for line in lines)

    # -- checks

    @property
    def _newline(self) -> str:
        return "\r\n" if "\r\n" in self._text else "\n"

    def _refusal(self, path: Steps, reason: str) -> DocumentError:
        for end in range(len(path), 0, -1):
            where = self.where(path[:end])
            if where is not None:
                return DocumentError(self._source, *where, reason)
        return DocumentError(self._source, 1, 1, reason)

    def _guard(self, path: Steps, inside: tuple[Span, ...], *, target: Span | None = None) -> None:
        """Refuse an edit inside a node that is written once and referred to again, or one
        replacing or deleting such a node where it is written (its aliases would dangle).
        `inside` and `target` are the spans of `path[0]`, `path[1]`, ..."""
        shared = self._parsed.shared
        spans = [*inside, *([target] if target is not None else [])]
        for depth, span in enumerate(spans):
            node = span.node
            if id(node) not in shared:
                continue
            here = span.start <= node.start_mark.index < span.end
            if span is target and not here:
                continue  # replacing or deleting an alias itself is fine
            raise self._refusal(path[:depth + 1], self._sharing(node, path[:depth + 1]))

    def _guard_flow(self, holder: Node, keys: Steps, path: Steps) -> None:
        """`_guard` inside a flow collection: no edit in a node that other keys share."""
        shared = self._parsed.shared
        nodes = [holder, *(e.value for e in yamlflow.walk(holder, keys))]
        node = next((node for node in nodes if id(node) in shared), None)
        if node is not None:
            raise self._refusal(path, self._sharing(node, path))

    def _sharing(self, node: Node, path: Steps) -> str:
        """Why an edit at `path`, in or at the shared `node`, is refused: the anchor by name,
        and every place that uses it."""
        assert self._parsed.root is not None
        written, *aliases = places(self._parsed.root, node)
        name, several = node.anchor, len(aliases) > 1
        if path[:len(written)] == written:
            holder = f"{dotted(path)} holds" if path == written else \
                f"{dotted(path)} is inside {dotted(written)}, which holds"
            users = ", ".join(dotted(p) for p in aliases) or "another key"
            verb = "use" if several else "uses"
            what = f"{holder} the anchor &{name}, which {users} also {verb} (as *{name})"
        else:
            what = f"{dotted(path)} is (inside) an alias *{name} of {dotted(written)}"
            several = False
        return (f"{what}; editing it would change {'them' if several else 'that'} too: edit the file by "
                "hand (write the shared value out at each place)")

    def _no_items(self, path: Steps, rest: Steps) -> None:
        """Refuse a path that goes on through list items the file does not have (or holds
        in flow style): an item is added or removed by `edit_list`, never made on the way."""
        if any(isinstance(key, int) for key in rest):
            raise self._refusal(path, f"{dotted(path)}: no such item in a block list of this file; "
                                "edit it by hand")

    def _commit(self, work: str, change: Callable[[dict[str, Any]], dict[str, Any]], path: Steps) -> None:
        """Take the new text if it reads back as `change` of the old one (ruamel's reading,
        and PyYAML's when PyYAML could read the old text); else refuse and keep the old one."""
        candidates = [work]
        if self._text and not self._text.endswith("\n") and work.endswith("\n"):
            cut = len(self._newline) if work.endswith(self._newline) else 1
            candidates.insert(0, work[:-cut])  # the file had no final newline
        expected = change(self._parsed.value)
        strict = self._strict()
        reason = ""
        for text in candidates:
            try:
                parsed = parse(text, self._source)
            except DocumentError as exc:
                reason = f"the edited text would not parse ({exc.reason})"
                continue
            if not same(parsed.value, expected):
                reason = "the edited text would read back differently (an alias, a merge key?)"
                continue
            if strict is not None:
                now = strict_reading(text)
                if now is None or not same(now, change(strict)):
                    reason = "a YAML 1.1 reader (PyYAML) would read the edited text differently"
                    continue
                self._strict_value = now
            self._text, self._parsed = text, parsed
            return
        raise self._refusal(path, f"cannot edit {dotted(path)} in place: {reason}; edit the "
                            "file by hand")

    def _strict(self) -> dict[str, Any] | None:
        """PyYAML's reading of the text now, or None when PyYAML cannot read it (then only
        ruamel's reading is checked: the user's own bytes are not the reconciler's to fix)."""
        if self._strict_value is _UNKNOWN:
            value = strict_reading(self._text)
            self._strict_value = value if isinstance(value, dict) else None
        return self._strict_value
