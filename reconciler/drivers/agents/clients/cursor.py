"""Cursor: `.cursor/mcp.json`, `.cursor/rules/*.mdc`, `.cursor/cli.json` / `~/.cursor/cli-config.json`.

- MCP servers go to `mcpServers` in `.cursor/mcp.json` (`~/.cursor/mcp.json` at user scope).
  Cursor infers the transport (`command` or `url`); only SSE entries carry `"type": "sse"`.
  Env references are `${env:VAR}`. `cwd` support is unverified and Cursor has no per-server
  tool filters: both are dropped with a note.
- Rules: at project scope each rule is `.cursor/rules/<name>.mdc` with the MDC front matter
  `description`, `globs` (one comma-separated, unquoted string: the front matter is not
  YAML to Cursor) and `alwaysApply` (true for a rule without paths). Cursor keeps user rules
  in its app settings, not in a file: at user scope rules are dropped with a note.
- Permissions are those of the Cursor CLI: `permissions.allow` / `permissions.deny` in
  `.cursor/cli.json` (project) or `~/.cursor/cli-config.json` (user), as `Shell(git)`,
  `Read(glob)`, `Write(glob)`, `WebFetch(domain)` and `Mcp(server:tool)`. `Shell` matches a
  command's first word only: a longer `Bash` prefix widens to its first word in `deny`
  (broader, so safer; weakened note) and is dropped from `allow` (widening an allow is
  unsafe). Cursor has no `ask` and no default mode: both are dropped with a note. Every
  other key of the CLI file (`version`, `editor`, `model`, …) stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from reconciler.drivers.agents import importing
from reconciler.drivers.agents.clients import Reader
from reconciler.drivers.agents.documents import Format
from reconciler.drivers.agents.entries import Place, Rendering
from reconciler.drivers.agents.translating import (
    Permission,
    ServerShape,
    command_prefix,
    mcp_split,
    note_tool_filters,
    path_list,
    permissions_of,
    put_overrides,
    server_entry,
)
from reconciler.models.agents import AgentClient, AgentConfigSpec, AgentRule, McpTransport

ENV = "${{env:{name}}}"
_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
SHAPE = ServerShape(
    "Cursor's mcp.json", ENV,
    remote=lambda s: ({"type": "sse"} if s.transport is McpTransport.SSE else {}, {}),
    cwd_note="Cursor's support for cwd is unverified; not rendered")
MCP_FILE = ".cursor/mcp.json"
_SPELLING = importing.ServerSpelling(
    transport=lambda native, at, _: "sse" if native.text((*at, "type")) == "sse" else "http")
RULES_DIR = ".cursor/rules"
_DOMAIN = "domain:"
_MCP = re.compile(r"mcp__(.+?)(?:__(.+))?")
_NATIVE = re.compile(r"(Shell|Read|Write|WebFetch|Mcp)\((.*)\)")


def _cli_file(place: Place) -> str:
    return ".cursor/cli-config.json" if place.user else ".cursor/cli.json"


def mdc(rule: AgentRule) -> str:
    """A rule as a Cursor `.mdc` file: MDC front matter (plain `key: value` lines) and the body."""
    description = " ".join(rule.description.split())
    lines = ["---", f"description: {description}".rstrip(), f"globs: {','.join(rule.paths)}".rstrip(),
             f"alwaysApply: {'false' if rule.paths else 'true'}", "---", ""]
    return "\n".join(lines) + "\n" + rule.content.strip("\n") + "\n"


def mdc_meaning(text: str) -> tuple[str, tuple[str, ...], bool, str]:
    """What an `.mdc` file says: (description, globs, alwaysApply, body), however it spells
    them (a comma string or a list, spaces, quotes, key order, blank lines)."""
    meta, body = parse_mdc(text)
    globs = tuple(g for g in path_list(meta.get("globs")) if g)
    return " ".join(str(meta.get("description") or "").split()), globs, _always(meta), body.strip("\n")


def _always(meta: Mapping[str, Any]) -> bool:
    return str(meta.get("alwaysApply", "")).lower() == "true"


def parse_mdc(text: str) -> tuple[dict[str, Any], str]:
    """(front matter, body) of an `.mdc` file, read line by line as Cursor does (not as YAML)."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        return {}, text
    meta: dict[str, Any] = {}
    key = ""
    for line in text[4:end].splitlines():
        item = re.fullmatch(r"\s+-\s*(.*)", line)
        if item and key:  # a YAML-style list someone wrote by hand
            value = meta.get(key)
            meta[key] = [*(value if isinstance(value, list) else []), _unquote(item.group(1))]
            continue
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*):\s*(.*)", line)
        if match:
            key, meta[match.group(1)] = match.group(1), _unquote(match.group(2).strip())
    body = text[end + 4:].split("\n", 1)[1] if "\n" in text[end + 4:] else ""
    return meta, body.lstrip("\n")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


class Cursor:
    client: ClassVar[AgentClient] = AgentClient.CURSOR
    CAPABILITIES: ClassVar[dict[str, str]] = {
        "mcp": "`.cursor/mcp.json` `mcpServers`",
        "stdio cwd": "no (dropped; unverified)",
        "sse": "yes (`type: sse`)",
        "secrets": "`${env:VAR}`",
        "tool filters": "no (dropped)",
        "rules": "project: `.cursor/rules/*.mdc`; user rules: app settings only (dropped)",
        "permissions": "CLI allow / deny as `Shell` (first word), `Read`, `Write`, `WebFetch`, `Mcp`; "
                       "ask and defaultMode dropped",
        "sets of items": "`permissions.allow` / `deny` of the CLI file",
        "one value": "server `args`, `env`, `headers`",
        "grammar": "`mcp.json` JSONC; `cli-config.json` / `cli.json` strict JSON",
    }

    def render(self, spec: AgentConfigSpec, place: Place) -> Rendering:
        out = Rendering(place, env_ref=_ENV_REF)
        for name, server in spec.mcp_servers.items():
            where = f"mcpServers.{name}"
            entry = server_entry(out, name, server, SHAPE)
            if entry is None:
                continue
            note_tool_filters(out, name, server, "Cursor has no per-server tool filter")
            out.put(MCP_FILE, Format.JSON, ("mcpServers", name), entry, canonical=where)
        self._rules(spec, out)
        self._permissions(spec, out)
        put_overrides(out, _cli_file(place), Format.JSON, servers_file=(MCP_FILE, Format.JSON))
        return out

    def _rules(self, spec: AgentConfigSpec, out: Rendering) -> None:
        for rule in spec.rules:
            if out.place.user:
                out.dropped(f"rules[{rule.name}]", "Cursor keeps user rules in its app settings, not "
                            "in a file; add the rule there or use a project target")
                continue
            if any("," in path for path in rule.paths):
                out.weakened(f"rules[{rule.name}].paths", "Cursor's globs are one comma-separated "
                             "string: a glob containing a comma is split")
            out.put(f"{RULES_DIR}/{rule.name}.mdc", Format.TEXT, (), mdc(rule), meaning=mdc_meaning,
                    canonical=f"rules[{rule.name}]")

    def _permissions(self, spec: AgentConfigSpec, out: Rendering) -> None:
        lists: dict[str, dict[str, str]] = {"allow": {}, "deny": {}}  # native token → the first rule of it
        for permission in permissions_of(spec.permissions):
            native = self._native(permission, out, servers=spec.mcp_servers)
            if native is not None:
                lists[permission.decision].setdefault(native, permission.text)
        for decision in ("allow", "deny"):
            if lists[decision]:
                out.put_items(_cli_file(out.place), Format.JSON, ("permissions", decision),
                              list(lists[decision]), canonical=f"permissions.{decision}",
                              rules=list(lists[decision].values()))
        if spec.permissions.default_mode is not None:
            out.dropped("permissions.defaultMode", "the Cursor CLI has no default permission mode")

    @staticmethod
    def _native(permission: Permission, out: Rendering, *, servers: Iterable[str] = ()) -> str | None:
        """The Cursor CLI token of one rule, or None (with a note) when there is none."""
        field = f"permissions.{permission.decision}[{permission.text}]"
        tool, spec, decision = permission.tool, permission.specifier, permission.decision
        if decision == "ask":
            out.dropped(field, "the Cursor CLI has no ask list (only allow and deny)")
            return None
        if tool == "Bash":
            words = command_prefix(spec)
            if words is None:
                out.dropped(field, "Cursor's Shell(...) matches a command's first word; this is not "
                            "a command prefix")
                return None
            if not words:
                return "Shell(*)"
            assert spec is not None
            first = words[0]
            if len(words) == 1:
                if not spec.strip().endswith((" *", ":*")):
                    out.weakened(field, f"Cursor's Shell({first}) also matches {first} with arguments")
                return f"Shell({first})"
            if decision == "deny":
                out.weakened(field, f"Cursor's Shell(...) matches a command's first word only: denies "
                             f"every {first} command (broader, safer)")
                return f"Shell({first})"
            out.dropped(field, f"Cursor's Shell(...) matches a command's first word only; allowing "
                        f"every {first} command would be broader than the spec")
            return None
        if tool in ("Read", "Edit"):
            return f"{'Read' if tool == 'Read' else 'Write'}({spec if spec is not None else '**'})"
        if tool == "WebFetch":
            if spec is None:
                return "WebFetch(*)"
            if spec.startswith(_DOMAIN):
                return f"WebFetch({spec[len(_DOMAIN):]})"
            out.dropped(field, "only WebFetch(domain:…) rules have a Cursor equivalent")
            return None
        split = mcp_split(tool, servers) if _MCP.fullmatch(tool) else None
        if split and spec is None:
            return f"Mcp({split[0]}:{split[1] or '*'})"
        out.dropped(field, f"the Cursor CLI has no permission for {tool}")
        return None

    def read(self, reader: Reader, place: Place, warn: Callable[[str], None]) -> dict[str, Any]:
        mcp = importing.Native.json(reader.text(MCP_FILE), MCP_FILE)
        servers = importing.read_servers(mcp, ("mcpServers",), _SPELLING, _ENV_REF, warn)
        rules = [] if place.user else self._read_rules(reader, warn)
        cli = _cli_file(place)
        perms = importing.Native.json(reader.text(cli), cli)
        lists: dict[str, list[str]] = {"allow": [], "deny": []}
        for decision in lists:
            for token in perms.strings(("permissions", decision)) or []:
                rule = canonical_rule(str(token))
                if rule is None:
                    warn(f"{cli}: permissions.{decision} {token!r} has no canonical rule; not imported")
                else:
                    lists[decision].append(rule)
        return {"mcpServers": servers, "rules": rules,
                "permissions": importing.permissions(lists["allow"], None, lists["deny"])}

    @staticmethod
    def _read_rules(reader: Reader, warn: Callable[[str], None]) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        for relative in reader.glob(RULES_DIR, "*.mdc"):
            meta, body = parse_mdc(reader.text(relative) or "")
            paths = path_list(meta.get("globs"))
            if _always(meta):
                paths = []
            elif not any(paths):  # imported as always on, it would change what the rule means
                warn(f"{relative}: neither alwaysApply nor globs (an agent-requested or manual rule) "
                     f"has no canonical equivalent; {importing.LEFT}")
                continue
            name = relative.rsplit("/", 1)[-1].removesuffix(".mdc")
            rules.append(importing.rule(name, str(meta.get("description") or ""), [p for p in paths if p],
                                        body))
        return rules


def canonical_rule(token: str) -> str | None:
    """The canonical rule of a Cursor CLI token, or None."""
    match = _NATIVE.fullmatch(token)
    if not match:
        return None
    kind, arg = match.groups()
    if kind == "Shell":
        if arg == "*":
            return "Bash"
        word = arg.removesuffix(":*")
        return f"Bash({word} *)" if re.fullmatch(r"[^\s*?()]+", word) else None
    if kind in ("Read", "Write"):
        tool = "Read" if kind == "Read" else "Edit"
        return tool if arg == "**" else f"{tool}({arg})"
    if kind == "WebFetch":
        return "WebFetch" if arg == "*" else f"WebFetch({_DOMAIN}{arg})"
    server, _, tool_name = arg.partition(":")
    if not re.fullmatch(r"[A-Za-z0-9_-]+", server) or not tool_name:
        return None
    return f"mcp__{server}" if tool_name == "*" else f"mcp__{server}__{tool_name}"


ADAPTER = Cursor()
