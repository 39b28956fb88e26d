"""An `RbacDelta` as the engine's `Plan`: typed changes, per subject, with the figures.

The plan lists the schema migrations, permissions, roles and role permissions first, then
one block per subject: the subject row if it is created, its grants (`+ binding …`) and
revocations (`- binding …`), the subject row if it is deleted — so a reviewer reads who
gains and loses what. `details.bySubject` has the same as data (`grant` / `revoke` lists
per subject) for JSON and Markdown consumers. Large deltas list a sample of the changes
(`SAMPLE`); the counts stay complete. The typed `RbacFacts` (and `details.bindings` for people) feed the
guards; `details.facts` says per rule how many distinct facts were read, from when, and
how many were skipped and why.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from reconciler.drivers.rbac.guards import RbacFacts
from reconciler.drivers.rbac.keys import (
    BindingKey,
    binding_key,
    grant_text,
    permission_key,
    role_key,
    role_permission_key,
    subject_key,
)
from reconciler.drivers.rbac.planning import RbacDelta
from reconciler.models import ObjectRef
from reconciler.structs.plans import Change, Counts, Plan

SAMPLE = 1000  # changes listed in a plan
SUBJECTS = 200  # subjects listed in details.bySubject


def _per_subject(delta: RbacDelta) -> list[Change]:
    grants: dict[str, list[BindingKey]] = defaultdict(list)
    revokes: dict[str, list[BindingKey]] = defaultdict(list)
    for b in delta.grant_bindings:
        grants[b[0]].append(b)
    for b in delta.revoke_bindings:
        revokes[b[0]].append(b)
    created, deleted = set(delta.create_subjects), set(delta.delete_subjects)
    changes: list[Change] = []
    for subject in sorted({*grants, *revokes, *created, *deleted}):
        if subject in created:
            changes.append(Change.create(subject_key(subject), None, item="subject"))
        changes += [Change.create(binding_key(b), None, item="binding") for b in grants.get(subject, ())]
        changes += [Change.delete(binding_key(b), None, item="binding") for b in revokes.get(subject, ())]
        if subject in deleted:
            changes.append(Change.delete(subject_key(subject), None, item="subject"))
    return changes


def delta_changes(delta: RbacDelta, schema: str | None) -> list[Change]:
    changes: list[Change] = [
        Change.create(f"schema:{schema}", {"version": v}, item="schema") for v in delta.migrations]
    for item, keyed, creates, updates, deletes in (
            ("permission", permission_key, delta.create_permissions, delta.update_permissions,
             delta.delete_permissions),
            ("role", role_key, delta.create_roles, delta.update_roles, delta.delete_roles)):
        changes += [Change.create(keyed(n), {"description": d}, item=item) for n, d in creates]
        changes += [Change.update(keyed(n), {"description": b}, {"description": a}, item=item)
                    for n, b, a in updates]
        changes += [Change.delete(keyed(n), None, item=item) for n in deletes]
    changes += [Change.create(role_permission_key(r, p), None, item="role-permission")
                for r, p in delta.grant_role_permissions]
    changes += [Change.delete(role_permission_key(r, p), None, item="role-permission")
                for r, p in delta.revoke_role_permissions]
    return changes + _per_subject(delta)


def by_subject(delta: RbacDelta) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"grant": [], "revoke": []})
    for b in delta.grant_bindings:
        out[b[0]]["grant"].append(grant_text(b))
    for b in delta.revoke_bindings:
        out[b[0]]["revoke"].append(grant_text(b))
    return {s: out[s] for s in sorted(out)[:SUBJECTS]}


def to_plan(delta: RbacDelta, *, target: ObjectRef, schema: str | None, details: dict[str, Any],
            warnings: tuple[str, ...], watermarks: dict[str, str],
            empty_rules: tuple[str, ...] = ()) -> Plan:
    changes = delta_changes(delta, schema)
    created = sum(1 for c in changes if c.action.value == "create")
    updated = sum(1 for c in changes if c.action.value == "update")
    totals = Counts(created=created, updated=updated, deleted=len(changes) - created - updated,
                    unchanged=delta.unchanged)
    facts = RbacFacts(grant=len(delta.grant_bindings), revoke=len(delta.revoke_bindings),
                      revocable=delta.revocable, empty_rules=tuple(empty_rules))
    figures = {**details.get("bindings", {}), "grant": facts.grant, "revoke": facts.revoke,
               "revocable": facts.revocable}
    details = {**details, "bySubject": by_subject(delta), "bindings": figures}
    if empty_rules:
        details["emptyRules"] = list(empty_rules)
    return Plan(target=target, changes=tuple(changes[:SAMPLE]), unchanged=delta.unchanged,
                warnings=(*warnings, *delta.warnings), details=details, watermarks=watermarks,
                totals=totals if len(changes) > SAMPLE else None, facts=facts)
