"""Changes and plans: field diffs, counts, masking — pure values, no I/O."""

from __future__ import annotations

from reconciler.models import ObjectRef
from reconciler.structs.plans import Action, Change, FieldChange, Plan, field_changes

TARGET = ObjectRef("KeyValueStore", "default", "t")


def test_field_changes_lists_nested_leaves_in_path_order() -> None:
    before = {"a": 1, "b": {"c": [1, 2], "d": "x"}, "gone": True}
    after = {"a": 2, "b": {"c": [1, 3], "d": "x"}, "new": "y"}
    assert field_changes(before, after) == (
        FieldChange("a", 1, 2),
        FieldChange("b.c[1]", 2, 3),
        FieldChange("gone", True, None),
        FieldChange("new", None, "y"),
    )


def test_field_changes_of_equal_values_is_empty() -> None:
    assert field_changes({"a": [1]}, {"a": [1]}) == ()


def test_scalar_values_change_as_a_whole() -> None:
    assert field_changes("old", "new") == (FieldChange("", "old", "new"),)


def test_plan_counts_by_action() -> None:
    plan = Plan(TARGET, (Change.create("a", 1), Change.update("b", 1, 2), Change.delete("c", 3),
                         Change.create("d", 4)), unchanged=5, invalid=1)
    counts = plan.counts
    assert (counts.created, counts.updated, counts.deleted, counts.unchanged, counts.invalid) == (
        2, 1, 1, 5, 1)
    assert plan.has_changes and counts.changed == 4


def test_masked_replaces_secrets_everywhere_and_returns_a_new_plan() -> None:
    plan = Plan(TARGET, (Change.update("k", {"url": "p@ss"}, {"url": "p@ss2"}),),
                warnings=("saw p@ss",))
    masked = plan.masked(lambda s: s.replace("p@ss", "***"))
    change = masked.changes[0]
    assert change.before == {"url": "***"} and change.after == {"url": "***2"}
    assert change.fields[0].after == "***2"
    assert masked.warnings == ("saw ***",)
    assert plan.changes[0].before == {"url": "p@ss"}
    assert change.action is Action.UPDATE
