"""The pure diff: desired roles, permissions and bindings against the rows the target holds.

Inputs are values — what the spec and the archive's facts want (`Desired`), what the RBAC
database holds (`TargetRows`, names and markers, read by `target.py`) and who owns what
(`Ownership`) — and the output is an `RbacDelta`: every row to create, update, grant,
revoke or delete, in full, plus the figures the guards read. No I/O; tested with plain
values.

Ownership (`Ownership.owns`): under `authority: owned` a row is the reconciler's when,
where the table has a `managed_by` column, the marker names this RbacMapping (the target
itself carries the claim, as Kubernetes objects carry their manager's label: a new or
reset store, a CI runner's, changes nothing), and otherwise when its key is in the
store's inventory of what this mapping wrote. Only such rows are updated or deleted; a
row anyone else wrote is left as it is, even when the spec no longer wants it, and a
declared role or permission that exists as someone else's row is used but not rewritten
(a warning says so). A marked row missing from the inventory is recorded in it again
(adopted back). `authority: full` makes every row the reconciler's.

Modes: a full run compares the whole desired set with the whole target and revokes what
is no longer wanted. An incremental run knows only the facts of new studies, so it only
creates and grants; revocations wait for the next full run. Deletions are ordered so
nothing is left half-removed (ldap2pg #422): a subject is deleted only with its last
binding, a role or permission only when no row still references it — otherwise it stays,
whole, and the plan warns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from reconciler.drivers.rbac.keys import (
    BindingKey,
    binding_key,
    permission_key,
    role_key,
    role_permission_key,
    subject_key,
    usable,
)
from reconciler.drivers.rbac.templating import Derivation
from reconciler.models.rbac import RbacMappingSpec


@dataclass(frozen=True, slots=True)
class Named:
    """A role or permission row: its description (None without the column) and marker."""

    description: str | None = None
    marker: str | None = None


@dataclass(frozen=True, slots=True)
class TargetRows:
    """What the RBAC database holds, by name. In an incremental run, `subjects` and
    `bindings` hold only the rows the run could grant (`complete` is False)."""

    permissions: Mapping[str, Named] = field(default_factory=dict)
    roles: Mapping[str, Named] = field(default_factory=dict)
    role_permissions: Mapping[tuple[str, str], str | None] = field(default_factory=dict)
    subjects: Mapping[str, str | None] = field(default_factory=dict)
    bindings: Mapping[BindingKey, str | None] = field(default_factory=dict)
    bindings_total: int = 0
    complete: bool = True
    marked: frozenset[str] = frozenset()  # logical tables with a managed_by column
    migrations: tuple[int, ...] = ()  # managed schema versions still to apply


@dataclass(frozen=True, slots=True)
class Desired:
    permissions: Mapping[str, str]  # name → description
    roles: Mapping[str, str]
    role_permissions: frozenset[tuple[str, str]]
    bindings: frozenset[BindingKey]
    invalid: tuple[str, ...] = ()  # static bindings that cannot be keys


def desired_state(spec: RbacMappingSpec, derivations: tuple[Derivation, ...] = ()) -> Desired:
    """The spec's declarations plus the bindings its derive rules made of the facts."""
    bindings: set[BindingKey] = set()
    invalid: list[str] = []
    for b in spec.bindings:
        if usable(b.subject) and (b.scope is None or usable(b.scope)):
            bindings.add((b.subject, b.role, b.scope))
        else:
            invalid.append(f"static binding {b.subject!r} → {b.role} cannot be a key (empty, padded, or "
                           "holding ' → ' or ' @ '); skipped")
    for derivation in derivations:
        bindings |= derivation.bindings
    return Desired(
        permissions={p.name: p.description for p in spec.permissions},
        roles={r.name: r.description for r in spec.roles},
        role_permissions=frozenset((r.name, p) for r in spec.roles for p in r.permissions),
        bindings=frozenset(bindings), invalid=tuple(invalid))


@dataclass(frozen=True, slots=True)
class Ownership:
    inventory: frozenset[str]
    marker: str
    full_authority: bool = False

    def owns(self, key: str, marker: str | None, *, marked: bool) -> bool:
        if self.full_authority:
            return True
        return marker == self.marker if marked else key in self.inventory

    def adoptable(self, key: str, marker: str | None, *, marked: bool) -> bool:
        """Ours by the marker, but missing from the inventory."""
        return marked and marker == self.marker and key not in self.inventory


@dataclass(frozen=True, slots=True)
class RbacDelta:
    migrations: tuple[int, ...] = ()
    create_permissions: tuple[tuple[str, str], ...] = ()  # (name, description)
    update_permissions: tuple[tuple[str, str | None, str], ...] = ()  # (name, before, after)
    delete_permissions: tuple[str, ...] = ()
    create_roles: tuple[tuple[str, str], ...] = ()
    update_roles: tuple[tuple[str, str | None, str], ...] = ()
    delete_roles: tuple[str, ...] = ()
    grant_role_permissions: tuple[tuple[str, str], ...] = ()
    revoke_role_permissions: tuple[tuple[str, str], ...] = ()
    create_subjects: tuple[str, ...] = ()
    delete_subjects: tuple[str, ...] = ()
    grant_bindings: tuple[BindingKey, ...] = ()
    revoke_bindings: tuple[BindingKey, ...] = ()
    adopt: tuple[str, ...] = ()  # keys to record as owned without a write
    unchanged: int = 0
    revocable: int = 0  # bindings this mapping owns (what maxRevokes is a share of)
    warnings: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not any((self.migrations, self.create_permissions, self.update_permissions,
                        self.delete_permissions, self.create_roles, self.update_roles, self.delete_roles,
                        self.grant_role_permissions, self.revoke_role_permissions, self.create_subjects,
                        self.delete_subjects, self.grant_bindings, self.revoke_bindings))

    def created_keys(self) -> list[str]:
        return ([permission_key(n) for n, _ in self.create_permissions]
                + [role_key(n) for n, _ in self.create_roles]
                + [role_permission_key(r, p) for r, p in self.grant_role_permissions]
                + [subject_key(s) for s in self.create_subjects]
                + [binding_key(b) for b in self.grant_bindings])

    def deleted_keys(self) -> list[str]:
        return ([permission_key(n) for n in self.delete_permissions]
                + [role_key(n) for n in self.delete_roles]
                + [role_permission_key(r, p) for r, p in self.revoke_role_permissions]
                + [subject_key(s) for s in self.delete_subjects]
                + [binding_key(b) for b in self.revoke_bindings])


_Named = tuple[list[tuple[str, str]], list[tuple[str, str | None, str]], list[str], list[str], int]


def _named(kind: str, desired: Mapping[str, str], present: Mapping[str, Named], own: Ownership,
           marked: bool) -> _Named:
    """Creates, updates, warnings, adoptions and unchanged count of roles or permissions."""
    keyed = permission_key if kind == "permission" else role_key
    creates: list[tuple[str, str]] = []
    updates: list[tuple[str, str | None, str]] = []
    warnings: list[str] = []
    adopt: list[str] = []
    unchanged = 0
    for name, description in sorted(desired.items()):
        row = present.get(name)
        if row is None:
            creates.append((name, description))
            continue
        k = keyed(name)
        owned = own.owns(k, row.marker, marked=marked)
        if own.adoptable(k, row.marker, marked=marked):
            adopt.append(k)
        if row.description is None or row.description == description:
            unchanged += 1
        elif owned or own.adoptable(k, row.marker, marked=marked):
            updates.append((name, row.description, description))
        else:
            unchanged += 1
            warnings.append(f"{kind} {name!r} exists but was not written by this mapping; its description "
                            f"is left as it is (ownership.authority: full would take it over)")
    return creates, updates, warnings, adopt, unchanged


def plan_delta(desired: Desired, target: TargetRows, own: Ownership, *, full: bool) -> RbacDelta:
    """Everything to write so that the target holds what is desired (see the module doc)."""
    marked = target.marked
    p_create, p_update, warnings, adopt, unchanged = _named(
        "permission", desired.permissions, target.permissions, own, "permissions" in marked)
    r_create, r_update, r_warn, r_adopt, r_unchanged = _named(
        "role", desired.roles, target.roles, own, "roles" in marked)
    warnings += [*r_warn, *desired.invalid]
    adopt += r_adopt
    unchanged += r_unchanged

    rp_grant = sorted(desired.role_permissions - set(target.role_permissions))
    unchanged += len(desired.role_permissions) - len(rp_grant)
    grants = sorted(desired.bindings - set(target.bindings), key=_order)
    unchanged += len(desired.bindings) - len(grants)
    subjects = sorted({s for s, _, _ in grants} - set(target.subjects))
    for rp in desired.role_permissions & set(target.role_permissions):
        if own.adoptable(role_permission_key(*rp), target.role_permissions[rp],
                         marked="role_permissions" in marked):
            adopt.append(role_permission_key(*rp))
    for s in {s for s, _, _ in desired.bindings} & set(target.subjects):
        if own.adoptable(subject_key(s), target.subjects[s], marked="subjects" in marked):
            adopt.append(subject_key(s))
    for b in desired.bindings & set(target.bindings):
        if own.adoptable(binding_key(b), target.bindings[b], marked="bindings" in marked):
            adopt.append(binding_key(b))

    owned_bindings = {b for b, m in target.bindings.items()
                      if own.owns(binding_key(b), m, marked="bindings" in marked)}
    delta = RbacDelta(
        migrations=target.migrations, create_permissions=tuple(p_create), update_permissions=tuple(p_update),
        create_roles=tuple(r_create), update_roles=tuple(r_update), grant_role_permissions=tuple(rp_grant),
        create_subjects=tuple(subjects), grant_bindings=tuple(grants), adopt=tuple(sorted(set(adopt))),
        unchanged=unchanged, revocable=len(owned_bindings))
    if not full or not target.complete:
        return _with_warnings(delta, warnings)
    return _removals(delta, desired, target, own, owned_bindings, warnings)


def _order(binding: BindingKey) -> tuple[str, str, str]:
    subject, role, scope = binding
    return subject, role, scope or ""


def _with_warnings(delta: RbacDelta, warnings: list[str]) -> RbacDelta:
    return replace(delta, warnings=tuple(warnings))


def _removals(delta: RbacDelta, desired: Desired, target: TargetRows, own: Ownership,
              owned_bindings: set[BindingKey], warnings: list[str]) -> RbacDelta:
    """What a full run takes away: owned rows nobody wants, in an order that never leaves a
    subject, role or permission half-removed."""

    marked = target.marked
    revokes = sorted(owned_bindings - desired.bindings, key=_order)
    remaining = (set(target.bindings) - set(revokes)) | set(delta.grant_bindings)
    bound = {s for s, _, _ in remaining}
    delete_subjects = sorted(
        s for s, m in target.subjects.items()
        if s not in bound and own.owns(subject_key(s), m, marked="subjects" in marked))

    # An undeclared role that bindings this mapping does not revoke still use stays whole,
    # with its permissions: those bindings keep granting what they granted.
    bound_roles = {r for _, r, _ in remaining}
    kept_whole = {name for name in target.roles if name not in desired.roles and name in bound_roles}
    rp_revoke = sorted(
        rp for rp, m in target.role_permissions.items() if rp not in desired.role_permissions
        and rp[0] not in kept_whole
        and own.owns(role_permission_key(*rp), m, marked="role_permissions" in marked))
    rp_remaining = (set(target.role_permissions) - set(rp_revoke)) | set(delta.grant_role_permissions)

    delete_roles = []
    for name, row in sorted(target.roles.items()):
        if name in desired.roles or not own.owns(role_key(name), row.marker, marked="roles" in marked):
            continue
        users = sum(1 for _, r, _ in remaining if r == name) + sum(
            1 for r, _ in rp_remaining if r == name and name not in kept_whole)
        if users:
            warnings.append(f"role {name!r} is no longer declared but {users} row(s) this mapping does not "
                            "own still use it; it stays until they are gone")
        else:
            delete_roles.append(name)
    delete_permissions = []
    for name, row in sorted(target.permissions.items()):
        if name in desired.permissions or not own.owns(permission_key(name), row.marker,
                                                       marked="permissions" in marked):
            continue
        users = sum(1 for _, p in rp_remaining if p == name)
        if users:
            warnings.append(f"permission {name!r} is no longer declared but {users} role(s) this mapping "
                            "does not remove still hold it; it stays until they let go")
        else:
            delete_permissions.append(name)
    return replace(delta, revoke_bindings=tuple(revokes), delete_subjects=tuple(delete_subjects),
                   revoke_role_permissions=tuple(rp_revoke), delete_roles=tuple(delete_roles),
                   delete_permissions=tuple(delete_permissions), warnings=tuple(warnings))


WRITTEN = "written:"
"""Watermark prefix of the description last written for a role or permission key."""


def written_descriptions(desired: Desired) -> dict[str, str]:
    """The watermarks a run records: each declared role's and permission's description, as
    the run leaves it, so that the next run can tell a hand edit from a spec change."""
    return {**{f"{WRITTEN}{permission_key(n)}": d for n, d in desired.permissions.items()},
            **{f"{WRITTEN}{role_key(n)}": d for n, d in desired.roles.items()}}


def drift(delta: RbacDelta, inventory: frozenset[str], written: Mapping[str, str]) -> tuple[str, ...]:
    """The keys this delta puts back because someone changed them outside the reconciler.

    - a row this mapping wrote (its key is in the inventory) that is gone and is created
      again: deleted by hand;
    - a row the delta removes that is the mapping's by its marker only (not in the
      inventory): written or edited by hand with the mapping's marker;
    - a description the delta rewrites to the value the last run wrote: edited by hand (a
      changed spec is not drift).
    A store that knows nothing of this mapping (new, reset) reports none: nothing tells a
    hand edit from the first run there."""
    if not inventory:
        return ()
    created = [*(permission_key(n) for n, _ in delta.create_permissions),
               *(role_key(n) for n, _ in delta.create_roles),
               *(role_permission_key(*rp) for rp in delta.grant_role_permissions),
               *(subject_key(s) for s in delta.create_subjects),
               *(binding_key(b) for b in delta.grant_bindings)]
    removed = [*(binding_key(b) for b in delta.revoke_bindings),
               *(role_permission_key(*rp) for rp in delta.revoke_role_permissions),
               *(subject_key(s) for s in delta.delete_subjects),
               *(role_key(n) for n in delta.delete_roles),
               *(permission_key(n) for n in delta.delete_permissions)]
    rewritten = [keyed(name) for keyed, updates in ((permission_key, delta.update_permissions),
                                                    (role_key, delta.update_roles))
                 for name, _, after in updates if written.get(f"{WRITTEN}{keyed(name)}") == after]
    return tuple(sorted({*(k for k in created if k in inventory), *(k for k in removed if k not in inventory),
                         *rewritten}))
