"""Surgical edits of JSON and JSONC text: change one key or one array item, keep every other byte.

Client settings files are JSON read by very different parsers. Loading them into a dict and
dumping it back would lose comments and reformat everything the reconciler does not own.
Instead the text is parsed into a tree of nodes that remember their byte spans, and each
edit replaces, inserts or removes exactly the spans it must; the rest of the file, comments
included, comes through untouched. New values are indented like their neighbours.

**Grammars.** What a file may contain is its reader's grammar, not ours: Claude Code reads
strict JSON, where a comment or a trailing comma makes it reject the whole file, while
Cursor reads JSONC. `parse` takes the file's `Grammar` (which file has which is decided in
`documents`) and refuses what its reader would refuse, at the offending line and column,
so that the reconciler never edits, and so never "confirms", a file its client cannot read.
A duplicated key is refused in every grammar: parsers disagree on which duplicate wins, and
an edit would change one while the client reads the other.

**Arrays** are edited item by item (`edit_array`): a removed item leaves with its comma and,
when it has a line of its own, with that line (and a comment ending it); a replaced item
changes only its value's span; appended items follow the last one in the array's own layout.
Items nobody touched keep their bytes, and so do the comments between them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from json.decoder import scanstring  # type: ignore[attr-defined]  # in json.decoder, not in typeshed
from typing import Any

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, slots=True)
class Grammar:
    """What a file's reader accepts beyond RFC 8259 JSON."""

    name: str
    comments: bool
    trailing_commas: bool


JSON = Grammar("strict JSON", comments=False, trailing_commas=False)
JSONC = Grammar("JSONC", comments=True, trailing_commas=True)


def _position(text: str, pos: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


class JsonSyntaxError(ValueError):
    """Unparsable JSON(C), with a 1-based line and column.

    `by_grammar` is set when the text is valid JSONC and only the file's stricter grammar
    refuses it (a comment, a trailing comma), so that the caller can say whose grammar it is.
    """

    def __init__(self, message: str, text: str, pos: int, *, by_grammar: bool = False) -> None:
        self.line, self.column = _position(text, pos)
        self.reason = message
        self.by_grammar = by_grammar
        super().__init__(f"line {self.line}, column {self.column}: {message}")


@dataclass(slots=True)
class Node:
    start: int
    end: int
    value: Any
    members: list[Member] = field(default_factory=list)  # objects only
    items: list[Node] = field(default_factory=list)  # arrays only

    def member(self, key: str) -> Member | None:
        # Keys are unique: the parser refuses duplicates.
        return next((m for m in self.members if m.key == key), None)


@dataclass(slots=True)
class Member:
    key: str
    start: int  # the key's opening quote
    node: Node


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a duplicated key")  # the parser says which, and where
    return found


# The standard library's C decoder reads what is plain JSON at C speed (a 15 MB
# `~/.claude.json` in a tenth of a second): a document it reads, with unique keys and no
# NaN, is one every grammar accepts, and a subtree it reads needs no node of its own.
# Anything else (comments, trailing commas, a BOM, an error to locate) goes to `_Parser`.
_PLAIN = json.JSONDecoder(object_pairs_hook=_unique, parse_constant=_no_constant)
_SKIPPED = json.JSONDecoder(parse_constant=_no_constant)
_SKIP: tuple[str, ...] = ("\0skip",)
"""`along` of a value off the edited path: read as one node, without nodes for its parts."""


class _Parser:
    def __init__(self, text: str, grammar: Grammar) -> None:
        self.text = text
        self.grammar = grammar
        self.pos = 0

    def fail(self, message: str, pos: int | None = None, *, by_grammar: bool = False) -> JsonSyntaxError:
        return JsonSyntaxError(message, self.text, self.pos if pos is None else pos, by_grammar=by_grammar)

    def skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch in " \t\r\n\ufeff":
                self.pos += 1
            elif text.startswith(("//", "/*"), self.pos):
                if not self.grammar.comments:
                    raise self.fail(f"expected {self.grammar.name}: comments are not allowed in it",
                                    by_grammar=True)
                if text.startswith("//", self.pos):
                    end = text.find("\n", self.pos)
                    self.pos = n if end < 0 else end + 1
                    continue
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def document(self, along: tuple[str, ...] | None = None) -> Node:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("expected a JSON value, got an empty document")
        node = self.value(along)
        self.skip()
        if self.pos < len(self.text):
            raise self.fail(f"expected the end of the document, got {self.text[self.pos]!r}")
        return node

    def value(self, along: tuple[str, ...] | None = None) -> Node:
        """The value here; `along` (a path below it) parses only what an edit there needs:
        the objects on the path, with their members, and the target's direct children."""
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("expected a value, got the end of the file")
        ch = self.text[self.pos]
        start = self.pos
        if along is _SKIP and ch in "{[":
            try:
                value, end = _SKIPPED.raw_decode(self.text, self.pos)
            except ValueError:  # comments, trailing commas, an error: read it node by node
                pass
            else:
                self.pos = end
                return Node(start, end, value)
        if ch == "{":
            return self.obj(along)
        if ch == "[":
            return self.array(along)
        if ch == '"':
            return Node(start, *self.string()[::-1])
        for word, literal in _LITERALS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return Node(start, self.pos, literal)
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return Node(start, self.pos, json.loads(match.group()))
        raise self.fail(f"expected a value, got {ch!r}")

    def string(self) -> tuple[str, int]:
        try:
            value, end = scanstring(self.text, self.pos + 1)
        except json.JSONDecodeError as exc:
            raise self.fail(exc.msg, exc.pos) from None
        self.pos = end
        return value, end

    def separator(self, close: str, *, first: bool) -> bool:
        """Past the comma before the next element; True at the closing bracket instead."""
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail(f"expected {close!r} to close the {'object' if close == '}' else 'array'}")
        if self.text[self.pos] == close:
            self.pos += 1
            return True
        if first:
            return False
        if self.text[self.pos] != ",":
            raise self.fail(f"expected ',' or {close!r}, got {self.text[self.pos]!r}")
        comma = self.pos
        self.pos += 1
        self.skip()
        if self.pos < len(self.text) and self.text[self.pos] == close:
            if not self.grammar.trailing_commas:
                raise self.fail(f"expected {self.grammar.name}: trailing commas are not allowed in it", comma,
                                by_grammar=True)
            self.pos += 1
            return True
        return False

    def obj(self, along: tuple[str, ...] | None = None) -> Node:
        start = self.pos
        self.pos += 1
        members: list[Member] = []
        seen: dict[str, int] = {}
        while not self.separator("}", first=not members):
            if self.pos >= len(self.text) or self.text[self.pos] != '"':
                got = self.text[self.pos] if self.pos < len(self.text) else "the end of the file"
                raise self.fail(f"expected a quoted key, got {got!r}")
            key_start = self.pos
            key, _ = self.string()
            if key in seen:
                line, column = _position(self.text, seen[key])
                raise self.fail(f"expected each key once in an object: duplicated key {key!r} "
                                f"(first at line {line}, column {column})", key_start)
            seen[key] = key_start
            self.skip()
            if self.pos >= len(self.text) or self.text[self.pos] != ":":
                raise self.fail("expected ':' after the key")
            self.pos += 1
            inner = None if along is None else _SKIP if along is _SKIP or along[:1] != (key,) else along[1:]
            members.append(Member(key, key_start, self.value(inner)))
        return Node(start, self.pos, {m.key: m.node.value for m in members}, members)

    def array(self, along: tuple[str, ...] | None = None) -> Node:
        start = self.pos
        self.pos += 1
        items: list[Node] = []
        while not self.separator("]", first=not items):
            items.append(self.value(None if along is None else _SKIP))
        return Node(start, self.pos, [i.value for i in items], items=items)


def parse(text: str, *, strict: bool = False, grammar: Grammar = JSONC,
          along: tuple[str, ...] | None = None) -> Node:
    """The node tree of a document in `grammar` (`strict=True`: strict JSON); raises
    `JsonSyntaxError`. With `along` (a path), only the nodes an edit at that path needs; the
    rest of the text must have been read whole before (a duplicated key off the path, say,
    is not looked for)."""
    return _Parser(text, JSON if strict else grammar).document(along)


def loads(text: str, *, strict: bool = False, grammar: Grammar = JSONC) -> Any:
    try:
        return _PLAIN.decode(text)
    except ValueError:
        return parse(text, strict=strict, grammar=grammar).value


def _find(node: Node, path: tuple[str, ...]) -> Node | None:
    for key in path:
        member = node.member(key) if isinstance(node.value, dict) else None
        if member is None:
            return None
        node = member.node
    return node


def locate(text: str, path: tuple[str, ...]) -> tuple[int, int] | None:
    """1-based (line, column) of the key at `path` (of the root value for `()`), or None."""
    if not text.strip():
        return None
    node = parse(text)
    pos = node.start
    for key in path:
        member = node.member(key) if isinstance(node.value, dict) else None
        if member is None:
            return None
        pos, node = member.start, member.node
    return _position(text, pos)


def _indent_unit(text: str) -> str:
    match = re.search(r"\n([ \t]+)[\"}\]]", text)
    return match.group(1) if match else "  "


def _line_indent(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    match = re.match(r"[ \t]*", text[line_start:])
    return match.group() if match else ""


def _dump(value: Any, unit: str, base: str) -> str:
    out = json.dumps(value, indent=unit, ensure_ascii=False)
    return out.replace("\n", "\n" + base)


def _nest(path: tuple[str, ...], value: Any) -> Any:
    for key in reversed(path):
        value = {key: value}
    return value


def _line_end(text: str, pos: int) -> int:
    """Where a new line may start after `pos`: past a comment that ends this line, if any."""
    end = pos
    while end < len(text) and text[end] in " \t":
        end += 1
    if text.startswith("//", end):
        newline = text.find("\n", end)
        return len(text) if newline < 0 else newline
    if text.startswith("/*", end) and "\n" not in text[end: text.find("*/", end)]:
        return text.find("*/", end) + 2
    return pos


def _splice(text: str, cuts: list[tuple[int, int, str]]) -> str:
    """`text` with each (start, end, new) span replaced; overlapping removals merge."""
    out, pos = [], 0
    for start, end, new in sorted(cuts, key=lambda cut: cut[0]):  # stable: same-place inserts keep order
        if start < pos:  # inside a span already removed (a run of removed items)
            pos = max(pos, end)
            continue
        out += [text[pos:start], new]
        pos = end
    return "".join([*out, text[pos:]])


def new_document(path: tuple[str, ...], value: Any, unit: str = "  ") -> str:
    return json.dumps(_nest(path, value), indent=unit, ensure_ascii=False) + "\n"


def set_value(text: str, path: tuple[str, ...], value: Any) -> str:
    """`text` with the value at `path` set (created with its parents when missing)."""
    if not text.strip():
        return new_document(path, value)
    unit = _indent_unit(text)
    node = parse(text, along=path)
    for i, key in enumerate(path):
        if not isinstance(node.value, dict):
            base = _line_indent(text, node.start)
            return text[: node.start] + _dump(_nest(path[i:], value), unit, base) + text[node.end:]
        member = node.member(key)
        if member is None:
            return _insert(text, node, key, _nest(path[i + 1:], value), unit)
        node = member.node
    base = _line_indent(text, node.start)
    return text[: node.start] + _dump(value, unit, base) + text[node.end:]


def _insert(text: str, obj: Node, key: str, value: Any, unit: str) -> str:
    if obj.members:
        last = obj.members[-1]
        same_line = "\n" not in text[obj.start: last.start]
        base = _line_indent(text, last.start)
        entry = json.dumps(key, ensure_ascii=False) + ": " + _dump(value, unit, base)
        if same_line:
            return text[: last.node.end] + ", " + entry + text[last.node.end:]
        after = last.node.end
        while after < len(text) and text[after] in " \t":
            after += 1
        comma = text.startswith(",", after)
        # After the last member's line, so that a comment ending that line stays with it.
        pos = _line_end(text, after + 1 if comma else last.node.end)
        if comma:  # the object uses trailing commas (JSONC): so does the new member
            return text[:pos] + "\n" + base + entry + "," + text[pos:]
        return _splice(text, [(last.node.end, last.node.end, ","), (pos, pos, "\n" + base + entry)])
    base = _line_indent(text, obj.start)
    inner = base + unit
    entry = json.dumps(key, ensure_ascii=False) + ": " + _dump(value, unit, inner)
    return text[: obj.start] + "{\n" + inner + entry + "\n" + base + "}" + text[obj.end:]


def delete_value(text: str, path: tuple[str, ...]) -> str:
    """`text` without the member at `path`; unchanged when it is not there."""
    if not path or not text.strip():
        return text
    node = _find(parse(text, along=path[:-1]), path[:-1])
    if node is None or not isinstance(node.value, dict):
        return text
    index = next((i for i, m in enumerate(node.members) if m.key == path[-1]), None)
    if index is None:
        return text
    members = node.members
    target = members[index]
    if len(members) == 1:
        return text[: node.start] + "{}" + text[node.end:]
    if index + 1 < len(members):
        nxt = members[index + 1]
        start = target.start
        line_start = text.rfind("\n", 0, start) + 1
        if not text[line_start:start].strip():  # the member starts its own line
            start = line_start
            end = text.rfind("\n", 0, nxt.start) + 1
            if end <= start or text[end:nxt.start].strip():
                end = nxt.start
        else:
            end = nxt.start
        return text[:start] + text[end:]
    after = target.node.end
    while after < len(text) and text[after] in " \t":
        after += 1
    if text.startswith(",", after):  # a trailing comma (JSONC): the member goes with its line
        line_start = text.rfind("\n", 0, target.start) + 1
        if text[line_start:target.start].strip():  # shares its line with what comes before
            return text[: target.start].rstrip(" \t") + text[after + 1:]
        return text[:line_start] + text[after + 1:].lstrip(" \t").removeprefix("\n")
    prev = members[index - 1]
    return text[: prev.node.end] + text[target.node.end:]


# --- arrays, item by item ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Gap:
    """What lies between two tokens of an array: blanks, comments and at most one comma."""

    start: int
    end: int
    comma: int | None
    newlines: tuple[int, ...]  # line breaks outside block comments

    def breaks_after_comma(self) -> bool:
        """A line break follows the comma: the next token starts a line of its own."""
        return bool(self.newlines) and (self.comma is None or self.comma < self.newlines[-1])

    def breaks_before_comma(self) -> bool:
        """The comma (if any) ends the previous token's line."""
        return bool(self.newlines) and (self.comma is None or self.comma < self.newlines[0])


def _gap(text: str, start: int, end: int) -> _Gap:
    comma, newlines, pos = None, [], start
    while pos < end:
        if text.startswith("/*", pos):
            pos = text.index("*/", pos + 2) + 2
        elif text.startswith("//", pos):
            newline = text.find("\n", pos, end)
            pos = end if newline < 0 else newline
        else:
            if text[pos] == ",":
                comma = pos
            elif text[pos] == "\n":
                newlines.append(pos)
            pos += 1
    return _Gap(start, end, comma, tuple(newlines))


def _gaps(text: str, array: Node) -> list[_Gap]:
    """The n + 1 gaps of an array of n items: after `[`, between items, before `]`."""
    bounds = [array.start + 1, *(p for item in array.items for p in (item.start, item.end)), array.end - 1]
    return [_gap(text, bounds[k], bounds[k + 1]) for k in range(0, len(bounds), 2)]


def edit_array(text: str, path: tuple[str, ...], *, remove: Set[int] = frozenset(),
               replace: Mapping[int, Any] | None = None, append: Sequence[Any] = ()) -> str:
    """`text` with the array at `path` edited item by item; every other byte is kept.

    Indexes are positions before the edit, and a removed index is not replaced (as in
    `documents.ListEdit`); `append` adds items after the last one, in order. A missing array
    is created from `append`. Raises `ValueError` when the value at `path` is not an array or
    an index is not in it.
    """
    replace = {i: v for i, v in (replace or {}).items() if i not in remove}
    array = _find(parse(text, along=path), path) if text.strip() else None
    if array is None:
        if remove or replace:
            raise ValueError(f"no array at {'/'.join(path)} to remove or replace items in")
        return set_value(text, path, list(append)) if append else text
    if not isinstance(array.value, list):
        raise ValueError(f"expected an array at {'/'.join(path)}, got {type(array.value).__name__}")
    outside = sorted(i for i in {*remove, *replace} if not 0 <= i < len(array.items))
    if outside:
        raise ValueError(f"no item {outside[0]} in the array at {'/'.join(path)} "
                         f"({len(array.items)} items)")
    if remove and len(remove) == len(array.items):
        # An emptied one-line array takes the new items on its line; otherwise `[]`, filled below.
        one_line = "\n" not in text[array.start: array.end]
        new = json.dumps(list(append), ensure_ascii=False) if one_line and append else "[]"
        text = text[: array.start] + new + text[array.end:]
        if new != "[]" or not append:
            return text
    elif remove or replace:
        text = _remove_and_replace(text, array, remove, replace)
    if not append:
        return text
    array = _find(parse(text, along=path), path)
    assert array is not None
    return _append(text, array, append)


def _remove_and_replace(text: str, array: Node, remove: Set[int], replace: Mapping[int, Any]) -> str:
    gaps, unit = _gaps(text, array), _indent_unit(text)
    cuts = _emptied_lines(text, [cut for i in sorted(remove)
                                 for cut in _removal(text, array.items, gaps, i, remove)])
    for i, value in replace.items():
        item = array.items[i]
        own_line = gaps[i].breaks_after_comma()
        new = _dump(value, unit, _line_indent(text, item.start)) if own_line else _compact(value)
        cuts.append((item.start, item.end, new))
    return _splice(text, cuts)


def _removal(text: str, items: list[Node], gaps: list[_Gap], i: int,
             remove: Set[int]) -> list[tuple[int, int, str]]:
    """The spans that remove item `i` (another item is kept: emptying is done by the caller)."""
    before, after = gaps[i], gaps[i + 1]
    kept = max((j for j in range(i) if j not in remove), default=None)
    if before.breaks_after_comma() and after.breaks_before_comma():
        # The item has its line: the line goes, with a comment ending it.
        cuts = [(before.newlines[-1] + 1, after.newlines[0] + 1, "")]
        if after.comma is None and kept is not None:
            # The last item goes and the array has no trailing comma: nor may the new last one.
            comma = gaps[kept + 1].comma
            assert comma is not None
            cuts.append((comma, comma + 1, ""))
        return cuts
    if after.comma is not None:  # shares its line: the item, a comment before it and its comma go
        if before.breaks_after_comma():
            first = before.newlines[-1] + 1
        else:
            first = before.start if before.comma is None else before.comma + 1
        while text[first] in " \t":
            first += 1
        end = after.comma + 1
        while end < len(text) and text[end] in " \t":
            end += 1
        if end == after.end and i + 1 < len(items):  # the next item follows: it takes the place
            return [(first, end, "")]
        if before.comma is not None and not before.breaks_after_comma():
            first = before.comma + 1  # the blanks after the previous comma go too
        return [(first, after.comma + 1, "")]
    # The last item, sharing its line, with no trailing comma: the comma before it goes too.
    assert kept is not None
    between = gaps[kept + 1]
    assert between.comma is not None
    if between.breaks_before_comma():
        # The kept item's line stays whole (a comment may end it), the removed item's line goes
        # whole (with its comment). A bracket that was on that line gets a line of its own.
        if after.newlines:
            return [(between.comma, between.comma + 1, ""), (between.newlines[0], after.newlines[0], "")]
        bracket = "\n" + _line_indent(text, gaps[0].start - 1)
        return [(between.comma, between.comma + 1, ""), (between.newlines[0], items[i].end, bracket)]
    start = between.comma
    while start > items[kept].end and text[start - 1] in " \t\r\n":
        start -= 1
    return [(start, items[i].end, "")]


def _emptied_lines(text: str, cuts: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Removals merged, each widened to its whole line when it leaves only blanks there.

    Items sharing a line are removed one by one; when all of them go, so does their line.
    """
    merged: list[tuple[int, int, str]] = []
    for start, end, new in sorted(cuts, key=lambda cut: (cut[0], -cut[1])):
        if merged and start <= merged[-1][1]:
            last_start, last_end, last_new = merged[-1]
            merged[-1] = (last_start, max(end, last_end), last_new + new)
        else:
            merged.append((start, end, new))
    out = []
    for start, end, new in merged:
        line_start, line_end = text.rfind("\n", 0, start) + 1, text.find("\n", end)
        if (not new and text[end - 1] != "\n" and line_end >= 0
                and not text[line_start:start].strip(" \t") and not text[end:line_end].strip(" \t\r")):
            start, end = line_start, line_end + 1
        out.append((start, end, new))
    return out


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _append(text: str, array: Node, values: Sequence[Any]) -> str:
    unit = _indent_unit(text)
    if not array.items:  # `[]` opens up, one item per line
        base = _line_indent(text, array.start)
        inner = base + unit
        body = ",\n".join(inner + _dump(value, unit, inner) for value in values)
        return text[: array.start] + "[\n" + body + "\n" + base + "]" + text[array.end:]
    gaps = _gaps(text, array)
    last, tail = array.items[-1], gaps[-1]
    # A trailing comma on the last item's line is the array's style (JSONC): new items keep it.
    on_its_line = tail.comma is not None and (not tail.newlines or tail.comma < tail.newlines[0])
    trailing = tail.comma if on_its_line else None
    if not gaps[-2].breaks_after_comma():  # the last item shares its line: `, "x"` after it
        new = ", ".join(_compact(value) for value in values)
        if trailing is not None:
            return _splice(text, [(trailing + 1, trailing + 1, " " + new + ",")])
        return _splice(text, [(last.end, last.end, ", " + new)])
    indent = _line_indent(text, last.start)
    lines = ["\n" + indent + _dump(value, unit, indent) for value in values]
    if trailing is not None:
        pos = _line_end(text, trailing + 1)
        return _splice(text, [(pos, pos, "".join(line + "," for line in lines))])
    pos = _line_end(text, last.end)  # after a comment ending the last item's line
    return _splice(text, [(last.end, last.end, ","), (pos, pos, ",".join(lines))])
