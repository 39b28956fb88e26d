"""Codex CLI: `.codex/config.toml`, `AGENTS.md`, `.codex/rules/reconciler.rules`.

- MCP servers are `[mcp_servers.<name>]` tables in `.codex/config.toml` (`~/.codex/config.toml`
  at user scope; a project file is read only for trusted projects). Codex infers the
  transport: `command` is stdio, `url` is streamable HTTP; it has no SSE, so an SSE server is
  not rendered (dropped note). Codex rejects unknown keys (`deny_unknown_fields`), so only its
  own keys are written. Secrets are never values: an `{env: NAME}` env value under the key
  `NAME` becomes `env_vars = ["NAME"]` (passed through from Codex's environment; a renamed
  variable cannot be expressed), a bearer token `bearer_token_env_var`, a header reference
  `env_http_headers`; literal values go to `env` / `http_headers`. `enabledTools` /
  `disabledTools` become `enabled_tools` / `disabled_tools`, `enabled: false` is
  `enabled = false`. Codex writes its own per-tool `[mcp_servers.<name>.tools.<tool>]
  approval_mode` tables inside these entries: they are preserved (rulesync#1709). Every
  other table and comment of the file (`model`, `[profiles.*]`, `[projects.*]` trust,
  servers the reconciler does not own) stays byte for byte: the file is edited with tomlkit,
  and whole servers by span in the spelling the file uses for them (tables, dotted keys or an
  inline table; see `tomlentries`, `tomlinline`).
- Rules: every rule goes in the reconciler's block of `AGENTS.md` (`~/.codex/AGENTS.md` at
  user scope). AGENTS.md has no path scoping: a path-scoped rule is always on, its paths
  stated in its text (weakened note). The project `AGENTS.md` is shared with Rovo Dev, which
  renders the identical block.
- Permissions: `Bash(...)` rules become `prefix_rule(pattern=[...], decision=...)` lines
  (`allow`, `prompt`, `forbidden`) in `.codex/rules/reconciler.rules`, a whole file the
  reconciler owns; Codex's own `default.rules` ("always allow" answers) is never written.
  A denied MCP tool (`mcp__server__tool`) joins that server's `disabled_tools`; a denied
  server (`mcp__server`) gets `enabled = false`. `defaultMode` `default` / `bypassPermissions`
  become `approval_policy` `on-request` / `never`, unless the target's overrides set
  `approval_policy` themselves. Other tools have no Codex equivalent (dropped notes).
  `overrides` are dotted keys of `config.toml` (`approval_policy`, `sandbox_mode`, …).
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from collections.abc import Callable
from typing import Any, ClassVar

from reconciler.drivers.agents import importing
from reconciler.drivers.agents.clients import Reader
from reconciler.drivers.agents.documents import Format
from reconciler.drivers.agents.entries import Place, Rendering
from reconciler.drivers.agents.tomldocument import TomlDocument
from reconciler.drivers.agents.translating import (
    Permission,
    command_prefix,
    mcp_split,
    note_literal_reference,
    permissions_of,
    put_overrides,
    put_rules_block,
)
from reconciler.models.agents import AgentClient, AgentConfigSpec, DefaultMode, McpServer, McpTransport
from reconciler.models.common import SecretRef

CONFIG = ".codex/config.toml"
RULES_DIR = ".codex/rules"
RULES_FILE = f"{RULES_DIR}/reconciler.rules"
CLIENT_RULES_FILE = f"{RULES_DIR}/default.rules"  # written by Codex's TUI, read on import only
PRESERVE: tuple[tuple[str, ...], ...] = (("tools",),)  # Codex's per-tool approval_mode tables
TOOL_SETS: tuple[tuple[str, ...], ...] = (("enabled_tools",), ("disabled_tools",))  # sets of tool names
DECISIONS = {"allow": "allow", "ask": "prompt", "deny": "forbidden"}
APPROVAL_POLICIES = {DefaultMode.DEFAULT: "on-request", DefaultMode.BYPASS_PERMISSIONS: "never"}
# How strict each approval policy is: untrusted asks before anything not known safe.
POLICY_RANKS = {"untrusted": 3, "on-request": 2, "on-failure": 2, "never": 0}
_NEVER = re.compile(r"(?!)")  # Codex's `env` values are literals, never references


def _memory_file(place: Place) -> str:
    return ".codex/AGENTS.md" if place.user else "AGENTS.md"


def starlark_string(value: str) -> str:
    """A Starlark string literal (JSON's escapes are a subset of Starlark's)."""
    return json.dumps(value, ensure_ascii=False)


def prefix_rule(words: list[str], decision: str) -> str:
    pattern = ", ".join(starlark_string(w) for w in words)
    return f"prefix_rule(pattern=[{pattern}], decision={starlark_string(decision)})"


def _mcp_target(tool: str, servers: dict[str, McpServer]) -> tuple[str, str | None] | None:
    """(server, tool or None) of an `mcp__server[__tool]` rule naming a rendered spec server."""
    rendered = [name for name, server in servers.items() if server.transport is not McpTransport.SSE]
    split = mcp_split(tool, rendered)
    return split if split is not None and split[0] in rendered else None


class Codex:
    client: ClassVar[AgentClient] = AgentClient.CODEX
    CAPABILITIES: ClassVar[dict[str, str]] = {
        "mcp": "`.codex/config.toml` `[mcp_servers.*]` (per-tool `approval_mode` tables kept)",
        "stdio cwd": "yes",
        "sse": "no (dropped)",
        "secrets": "`env_vars`, `bearer_token_env_var`, `env_http_headers` (no renamed variables)",
        "tool filters": "enabled_tools / disabled_tools",
        "rules": "`AGENTS.md` block; scoped rules always on",
        "permissions": "Bash → `.codex/rules/reconciler.rules` `prefix_rule`; deny `mcp__s__t` → "
                       "disabled_tools; defaultMode → `approval_policy`",
        "sets of items": "server `enabled_tools` / `disabled_tools` (`reconciler.rules`: a whole file "
                         "of its own)",
        "one value": "server `args`, `env_vars`, `env`, `http_headers`",
        "grammar": "TOML; servers as tables, dotted keys or an inline table, as the file has them; "
                   "duplicate keys refused",
    }

    def render(self, spec: AgentConfigSpec, place: Place) -> Rendering:
        out = Rendering(place)
        denied_tools, denied_servers = self._permissions(spec, out)
        for name, server in spec.mcp_servers.items():
            where = f"mcpServers.{name}"
            if server.is_remote and server.transport is McpTransport.SSE:
                out.dropped(f"{where}.transport", "Codex has no SSE transport (only stdio and streamable "
                            "HTTP); the server is not rendered")
                continue
            entry = self._stdio(name, server, out) if server.command is not None else \
                self._remote(name, server, out)
            if not server.enabled or name in denied_servers:
                entry["enabled"] = False
            if server.enabled_tools is not None:
                entry["enabled_tools"] = list(server.enabled_tools)
            disabled = list(dict.fromkeys([*server.disabled_tools, *denied_tools.get(name, [])]))
            if disabled:
                entry["disabled_tools"] = disabled
            out.put(CONFIG, Format.TOML, ("mcp_servers", name), entry, canonical=where, preserve=PRESERVE,
                    sets=TOOL_SETS)
        if spec.rules:
            put_rules_block(out, _memory_file(place), spec.rules)
        for rule in spec.rules:
            if rule.paths:
                out.weakened(f"rules[{rule.name}].paths", "AGENTS.md has no path-scoped rules; the rule "
                             "is always on, with its paths stated in its text")
        put_overrides(out, CONFIG, Format.TOML, servers="mcp_servers")
        return out

    @staticmethod
    def _stdio(name: str, server: McpServer, out: Rendering) -> dict[str, Any]:
        assert server.command is not None
        entry: dict[str, Any] = {"command": server.command}
        if server.args:
            entry["args"] = list(server.args)
        env: dict[str, str] = {}
        passed: list[str] = []
        for key, value in server.env.items():
            field = f"mcpServers.{name}.env.{key}"
            if isinstance(value, str):
                note_literal_reference(out, field, value)  # Codex's env is literal text
                env[key] = value
            elif value.env is None:
                out.dropped(field, f"{value.describe()} cannot be written without its value; only "
                            "{env: NAME} references are rendered (as env_vars)")
            elif value.env != key:
                out.dropped(field, f"Codex passes variables through by name (env_vars) and cannot rename "
                            f"{value.env} to {key}; set {key} in Codex's environment or use "
                            f"{{env: {key}}}")
            else:
                passed.append(key)
        if env:
            entry["env"] = env
        if passed:
            entry["env_vars"] = passed
        if server.cwd:
            entry["cwd"] = server.cwd
        return entry

    @staticmethod
    def _remote(name: str, server: McpServer, out: Rendering) -> dict[str, Any]:
        entry: dict[str, Any] = {"url": server.url}
        if server.bearer_token is not None:
            if server.bearer_token.env is not None:
                entry["bearer_token_env_var"] = server.bearer_token.env
            else:
                out.dropped(f"mcpServers.{name}.bearerToken", f"{server.bearer_token.describe()} cannot "
                            "be written without its value; only {env: NAME} (bearer_token_env_var)")
        literal: dict[str, str] = {}
        referenced: dict[str, str] = {}
        for key, value in server.headers.items():
            if isinstance(value, str):
                note_literal_reference(out, f"mcpServers.{name}.headers.{key}", value)  # literal text too
                literal[key] = value
            elif isinstance(value, SecretRef) and value.env is not None:
                referenced[key] = value.env
            else:
                out.dropped(f"mcpServers.{name}.headers.{key}", "only {env: NAME} secret references can "
                            "be rendered into client files (env_http_headers)")
        if literal:
            entry["http_headers"] = literal
        if referenced:
            entry["env_http_headers"] = referenced
        return entry

    def _permissions(self, spec: AgentConfigSpec, out: Rendering) -> tuple[dict[str, list[str]], set[str]]:
        """Write the rules file and approval_policy; return the denied MCP tools and servers."""
        lines: list[str] = []
        denied_tools: dict[str, list[str]] = {}
        denied_servers: set[str] = set()
        for permission in permissions_of(spec.permissions):
            field = f"permissions.{permission.decision}[{permission.text}]"
            if permission.tool == "Bash":
                line = self._bash(permission, field, out)
                if line is not None and line not in lines:
                    lines.append(line)
            elif permission.tool.startswith("mcp__"):
                self._mcp(permission, field, spec, out, denied_tools, denied_servers)
            else:
                out.dropped(field, f"Codex has no permission rule for {permission.tool} (only shell "
                            "command prefixes and MCP tool filters)")
        if lines:
            header = (f"# Generated by reconciler from AgentConfig/{out.place.marker}; edits are "
                      "overwritten. Codex's own answers go to default.rules.")
            out.put(RULES_FILE, Format.TEXT, (), "\n".join([header, *lines]) + "\n",
                    canonical="permissions")
        mode = spec.permissions.default_mode
        if mode is not None and "approval_policy" not in out.place.overrides:
            if mode in APPROVAL_POLICIES:
                out.put(CONFIG, Format.TOML, ("approval_policy",), APPROVAL_POLICIES[mode],
                        canonical="permissions.defaultMode", ranks=POLICY_RANKS)
            else:
                out.dropped("permissions.defaultMode", f"Codex has no {mode} approval policy; only "
                            "default (on-request) and bypassPermissions (never) have an equivalent")
        return denied_tools, denied_servers

    @staticmethod
    def _bash(permission: Permission, field: str, out: Rendering) -> str | None:
        words = command_prefix(permission.specifier)
        if words is None:
            out.dropped(field, "only a command prefix (optionally ending in ' *') can be written as a "
                        "Codex prefix_rule")
            return None
        if not words:
            out.dropped(field, "a Codex prefix_rule needs at least one word; every command cannot be "
                        "matched (use approval_policy / sandbox_mode overrides)")
            return None
        exact = not (permission.specifier or "").strip().endswith((" *", ":*"))
        if exact and permission.decision == "allow":
            out.weakened(field, f"a Codex prefix_rule also matches {' '.join(words)} followed by "
                         "arguments")
        return prefix_rule(words, DECISIONS[permission.decision])

    @staticmethod
    def _mcp(permission: Permission, field: str, spec: AgentConfigSpec, out: Rendering,
             denied_tools: dict[str, list[str]], denied_servers: set[str]) -> None:
        target = _mcp_target(permission.tool, spec.mcp_servers)
        if permission.decision != "deny":
            out.dropped(field, "Codex records MCP tool approvals itself ([mcp_servers.<name>.tools.*] "
                        "approval_mode), which the reconciler leaves to Codex; only deny is rendered "
                        "(as disabled_tools)")
        elif permission.specifier is not None or target is None:
            out.dropped(field, "a denied MCP tool is rendered as disabled_tools of a server Codex "
                        "receives from mcpServers; this rule names none")
        elif target[1] is None or target[1] == "*":
            denied_servers.add(target[0])
        elif any(ch in target[1] for ch in "*?["):
            out.dropped(field, "Codex's disabled_tools take tool names, not patterns")
        else:
            denied_tools.setdefault(target[0], []).append(target[1])

    def read(self, reader: Reader, place: Place, warn: Callable[[str], None]) -> dict[str, Any]:
        config = importing.Native(TomlDocument(reader.text(CONFIG), CONFIG), CONFIG)
        servers: dict[str, Any] = {}
        for name, at in config.objects(("mcp_servers",)):
            server = self._read_server(config, at, warn)
            if server is not None:
                servers[name] = server
        lists: dict[str, list[str]] = {"allow": [], "ask": [], "deny": []}
        for relative in (RULES_FILE, CLIENT_RULES_FILE):
            for decision, rule in read_prefix_rules(reader.text(relative), relative, warn):
                if rule not in lists[decision]:
                    lists[decision].append(rule)
        policy = config.value(("approval_policy",))
        mode = next((str(m) for m, value in APPROVAL_POLICIES.items() if value == policy), None)
        if policy and mode is None:
            warn(f"{CONFIG}: approval_policy {policy!r} has no canonical defaultMode; not imported")
        return {"mcpServers": servers, "rules": importing.rules_from_block(reader.text(_memory_file(place)),
                                             importing.rule_name(_memory_file(place))),
                "permissions": importing.permissions(lists["allow"], lists["ask"], lists["deny"], mode)}

    @staticmethod
    def _read_server(config: importing.Native, at: importing.Pointer,
                     warn: Callable[[str], None]) -> dict[str, Any] | None:
        entry, where = config.mapping(at), ".".join(at)
        common: dict[str, Any] = {"enabled_tools": config.strings((*at, "enabled_tools")),
                                  "disabled_tools": config.strings((*at, "disabled_tools")),
                                  "enabled": entry.get("enabled", True) is not False}
        if "command" in entry:
            env = importing.env_map(config.scalars((*at, "env")), _NEVER, f"{where}.env", warn)
            for item in config.value((*at, "env_vars")) or []:
                var = item.get("name") if isinstance(item, dict) else item
                if isinstance(var, str) and var:
                    env[var] = {"env": var}
            return importing.server(command=config.text((*at, "command")), args=config.strings((*at, "args")),
                                    env=env, cwd=config.text((*at, "cwd")), **common)
        if "url" in entry:
            headers = {k: importing.env_value(v, _NEVER, k, f"{where}.http_headers.{k}", warn)
                       for k, v in config.scalars((*at, "http_headers")).items()}
            headers.update({k: {"env": str(v)} for k, v in config.scalars((*at, "env_http_headers")).items()})
            bearer = None
            if entry.get("bearer_token_env_var"):
                bearer = {"env": str(entry["bearer_token_env_var"])}
            elif entry.get("bearer_token"):
                bearer = importing.env_value(entry["bearer_token"], _NEVER, "bearer_token",
                                             f"{where}.bearer_token", warn)
            return importing.server(url=config.text((*at, "url")), transport="http", headers=headers,
                                    bearer=bearer, **common)
        warn(f"{CONFIG}: {where} has neither command nor url; not imported")
        return None


def read_prefix_rules(text: str | None, source: str, warn: Callable[[str], None]) -> list[tuple[str, str]]:
    """(canonical decision, `Bash(prefix *)`) of every `prefix_rule(...)` call in a rules file."""
    if not text:
        return []
    try:
        tree = ast.parse(text, filename=source)
    except SyntaxError as exc:
        warn(f"{source}:{exc.lineno}: cannot parse the rules file ({exc.msg}); not imported")
        return []
    back = {native: canonical for canonical, native in DECISIONS.items()}
    out: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "prefix_rule"):
            continue
        try:
            args = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
        except ValueError:
            warn(f"{source}:{node.lineno}: prefix_rule with computed arguments; not imported")
            continue
        pattern, decision = args.get("pattern"), back.get(str(args.get("decision", "allow")))
        alternatives = [[p] if isinstance(p, str) else p for p in pattern] \
            if isinstance(pattern, list) and pattern else []
        words_only = all(isinstance(a, list) and a and all(isinstance(w, str) for w in a)
                         for a in alternatives)
        if decision is None or not alternatives or not words_only:
            warn(f"{source}:{node.lineno}: prefix_rule without a pattern of words or with an unknown "
                 "decision; not imported")
            continue
        for words in itertools.product(*alternatives):
            command = " ".join(words)
            if command_prefix(command) != list(words):
                warn(f"{source}:{node.lineno}: prefix {command!r} cannot be a canonical Bash rule; "
                     "not imported")
                continue
            out.append((decision, f"Bash({command} *)"))
    return out


ADAPTER = Codex()
