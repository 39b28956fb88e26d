"""One adapter per AI client: the canonical spec in and out of that client's native files.

An adapter renders a spec for one target (`render` → entries and translation notes) and
reads a client's existing files back into a canonical spec fragment (`read`, used by
`reconciler import agents`). Its `CAPABILITIES` row is the source of truth for the README
table of what each client supports. Adapters are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

from reconciler.drivers.agents.entries import Place, Rendering
from reconciler.models.agents import AgentClient, AgentConfigSpec

_MODULES = {
    AgentClient.CLAUDE_CODE: "claude",
    AgentClient.CODEX: "codex",
    AgentClient.QWEN_CODE: "qwen",
    AgentClient.ROVO_DEV: "rovo",
    AgentClient.GEMINI_CLI: "gemini",
    AgentClient.CURSOR: "cursor",
}


class Reader:
    """Read-only access to files under one root, for `read` (import)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def text(self, relative: str) -> str | None:
        path = self.root / relative
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def glob(self, relative_dir: str, pattern: str) -> list[str]:
        folder = self.root / relative_dir
        if not folder.is_dir():
            return []
        return sorted(f"{relative_dir}/{p.name}" for p in folder.glob(pattern) if p.is_file())


class Adapter(Protocol):
    client: ClassVar[AgentClient]
    CAPABILITIES: ClassVar[dict[str, str]]

    def render(self, spec: AgentConfigSpec, place: Place) -> Rendering: ...

    def read(self, reader: Reader, place: Place, warn: Callable[[str], None]) -> dict[str, Any]: ...


_CACHE: dict[AgentClient, Adapter] = {}


def adapter_for(client: AgentClient | str) -> Adapter:
    client = AgentClient(client)
    if client not in _CACHE:
        module = importlib.import_module(f"{__name__}.{_MODULES[client]}")
        _CACHE[client] = module.ADAPTER
    return _CACHE[client]


def all_adapters() -> list[Adapter]:
    return [adapter_for(c) for c in AgentClient]


FEATURES = ("mcp", "stdio cwd", "sse", "secrets", "tool filters", "rules", "permissions", "sets of items",
            "one value", "grammar")


def capability_table() -> str:
    """The Markdown table of what each client supports (in the README)."""
    adapters = all_adapters()
    lines = ["| | " + " | ".join(str(a.client) for a in adapters) + " |",
             "|---|" + "---|" * len(adapters)]
    for feature in FEATURES:
        cells = [a.CAPABILITIES.get(feature, "–").replace("|", "\\|") for a in adapters]
        lines.append(f"| {feature} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
