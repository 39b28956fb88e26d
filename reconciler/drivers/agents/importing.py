"""Reading native files back into the canonical spec (`reconciler import agents`).

The reverse of rendering, shared by the adapters: env references in a client's syntax
become `{env: NAME}`, `Bearer ${NAME}` headers become `bearerToken`, rule files and the
reconciler's Markdown sections become rules. A literal value under a secret-looking name
is never copied into the spec: it becomes a reference to an env var of the same name, and
the import says so on stderr. `import_spec` assembles an `AgentConfig` document.

Every value is read with the shape it must have (`Native`): a file a client would choke on
is refused with its line and column, as apply refuses it, never guessed at. What the
canonical model cannot hold (a server named `@scope/name`, Claude Code's `dontAsk`) is left
out with a warning, and stays in the file, which apply never touches there
(`canonical_only`); what the canonical spec holds in another form (a number in `env`) comes
back exactly through the target's overrides (`native_extras`): applying an imported spec
to the files it came from changes no byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.drivers.agents.documents import (
    MISSING,
    Document,
    JsonDocument,
    refuse_legacy_settings,
    refuse_shape,
)
from reconciler.drivers.agents.translating import parse_sections, path_list, split_front_matter
from reconciler.models.agents import AgentClient, TargetScope
from reconciler.models.literals import SECRET_NAME, holds_no_secret, secret_args, secret_in_url, secret_paths

Warn = Callable[[str], None]
Pointer = tuple[str, ...]
_SCALARS = (str, int, float, bool)


class Native:
    """One client file as the importer reads it: every value is read with the shape it must
    have, and a value of another shape is refused with the file, line, column and key path
    (`ShapeError`), as apply refuses it. Nothing is guessed: `"args": "a b"` is not read as
    the list of its characters, a server given as a string does not end in a traceback.
    A JSON null reads as absent, as the clients read it."""

    def __init__(self, doc: Document, file: str) -> None:
        self.doc, self.file = doc, file

    @classmethod
    def json(cls, text: str | None, file: str) -> Native:
        """A JSON file, read by its grammar (strict JSON or JSONC, see `json_grammar`); a
        Qwen / Gemini settings file still in the legacy flat format is refused, as by apply."""
        doc = JsonDocument(text, file)
        refuse_legacy_settings(file, doc)
        return cls(doc, file)

    def value(self, path: Pointer) -> Any:
        """The value at `path`, None when absent; a parent that is not an object is refused."""
        for depth in range(1, len(path)):
            parent = self.doc.get(path[:depth])
            if parent is MISSING or parent is None:
                return None
            if not isinstance(parent, Mapping):
                raise refuse_shape(self.doc, self.file, path[:depth], "an object", parent)
        found = self.doc.get(path)
        return None if found is MISSING else found

    def mapping(self, path: Pointer) -> Mapping[str, Any]:
        """The object at `path`; `{}` when absent."""
        found = self.value(path)
        if found is None:
            return {}
        if not isinstance(found, Mapping):
            raise refuse_shape(self.doc, self.file, path, "an object", found)
        return found

    def text(self, path: Pointer) -> str | None:
        found = self.value(path)
        if found is not None and not isinstance(found, str):
            raise refuse_shape(self.doc, self.file, path, "a string", found)
        return found

    def strings(self, path: Pointer) -> list[str] | None:
        """The list of strings at `path`; None when absent."""
        found = self.value(path)
        if found is None:
            return None
        if not isinstance(found, list) or not all(isinstance(item, str) for item in found):
            raise refuse_shape(self.doc, self.file, path, "a list of strings", found)
        return list(found)

    def scalars(self, path: Pointer) -> dict[str, Any]:
        """An object of plain values at `path` (env, headers); `{}` when absent."""
        found = self.mapping(path)
        if not all(isinstance(value, _SCALARS) for value in found.values()):
            raise refuse_shape(self.doc, self.file, path, "an object of strings", found)
        return dict(found)

    def objects(self, path: Pointer) -> Iterator[tuple[str, Pointer]]:
        """(name, path) of every member of the object at `path`, each itself an object."""
        for name in self.mapping(path):
            self.mapping((*path, name))
            yield name, (*path, name)


@dataclass(frozen=True)
class ServerSpelling:
    """How one client spells an MCP server in JSON: which keys hold a remote server's URL
    (the first present wins) and what transport each means, whether a URL wins over a
    command (Gemini CLI's precedence), the tool filter keys, and whether `cwd` is read."""

    transport: Callable[[Native, Pointer, str], str | None]
    url_keys: tuple[str, ...] = ("url",)
    url_first: bool = False
    tool_keys: tuple[str, str] | None = None
    cwd: bool = False


def read_servers(native: Native, path: Pointer, spelling: ServerSpelling, env_ref: re.Pattern[str],
                 warn: Warn) -> dict[str, Any]:
    """The canonical MCP servers of the object at `path` of a client's JSON file."""
    servers: dict[str, Any] = {}
    for name, at in native.objects(path):
        entry, where = native.mapping(at), ".".join(at)
        tools: dict[str, Any] = {}
        if spelling.tool_keys is not None:
            include, exclude = spelling.tool_keys
            tools = {"enabled_tools": native.strings((*at, include)),
                     "disabled_tools": native.strings((*at, exclude))}
        url_key = next((key for key in spelling.url_keys if key in entry), None)
        if url_key is not None and (spelling.url_first or "command" not in entry):
            headers, bearer = headers_map(native.scalars((*at, "headers")), env_ref, f"{where}.headers", warn)
            transport = spelling.transport(native, at, url_key)
            servers[name] = server(url=native.text((*at, url_key)), transport=transport, headers=headers,
                                   bearer=bearer, **tools)
        elif "command" in entry:
            servers[name] = server(command=native.text((*at, "command")), args=native.strings((*at, "args")),
                                   env=env_map(native.scalars((*at, "env")), env_ref, f"{where}.env", warn),
                                   cwd=native.text((*at, "cwd")) if spelling.cwd else None, **tools)
        else:
            keys = ", ".join(("command", *spelling.url_keys))
            warn(f"{native.file}: {where} has none of {keys}; not imported")
    return servers



def env_value(value: Any, pattern: re.Pattern[str], name: str, where: str, warn: Warn) -> Any:
    """A native env/header value as canonical: a reference in the client's own syntax, else
    the literal when it holds no secret (empty, or only a reference in another syntax, which
    the client passes on as written), else a reference to an env var of the key's name. A
    number or a boolean becomes its text as the file spells it (`3334`, `true`)."""
    text = value if isinstance(value, str) else json.dumps(value)
    match = pattern.fullmatch(text)
    if match:
        return {"env": match.group(1)}
    if SECRET_NAME.search(name) and not holds_no_secret(text):
        ref = re.sub(r"[^A-Za-z0-9_]", "_", name).upper()
        warn(f"{where}: a literal secret value was not imported; it is now {{env: {ref}}}: "
             f"export {ref} where the client runs")
        return {"env": ref}
    return text


def env_map(values: Mapping[str, Any] | None, pattern: re.Pattern[str], where: str,
            warn: Warn) -> dict[str, Any]:
    return {k: env_value(v, pattern, k, f"{where}.{k}", warn) for k, v in (values or {}).items()}


def headers_map(values: Mapping[str, Any] | None, pattern: re.Pattern[str], where: str,
                warn: Warn) -> tuple[dict[str, Any], dict[str, str] | None]:
    """(headers, bearerToken) from native headers."""
    headers: dict[str, Any] = {}
    bearer = None
    for key, value in (values or {}).items():
        text = str(value)
        if key.lower() == "authorization" and text.startswith("Bearer "):
            match = pattern.fullmatch(text[len("Bearer "):])
            if match:
                bearer = {"env": match.group(1)}
                continue
        headers[key] = env_value(value, pattern, key, f"{where}.{key}", warn)
    return headers, bearer


def server(*, command: str | None = None, args: list[str] | None = None, env: dict[str, Any] | None = None,
           cwd: str | None = None, url: str | None = None, transport: str | None = None,
           headers: dict[str, Any] | None = None, bearer: dict[str, str] | None = None,
           enabled_tools: list[str] | None = None, disabled_tools: list[str] | None = None,
           enabled: bool = True) -> dict[str, Any]:
    """A canonical MCP server (camelCase), without empty fields."""
    out: dict[str, Any] = {}
    if command is not None:
        out["command"] = command
        if args:
            out["args"] = list(args)
        if env:
            out["env"] = env
        if cwd:
            out["cwd"] = cwd
    else:
        out["url"] = url
        if transport and transport != "http":
            out["transport"] = transport
        if headers:
            out["headers"] = headers
        if bearer:
            out["bearerToken"] = bearer
    if enabled_tools is not None:
        out["enabledTools"] = list(enabled_tools)
    if disabled_tools:
        out["disabledTools"] = list(disabled_tools)
    if not enabled:
        out["enabled"] = False
    return out


def rules_from_block(text: str | None, name: str = "instructions") -> list[dict[str, Any]]:
    """Rules from a Markdown instruction file, imported whole.

    The reconciler's block gives one rule per `## name` section it wrote; everything the
    file holds outside the block (a person's own instructions: all of it when there is no
    block) is one more rule named `name`, its text kept verbatim. Applying the imported spec
    then writes nothing into that file: a rule whose text is already there is not repeated
    (see `translating.put_rules_block`)."""
    if not text:
        return []
    match = re.search(r"<!-- reconciler:begin (\S+) -->\n(.*?)\n<!-- reconciler:end \1 -->", text, re.S)
    rules = [rule(section, description, paths, content)
             for section, description, paths, content in parse_sections(match.group(2))] if match else []
    outside = text[: match.start()] + text[match.end():] if match else text
    if outside.strip():
        taken = {r["name"] for r in rules}
        own = rule(name, "", [], outside)
        while own["name"] in taken:
            own["name"] += "-own"
        own["content"] = outside.strip("\n") + "\n"
        rules.append(own)
    return rules


def rule_name(relative: str) -> str:
    """The rule name of a whole imported instruction file: `CLAUDE.md` → `claude`."""
    return re.sub(r"[^a-z0-9-]+", "-", Path(relative).stem.lower()).strip("-") or "instructions"


def extras(entry: Mapping[str, Any], known: set[str], path: str) -> dict[str, Any]:
    """The fields of a native server entry the canonical model has no place for, as target
    overrides (`<path>.<field>`), so that an imported spec renders the entry unchanged."""
    return {f"{path}.{key}": value for key, value in entry.items() if key not in known}


def rules_from_files(texts: Mapping[str, str], warn: Warn, paths_key: str = "paths") -> list[dict[str, Any]]:
    """Path-scoped rules from files with front matter (`.claude/rules/*.md`).

    A rules file without paths is one the client always loads; the canonical spec has no
    place for an always-on rule in a file of its own (it renders always-on rules into the
    instruction file's block), so applying it would load the text twice: it is left in its
    file, with a warning."""
    out = []
    for relative, text in texts.items():
        meta, body = split_front_matter(text)
        name = Path(relative).stem
        globs = path_list(meta.get(paths_key))
        if not globs:
            warn(f"{relative}: a rules file without {paths_key} (always loaded) has no canonical "
                 f"equivalent; {LEFT}")
            continue
        out.append(rule(name, str(meta.get("description") or ""), globs, body))
    return out


def rule(name: str, description: str, paths: list[str], content: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "rule"}
    if description:
        out["description"] = description
    out["content"] = content.strip("\n") + "\n"
    if paths:
        out["paths"] = list(paths)
    return out


def permissions(allow: list[str] | None = None, ask: list[str] | None = None,
                deny: list[str] | None = None, default_mode: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, values in (("allow", allow), ("ask", ask), ("deny", deny)):
        if values:
            out[key] = list(values)
    if default_mode:
        out["defaultMode"] = default_mode
    return out


def import_spec(client: AgentClient, scope: TargetScope, root: str, name: str,
                warn: Warn) -> dict[str, Any]:
    """An AgentConfig document (a dict) from one client's files under `root`."""
    from reconciler.drivers.agents.clients import Reader, adapter_for
    from reconciler.drivers.agents.entries import Place, expand

    place = Place(client, scope, root, name)
    reader = Reader(expand(root))
    found = canonical_only(adapter_for(client).read(reader, place, warn), warn)
    spec: dict[str, Any] = {}
    for key in ("mcpServers", "rules", "permissions"):
        if found.get(key):
            spec[key] = found[key]
    target: dict[str, Any] = {"client": str(client), "scope": str(scope)}
    if root != ("~" if scope is TargetScope.USER else "."):
        target["root"] = root
    spec["targets"] = [target]
    document = {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig",
                "metadata": {"name": name}, "spec": spec}
    if spec.get("permissions") and permissions_elsewhere(document, reader, place):
        target["features"] = ["mcpServers", "rules"]
        warn("the permissions were read from the client's own rule files, which stay as they are; "
             "the target leaves permissions out (features: [mcpServers, rules]) so that apply does "
             "not write them a second time into the reconciler's file; the other clients of the spec "
             "receive them")
    overrides = {}
    for key, value in {**found.get("overrides", {}), **native_extras(document, reader, place)}.items():
        if secret_paths(value, key.rsplit(".", 1)[-1]):
            warn(f"{key}: holds a literal secret, which a spec never holds; not imported as an "
                 "override (a secret in env or headers is imported as a reference)")
        else:
            overrides[key] = value
    if overrides:
        target["overrides"] = overrides
    return document


LEFT = "not imported: it stays in the file as it is, and apply leaves it alone"


def canonical_only(found: dict[str, Any], warn: Warn) -> dict[str, Any]:
    """`found` without what the canonical model cannot hold, each with a warning: a server
    name such as `@scope/name`, a permission rule outside the `Tool(specifier)` syntax, a
    mode the canonical `defaultMode` does not have (Claude Code's `dontAsk`). None of them
    is lost: apply never touches a server, a list item or a key the spec does not name."""
    from pydantic import TypeAdapter, ValidationError

    from reconciler.models.agents import DefaultMode, McpServerName, PermissionRule

    def checker(kind: Any) -> Callable[[Any], bool]:
        adapter: TypeAdapter[Any] = TypeAdapter(kind)

        def valid(value: Any) -> bool:
            try:
                adapter.validate_python(value)
            except ValidationError:
                return False
            return True

        return valid

    server_name, permission_rule, default_mode = map(checker, (McpServerName, PermissionRule, DefaultMode))
    servers = {}
    for name, server in (found.get("mcpServers") or {}).items():
        if not server_name(name):
            warn(f"mcpServers: the name {name!r} cannot be a canonical server name (no '.', '/', '~' "
                 f"or '#'); {LEFT}")
        elif at := [f"args[{i}]" for i in secret_args(server.get("args") or [])] + (
                ["url"] if secret_in_url(server.get("url") or "") else []):
            warn(f"mcpServers.{name}: {', '.join(at)} holds a literal secret, which a spec never "
                 f"holds (move it into env, which imports as a secret reference); {LEFT}")
        else:
            servers[name] = server
    permissions = dict(found.get("permissions") or {})
    for decision in ("allow", "ask", "deny"):
        kept = []
        for rule in permissions.get(decision) or []:
            if permission_rule(rule):
                kept.append(rule)
            else:
                warn(f"permissions.{decision}: {rule!r} is not a Tool or Tool(specifier) rule; {LEFT}")
        permissions[decision] = kept
    mode = permissions.get("defaultMode")
    if mode is not None and not default_mode(mode):
        warn(f"permissions.defaultMode {mode!r} has no canonical equivalent; {LEFT}")
        del permissions["defaultMode"]
    return {**found, "mcpServers": servers, "permissions": {k: v for k, v in permissions.items() if v}}


def permissions_elsewhere(document: dict[str, Any], reader: Any, place: Any) -> bool:
    """Whether the imported permissions would be written into a file the client does not have
    (Codex's `reconciler.rules`, Gemini's `reconciler.toml`): they came from the user's own."""
    from reconciler.drivers.agents.clients import adapter_for
    from reconciler.models.agents import AgentConfig, AgentPermissions

    try:
        spec = AgentConfig.model_validate(document).spec
    except ValueError:
        return False
    adapter = adapter_for(place.client)
    without = {e.key for e in adapter.render(spec.model_copy(update={"permissions": AgentPermissions()}),
                                             place).entries}
    return any(reader.text(e.file[len(place.root) + 1:]) is None
               for e in adapter.render(spec, place).entries if e.key not in without)


def native_extras(document: dict[str, Any], reader: Any, place: Any) -> dict[str, Any]:
    """Fields of the client's MCP server entries that the imported spec would not render
    (Codex `startup_timeout_sec`, Claude's explicit `"type": "stdio"`, Gemini `trust`), as
    target overrides: with them, applying the imported spec changes no byte of the file."""
    from reconciler.drivers.agents.clients import adapter_for
    from reconciler.drivers.agents.documents import open_document
    from reconciler.models.agents import AgentConfig

    try:
        obj = AgentConfig.model_validate(document)
    except ValueError:
        return {}  # the caller validates and reports the spec itself
    target = obj.spec.targets[0]
    rendering = adapter_for(place.client).render(obj.spec.for_target(target), place)
    out: dict[str, Any] = {}
    for entry in rendering.entries:
        if len(entry.pointer) != 2 or entry.item is not None or not isinstance(entry.value, dict):
            continue
        relative = entry.file[len(place.root) + 1:]
        native = open_document(entry.format, reader.text(relative), relative).get(entry.pointer)
        if not isinstance(native, dict):
            continue
        kept = {p[0] for p in entry.preserve}
        for key, value in native.items():
            if key not in entry.value and key not in kept:
                out[".".join((*entry.pointer, key))] = value
            elif isinstance(value, dict) and isinstance(entry.value.get(key), dict):
                # A number or a boolean in `env` / `headers` is a string in the canonical
                # spec (what other clients receive); this client keeps the file's own value.
                rendered = entry.value[key]
                for name, inner in value.items():
                    if isinstance(inner, int | float) and rendered.get(name) == json.dumps(inner):
                        out[".".join((*entry.pointer, key, name))] = inner
    return out


def to_yaml(document: Any) -> str:
    """The document as YAML, multi-line texts as literal blocks (`|`)."""
    from io import StringIO

    from ruamel.yaml import YAML
    from ruamel.yaml.scalarstring import LiteralScalarString

    def literal(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: literal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [literal(v) for v in value]
        if isinstance(value, str) and "\n" in value:
            return LiteralScalarString(value)
        return value

    yaml = YAML()
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = StringIO()
    yaml.dump(literal(document), out)
    return out.getvalue()
