"""TomlDocument: edits of a Codex config.toml keep the user's bytes and the meaning of every
key the reconciler does not edit, whichever way the file spells its tables."""

from __future__ import annotations

import tomllib
from typing import Any

from reconciler.drivers.agents.tomldocument import TomlDocument

GITHUB = {"command": "npx", "args": ["-y", "gh"], "env": {"GITHUB_TOOLSETS": "repos"}}
DOCS = {"url": "https://d.example/mcp"}


def edited(before: str, *edits: tuple[tuple[str, ...], Any]) -> str:
    """The text after `set`s (a value) and `delete`s (None), each on a freshly opened document,
    as consecutive runs of the reconciler see the file."""
    text = before
    for path, value in edits:
        doc = TomlDocument(text, ".codex/config.toml")
        if value is None:
            doc.delete(path)
        else:
            doc.set(path, value)
        rendered = doc.render()
        assert rendered is not None
        text = rendered
    return text


def test_a_new_server_beside_top_level_dotted_keys_is_written_as_dotted_keys() -> None:
    before = 'mcp_servers.other.command = "x"\nmcp_servers.github.command = "old"\n'
    doc = TomlDocument(before, ".codex/config.toml")
    doc.set(("mcp_servers", "github", "command"), "npx")
    doc.set(("mcp_servers", "docs"), DOCS)
    text = doc.render()
    assert text == ('mcp_servers.other.command = "x"\nmcp_servers.github.command = "npx"\n'
                    'mcp_servers.docs.url = "https://d.example/mcp"\n')
    assert tomllib.loads(text) == {"mcp_servers": {"other": {"command": "x"}, "github": {"command": "npx"},
                                                   "docs": DOCS}}


def test_a_dotted_server_with_maps_and_lists_reads_back_as_written() -> None:
    before = 'model = "o3"\nmcp_servers.other.command = "x"\n\n[tui]\nnotifications = true\n'
    text = edited(before, (("mcp_servers", "github"), GITHUB))
    assert text == ('model = "o3"\nmcp_servers.other.command = "x"\nmcp_servers.github.command = "npx"\n'
                    'mcp_servers.github.args = ["-y", "gh"]\n'
                    'mcp_servers.github.env = {GITHUB_TOOLSETS = "repos"}\n\n[tui]\nnotifications = true\n')
    assert tomllib.loads(text)["mcp_servers"] == {"other": {"command": "x"}, "github": GITHUB}
    assert edited(text, (("mcp_servers", "github"), None)) == before


def test_a_field_added_to_a_dotted_server_stays_in_that_server() -> None:
    before = 'mcp_servers.github.command = "old"\nmcp_servers.other.command = "x"\n\n[tui]\nx = 1\n'
    text = edited(before, (("mcp_servers", "github", "args"), ["-y"]),
                  (("mcp_servers", "github", "env"), {"A": "1"}))
    assert tomllib.loads(text) == {"tui": {"x": 1}, "mcp_servers": {
        "github": {"command": "old", "args": ["-y"], "env": {"A": "1"}}, "other": {"command": "x"}}}
