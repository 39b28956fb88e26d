"""TOML files (Codex's `config.toml`, Gemini's policy files) as documents: the user's bytes
and the meaning of every key the reconciler does not edit stay as they were.

**The text is the document.** Each edit produces a new text, by one of two means:

- *tomlkit* for what it does in place without touching anything else: a changed value, a
  key added to an existing table, items of an array (comments and layout kept), a new root
  key (placed after the last root key, see `_root_key_place`);
- *spans* for what tomlkit gets wrong: whole entries (`tomlentries`: a server as a table or
  as dotted keys, in the spelling of the servers beside it, with blank lines that come and
  go with it) and keys of inline tables (`tomlinline`).

**Every edit is read back** with tomllib, the strict reader closest to Codex's, and must
give exactly the document meant (the old values with that one change); otherwise it is
refused as a `ShapeError` at the key's line and column and the text stays as it was. A
wrong placement can therefore fail a run, but never silently change another key.

**Emptied containers.** A deletion that leaves its parent empty deletes the parent too, as
every document does, but a parent with bytes of its own (`[mcp_servers]`, `mcp_servers =
{ }`) only reads as deleted until `render`: when the planner sets it again (it keeps what
the user had), it is still there, spelled as it was.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from typing import Any

from reconciler.drivers.agents.documents import (
    MISSING,
    DocumentError,
    ListEdit,
    Path_,
    ShapeError,
    only_crlf,
    walk,
    with_value,
)
from reconciler.drivers.agents.tomlentries import add_entry, remove_entry
from reconciler.drivers.agents.tomlinline import add_key, inline_table, remove_key
from reconciler.drivers.agents.tomlspans import Kind, members, position, statements


def _toml_item(value: Any, *, top: bool = False) -> Any:
    """A tomlkit item for a new value: tables for entries, inline tables for small maps."""
    import tomlkit

    if isinstance(value, Mapping):
        if top or any(isinstance(v, Mapping) for v in value.values()):
            table = tomlkit.table()
            for key, item in value.items():
                table[key] = _toml_item(item)
            return table
        inline = tomlkit.inline_table()
        inline.update(value)
        return inline
    return value


class TomlDocument:
    def __init__(self, text: str | None, source: str) -> None:
        import tomlkit
        from tomlkit.exceptions import ParseError

        if (text or "").startswith("\ufeff"):
            raise DocumentError(source, 1, 1, "the file starts with a byte order mark (U+FEFF), which "
                                "TOML parsers refuse (tomllib, tomlkit); save it as UTF-8 without one")
        self.crlf = only_crlf(text)
        if self.crlf:
            text = (text or "").replace("\r\n", "\n")
        self.source = source
        self.text = text or ""
        try:
            self._tk: Any = tomlkit.parse(self.text)
        except ParseError as exc:
            reason = str(exc).split(" at line ")[0]
            raise DocumentError(source, exc.line, exc.col + 1, reason) from None
        try:
            self._value = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:  # what tomlkit lets through and Codex's reader refuses
            found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
            line, column = (int(found[1]), int(found[2])) if found else (None, None)
            raise DocumentError(source, line, column, str(exc).split(" (at ")[0]) from None
        self._deleted = False
        # Containers a deletion left empty: those spelled by bytes of their own (`[mcp_servers]`,
        # `mcp_servers = {}`) are deleted at `render` unless set again meanwhile (the planner
        # keeps what the user had: then they keep their bytes); those only their members
        # spelled (`[mcp_servers.x]` makes `mcp_servers`) are gone already, with nothing to keep.
        self._pruned: set[Path_] = set()
        self._vanished: set[Path_] = set()

    def _tomlkit(self) -> Any:
        """The tomlkit document of the text as it is now (parsed again after an edit by spans)."""
        import tomlkit

        if self._tk is None:
            self._tk = tomlkit.parse(self.text)
        return self._tk

    def _commit(self, text: str, expected: Any, path: Path_) -> None:
        """Take `text` as the new file once TOML reads it as exactly `expected`: an edit that
        would change any other key (the meaning of a layout the editor got wrong) is refused,
        and the file stays as it was. A table that only its members spelled (`[a.b]` makes
        `a`) goes with the last of them."""
        try:
            value: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            value = exc
        for end in range(len(path) - 1, 0, -1):
            gone = isinstance(value, dict) and walk(value, path[:end]) is MISSING
            if gone and walk(expected, path[:end]) == {}:
                expected = _without(expected, path[:end])
        if not _same(value, expected):
            where = next((self.where(path[:end]) for end in range(len(path), 0, -1)
                          if walk(self._value, path[:end]) is not MISSING), None)
            line, column = where or (None, None)
            raise ShapeError(self.source, line, column, "/" + "/".join(path),
                             "this edit would change other keys of the file as TOML reads it (a layout "
                             "the reconciler cannot edit in place); make the change by hand")
        self.text, self._value, self._tk = text, value, None

    def get(self, path: Path_) -> Any:
        value = self._value
        for gone in sorted(self._pruned | self._vanished, key=len, reverse=True):
            if walk(value, gone) is not MISSING:  # as the planner must see it: already deleted
                value = _without(value, gone)
        return walk(value, path)

    def set(self, path: Path_, value: Any) -> None:
        current = self.get(path)
        if value == {} and path and isinstance(current, Mapping) and current:
            # Emptied where it stands (the planner keeps the user's container): its members
            # go, its own text (a header, inline braces) stays, as after their deletion.
            for key in list(current):
                self.delete((*path, key))
        if path in self._vanished and value == {}:
            return  # an empty table no byte spelled: there is nothing to write back
        for kept in [p for p in self._pruned if path[:len(p)] == p]:
            self._pruned.discard(kept)
            self._vanished -= {kept[:end] for end in range(1, len(kept))}
        self._vanished -= {path[:end] for end in range(1, len(path) + 1)}
        if _same(self.get(path), value):
            return
        expected = with_value(self._value, path, value)
        if self.get(path) is MISSING:
            text = add_key(self.text, path, value)  # a key of an inline table: inside it, in its style
            if text is None and isinstance(value, Mapping) and len(path) == 2:
                text = add_entry(self.text, path, value)  # an entry: in the spelling of its siblings
            if text is not None:
                self._commit(text, expected, path)
                return
        self._tomlkit_set(path, value)
        self._commit(self._tomlkit().as_string(), expected, path)

    def _tomlkit_set(self, path: Path_, value: Any) -> None:
        import tomlkit

        root = self._tomlkit()
        container: Any = root
        for depth, key in enumerate(path[:-1]):
            if key not in container or not isinstance(container[key], Mapping):
                container[key] = tomlkit.table(is_super_table=depth == 0)
            container = container[key]
        item = _toml_item(value, top=isinstance(value, Mapping) and len(path) == 2)
        if len(path) == 1 and path[0] not in container and not isinstance(value, Mapping):
            place = _root_key_place(root)
            if place is not None:
                index, after_key = place
                item = tomlkit.item(item)
                before = root.body[index - 1][1] if after_key else None
                if before is not None and before.trivia.trail.endswith("\n\n"):  # one we added
                    before.trivia.trail = before.trivia.trail[:-1]  # the blank line moves below
                    item.trivia.trail += "\n"
                elif before is None:
                    item.trivia.trail += "\n"  # a blank line keeps that comment with its table
                container._insert_at(index, path[0], item)  # tomlkit has no public insert
                return
        container[path[-1]] = item

    def delete(self, path: Path_) -> None:
        if self.get(path) is MISSING:
            return
        self._remove(path)
        self._deleted = True
        for end in range(len(path) - 1, 0, -1):  # the parents it left empty (no `mcp_servers = {}`)
            parent = path[:end]
            if walk(self._value, parent) is MISSING:
                self._vanished.add(parent)
            elif self.get(parent) == {}:
                (self._pruned if self._spelled(parent) else self._vanished).add(parent)
            else:
                break

    def _remove(self, path: Path_) -> None:
        found = walk(self._value, path)
        expected = _without(self._value, path)
        text = remove_key(self.text, path)
        if text is None and isinstance(found, Mapping):
            text = remove_entry(self.text, path)
        if text is None:
            container: Any = self._tomlkit()
            for key in path[:-1]:
                container = container[key]
            del container[path[-1]]
            text = self._tomlkit().as_string()
        self._commit(text, expected, path)

    def _spelled(self, path: Path_) -> bool:
        """Whether a table has bytes of its own: a header, a `key = {...}` pair or member."""
        return inline_table(self.text, path) is not None or any(
            s.kind is Kind.HEADER and s.path == path for s in statements(self.text))

    def edit_list(self, path: Path_, edit: ListEdit) -> None:
        current = self.get(path)
        if current is MISSING:
            self.set(path, list(edit.append))
            return
        expected = with_value(self._value, path, edit.applied(list(current)))
        container: Any = self._tomlkit()
        for key in path[:-1]:
            container = container[key]
        array = container[path[-1]]
        # tomlkit arrays keep the comments and layout of the items they still hold.
        for index in sorted(edit.remove, reverse=True):
            del array[index]
        shift = {i: i - sum(1 for r in edit.remove if r < i) for i in edit.replace}
        for index, value in edit.replace.items():
            array[shift[index]] = value
        for value in edit.append:
            array.append(value)
        self._commit(self._tomlkit().as_string(), expected, path)

    def where(self, path: Path_) -> tuple[int, int] | None:
        """1-based (line, column) of the table header or the key spelling `path` (the first
        dotted key through it, the member of an inline table holding it)."""
        if not path:
            return 1, 1
        for statement in statements(self.text):
            if statement.kind is Kind.HEADER or statement.kind is Kind.PAIR:
                if statement.path[:len(path)] == path:
                    return position(self.text, statement.key)
                if statement.kind is Kind.PAIR and path[:len(statement.path)] == statement.path:
                    rest = path[len(statement.path):]
                    return position(self.text, self._member_key(statement.value[0], rest, statement.key))
        return None

    def _member_key(self, at: int, rest: Path_, fallback: int) -> int:
        """Where the key of `rest` is inside the inline table starting at `at`."""
        if self.text[at] != "{":
            return fallback
        for member in members(self.text, at)[0]:
            if member.path[:len(rest)] == rest:
                return member.key
            if rest[:len(member.path)] == member.path:
                return self._member_key(member.value[0], rest[len(member.path):], member.key)
        return fallback

    def render(self) -> str | None:
        for path in sorted(self._pruned, key=len):
            if walk(self._value, path) is not MISSING:
                self._remove(path)
        self._pruned.clear()
        if self._deleted and not self._value and not self.text.strip():
            return None  # nothing left, not even a comment: the file goes (unless the user made it)
        out = self.text
        return out.replace("\n", "\r\n") if self.crlf else out


def _root_key_place(root: Any) -> tuple[int, bool] | None:
    """Where a new root key goes when tables follow (tomlkit appends it after the comments
    above the first table, under a comment that belongs to that table): after the last
    root key (True), else before the comments attached to the first table (False); None
    when no table follows or nothing stands between it and the top of the file."""
    from tomlkit.items import AoT, Comment, Table, Whitespace

    body = root.body
    first = next((i for i, (key, item) in enumerate(body)
                  if key is not None and isinstance(item, Table | AoT) and not key.is_dotted()), None)
    if first is None:
        return None
    keys = [i for i, (key, item) in enumerate(body[:first])
            if key is not None and not isinstance(item, Comment | Whitespace)]
    if keys:
        return keys[-1] + 1, True
    index = first
    while index > 0 and isinstance(body[index - 1][1], Comment):
        index -= 1
    return (index, False) if index < first else None


def _without(value: Any, path: Path_) -> Any:
    out = dict(value)
    if len(path) == 1:
        out.pop(path[0], None)
    else:
        out[path[0]] = _without(out[path[0]], path[1:])
    return out


def _same(read: Any, meant: Any) -> bool:
    """What TOML read equals what the edit meant (a list for a tuple, NaN for NaN; a bool only
    for a bool)."""
    if isinstance(read, dict):
        return isinstance(meant, Mapping) and read.keys() == meant.keys() and all(
            _same(read[key], meant[key]) for key in read)
    if isinstance(read, list):
        return isinstance(meant, list | tuple) and len(read) == len(meant) and all(
            _same(a, b) for a, b in zip(read, meant, strict=True))
    if isinstance(read, float) and isinstance(meant, float) and math.isnan(read) and math.isnan(meant):
        return True
    return isinstance(read, bool) == isinstance(meant, bool) and bool(read == meant)
