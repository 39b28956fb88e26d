"""Native files as editable documents: get, set and delete one key, keep the rest.

Every client file the reconciler touches is opened as a `Document` of its format:
JSON/JSONC (edited in the text, see `jsonc`), TOML (tomlkit, which keeps comments and
layout), YAML (edited in the text, see `yamlspans`), a whole text file (rules the
reconciler creates), or a managed block inside a Markdown file that people also edit
(`CLAUDE.md`, `AGENTS.md`: only the text between the reconciler's markers is ours). Values going in and
out are plain JSON-like Python values; `render()` gives the new file text, or None when
the file should not exist. A file that does not parse raises `DocumentError` with the
file, line and column: it is never treated as empty.

**Which JSON grammar.** A JSON file is parsed in the grammar its client reads it with
(`json_grammar`, from the `JSON_GRAMMARS` table, first match on the path's tail), and
what that client would reject is refused with its line, column and reason:

- JSONC (comments and trailing commas): `.qwen/settings.json` and `.gemini/settings.json`
  (both CLIs strip comments before parsing), `.cursor/mcp.json` and
  `.cursor/permissions.json` (Cursor reads JSONC), and any `*.jsonc`;
- strict JSON: Claude Code's `~/.claude.json`, `.mcp.json` and `.claude/settings*.json`
  (a comment or a trailing comma makes Claude reject the whole file), `.rovodev/mcp.json`
  and the Cursor CLI's `cli-config.json` / `cli.json` (not documented to accept either),
  and every file not listed: keeping JSONC out of a strict reader's file breaks nothing,
  the reverse breaks the client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, Protocol

from reconciler.drivers.agents import jsonc
from reconciler.errors import DriverError


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()
"""The value of a key that is not in the file."""

Path_ = tuple[str, ...]


class Format(StrEnum):
    JSON = "json"
    TOML = "toml"
    YAML = "yaml"
    TEXT = "text"  # a whole file the reconciler owns
    BLOCK = "block"  # the reconciler's block inside a Markdown file


class DocumentError(DriverError):
    """An existing native file that does not parse."""

    def __init__(self, source: str, line: int | None, column: int | None, reason: str) -> None:
        self.source, self.line, self.column, self.reason = source, line, column, reason
        where = source + (f":{line}" if line else "") + (f":{column}" if column else "")
        super().__init__(f"{where}: cannot parse the existing file: {reason}; nothing was written "
                         "to any client (fix or move the file, then run again)")


@dataclass(frozen=True, slots=True)
class ListEdit:
    """An item-level edit of one list, so that items nobody asked to change keep their bytes.

    Indexes are positions in the list as it is before the edit; `append` adds items at the
    end, in order. A list that does not exist is created from `append` (nothing to remove or
    replace in it).
    """

    remove: frozenset[int] = frozenset()
    replace: Mapping[int, Any] = field(default_factory=dict)
    append: tuple[Any, ...] = ()

    def applied(self, items: list[Any]) -> list[Any]:
        """The list after the edit (what every document's `edit_list` must produce)."""
        out = [self.replace.get(i, item) for i, item in enumerate(items) if i not in self.remove]
        return out + list(self.append)


class ShapeError(DriverError):
    """An existing native file that parses, but holds a value of the wrong shape at a key the
    reconciler must edit (`mcp_servers = "oops"`, `"mcpServers": []`, a legacy flat settings
    file): refused with the key's location, never replaced."""

    def __init__(self, source: str, line: int | None, column: int | None, path: str, reason: str) -> None:
        self.source, self.line, self.column, self.path, self.reason = source, line, column, path, reason
        where = source + (f":{line}" if line else "") + (f":{column}" if column else "")
        super().__init__(f"{where}: {path}: {reason}; nothing was written to any client (fix the file, "
                         "then run again)")


class Document(Protocol):
    def get(self, path: Path_) -> Any: ...

    def set(self, path: Path_, value: Any) -> None: ...

    def delete(self, path: Path_) -> None: ...

    def edit_list(self, path: Path_, edit: ListEdit) -> None: ...

    def where(self, path: Path_) -> tuple[int, int] | None:
        """1-based (line, column) of the key at `path` (of the value, for the root), or None."""
        ...

    def render(self) -> str | None: ...


def _kind_name(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"[:80]
    if isinstance(value, bool) or value is None:  # as the files spell them
        return f"the value {json.dumps(value)}"
    return f"the value {value!r}"[:80]


def refuse_shape(doc: Document, file: str, path: Path_, expected: str, got: Any) -> ShapeError:
    """The refusal of `got` at `path` of `file`, located by the document when it can be."""
    where = doc.where(path) if hasattr(doc, "where") else None
    line, column = where if where is not None else (None, None)
    return ShapeError(file, line, column, "/" + "/".join(path),
                      f"expected {expected}, got {_kind_name(got)}")


def walk(value: Any, path: Path_) -> Any:
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    return value


def with_value(value: Any, path: Path_, new: Any) -> Any:
    """`value` with `new` at `path` (copies along the path only; parents made as needed)."""
    if not path:
        return new
    out = dict(value) if isinstance(value, Mapping) else {}
    out[path[0]] = with_value(out.get(path[0], {}), path[1:], new)
    return out


@dataclass(frozen=True, slots=True)
class JsonGrammarRule:
    """The grammar of the JSON files whose path ends with `pattern`, and why (for refusals)."""

    pattern: str  # matched from the right, one path part per `/`; `*` within a part
    grammar: jsonc.Grammar
    why: str


_CLAUDE = "this file is read by Claude Code as strict JSON"

JSON_GRAMMARS: tuple[JsonGrammarRule, ...] = (
    JsonGrammarRule(".claude.json", jsonc.JSON, _CLAUDE),
    JsonGrammarRule(".mcp.json", jsonc.JSON, _CLAUDE),
    JsonGrammarRule(".claude/settings.json", jsonc.JSON, _CLAUDE),
    JsonGrammarRule(".claude/settings.local.json", jsonc.JSON, _CLAUDE),
    JsonGrammarRule("managed-settings.json", jsonc.JSON, _CLAUDE),
    JsonGrammarRule(".rovodev/mcp.json", jsonc.JSON,
                    "this file is read by Rovo Dev CLI as JSON, not documented to accept comments"),
    JsonGrammarRule(".cursor/cli-config.json", jsonc.JSON,
                    "this file is read by the Cursor CLI as JSON, not documented to accept comments"),
    JsonGrammarRule(".cursor/cli.json", jsonc.JSON,
                    "this file is read by the Cursor CLI as JSON, not documented to accept comments"),
    JsonGrammarRule(".qwen/settings.json", jsonc.JSONC, "Qwen Code strips comments from this file"),
    JsonGrammarRule(".gemini/settings.json", jsonc.JSONC, "Gemini CLI strips comments from this file"),
    JsonGrammarRule(".cursor/mcp.json", jsonc.JSONC, "Cursor reads this file as JSONC"),
    JsonGrammarRule(".cursor/permissions.json", jsonc.JSONC, "Cursor documents this file as JSONC"),
    JsonGrammarRule("*.jsonc", jsonc.JSONC, "the .jsonc extension says so"),
)
_UNLISTED = JsonGrammarRule("*", jsonc.JSON, "a file no client is known to read as JSONC is kept strict JSON")


def json_grammar(source: str) -> JsonGrammarRule:
    """The grammar rule of a JSON file, by its path (`~/.claude.json`, `./.qwen/settings.json`, absolute)."""
    path = PurePosixPath(source.replace("\\", "/"))
    return next((rule for rule in JSON_GRAMMARS if path.match(rule.pattern)), _UNLISTED)


# Keys of the flat settings format that Gemini CLI (v0.3) and Qwen Code moved into nested
# categories when they read an old file (gemini-cli `settings.ts` migration map). A file
# that still has them is migrated by the client on its next start; writing nested keys
# into it first would leave a half-migrated file.
LEGACY_FLAT_KEYS = {
    "theme": "ui.theme", "selectedAuthType": "security.auth.selectedType",
    "contextFileName": "context.fileName", "excludeTools": "tools.exclude", "coreTools": "tools.core",
    "allowedTools": "tools.allowed", "autoAccept": "tools.autoAccept", "sandbox": "tools.sandbox",
    "toolDiscoveryCommand": "tools.discoveryCommand", "toolCallCommand": "tools.callCommand",
    "mcpServerCommand": "mcp.serverCommand", "allowMCPServers": "mcp.allowed",
    "excludeMCPServers": "mcp.excluded", "preferredEditor": "general.preferredEditor",
    "vimMode": "general.vimMode", "checkpointing": "general.checkpointing",
    "disableAutoUpdate": "general.disableAutoUpdate", "usageStatisticsEnabled":
    "privacy.usageStatisticsEnabled", "hideTips": "ui.hideTips", "hideBanner": "ui.hideBanner",
    "hideWindowTitle": "ui.hideWindowTitle", "customThemes": "ui.customThemes",
    "accessibility": "ui.accessibility", "fileFiltering": "context.fileFiltering",
    "includeDirectories": "context.includeDirectories", "maxSessionTurns": "model.maxSessionTurns",
    "summarizeToolOutput": "model.summarizeToolOutput", "chatCompression": "model.chatCompression",
    "folderTrust": "security.folderTrust.enabled", "ideMode": "ide.enabled",
    "showMemoryUsage": "ui.showMemoryUsage", "memoryImportFormat": "context.importFormat",
}
_NESTED_SETTINGS = (".qwen/settings.json", ".gemini/settings.json")


def refuse_legacy_settings(file: str, doc: Document) -> None:
    """A Qwen / Gemini settings file still in the flat format is refused, not half-migrated."""
    if not file.endswith(_NESTED_SETTINGS):
        return
    top = doc.get(())
    if not isinstance(top, Mapping):
        return
    model = top.get("model")
    flat = [key for key in top if key in LEGACY_FLAT_KEYS]
    if isinstance(model, str):
        flat.append("model")
    if flat:
        key = flat[0]
        client = "Qwen Code" if ".qwen/" in file else "Gemini CLI"
        nested = LEGACY_FLAT_KEYS.get(key, "model.name")
        raise refuse_shape(doc, file, (key,), f"the nested settings format (a legacy flat key: "
                           f"{client} moves {key} to {nested} when it migrates the file; start "
                           f"{client} once so that it migrates the file, or move "
                           f"{', '.join(flat)} by hand)", top[key])


def only_crlf(text: str | None) -> bool:
    """Every line of `text` ends with CRLF (a Windows file): edited as LF, written back as CRLF,
    so that the lines the reconciler inserts end as the file's own do. A file that mixes both
    is edited as it is."""
    return text is not None and "\r\n" in text and text.count("\r\n") == text.count("\n")


class JsonDocument:
    def __init__(self, text: str | None, source: str) -> None:
        self.crlf = only_crlf(text)
        self.text = (text or "").replace("\r\n", "\n") if self.crlf else text or ""
        self._read = self.text  # as read: what a refusal's line and column point into
        self.source = source
        self.rule = json_grammar(source)
        try:
            self._value = self._load(self.text) if self.text.strip() else {}
        except jsonc.JsonSyntaxError as exc:
            reason = f"{exc.reason} ({self.rule.why})" if exc.by_grammar else exc.reason
            raise DocumentError(source, exc.line, exc.column, reason) from None
        if not isinstance(self._value, dict):
            raise DocumentError(source, 1, 1, "expected a JSON object at the top level")

    def _load(self, text: str) -> Any:
        return jsonc.loads(text, grammar=self.rule.grammar)

    def get(self, path: Path_) -> Any:
        return walk(self._value, path)

    def set(self, path: Path_, value: Any) -> None:
        self.text = jsonc.set_value(self.text, path, value)
        # The value as the text now reads (not a second parse of a file that may be megabytes).
        self._value = with_value(self._value, path, json.loads(json.dumps(value, ensure_ascii=False)))

    def delete(self, path: Path_) -> None:
        for end in range(len(path), 0, -1):  # the key, then the parents it leaves empty
            if end < len(path) and walk(self._value, path[:end]) != {}:
                break
            self.text = jsonc.delete_value(self.text, path[:end])
            self._value = self._load(self.text) if self.text.strip() else {}
        self._emptied = not self._value

    def edit_list(self, path: Path_, edit: ListEdit) -> None:
        self.text = jsonc.edit_array(self.text, path, remove=edit.remove, replace=edit.replace,
                                     append=edit.append)
        self._value = self._load(self.text) if self.text.strip() else {}

    def where(self, path: Path_) -> tuple[int, int] | None:
        """In the file as read (edits before a refusal move lines); else as edited."""
        return jsonc.locate(self._read, path) or jsonc.locate(self.text, path)

    def render(self) -> str | None:
        if getattr(self, "_emptied", False) and not self._value:
            return None
        return self.text.replace("\n", "\r\n") if self.crlf else self.text


class YamlDocument:
    """A YAML file edited by text spans (`yamlspans`): bytes outside the edited keys never change."""

    def __init__(self, text: str | None, source: str) -> None:
        from reconciler.drivers.agents.yamlspans import YamlSpanDocument  # it imports this module

        self._spans = YamlSpanDocument(text, source)

    def get(self, path: Path_) -> Any:
        return self._spans.get(path)

    def set(self, path: Path_, value: Any) -> None:
        self._spans.set(path, value)

    def delete(self, path: Path_) -> None:
        self._spans.delete(path)

    def edit_list(self, path: Path_, edit: ListEdit) -> None:
        self._spans.edit_list(path, edit)

    def where(self, path: Path_) -> tuple[int, int] | None:
        return self._spans.where(path)

    def render(self) -> str | None:
        return self._spans.render()


class TextDocument:
    """A whole file the reconciler owns (a rule file, a policy file)."""

    def __init__(self, text: str | None, source: str) -> None:
        self.text = text

    def get(self, path: Path_) -> Any:
        return MISSING if self.text is None else self.text

    def set(self, path: Path_, value: Any) -> None:
        self.text = str(value)

    def delete(self, path: Path_) -> None:
        self.text = None

    def edit_list(self, path: Path_, edit: ListEdit) -> None:
        raise TypeError("a whole text file has no lists")

    def where(self, path: Path_) -> tuple[int, int] | None:
        return None

    def render(self) -> str | None:
        return self.text


class BlockDocument:
    """The reconciler's block in a Markdown file people also edit.

    The block sits between `<!-- reconciler:begin NAME -->` and
    `<!-- reconciler:end NAME -->`; text outside it is never touched. A file whose lines end
    in CRLF (Windows editors) gets its block in CRLF too; its text is compared in LF.
    """

    def __init__(self, text: str | None, source: str, marker: str) -> None:
        self.text = text
        self.nl = "\r\n" if text is not None and text.count("\r\n") * 2 > text.count("\n") else "\n"
        self.begin = f"<!-- reconciler:begin {marker} -->"
        self.end = f"<!-- reconciler:end {marker} -->"
        if text is not None and (text.count(self.begin) > 1 or
                                 (self.begin in text) != (self.end in text)):
            line = text[: text.find(self.begin if self.begin in text else self.end)].count("\n") + 1
            raise DocumentError(source, line, 1, f"expected one pair of {self.begin} / {self.end} "
                                "markers, got a broken or repeated block")

    def edit_list(self, path: Path_, edit: ListEdit) -> None:
        raise TypeError("a Markdown block has no lists")

    def where(self, path: Path_) -> tuple[int, int] | None:
        return None

    def outside(self) -> str:
        """The file's text outside the reconciler's block (what people wrote), in LF."""
        span = self._span()
        if self.text is None:
            return ""
        text = self.text if span is None else self.text[: span[0]] + self.text[span[1]:]
        return text.replace("\r\n", "\n")

    def _span(self) -> tuple[int, int] | None:
        if self.text is None or self.begin not in self.text:
            return None
        start = self.text.index(self.begin)
        end = self.text.index(self.end, start) + len(self.end)
        return start, end

    def get(self, path: Path_) -> Any:
        span = self._span()
        if span is None:
            return MISSING
        assert self.text is not None
        body = self.text[span[0] + len(self.begin): span[1] - len(self.end)]
        return body.replace("\r\n", "\n").strip("\n") + "\n"

    def set(self, path: Path_, value: Any) -> None:
        nl = self.nl
        inner = str(value).replace("\r\n", "\n").strip("\n").replace("\n", nl)
        block = f"{self.begin}{nl}{inner}{nl}{self.end}"
        span = self._span()
        if span is not None:
            assert self.text is not None
            self.text = self.text[: span[0]] + block + self.text[span[1]:]
        elif not self.text or not self.text.strip():
            self.text = block + nl
        else:
            self.text = self.text.rstrip("\r\n") + nl + nl + block + nl

    def delete(self, path: Path_) -> None:
        span = self._span()
        if span is None:
            return
        assert self.text is not None
        nl = self.nl
        rest = (self.text[: span[0]].rstrip("\r\n") + nl + self.text[span[1]:].lstrip("\r\n"))
        self.text = None if not rest.strip() else rest.lstrip("\r\n")

    def render(self) -> str | None:
        return self.text


def open_document(fmt: Format, text: str | None, source: str, *, marker: str = "") -> Document:
    """The document of one file (`text` None = the file does not exist)."""
    if fmt is Format.JSON:
        return JsonDocument(text, source)
    if fmt is Format.TOML:
        from reconciler.drivers.agents.tomldocument import TomlDocument  # it imports this module

        return TomlDocument(text, source)
    if fmt is Format.YAML:
        return YamlDocument(text, source)
    if fmt is Format.BLOCK:
        return BlockDocument(text, source, marker)
    return TextDocument(text, source)
