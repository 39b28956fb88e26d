"""TomlDocument: edits of a Codex config.toml keep the user's bytes and the meaning of every
key the reconciler does not edit, whichever way the file spells its tables."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from reconciler.drivers.agents.documents import MISSING, ShapeError
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


def in_one_run(before: str, *edits: tuple[tuple[str, ...], Any]) -> str | None:
    """The text after several edits of one opened document, as one run makes them."""
    doc = TomlDocument(before, ".codex/config.toml")
    for path, value in edits:
        if value is None:
            doc.delete(path)
        else:
            doc.set(path, value)
    return doc.render()


ONE = '[mcp_servers.one]\ncommand = "one"\n'


@pytest.mark.parametrize("before", [
    '# mine\nmodel = "x"\n',
    f'# mine\nmodel = "x"\n\n{ONE}',
    f'{ONE}\n[tui]\nx = 1\n',
    f'{ONE}[tui]\nx = 1\n',  # no blank line between the tables
    'model = "x"\n\n',  # the file ends with a blank line
    'model = "x"',  # no line break at the end
    f'{ONE}\n# [mcp_servers.old]\n# command = "old"\n\n# the notice table\n[notice]\nx = true\n',
    f'[mcp_servers]\n{ONE}\n[mcp_servers.one.tools.t]\napproval_mode = "approve"\n',
])
def test_servers_added_then_removed_give_back_the_exact_bytes(before: str) -> None:
    two, three = ("mcp_servers", "two"), ("mcp_servers", "three")
    added = in_one_run(before, (two, {"command": "two"}), (three, GITHUB))
    assert added is not None
    assert tomllib.loads(added) == {**tomllib.loads(before), "mcp_servers": {
        **tomllib.loads(before).get("mcp_servers", {}), "two": {"command": "two"}, "three": GITHUB}}
    assert in_one_run(added, (two, None), (three, None)) == before
    assert edited(added, (three, None), (two, None)) == before
    # one run adds one server and removes the other, back and forth: nothing piles up
    swapped = edited(before, (two, {"command": "two"}), (three, {"command": "three"}), (two, None))
    assert in_one_run(swapped, (two, {"command": "two"}), (three, None)) == \
        edited(before, (two, {"command": "two"}))
    assert in_one_run(swapped, (three, None)) == before


def test_a_new_server_goes_after_the_last_one_not_under_the_next_tables_comment() -> None:
    before = (f'{ONE}args = ["-y"]\n\n[mcp_servers.one.env]\nA = "1"\n\n# history is not kept\n'
              '[history]\npersistence = "none"\n')
    assert edited(before, (("mcp_servers", "docs"), DOCS)) == (
        f'{ONE}args = ["-y"]\n\n[mcp_servers.one.env]\nA = "1"\n\n[mcp_servers.docs]\n'
        'url = "https://d.example/mcp"\n\n# history is not kept\n[history]\npersistence = "none"\n')


@pytest.mark.parametrize(("rest", "left"), [
    ('\n[tui]\nx = 1\n', 'model = "o3"\n\n[tui]\nx = 1\n'),
    ('', 'model = "o3"\n'),
])
def test_a_deleted_table_goes_whole_with_its_subtables_and_leaves_no_blank_line(rest: str, left: str) -> None:
    before = ('model = "o3"\n\n[mcp_servers.github]\ncommand = "old"\n\n'
              f'[mcp_servers.github.tools.search]\napproval_mode = "approve"\n{rest}')
    assert in_one_run(before, (("mcp_servers", "github"), None)) == left


@pytest.mark.parametrize(("before", "added"), [
    ('mcp_servers = {}\n', 'mcp_servers = {docs = {url = "https://d.example/mcp"}}\n'),
    ('mcp_servers = { }\n', 'mcp_servers = { docs = { url = "https://d.example/mcp" } }\n'),
    ('mcp_servers = {other={command="x"}}\n',
     'mcp_servers = {other={command="x"}, docs = {url = "https://d.example/mcp"}}\n'),
    ('[mcp_servers]\nother = { command = "x" }\n',
     '[mcp_servers]\nother = { command = "x" }\n\n[mcp_servers.docs]\nurl = "https://d.example/mcp"\n'),
])
def test_a_server_joins_an_inline_table_in_its_style(before: str, added: str) -> None:
    assert edited(before, (("mcp_servers", "docs"), DOCS)) == added
    assert tomllib.loads(added)["mcp_servers"]["docs"] == DOCS


def test_servers_added_to_an_inline_table_and_removed_leave_it_as_it_was() -> None:
    before = 'mcp_servers = {other={command="x"}}  # mine\n'
    added = edited(before, (("mcp_servers", "docs"), DOCS), (("mcp_servers", "github"), GITHUB))
    assert added == ('mcp_servers = {other={command="x"}, docs = {url = "https://d.example/mcp"}, github = '
                     '{command = "npx", args = ["-y", "gh"], env = {GITHUB_TOOLSETS = "repos"}}}  # mine\n')
    assert in_one_run(added, (("mcp_servers", "docs"), None), (("mcp_servers", "github"), None)) == before
    assert edited(added, (("mcp_servers", "github"), None), (("mcp_servers", "docs"), None)) == before


def test_a_server_of_an_inline_table_taken_over_keeps_its_place() -> None:
    other = 'other = { command = "x" } }\n'
    before = 'mcp_servers = { github = { command = "old", env = { A = "1" } }, ' + other
    github = ("mcp_servers", "github")
    text = in_one_run(before, ((*github, "command"), "npx"), ((*github, "args"), ["-y"]),
                      ((*github, "env"), None))
    assert text == 'mcp_servers = { github = { command = "npx", args = ["-y"] }, ' + other
    assert in_one_run(before, (github, None)) == "mcp_servers = { " + other


@pytest.mark.parametrize("before", ['[mcp_servers]\n', 'mcp_servers = {}\n', 'mcp_servers = { }\n',
                                    'x = 1\n\n[mcp_servers]\n[mcp_servers.other.tools.t]\na = 1\n'])
def test_a_container_emptied_then_kept_by_the_planner_keeps_its_bytes(before: str) -> None:
    srv = ("mcp_servers", "srv")
    added = edited(before, (srv, {"command": "x"}))
    doc = TomlDocument(added, ".codex/config.toml")
    doc.delete(srv)
    if doc.get(("mcp_servers",)) is MISSING:  # the planner puts back what the user had (`_keep_found`)
        doc.set(("mcp_servers",), {})
    assert doc.render() == before


def test_an_emptied_container_of_the_users_goes_when_the_planner_does_not_keep_it() -> None:
    doc = TomlDocument('model = "o3"\n\n[features]\nweb_search = true\n', ".codex/config.toml")
    doc.delete(("features", "web_search"))
    assert doc.get(("features",)) is MISSING
    assert doc.render() == 'model = "o3"\n'


def test_tables_a_deletion_empties_go_with_the_tables_above_them_it_empties() -> None:
    before = 'model = "o3"\n\n[features]\n\n[features.beta]\nweb_search = true\n'
    doc = TomlDocument(before, ".codex/config.toml")
    doc.delete(("features", "beta", "web_search"))
    assert doc.get(("features",)) is MISSING
    assert doc.render() == 'model = "o3"\n'


def test_an_edit_that_would_change_another_key_is_refused_where_it_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net under every edit: the new text is read back, and a placement that
    changes what other lines mean (here: finding 1's table between two dotted lines) is
    refused with the file, line and column, and the document stays as it was."""
    import reconciler.drivers.agents.tomldocument as module

    before = 'mcp_servers.other.command = "x"\nmcp_servers.github.command = "old"\n'
    misplaced = before.replace('"x"\n', '"x"\n[mcp_servers.docs]\nurl = "u"\n')
    monkeypatch.setattr(module, "add_entry", lambda text, path, value: misplaced)
    doc = TomlDocument(before, ".codex/config.toml")
    with pytest.raises(ShapeError) as refused:
        doc.set(("mcp_servers", "docs"), {"url": "u"})
    assert str(refused.value).startswith(".codex/config.toml:1:1: /mcp_servers/docs: this edit would change "
                                         "other keys of the file")
    assert doc.render() == before
