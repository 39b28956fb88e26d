"""Claude Code: `.mcp.json` / `~/.claude.json`, `.claude/settings.json`, `CLAUDE.md`, `.claude/rules/`.

- MCP servers go to `mcpServers` in `.mcp.json` (project) or `~/.claude.json` (user; the
  rest of that state file — sign-in, projects, history — is never touched). Entries carry
  `type` (`stdio`, `http`, `sse`): Claude treats a `url` without `type` as stdio. Env
  references are `${VAR}`. `cwd` is not supported by Claude (silently ignored): dropped
  with a note. `disabledTools` become `deny` rules `mcp__<server>__<tool>`, which remove
  the tools from the model's context; `enabledTools` has no equivalent.
- Permissions: `permissions.allow/ask/deny/defaultMode` in `.claude/settings.json` (at both
  scopes, under the root). Hooks, env, statusLine and every other key stay as they are;
  Claude's own `settings.local.json` is never written.
- Rules: always-on rules in the reconciler's block of `CLAUDE.md` (`~/.claude/CLAUDE.md`
  at user scope); path-scoped rules as `.claude/rules/<name>.md` with `paths` front matter.
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
    ServerShape,
    front_matter,
    put_overrides,
    put_rules_block,
    rule_meaning,
    server_entry,
)
from reconciler.models.agents import AgentClient, AgentConfigSpec

ENV = "${{{name}}}"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SHAPE = ServerShape(
    "Claude Code", ENV,  # stdio is Claude's default: no `type` (as `claude mcp add` writes it)
    remote=lambda s: ({"type": str(s.transport or "http")}, {}),
    cwd_note="Claude Code ignores cwd for MCP servers (anthropics/claude-code#17565)")
SETTINGS = ".claude/settings.json"
# How strict each of Claude Code's default modes is: dontAsk denies what is not allowed,
# default (alias manual) and plan ask, acceptEdits and auto let edits through, bypass asks nothing.
MODE_RANKS = {"dontAsk": 3, "default": 2, "manual": 2, "plan": 2, "acceptEdits": 1, "auto": 1,
              "bypassPermissions": 0}
_SPELLING = importing.ServerSpelling(transport=lambda native, at, _: native.text((*at, "type")))


def _mcp_file(place: Place) -> str:
    return ".claude.json" if place.user else ".mcp.json"


def _memory_file(place: Place) -> str:
    return ".claude/CLAUDE.md" if place.user else "CLAUDE.md"


class ClaudeCode:
    client: ClassVar[AgentClient] = AgentClient.CLAUDE_CODE
    CAPABILITIES: ClassVar[dict[str, str]] = {
        "mcp": "`.mcp.json` / `~/.claude.json` `mcpServers`",
        "stdio cwd": "no (dropped)",
        "sse": "yes",
        "secrets": "`${VAR}`",
        "tool filters": "disabledTools → deny `mcp__s__t`; enabledTools dropped",
        "rules": "`CLAUDE.md` block; scoped: `.claude/rules/*.md`",
        "permissions": "allow / ask / deny / defaultMode",
        "sets of items": "`permissions.allow` / `ask` / `deny`",
        "one value": "server `args`, `env`, `headers`",
        "grammar": "strict JSON (comments, trailing commas, duplicate keys refused)",
    }

    def render(self, spec: AgentConfigSpec, place: Place) -> Rendering:
        out = Rendering(place, env_ref=_ENV_REF)
        extra_deny: list[str] = []
        for name, server in spec.mcp_servers.items():
            where = f"mcpServers.{name}"
            entry = server_entry(out, name, server, SHAPE)
            if entry is None:
                continue
            if server.enabled_tools is not None:
                out.dropped(f"{where}.enabledTools", "Claude Code has no tool allowlist per "
                            "server; use permissions.deny")
            extra_deny += [f"mcp__{name}__{tool}" for tool in server.disabled_tools]
            out.put(_mcp_file(place), Format.JSON, ("mcpServers", name), entry, canonical=where)
        perms = spec.permissions
        for decision, rules, extra in (("allow", perms.allow, []), ("ask", perms.ask, []),
                                       ("deny", perms.deny, extra_deny)):
            if rules or extra:
                # A server's disabled tool, denied here, is no permission rule of the spec.
                out.put_items(SETTINGS, Format.JSON, ("permissions", decision), [*rules, *extra],
                              canonical=f"permissions.{decision}", rules=rules)
        if perms.default_mode is not None:
            out.put(SETTINGS, Format.JSON, ("permissions", "defaultMode"), str(perms.default_mode),
                    canonical="permissions.defaultMode", ranks=MODE_RANKS)
        always = [r for r in spec.rules if not r.paths]
        if always:
            put_rules_block(out, _memory_file(place), always)
        for rule in spec.rules:
            if rule.paths:
                meta: dict[str, Any] = {"description": rule.description} if rule.description else {}
                meta["paths"] = list(rule.paths)
                out.put(f".claude/rules/{rule.name}.md", Format.TEXT, (),
                        front_matter(meta, rule.content), canonical=f"rules[{rule.name}]",
                        meaning=rule_meaning)
        put_overrides(out, SETTINGS, Format.JSON, servers_file=(_mcp_file(place), Format.JSON))
        return out

    def read(self, reader: Reader, place: Place, warn: Callable[[str], None]) -> dict[str, Any]:
        mcp = importing.Native.json(reader.text(_mcp_file(place)), _mcp_file(place))
        servers = importing.read_servers(mcp, ("mcpServers",), _SPELLING, _ENV_REF, warn)
        settings = importing.Native.json(reader.text(SETTINGS), SETTINGS)
        allow, ask = settings.strings(("permissions", "allow")), settings.strings(("permissions", "ask"))
        deny = []
        for rule in settings.strings(("permissions", "deny")) or []:
            match = re.fullmatch(r"mcp__([A-Za-z0-9-]+)__([A-Za-z0-9_.-]+)", rule)
            if match and match.group(1) in servers:
                servers[match.group(1)].setdefault("disabledTools", []).append(match.group(2))
            else:
                deny.append(rule)
        rules = importing.rules_from_block(reader.text(_memory_file(place)),
                                             importing.rule_name(_memory_file(place)))
        if not place.user and reader.text(".claude/CLAUDE.md"):  # Claude Code loads both
            warn(f".claude/CLAUDE.md: the project's second instruction file (the reconciler writes "
                 f"CLAUDE.md; reading both would write this text there too); {importing.LEFT}")
        scoped = {rel: reader.text(rel) or "" for rel in reader.glob(".claude/rules", "*.md")}
        rules += importing.rules_from_files(scoped, warn)
        return {"mcpServers": servers, "rules": rules,
                "permissions": importing.permissions(allow, ask, deny,
                                                     settings.text(("permissions", "defaultMode")))}


ADAPTER = ClaudeCode()
