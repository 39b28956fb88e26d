"""What the corpus checks compare: parsed client files before and after an apply.

Pure functions over file bytes, so that `test_corpus.py` only runs the CLI and reports.
Each check returns a list of problems, one line each, naming the file (as `~/relative`),
the key path (a JSON pointer), the list item or the comment that was lost or changed.

`OWNED` is what `examples/agents/agentconfig.yaml` owns in each user-scope file: whole
subtrees (`values`: an MCP server entry, a scalar such as `defaultMode`), lists whose items
it adds to but does not own as a whole (`items`: permission lists, Rovo Dev's bash
`commands`; every item someone else put there must stay), the reconciler's block in a
Markdown file, or a whole file it creates. Every other file is foreign and must keep every
byte.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML

from reconciler.drivers.agents import jsonc

Pointer = tuple[str, ...]


@dataclass(frozen=True)
class Owned:
    values: tuple[Pointer, ...] = ()  # whole subtrees the spec owns
    items: tuple[Pointer, ...] = ()  # lists the spec adds items to; others' items stay
    block: bool = False  # only the reconciler's block in a Markdown file
    whole: bool = False  # a file the reconciler creates and owns entirely


_SERVERS = ("github", "docs", "metrics")  # the example spec's MCP servers
_PERMISSION_LISTS = (("permissions", "allow"), ("permissions", "ask"), ("permissions", "deny"))

OWNED: dict[str, Owned] = {
    # Claude Code
    ".claude.json": Owned(values=tuple(("mcpServers", s) for s in _SERVERS)),
    ".claude/settings.json": Owned(values=(("permissions", "defaultMode"),), items=_PERMISSION_LISTS),
    ".claude/CLAUDE.md": Owned(block=True),
    ".claude/rules/sql-migrations.md": Owned(whole=True),
    # Codex (no SSE: metrics is not rendered; overrides.sandbox_mode; defaultMode → approval_policy)
    ".codex/config.toml": Owned(values=(("mcp_servers", "github"), ("mcp_servers", "docs"),
                                        ("sandbox_mode",), ("approval_policy",))),
    ".codex/rules/reconciler.rules": Owned(whole=True),
    ".codex/AGENTS.md": Owned(block=True),
    # Qwen Code
    ".qwen/settings.json": Owned(values=(*(("mcpServers", s) for s in _SERVERS), ("tools", "approvalMode")),
                                 items=_PERMISSION_LISTS),
    ".qwen/QWEN.md": Owned(block=True),
    ".qwen/rules/sql-migrations.md": Owned(whole=True),
    # Rovo Dev
    ".rovodev/mcp.json": Owned(values=tuple(("mcpServers", s) for s in _SERVERS)),
    ".rovodev/config.yml": Owned(
        values=(("toolPermissions", "default"),
                *(("toolPermissions", "tools", t) for t in ("open_files", "expand_code_chunks", "grep"))),
        items=(("toolPermissions", "bash", "commands"),)),
    ".rovodev/AGENTS.md": Owned(block=True),
    # Gemini CLI
    ".gemini/settings.json": Owned(values=(*(("mcpServers", s) for s in _SERVERS),
                                           ("general", "defaultApprovalMode"))),
    ".gemini/policies/reconciler.toml": Owned(whole=True),
    ".gemini/GEMINI.md": Owned(block=True),
    # Cursor
    ".cursor/mcp.json": Owned(values=tuple(("mcpServers", s) for s in _SERVERS)),
    ".cursor/cli-config.json": Owned(items=(("permissions", "allow"), ("permissions", "deny"))),
}
NOTHING = Owned()


def pointer(path: Pointer) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)


def kind(rel: str) -> str:
    if rel.endswith((".json", ".jsonc")):
        return "json"
    if rel.endswith(".toml"):
        return "toml"
    if rel.endswith((".yml", ".yaml")):
        return "yaml"
    if rel.endswith(".md"):
        return "markdown"
    return "text"


def parse(rel: str, data: bytes) -> Any:
    """The value of a client file: JSON(C) with the project's parser, TOML, YAML (safe)."""
    text = data.decode("utf-8")
    fmt = kind(rel)
    if fmt == "json":
        return jsonc.loads(text)
    if fmt == "toml":
        return tomllib.loads(text)
    if fmt == "yaml":
        return YAML(typ="safe", pure=True).load(text)
    raise ValueError(f"{rel}: not a structured file")


def comment_lines(rel: str, data: bytes) -> Counter[str]:
    """Full-line comments (stripped): `#` in TOML/YAML, `//` or `/*` in JSONC."""
    marks = {"json": ("//", "/*"), "toml": ("#",), "yaml": ("#",)}.get(kind(rel), ())
    lines = (line.strip() for line in data.decode("utf-8").splitlines())
    return Counter(line for line in lines if marks and line.startswith(marks))


def leaves(value: Any, path: Pointer = ()) -> Iterator[tuple[Pointer, Any]]:
    """Every key path to a non-mapping value (lists and empty mappings are leaves)."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, (*path, str(key)))
    else:
        yield path, value


_MISSING = object()


def walk(value: Any, path: Pointer) -> Any:
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _under(path: Pointer, prefixes: tuple[Pointer, ...]) -> bool:
    return any(path[: len(p)] == p for p in prefixes)


def value_problems(where: str, before: Any, after: Any, owned: Owned) -> list[str]:
    """Foreign keys that lost or changed their value; list items that disappeared."""
    problems: list[str] = []
    for path, old in leaves(before):
        if _under(path, owned.values):
            continue
        new = walk(after, path)
        at = f"{where}: {pointer(path)}"
        if new is _MISSING:
            problems.append(f"{at}: key lost (was {_short(old)})")
            continue
        if isinstance(old, list):
            if not isinstance(new, list):
                problems.append(f"{at}: list of {len(old)} item(s) replaced by {_short(new)}")
                continue
            lost = [item for item in old if item not in new]
            problems += [f"{at}: item lost: {_short(item)}" for item in lost]
            if not lost and path not in owned.items and new != old:
                problems.append(f"{at}: foreign list changed: {_short(old)} -> {_short(new)}")
        elif old == {} and isinstance(new, dict):
            continue  # keys added into an empty object: nothing of the user's was there to lose
        elif new != old:
            problems.append(f"{at}: value changed: {_short(old)} -> {_short(new)}")
    return problems


def comment_problems(where: str, rel: str, before: bytes, after: bytes) -> list[str]:
    lost = comment_lines(rel, before) - comment_lines(rel, after)
    return [f"{where}: comment lost: {line!r}" for line in sorted(lost.elements())]


_BLOCK = re.compile(r"<!-- reconciler:begin [^>]*?-->.*?<!-- reconciler:end [^>]*?-->", re.S)


def outside_block(text: str) -> str:
    """A Markdown file without the reconciler's blocks (blank lines around them and at the
    ends of the file, in LF or CRLF, are the reconciler's to adjust)."""
    parts = [part.strip("\r\n") for part in _BLOCK.split(text)]
    return "\n".join(part for part in parts if part)


def markdown_problems(where: str, before: bytes, after: bytes) -> list[str]:
    old, new = outside_block(before.decode("utf-8")), outside_block(after.decode("utf-8"))
    if old == new:
        return []
    old_lines, new_lines = old.splitlines(), new.splitlines()
    lost = [line for line in old_lines if line not in new_lines]
    added = [line for line in new_lines if line not in old_lines]
    return [f"{where}: text outside the reconciler block changed: lines lost {lost[:5]!r}, "
            f"lines added {added[:5]!r}"]


def file_problems(rel: str, before: bytes, after: bytes | None) -> list[str]:
    """Check 1 for one file that existed before the apply."""
    where = f"~/{rel}"
    if after is None:
        return [f"{where}: file deleted"]
    owned = OWNED.get(rel, NOTHING)
    if owned.whole or before == after:
        return []
    if owned == NOTHING:
        return [f"{where}: a file the spec does not touch changed ({len(before)} -> {len(after)} bytes)"]
    if owned.block:
        return markdown_problems(where, before, after)
    old = parse(rel, before)
    try:
        new = parse(rel, after)
    except Exception as exc:
        return [f"{where}: no longer parses after the apply: {exc}"]
    return value_problems(where, old, new, owned) + comment_problems(where, rel, before, after)


def tree_problems(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    problems: list[str] = []
    for rel, data in sorted(before.items()):
        problems += file_problems(rel, data, after.get(rel))
    return problems


# --- deny rules (check 3) --------------------------------------------------------------------

_FORBIDDEN = re.compile(r"prefix_rule\(.*decision\s*=\s*\"forbidden\".*\)")


def denials(rel: str, data: bytes) -> dict[str, str]:
    """Every deny rule of a client file: description → where it lives."""
    fmt = kind(rel)
    if rel.endswith(".rules"):
        return {f"prefix_rule {line.strip()}": "rules file"
                for line in data.decode("utf-8").splitlines() if _FORBIDDEN.search(line)}
    if fmt not in ("json", "toml", "yaml"):
        return {}
    try:
        value = parse(rel, data)
    except Exception:
        return {}
    if not isinstance(value, dict):
        return {}
    out: dict[str, str] = {}
    deny = walk(value, ("permissions", "deny"))
    for item in deny if isinstance(deny, list) else []:
        out[f"permissions.deny {_short(item)}"] = "/permissions/deny"
    perms = value.get("toolPermissions")
    if isinstance(perms, dict):  # Rovo Dev
        for tool, level in (perms.get("tools") or {}).items():
            if level == "deny":
                out[f"toolPermissions.tools.{tool}: deny"] = f"/toolPermissions/tools/{tool}"
        for section in ("bash", "powershell"):
            commands = walk(perms, (section, "commands"))
            for item in commands if isinstance(commands, list) else []:
                if isinstance(item, dict) and item.get("permission") == "deny":
                    out[f"toolPermissions.{section} command {_short(item.get('command'))}: deny"] = \
                        f"/toolPermissions/{section}/commands"
    rules = value.get("rule")
    for rule in rules if isinstance(rules, list) else []:  # Gemini policies
        if isinstance(rule, dict) and rule.get("decision") == "deny":
            out[f"[[rule]] {_short(rule)}"] = "/rule"
    for key in ("mcpServers", "mcp_servers"):
        servers = value.get(key)
        for name, entry in (servers or {}).items() if isinstance(servers, dict) else []:
            for field in ("excludeTools", "disabled_tools"):
                tools = entry.get(field) if isinstance(entry, dict) else None
                for tool in tools if isinstance(tools, list) else []:
                    out[f"{key}.{name}.{field} {_short(tool)}"] = f"/{key}/{name}/{field}"
    return out


def rovo_permissions(data: bytes) -> dict[str, list[str]]:
    """command → its permissions, in every bash/powershell list of a Rovo Dev config."""
    value = parse(".yml", data)
    out: dict[str, list[str]] = {}
    for section in ("bash", "powershell"):
        commands = walk(value, ("toolPermissions", section, "commands"))
        for item in commands if isinstance(commands, list) else []:
            if isinstance(item, dict):
                out.setdefault(f"{section}:{item.get('command')}", []).append(str(item.get("permission")))
    return out


def weakening_problems(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """Check 3: deny rules that disappeared, Rovo Dev commands that are no longer denied."""
    problems: list[str] = []
    for rel, data in sorted(before.items()):
        old = denials(rel, data)
        if not old:
            continue
        where = f"~/{rel}"
        new_data = after.get(rel)
        if new_data is None:
            problems.append(f"{where}: file deleted with its {len(old)} deny rule(s)")
            continue
        new = denials(rel, new_data)
        now = rovo_permissions(new_data) if rel.endswith("config.yml") else {}
        for rule, path in old.items():
            if rule in new:
                continue
            detail = ""
            match = re.match(r"toolPermissions\.(\w+) command (.*): deny$", rule)
            if match:
                command = json.loads(match.group(2))
                detail = f" (now: {now.get(f'{match.group(1)}:{command}') or 'absent'})"
            problems.append(f"{where}: {path}: deny rule lost: {rule}{detail}")
    return problems
