"""The RbacMapping spec model: defaults, a complete spec, and every custom error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.models.rbac import (
    ArchiveLayout,
    Authority,
    FactSet,
    FilterOperator,
    RbacMapping,
    template_placeholders,
)

TARGET = {"databaseUrl": {"env": "RBAC_DATABASE_URL"}, "managedSchema": {}}
SOURCE = {"databaseUrl": {"env": "ARCHIVE_DATABASE_URL"}}
CATALOGUE = [{"name": "study:read"}, {"name": "study:export"}]
ROLES = [{"name": "study-reader", "permissions": ["study:read"]}]


def mapping(**spec: Any) -> dict[str, Any]:
    """A minimal valid RbacMapping document, with `spec` sections replaced or added."""
    base: dict[str, Any] = {"target": TARGET}
    base.update(spec)
    return {
        "apiVersion": "reconciler.dev/v1alpha1",
        "kind": "RbacMapping",
        "metadata": {"name": "archive-rbac"},
        "spec": base,
    }


def rule(**fields: Any) -> dict[str, Any]:
    """A valid derive rule on the series-institution facts, with fields replaced or added."""
    base: dict[str, Any] = {
        "name": "dept-readers",
        "facts": "series-institution",
        "subject": "dept:{institution}/{department}",
        "role": "study-reader",
    }
    base.update(fields)
    return base


def derived(*rules: dict[str, Any]) -> dict[str, Any]:
    return mapping(source=SOURCE, permissions=CATALOGUE, roles=ROLES, derive=list(rules))


def error_of(document: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        RbacMapping.model_validate(document)
    return str(info.value)


def test_minimal_spec_gets_defaults() -> None:
    spec = RbacMapping.model_validate(mapping()).spec
    assert spec.source is None
    assert (spec.permissions, spec.roles, spec.bindings, spec.derive) == ([], [], [], [])
    assert spec.target.managed_schema is not None
    assert spec.target.managed_schema.schema_name == "rbac"
    assert spec.target.existing_schema is None
    assert spec.sync.watermark_column == "created_time"
    assert spec.ownership.authority is Authority.OWNED
    assert spec.guards.max_revokes == "10%"
    assert spec.guards.allow_empty_facts is False


def test_source_layout_defaults_to_auto() -> None:
    spec = RbacMapping.model_validate(derived(rule())).spec
    assert spec.source is not None
    assert spec.source.layout is ArchiveLayout.AUTO


@pytest.mark.parametrize(("written", "layout"), [(5.35, ArchiveLayout.V5_35), (5.33, ArchiveLayout.V5_33),
                                                 ("5.31", ArchiveLayout.V5_31)])
def test_a_layout_written_as_a_number_is_the_version_it_spells(written: Any, layout: ArchiveLayout) -> None:
    """`layout: 5.35` unquoted, as the example's comment spells it, is a YAML number."""
    document = derived(rule())
    document["spec"]["source"] = {**SOURCE, "layout": written}
    spec = RbacMapping.model_validate(document).spec
    assert spec.source is not None and spec.source.layout is layout


def test_complete_spec_is_accepted_with_every_section() -> None:
    table = {"table": "app.roles", "columns": {"name": "role_name"}}
    document = mapping(
        source={"databaseUrl": {"file": "/run/secrets/archive"}, "layout": "5.35"},
        permissions=[{"name": "study:read", "description": "Read studies"}],
        roles=[{"name": "study-reader", "description": "Reads", "permissions": ["study:read"]}],
        bindings=[{"subject": "group:radiology", "role": "study-reader", "scope": "acl:CT1"}],
        derive=[
            rule(
                facts=None,
                query={"name": "acl_per_dept", "sql": "SELECT institution FROM series"},
                filters=[{"field": "institution", "operator": "notIn", "values": ["*"]}],
                scope="acl:{access_control_id}",
            )
        ],
        target={
            "databaseUrl": {"env": "RBAC_DATABASE_URL"},
            "existingSchema": {
                "tables": {
                    "roles": table,
                    "permissions": {"table": "permissions"},
                    "rolePermissions": {"table": "role_permissions"},
                    "subjects": {"table": "subjects"},
                    "bindings": {"table": "bindings", "columns": {"scope": "scope_id"}},
                }
            },
        },
        sync={"watermarkColumn": "updated_time"},
        ownership={"authority": "full"},
        guards={"maxRevokes": 50, "allowEmptyFacts": True},
    )
    spec = RbacMapping.model_validate(document).spec
    assert spec.source is not None and spec.source.layout is ArchiveLayout.V5_35
    assert spec.bindings[0].scope == "acl:CT1"
    assert spec.derive[0].query is not None and spec.derive[0].query.name == "acl_per_dept"
    assert spec.derive[0].filters[0].operator is FilterOperator.NOT_IN
    assert spec.target.existing_schema is not None
    assert spec.target.existing_schema.tables.roles.columns == {"name": "role_name"}
    assert spec.ownership.authority is Authority.FULL
    assert spec.guards.max_revokes == 50


def test_derive_rule_exposes_its_placeholders() -> None:
    spec = RbacMapping.model_validate(derived(rule(facts="study-access-control",
                                                   scope="acl:{access_control_id}"))).spec
    assert spec.derive[0].facts is FactSet.STUDY_ACCESS_CONTROL
    assert spec.derive[0].placeholders == {"institution", "department", "access_control_id"}


def test_template_braces_can_be_escaped_by_doubling() -> None:
    assert template_placeholders("{{literal}}:{name}") == ("name",)


def test_role_with_a_permission_outside_the_catalogue_names_both() -> None:
    roles = [{"name": "study-reader", "permissions": ["study:read", "study:delete"]}]
    message = error_of(mapping(permissions=CATALOGUE, roles=roles))
    assert (
        "expected role 'study-reader' to use permissions from the catalogue, got unknown "
        "permission 'study:delete'"
    ) in message


def test_static_binding_to_an_undeclared_role_is_refused() -> None:
    bindings = [{"subject": "group:radiology", "role": "admin"}]
    message = error_of(mapping(permissions=CATALOGUE, roles=ROLES, bindings=bindings))
    assert "expected binding of 'group:radiology' to name a declared role, got unknown role " in (
        message
    )
    assert "'admin'" in message


def test_derive_rule_with_a_literal_undeclared_role_is_refused() -> None:
    message = error_of(derived(rule(role="study-writer")))
    assert "expected derive rule 'dept-readers' to name a declared role" in message


def test_derive_rule_with_a_templated_role_is_not_checked_against_roles() -> None:
    spec = RbacMapping.model_validate(derived(rule(role="{department}-reader"))).spec
    assert spec.derive[0].role == "{department}-reader"


def test_duplicate_role_names_name_the_duplicate() -> None:
    roles = [{"name": "study-reader"}, {"name": "study-reader"}]
    assert "expected unique role names, got 'study-reader' twice" in error_of(mapping(roles=roles))


def test_duplicate_permission_names_name_the_duplicate() -> None:
    permissions = [{"name": "study:read"}, {"name": "study:read"}]
    message = error_of(mapping(permissions=permissions))
    assert "expected unique permission names, got 'study:read' twice" in message


def test_duplicate_derive_rule_names_name_the_duplicate() -> None:
    message = error_of(derived(rule(), rule()))
    assert "expected unique derive rule names, got 'dept-readers' twice" in message


def test_derive_rule_with_both_facts_and_query_is_refused() -> None:
    query = {"name": "q", "sql": "SELECT 1"}
    message = error_of(derived(rule(query=query)))
    assert "expected exactly one of facts or query in derive rule 'dept-readers', got both" in (
        message
    )


def test_derive_rule_with_neither_facts_nor_query_is_refused() -> None:
    message = error_of(derived(rule(facts=None)))
    assert "expected exactly one of facts or query in derive rule 'dept-readers', got neither" in (
        message
    )


def test_derive_rules_without_a_source_are_refused() -> None:
    document = mapping(permissions=CATALOGUE, roles=ROLES, derive=[rule()])
    assert "expected a source (the archive database) for derive rules" in error_of(document)


def test_query_with_two_statements_is_refused() -> None:
    query = {"name": "q", "sql": "SELECT 1; DROP TABLE study"}
    message = error_of(derived(rule(facts=None, query=query)))
    assert "expected a single SELECT statement, got several statements separated by ';'" in message


def test_query_that_does_not_start_with_select_is_refused() -> None:
    query = {"name": "q", "sql": "DELETE FROM study"}
    message = error_of(derived(rule(facts=None, query=query)))
    assert "expected a single read-only SELECT (or WITH ... SELECT), got a statement starting " in (
        message
    )
    assert "'delete'" in message


def test_query_with_a_writing_cte_is_refused() -> None:
    sql = "WITH gone AS (DELETE FROM study RETURNING pk) SELECT * FROM gone"
    message = error_of(derived(rule(facts=None, query={"name": "q", "sql": sql})))
    assert "expected a read-only SELECT, got the keyword 'DELETE'" in message


def test_query_with_a_trailing_semicolon_and_quoted_semicolons_is_accepted() -> None:
    sql = "WITH s AS (SELECT 'a;b' AS x) -- ; comment\nSELECT x FROM s;"
    spec = RbacMapping.model_validate(derived(rule(facts=None, query={"name": "q", "sql": sql})))
    query = spec.spec.derive[0].query
    assert query is not None and query.sql == sql


def test_template_with_unbalanced_braces_is_refused() -> None:
    message = error_of(derived(rule(subject="dept:{institution")))
    assert "expected balanced braces in template, got a lone '{'" in message


def test_template_with_a_stray_closing_brace_is_refused() -> None:
    message = error_of(derived(rule(scope="acl:}")))
    assert "expected balanced braces in template, got a lone '}'" in message


def test_template_placeholder_that_is_not_an_identifier_is_refused() -> None:
    message = error_of(derived(rule(subject="dept:{institution name}")))
    assert "expected placeholders such as {institution} (letters, digits, '_'), got " in message
    assert "{institution name}" in message


def test_equals_filter_with_several_values_is_refused() -> None:
    filters = [{"field": "institution", "operator": "equals", "values": ["A", "B"]}]
    message = error_of(derived(rule(filters=filters)))
    assert "expected exactly one value for operator equals, got 2 (use in / notIn" in message


def test_in_filter_without_values_is_refused() -> None:
    filters = [{"field": "institution", "operator": "in", "values": []}]
    message = error_of(derived(rule(filters=filters)))
    assert "expected at least one value for operator in, got none" in message


def test_matches_filter_with_a_bad_regular_expression_is_refused() -> None:
    filters = [{"field": "department", "operator": "matches", "values": ["(CT"]}]
    message = error_of(derived(rule(filters=filters)))
    assert "expected a regular expression for matches, got '(CT'" in message


def test_target_with_both_schemas_is_refused() -> None:
    tables = {
        name: {"table": name}
        for name in ("roles", "permissions", "rolePermissions", "subjects", "bindings")
    }
    target = {**TARGET, "existingSchema": {"tables": tables}}
    message = error_of(mapping(target=target))
    assert "expected exactly one of managedSchema or existingSchema in target, got both" in message


def test_target_with_neither_schema_is_refused() -> None:
    message = error_of(mapping(target={"databaseUrl": {"env": "RBAC_DATABASE_URL"}}))
    assert "expected exactly one of managedSchema or existingSchema in target, got neither" in (
        message
    )


def test_existing_table_name_with_three_parts_is_refused() -> None:
    tables = {
        name: {"table": "a.b.c" if name == "roles" else name}
        for name in ("roles", "permissions", "rolePermissions", "subjects", "bindings")
    }
    target = {"databaseUrl": {"env": "RBAC_DATABASE_URL"}, "existingSchema": {"tables": tables}}
    message = error_of(mapping(target=target))
    assert "expected a table name such as 'roles' or 'app.roles', got 'a.b.c'" in message


def test_role_name_with_spaces_is_refused() -> None:
    message = error_of(mapping(roles=[{"name": "study reader"}]))
    assert "expected a name of letters, digits" in message
    assert "got 'study reader'" in message


def test_unknown_layout_is_refused() -> None:
    document = derived(rule())
    document["spec"]["source"] = {**SOURCE, "layout": "5.20"}
    message = error_of(document)
    assert "spec.source.layout" in message
    assert "'pre-5.31'" in message


def test_unknown_fact_set_is_refused() -> None:
    message = error_of(derived(rule(facts="study-descriptions")))
    assert "'study-access-control'" in message


@pytest.mark.parametrize(("value", "refused"), [("150%", True), ("100.5%", True), ("100%", False),
                                                ("15%", False), (150, False)])
def test_max_revokes_is_at_most_all_of_them(value: Any, refused: bool) -> None:
    """`150%` cannot mean anything but a slip for `15%`: it let every revoke through."""
    document = mapping(guards={"maxRevokes": value})
    if refused:
        message = error_of(document)
        assert "spec.guards.maxRevokes" in message and "at most 100%" in message
    else:
        RbacMapping.model_validate(document)
