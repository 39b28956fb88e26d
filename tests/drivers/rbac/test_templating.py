"""From fact rows to bindings: templates, unknown values, declared roles, matches filters (pure)."""

from __future__ import annotations

from typing import Any

from reconciler.drivers.rbac.templating import derive, render
from reconciler.models.rbac import DeriveRule

ROLES = frozenset({"study-reader", "CT-reader"})


def rule(**fields: Any) -> DeriveRule:
    base: dict[str, Any] = {"name": "r", "facts": "series-access-control",
                            "subject": "dept:{institution}/{department}", "role": "study-reader",
                            "scope": "acl:{access_control_id}"}
    base.update(fields)
    return DeriveRule.model_validate(base)


COLUMNS = ("access_control_id", "department", "institution")


def test_render_fills_placeholders_and_keeps_doubled_braces() -> None:
    assert render("{{x}}:{a}/{b}", {"a": "1", "b": "2"}) == "{x}:1/2"


def test_facts_become_distinct_bindings() -> None:
    rows = [("ACL-1", "RAD", "SEOUL"), ("ACL-2", "RAD", "SEOUL"), ("ACL-1", "RAD", "SEOUL")]
    result = derive(rule(), COLUMNS, rows, ROLES)
    assert result.bindings == {("dept:SEOUL/RAD", "study-reader", "acl:ACL-1"),
                               ("dept:SEOUL/RAD", "study-reader", "acl:ACL-2")}
    assert result.facts == 3 and result.skipped == 0


def test_star_null_and_empty_values_are_unknown_and_never_bind() -> None:
    rows = [("*", "RAD", "SEOUL"), (None, "RAD", "SEOUL"), ("ACL-1", "", "SEOUL"), ("ACL-1", "*", "*")]
    result = derive(rule(), COLUMNS, rows, ROLES)
    assert result.bindings == frozenset()
    assert result.unknown == 4
    assert "unknown" in result.samples[0]


def test_a_templated_role_must_be_declared() -> None:
    columns = ("modality",)
    result = derive(rule(subject="modality:{modality}", role="{modality}-reader", scope=None),
                    columns, [("CT",), ("MR",)], ROLES)
    assert result.bindings == {("modality:CT", "CT-reader", None)}
    assert result.undeclared == 1 and "'MR-reader' is not declared" in result.samples[0]


def test_matches_filters_run_on_the_distinct_rows() -> None:
    filters = [{"field": "department", "operator": "matches", "values": ["^RAD", "LOGY$"]}]
    rows = [("A", "RADIOLOGY", "S"), ("A", "CARDIOLOGY", "S"), ("A", "EMERGENCY", "S"), ("A", None, "S")]
    result = derive(rule(filters=filters), COLUMNS, rows, ROLES)
    assert {b[0] for b in result.bindings} == {"dept:S/RADIOLOGY", "dept:S/CARDIOLOGY"}
    assert result.filtered == 2


def test_a_subject_that_cannot_be_a_key_is_skipped() -> None:
    result = derive(rule(subject="{institution}"), COLUMNS, [("A", "R", "x → y"), ("A", "R", " pad")], ROLES)
    assert result.bindings == frozenset() and result.invalid == 2


def test_a_rule_without_placeholders_binds_once_when_any_fact_matches() -> None:
    result = derive(rule(subject="group:ct-users", scope=None), (), [(1,)], ROLES)
    assert result.bindings == {("group:ct-users", "study-reader", None)}
    assert derive(rule(subject="group:ct-users", scope=None), (), [], ROLES).bindings == frozenset()
