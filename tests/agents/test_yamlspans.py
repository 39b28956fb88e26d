"""YAML edited by spans: flow collections keep the user's items, written scalars read back
the same in every YAML reader (PyYAML's YAML 1.1 and ruamel's 1.2, block and flow context)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ruamel.yaml import YAML

from reconciler.drivers.agents.documents import ListEdit, YamlDocument

COMMANDS = ("toolPermissions", "bash", "commands")
RM = {"command": "rm -rf( .*)?", "permission": "deny"}
# A flow list as people write it: quotes where they chose them, `#`, `: `, `{` inside strings.
FLOW = ('toolPermissions:\n  bash:\n    commands: [{command: "ls.*", permission: allow}, '
        '{command: "echo (a|b){1,3}", permission: deny}, {command: "git log: .*", permission: allow}, '
        "{command: '#x', permission: deny}]\n")
FLOW_ITEMS = [{"command": "ls.*", "permission": "allow"},
              {"command": "echo (a|b){1,3}", "permission": "deny"},
              {"command": "git log: .*", "permission": "allow"}, {"command": "#x", "permission": "deny"}]


def readings(text: str) -> tuple[Any, Any]:
    """The text as PyYAML (YAML 1.1, what many Python tools use) and ruamel (1.2) read it."""
    return yaml.safe_load(text), YAML(typ="safe", pure=True).load(text)


def edited(text: str, change: Any) -> str:
    doc = YamlDocument(text, "config.yml")
    change(doc)
    out = doc.render()
    assert out is not None
    return out


def test_appending_to_a_flow_list_keeps_every_item_of_the_user_byte_for_byte() -> None:
    out = edited(FLOW, lambda doc: doc.edit_list(COMMANDS, ListEdit(append=(RM,))))
    assert out == FLOW.replace("deny}]\n", "deny}, {command: 'rm -rf( .*)?', permission: deny}]\n")
    want = {"toolPermissions": {"bash": {"commands": [*FLOW_ITEMS, RM]}}}
    assert readings(out) == (want, want)


def test_removing_and_replacing_in_a_flow_list_leave_the_other_items_as_written() -> None:
    text = FLOW.replace("deny}]\n", "deny}, {command: 'rm -rf( .*)?', permission: deny}]\n")
    removed = edited(text, lambda doc: doc.edit_list(COMMANDS, ListEdit(remove=frozenset({4}))))
    assert removed == FLOW
    first = edited(FLOW, lambda doc: doc.edit_list(COMMANDS, ListEdit(remove=frozenset({0}))))
    assert first == FLOW.replace('{command: "ls.*", permission: allow}, ', "")
    swapped = edited(FLOW, lambda doc: doc.edit_list(COMMANDS, ListEdit(replace={1: RM})))
    assert swapped == FLOW.replace('{command: "echo (a|b){1,3}", permission: deny}',
                                   "{command: 'rm -rf( .*)?', permission: deny}")


def test_a_list_written_into_an_empty_flow_mapping_reads_back_in_every_reader() -> None:
    out = edited("toolPermissions: {}\n", lambda doc: doc.edit_list(COMMANDS, ListEdit(append=(RM,))))
    assert out == "toolPermissions: {bash: {commands: [{command: 'rm -rf( .*)?', permission: deny}]}}\n"
    want = {"toolPermissions": {"bash": {"commands": [RM]}}}
    assert readings(out) == (want, want)


def test_a_key_added_to_a_flow_mapping_keeps_the_other_entries_as_written() -> None:
    text = 'toolPermissions: {tools: {grep: "allow"}, default: ask}  # mine\n'
    out = edited(text, lambda doc: doc.set(("toolPermissions", "tools", "open_files"), "allow"))
    assert out == 'toolPermissions: {tools: {grep: "allow", open_files: allow}, default: ask}  # mine\n'
    gone = edited(out, lambda doc: doc.delete(("toolPermissions", "tools", "grep")))
    assert gone == "toolPermissions: {tools: {open_files: allow}, default: ask}  # mine\n"
    listed = edited(text, lambda doc: doc.edit_list(COMMANDS, ListEdit(append=(RM,))))
    assert listed == ('toolPermissions: {tools: {grep: "allow"}, default: ask, '
                      "bash: {commands: [{command: 'rm -rf( .*)?', permission: deny}]}}  # mine\n")


@pytest.mark.parametrize("command", [
    "rm -rf( .*)?", "git log: .*", "a, b", "[x]", "{y}", "#x", "x #y", "? x", "yes", "on", "1:20", "~",
    "null", "0o17", "1e3", "*star", "&amp", "!tag", "%pct", "@at", "`tick", "|pipe", ">gt", "'q", '"q',
    "- dash", "-x", " lead", "trail ", "tab\tin", "=", "<<",
])
def test_written_strings_read_back_the_same_in_block_and_flow_context(command: str) -> None:
    item = {"command": command, "permission": "deny"}
    for text in ("toolPermissions:\n  bash:\n    commands:\n    - command: ls\n      permission: allow\n",
                 "toolPermissions:\n  bash:\n    commands: [{command: ls, permission: allow}]\n",
                 "toolPermissions: {}\n"):
        out = edited(text, lambda doc, item=item: doc.edit_list(COMMANDS, ListEdit(append=(item,))))
        got = [readings(out)[i]["toolPermissions"]["bash"]["commands"][-1] for i in (0, 1)]
        assert got == [item, item], out


def test_a_file_that_only_ruamel_reads_is_still_edited_around_the_users_bytes() -> None:
    # An unquoted `?` in a flow collection (as an earlier version wrote it): ruamel reads it,
    # PyYAML refuses the whole file. The user's bytes are theirs, so they stay; what is added
    # is written for both readers.
    text = "toolPermissions: {bash: {commands: [{command: rm -rf( .*)?, permission: deny}]}}\n"
    out = edited(text, lambda doc: doc.set(("toolPermissions", "default"), "ask"))
    assert out == text.replace("]}}", "]}, default: ask}")


def test_a_scalar_inside_a_flow_mapping_is_replaced_in_place() -> None:
    out = edited("toolPermissions: {default: ask, tools: {}}  # mine\n",
                 lambda doc: doc.set(("toolPermissions", "default"), "allow"))
    assert out == "toolPermissions: {default: allow, tools: {}}  # mine\n"
