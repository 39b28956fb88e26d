"""The pure diff: plain values in, an RbacDelta out; no database, no files."""

from __future__ import annotations

from typing import Any

from reconciler.drivers.rbac.changes import to_plan
from reconciler.drivers.rbac.keys import binding_key, role_key, subject_key
from reconciler.drivers.rbac.planning import (
    Desired,
    Named,
    Ownership,
    TargetRows,
    desired_state,
    plan_delta,
)
from reconciler.drivers.rbac.templating import Derivation
from reconciler.models import ObjectRef
from reconciler.models.rbac import RbacMapping

OURS = "reconciler:RbacMapping/default/m"
ALL = frozenset({"permissions", "roles", "role_permissions", "subjects", "bindings"})
A = ("dept:A/RAD", "reader", "acl:1")
B = ("dept:B/CARD", "reader", "acl:2")
C = ("dept:B/CARD", "reader", "acl:3")


def desired(*bindings: tuple[str, str, str | None]) -> Desired:
    return Desired(permissions={"read": ""}, roles={"reader": ""},
                   role_permissions=frozenset({("reader", "read")}), bindings=frozenset(bindings))


def target(bindings: dict[tuple[str, str, str | None], str | None], **rows: Any) -> TargetRows:
    subjects = {b[0]: OURS for b in bindings}
    subjects.update(rows.pop("subjects", {}))
    return TargetRows(permissions=rows.pop("permissions", {"read": Named("", OURS)}),
                      roles=rows.pop("roles", {"reader": Named("", OURS)}),
                      role_permissions=rows.pop("role_permissions", {("reader", "read"): OURS}),
                      subjects=subjects, bindings=bindings, bindings_total=len(bindings), marked=ALL, **rows)


def owned(*keys: str) -> Ownership:
    base = {"permission:read", "role:reader", "role-permission:reader/read"}
    return Ownership(inventory=frozenset(base | set(keys)), marker=OURS)


def test_missing_bindings_are_granted_with_their_subjects() -> None:
    delta = plan_delta(desired(A, B), target({A: OURS}), owned(binding_key(A), subject_key(A[0])), full=True)
    assert delta.grant_bindings == (B,)
    assert delta.create_subjects == ("dept:B/CARD",)
    assert delta.revoke_bindings == () and delta.unchanged == 1 + 1 + 1 + 1


def test_full_run_revokes_owned_bindings_and_the_subject_with_its_last_one() -> None:
    delta = plan_delta(desired(A), target({A: OURS, B: OURS, C: OURS}),
                       owned(*(binding_key(x) for x in (A, B, C)), subject_key(A[0]), subject_key(B[0])),
                       full=True)
    assert delta.revoke_bindings == (B, C)
    assert delta.delete_subjects == ("dept:B/CARD",)
    assert delta.revocable == 3


def test_a_subject_with_a_foreign_binding_keeps_its_row() -> None:
    rows = target({B: OURS, C: "someone-else"})
    delta = plan_delta(desired(), rows, owned(binding_key(B), subject_key(B[0])), full=True)
    assert delta.revoke_bindings == (B,)
    assert delta.delete_subjects == ()


def test_rows_another_writer_marked_or_unmarked_are_never_revoked() -> None:
    rows = target({B: "someone-else", C: None})
    delta = plan_delta(desired(), rows, owned(binding_key(B), binding_key(C)), full=True)
    assert delta.revoke_bindings == ()  # in the inventory, but the marker says they changed hands
    assert delta.revocable == 0


def test_without_a_marker_column_the_inventory_decides() -> None:
    rows = TargetRows(roles={"reader": Named(None, None)}, subjects={"dept:A/RAD": None, "dept:B/CARD": None},
                      bindings={A: None, B: None}, bindings_total=2, marked=frozenset())
    delta = plan_delta(desired(), rows, Ownership(frozenset({binding_key(A)}), OURS), full=True)
    assert delta.revoke_bindings == (A,)


def test_on_a_marked_table_the_marker_decides() -> None:
    rows = target({A: OURS, B: "someone-else", C: OURS})
    delta = plan_delta(desired(), rows, owned(binding_key(B), binding_key(C)), full=True)
    assert delta.revoke_bindings == (A, C)  # A: our marker, a store that lost it; B: their marker
    assert binding_key(A) not in delta.adopt  # only desired rows are adopted


def test_incremental_never_revokes_or_deletes() -> None:
    delta = plan_delta(desired(C), target({A: OURS, B: OURS}), owned(binding_key(A), binding_key(B)),
                       full=False)
    assert delta.grant_bindings == (C,)
    assert (delta.revoke_bindings, delta.delete_subjects, delta.delete_roles) == ((), (), ())


def test_full_authority_takes_foreign_rows_too() -> None:
    delta = plan_delta(desired(), target({A: "someone-else", B: None}),
                       Ownership(frozenset(), OURS, full_authority=True), full=True)
    assert set(delta.revoke_bindings) == {A, B}


def test_an_undeclared_role_still_used_by_a_foreign_binding_stays_whole() -> None:
    rows = target({("user:kim", "old", None): "someone-else", ("user:lee", "old", None): OURS},
                  roles={"reader": Named("", OURS), "old": Named("", OURS)})
    delta = plan_delta(desired(), rows, owned(role_key("old"), binding_key(("user:lee", "old", None))),
                       full=True)
    assert delta.revoke_bindings == (("user:lee", "old", None),)
    assert delta.delete_roles == ()
    assert any("role 'old' is no longer declared" in w for w in delta.warnings)
    # whole: the foreign binding keeps granting what it granted (the role's permissions)
    held = target({("user:kim", "old", None): "someone-else"},
                  roles={"reader": Named("", OURS), "old": Named("", OURS)},
                  permissions={"read": Named("", OURS), "export": Named("", OURS)},
                  role_permissions={("reader", "read"): OURS, ("old", "export"): OURS})
    kept = plan_delta(desired(), held, owned(role_key("old"), "permission:export",
                                             "role-permission:old/export"), full=True)
    assert (kept.delete_roles, kept.revoke_role_permissions, kept.delete_permissions) == ((), (), ())
    alone = plan_delta(desired(), target({("user:lee", "old", None): OURS},
                                         roles={"reader": Named("", OURS), "old": Named("", OURS)}),
                       owned(role_key("old"), binding_key(("user:lee", "old", None))), full=True)
    assert alone.delete_roles == ("old",)


def test_a_foreign_role_with_another_description_is_used_but_not_rewritten() -> None:
    rows = target({}, roles={"reader": Named("theirs", "someone-else")})
    delta = plan_delta(desired(A), rows, owned(), full=True)
    assert delta.update_roles == () and delta.create_roles == ()
    assert delta.grant_bindings == (A,)
    assert any("role 'reader' exists but was not written by this mapping" in w for w in delta.warnings)


def test_an_owned_description_change_is_an_update() -> None:
    rows = target({}, roles={"reader": Named("old text", OURS)})
    delta = plan_delta(Desired({"read": ""}, {"reader": "new text"}, frozenset({("reader", "read")}),
                               frozenset()), rows, owned(), full=True)
    assert delta.update_roles == (("reader", "old text", "new text"),)


def test_rows_with_our_marker_missing_from_the_inventory_are_adopted() -> None:
    delta = plan_delta(desired(A), target({A: OURS}), Ownership(frozenset(), OURS), full=True)
    assert {binding_key(A), subject_key(A[0]), role_key("reader")} <= set(delta.adopt)
    assert delta.empty


def test_a_new_managed_schema_is_a_migration_and_everything_is_created() -> None:
    delta = plan_delta(desired(A), TargetRows(migrations=(1,), marked=ALL), owned(), full=True)
    assert delta.migrations == (1,)
    assert delta.create_roles == (("reader", ""),) and delta.grant_bindings == (A,)


def test_desired_state_merges_static_and_derived_bindings_and_skips_unusable_keys() -> None:
    spec = RbacMapping.model_validate({
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "RbacMapping", "metadata": {"name": "m"},
        "spec": {"permissions": [{"name": "read"}], "roles": [{"name": "reader", "permissions": ["read"]}],
                 "bindings": [{"subject": "group:x", "role": "reader"}],
                 "target": {"databaseUrl": {"env": "X"}, "managedSchema": {}}}}).spec
    # a static subject that cannot be a key is refused by validation; one made from facts here
    spec = spec.model_copy(update={"bindings": [*spec.bindings, spec.bindings[0].model_copy(
        update={"subject": "group:a → b"})]})
    state = desired_state(spec, (Derivation("r", 2, frozenset({A})),))
    assert state.bindings == {("group:x", "reader", None), A}
    assert state.role_permissions == {("reader", "read")}
    assert len(state.invalid) == 1 and "group:a → b" in state.invalid[0]


def test_the_plan_groups_changes_per_subject_and_counts_everything() -> None:
    delta = plan_delta(desired(A, B), target({C: OURS}), owned(binding_key(C), subject_key(C[0])), full=True)
    plan = to_plan(delta, target=ObjectRef("RbacMapping", "default", "m"), schema="rbac", details={},
                   warnings=(), watermarks={})
    assert [(c.action.value, c.key) for c in plan.changes] == [
        ("create", "subject:dept:A/RAD"), ("create", binding_key(A)),
        ("create", binding_key(B)), ("delete", binding_key(C))]
    assert plan.details["bySubject"]["dept:B/CARD"] == {"grant": ["reader @ acl:2"],
                                                        "revoke": ["reader @ acl:3"]}
    assert plan.details["bindings"] == {"grant": 2, "revoke": 1, "revocable": 1}
    assert (plan.counts.created, plan.counts.deleted) == (3, 1)


def test_drift_is_what_the_delta_puts_back_of_hand_edits() -> None:
    from reconciler.drivers.rbac.planning import drift, written_descriptions

    wanted = Desired(permissions={"read": ""}, roles={"reader": "Reads"},
                     role_permissions=frozenset({("reader", "read")}), bindings=frozenset({A, B}))
    rows = target({A: OURS, C: OURS}, roles={"reader": Named("HACKED", OURS)})
    own = owned(binding_key(A), binding_key(B), subject_key(A[0]), subject_key(B[0]))
    delta = plan_delta(wanted, rows, own, full=True)
    written = written_descriptions(wanted)
    assert set(drift(delta, own.inventory, written)) == {binding_key(B), binding_key(C), role_key("reader")}
    # the description changed in the spec since the last run: a change, not drift
    assert role_key("reader") not in drift(delta, own.inventory, {})
    # a store that knows nothing of the mapping: no drift to tell
    assert drift(delta, frozenset(), written) == ()
