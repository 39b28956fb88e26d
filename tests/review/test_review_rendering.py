"""The pure parts of a pull-request review: which objects changed, and how the comment reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.models import Mode, ObjectRef
from reconciler.models.agents import AgentConfig
from reconciler.review.rendering import BLOCK, render_review_markdown
from reconciler.review.reviewing import Review, TargetReview
from reconciler.review.revisions import ObjectChange, RevisionDiff, SpecChange, diff_spec_sets
from reconciler.structs.plans import Action, Change, Counts, Plan
from reconciler.structs.runs import Outcome, RunResult, Trigger


def agent(name: str, servers: dict[str, Any], **meta: Any) -> AgentConfig:
    return AgentConfig.model_validate({
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig", "metadata": {"name": name, **meta},
        "spec": {"mcpServers": servers, "targets": [{"client": "claude-code", "scope": "user"}]}})


def spec_set(*objects: AgentConfig, revision: str) -> Any:
    from reconciler.loading.specs import SpecSet

    return SpecSet(objects=objects, origins={}, revision=revision)


def test_objects_are_matched_by_identity_and_compared_by_spec_labels_and_annotations() -> None:
    base = spec_set(agent("a", {"x": {"command": "x"}}), agent("b", {}), agent("c", {}),
                    agent("d", {}, labels={"team": "red"}), revision="b" * 40)
    head = spec_set(agent("a", {"x": {"command": "y"}}), agent("c", {}), agent("e", {}),
                    agent("d", {}, labels={"team": "blue"}), revision="h" * 40)
    diff = diff_spec_sets(base, head)
    assert [(c.ref.name, c.change) for c in diff.changes] == [
        ("a", ObjectChange.CHANGED), ("e", ObjectChange.ADDED), ("d", ObjectChange.CHANGED),
        ("b", ObjectChange.REMOVED)]
    assert [r.name for r in diff.unchanged] == ["c"]
    assert diff.changes[-1].head is None and diff.changes[-1].base is not None


def test_generation_and_status_are_not_changes() -> None:
    base = spec_set(agent("a", {"x": {"command": "x"}}), revision="b" * 40)
    head = spec_set(agent("a", {"x": {"command": "x"}}, generation=7), revision="h" * 40)
    diff = diff_spec_sets(base, head)
    assert diff.changes == () and [r.name for r in diff.unchanged] == ["a"]


def _result(plan: Plan, outcome: Outcome = Outcome.PLANNED, error: str | None = None) -> RunResult:
    now = datetime.now(UTC)
    return RunResult(run_id="r1", target=plan.target, trigger=Trigger.GIT, mode=Mode.FULL, dry_run=True,
                     outcome=outcome, counts=plan.counts, started_at=now, finished_at=now, plan=plan,
                     error=error)


def test_a_guard_that_would_trip_is_flagged_in_the_table_and_the_summary() -> None:
    ref = ObjectRef("AedSourceBinding", "default", "aed")
    changes = tuple(Change(Action.DELETE, f"k{i}", before={"v": i}, item="row") for i in range(5))
    plan = Plan(ref, changes=changes, totals=Counts(deleted=40_000, unchanged=41_464),
                warnings=("guard maxRowCountChange would abort the run: the table would shrink by 49%",))
    review = Review(RevisionDiff("b" * 40, "h" * 40, (), ()),
                    (TargetReview(SpecChange(ref, ObjectChange.CHANGED, None, None, None), _result(plan)),))
    text = render_review_markdown(review, max_changes=3)
    assert "⛔ **1 target(s) would be stopped by a guard**" in text
    row = "| ✏️ changed | AedSourceBinding | `aed` | 0 | 0 | 40,000 | 41,464 | ⚠️ guard maxRowCountChange"
    assert row in text
    assert '"guardsTripped": 1' in text
    block = text.split(BLOCK)[1]
    assert block.count("- row k") == 3 and "… and 39,997 more changes (first 3 shown)." in block


def test_a_failed_plan_is_an_error_with_its_message() -> None:
    ref = ObjectRef("AgentConfig", "default", "team")
    failed = _result(Plan(ref), Outcome.FAILED, "file ~/.claude.json:3:1: not valid JSON")
    review = Review(RevisionDiff("b" * 40, "h" * 40, (), ()),
                    (TargetReview(SpecChange(ref, ObjectChange.ADDED, None, None, None), failed),))
    assert review.summary()["errors"] == 1
    assert "❌ file ~/.claude.json:3:1: not valid JSON" in render_review_markdown(review)
