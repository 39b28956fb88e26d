"""Gemini CLI: `.gemini/settings.json`, `GEMINI.md`, `.gemini/policies/reconciler.toml`.

- MCP servers go to `mcpServers` in `.gemini/settings.json` (`~/.gemini/settings.json` at user
  scope). Gemini has no transport key: `command` is stdio, `url` is SSE and `httpUrl` is
  streamable HTTP. Env and header references are `$VAR` (a bearer token is
  `Authorization: Bearer $VAR`); `cwd` is supported. `enabledTools` / `disabledTools` become
  `includeTools` / `excludeTools`. Gemini's settings have no per-entry switch: a disabled
  server is not rendered (dropped note). Gemini names MCP tools `mcp_<server>_<tool>` and its
  policy parser splits that name at the first `_` after `mcp_`: a server name with `_` gets
  a weakened note. Every other key of the settings file stays as it is.
- Rules: every rule goes in the reconciler's block of `GEMINI.md` (`~/.gemini/GEMINI.md` at
  user scope); GEMINI.md has no path scoping, so a path-scoped rule is always on, its paths
  stated in its text (weakened note).
- Permissions: `[[rule]]` entries of the policy engine in `.gemini/policies/reconciler.toml`,
  a whole file the reconciler owns: `Bash(prefix)` → `run_shell_command` with
  `commandPrefix`, `Read` → `read_file`, `Edit` → `replace` and `write_file`, `WebFetch` →
  `web_fetch`, `mcp__server__tool` → `mcpName` + `toolName`; decisions `allow`, `ask_user`,
  `deny` with priorities 100, 200, 300 so that deny wins, then ask. Gemini ignores workspace
  policy files (google-gemini/gemini-cli#18186): at project scope the file is written but
  noted as weakened. `defaultMode` becomes `general.defaultApprovalMode` (`default`,
  `auto_edit`, `plan`; YOLO exists only as a command-line flag). `overrides` are dotted
  keys of the settings file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from reconciler.drivers.agents import importing
from reconciler.drivers.agents.clients import Reader
from reconciler.drivers.agents.documents import DocumentError, Format
from reconciler.drivers.agents.entries import Place, Rendering
from reconciler.drivers.agents.tomldocument import TomlDocument
from reconciler.drivers.agents.translating import (
    Permission,
    ServerShape,
    command_prefix,
    mcp_split,
    permissions_of,
    put_overrides,
    put_rules_block,
    server_entry,
)
from reconciler.models.agents import AgentClient, AgentConfigSpec, DefaultMode, McpTransport

ENV = "${name}"  # `$VAR`
# `$VAR` as rendered, or `${VAR}` as people write it by hand.
_ENV_REF = re.compile(r"\$(?:\{(?=[A-Za-z_][A-Za-z0-9_]*\}$)|(?=[A-Za-z_][A-Za-z0-9_]*$))"
                      r"([A-Za-z_][A-Za-z0-9_]*)\}?")
SHAPE = ServerShape(
    "Gemini CLI", ENV, url=lambda s: "url" if s.transport is McpTransport.SSE else "httpUrl")
SETTINGS = ".gemini/settings.json"
_SPELLING = importing.ServerSpelling(  # Gemini's precedence: httpUrl > url > command
    transport=lambda _, __, key: "http" if key == "httpUrl" else "sse", url_keys=("httpUrl", "url"),
    url_first=True, tool_keys=("includeTools", "excludeTools"), cwd=True)
TOOL_SETS = (("includeTools",), ("excludeTools",))  # lists of tool names: sets of items
POLICIES_DIR = ".gemini/policies"
POLICY_FILE = f"{POLICIES_DIR}/reconciler.toml"
APPROVAL_MODES = {
    DefaultMode.DEFAULT: "default",
    DefaultMode.ACCEPT_EDITS: "auto_edit",
    DefaultMode.PLAN: "plan",
}
APPROVAL_KEY = "general.defaultApprovalMode"
MODE_RANKS = {"default": 2, "plan": 2, "auto_edit": 1, "yolo": 0}  # how strict each mode is
DECISIONS = {"allow": "allow", "ask": "ask_user", "deny": "deny"}
PRIORITIES = {"deny": 300, "ask": 200, "allow": 100}
SHELL = "run_shell_command"
TOOLS: dict[str, tuple[str, ...]] = {"Read": ("read_file",), "Edit": ("replace", "write_file"),
                                     "WebFetch": ("web_fetch",)}
_MCP = re.compile(r"mcp__([A-Za-z0-9_-]+?)(?:__(.+))?")


CONTEXT_KEY = "context.fileName"


def _context_name(configured: Any) -> str:
    """The instruction file Gemini CLI loads: the first of `context.fileName` (a name or a list
    of names, such as AGENTS.md), else GEMINI.md."""
    if isinstance(configured, list):
        configured = configured[0] if configured else None
    return configured if isinstance(configured, str) and configured and "/" not in configured else "GEMINI.md"


def memory_file(place: Place, configured: Any = None) -> str:
    """GEMINI.md, or the file the target's `context.fileName` override names."""
    name = _context_name(configured if configured is not None else place.overrides.get(CONTEXT_KEY))
    return f".gemini/{name}" if place.user else name


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def policy_rule(fields: dict[str, str], decision: str) -> str:
    lines = ["[[rule]]", *(f"{key} = {toml_string(value)}" for key, value in fields.items()),
             f"decision = {toml_string(DECISIONS[decision])}", f"priority = {PRIORITIES[decision]}"]
    return "\n".join(lines)


class GeminiCli:
    client: ClassVar[AgentClient] = AgentClient.GEMINI_CLI
    CAPABILITIES: ClassVar[dict[str, str]] = {
        "mcp": "`.gemini/settings.json` `mcpServers` (no `_` in server names)",
        "stdio cwd": "yes",
        "sse": "yes (`url`; streamable HTTP is `httpUrl`)",
        "secrets": "`$VAR`",
        "tool filters": "includeTools / excludeTools",
        "rules": "`GEMINI.md` block (or the `context.fileName` override's file); scoped rules always on",
        "permissions": "policy `[[rule]]`s in `.gemini/policies/reconciler.toml` (user scope only: "
                       "workspace policies are ignored); defaultMode → `general.defaultApprovalMode`",
        "sets of items": "server `includeTools` / `excludeTools` (`reconciler.toml`: a whole file of "
                         "its own)",
        "one value": "server `args`, `env`, `headers`",
        "grammar": "JSONC; flat legacy files refused",
    }

    def render(self, spec: AgentConfigSpec, place: Place) -> Rendering:
        out = Rendering(place, env_ref=_ENV_REF)
        for name, server in spec.mcp_servers.items():
            where = f"mcpServers.{name}"
            if "_" in name:
                out.weakened(where, "Gemini's policy engine splits tool names (mcp_<server>_<tool>) at "
                             "the first '_': policies for this server may not match; use '-' instead")
            entry = server_entry(out, name, server, SHAPE)
            if entry is None:
                continue
            if server.enabled_tools is not None:
                entry["includeTools"] = list(server.enabled_tools)
            if server.disabled_tools:
                entry["excludeTools"] = list(server.disabled_tools)
            out.put(SETTINGS, Format.JSON, ("mcpServers", name), entry, canonical=where, sets=TOOL_SETS)
        self._permissions(spec, out)
        if spec.rules:
            put_rules_block(out, memory_file(place), spec.rules)
        for rule in spec.rules:
            if rule.paths:
                out.weakened(f"rules[{rule.name}].paths", "GEMINI.md has no path-scoped rules; the rule "
                             "is always on, with its paths stated in its text")
        put_overrides(out, SETTINGS, Format.JSON)
        return out

    def _permissions(self, spec: AgentConfigSpec, out: Rendering) -> None:
        rules: list[str] = []
        for permission in permissions_of(spec.permissions):
            for fields in self._native(permission, out, servers=spec.mcp_servers):
                rule = policy_rule(fields, permission.decision)
                if rule not in rules:
                    rules.append(rule)
        if rules:
            header = (f"# Generated by reconciler from AgentConfig/{out.place.marker}; edits are "
                      "overwritten.\n# Priorities: deny 300, ask_user 200, allow 100.")
            out.put(POLICY_FILE, Format.TEXT, (), "\n\n".join([header, *rules]) + "\n",
                    canonical="permissions")
            if not out.place.user:
                out.weakened("permissions", "Gemini CLI ignores workspace policy files "
                             "(.gemini/policies, google-gemini/gemini-cli#18186): the rules are written "
                             "but take effect only at user scope")
        mode = spec.permissions.default_mode
        if mode is None or APPROVAL_KEY in out.place.overrides:
            return
        if mode in APPROVAL_MODES:
            out.put(SETTINGS, Format.JSON, ("general", "defaultApprovalMode"), APPROVAL_MODES[mode],
                    canonical="permissions.defaultMode", ranks=MODE_RANKS)
        else:
            out.dropped("permissions.defaultMode", f"Gemini CLI has no {mode} default approval mode "
                        "(YOLO is only a command-line flag)")

    @staticmethod
    def _native(permission: Permission, out: Rendering, *,
                servers: Iterable[str] = ()) -> list[dict[str, str]]:
        """The policy rule conditions of one canonical rule; [] (with a note) when there are none."""
        field = f"permissions.{permission.decision}[{permission.text}]"
        tool, spec, decision = permission.tool, permission.specifier, permission.decision
        if tool == "Bash":
            words = command_prefix(spec)
            if words is None:
                out.dropped(field, "only a command prefix (optionally ending in ' *') can be written as a "
                            "Gemini commandPrefix")
                return []
            if not words:
                return [{"toolName": SHELL}]
            assert spec is not None
            if decision == "allow" and not spec.strip().endswith((" *", ":*")):
                out.weakened(field, f"Gemini's commandPrefix also matches {' '.join(words)} followed by "
                             "arguments")
            return [{"toolName": SHELL, "commandPrefix": " ".join(words)}]
        if tool in TOOLS:
            if spec is not None:
                out.dropped(field, f"the reconciler writes {'/'.join(TOOLS[tool])} policy rules for every "
                            "call of the tool; a path or domain specifier cannot be expressed")
                return []
            if tool == "Read" and decision != "allow":
                out.weakened(field, "rendered for read_file only: Gemini's read_many_files, glob and "
                             "search tools are not covered")
            return [{"toolName": name} for name in TOOLS[tool]]
        split = mcp_split(tool, servers) if _MCP.fullmatch(tool) else None
        if split and spec is None:
            server, name = split
            return [{"mcpName": server} if name in (None, "*") else {"mcpName": server, "toolName": name}]
        out.dropped(field, f"Gemini CLI has no policy equivalent for {tool}")
        return []

    def read(self, reader: Reader, place: Place, warn: Callable[[str], None]) -> dict[str, Any]:
        settings = importing.Native.json(reader.text(SETTINGS), SETTINGS)
        servers = importing.read_servers(settings, ("mcpServers",), _SPELLING, _ENV_REF, warn)
        mode = settings.value(("general", "defaultApprovalMode"))
        default_mode = next((str(k) for k, v in APPROVAL_MODES.items() if v == mode), None)
        if mode and default_mode is None:
            warn(f"{SETTINGS}: general.defaultApprovalMode {mode!r} has no canonical defaultMode; "
                 "not imported")
        files = [POLICY_FILE, *(f for f in reader.glob(POLICIES_DIR, "*.toml") if f != POLICY_FILE)]
        lists: dict[str, list[str]] = {"allow": [], "ask": [], "deny": []}
        for relative in files:
            for decision, rule in read_policy(reader.text(relative), relative, warn):
                if rule not in lists[decision]:
                    lists[decision].append(rule)
        configured = settings.value(("context", "fileName"))
        memory = memory_file(place, configured)
        found: dict[str, Any] = {}
        if _context_name(configured) != "GEMINI.md":  # the rules live in that file: say so in the spec
            found["overrides"] = {CONTEXT_KEY: configured}
        return {**found, "mcpServers": servers, "rules": importing.rules_from_block(reader.text(memory),
                                                                    importing.rule_name(memory)),
                "permissions": importing.permissions(lists["allow"], lists["ask"], lists["deny"],
                                                     default_mode)}


def _canonical(rule: dict[str, Any], tool: str) -> str | None:
    """The canonical rule of one policy condition (one tool name), or None."""
    extra = set(rule) - {"toolName", "mcpName", "commandPrefix", "decision", "priority"}
    if extra:
        return None
    server = rule.get("mcpName")
    if server is not None:
        if not isinstance(server, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", server):
            return None
        return f"mcp__{server}" if tool in ("", "*") else f"mcp__{server}__{tool}"
    qualified = re.fullmatch(r"([A-Za-z0-9_-]+?)__(.+)", tool)
    if qualified:  # `server__tool`, the older qualified form
        server, name = qualified.groups()
        return f"mcp__{server}" if name == "*" else f"mcp__{server}__{name}"
    if tool == SHELL and "commandPrefix" not in rule:
        return "Bash"
    return {"read_file": "Read", "web_fetch": "WebFetch", "replace": "Edit:replace",
            "write_file": "Edit:write_file"}.get(tool)


def read_policy(text: str | None, source: str, warn: Callable[[str], None]) -> list[tuple[str, str]]:
    """(canonical decision, canonical rule) of the `[[rule]]` entries of a policy file."""
    if not text:
        return []
    try:
        rules = TomlDocument(text, source).get(("rule",)) or []
    except DocumentError as exc:
        warn(f"{source}:{exc.line or 1}: cannot parse the policy file ({exc.reason}); its rules were not "
             "imported")
        return []
    back = {native: canonical for canonical, native in DECISIONS.items()}
    found: list[tuple[str, str]] = []
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        decision = back.get(str(rule.get("decision"))) if isinstance(rule, dict) else None
        if decision is None:
            warn(f"{source}: rule[{index}] has no allow / ask_user / deny decision; not imported")
            continue
        names = rule.get("toolName", "")
        prefixes = rule.get("commandPrefix")
        canonical: list[str] = []
        for tool in names if isinstance(names, list) else [names]:
            if tool == SHELL and prefixes is not None:
                for prefix in prefixes if isinstance(prefixes, list) else [prefixes]:
                    words = command_prefix(str(prefix))
                    canonical.append(f"Bash({' '.join(words)} *)" if words else "")
                continue
            canonical.append(_canonical(rule, str(tool)) or "")
        if not canonical or "" in canonical:
            warn(f"{source}: rule[{index}] ({json.dumps(rule, sort_keys=True)}) has no canonical "
                 "permission; not imported")
            continue
        found += [(decision, c) for c in canonical]
    out: list[tuple[str, str]] = []
    for decision, rule in found:
        if not rule.startswith("Edit:"):
            out.append((decision, rule))
        elif (decision, "Edit") not in out:
            parts = {r for d, r in found if d == decision and r.startswith("Edit:")}
            if parts == {"Edit:replace", "Edit:write_file"}:
                out.append((decision, "Edit"))
            else:
                pair = "replace" if rule == "Edit:write_file" else "write_file"
                warn(f"{source}: {rule[5:]} ({decision}) without {pair} has no canonical permission "
                     "(Edit is both); not imported")
    return out


ADAPTER = GeminiCli()
