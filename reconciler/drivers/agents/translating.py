"""Shared pieces of translation between the canonical spec and the clients' formats.

Secret references become each client's env-reference syntax (`${VAR}`, `$VAR`,
`${env:VAR}`) and never a value; permission rules are split into tool and specifier;
Bash specifiers become command prefixes where a client only knows prefixes; rules become
Markdown sections or files with front matter. Adapters call these and record what they
cannot express as notes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.drivers.agents.documents import Format
from reconciler.drivers.agents.entries import Rendering
from reconciler.models.agents import AgentRule, McpServer
from reconciler.models.common import SecretRef
from reconciler.models.literals import ONLY_A_REFERENCE

_RULE = re.compile(r"^(?P<tool>[^()]+?)(?:\((?P<spec>.*)\))?$")


@dataclass(frozen=True, slots=True)
class Permission:
    tool: str
    specifier: str | None
    decision: str  # allow | ask | deny

    @property
    def text(self) -> str:
        return self.tool if self.specifier is None else f"{self.tool}({self.specifier})"


def permissions_of(spec_permissions: Any) -> list[Permission]:
    """Every canonical rule as a `Permission`, deny first (the order clients evaluate)."""
    out: list[Permission] = []
    for decision in ("deny", "ask", "allow"):
        for rule in getattr(spec_permissions, decision):
            match = _RULE.match(rule)
            assert match is not None  # the model validated the syntax
            out.append(Permission(match["tool"], match["spec"], decision))
    return out


def command_prefix(specifier: str | None) -> list[str] | None:
    """`npm run test *` / `npm run test:*` → ['npm', 'run', 'test']; None if not a plain prefix.

    A bare `Bash` (no specifier) is every command: the empty prefix.
    """
    if specifier is None or specifier.strip() in ("", "*"):
        return []
    text = specifier.strip()
    if text.endswith(":*") or text.endswith(" *"):
        text = text[:-2]
    if any(ch in text for ch in "*?[]|&;<>$`\"'"):
        return None
    words = text.split()
    return words or None


def env_reference(value: str | SecretRef, syntax: str) -> str | None:
    """A literal value as is; an `{env: NAME}` reference in the client's syntax.

    `syntax` holds `{name}`, e.g. '${{{name}}}'. File and Kubernetes secret references
    cannot be written without their value: None (the caller reports it).
    """
    if isinstance(value, str):
        return value
    if value.env is not None:
        return syntax.format(name=value.env)
    return None


def rendered_env(rendering: Rendering, server: str, values: Mapping[str, str | SecretRef], syntax: str,
                 field: str = "env") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        rendered = env_reference(value, syntax)
        if rendered is None:
            rendering.dropped(f"mcpServers.{server}.{field}.{key}",
                              f"{value.describe() if isinstance(value, SecretRef) else 'value'} cannot "
                              "be written without its value; only {env: NAME} references are rendered")
            continue
        note_literal_reference(rendering, f"mcpServers.{server}.{field}.{key}", value)
        out[key] = rendered
    return out


def note_literal_reference(rendering: Rendering, canonical: str, value: str | SecretRef) -> None:
    """A literal that only looks like a reference (`${VAR}` in a spec, as imported from a file)
    is written as it is: say so where the client does not read it as one."""
    if not isinstance(value, str) or not ONLY_A_REFERENCE.fullmatch(value):
        return
    own = rendering.env_ref
    if own is not None and own.fullmatch(value.removeprefix("Bearer ")):
        return
    rendering.weakened(canonical, f"the literal text {value!r} is written as it is, and "
                       f"{rendering.place.client} does not read it as a variable reference; "
                       "use {env: NAME} for one that every client expands")


def headers_with_bearer(server: McpServer) -> dict[str, str | SecretRef]:
    """The headers plus `Authorization: Bearer …` for a bearerToken (as a reference)."""
    headers: dict[str, str | SecretRef] = dict(server.headers)
    if server.bearer_token is not None:
        headers["Authorization"] = server.bearer_token
    return headers


def bearer_env_syntax(syntax: str) -> str:
    return "Bearer " + syntax


def rendered_headers(rendering: Rendering, name: str, server: McpServer, syntax: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers_with_bearer(server).items():
        use = bearer_env_syntax(syntax) if key == "Authorization" and value is server.bearer_token else syntax
        rendered = env_reference(value, use)
        if rendered is None:
            rendering.dropped(f"mcpServers.{name}.headers.{key}", "only {env: NAME} secret references "
                              "can be rendered into client files")
            continue
        note_literal_reference(rendering, f"mcpServers.{name}.headers.{key}", value)
        out[key] = rendered
    return out


def note_tool_filters(rendering: Rendering, name: str, server: McpServer, how: str = "") -> None:
    if server.enabled_tools is not None:
        rendering.dropped(f"mcpServers.{name}.enabledTools", how or "the client has no per-server "
                          "tool allowlist")
    if server.disabled_tools:
        rendering.dropped(f"mcpServers.{name}.disabledTools", how or "the client has no per-server "
                          "tool denylist")


def rule_section(rule: AgentRule) -> str:
    lines = [f"## {rule.name}", ""]
    if rule.description:
        lines += [f"> {rule.description}", ""]
    if rule.paths:
        lines += ["Applies to files matching: " + ", ".join(f"`{p}`" for p in rule.paths), ""]
    lines.append(rule.content.strip("\n"))
    return "\n".join(lines)


def rules_block(rules: Iterable[AgentRule]) -> str:
    """All rules as Markdown sections, for a managed block in CLAUDE.md / AGENTS.md / …"""
    return "\n\n".join(rule_section(r) for r in rules) + "\n"


def put_rules_block(rendering: Rendering, relative: str, rules: list[AgentRule]) -> None:
    """The rules as the reconciler's block of a Markdown file, section by section (a rule whose
    text the file already holds outside the block is not written twice)."""
    sections = tuple((rule.content, rule_section(rule)) for rule in rules)
    rendering.put(relative, Format.BLOCK, (), rules_block(rules), canonical="rules", sections=sections)


def front_matter(fields: Mapping[str, Any], body: str) -> str:
    """A Markdown file with YAML front matter (only the given, non-empty fields)."""
    import json

    lines = ["---"]
    for key, value in fields.items():
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines += [f"  - {json.dumps(v, ensure_ascii=False)}" for v in value]
        elif isinstance(value, bool):
            lines.append(f"{key}: {'true' if value else 'false'}")
        else:
            lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    lines.append("---")
    return "\n".join(lines) + "\n\n" + body.strip("\n") + "\n"


def path_list(value: Any) -> list[str]:
    """A front matter's `paths` / `globs`: a list as it is, a comma string split (Cursor's)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(part) for part in value or []]


def rule_meaning(text: str) -> tuple[str, tuple[str, ...], str]:
    """What a rule file with front matter says: (description, paths, body), however the
    front matter spells them (quotes, a flow or block list, a comma string, key order)."""
    meta, body = split_front_matter(text)
    return (" ".join(str(meta.get("description") or "").split()), tuple(path_list(meta.get("paths"))),
            body.strip("\n"))


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter, body) of a Markdown file; ({}, text) without front matter."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---", 4)
    if end < 0:
        return {}, text
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        loaded = YAML(typ="safe").load(text[4:end]) or {}
    except YAMLError:  # e.g. `globs: **/*.ts` in Cursor files: plain `key: value` lines
        loaded = dict(line.split(":", 1) for line in text[4:end].splitlines() if ":" in line)
        loaded = {k.strip(): v.strip() for k, v in loaded.items()}
    body = text[end + 4:].lstrip("\n")
    return (dict(loaded) if isinstance(loaded, dict) else {}), body


def put_overrides(rendering: Rendering, relative: str, fmt: Format, servers: str = "mcpServers",
                  servers_file: tuple[str, Format] | None = None) -> None:
    """A target's `overrides` as owned keys of its main settings file (dotted paths).

    An override inside an MCP server entry the target renders (`mcp_servers.github.
    startup_timeout_sec`) becomes a field of that entry, so that the entry stays one owned
    value; one under a server the target does not render is dropped with a note (writing it
    alone would leave a server with no command)."""
    for dotted, value in rendering.place.overrides.items():
        path = tuple(dotted.split("."))
        canonical = f"targets[{rendering.place.client}].overrides.{dotted}"
        where, form = servers_file if servers_file and path[0] == servers else (relative, fmt)
        if rendering.fold(where, path, value):
            continue
        if len(path) > 2 and path[0] == servers:
            rendering.dropped(canonical, f"the server {path[1]!r} is not rendered for this client")
            continue
        rendering.put(where, form, path, value, canonical=canonical)


_SECTION = re.compile(r"^## (\S+)\n", re.MULTILINE)


def parse_sections(markdown: str) -> list[tuple[str, str, list[str], str]]:
    """(name, description, paths, content) of the `## name` sections `rules_block` writes."""
    out: list[tuple[str, str, list[str], str]] = []
    parts = _SECTION.split(markdown)
    for name, body in zip(parts[1::2], parts[2::2], strict=False):
        paragraphs = body.strip("\n").split("\n\n")
        description, paths = "", []
        if paragraphs and paragraphs[0].startswith("> "):
            description = paragraphs.pop(0)[2:]
        if paragraphs and paragraphs[0].startswith("Applies to files matching: "):
            paths = re.findall(r"`([^`]+)`", paragraphs.pop(0))
        out.append((name, description, paths, "\n\n".join(paragraphs).strip("\n") + "\n"))
    return out


def rules_edited(rules: Iterable[AgentRule], sections: Iterable[tuple[str, str]], block: str,
                 outside: str) -> dict[str, Any]:
    """What a person's edit of the reconciler's block says about the spec's rules: the patch
    of each rule field whose text changed (`rules[NAME].content` → the new text; also
    `.description` and `.paths`, which a section spells in its first lines).

    `sections` are the block's rules as the entry renders them ((content, section), see
    `put_rules_block`), `block` the block as the file now holds it, `outside` the file's
    other text (a rule already written there has no section). A ValueError says why the
    edit is not one of the rules' fields: a section added, removed, renamed or moved, text
    outside every section, a section that would not render back as written."""
    by_name = {rule.name: rule for rule in rules}
    expected = [(section.split("\n", 1)[0][3:], section) for content, section in sections
                if content.strip() not in outside]
    parts = _SECTION.split(block)
    if parts[0].strip():
        raise ValueError("the block holds text before its first `## RULE` heading")
    found = [(name, f"## {name}\n{body}") for name, body in zip(parts[1::2], parts[2::2], strict=True)]
    if [name for name, _ in found] != [name for name, _ in expected]:
        raise ValueError(f"the block's sections ({', '.join(name for name, _ in found) or 'none'}) are not "
                         f"the spec's rules ({', '.join(name for name, _ in expected)}): a rule added, "
                         "removed, renamed or moved there is not read back")
    out: dict[str, Any] = {}
    for (name, text), (_, section) in zip(found, expected, strict=True):
        if text.strip("\n") == section.strip("\n"):
            continue
        rule = by_name[name]
        [(_, description, paths, content)] = parse_sections(text + "\n")
        changed: dict[str, Any] = {}
        if description != rule.description:
            changed["description"] = description
        if paths != rule.paths:
            changed["paths"] = paths
        if content.strip("\n") != rule.content.strip("\n"):
            # The spec's own ending stays (`|` keeps its final newline, `|-` has none).
            changed["content"] = content.strip("\n") + rule.content[len(rule.content.rstrip("\n")):]
        if not content.strip() or rule_section(rule.model_copy(update=changed)) != text.strip("\n"):
            raise ValueError(f"the section `## {name}` does not read back as the rule's fields "
                             "(description, paths, content)")
        out.update({f"rules[{name}].{field}": value for field, value in changed.items()})
    if not out:
        raise ValueError("the edit changes no rule (only the blank lines between sections?)")
    return out


@dataclass(frozen=True, slots=True)
class ServerShape:
    """How a client with JSON config writes one MCP server entry.

    `stdio` / `remote` return the transport keys placed before and after the common ones,
    `url` names the key of a remote URL per transport; `cwd_note` is why cwd is dropped
    (None: the client supports cwd).
    """

    client: str  # as named in notes, e.g. "Qwen Code"
    env: str  # env-reference syntax with {name}
    stdio: Callable[[], tuple[dict[str, Any], dict[str, Any]]] = lambda: ({}, {})
    remote: Callable[[McpServer], tuple[dict[str, Any], dict[str, Any]]] = lambda s: ({}, {})
    url: Callable[[McpServer], str] = lambda s: "url"
    cwd_note: str | None = None


def server_entry(out: Rendering, name: str, server: McpServer, shape: ServerShape) -> dict[str, Any] | None:
    """The entry of one server (tool filters aside), or None when the server is disabled."""
    where = f"mcpServers.{name}"
    if not server.enabled:
        out.dropped(f"{where}.enabled", f"{shape.client} has no per-entry switch; the disabled server "
                    "is not rendered")
        return None
    if server.command is not None:
        before, after = shape.stdio()
        entry: dict[str, Any] = {**before, "command": server.command}
        if server.args:
            entry["args"] = list(server.args)
        env = rendered_env(out, name, server.env, shape.env)
        if env:
            entry["env"] = env
        if server.cwd and shape.cwd_note is None:
            entry["cwd"] = server.cwd
        elif server.cwd:
            out.dropped(f"{where}.cwd", shape.cwd_note or "")
        return {**entry, **after}
    before, after = shape.remote(server)
    entry = {**before, shape.url(server): server.url}
    headers = rendered_headers(out, name, server, shape.env)
    if headers:
        entry["headers"] = headers
    return {**entry, **after}


def mcp_split(tool: str, servers: Iterable[str]) -> tuple[str, str | None] | None:
    """(server, tool or None) of an `mcp__server[__tool]` rule. A server name may hold `__`
    itself (`a__b`): the longest declared server that the rule names wins, so `mcp__a__b__x`
    is tool `x` of `a__b`, never tool `b__x` of a server `a` nobody declared."""
    if not tool.startswith("mcp__"):
        return None
    for name in sorted(servers, key=len, reverse=True):
        if tool == f"mcp__{name}":
            return name, None
        if tool.startswith(f"mcp__{name}__"):
            return name, tool[len(f"mcp__{name}__"):]
    server, _, rest = tool[len("mcp__"):].partition("__")
    return (server, rest or None) if server else None
