"""Lists that are sets of items: which item is which, and how strict each one is.

Most lists in a client file are one value (an MCP server's `args`, Codex `env_vars`): the
reconciler replaces them whole. Permission lists are different: a user's
`permissions.deny` holds dozens of rules written by hand, and the client itself appends
to allow lists when someone answers "always". There the reconciler owns single *items*,
never the list (see `entries.Entry.item`). To do that it must tell items apart and know
what each one permits:

- `identity` names an item independently of how it is spelled: a plain rule string is its
  own identity; a Rovo Dev `bash.commands` item `{command, permission}` is identified by
  the command, read back as a canonical `Bash(...)` rule when the regex matches exactly
  what one matches (so `git push(\\s.*)?`, written by Rovo or by hand, and the
  reconciler's `git push( .*)?` are the same item; `git push.*` is another).
- `normal` is the item as compared: two spellings of one rule with the same permission
  are equal, so a user's own regex text is never rewritten.
- `level_of` is the item's permission level (`deny` > `ask` > `allow`): from the list it
  sits in (`permissions.deny`), or from the item itself (Rovo's `permission`). A change
  that lowers a level someone else wrote is a *weakening* (see `planning`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

LEVELS = ("deny", "ask", "allow")  # strictest first
_RANK = {"deny": 2, "ask": 1, "allow": 0}
ROVO_COMMANDS = ("toolPermissions", "bash", "commands")


class ItemKind(StrEnum):
    TEXT = "text"  # a rule string, e.g. "Bash(git push *)"
    ROVO_COMMAND = "rovo-command"  # {command: <regex>, permission: allow|ask|deny}


def kind_of(pointer: tuple[str, ...]) -> ItemKind:
    return ItemKind.ROVO_COMMAND if pointer[-3:] == ROVO_COMMANDS else ItemKind.TEXT


def identity(kind: ItemKind, item: Any) -> str:
    if kind is ItemKind.ROVO_COMMAND and isinstance(item, dict) and isinstance(item.get("command"), str):
        from reconciler.drivers.agents.clients.rovo import bash_rule

        return bash_rule(item["command"]) or item["command"]
    return item if isinstance(item, str) else json.dumps(item, sort_keys=True, ensure_ascii=False)


def rule_of(kind: ItemKind, item: Any) -> str | None:
    """The canonical rule an item is (`Bash(git push *)`), or None when none means exactly
    what it does (a Rovo Dev regex such as `rm.*`)."""
    if kind is ItemKind.ROVO_COMMAND:
        from reconciler.drivers.agents.clients.rovo import bash_rule

        command = item.get("command") if isinstance(item, dict) else None
        return bash_rule(command) if isinstance(command, str) else None
    return item if isinstance(item, str) else None


def normal(kind: ItemKind, item: Any) -> Any:
    """The item as compared: the same rule spelled another way is the same item."""
    if kind is ItemKind.ROVO_COMMAND and isinstance(item, dict):
        return {**item, "command": identity(kind, item)}
    return item


def list_level(pointer: tuple[str, ...]) -> str | None:
    """The level of every item of a list named for one (`permissions.deny`), else None."""
    return pointer[-1] if pointer and pointer[-1] in _RANK else None


def level_of(kind: ItemKind, item: Any, pointer: tuple[str, ...]) -> str | None:
    if kind is ItemKind.ROVO_COMMAND:
        level = item.get("permission") if isinstance(item, dict) else None
        return level if level in _RANK else None
    return list_level(pointer)


def rank(level: Any, ranks: Mapping[str, int] | None = None) -> int | None:
    """How strict a level is (deny 2, ask 1, allow 0, or by a key's own `ranks`: a client's
    default permission modes); None for anything else."""
    return (ranks or _RANK).get(level) if isinstance(level, str) else None


def weaker(new: Any, old: Any, ranks: Mapping[str, int] | None = None) -> bool:
    """Whether level `new` permits more than level `old` (MISSING / unknown: never)."""
    a, b = rank(new, ranks), rank(old, ranks)
    return a is not None and b is not None and a < b
