"""TOML files (Codex's `config.toml`, Gemini's policy files) as documents: tomlkit keeps
comments and layout, edits go key by key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.drivers.agents.documents import (
    DocumentError,
    ListEdit,
    Path_,
    delete_pruning,
    only_crlf,
    walk,
)


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
        try:
            self._doc = tomlkit.parse(text or "")
        except ParseError as exc:
            reason = str(exc).split(" at line ")[0]
            raise DocumentError(source, exc.line, exc.col + 1, reason) from None
        self._text = text or ""
        self._ends_blank = (text or "").endswith("\n\n")

    def get(self, path: Path_) -> Any:
        return walk(self._doc.unwrap(), path)

    def set(self, path: Path_, value: Any) -> None:
        import tomlkit

        container: Any = self._doc
        for depth, key in enumerate(path[:-1]):
            if key not in container or not isinstance(container[key], Mapping):
                container[key] = tomlkit.table(is_super_table=depth == 0)
            container = container[key]
        is_entry = isinstance(value, Mapping) and len(path) == 2
        item = _toml_item(value, top=is_entry)
        if is_entry and path[-1] not in container:
            item.add(tomlkit.nl())  # a blank line before whatever table follows
        if len(path) == 1 and path[0] not in container and not isinstance(value, Mapping):
            place = self._root_key_place()
            if place is not None:
                index, after_key = place
                item = tomlkit.item(item)
                before = self._doc.body[index - 1][1] if after_key else None
                if before is not None and before.trivia.trail.endswith("\n\n"):  # one we added
                    before.trivia.trail = before.trivia.trail[:-1]  # the blank line moves below
                    item.trivia.trail += "\n"
                elif before is None:
                    item.trivia.trail += "\n"  # a blank line keeps that comment with its table
                container._insert_at(index, path[0], item)  # tomlkit has no public insert
                return
        container[path[-1]] = item

    def _root_key_place(self) -> tuple[int, bool] | None:
        """Where a new root key goes when tables follow (tomlkit appends it after the comments
        above the first table, under a comment that belongs to that table): after the last
        root key (True), else before the comments attached to the first table (False); None
        when no table follows or nothing stands between it and the top of the file."""
        from tomlkit.items import AoT, Comment, Table, Whitespace

        body = self._doc.body
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

    def delete(self, path: Path_) -> None:
        delete_pruning(self._doc, path)
        self._emptied = not self._doc

    def edit_list(self, path: Path_, edit: ListEdit) -> None:
        container: Any = self._doc
        for key in path[:-1]:
            container = container.get(key)
            if container is None:
                self.set(path, list(edit.append))
                return
        if path[-1] not in container:
            self.set(path, list(edit.append))
            return
        array = container[path[-1]]
        # tomlkit arrays keep the comments and layout of the items they still hold.
        for index in sorted(edit.remove, reverse=True):
            del array[index]
        shift = {i: i - sum(1 for r in edit.remove if r < i) for i in edit.replace}
        for index, value in edit.replace.items():
            array[shift[index]] = value
        for value in edit.append:
            array.append(value)

    def where(self, path: Path_) -> tuple[int, int] | None:
        """The line of the table header or `key =` line of `path` (tomlkit keeps no positions)."""
        if not path:
            return 1, 1
        text = self._text
        quoted = [re.escape(part) if re.fullmatch(r"[A-Za-z0-9_-]+", part) else
                  "[\"']" + re.escape(part) + "[\"']" for part in path]
        dotted = r"\s*\.\s*".join(quoted)
        patterns = [rf"^[ \t]*\[+\s*{dotted}\s*\]+", rf"^[ \t]*{quoted[-1]}\s*="]
        for pattern in patterns:
            match = re.search(pattern, text, re.MULTILINE)
            if match:
                line = text.count("\n", 0, match.start()) + 1
                column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
                return line, column + len(match.group()) - len(match.group().lstrip())
        return None

    def render(self) -> str | None:
        import tomlkit

        if getattr(self, "_emptied", False) and not self._doc:
            return None

        out = tomlkit.dumps(self._doc)
        if out.endswith("\n\n") and not self._ends_blank:
            out = out.rstrip("\n") + "\n"
        return out.replace("\n", "\r\n") if self.crlf else out
