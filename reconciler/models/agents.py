"""`AgentConfig`: one canonical AI-client configuration, rendered into each client's files.

Teams using several AI coding clients keep the same MCP servers, rules and tool
permissions in six native formats. An AgentConfig states them once: `mcpServers` (stdio
servers started with `command`, or remote servers at a `url`), `rules` (Markdown
instructions, always on or scoped to path globs) and `permissions` (Claude-style
`Tool` / `Tool(specifier)` lists). `targets` say which clients receive them, at which
scope (`user` or `project`) and under which root folder; the reconciler owns the keys it
writes, never whole foreign files.

When a file was edited by hand, `conflictPolicy` decides (by default, per client or per
key path): `Override` re-imposes the spec, `Merge` keeps fields others added inside an
owned object, `IfNotPresent` creates once and never updates, `Ignore` leaves it, and
`Adopt` proposes a spec patch and stops with `Drifted`. With `strict: true`, a canonical
field that a client cannot express is an error instead of a warning.

Secret values never appear in the spec: env values and headers take `{env: NAME}`-style
references, which each client's renderer writes as that client's own env syntax.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    Field,
    JsonValue,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from reconciler.models.common import (
    DeletionPolicy,
    DnsLabel,
    Duration,
    HttpUrlText,
    Problems,
    Resource,
    SecretRef,
    SpecModel,
    raise_problems,
)
from reconciler.models.literals import (
    SECRET_ENV,
    SECRET_HEADER,
    holds_no_secret,
    secret_args,
    secret_in_url,
    secret_paths,
)
from reconciler.models.status import ObjectStatus

# --- scalar types ----------------------------------------------------------------------------

# Any letters (names like "Sequential Thinking" or "Größen-Rechner" are common), but no
# '.', '/', '~' or '#' (dotted override paths and inventory keys use them) and no control
# characters or surrounding spaces.
_SERVER_NAME = r"^[^\s./~#\x00-\x1f]([^./~#\x00-\x1f]{0,98}[^\s./~#\x00-\x1f])?$"
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_PERMISSION_RULE = r"^[A-Za-z_][A-Za-z0-9_:.*-]*(\(.*\))?$"
_JSON_POINTER = r"^(/([^~/]|~[01])*)+$"


def _matching(pattern: str, expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"expected {expected}, got {value!r}")
        return value

    return AfterValidator(check)


McpServerName = Annotated[
    str,
    _matching(_SERVER_NAME, "an MCP server name (letters, digits, spaces, '_', '-'; no '.', '/', '~', "
              "'#', at most 100 characters), such as 'github'"),
    WithJsonSchema({"type": "string", "pattern": _SERVER_NAME}),
]
EnvName = Annotated[
    str,
    _matching(_ENV_NAME, "an environment variable name such as 'GITHUB_TOKEN'"),
    WithJsonSchema({"type": "string", "pattern": _ENV_NAME}),
]
PermissionRule = Annotated[
    str,
    _matching(
        _PERMISSION_RULE,
        "a permission rule in the form Tool or Tool(specifier), such as 'Read', "
        "'Bash(npm run test *)' or 'mcp__github__get_issue'",
    ),
    WithJsonSchema({"type": "string", "pattern": _PERMISSION_RULE}),
]
JsonPointer = Annotated[
    str,
    _matching(_JSON_POINTER, "a JSON pointer starting with '/', such as '/mcpServers/github'"),
    WithJsonSchema({"type": "string", "pattern": _JSON_POINTER}),
]


RuleName = DnsLabel

# --- MCP servers -------------------------------------------------------------------------------


class McpTransport(StrEnum):
    HTTP = "http"  # streamable HTTP
    SSE = "sse"


_STDIO_ONLY = (("args", "args"), ("env", "env"), ("cwd", "cwd"))
_REMOTE_ONLY = (("transport", "transport"), ("headers", "headers"), ("bearer_token", "bearerToken"))


class McpServer(SpecModel):
    """An MCP server: stdio (`command`, `args`, `env`, `cwd`) or remote (`url`, `transport`,
    `headers`, `bearerToken`); exactly one of `command` or `url`."""

    command: str | None = Field(default=None, min_length=1, description="stdio: executable.")
    args: list[str] = Field(default_factory=list, description="stdio: arguments.")
    env: dict[EnvName, str | SecretRef] = Field(
        default_factory=dict,
        description="stdio: environment; secrets as references such as {env: GITHUB_TOKEN}.",
    )
    cwd: str | None = Field(default=None, description="stdio: working directory.")
    url: HttpUrlText | None = Field(default=None, description="remote: server URL.")
    transport: McpTransport | None = Field(
        default=None,
        description="remote: http (streamable HTTP, the default for url servers) or sse. "
        "Not allowed on stdio servers.",
    )
    headers: dict[str, str | SecretRef] = Field(
        default_factory=dict,
        description="remote: HTTP headers; credentials as secret references.",
    )
    bearer_token: SecretRef | None = Field(
        default=None, description="remote: sent as 'Authorization: Bearer <token>'."
    )
    enabled_tools: list[str] | None = Field(
        default=None, description="Only these tools (none = every tool)."
    )
    disabled_tools: list[str] = Field(
        default_factory=list, description="Tools to hide (applied after enabledTools)."
    )
    enabled: bool = Field(default=True, description="Render the server as enabled.")

    @model_validator(mode="before")
    @classmethod
    def _default_transport(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("url") is not None and "transport" not in data:
            return {**data, "transport": McpTransport.HTTP.value}
        return data

    @model_validator(mode="after")
    def _stdio_or_remote(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                "expected exactly one of command (a stdio server) or url (a remote server), "
                f"got {'both' if self.command is not None else 'neither'}"
            )
        if self.url is not None:
            for attr, name in _STDIO_ONLY:
                if getattr(self, attr):
                    raise ValueError(
                        f"expected no {name} on a remote server (url), got {name}; "
                        f"{name} applies to stdio servers (command) only"
                    )
        else:
            for attr, name in _REMOTE_ONLY:
                if getattr(self, attr):
                    raise ValueError(
                        f"expected no {name} on a stdio server (command), got {name}; "
                        f"{name} applies to remote servers (url) only"
                    )
        # Every literal secret at its own place (the env key, the header), not the first one only.
        found: Problems = []
        for key, value in self.env.items():
            if isinstance(value, str) and SECRET_ENV.search(key) and not holds_no_secret(value):
                found.append((("env", key), f"expected a secret reference such as {{env: {key}}} for "
                                            f"env {key}, got a literal value; secret values are never "
                                            "written in specs"))
        for key, value in self.headers.items():
            if isinstance(value, str) and SECRET_HEADER.search(key) and not holds_no_secret(value):
                found.append((("headers", key), f"expected a secret reference (or bearerToken) for "
                                                f"header {key}, got a literal value; secret values are "
                                                "never written in specs"))
        found += [(("args", i), "expected no literal secret in args, got one (not shown); pass it "
                                "in env as a secret reference such as {env: NAME}, or write a "
                                "variable the client expands (${NAME}); secret values are never "
                                "written in specs") for i in secret_args(self.args)]
        if self.url is not None and secret_in_url(self.url):
            found.append((("url",), "expected no credentials in the url, got one (not shown); send "
                                    "them in headers or bearerToken as secret references (a URL's "
                                    "password and query are logged as written); secret values are "
                                    "never written in specs"))
        raise_problems("McpServer", found)
        return self

    @property
    def is_remote(self) -> bool:
        return self.url is not None


# --- rules and permissions ---------------------------------------------------------------------


class AgentRule(SpecModel):
    """Markdown instructions for the agent, always on or only for matching paths."""

    name: RuleName = Field(description="Rule name (a DNS-1123 label); also the file name.")
    description: str = Field(default="", description="One line on what the rule is for.")
    content: str = Field(min_length=1, description="The instructions, in Markdown.")
    paths: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="Globs the rule applies to; empty = always on."
    )


class DefaultMode(StrEnum):
    DEFAULT = "default"
    ACCEPT_EDITS = "acceptEdits"
    PLAN = "plan"
    BYPASS_PERMISSIONS = "bypassPermissions"


class AgentPermissions(SpecModel):
    """Tool permissions in the Claude-like `Tool` / `Tool(specifier)` syntax."""

    allow: list[PermissionRule] = Field(default_factory=list, description="Allowed without asking.")
    ask: list[PermissionRule] = Field(default_factory=list, description="Ask every time.")
    deny: list[PermissionRule] = Field(default_factory=list, description="Never allowed.")
    default_mode: DefaultMode | None = Field(
        default=None, description="Permission mode for everything not listed."
    )


# --- targets and conflict policies -------------------------------------------------------------


class AgentClient(StrEnum):
    CLAUDE_CODE = "claude-code"
    CODEX = "codex"
    QWEN_CODE = "qwen-code"
    ROVO_DEV = "rovo-dev"
    GEMINI_CLI = "gemini-cli"
    CURSOR = "cursor"


class TargetScope(StrEnum):
    USER = "user"
    PROJECT = "project"


class AgentFeature(StrEnum):
    """What a target receives of the spec."""

    MCP_SERVERS = "mcpServers"
    RULES = "rules"
    PERMISSIONS = "permissions"


class ConflictPolicy(StrEnum):
    """What to do with an owned key that differs from the spec (a hand edit).

    The strategies carry the names users give them (`central-authoritative`,
    `manual-review`, `last-write-wins`, `priority`); `Override` and `Adopt` are the older
    names of the first two and behave the same (`effective` maps them)."""

    OVERRIDE = "Override"
    MERGE = "Merge"
    IF_NOT_PRESENT = "IfNotPresent"
    IGNORE = "Ignore"
    ADOPT = "Adopt"
    CENTRAL_AUTHORITATIVE = "central-authoritative"
    MANUAL_REVIEW = "manual-review"
    LAST_WRITE_WINS = "last-write-wins"
    PRIORITY = "priority"

    @property
    def effective(self) -> ConflictPolicy:
        """The key-level behaviour: the user names folded onto Override / Adopt. Under
        last-write-wins and priority a drifted key is held like Adopt and then resolved for
        the whole run (see drivers/agents/resolving.py)."""
        return {ConflictPolicy.CENTRAL_AUTHORITATIVE: ConflictPolicy.OVERRIDE,
                ConflictPolicy.MANUAL_REVIEW: ConflictPolicy.ADOPT,
                ConflictPolicy.LAST_WRITE_WINS: ConflictPolicy.ADOPT,
                ConflictPolicy.PRIORITY: ConflictPolicy.ADOPT}.get(self, self)

    @property
    def resolves(self) -> bool:
        """Resolved for the whole run (write-back or impose), not key by key."""
        return self in (ConflictPolicy.LAST_WRITE_WINS, ConflictPolicy.PRIORITY)


class ClientValidation(SpecModel):
    """A read-only command that makes the client load its configuration, run after the
    reconciler wrote the client's files (see drivers/agents/validating.py)."""

    command: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1,
        description="The command and its arguments, e.g. [claude, mcp, list]; run with HOME set to "
        "the target's root (user scope) or in the project folder (project scope). A non-zero exit "
        "rolls the client's files back.",
    )
    timeout: Duration = Field(
        default=timedelta(seconds=10), description="Longest the command may run (e.g. '10s')."
    )


class AgentTarget(SpecModel):
    """One client at one scope under one root folder."""

    client: AgentClient = Field(description="The AI client whose native files are written.")
    scope: TargetScope = Field(default=TargetScope.PROJECT, description="user or project.")
    root: str | None = Field(
        default=None,
        min_length=1,
        description="Home (user scope) or project folder; ~ and $VARS expand. Default: '~' "
        "for user scope, '.' for project scope.",
    )
    overrides: Annotated[
        dict[str, JsonValue],
        WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    ] = Field(
        default_factory=dict,
        description="Client knobs with no canonical form, e.g. approval_policy for codex.",
    )
    conflict_policy: ConflictPolicy | None = Field(
        default=None, description="Policy for this target (over the spec's per-client one)."
    )
    priority: int = Field(
        default=0,
        description="Score under the priority strategy: when the same canonical item was edited in "
        "several clients, the highest-priority client's edit wins and the others are overwritten.",
    )
    validation: ClientValidation | Literal[False] | None = Field(
        default=None,
        alias="validate",
        description="Run the client's own CLI check after writing its files: {command: [..], "
        "timeout: '10s'}, or false for none. Default: the client's known read-only command "
        "(e.g. `claude mcp list`) when its program is on PATH, else skipped with a note.",
    )
    features: list[AgentFeature] = Field(
        default_factory=lambda: list(AgentFeature),
        description="What this target receives (default: all). Leave one out to keep it by hand in "
        "this client: `import` leaves out permissions that live in the client's own rule files.",
    )

    @model_validator(mode="after")
    def _no_literal_secret_in_overrides(self) -> AgentTarget:
        raise_problems("AgentTarget", [
            (("overrides", key, *path), "expected no literal secret in an override, got one (not "
                                        "shown); declare it in the server's env or headers as a secret "
                                        "reference; secret values are never written in specs")
            for key, value in self.overrides.items()
            for path in secret_paths(value, key.rsplit(".", 1)[-1])])
        return self

    @property
    def effective_root(self) -> str:
        if self.root is not None:
            return self.root
        return "~" if self.scope is TargetScope.USER else "."


class Authority(StrEnum):
    """How much of a list the spec governs."""

    ITEMS = "Items"  # only the items the reconciler added (the default)
    FULL = "Full"  # the whole list: items nobody declared are removed


class PathPolicy(SpecModel):
    """Rules for one key path in the native files (and everything under it)."""

    path: JsonPointer = Field(description="Key path in the native file, e.g. /mcpServers/github.")
    policy: ConflictPolicy | None = Field(default=None, description="Conflict policy for the path.")
    authority: Authority = Field(
        default=Authority.ITEMS,
        description="Items (default): the reconciler adds the list items the spec declares and "
        "removes only items it added itself. Full: it owns the whole list at this path and removes "
        "items nobody declared (a weakening of deny or ask rules still needs allowWeakening).",
    )
    allow_weakening: bool = Field(
        default=False,
        description="Allow changes under this path that weaken security rules the reconciler did not "
        "write (a deny removed or turned into ask or allow, an ask into allow).",
    )


class ConflictPolicyConfig(SpecModel):
    """Policies for hand edits: per key path, else per target/client, else the default."""

    default: ConflictPolicy = Field(default=ConflictPolicy.OVERRIDE, description="Fallback.")
    clients: dict[AgentClient, ConflictPolicy] = Field(
        default_factory=dict, description="Policy per client."
    )
    paths: list[PathPolicy] = Field(default_factory=list, description="Policy per key path.")
    spec_priority: int = Field(
        default=0,
        description="The spec's own score under the priority strategy: an edit in a client with a "
        "lower priority is proposed for review instead of accepted.",
    )

    @model_validator(mode="after")
    def _unique_paths(self) -> ConflictPolicyConfig:
        seen: set[str] = set()
        for entry in self.paths:
            if entry.path in seen:
                raise ValueError(
                    f"expected each path once in conflictPolicy.paths, got {entry.path!r} twice"
                )
            seen.add(entry.path)
        return self


# --- the kind ----------------------------------------------------------------------------------


class AgentConfigSpec(SpecModel):
    mcp_servers: dict[McpServerName, McpServer] = Field(
        default_factory=dict, description="MCP servers by name."
    )
    rules: list[AgentRule] = Field(default_factory=list, description="Instructions (Markdown).")
    permissions: AgentPermissions = Field(
        default_factory=AgentPermissions, description="Tool permissions."
    )
    targets: list[AgentTarget] = Field(description="Clients to render into (at least one).")
    conflict_policy: ConflictPolicyConfig = Field(
        default_factory=ConflictPolicyConfig, description="What to do with hand edits."
    )
    strict: bool = Field(
        default=False, description="A field a client cannot express is an error, not a warning."
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.ORPHAN,
        description="When the object is deleted (Kubernetes): Orphan keeps the files as they are; "
        "Delete removes the keys, blocks and files the reconciler wrote, and nothing else.",
    )

    def for_target(self, target: AgentTarget) -> AgentConfigSpec:
        """The spec as `target` receives it: the features it leaves out emptied."""
        left_out = set(AgentFeature) - set(target.features)
        if not left_out:
            return self
        update: dict[str, Any] = {}
        if AgentFeature.MCP_SERVERS in left_out:
            update["mcp_servers"] = {}
        if AgentFeature.RULES in left_out:
            update["rules"] = []
        if AgentFeature.PERMISSIONS in left_out:
            update["permissions"] = AgentPermissions()
        return self.model_copy(update=update)

    @field_validator("targets")
    @classmethod
    def _targets_unique(cls, targets: list[AgentTarget]) -> list[AgentTarget]:
        if not targets:
            raise ValueError("expected at least one target, got none")
        seen: set[tuple[str, str, str]] = set()
        for target in targets:
            key = (target.client.value, target.scope.value, target.effective_root)
            if key in seen:
                raise ValueError(
                    f"expected each (client, scope, root) once in targets, got client {key[0]!r}, "
                    f"scope {key[1]!r}, root {key[2]!r} twice"
                )
            seen.add(key)
        return targets

    @field_validator("rules")
    @classmethod
    def _rules_unique(cls, rules: list[AgentRule]) -> list[AgentRule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"expected unique rule names, got {rule.name!r} twice")
            seen.add(rule.name)
        return rules


class AgentConfig(Resource):
    KIND: ClassVar[str] = "AgentConfig"
    PLURAL: ClassVar[str] = "agentconfigs"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ac",)

    kind: Literal["AgentConfig"]
    spec: AgentConfigSpec
    status: ObjectStatus | None = None
