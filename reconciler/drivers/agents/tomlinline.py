"""Keys of TOML inline tables added and removed by span, in the table's own style.

`mcp_servers = { other = { command = "x" } }` is valid Codex TOML. tomlkit cannot put a
table into an inline table (it raised "Inline tables cannot contain a table" and the run
failed), and where it adds or removes a key it re-spaces the members around it
(`{  github = …`, `"npx",args`). So a key of an inline table is edited in the text:

- a new key follows the last member, after `, `; in an empty table it goes between the
  braces, with the space the table already had on each side (`{}` → `{a = 1}`, `{ }` →
  `{ a = 1 }`);
- its value is written on one line, its maps as inline tables padded as the parent is
  (`{ command = "npx" }` inside `{ other = { … } }`, `{command = "npx"}` inside `{a={…}}`);
- a removed key takes the `, ` before it (the one after it when it is first), or the space
  after it when it is alone: removing a key one added gives back the bytes it had.
"""

from __future__ import annotations

from typing import Any

from reconciler.drivers.agents.tomlentries import inline_value
from reconciler.drivers.agents.tomlspans import Kind, Path_, key_text, members, statements


def inline_table(text: str, path: Path_) -> int | None:
    """Where the `{` of the inline table holding the keys of `path` is; None when `path` is
    not an inline table (or is one only through dotted keys inside another)."""
    for statement in statements(text):
        if statement.kind is not Kind.PAIR or path[:len(statement.path)] != statement.path:
            continue
        at, rest = statement.value[0], path[len(statement.path):]
        while rest and text[at] == "{":
            member = next((m for m in members(text, at)[0] if rest[:len(m.path)] == m.path), None)
            if member is None:
                return None
            at, rest = member.value[0], rest[len(member.path):]
        return at if not rest and text[at] == "{" else None
    return None


def add_key(text: str, path: Path_, value: Any) -> str | None:
    """`text` with the new key `path` in its parent's inline table; None when the parent is
    not an inline table."""
    brace = inline_table(text, path[:-1])
    if brace is None:
        return None
    found, close = members(text, brace)
    padded = text[brace + 1:brace + 2] == " "
    member = f"{key_text(path[-1:])} = {inline_value(value, padded=padded)}"
    if found:
        end = found[-1].value[1]
        return text[:end] + ", " + member + text[end:]
    return text[:close] + member + text[brace + 1:close] + text[close:]


def remove_key(text: str, path: Path_) -> str | None:
    """`text` without the key `path` of an inline table (every dotted member spelling it);
    None when its parent is not an inline table."""
    brace = inline_table(text, path[:-1])
    if brace is None:
        return None
    while True:
        found, close = members(text, brace)
        doomed = [i for i, member in enumerate(found) if member.path[0] == path[-1]]
        if not doomed:
            return text
        i = doomed[-1]
        if len(found) == 1:
            start, end = found[0].key, close
        elif i > 0:
            start, end = found[i - 1].value[1], found[i].value[1]
        else:
            start, end = found[0].key, found[1].key
        text = text[:start] + text[end:]
