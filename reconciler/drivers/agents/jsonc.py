"""Surgical edits of JSON and JSONC text: change one key, keep every other byte.

Client settings files are JSON (Claude, strict) or JSONC (Cursor, Qwen: comments and
trailing commas). Loading them into a dict and dumping it back would reorder nothing but
would still lose comments and reformat everything the reconciler does not own. Instead
the text is parsed into a tree of nodes that remember their byte spans, and each edit
replaces, inserts or removes exactly one member's span; the rest of the file, comments
included, comes through untouched. New values are indented like their neighbours.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from json.decoder import scanstring
from typing import Any

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_LITERALS = {"true": True, "false": False, "null": None}


class JsonSyntaxError(ValueError):
    """Unparsable JSON(C), with a 1-based line and column."""

    def __init__(self, message: str, text: str, pos: int) -> None:
        self.line = text.count("\n", 0, pos) + 1
        self.column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        self.reason = message
        super().__init__(f"line {self.line}, column {self.column}: {message}")


@dataclass(slots=True)
class Node:
    start: int
    end: int
    value: Any
    members: list[Member] = field(default_factory=list)  # objects only

    def member(self, key: str) -> Member | None:
        found = None
        for m in self.members:
            if m.key == key:
                found = m  # the last duplicate wins, as in json.loads
        return found


@dataclass(slots=True)
class Member:
    key: str
    start: int  # the key's opening quote
    node: Node


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str, pos: int | None = None) -> JsonSyntaxError:
        return JsonSyntaxError(message, self.text, self.pos if pos is None else pos)

    def skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch in " \t\r\n\ufeff":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def document(self) -> Node:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("expected a JSON value, got an empty document")
        node = self.value()
        self.skip()
        if self.pos < len(self.text):
            raise self.fail(f"expected the end of the document, got {self.text[self.pos]!r}")
        return node

    def value(self) -> Node:
        self.skip()
        if self.pos >= len(self.text):
            raise self.fail("expected a value, got the end of the file")
        ch = self.text[self.pos]
        start = self.pos
        if ch == "{":
            return self.obj()
        if ch == "[":
            return self.array()
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

    def obj(self) -> Node:
        start = self.pos
        self.pos += 1
        members: list[Member] = []
        while True:
            self.skip()
            if self.pos >= len(self.text):
                raise self.fail("expected '}' to close the object")
            if self.text[self.pos] == "}":
                self.pos += 1
                value = {m.key: m.node.value for m in members}
                return Node(start, self.pos, value, members)
            if members:
                if self.text[self.pos] != ",":
                    raise self.fail(f"expected ',' or '}}', got {self.text[self.pos]!r}")
                self.pos += 1
                self.skip()
                if self.pos < len(self.text) and self.text[self.pos] == "}":
                    continue  # trailing comma (JSONC)
            if self.pos >= len(self.text) or self.text[self.pos] != '"':
                got = self.text[self.pos] if self.pos < len(self.text) else "the end of the file"
                raise self.fail(f"expected a quoted key, got {got!r}")
            key_start = self.pos
            key, _ = self.string()
            self.skip()
            if self.pos >= len(self.text) or self.text[self.pos] != ":":
                raise self.fail("expected ':' after the key")
            self.pos += 1
            members.append(Member(key, key_start, self.value()))

    def array(self) -> Node:
        start = self.pos
        self.pos += 1
        items: list[Node] = []
        while True:
            self.skip()
            if self.pos >= len(self.text):
                raise self.fail("expected ']' to close the array")
            if self.text[self.pos] == "]":
                self.pos += 1
                return Node(start, self.pos, [i.value for i in items])
            if items:
                if self.text[self.pos] != ",":
                    raise self.fail(f"expected ',' or ']', got {self.text[self.pos]!r}")
                self.pos += 1
                self.skip()
                if self.pos < len(self.text) and self.text[self.pos] == "]":
                    continue
            items.append(self.value())


def parse(text: str) -> Node:
    """The node tree of a JSON(C) document; raises `JsonSyntaxError`."""
    return _Parser(text).document()


def loads(text: str) -> Any:
    return parse(text).value


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


def new_document(path: tuple[str, ...], value: Any, unit: str = "  ") -> str:
    return json.dumps(_nest(path, value), indent=unit, ensure_ascii=False) + "\n"


def set_value(text: str, path: tuple[str, ...], value: Any) -> str:
    """`text` with the value at `path` set (created with its parents when missing)."""
    if not text.strip():
        return new_document(path, value)
    unit = _indent_unit(text)
    node = parse(text)
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
        # After the last member's line, so that a comment ending that line stays with it.
        pos, comma = last.node.end, False
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if text.startswith(",", pos):
            comma, pos = True, pos + 1
            while pos < len(text) and text[pos] in " \t":
                pos += 1
        if text.startswith("//", pos):
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
        elif text.startswith("/*", pos) and "\n" not in text[pos: text.find("*/", pos)]:
            pos = text.find("*/", pos) + 2
        else:
            pos = last.node.end if not comma else pos
        if comma:  # the object uses trailing commas (JSONC): so does the new member
            return text[:pos] + "\n" + base + entry + "," + text[pos:]
        return (text[: last.node.end] + "," + text[last.node.end: pos] + "\n" + base + entry
                + text[pos:])
    base = _line_indent(text, obj.start)
    inner = base + unit
    entry = json.dumps(key, ensure_ascii=False) + ": " + _dump(value, unit, inner)
    return text[: obj.start] + "{\n" + inner + entry + "\n" + base + "}" + text[obj.end:]


def delete_value(text: str, path: tuple[str, ...]) -> str:
    """`text` without the member at `path`; unchanged when it is not there."""
    if not path or not text.strip():
        return text
    node = parse(text)
    for key in path[:-1]:
        member = node.member(key) if isinstance(node.value, dict) else None
        if member is None:
            return text
        node = member.node
    if not isinstance(node.value, dict):
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
