"""Where things are in a TOML text: its statements and the members of its inline tables, by span.

tomlkit keeps every byte of a file but no positions, and its model of where a table lives is
not always TOML's: in a file that spells a table as top-level dotted keys
(`mcp_servers.github.command = "npx"`) it puts a new `[mcp_servers.docs]` between two of
those lines, where TOML reads every dotted line below the header as part of the new table.
So `tomldocument` edits whole entries in the text itself, as `jsonc` and `yamlspans` do, and
this module tells it where they are. A text is cut into *statements*, one or more whole
lines each:

- a *header* (`[a.b]`, `[[a.b]]`): its line; the pairs below it, up to the next header, are
  in its table;
- a *pair* (`key = value`): from the start of its line to the end of the line its value ends
  on (a multi-line string or array included), with the key's path from the top of the
  document (the path of the header it is under, then its dotted key) and the span of its
  value;
- a *comment* line, a *blank* line.

An inline table's *members* (`{ a = 1, b.c = 2 }`) are found the same way, each with its
key's path from the table and the span of its value.

Nothing is validated here: the text has been parsed by tomlkit (and tomllib) before, so the
scanner only follows quotes and brackets to find where a value ends.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum

Path_ = tuple[str, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
# A date-time may hold one space (`1979-05-27 07:32:00Z`); every other bare value ends at one.
_SCALAR = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[Zz]|[+-]\d\d:\d\d)?"
                     r"|[^\s,\]}#]+")
_SPACE = " \t"


class Kind(StrEnum):
    HEADER = "header"
    PAIR = "pair"
    COMMENT = "comment"
    BLANK = "blank"


@dataclass(frozen=True, slots=True)
class Statement:
    kind: Kind
    path: Path_  # a header's table, a pair's key from the top; () for comments and blank lines
    table: Path_  # the header a pair is under (its own path for a header)
    start: int  # the start of its first line
    end: int  # after the line break ending its last line (the end of the text if it has none)
    key: int  # where its key (pair) or its first bracket (header) starts
    value: tuple[int, int] = (0, 0)  # a pair's value


@dataclass(frozen=True, slots=True)
class Member:
    """One `key = value` of an inline table."""

    path: Path_  # from the inline table
    key: int
    value: tuple[int, int]


def key_text(path: Path_) -> str:
    """A dotted key as TOML spells it: bare parts where they may be bare, others quoted."""
    return ".".join(part if _BARE.fullmatch(part) else _basic(part) for part in path)


def _basic(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _skip(text: str, i: int, chars: str = _SPACE) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _basic_end(text: str, i: int) -> int:
    """After the closing quote of the basic string opening at `i`."""
    j = i + 1
    while text[j] != '"':
        j += 2 if text[j] == "\\" else 1
    return j + 1


def _key(text: str, i: int) -> tuple[Path_, int]:
    """The dotted key starting at `i` and where it ends (before `=` or `]`)."""
    parts: list[str] = []
    while True:
        i = _skip(text, i)
        if text[i] == '"':
            end = _basic_end(text, i)
            parts.append(tomllib.loads(f"k = {text[i:end]}")["k"])
        elif text[i] == "'":
            end = text.index("'", i + 1) + 1
            parts.append(text[i + 1:end - 1])
        else:
            match = _BARE.match(text, i)
            if match is None:
                raise ValueError(f"no key at offset {i}")
            end = match.end()
            parts.append(match.group())
        i = _skip(text, end)
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return tuple(parts), i


def _gap_end(text: str, i: int) -> int:
    """Past whitespace, line breaks and comments inside an array or inline table."""
    while i < len(text):
        i = _skip(text, i, _SPACE + "\r\n")
        if i < len(text) and text[i] == "#":
            i = _line_end(text, i)
            continue
        return i
    return i


def _string_end(text: str, i: int, quote: str) -> int:
    """After a multi-line string opening at `i` (up to two more quotes belong to its content)."""
    j = i + 3
    while not text.startswith(quote * 3, j):
        j += 2 if quote == '"' and text[j] == "\\" else 1
    end = j + 3
    while end < len(text) and text[end] == quote and end - j < 5:
        end += 1
    return end


def value_end(text: str, i: int) -> int:
    """After the value starting at `i`."""
    if text.startswith('"""', i) or text.startswith("'''", i):
        return _string_end(text, i, text[i])
    ch = text[i]
    if ch == '"':
        return _basic_end(text, i)
    if ch == "'":
        return text.index("'", i + 1) + 1
    if ch in "[{":
        close = "]" if ch == "[" else "}"
        j = i + 1
        while True:
            j = _gap_end(text, j)
            if text[j] == ",":
                j += 1
                continue
            if text[j] == close:
                return j + 1
            if ch == "{":
                _, j = _key(text, j)
                j = _skip(text, j + 1)  # past `=`
            j = value_end(text, j)
    match = _SCALAR.match(text, i)
    if match is None:
        raise ValueError(f"no value at offset {i}")
    return match.end()


def _line_end(text: str, i: int) -> int:
    """After the line break ending the line `i` is on (the end of the text if none)."""
    found = text.find("\n", i)
    return len(text) if found < 0 else found + 1


def statements(text: str) -> list[Statement]:
    """Every statement of a TOML text, in order."""
    out: list[Statement] = []
    table: Path_ = ()
    i = 0
    while i < len(text):
        j = _skip(text, i, _SPACE + "\r")
        if j >= len(text) or text[j] == "\n":
            out.append(Statement(Kind.BLANK, (), table, i, _line_end(text, j), j))
        elif text[j] == "#":
            out.append(Statement(Kind.COMMENT, (), table, i, _line_end(text, j), j))
        elif text[j] == "[":
            table, k = _key(text, j + (2 if text.startswith("[[", j) else 1))
            out.append(Statement(Kind.HEADER, table, table, i, _line_end(text, k), j))
        else:
            key, k = _key(text, j)
            start = _skip(text, k + 1)  # past `=`
            end = value_end(text, start)
            out.append(Statement(Kind.PAIR, table + key, table, i, _line_end(text, end), j, (start, end)))
        i = out[-1].end
    return out


def members(text: str, brace: int) -> tuple[list[Member], int]:
    """The members of the inline table whose `{` is at `brace`, and where its `}` is."""
    found: list[Member] = []
    j = brace + 1
    while True:
        j = _gap_end(text, j)
        if text[j] == ",":
            j += 1
            continue
        if text[j] == "}":
            return found, j
        key, k = _key(text, j)
        start = _skip(text, k + 1)
        end = value_end(text, start)
        found.append(Member(key, j, (start, end)))
        j = end


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of an offset."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1
