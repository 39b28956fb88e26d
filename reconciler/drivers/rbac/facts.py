"""The built-in fact sets: what a derive rule can read from the archive, as SQL per layout.

A fact set is a FROM clause over the archive's tables plus named columns (SQL
expressions), some of which need extra joins. A rule's query selects only the columns its
templates use, `DISTINCT`, so that a million studies come back as the few thousand
combinations that can become bindings: the reduction happens in the archive, next to the
data and its indexes, not in Python. `equals` / `notEquals` / `in` / `notIn` filters are
pushed into the WHERE clause; `matches` (a Python regular expression, as the spec model
validates it) is applied after, on the distinct rows.

Values: the archive stores `'*'` for an absent string attribute, for "unrestricted"
(access-control IDs) and, from 5.34, for unknown issuer parts. A fact whose template value
is unknown — NULL, empty or `'*'` — can never become a binding (no `'*'` scope, no
`dept:*/*` group), so the query drops it in the archive: `col NOT IN ('*', '')`, which is
also what lets PostgreSQL turn the LEFT JOINs of 5.35 into inner joins. Filter-only
columns are read through `NULLIF(…, '*')`: a filter never matches an unknown value,
whatever its operator. From 5.35 a study or series without rows in the
`*_access_control_id` tables is unrestricted: the LEFT JOIN gives NULL, the same.

Rejection: the archive keeps a `rejection_state` per study and per series (0 none,
1 partial, 2 complete, 3 empty). Series fact sets read the series' own as
`rejection_state` (the study's is `study_rejection_state`): a series rejected on its own
inside a partly rejected study is 2 while its study is 1, and a filter
`rejection_state notEquals 2` must drop it. The study fact set reads the study's as
`rejection_state` and each series' as `series_rejection_state`.

Only what a rule needs is joined: series facts join `study` only for a study column or
the watermark; patient IDs join `patient` only for the watermark; on 5.35 a rule that uses
nothing but the access-control ID of a full run reads the small multi-valued table alone.

The watermark: study facts are anchored on `study.<sync.watermarkColumn>` (default
`created_time`, which the archive indexes), worklist facts on `mwl_item.updated_time`
and patient-ID facts on `patient.created_time` (both indexed). An incremental query adds
`anchor > since`. Everything here builds SQL (pure); `source.py` runs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import sql

from reconciler.errors import DriverError
from reconciler.models.rbac import ArchiveLayout, DeriveRule, FactFilter, FactSet, FilterOperator


@dataclass(frozen=True, slots=True)
class Column:
    raw: str  # the SQL expression as stored
    joins: tuple[str, ...] = ()
    star: bool = True  # '*' means unknown / unrestricted in this column

    @property
    def expr(self) -> str:
        """The value with '*' read as NULL (for filters)."""
        return f"NULLIF({self.raw}, '*')" if self.star else self.raw

    @property
    def known(self) -> str:
        """SQL that holds only when the value can fill a template."""
        return f"{self.raw} NOT IN ('*', '')" if self.star else f"{self.raw} IS NOT NULL"


@dataclass(frozen=True, slots=True)
class FactSource:
    """One fact set on one layout."""

    base: str
    anchor_table: str
    anchor_column: str
    anchor_alias: str
    columns: dict[str, Column]
    joins: dict[str, str] = field(default_factory=dict)  # name → JOIN clause, in dependency order
    anchor_joins: tuple[str, ...] = ()  # joins the watermark condition needs
    narrow: tuple[str, frozenset[str]] | None = None  # (base, columns it has) for full reads

    def anchor(self) -> sql.Composable:
        return sql.SQL("{}.{}").format(sql.Identifier(self.anchor_alias), sql.Identifier(self.anchor_column))


def _series_columns(*, via: tuple[str, ...] = ()) -> dict[str, Column]:
    columns = {name: Column(f"se.{name}", via) for name in (
        "institution", "department", "modality", "station_name", "sending_aet", "receiving_aet",
        "body_part")}
    columns["series_iuid"] = Column("se.series_iuid", via, star=False)
    columns["series_rejection_state"] = Column("se.rejection_state::text", via, star=False)
    columns["institution_code"] = Column("ic.code_value", (*via, "institution_code"), star=False)
    columns["department_code"] = Column("dc.code_value", (*via, "department_code"), star=False)
    return columns


def _study_columns(*, via: tuple[str, ...] = ()) -> dict[str, Column]:
    return {"study_iuid": Column("st.study_iuid", via, star=False),
            "accession_no": Column("st.accession_no", via),
            "rejection_state": Column("st.rejection_state::text", via, star=False)}


_CODE_JOINS = {"institution_code": "LEFT JOIN code ic ON ic.pk = se.inst_code_fk",
               "department_code": "LEFT JOIN code dc ON dc.pk = se.dept_code_fk"}
_SERIES_ACL_JOIN = {"series_acl": "LEFT JOIN series_access_control_id seac ON seac.series_fk = se.pk"}


def _study_acl(layout: ArchiveLayout, *, via: tuple[str, ...] = ()) -> Column:
    if layout is ArchiveLayout.V5_35:
        return Column("sac.access_control_id", ("study_acl",))
    return Column("st.access_control_id", via)


def _series_acl(layout: ArchiveLayout) -> Column:
    if layout is ArchiveLayout.V5_35:
        return Column("seac.access_control_id", ("series_acl",))
    return Column("se.access_control_id")


def fact_source(facts: FactSet, layout: ArchiveLayout, watermark_column: str) -> FactSource:
    """The SQL of a fact set on a layout (`watermark_column` anchors study facts)."""
    if facts is FactSet.STUDY_ACCESS_CONTROL:
        columns = {**_study_columns(), **_series_columns(via=("series",)),
                   "access_control_id": _study_acl(layout)}
        joins = {"study_acl": "LEFT JOIN study_access_control_id sac ON sac.study_fk = st.pk",
                 "series": "JOIN series se ON se.study_fk = st.pk", **_CODE_JOINS}
        narrow = ("study_access_control_id sac", frozenset({"access_control_id"})) \
            if layout is ArchiveLayout.V5_35 else None
        return FactSource("study st", "study", watermark_column, "st", columns, joins, narrow=narrow)
    if facts in (FactSet.SERIES_ACCESS_CONTROL, FactSet.SERIES_INSTITUTION):
        # The study is joined only when a study column or the watermark needs it: a full
        # read of series facts scans series alone.
        # `rejection_state` is the series' own here (a series rejected on its own inside a
        # partly rejected study is COMPLETE while its study is PARTIAL); the study's is
        # `study_rejection_state`.
        columns = {**_study_columns(via=("study",)), **_series_columns()}
        columns["study_rejection_state"] = columns["rejection_state"]
        columns["rejection_state"] = columns["series_rejection_state"]
        joins = {"study": "JOIN study st ON st.pk = se.study_fk",
                 "study_acl": "LEFT JOIN study_access_control_id sac ON sac.study_fk = se.study_fk",
                 **_SERIES_ACL_JOIN, **_CODE_JOINS}
        if facts is FactSet.SERIES_ACCESS_CONTROL:
            if layout in (ArchiveLayout.PRE_5_31, ArchiveLayout.V5_31):
                raise DriverError(
                    f"fact set {facts.value} needs series-level access control (archive 5.33 or later); "
                    f"the archive has layout {layout.value}: use study-access-control")
            columns["access_control_id"] = _series_acl(layout)
            columns["study_access_control_id"] = _study_acl(layout, via=("study",))
        return FactSource("series se", "study", watermark_column, "st", columns, joins, ("study",))
    if facts is FactSet.MWL_INSTITUTION:
        columns = {name: Column(f"mwl.{name}") for name in (
            "institution", "department", "modality", "worklist_label", "accession_no")}
        columns["study_iuid"] = Column("mwl.study_iuid", star=False)
        columns["sps_status"] = Column("mwl.sps_status::text", star=False)
        columns["institution_code"] = Column("ic.code_value", ("institution_code",), star=False)
        columns["department_code"] = Column("dc.code_value", ("department_code",), star=False)
        joins = {"institution_code": "LEFT JOIN code ic ON ic.pk = mwl.inst_code_fk",
                 "department_code": "LEFT JOIN code dc ON dc.pk = mwl.dept_code_fk"}
        return FactSource("mwl_item mwl", "mwl_item", "updated_time", "mwl", columns, joins)
    assert facts is FactSet.PATIENT_ID_ISSUERS
    patient = ("JOIN patient p ON p.patient_id_fk = pid.pk" if layout is ArchiveLayout.PRE_5_31
               else "JOIN patient p ON p.pk = pid.patient_fk")  # 5.31 turned the link around
    columns = {name: Column(f"pid.{name}") for name in ("entity_id", "entity_uid", "entity_uid_type")}
    columns["pat_id_type_code"] = Column("pid.pat_id_type_code", star=False)
    columns["pat_id"] = Column("pid.pat_id", star=False)
    return FactSource("patient_id pid", "patient", "created_time", "p", columns, {"patient": patient},
                      ("patient",))


@dataclass(frozen=True, slots=True)
class FactQuery:
    """A rule's query: the distinct values of `columns`, and the filters left for Python."""

    statement: sql.Composed
    params: tuple[Any, ...]
    columns: tuple[str, ...]
    post_filters: tuple[FactFilter, ...]


def _unknown(rule: DeriveRule, wanted: Iterable[str], available: Sequence[str], what: str) -> None:
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise DriverError(
            f"derive rule {rule.name!r} uses {', '.join(missing)}, which {what} does not have; it has: "
            f"{', '.join(sorted(available))}")


def _condition(expr: sql.Composable, flt: FactFilter) -> tuple[sql.Composable, Any]:
    op = flt.operator
    if op is FilterOperator.EQUALS:
        return sql.SQL("{} = %s").format(expr), flt.values[0]
    if op is FilterOperator.NOT_EQUALS:
        return sql.SQL("{} <> %s").format(expr), flt.values[0]
    if op is FilterOperator.IN:
        return sql.SQL("{} = ANY(%s)").format(expr), list(flt.values)
    assert op is FilterOperator.NOT_IN
    return sql.SQL("{} <> ALL(%s)").format(expr), list(flt.values)


def _needed(rule: DeriveRule) -> tuple[tuple[str, ...], tuple[FactFilter, ...], tuple[FactFilter, ...]]:
    post = tuple(f for f in rule.filters if f.operator is FilterOperator.MATCHES)
    pushed = tuple(f for f in rule.filters if f.operator is not FilterOperator.MATCHES)
    return tuple(sorted(rule.placeholders | {f.field for f in post})), pushed, post


def _select(columns: Sequence[str], exprs: Mapping[str, sql.Composable]) -> sql.Composable:
    if not columns:  # a rule without placeholders: one binding if any fact matches
        return sql.SQL("1 AS present")
    return sql.SQL(", ").join(sql.SQL("{} AS {}").format(exprs[c], sql.Identifier(c)) for c in columns)


def _finish(select: sql.Composable, source: sql.Composable, conditions: list[sql.Composable],
            params: list[Any], columns: tuple[str, ...], post: tuple[FactFilter, ...]) -> FactQuery:
    where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("true")
    limit = sql.SQL("" if columns else " LIMIT 1")
    statement = sql.SQL("SELECT DISTINCT {} FROM {} WHERE {}{}").format(select, source, where, limit)
    return FactQuery(statement, tuple(params), columns, post)


def fact_query(rule: DeriveRule, source: FactSource, since: datetime | None) -> FactQuery:
    """The SQL of a built-in fact rule; `since` restricts it to facts anchored after it."""
    columns, pushed, post = _needed(rule)
    _unknown(rule, [*columns, *(f.field for f in pushed)], list(source.columns), f"fact set {rule.facts}")
    wanted = {*columns, *(f.field for f in pushed)}
    base, needed_joins = source.base, {j for c in wanted for j in source.columns[c].joins}
    if since is not None:
        needed_joins |= set(source.anchor_joins)
    elif source.narrow is not None and wanted <= source.narrow[1]:
        base, needed_joins = source.narrow[0], set()
    joins = [clause for name, clause in source.joins.items() if name in needed_joins]
    from_clause = sql.SQL(" ").join([sql.SQL(base), *(sql.SQL(j) for j in joins)])
    exprs: dict[str, sql.Composable] = {name: sql.SQL(c.expr) for name, c in source.columns.items()}
    conditions: list[sql.Composable] = [sql.SQL(source.columns[c].known) for c in columns]
    params: list[Any] = []
    if since is not None:
        conditions.append(sql.SQL("{} > %s").format(source.anchor()))
        params.append(since)
    for flt in pushed:
        condition, value = _condition(exprs[flt.field], flt)
        conditions.append(condition)
        params.append(value)
    raw = {name: sql.SQL(source.columns[name].raw) for name in columns}  # known: no '*' left
    return _finish(_select(columns, raw), from_clause, conditions, params, columns, post)


def strip_statement(text: str) -> str:
    """A SELECT without its trailing semicolon, to be used as a subquery; `%` doubled, as
    the statement always runs with (possibly no) parameters."""
    return re.sub(r";\s*$", "", text.rstrip()).replace("%", "%%")


def probe_query(rule: DeriveRule) -> sql.Composed:
    """Zero rows of the escape-hatch query: its column names."""
    assert rule.query is not None
    return sql.SQL("SELECT * FROM (\n{}\n) AS f LIMIT 0").format(sql.SQL(strip_statement(rule.query.sql)))


def escape_hatch_query(rule: DeriveRule, available: Sequence[str]) -> FactQuery:
    """A named SELECT wrapped like a fact set: distinct needed columns, filters pushed in."""
    assert rule.query is not None
    columns, pushed, post = _needed(rule)
    _unknown(rule, [*columns, *(f.field for f in pushed)], available, f"query {rule.query.name!r}")
    exprs: dict[str, sql.Composable] = {
        c: sql.SQL("NULLIF(f.{}::text, '*')").format(sql.Identifier(c)) for c in available}
    conditions: list[sql.Composable] = [
        sql.SQL("f.{}::text NOT IN ('*', '')").format(sql.Identifier(c)) for c in columns]
    params: list[Any] = []
    for flt in pushed:
        condition, value = _condition(exprs[flt.field], flt)
        conditions.append(condition)
        params.append(value)
    source = sql.SQL("(\n{}\n) AS f").format(sql.SQL(strip_statement(rule.query.sql)))
    raw = {c: sql.SQL("f.{}").format(sql.Identifier(c)) for c in columns}
    return _finish(_select(columns, raw), source, conditions, params, columns, post)
