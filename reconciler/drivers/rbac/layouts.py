"""Which dcm4chee-arc-light schema layout an archive database has, read from its catalog.

The archive's tables changed under every delta query a sync job writes (see the reference
on 5.26–5.35): 5.26 moved the issuer inline onto `patient_id`; 5.31 turned the link
around (`patient_id.patient_fk` instead of `patient.patient_id_fk`); 5.33 added
`series.access_control_id`; 5.35 moved access-control IDs into the multi-valued
`study_access_control_id` / `series_access_control_id` tables. A query written for one
layout returns wrong rows (not an error) on the next, so the layout is decided before
anything is read, from `information_schema` (what this user may see in the current
schema), and the fact queries are chosen for it.

The layouts: `pre-5.31` (5.26–5.30), `5.31` (5.31–5.32), `5.33` (5.33–5.34, series
access control) and `5.35` (5.35 and later). Anything else — before 5.26 (an `issuer`
table), a half-applied 5.35 upgrade, missing core tables — is refused with a message that
names what was found, never guessed.

A half-applied 5.35 upgrade is either one of the two new tables, or both tables while the
old `study.` / `series.access_control_id` columns are still NOT NULL: part 1 of
`update-5.35-psql.sql` creates the two tables empty on a running 5.34 archive, and only
part 2 (on the stopped archive) fills them and then, as its last step, makes the old
columns nullable. In that window the archive still writes the columns and the tables stay
empty: reading it as 5.35 would find no access-control ID at all (a full run would revoke
them all, an incremental one would grant nothing and move its watermark past the studies). A pinned layout
(`source.layout`) must agree with the catalog; it is trusted only when the catalog shows
nothing recognisable (a user without rights on `information_schema`'s rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.errors import DriverError
from reconciler.models.rbac import ArchiveLayout

TABLES = ("study", "series", "patient", "patient_id", "mwl_item", "code", "issuer",
          "study_access_control_id", "series_access_control_id")
_CORE = ("study", "series", "patient", "patient_id")


class UnknownLayout(DriverError):
    """The archive's tables match no layout the driver knows; nothing was read."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """The archive tables and columns visible in the current schema."""

    schema: str
    columns: frozenset[tuple[str, str]]  # (table, column)
    not_null: frozenset[tuple[str, str]] = frozenset()  # the columns declared NOT NULL

    @property
    def tables(self) -> frozenset[str]:
        return frozenset(t for t, _ in self.columns)

    def has(self, table: str, column: str | None = None) -> bool:
        if column is None:
            return table in self.tables
        return (table, column) in self.columns

    def describe(self) -> str:
        """What was found, for error messages: tables and the columns that decide."""
        tables = ", ".join(t for t in TABLES if self.has(t)) or "none of the archive tables"
        marks = [f"{t}.{c} {'present' if self.has(t, c) else 'absent'}" for t, c in (
            ("patient_id", "patient_fk"), ("patient", "patient_id_fk"), ("patient_id", "entity_id"),
            ("series", "access_control_id")) if self.has(t)]
        return f"in schema {self.schema!r}: {tables}" + (f" ({'; '.join(marks)})" if marks else "")

    def half_upgraded(self) -> list[str]:
        """The old access-control columns still NOT NULL next to the 5.35 tables (part 2 of
        `update-5.35-psql.sql` not applied); empty when the catalog is consistent."""
        if not (self.has("study_access_control_id") and self.has("series_access_control_id")):
            return []
        return [f"{t}.access_control_id" for t in ("study", "series")
                if (t, "access_control_id") in self.not_null]


def read_catalog(cur: Any) -> Catalog:
    cur.execute("SELECT current_schema(), table_name, column_name, is_nullable "
                "FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = ANY(%s)", (list(TABLES),))
    rows = cur.fetchall()
    if not rows:
        cur.execute("SELECT current_schema()")
        schema = cur.fetchone()[0]
    else:
        schema = rows[0][0]
    return Catalog(schema=str(schema), columns=frozenset((r[1], r[2]) for r in rows),
                   not_null=frozenset((r[1], r[2]) for r in rows if r[3] == "NO"))


def detect_layout(catalog: Catalog) -> ArchiveLayout | None:
    """The layout the catalog shows; None when it matches none (see `describe_mismatch`)."""
    if not all(catalog.has(t) for t in _CORE) or catalog.has("issuer"):
        return None
    if not catalog.has("patient_id", "entity_id"):
        return None  # before 5.26: the issuer is a table of its own
    multi = (catalog.has("study_access_control_id"), catalog.has("series_access_control_id"))
    forward = catalog.has("patient_id", "patient_fk")
    backward = catalog.has("patient", "patient_id_fk")
    if forward == backward:
        return None
    if any(multi):
        return ArchiveLayout.V5_35 if all(multi) and forward and not catalog.half_upgraded() else None
    if catalog.has("series", "access_control_id"):
        return ArchiveLayout.V5_33 if forward else None
    return ArchiveLayout.V5_31 if forward else ArchiveLayout.PRE_5_31


def resolve_layout(pinned: ArchiveLayout, catalog: Catalog) -> ArchiveLayout:
    """The layout to read with: the detected one, checked against a pin."""
    found = detect_layout(catalog)
    half = catalog.half_upgraded()
    if found is None and half:
        raise UnknownLayout(
            f"half-applied 5.35 upgrade {catalog.describe()}: the tables study_access_control_id and "
            f"series_access_control_id exist but {' and '.join(half)} "
            f"{'is' if len(half) == 1 else 'are'} still NOT NULL, so part 2 of update-5.35-psql.sql "
            "(fill the tables, drop NOT NULL) has not run; the archive still writes its access-control IDs "
            "into the old columns and the new tables are not filled. Finish the upgrade (or drop the two "
            "empty tables to stay on 5.34); nothing was read or written")
    one = [t for t in ("study_access_control_id", "series_access_control_id") if catalog.has(t)]
    if found is None and len(one) == 1:
        missing = ({"study_access_control_id", "series_access_control_id"} - set(one)).pop()
        raise UnknownLayout(
            f"half-applied 5.35 upgrade {catalog.describe()}: the table {one[0]} exists but {missing} "
            "does not, so update-5.35-psql.sql stopped (or was edited) before it created both; the "
            "archive still writes its access-control IDs into the old columns. Finish the upgrade (or "
            f"drop {one[0]} to stay on 5.34); nothing was read or written")
    if found is None:
        if pinned is not ArchiveLayout.AUTO and not catalog.tables:
            return pinned
        raise UnknownLayout(
            f"unknown archive layout {catalog.describe()}; the driver reads dcm4chee-arc-light 5.26 and "
            "later (layouts pre-5.31, 5.31, 5.33, 5.35); nothing was read or written")
    if pinned is not ArchiveLayout.AUTO and pinned is not found:
        raise UnknownLayout(
            f"source.layout is pinned to {pinned.value} but the archive has layout {found.value} "
            f"({catalog.describe()}); was the archive upgraded? Check the derive rules against the new "
            "layout, then change or remove the pin")
    return found
