"""Plan renderers: text, Markdown and JSON from the same plans."""

from __future__ import annotations

import json

from reconciler.engine.rendering import render
from reconciler.models import ObjectRef
from reconciler.structs.plans import Change, Plan

PLAN = Plan(
    ObjectRef("AgentConfig", "default", "team"),
    (
        Change.create("a", {"v": 1}, item="key"),
        Change.update("b", {"v": 1}, {"v": 2}, item="key"),
        Change.delete("c", {"v": 3}, item="key"),
    ),
    unchanged=4,
    warnings=("codex cannot express sse",),
)


def test_text_shows_signs_field_diffs_and_totals() -> None:
    text = render([PLAN], "text")
    assert "AgentConfig/team: 1 to create, 1 to update, 1 to delete, 4 unchanged" in text
    assert "  + key a" in text and "  ~ key b" in text and "  - key c" in text
    assert "      v: 1 → 2" in text
    assert "  ! codex cannot express sse" in text
    assert text.endswith("Plan: 1 to create, 1 to update, 1 to delete.")


def test_text_says_when_nothing_changes() -> None:
    assert render([Plan(PLAN.target, unchanged=3)], "text").endswith(
        "No changes. The targets match the specs."
    )


def test_text_cuts_long_plans_with_a_count() -> None:
    big = Plan(PLAN.target, tuple(Change.create(f"k{i}", i) for i in range(30)))
    text = render([big], "text", max_changes=10)
    assert "k9" in text and "k10" not in text and "… and 20 more changes" in text


def test_markdown_has_a_counts_table_and_collapsible_details() -> None:
    markdown = render([PLAN], "markdown")
    assert "| `AgentConfig/team` | 1 | 1 | 1 | 4 | 0 | ⚠️ codex cannot express sse |" in markdown
    assert "<details><summary><code>AgentConfig/team</code>: 1 to create" in markdown
    assert "```diff\n+ key a\n~ key b\n!     v: 1 → 2\n- key c\n```" in markdown
    assert markdown.rstrip().endswith("</details>")


def test_markdown_fences_survive_backticks_in_values() -> None:
    plan = Plan(PLAN.target, (Change.update("k", {"v": "```"}, {"v": "x"}),))
    assert "````diff" in render([plan], "markdown")


def test_json_is_stable_and_complete() -> None:
    first = render([PLAN], "json")
    assert first == render([PLAN], "json")
    document = json.loads(first)
    assert document["formatVersion"] == 1 and document["changed"] is True
    assert document["totals"] == {"created": 1, "updated": 1, "deleted": 1, "unchanged": 4, "invalid": 0}
    assert document["plans"][0]["changes"][1]["fields"] == [{"path": "v", "before": 1, "after": 2}]
