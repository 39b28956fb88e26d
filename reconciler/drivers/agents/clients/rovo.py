"""Rovo Dev CLI (`acli rovodev`): `.rovodev/mcp.json`, `.rovodev/config.yml`, `AGENTS.md`.

- MCP servers go to `mcpServers` in `.rovodev/mcp.json` (`~/.rovodev/mcp.json` at user scope),
  each with `transport` (`stdio`, `http`, `sse`). At project scope Rovo Dev reads that file
  only when `mcp.mcpConfigPath` in `.rovodev/config.yml` points at it (rulesync#2726), so the
  reconciler owns that key too. Env references are written as `${VAR}`, but whether Rovo Dev
  expands them is unverified (a weakened note). `cwd` and per-server tool filters have no
  known equivalent: dropped with a note.
- Permissions: `toolPermissions` in `.rovodev/config.yml` (YAML, edited round trip: comments,
  `agent`, `sessions` and every key the reconciler does not own stay). Per-tool levels are
  nested under `toolPermissions.tools` (a level directly under `toolPermissions` is silently
  ignored, rulesync#2422): a bare `Read` sets the read tools, a bare `Edit` the file-changing
  tools, each as its own owned key, so tools the client itself records when someone answers
  "Always" stay foreign. `Bash(...)` rules become the regex list `toolPermissions.bash.commands`;
  the other `bash` keys (`bash.env`, `bash.default`) are never touched. `defaultMode` `default`
  / `bypassPermissions` become `toolPermissions.default` `ask` / `allow`.
- Rules: the reconciler's block of `AGENTS.md` (`~/.rovodev/AGENTS.md` at user scope). The
  project `AGENTS.md` is shared with Codex, which renders the identical block. Rovo Dev has
  no path-scoped rules: those rules are always on, their paths stated in the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from reconciler.drivers.agents import importing
from reconciler.drivers.agents.clients import Reader
from reconciler.drivers.agents.documents import Format, YamlDocument
from reconciler.drivers.agents.entries import Place, Rendering
from reconciler.drivers.agents.translating import (
    ServerShape,
    command_prefix,
    headers_with_bearer,
    note_tool_filters,
    permissions_of,
    put_overrides,
    put_rules_block,
    server_entry,
)
from reconciler.models.agents import AgentClient, AgentConfigSpec, DefaultMode, McpServer
from reconciler.models.common import SecretRef

ENV = "${{{name}}}"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SHAPE = ServerShape(
    "Rovo Dev's mcp.json", ENV, stdio=lambda: ({}, {"transport": "stdio"}),
    remote=lambda s: ({}, {"transport": str(s.transport or "http")}),
    cwd_note="Rovo Dev's support for cwd is unverified; not rendered")
MCP_FILE = ".rovodev/mcp.json"
_SPELLING = importing.ServerSpelling(transport=lambda native, at, _: native.text((*at, "transport")))
CONFIG = ".rovodev/config.yml"
TOOL_GROUPS: dict[str, tuple[str, ...]] = {
    "Read": ("open_files", "expand_code_chunks", "grep"),
    "Edit": ("create_file", "delete_file", "move_file", "find_and_replace_code"),
}
DEFAULT_LEVELS = {DefaultMode.DEFAULT: "ask", DefaultMode.BYPASS_PERMISSIONS: "allow"}
LEVELS = ("deny", "ask", "allow")  # strictest first
ANY_COMMAND = ".*"
WORD_WILDCARD = "( .*)?"  # `git *`: git alone or followed by arguments, not `gitk`
# Every spelling of WORD_WILDCARD's set of commands (`\s` as the blank between words).
ARGUMENTS = (WORD_WILDCARD, r"( +.*)?", r"(\s.*)?", r"(\s+.*)?")
_REGEX_SYNTAX = set(".^$*+?{}[]|()\\")
_ESCAPE = re.compile(r"([.^$*+?{}\[\]|()\\])")


def _memory_file(place: Place) -> str:
    return ".rovodev/AGENTS.md" if place.user else "AGENTS.md"


def command_regex(specifier: str | None) -> str | None:
    """`npm run test *` → `npm run test( .*)?`; bare Bash → `.*`; None if not a plain prefix.

    Regex syntax in the words is escaped (`make -C a.b` → `make -C a\\.b`).
    """
    words = command_prefix(specifier)
    if words is None:
        return None
    if not words:
        return ANY_COMMAND
    text = " ".join(_ESCAPE.sub(r"\\\1", word) for word in words)
    assert specifier is not None
    return text + WORD_WILDCARD if specifier.strip().endswith((" *", ":*")) else text


def bash_rule(regex: str) -> str | None:
    """The canonical rule that means exactly what the command regex matches, else None.

    Rovo Dev matches a command against the whole regex (so `^` and `$` change nothing), as
    `command_regex` assumes. `Bash(git *)` is git alone or followed by a blank and arguments:
    the writer's `git( .*)?`, and the spellings of the same set people and Rovo itself use
    (`git(\\s.*)?`; a tab separates words as a space does). `git.*` is not it (it also
    matches `gitk`, `git-lfs`), nor `git .*` (it misses a bare `git`): those stay regexes.
    """
    regex = regex.strip()
    if regex.startswith("^"):
        regex = regex[1:]
    if regex.endswith("$") and not regex.endswith("\\$"):
        regex = regex[:-1]
    if regex == ANY_COMMAND:
        return "Bash"
    wildcard = False
    for suffix in ARGUMENTS:
        if regex.endswith(suffix):
            regex, wildcard = regex[: -len(suffix)], True
            break
    text: list[str] = []
    escaped = False
    for char in regex:
        if escaped:
            text.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _REGEX_SYNTAX:
            return None
        else:
            text.append(char)
    command = "".join(text).strip()
    if escaped or not command or command_prefix(command) is None:
        return None
    return f"Bash({command} *)" if wildcard else f"Bash({command})"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _has_reference(server: McpServer) -> bool:
    values = [*server.env.values(), *headers_with_bearer(server).values()]
    return any(isinstance(v, SecretRef) and v.env is not None for v in values)


class RovoDev:
    client: ClassVar[AgentClient] = AgentClient.ROVO_DEV
    CAPABILITIES: ClassVar[dict[str, str]] = {
        "mcp": "`.rovodev/mcp.json` `mcpServers` (project: via `mcp.mcpConfigPath`)",
        "stdio cwd": "no (dropped; unverified)",
        "sse": "yes",
        "secrets": "`${VAR}` (expansion unverified)",
        "tool filters": "no (dropped)",
        "rules": "`AGENTS.md` block; scoped rules always on",
        "permissions": "`config.yml` `toolPermissions`: Read / Edit tool levels, Bash regexes, "
                       "default ask / allow",
        "sets of items": "`toolPermissions.bash.commands` (by command; Rovo's own regex spellings kept)",
        "one value": "server `args`, `env`, `headers`",
        "grammar": "YAML edited by spans; `mcp.json` strict JSON",
    }

    def render(self, spec: AgentConfigSpec, place: Place) -> Rendering:
        out = Rendering(place, env_ref=_ENV_REF)
        self._servers(spec, out)
        self._permissions(spec, out)
        if spec.rules:
            put_rules_block(out, _memory_file(place), spec.rules)
        for rule in spec.rules:
            if rule.paths:
                out.weakened(f"rules[{rule.name}].paths", "Rovo Dev has no path-scoped rules; the rule "
                             "is always on, with its paths stated in its text")
        put_overrides(out, CONFIG, Format.YAML, servers_file=(MCP_FILE, Format.JSON))
        return out

    def _servers(self, spec: AgentConfigSpec, out: Rendering) -> None:
        referenced: list[str] = []
        for name, server in spec.mcp_servers.items():
            where = f"mcpServers.{name}"
            entry = server_entry(out, name, server, SHAPE)
            if entry is None:
                continue
            note_tool_filters(out, name, server, "Rovo Dev has no per-server tool filter")
            if _has_reference(server):
                referenced.append(name)
            # An entry without `transport` (real files often leave it out) is read as stdio for
            # a command and streamable HTTP for a URL, by the importer too: not added to it.
            implied = {"transport": "stdio" if server.command is not None else "http"}
            out.put(MCP_FILE, Format.JSON, ("mcpServers", name), entry, canonical=where, implied=implied)
        if referenced:
            out.weakened("mcpServers", f"the secret references of {', '.join(referenced)} are written as "
                         "${VAR}; whether Rovo Dev expands them in mcp.json is unverified")
        if not out.place.user and any(e.file == out.place.file(MCP_FILE) for e in out.entries):
            # A project mcp.json is inert unless config.yml points at it (rulesync#2726).
            out.put(CONFIG, Format.YAML, ("mcp", "mcpConfigPath"), MCP_FILE, canonical="mcpServers")

    def _permissions(self, spec: AgentConfigSpec, out: Rendering) -> None:
        levels: dict[str, tuple[str, str]] = {}  # tool → (level, canonical); deny comes first
        commands: list[tuple[dict[str, str], str]] = []  # (item, the rule it renders)
        for permission in permissions_of(spec.permissions):
            field = f"permissions.{permission.decision}[{permission.text}]"
            if permission.tool in TOOL_GROUPS:
                if permission.specifier is not None:
                    out.dropped(field, "Rovo Dev sets one level per tool, not per path; not rendered")
                    continue
                for tool in TOOL_GROUPS[permission.tool]:
                    levels.setdefault(tool, (permission.decision, f"permissions.{permission.decision}"))
            elif permission.tool == "Bash":
                regex = command_regex(permission.specifier)
                if regex is None:
                    out.dropped(field, "only a command prefix (optionally ending in ' *') can be "
                                "written as a Rovo Dev command regex")
                    continue
                commands.append(({"command": regex, "permission": permission.decision}, permission.text))
            else:
                out.dropped(field, f"Rovo Dev has no permission for {permission.tool}")
        for tool, (level, canonical) in levels.items():
            out.put(CONFIG, Format.YAML, ("toolPermissions", "tools", tool), level, canonical=canonical,
                    security=True)
        for item, rule in commands:
            # One rule at one level: an edit of the item's `permission` moves that rule to
            # another level list of the spec (see specpatch), it does not replace a list.
            out.put_items(CONFIG, Format.YAML, ("toolPermissions", "bash", "commands"), [item], rules=[rule])
        mode = spec.permissions.default_mode
        if mode is not None and mode in DEFAULT_LEVELS:
            out.put(CONFIG, Format.YAML, ("toolPermissions", "default"), DEFAULT_LEVELS[mode],
                    canonical="permissions.defaultMode", security=True)
        elif mode is not None:
            out.dropped("permissions.defaultMode", f"Rovo Dev has no {mode} mode; only default (ask) "
                        "and bypassPermissions (allow) have an equivalent")

    def read(self, reader: Reader, place: Place, warn: Callable[[str], None]) -> dict[str, Any]:
        mcp = importing.Native.json(reader.text(MCP_FILE), MCP_FILE)
        servers = importing.read_servers(mcp, ("mcpServers",), _SPELLING, _ENV_REF, warn)
        perms = _mapping(YamlDocument(reader.text(CONFIG), CONFIG).get(("toolPermissions",)))
        lists: dict[str, list[str]] = {level: [] for level in LEVELS}
        self._read_tools(_mapping(perms.get("tools")), lists, warn)
        commands = _mapping(perms.get("bash")).get("commands")
        for item in commands if isinstance(commands, list) else []:
            rule = bash_rule(str(item.get("command", ""))) if isinstance(item, dict) else None
            level = item.get("permission") if isinstance(item, dict) else None
            if rule is None or level not in LEVELS:
                warn(f"{CONFIG}: toolPermissions.bash.commands entry {item!r} does not match exactly "
                     "what a Bash rule does (a command, or a command and its arguments: `git( .*)?`) "
                     "with a level; not imported (it stays in the file as it is: the reconciler "
                     "never removes list items it did not add)")
                continue
            lists[str(level)].append(rule)
        default = perms.get("default")
        mode = next((str(m) for m, level in DEFAULT_LEVELS.items() if level == default), None)
        if default is not None and mode is None:
            warn(f"{CONFIG}: toolPermissions.default {default!r} has no canonical defaultMode; "
                 "not imported")
        return {"mcpServers": servers, "rules": importing.rules_from_block(reader.text(_memory_file(place)),
                                             importing.rule_name(_memory_file(place))),
                "permissions": importing.permissions(lists["allow"], lists["ask"], lists["deny"], mode)}

    @staticmethod
    def _read_tools(tools: dict[str, Any], lists: dict[str, list[str]], warn: Callable[[str], None]) -> None:
        known = {tool for group in TOOL_GROUPS.values() for tool in group}
        for tool in tools:
            if tool not in known:
                warn(f"{CONFIG}: toolPermissions.tools.{tool} has no canonical tool; not imported")
        for name, group in TOOL_GROUPS.items():
            found = [tools[t] for t in group if tools.get(t) in LEVELS]
            if not found:
                continue
            if len(found) == len(group) and len(set(found)) == 1:
                lists[found[0]].append(name)
            else:
                # A canonical Read / Edit sets every tool of the group: importing the strictest
                # level would change the tools that differ, importing the loosest would weaken
                # them. The levels stay in the file as the user's own keys.
                levels = ", ".join(f"{t}: {tools.get(t, '(unset)')}" for t in group)
                warn(f"{CONFIG}: the {name} tools do not share one level ({levels}); not imported "
                     "(they stay in the file as they are)")


ADAPTER = RovoDev()
