"""Whole entries of a TOML file (an MCP server of Codex's `config.toml`) added and removed by
span, spelled like the entries beside them, with blank lines that come and go with them.

tomlkit adds a new table where its model says the parent is, and the blank lines it adds
around it are not the ones it removes with it: in a file where servers come and go, blank
lines pile up before the last table. Here an entry is text the reconciler places and takes
out again, by these rules (`tomlspans` finds the statements):

- **Spelling.** A parent spelled only as dotted keys (`mcp_servers.other.command = "x"`, at
  the top, before any table) gets the new entry as dotted keys, after the last of them: a
  table header there would take in every dotted line below it. Any other parent gets a
  table (`[mcp_servers.docs]`).
- **Where a table goes.** After the last table of the parent (so that servers stay
  together), past its *content* — its last key and the comment lines right below it — and
  past the blank lines that follow; a comment after those blank lines belongs to the next
  table and stays above it. A parent without tables gets the entry at the end of the file.
- **Blank lines.** A table placed before other statements is followed by one blank line. At
  the end of the file it is preceded by one blank line, unless the file ends with blank
  lines: then it goes after them, and they stay at the end. A file without a final line
  break keeps going without one.
- **Removal** is the inverse: an entry's tables go whole (header, keys, the comment lines
  right below its last key, sub-tables such as Codex's `[mcp_servers.x.tools.t]`), each with
  the blank lines after it; a table at the very end of the file that has none takes the
  blank line above it. Adding an entry and removing it gives back the file's bytes.

Comment lines are never removed, except those inside a removed table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.drivers.agents.tomlspans import Kind, Path_, Statement, key_text, statements


def inline_value(value: Any, *, padded: bool = False) -> str:
    """A value as one line of TOML: maps as inline tables (`{ a = 1 }` when `padded`)."""
    import tomlkit

    if isinstance(value, Mapping):
        inner = ", ".join(f"{key_text((key,))} = {inline_value(item, padded=padded)}"
                          for key, item in value.items())
        return "{ " + inner + " }" if padded and inner else "{" + inner + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(inline_value(item, padded=padded) for item in value) + "]"
    return str(tomlkit.item(value).as_string())


def table_text(path: Path_, value: Mapping[str, Any]) -> str:
    """`[path]` and its keys; a map of maps as a sub-table."""
    lines = [f"[{key_text(path)}]"]
    lines += [f"{key_text((key,))} = {inline_value(item)}" for key, item in value.items()
              if not _nested(item)]
    text = "\n".join(lines) + "\n"
    for key, item in value.items():
        if _nested(item):
            text += "\n" + table_text((*path, key), item)
    return text


def _nested(value: Any) -> bool:
    return isinstance(value, Mapping) and any(isinstance(item, Mapping) for item in value.values())


def add_entry(text: str, path: Path_, value: Mapping[str, Any]) -> str | None:
    """`text` with the new entry `path` (its parent may be missing); None when its parent is
    an inline table."""
    bare = bool(text) and not text.endswith("\n")
    body = text + "\n" if bare else text
    found = statements(body)
    parent = path[:-1]
    under = [s for s in found if s.path[:len(parent)] == parent and s.kind in (Kind.HEADER, Kind.PAIR)]
    if any(s.kind is Kind.PAIR and s.path == parent for s in under):
        return None
    if under and not any(s.kind is Kind.HEADER for s in under):
        new = _add_dotted(body, under[-1], path, value)
    else:
        new = _add_table(body, found, path, value)
    return new[:-1] if bare and new.endswith("\n") else new


def _add_dotted(text: str, last: Statement, path: Path_, value: Mapping[str, Any]) -> str:
    prefix = key_text(path[len(last.table):])
    lines = [f"{prefix} = {{}}"] if not value else [
        f"{prefix}.{key_text((key,))} = {inline_value(item)}" for key, item in value.items()]
    return text[:last.end] + "\n".join(lines) + "\n" + text[last.end:]


def _content_end(found: list[Statement], header: int) -> int:
    """The index after the content of the table whose header is `found[header]`: its last
    key, then the comment lines right below it."""
    end = header + 1
    for index in range(header + 1, len(found)):
        if found[index].kind is Kind.HEADER:
            break
        if found[index].kind is Kind.PAIR:
            end = index + 1
    while end < len(found) and found[end].kind is Kind.COMMENT:
        end += 1
    return end


def _add_table(text: str, found: list[Statement], path: Path_, value: Mapping[str, Any]) -> str:
    block = table_text(path, value)
    parent = path[:-1]
    tables = [i for i, s in enumerate(found) if s.kind is Kind.HEADER and s.path[:len(parent)] == parent]
    if tables:
        end = _content_end(found, tables[-1])
    else:
        end = max((i + 1 for i, s in enumerate(found) if s.kind is not Kind.BLANK), default=0)
    after = end
    while after < len(found) and found[after].kind is Kind.BLANK:
        after += 1
    if after < len(found):  # statements follow: a blank line between the table and them
        at = found[after].start
        return text[:at] + block + "\n" + text[at:]
    if end == 0:
        return text + block
    if after > end:  # the file ends with blank lines: they stay last
        return text + block + text[found[end].start:]
    return text + "\n" + block


def remove_entry(text: str, path: Path_) -> str | None:
    """`text` without the entry at `path`: its tables and the keys spelling it elsewhere (dotted
    keys, `name = {...}` in its parent's table); None when it is inside an inline table."""
    bare = bool(text) and not text.endswith("\n")
    body = text + "\n" if bare else text
    if not any(s.path[:len(path)] == path for s in statements(body) if s.kind in (Kind.HEADER, Kind.PAIR)):
        return None
    while True:
        found = statements(body)
        tables = [i for i, s in enumerate(found) if s.kind is Kind.HEADER and s.path[:len(path)] == path]
        pairs = [i for i, s in enumerate(found) if s.kind is Kind.PAIR and s.path[:len(path)] == path
                 and s.table[:len(path)] != path]  # not inside one of its tables
        if not tables and not pairs:
            break
        last = max(tables + pairs)
        if last in pairs:
            body = body[:found[last].start] + body[found[last].end:]
        else:
            body = _remove_table(body, found, last)
    return body[:-1] if bare and body.endswith("\n") else body


def _remove_table(text: str, found: list[Statement], header: int) -> str:
    end = _content_end(found, header)
    after = end
    while after < len(found) and found[after].kind is Kind.BLANK:
        after += 1
    start = found[header].start
    if after < len(found):
        return text[:start] + text[found[after].start:]
    if after == end and header > 0 and found[header - 1].kind is Kind.BLANK:
        start = found[header - 1].start  # last in the file: the blank line above it was its own
    return text[:start]
