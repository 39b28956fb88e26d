"""Qwen Code: `.qwen/settings.json`, `QWEN.md`, `.qwen/rules/`.

- MCP servers go to `mcpServers` in `.qwen/settings.json` (project) or `~/.qwen/settings.json`
  (user). Qwen has no transport key: `command` is stdio, `url` is SSE and `httpUrl` is
  streamable HTTP. Env references are `${VAR}`; `cwd` is supported. `enabledTools` and
  `disabledTools` become the entry's `includeTools` / `excludeTools`.
- Permissions: `permissions.allow/ask/deny` in the same settings file, in Claude's syntax
  except that a web-fetch domain has no `domain:` prefix (`WebFetch(example.com)`).
  `defaultMode` becomes `tools.approvalMode` (`default`, `auto-edit`, `plan`, `yolo`).
  The settings file is JSONC: comments, `model`, `ui` and every key the reconciler does not
  own stay as they are.
- Rules: always-on rules in the reconciler's block of `QWEN.md` (`~/.qwen/QWEN.md` at user
  scope); path-scoped rules as `.qwen/rules/<name>.md` with `paths` front matter.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

from reconciler.drivers.agents import importing
from reconciler.drivers.agents.clients import Reader
from reconciler.drivers.agents.documents import Format
from reconciler.drivers.agents.entries import Place, Rendering
from reconciler.drivers.agents.translating import (
    Permission,
    ServerShape,
    front_matter,
    permissions_of,
    put_overrides,
    put_rules_block,
    rule_meaning,
    server_entry,
)
from reconciler.models.agents import AgentClient, AgentConfigSpec, DefaultMode, McpTransport

ENV = "${{{name}}}"
# `${VAR}` as rendered, or `$VAR` as people write it by hand.
_ENV_REF = re.compile(r"\$(?:\{(?=[A-Za-z_][A-Za-z0-9_]*\}$)|(?=[A-Za-z_][A-Za-z0-9_]*$))"
                      r"([A-Za-z_][A-Za-z0-9_]*)\}?")
SHAPE = ServerShape(
    "Qwen Code", ENV, url=lambda s: "url" if s.transport is McpTransport.SSE else "httpUrl")
SETTINGS = ".qwen/settings.json"
_SPELLING = importing.ServerSpelling(  # httpUrl: streamable HTTP; url: SSE
    transport=lambda _, __, key: "http" if key == "httpUrl" else "sse", url_keys=("httpUrl", "url"),
    tool_keys=("includeTools", "excludeTools"), cwd=True)
TOOL_SETS = (("includeTools",), ("excludeTools",))  # lists of tool names: sets of items
RULES_DIR = ".qwen/rules"
APPROVAL_MODES = {
    DefaultMode.DEFAULT: "default",
    DefaultMode.ACCEPT_EDITS: "auto-edit",
    DefaultMode.PLAN: "plan",
    DefaultMode.BYPASS_PERMISSIONS: "yolo",
}
MODE_RANKS = {"default": 2, "plan": 2, "auto-edit": 1, "yolo": 0}  # how strict each mode is
_DOMAIN = "domain:"


def memory_file(place: Place) -> str:
    return ".qwen/QWEN.md" if place.user else "QWEN.md"


def _native_rule(permission: Permission) -> str:
    """Claude syntax → Qwen syntax: only the `domain:` prefix of WebFetch differs."""
    spec = permission.specifier
    if permission.tool == "WebFetch" and spec is not None and spec.startswith(_DOMAIN):
        return f"WebFetch({spec[len(_DOMAIN):]})"
    return permission.text


def _canonical_rule(rule: str) -> str:
    match = re.fullmatch(r"WebFetch\((.+)\)", rule)
    if match and not match.group(1).startswith(_DOMAIN):
        return f"WebFetch({_DOMAIN}{match.group(1)})"
    return rule


class QwenCode:
    client: ClassVar[AgentClient] = AgentClient.QWEN_CODE
    CAPABILITIES: ClassVar[dict[str, str]] = {
        "mcp": "`.qwen/settings.json` `mcpServers`",
        "stdio cwd": "yes",
        "sse": "yes (`url`; streamable HTTP is `httpUrl`)",
        "secrets": "`${VAR}`",
        "tool filters": "includeTools / excludeTools",
        "rules": "`QWEN.md` block; scoped: `.qwen/rules/*.md`",
        "permissions": "allow / ask / deny (`WebFetch` without `domain:`); defaultMode → "
                       "`tools.approvalMode`",
        "sets of items": "`permissions.allow` / `ask` / `deny`; server `includeTools` / `excludeTools`",
        "one value": "server `args`, `env`, `headers`",
        "grammar": "JSONC (comments and trailing commas kept); flat legacy files refused",
    }

    def render(self, spec: AgentConfigSpec, place: Place) -> Rendering:
        out = Rendering(place, env_ref=_ENV_REF)
        for name, server in spec.mcp_servers.items():
            where = f"mcpServers.{name}"
            entry = server_entry(out, name, server, SHAPE)
            if entry is None:
                continue
            if server.enabled_tools is not None:
                entry["includeTools"] = list(server.enabled_tools)
            if server.disabled_tools:
                entry["excludeTools"] = list(server.disabled_tools)
            out.put(SETTINGS, Format.JSON, ("mcpServers", name), entry, canonical=where, sets=TOOL_SETS)
        rules: dict[str, list[Permission]] = {"allow": [], "ask": [], "deny": []}
        for permission in permissions_of(spec.permissions):
            rules[permission.decision].append(permission)
        for decision in ("allow", "ask", "deny"):
            # permissions_of lists deny first; each list keeps the spec's own order.
            if rules[decision]:
                out.put_items(SETTINGS, Format.JSON, ("permissions", decision),
                              [_native_rule(p) for p in rules[decision]], canonical=f"permissions.{decision}",
                              rules=[p.text for p in rules[decision]])
        mode = spec.permissions.default_mode
        if mode is not None:
            out.put(SETTINGS, Format.JSON, ("tools", "approvalMode"), APPROVAL_MODES[mode],
                    canonical="permissions.defaultMode", ranks=MODE_RANKS)
        always = [r for r in spec.rules if not r.paths]
        if always:
            put_rules_block(out, memory_file(place), always)
        for rule in spec.rules:
            if rule.paths:
                meta: dict[str, Any] = {"description": rule.description} if rule.description else {}
                meta["paths"] = list(rule.paths)
                out.put(f"{RULES_DIR}/{rule.name}.md", Format.TEXT, (), front_matter(meta, rule.content),
                        canonical=f"rules[{rule.name}]", meaning=rule_meaning)
        put_overrides(out, SETTINGS, Format.JSON)
        return out

    def read(self, reader: Reader, place: Place, warn: Callable[[str], None]) -> dict[str, Any]:
        settings = importing.Native.json(reader.text(SETTINGS), SETTINGS)
        servers = importing.read_servers(settings, ("mcpServers",), _SPELLING, _ENV_REF, warn)
        lists = {k: [_canonical_rule(r) for r in settings.strings(("permissions", k)) or []]
                 for k in ("allow", "ask", "deny")}
        mode = settings.value(("tools", "approvalMode"))
        default_mode = next((str(k) for k, v in APPROVAL_MODES.items() if v == mode), None)
        if mode and default_mode is None:
            warn(f"{SETTINGS}: tools.approvalMode {mode!r} has no canonical defaultMode; not imported")
        rules = importing.rules_from_block(reader.text(memory_file(place)),
                                             importing.rule_name(memory_file(place)))
        scoped = {rel: reader.text(rel) or "" for rel in reader.glob(RULES_DIR, "*.md")}
        rules += importing.rules_from_files(scoped, warn)
        return {"mcpServers": servers, "rules": rules,
                "permissions": importing.permissions(lists["allow"], lists["ask"], lists["deny"],
                                                     default_mode)}


ADAPTER = QwenCode()
