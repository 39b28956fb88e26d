"""The RBAC database: reading its rows by name, and writing a delta as a few set statements.

A run holds one transaction on the target from observe to apply (or to the end of the
run): it takes a transaction-scoped advisory lock on the target schema first, so two
mappings writing the same tables — or a mapping and its own `plan --verify` — never
interleave, then reads, and later writes in the same transaction, so the diff is made
against exactly what the writes will meet.

Writing is set-based: each kind of change is one statement over `unnest` of arrays
(names, not ids; ids are looked up by joins), in the order that keeps references valid —
create permissions, roles, role permissions, subjects, grant bindings; then revoke
bindings, delete subjects, revoke role permissions, delete roles, delete permissions.
Every statement's row count must be what the plan said; anything else (a row changed by
someone else in between, a constraint) raises, and the caller rolls the whole
transaction back: the target is exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql

from reconciler.drivers.rbac.keys import BindingKey
from reconciler.drivers.rbac.planning import Named, RbacDelta, TargetRows
from reconciler.drivers.rbac.schema import Table, Tables, migrate
from reconciler.errors import DriverError

_NULL = sql.SQL("NULL")


def lock(cur: Any, tables: Tables) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                (f"reconciler.rbac:{tables.managed_schema or tables.bindings.label}",))


def _opt(table: Table, logical: str, alias: str) -> sql.Composable:
    if not table.has(logical):
        return _NULL
    return sql.SQL("{}.{}").format(sql.Identifier(alias), table.col(logical))


def _unique(label: str, rows: list[tuple[Any, ...]], width: int) -> None:
    if len({r[:width] for r in rows}) != len(rows):
        raise DriverError(f"table {label} holds duplicate names; the RBAC mapping needs them unique")


def read_rows(cur: Any, tables: Tables, *, candidates: Sequence[BindingKey] | None,
              migrations: tuple[int, ...]) -> TargetRows:
    """Every row by name (`candidates` None), or only the subjects and bindings among
    `candidates` (incremental runs)."""
    if migrations and migrations[0] == 1:  # the managed schema does not exist yet
        return TargetRows(complete=candidates is None, marked=tables.marked(), migrations=migrations)
    named: dict[str, dict[str, Named]] = {}
    for logical in ("permissions", "roles"):
        t: Table = getattr(tables, logical)
        cur.execute(sql.SQL("SELECT x.{}, {}, {} FROM {} AS x").format(
            t.col("name"), _opt(t, "description", "x"), _opt(t, "managed_by", "x"), t.name))
        rows = cur.fetchall()
        _unique(t.label, rows, 1)
        named[logical] = {r[0]: Named(r[1], r[2]) for r in rows}
    rp, r, p, s, b = (tables.role_permissions, tables.roles, tables.permissions, tables.subjects,
                      tables.bindings)
    cur.execute(sql.SQL(
        "SELECT r.{rn}, p.{pn}, {marker} FROM {rp} AS x JOIN {r} AS r ON r.{rid} = x.{xr} "
        "JOIN {p} AS p ON p.{pid} = x.{xp}").format(
        rn=r.col("name"), pn=p.col("name"), marker=_opt(rp, "managed_by", "x"), rp=rp.name, r=r.name,
        rid=r.col("id"), xr=rp.col("role_id"), p=p.name, pid=p.col("id"), xp=rp.col("permission_id")))
    role_permissions = {(row[0], row[1]): row[2] for row in cur.fetchall()}
    subject_filter: sql.Composable
    binding_join: sql.Composable
    subject_filter, binding_join, params = sql.SQL(""), sql.SQL(""), []
    if candidates is not None:
        names = sorted({c[0] for c in candidates})
        subject_filter = sql.SQL(" WHERE x.{} = ANY(%s)").format(s.col("name"))
        binding_join = sql.SQL(
            " JOIN unnest(%s::text[], %s::text[], %s::text[]) AS c(subject, role, scope) ON "
            "c.subject = s.{sn} AND c.role = r.{rn} AND c.scope IS NOT DISTINCT FROM x.{sc}").format(
            sn=s.col("name"), rn=r.col("name"), sc=b.col("scope"))
        params = [[c[0] for c in candidates], [c[1] for c in candidates], [c[2] for c in candidates]]
    cur.execute(sql.SQL("SELECT x.{}, {} FROM {} AS x{}").format(
        s.col("name"), _opt(s, "managed_by", "x"), s.name, subject_filter),
        [names] if candidates is not None else [])
    rows = cur.fetchall()
    _unique(s.label, rows, 1)
    subjects = {row[0]: row[1] for row in rows}
    cur.execute(sql.SQL(
        "SELECT s.{sn}, r.{rn}, x.{sc}, {marker} FROM {b} AS x JOIN {s} AS s ON s.{sid} = x.{xs} "
        "JOIN {r} AS r ON r.{rid} = x.{xr}{join}").format(
        sn=s.col("name"), rn=r.col("name"), sc=b.col("scope"), marker=_opt(b, "managed_by", "x"),
        b=b.name, s=s.name, sid=s.col("id"), xs=b.col("subject_id"), r=r.name, rid=r.col("id"),
        xr=b.col("role_id"), join=binding_join), params)
    bindings = {(row[0], row[1], row[2]): row[3] for row in cur.fetchall()}
    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(b.name))
    total = int(cur.fetchone()[0])
    return TargetRows(permissions=named["permissions"], roles=named["roles"],
                      role_permissions=role_permissions, subjects=subjects, bindings=bindings,
                      bindings_total=total, complete=candidates is None, marked=tables.marked(),
                      migrations=migrations)


class _Writer:
    """One delta's statements on one cursor, each checked against the count it must touch."""

    def __init__(self, cur: Any, tables: Tables, marker: str, *, full_authority: bool) -> None:
        self.cur = cur
        self.t = tables
        self.marker = marker
        self.full_authority = full_authority

    def run(self, what: str, expected: int, statement: sql.Composable, params: Sequence[Any]) -> None:
        if expected == 0:
            return
        self.cur.execute(statement, params)
        if self.cur.rowcount != expected:
            raise DriverError(f"{what}: {self.cur.rowcount} row(s) touched where the plan has {expected}; "
                              "the target changed during the run; nothing was written")

    def _mark(self, table: Table) -> tuple[sql.Composable, sql.Composable, list[Any]]:
        """(column list suffix, value suffix, params) for the marker on insert."""
        if not table.has("managed_by"):
            return sql.SQL(""), sql.SQL(""), []
        return sql.SQL(", {}").format(table.col("managed_by")), sql.SQL(", %s"), [self.marker]

    def _owned(self, table: Table, alias: str) -> tuple[sql.Composable, list[Any]]:
        """Deletes touch only rows with our marker (under owned authority): a guard against a
        row that changed hands after the plan."""
        if self.full_authority or not table.has("managed_by"):
            return sql.SQL(""), []
        condition = sql.SQL(" AND {}.{} = %s").format(sql.Identifier(alias), table.col("managed_by"))
        return condition, [self.marker]

    def named(self, table: Table, creates: Sequence[tuple[str, str]],
              updates: Sequence[tuple[str, str | None, str]]) -> None:
        cols, vals, mp = self._mark(table)
        desc_col: sql.Composable
        desc_col, desc_val = sql.SQL(""), sql.SQL("")
        if table.has("description"):
            desc_col, desc_val = sql.SQL(", {}").format(table.col("description")), sql.SQL(", u.d")
        self.run(f"create in {table.label}", len(creates), sql.SQL(
            "INSERT INTO {t} ({n}{dc}{mc}) SELECT u.n{dv}{mv} FROM unnest(%s::text[], %s::text[]) AS u(n, d)"
        ).format(t=table.name, n=table.col("name"), dc=desc_col, mc=cols, dv=desc_val, mv=vals),
            [*mp, [c[0] for c in creates], [c[1] for c in creates]])
        if updates and table.has("description"):
            marker = sql.SQL(", {} = %s").format(table.col("managed_by")) if table.has("managed_by") else None
            self.run(f"update {table.label}", len(updates), sql.SQL(
                "UPDATE {t} AS x SET {d} = u.d{m} FROM unnest(%s::text[], %s::text[]) AS u(n, d) "
                "WHERE x.{n} = u.n").format(t=table.name, d=table.col("description"), m=marker or sql.SQL(""),
                                           n=table.col("name")),
                [*([self.marker] if marker else []), [u[0] for u in updates], [u[2] for u in updates]])

    def delete_named(self, table: Table, names: Sequence[str]) -> None:
        owned, op = self._owned(table, "x")
        self.run(f"delete from {table.label}", len(names), sql.SQL(
            "DELETE FROM {t} AS x WHERE x.{n} = ANY(%s){o}").format(
                t=table.name, n=table.col("name"), o=owned),
            [list(names), *op])

    def _pairs(self) -> dict[str, Any]:
        t = self.t
        return {"rp": t.role_permissions.name, "r": t.roles.name, "p": t.permissions.name,
                "rid": t.roles.col("id"), "pid": t.permissions.col("id"), "rn": t.roles.col("name"),
                "pn": t.permissions.col("name"), "xr": t.role_permissions.col("role_id"),
                "xp": t.role_permissions.col("permission_id")}

    def role_permissions(self, grants: Sequence[tuple[str, str]], revokes: Sequence[tuple[str, str]]) -> None:
        cols, vals, mp = self._mark(self.t.role_permissions)
        self.run("grant role permissions", len(grants), sql.SQL(
            "INSERT INTO {rp} ({xr}, {xp}{mc}) SELECT r.{rid}, p.{pid}{mv} "
            "FROM unnest(%s::text[], %s::text[]) AS u(r, p) "
            "JOIN {r} AS r ON r.{rn} = u.r JOIN {p} AS p ON p.{pn} = u.p").format(
            mc=cols, mv=vals, **self._pairs()), [*mp, [g[0] for g in grants], [g[1] for g in grants]])
        owned, op = self._owned(self.t.role_permissions, "x")
        self.run("revoke role permissions", len(revokes), sql.SQL(
            "DELETE FROM {rp} AS x USING {r} AS r, {p} AS p, unnest(%s::text[], %s::text[]) AS u(r, p) "
            "WHERE x.{xr} = r.{rid} AND x.{xp} = p.{pid} AND r.{rn} = u.r AND p.{pn} = u.p{o}").format(
            o=owned, **self._pairs()), [[g[0] for g in revokes], [g[1] for g in revokes], *op])

    def subjects(self, creates: Sequence[str]) -> None:
        s = self.t.subjects
        cols, vals, mp = self._mark(s)
        self.run(f"create in {s.label}", len(creates), sql.SQL(
            "INSERT INTO {t} ({n}{mc}) SELECT u.n{mv} FROM unnest(%s::text[]) AS u(n)").format(
            t=s.name, n=s.col("name"), mc=cols, mv=vals), [*mp, list(creates)])

    def _binding_names(self) -> dict[str, Any]:
        t = self.t
        return {"b": t.bindings.name, "s": t.subjects.name, "r": t.roles.name, "sid": t.subjects.col("id"),
                "rid": t.roles.col("id"), "sn": t.subjects.col("name"), "rn": t.roles.col("name"),
                "xs": t.bindings.col("subject_id"), "xr": t.bindings.col("role_id"),
                "sc": t.bindings.col("scope")}

    def bindings(self, grants: Sequence[BindingKey], revokes: Sequence[BindingKey]) -> None:
        cols, vals, mp = self._mark(self.t.bindings)
        arrays = [[g[0] for g in grants], [g[1] for g in grants], [g[2] for g in grants]]
        self.run("grant bindings", len(grants), sql.SQL(
            "INSERT INTO {b} ({xs}, {xr}, {sc}{mc}) SELECT s.{sid}, r.{rid}, u.sc{mv} "
            "FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(s, r, sc) "
            "JOIN {s} AS s ON s.{sn} = u.s JOIN {r} AS r ON r.{rn} = u.r").format(
            mc=cols, mv=vals, **self._binding_names()), [*mp, *arrays])
        owned, op = self._owned(self.t.bindings, "x")
        arrays = [[g[0] for g in revokes], [g[1] for g in revokes], [g[2] for g in revokes]]
        self.run("revoke bindings", len(revokes), sql.SQL(
            "DELETE FROM {b} AS x USING {s} AS s, {r} AS r, unnest(%s::text[], %s::text[], %s::text[]) "
            "AS u(s, r, sc) WHERE x.{xs} = s.{sid} AND x.{xr} = r.{rid} AND s.{sn} = u.s AND r.{rn} = u.r "
            "AND x.{sc} IS NOT DISTINCT FROM u.sc{o}").format(o=owned, **self._binding_names()),
            [*arrays, *op])


def write_delta(cur: Any, tables: Tables, delta: RbacDelta, *, marker: str, full_authority: bool) -> None:
    """Apply `delta` in the current transaction (the caller commits or rolls back)."""
    if delta.migrations:
        assert tables.managed_schema is not None
        migrate(cur, tables.managed_schema, delta.migrations)
    w = _Writer(cur, tables, marker, full_authority=full_authority)
    w.named(tables.permissions, delta.create_permissions, delta.update_permissions)
    w.named(tables.roles, delta.create_roles, delta.update_roles)
    w.role_permissions(delta.grant_role_permissions, ())
    w.subjects(delta.create_subjects)
    w.bindings(delta.grant_bindings, delta.revoke_bindings)
    w.delete_named(tables.subjects, delta.delete_subjects)
    w.role_permissions((), delta.revoke_role_permissions)
    w.delete_named(tables.roles, delta.delete_roles)
    w.delete_named(tables.permissions, delta.delete_permissions)
