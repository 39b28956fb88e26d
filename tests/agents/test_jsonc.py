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


# --- reading only what an edit needs --------------------------------------------------------
# A 15 MB `~/.claude.json` (years of project history) took 19 s to plan: every edit parsed the
# whole file into nodes, twice. An edit now builds nodes only along its path (the rest read by
# the standard library's C decoder), and plain JSON is loaded by it: both must give exactly
# what the node-by-node parser gives.

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KEYS = st.sampled_from(["a", "b", "mcpServers", "perm", "x y", "ü"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(KEYS, inner, max_size=3)),
                      max_leaves=12)
DOCUMENTS = st.dictionaries(KEYS, VALUES, min_size=1, max_size=4)


def _texts(document: dict[str, object]) -> list[str]:
    """The document as users write it: pretty, minified, and with a comment (JSONC)."""
    pretty = json.dumps(document, indent=2, ensure_ascii=False)
    return [pretty, json.dumps(document, separators=(",", ":")), "// mine\n" + pretty]


def _whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The edits as they were: every parse builds the whole tree."""
    parse = jsonc.parse
    monkeypatch.setattr(jsonc, "parse", lambda text, **kw: parse(text, **{**kw, "along": None}))


@settings(max_examples=150, deadline=None)
@given(document=DOCUMENTS, path=st.lists(KEYS, min_size=1, max_size=3), value=VALUES)
def test_an_edit_along_its_path_is_the_edit_of_the_whole_tree(document: dict[str, object], path: list[str],
                                                              value: object) -> None:
    at = tuple(path)
    with pytest.MonkeyPatch.context() as patch:
        _whole(patch)
        expected = [(jsonc.set_value(t, at, value), jsonc.delete_value(t, at)) for t in _texts(document)]
    assert [(jsonc.set_value(t, at, value), jsonc.delete_value(t, at)) for t in _texts(document)] == expected


@settings(max_examples=100, deadline=None)
@given(document=DOCUMENTS, path=st.lists(KEYS, min_size=1, max_size=2),
       items=st.lists(st.text(max_size=4), max_size=3), remove=st.sets(st.integers(0, 3)))
def test_an_array_edit_along_its_path_is_the_edit_of_the_whole_tree(
        document: dict[str, object], path: list[str], items: list[str], remove: set[int]) -> None:
    at = tuple(path)
    for text in _texts(jsonc.loads(jsonc.set_value(json.dumps(document), at, ["k", 1, None, {"n": 2}]))):
        with pytest.MonkeyPatch.context() as patch:
            _whole(patch)
            expected = jsonc.edit_array(text, at, remove=remove, append=items)
        assert jsonc.edit_array(text, at, remove=remove, append=items) == expected


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": 1, "a": 2}', "duplicated key 'a'"),
    ('{"a": NaN}', "expected a value, got 'N'"),
    ('\ufeff{"a": 1}', None),
    ('{"a": [1, 2,]}', "trailing commas are not allowed"),
])
def test_what_plain_json_loading_refuses_goes_to_the_parser_and_its_messages(text: str,
                                                                             message: str | None) -> None:
    if message is None:
        assert jsonc.loads(text, grammar=jsonc.JSON) == {"a": 1}
        return
    with pytest.raises(jsonc.JsonSyntaxError, match=message):
        jsonc.loads(text, grammar=jsonc.JSON)


@settings(max_examples=100, deadline=None)
@given(document=DOCUMENTS, path=st.lists(KEYS, min_size=1, max_size=3), value=VALUES)
def test_a_documents_value_after_a_set_is_what_its_text_reads(document: dict[str, object], path: list[str],
                                                              value: object) -> None:
    """A set updates the value along its path instead of parsing the whole text again."""
    from reconciler.drivers.agents.documents import JsonDocument

    for text in _texts(document):
        doc = JsonDocument(text, ".cursor/mcp.json")  # JSONC: the commented spelling too
        doc.set(tuple(path), value)
        assert doc.get(()) == jsonc.loads(doc.text)
