"""The JSON(C) editor changes one member and keeps every other byte."""

from __future__ import annotations

import json

import pytest

from reconciler.drivers.agents import jsonc

SETTINGS = """{
  // user settings, hand written
  "model": "opus",   /* inline */
  "hooks": {"PreToolUse": [{"matcher": "Bash"}]},
  "permissions": {
    "allow": ["Read"],
    "deny": [],
  },
  "statusLine": {"type": "command", "command": "~/bin/status"}
}
"""


def test_parse_accepts_comments_and_trailing_commas() -> None:
    value = jsonc.loads(SETTINGS)
    assert value["model"] == "opus"
    assert value["permissions"] == {"allow": ["Read"], "deny": []}


def test_replacing_a_value_keeps_everything_else() -> None:
    out = jsonc.set_value(SETTINGS, ("permissions", "allow"), ["Read", "Bash(git status)"])
    assert jsonc.loads(out)["permissions"]["allow"] == ["Read", "Bash(git status)"]
    before, after = SETTINGS.split('"allow"'), out.split('"allow"')
    assert after[0] == before[0]  # every byte before the edited member
    assert after[1].split("]", 1)[1].startswith(before[1].split("]", 1)[1][:40])
    assert "// user settings, hand written" in out and "/* inline */" in out


def test_inserting_a_member_uses_the_neighbours_indentation() -> None:
    out = jsonc.set_value(SETTINGS, ("permissions", "ask"), ["Bash(git push *)"])
    assert '\n    "ask": [\n      "Bash(git push *)"\n    ]' in out
    assert out.startswith(SETTINGS[: SETTINGS.index('"deny": [],') + len('"deny": []')])


def test_creating_missing_parents_and_new_documents() -> None:
    out = jsonc.set_value('{"a": 1}', ("mcpServers", "x"), {"command": "y"})
    assert json.loads(out) == {"a": 1, "mcpServers": {"x": {"command": "y"}}}
    assert json.loads(jsonc.set_value("", ("k",), [1])) == {"k": [1]}
    assert json.loads(jsonc.set_value("{}", ("k",), 1)) == {"k": 1}


@pytest.mark.parametrize("key", ["model", "hooks", "statusLine"])
def test_deleting_a_member_leaves_valid_jsonc(key: str) -> None:
    out = jsonc.delete_value(SETTINGS, (key,))
    value = jsonc.loads(out)
    assert key not in value and len(value) == 3
    assert "// user settings, hand written" in out


def test_deleting_the_last_member_of_an_object() -> None:
    out = jsonc.delete_value('{\n  "a": {\n    "b": 1\n  }\n}\n', ("a", "b"))
    assert json.loads(out) == {"a": {}}
    assert jsonc.delete_value('{"a": 1}', ("missing",)) == '{"a": 1}'


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [('{\n  "a": 1\n  "b": 2\n}', 3, 3), ('{"a": }', 1, 7), ('{"a": 1', 1, 8), ("[1, 2", 1, 6)],
)
def test_syntax_errors_have_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(jsonc.JsonSyntaxError) as info:
        jsonc.loads(text)
    assert (info.value.line, info.value.column) == (line, column)


def test_inserting_after_a_member_with_a_line_comment_keeps_the_comment_in_place() -> None:
    text = '{\n  "mcpServers": {\n    "personal": {"command": "x"} // mine\n  }\n}\n'
    out = jsonc.set_value(text, ("mcpServers", "github"), {"command": "npx"})
    assert '"personal": {"command": "x"}, // mine\n    "github": {' in out
    assert jsonc.loads(out)["mcpServers"] == {"personal": {"command": "x"}, "github": {"command": "npx"}}
    trailing = '{\n  "a": 1, // one\n}\n'
    out = jsonc.set_value(trailing, ("b",), 2)
    assert out == '{\n  "a": 1, // one\n  "b": 2,\n}\n'
    assert jsonc.delete_value(out, ("b",)) == trailing
