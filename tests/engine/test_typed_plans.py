"""Plans carry typed facts, an explicit mode and an apply handle (no dict side channel)."""

from __future__ import annotations

import pytest

from reconciler.drivers.aed.guards import AedFacts, AllNullColumns, EmptySource, RowCountChange
from reconciler.drivers.rbac.guards import EmptyFacts, MaxRevokes, RbacFacts
from reconciler.errors import GuardAborted
from reconciler.models import ObjectRef
from reconciler.structs.plans import Plan, PlanMode

REF = ObjectRef("AedSourceBinding", "default", "aed")
CTX = None  # the guards read only the plan


def test_a_guard_never_passes_on_figures_it_cannot_read() -> None:
    # Before: `details.get("activeRows", 0)` read a renamed or missing figure as 0: the
    # maxRowCountChange guard then passed silently. Now the figures are typed.
    plan = Plan(target=REF, details={"activeRows": 1000, "validRows": 1})  # a dict, not facts
    with pytest.raises(TypeError, match="expected AedFacts"):
        RowCountChange("5%").check(plan, CTX)  # type: ignore[arg-type]


def test_aed_guards_read_typed_facts_and_skip_rollback_plans() -> None:
    facts = AedFacts(current_rows=1000, active_rows=1000, source_rows=10, valid_rows=10, pages=1,
                     null_columns=("sido",))
    plan = Plan(target=REF, facts=facts)
    for guard in (RowCountChange("5%"), AllNullColumns()):
        with pytest.raises(GuardAborted):
            guard.check(plan, CTX)  # type: ignore[arg-type]
    rollback = Plan(target=REF, mode=PlanMode.ROLLBACK)  # no pull: nothing to check
    for guard in (RowCountChange("5%"), AllNullColumns(), EmptySource()):
        guard.check(rollback, CTX)  # type: ignore[arg-type]


def test_rbac_guards_read_typed_facts() -> None:
    plan = Plan(target=REF, facts=RbacFacts(grant=0, revoke=50, revocable=100, empty_rules=("studies",)))
    for guard in (MaxRevokes("10%"), EmptyFacts()):
        with pytest.raises(GuardAborted):
            guard.check(plan, CTX)  # type: ignore[arg-type]


def test_the_apply_handle_is_never_compared_or_shown() -> None:
    a = Plan(target=REF, handle={"file": {"after": "secret text"}})
    b = Plan(target=REF, handle=None)
    assert a == b and "secret text" not in repr(a)
