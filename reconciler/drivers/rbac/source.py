"""Reading the archive: one read-only snapshot, the layout first, then every rule's facts.

The archive is someone else's production database. The driver opens one transaction
`ISOLATION LEVEL REPEATABLE READ READ ONLY`: every rule sees the same snapshot, and no
statement — not an escape-hatch query calling a function with side effects either — can
write (PostgreSQL refuses it). The layout is read from the catalog before any fact query.

Watermarks (incremental runs): each rule anchored on an indexed timestamp records, with
the run, the newest anchor value of the snapshot and a fingerprint of the rule, layout and
watermark column (`derive:<rule>` → `<timestamp>|<fingerprint>`). The next incremental
run reads only facts anchored after that value minus `sync.lookback` — studies committed
late with an earlier `created_time` are still seen, and re-reading a few is harmless
because bindings are a set. A rule whose fingerprint changed (edited, or the archive
upgraded to another layout) has no usable watermark and is read whole. Escape-hatch
queries have no anchor: they are always read whole. A watermark column the anchor table
does not have is refused before any query, naming the table and the columns it has.

Planner statistics: a freshly restored archive (pg_restore, a copied data directory
before its first ANALYZE) has rows and indexes but no column statistics, and the
planner then picks plans that make a no-op run ten times slower. Before reading, the
archive tables that have rows but no statistics (`pg_class.reltuples` = -1, never
analyzed, or no `pg_stats` rows although the table has rows) are named in a plan warning
with the fix (`ANALYZE <tables>`). The driver never runs ANALYZE itself: its transaction is
read-only and its user should be too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from reconciler.drivers.rbac.facts import FactQuery, escape_hatch_query, fact_query, fact_source, probe_query
from reconciler.drivers.rbac.layouts import TABLES, Catalog, read_catalog, resolve_layout
from reconciler.errors import DriverError, SourceError
from reconciler.models.rbac import ArchiveLayout, DeriveRule, RbacMappingSpec


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """The distinct fact rows one rule read, and its watermark after this snapshot."""

    rule: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    since: datetime | None = None  # incremental: facts anchored after this; None: all facts
    watermark: str | None = None  # what to record: "<timestamp>|<fingerprint>"


@dataclass(frozen=True, slots=True)
class SourceFacts:
    layout: ArchiveLayout
    rules: tuple[RuleFacts, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


def watermark_key(rule: str) -> str:
    return f"derive:{rule}"


def fingerprint(rule: DeriveRule, layout: ArchiveLayout, watermark_column: str) -> str:
    text = f"{rule.model_dump_json()}|{layout.value}|{watermark_column}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def previous_watermark(recorded: str | None, expected: str) -> datetime | None:
    """The recorded anchor value, if it was recorded for this very rule and layout."""
    if not recorded or "|" not in recorded:
        return None
    value, print_ = recorded.rsplit("|", 1)
    if print_ != expected:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _indexed(cur: psycopg.Cursor[Any], table: str, column: str) -> bool:
    cur.execute("SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass(%s) AND a.attname = %s)",
                (table, column))
    row = cur.fetchone()
    return bool(row and row[0])


def missing_statistics(cur: psycopg.Cursor[Any], catalog: Catalog) -> list[str]:
    """The archive tables that have rows but no planner statistics (never analyzed)."""
    tables = sorted(t for t in catalog.tables if t in TABLES)
    cur.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p') AND (c.reltuples < 0 "
        "OR (c.reltuples > 0 AND NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname "
        "AND s.tablename = c.relname))) ORDER BY c.relname", (catalog.schema, tables))
    return [str(r[0]) for r in cur.fetchall()]


def statistics_warning(tables: list[str]) -> str:
    names = ", ".join(tables)
    return (f"the archive has no planner statistics for {names} (never analyzed, e.g. a fresh restore): "
            f"its queries may take many times longer; run ANALYZE {names} on the archive (or wait for "
            "autovacuum to analyze them)")


def _timestamp_columns(cur: psycopg.Cursor[Any], table: str) -> list[str]:
    """The columns of `table` (in the current schema) that hold timestamps."""
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = %s AND data_type LIKE 'timestamp%%' ORDER BY column_name", (table,))
    return [str(r[0]) for r in cur.fetchall()]


def _check_watermark_column(cur: psycopg.Cursor[Any], catalog: Catalog, table: str, column: str) -> None:
    if not catalog.has(table) or catalog.has(table, column):
        return  # no catalog visibility: the query's own error is wrapped below
    columns = sorted(c for t, c in catalog.columns if t == table)
    raise DriverError(
        f"sync.watermarkColumn {column!r}: table {table} has no column {column} in schema "
        f"{catalog.schema!r}; its timestamp columns are {', '.join(_timestamp_columns(cur, table))} "
        f"(created_time is indexed); all its columns: {', '.join(columns)}")


def _check_watermark_value(cur: psycopg.Cursor[Any], table: str, column: str, value: Any) -> None:
    """A watermark is a timestamp: any other type (a date kept as text, a version number)
    cannot anchor "newer than", and is named with the columns that can."""
    if value is None or isinstance(value, datetime):
        return
    cur.execute("SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = %s AND column_name = %s", (table, column))
    row = cur.fetchone()
    kind = str(row[0]) if row else type(value).__name__
    raise DriverError(
        f"sync.watermarkColumn {column!r}: {table}.{column} is {kind}, not a timestamp; a watermark "
        f"must be one of {table}'s timestamp columns: {', '.join(_timestamp_columns(cur, table))} "
        "(created_time is indexed)")


def _run(cur: psycopg.Cursor[Any], rule: DeriveRule, query: FactQuery) -> tuple[tuple[Any, ...], ...]:
    try:
        cur.execute(query.statement, query.params)
    except psycopg.Error as exc:
        raise DriverError(f"derive rule {rule.name!r}: the archive refused its query: "
                          f"{str(exc).strip()}") from None
    return tuple(cur.fetchall())


def _escape_hatch(cur: psycopg.Cursor[Any], rule: DeriveRule) -> RuleFacts:
    try:
        cur.execute(probe_query(rule), ())
    except psycopg.Error as exc:
        assert rule.query is not None
        raise DriverError(f"derive rule {rule.name!r}: query {rule.query.name!r} failed in a read-only "
                          f"transaction: {str(exc).strip()}") from None
    available = [d.name for d in cur.description or ()]
    query = escape_hatch_query(rule, available)
    return RuleFacts(rule.name, query.columns, _run(cur, rule, query))


def read_facts(url: str, spec: RbacMappingSpec, *, incremental: bool,
               watermarks: Mapping[str, str]) -> SourceFacts:
    """Every derive rule's facts from one read-only snapshot of the archive."""
    assert spec.source is not None
    try:
        conn = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise SourceError(f"cannot connect to the archive database ({spec.source.database_url.describe()}): "
                          f"{str(exc).strip()}", request="connect", retryable=True) from None
    try:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.cursor() as cur:
            return _read(cur, spec, incremental=incremental, watermarks=watermarks)
    finally:
        conn.rollback()
        conn.close()


def _read(cur: psycopg.Cursor[Any], spec: RbacMappingSpec, *, incremental: bool,
          watermarks: Mapping[str, str]) -> SourceFacts:
    assert spec.source is not None
    # The fact queries are short aggregates: compiling them (JIT) costs more than it saves.
    cur.execute("SET LOCAL jit = off")
    catalog = read_catalog(cur)
    layout = resolve_layout(spec.source.layout, catalog)
    column = spec.sync.watermark_column
    warnings: list[str] = []
    unanalyzed = missing_statistics(cur, catalog)
    if unanalyzed:
        warnings.append(statistics_warning(unanalyzed))
    newest: dict[tuple[str, str], datetime | None] = {}
    facts: list[RuleFacts] = []
    for rule in spec.derive:
        if rule.facts is None:
            facts.append(_escape_hatch(cur, rule))
            continue
        source = fact_source(rule.facts, layout, column)
        anchor = (source.anchor_table, source.anchor_column)
        _check_watermark_column(cur, catalog, *anchor)
        if anchor not in newest:
            if incremental and not _indexed(cur, *anchor):
                warnings.append(f"{anchor[0]}.{anchor[1]} has no index: incremental runs of rule "
                                f"{rule.name!r} scan the whole table (the archive indexes created_time)")
            try:
                cur.execute(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(anchor[1]),
                                                                     sql.Identifier(anchor[0])))
            except psycopg.Error as exc:
                raise DriverError(f"derive rule {rule.name!r}: cannot read the watermark column "
                                  f"{anchor[0]}.{anchor[1]}: {str(exc).strip()}") from None
            row = cur.fetchone()
            newest[anchor] = row[0] if row else None
            _check_watermark_value(cur, *anchor, newest[anchor])
        print_ = fingerprint(rule, layout, column)
        since = None
        if incremental:
            since = previous_watermark(watermarks.get(watermark_key(rule.name)), print_)
            if since is not None:
                since -= spec.sync.lookback
        query = fact_query(rule, source, since)
        rows = _run(cur, rule, query)
        mark = newest[anchor]
        facts.append(RuleFacts(rule.name, query.columns, rows, since,
                               f"{mark.isoformat()}|{print_}" if mark is not None else None))
    return SourceFacts(layout, tuple(facts), tuple(warnings))
