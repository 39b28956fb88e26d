"""The target table: staging, set-based comparison, one upsert, deletions — in one transaction.

A run opens one transaction on the target and keeps it until apply commits or the run
ends (dry run, guard, failure: rollback). Rows are staged as they arrive — COPY into a
temporary table on PostgreSQL (psycopg 3 `write_row`), batched inserts on SQLite — so
memory is bounded by the pages in flight. The comparison with the table is set-based
SQL: new keys, keys whose owned columns differ (`IS DISTINCT FROM`), keys absent from
the pull (never those of rejected rows). Apply is one `INSERT … ON CONFLICT … DO UPDATE
… WHERE … IS DISTINCT FROM`, touching only rows whose content differs, then the
deletions or marks of a full run. Only the owned columns (and, for the `mark` policy,
the tracking columns) are ever written.

Tracking columns (as the existing `aed_data` schema has them): `data_status` (`active`,
`missing`, `deletion_suspected`), `first_seen_date`, `last_seen_date`,
`consecutive_missing_days`, `deletion_suspected_date`, `sync_batch_id`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from reconciler.errors import DriverError, TargetError
from reconciler.models.aed import AedSourceBindingSpec, ColumnType

TRACKING = ("data_status", "first_seen_date", "last_seen_date", "consecutive_missing_days",
            "deletion_suspected_date", "sync_batch_id")
_PG_TYPES = {ColumnType.TEXT: "text", ColumnType.INTEGER: "bigint", ColumnType.NUMERIC: "numeric",
             ColumnType.DATE: "date", ColumnType.TIMESTAMP: "timestamptz", ColumnType.BOOLEAN: "boolean"}
_SQLITE_TYPES = {ColumnType.TEXT: "TEXT", ColumnType.INTEGER: "INTEGER", ColumnType.NUMERIC: "TEXT",
                 ColumnType.DATE: "TEXT", ColumnType.TIMESTAMP: "TEXT", ColumnType.BOOLEAN: "INTEGER"}
STAGE = "_reconciler_aed_stage"
REJECTED = "_reconciler_aed_rejected"
REJECTED_ROWS = "_reconciler_aed_rejected_rows"  # rejected rows without a usable key: their content
UPDATED_AT = "updated_at"  # kept (now()) on every row a run writes, where the table has it
CHANGES = "_reconciler_aed_changes"


@dataclass(slots=True)
class Comparison:
    """What applying the staged rows would do, counted in SQL."""

    current: int = 0  # rows in the table now
    active: int = 0  # of which not marked missing (all of them without tracking columns)
    staged: int = 0
    inserts: int = 0
    updates: int = 0
    unchanged: int = 0
    absent: int = 0  # rows a full run deletes or marks
    ageing: int = 0  # rows already missing whose day count or status a full run moves on (mark)
    null_columns: list[str] = field(default_factory=list)  # owned columns all NULL in the pull
    samples: list[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]] = field(default_factory=list)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class Target:
    """One binding's table over a DB-API connection; subclasses bind the dialect."""

    placeholder = "%s"

    def __init__(self, conn: Any, spec: AedSourceBindingSpec) -> None:
        self.conn = conn
        self.spec = spec
        t = spec.target
        self.key = t.key_column
        self.owned = tuple(spec.mapping.owned)
        self.columns = tuple(m.column for m in spec.mapping.columns)
        self.owned_index = tuple(self.columns.index(c) for c in self.owned)
        self.types = {m.column: m.type for m in spec.mapping.columns}
        self.table = self.qualified(t.schema_name, t.table)
        self.tracking = False
        self.updated_at = False  # the table has an updated_at column the mapping does not own
        self.all_new = False  # the table was empty: the stage is the change set
        self.ageing = 0  # rows already missing that a full run ages (`compare`), their keys:
        self.aged_keys: list[str] = []
        self._limits: dict[str, int] = {}  # bounded character columns (PostgreSQL: varchar(n))
        self.cur = conn.cursor()

    # --- dialect hooks ----------------------------------------------------------------

    def qualified(self, schema: str, table: str) -> str:
        return f"{quote(schema)}.{quote(table)}"

    def table_columns(self) -> dict[str, bool] | None:
        """column → NOT NULL, or None when the table does not exist."""
        raise NotImplementedError

    def create_table(self) -> None:
        raise NotImplementedError

    def create_stage(self) -> None:
        raise NotImplementedError

    def load_stage(self, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def required_without_default(self) -> list[str]:
        """Columns a new row must be given a value for (NOT NULL, no default, not generated)."""
        return []

    def now(self) -> str:
        return "now()"

    def distinct(self, left: str, right: str) -> str:
        return f"({left}) IS DISTINCT FROM ({right})"

    def count_if(self, condition: str) -> str:
        return f"count(*) FILTER (WHERE {condition})"

    def today(self) -> str:
        return "CURRENT_DATE"

    def days_since(self, column: str) -> str:
        return f"(CURRENT_DATE - {column})"

    def database_checks(self) -> list[tuple[str, str, str, str]]:
        """(rule, column, message, SQL that selects the offending stage keys)."""
        return []

    def unique_indexes(self) -> list[tuple[str, list[str]]]:
        """(name, columns) of the target's unique constraints and indexes, partial and
        expression indexes left out (they are not pre-checked)."""
        return []

    def _unique_checks(self) -> list[tuple[str, str, str, str]]:
        """UNIQUE constraints and unique indexes other than the key's: a staged row whose value
        another staged row (with a smaller key) or another table row (as it will be after the
        upsert) already holds would be refused at the write."""
        k = quote(self.key)
        checks: list[tuple[str, str, str, str]] = []
        for name, columns in self.unique_indexes():
            if columns == [self.key] or not set(columns) <= set(self.owned):
                continue  # the key's own index, or columns the run never writes
            cols = [quote(c) for c in columns]
            same_staged = " AND ".join(f"o.{c} = s.{c}" for c in cols)
            after = " AND ".join(f"(CASE WHEN n.{k} IS NULL THEN t.{c} ELSE n.{c} END) = s.{c}" for c in cols)
            select = (f"SELECT s.{k} FROM {STAGE} s WHERE EXISTS (SELECT 1 FROM {STAGE} o "
                      f"WHERE o.{k} < s.{k} AND {same_staged}) OR EXISTS (SELECT 1 FROM {self.table} t "
                      f"LEFT JOIN {STAGE} n "
                      f"ON n.{k} = t.{k} WHERE t.{k} <> s.{k} AND {after})")
            checks.append(("constraints", name, f"unique constraint {name}: another row already has this "
                           f"{', '.join(columns)}", select))
        return checks

    # --- shared SQL ---------------------------------------------------------------------

    def sql(self, text: str, params: Sequence[Any] = ()) -> Any:
        self.cur.execute(text.replace("{p}", self.placeholder), tuple(params))
        return self.cur

    def scalar(self, text: str, params: Sequence[Any] = ()) -> Any:
        row = self.sql(text, params).fetchone()
        return row[0] if row else None

    def prepare(self) -> None:
        """Create the table if allowed, check its columns, create the stage tables."""
        columns = self.table_columns()
        if columns is None:
            if not self.spec.target.create_table:
                raise DriverError(f"table {self.table} does not exist and target.createTable is false")
            self.create_table()
            columns = self.table_columns() or {}
        missing = [c for c in self.owned if c not in columns]
        if missing:
            raise DriverError(f"table {self.table} has no column(s) {', '.join(missing)} that the mapping "
                              "owns; add them or change mapping.ownedColumns")
        self.tracking = all(c in columns for c in TRACKING)
        self.updated_at = UPDATED_AT in columns and UPDATED_AT not in self.owned
        written = set(self.owned) | (set(TRACKING) if self.tracking else set()) | {UPDATED_AT}
        unfilled = [c for c in self.required_without_default() if c not in written]
        if unfilled:
            raise DriverError(
                f"table {self.table} has NOT NULL column(s) {', '.join(unfilled)} without a default that the "
                "mapping does not fill: every new row would be refused at the write; map them "
                "(mapping.columns), give them a default (e.g. GENERATED BY DEFAULT AS IDENTITY for an id), "
                "or drop NOT NULL; nothing was written")
        if self.spec.deletion.policy.value == "mark" and not self.tracking:
            absent = [c for c in TRACKING if c not in columns]
            raise DriverError(f"deletion.policy mark needs the tracking column(s) {', '.join(absent)} in "
                              f"{self.table}; add them, or use policy delete or ignore")
        self.create_stage()

    def _owned_list(self, alias: str = "") -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + quote(c) for c in self.owned)

    def _absent_where(self, mode_full: bool) -> str:
        k = quote(self.key)
        # A rejected row whose key could not be read is matched to a table row by its content:
        # every column the row did carry (left NULL where it failed) equal.
        same = " AND ".join(f"(x.{quote(c)} IS NULL OR x.{quote(c)} = t.{quote(c)})"
                            for c in self.owned if c != self.key) or "1 = 0"
        return (f"NOT EXISTS (SELECT 1 FROM {STAGE} s WHERE s.{k} = t.{k}) "
                f"AND NOT EXISTS (SELECT 1 FROM {REJECTED} r WHERE r.{k} = t.{k}) "
                f"AND NOT EXISTS (SELECT 1 FROM {REJECTED_ROWS} x WHERE {same})")

    def _reappeared(self) -> str:
        return "t.data_status IS NOT NULL AND t.data_status <> 'active'" if self.tracking else "1 = 0"

    def stage_rejected_keys(self, keys: Iterable[str]) -> None:
        batch = [(k,) for k in keys]
        if batch:
            self.cur.executemany(f"INSERT INTO {REJECTED} ({quote(self.key)}) VALUES ({self.placeholder})",
                                 batch)

    def stage_rejected_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rejected rows whose key cannot name a table row (missing or invalid): their owned
        values (NULL where a value failed), kept so that the table row they still are is not
        taken for one the source dropped."""
        batch = [[self.adapt(row[i], c) for i, c in zip(self.owned_index, self.owned, strict=True)
                  if c != self.key] for row in rows]
        batch = [values for values in batch if sum(v is not None for v in values) >= min(3, len(values))]
        if not batch:
            return
        names = [c for c in self.owned if c != self.key]
        self.cur.executemany(f"INSERT INTO {REJECTED_ROWS} ({', '.join(quote(c) for c in names)}) VALUES "
                             f"({', '.join(self.placeholder for _ in names)})", batch)

    def run_database_checks(self) -> list[tuple[str, str, str, str]]:
        """Stage 3: (key, rule, column, message) of staged rows the target would refuse;
        those rows are taken out of the stage."""
        found: list[tuple[str, str, str, str]] = []
        k = quote(self.key)
        for rule, column, message, select in self.database_checks():
            for (key,) in self.sql(select).fetchall():
                found.append((key, rule, column, message))
        keys = sorted({f[0] for f in found})
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            self.sql(f"DELETE FROM {STAGE} WHERE {k} IN ({', '.join('{p}' for _ in chunk)})", chunk)
        self.stage_rejected_keys(keys)
        return found

    def compare(self, *, full: bool, samples: int) -> Comparison:
        """One pass over stage and table writes the change set (key, action) into a temporary
        table; every later step (counts, samples, snapshot, upsert, deletions) touches only
        the rows in it."""
        k = quote(self.key)
        c = Comparison()
        active = "data_status IS NULL OR data_status = 'active'" if self.tracking else "1 = 1"
        c.current, c.active = self.sql(
            f"SELECT count(*), {self.count_if(active)} FROM {self.table}").fetchone()
        figures = self.sql("SELECT count(*), " + ", ".join(f"count({quote(col)})" for col in self.owned)
                           + f" FROM {STAGE}").fetchone()
        c.staged = int(figures[0] or 0)
        if c.staged:
            c.null_columns = [col for col, n in zip(self.owned, figures[1:], strict=True) if n == 0]
        if c.current == 0:  # a first load: every staged row is new, nothing else to compare
            self.all_new = True
            c.inserts = c.staged
            c.samples = self._samples(samples)
            return c
        changed = f"{self.distinct(self._owned_list('t'), self._owned_list('s'))} OR {self._reappeared()}"
        self.sql(f"INSERT INTO {CHANGES} (k, action) SELECT s.{k}, CASE WHEN t.{k} IS NULL THEN 'create' "
                 f"ELSE 'update' END FROM {STAGE} s LEFT JOIN {self.table} t ON t.{k} = s.{k} "
                 f"WHERE t.{k} IS NULL OR {changed}")
        policy = self.spec.deletion.policy.value
        if full and policy != "ignore":
            marked = " AND (t.data_status IS NULL OR t.data_status = 'active')" if policy == "mark" else ""
            self.sql(f"INSERT INTO {CHANGES} (k, action) SELECT t.{k}, 'delete' FROM {self.table} t "
                     f"WHERE {self._absent_where(True)}{marked}")
        if full and policy == "mark" and self.tracking:
            ageing = self._ageing_where()
            self.ageing = int(self.scalar(f"SELECT count(*) FROM {self.table} t WHERE {ageing}") or 0)
            c.ageing = self.ageing
        counts = dict(self.sql(f"SELECT action, count(*) FROM {CHANGES} GROUP BY action").fetchall())
        c.inserts, c.updates, c.absent = (int(counts.get(a, 0)) for a in ("create", "update", "delete"))
        c.unchanged = c.staged - c.inserts - c.updates
        c.samples = self._samples(samples)
        return c

    def _samples(self, limit: int) -> list[tuple[str, str, Any, Any]]:
        """The first `limit` changes of each kind, by key."""
        if limit <= 0:
            return []
        k = quote(self.key)
        out: list[tuple[str, str, Any, Any]] = []
        names, n = self.owned, len(self.owned)
        if self.all_new:
            for row in self.sql(f"SELECT {self._owned_list()} FROM {STAGE} ORDER BY {k} "
                                f"LIMIT {int(limit)}").fetchall():
                created = dict(zip(names, row, strict=True))
                out.append(("create", str(created[self.key]), None, created))
            return out
        rows = self.sql(
            f"SELECT c.action, {self._owned_list('t')}, {self._owned_list('s')} FROM "
            f"(SELECT k, action, row_number() OVER (PARTITION BY action ORDER BY k) AS n FROM {CHANGES}) c "
            f"LEFT JOIN {self.table} t ON t.{k} = c.k LEFT JOIN {STAGE} s ON s.{k} = c.k "
            f"WHERE c.n <= {int(limit)} ORDER BY c.action, c.k").fetchall()
        for action, *values in rows:
            before = dict(zip(names, values[:n], strict=True)) if action != "create" else None
            after = dict(zip(names, values[n:], strict=True)) if action != "delete" else None
            key = (after or before or {}).get(self.key)
            out.append((action, str(key), before, after))
        return out

    def snapshot(self, *, full: bool) -> tuple[list[tuple[str, dict[str, Any] | None]], list[str]]:
        """The rows apply will change, as they are now (key → owned values and tracking), and
        the keys it will create."""
        k = quote(self.key)
        cols = list(self.owned) + (list(TRACKING) if self.tracking else [])
        select = ", ".join(f"t.{quote(c)}" for c in cols)
        if self.all_new:
            return [], [str(r[0]) for r in self.sql(f"SELECT {k} FROM {STAGE}").fetchall()]
        rows = self.sql(f"SELECT {select} FROM {CHANGES} c JOIN {self.table} t ON t.{k} = c.k "
                        f"WHERE c.action <> 'create'").fetchall()
        aged = []
        if full and self.ageing:
            # Rows missing since earlier runs that this run ages: a rollback restores them too.
            aged = self.sql(f"SELECT {select} FROM {self.table} t WHERE {self._ageing_where()} AND "
                            f"t.{k} NOT IN (SELECT k FROM {CHANGES})").fetchall()
        before: list[tuple[str, dict[str, Any] | None]] = [
            (str(r[cols.index(self.key)]), dict(zip(cols, r, strict=True))) for r in [*rows, *aged]]
        self.aged_keys = [key for key, _ in before[len(rows):]]
        created = [str(r[0]) for r in self.sql(f"SELECT k FROM {CHANGES} WHERE action = 'create'").fetchall()]
        return before, created

    def changed_keys(self) -> list[str]:
        """The keys of the change set (created, updated, deleted or marked) and the rows the
        run aged (see `snapshot`)."""
        return [str(k) for (k,) in self.sql(f"SELECT k FROM {CHANGES}").fetchall()] + self.aged_keys

    def upsert(self, batch_id: str) -> tuple[int, int]:
        """One set-based upsert of the staged rows in the change set; (inserted, updated)."""
        k = quote(self.key)
        owned = self._owned_list()
        rest = [c for c in self.owned if c != self.key]
        sets = [f"{quote(c)} = excluded.{quote(c)}" for c in rest]
        if self.tracking:
            cols = owned + ", data_status, first_seen_date, last_seen_date, consecutive_missing_days, " \
                           "deletion_suspected_date, sync_batch_id"
            values = (f"{self._owned_list('s')}, 'active', {self.today()}, {self.today()}, 0, NULL, "
                      f"{self.placeholder}")
            sets += ["data_status = 'active'", f"last_seen_date = {self.today()}",
                     "consecutive_missing_days = 0", "deletion_suspected_date = NULL",
                     "sync_batch_id = excluded.sync_batch_id"]
            params: tuple[Any, ...] = (batch_id,)
        else:
            cols, values, params = owned, self._owned_list("s"), ()
        if self.updated_at:
            cols, values = f"{cols}, {quote(UPDATED_AT)}", f"{values}, {self.now()}"
            sets.append(f"{quote(UPDATED_AT)} = {self.now()}")
        old = ", ".join(f"t.{quote(c)}" for c in rest)
        new = ", ".join(f"excluded.{quote(c)}" for c in rest)
        where = self.distinct(old, new) if rest else "1 = 0"
        if self.tracking:
            where += f" OR {self._reappeared()}"
        source = (f"{STAGE} s" if self.all_new else
                  f"{STAGE} s JOIN {CHANGES} c ON c.k = s.{k} AND c.action <> 'delete'")
        self.sql(f"INSERT INTO {self.table} AS t ({cols}) SELECT {values} FROM {source} WHERE true "
                 f"ON CONFLICT ({k}) DO UPDATE SET {', '.join(sets) or f'{k} = excluded.{k}'} WHERE {where}",
                 params)
        written = int(self.cur.rowcount)
        if self.all_new:
            return written, 0
        inserted = int(self.scalar(f"SELECT count(*) FROM {CHANGES} WHERE action = 'create'") or 0)
        return inserted, written - inserted

    def remove_absent(self, last_seen: date) -> tuple[int, int]:
        """Deletions of a full run (policy delete) or marks (policy mark), and the rows
        already missing that age (policy mark): (removed or marked, aged).

        A row newly absent was last seen by the previous successful run (`last_seen`): every
        run pulls the whole registry, so present rows need no daily bookkeeping write, and a
        run with nothing to change stays a no-op. It turns `deletion_suspected` once it has
        been missing for `suspectAfterDays` days."""
        policy = self.spec.deletion.policy.value
        k = quote(self.key)
        gone = f"t.{k} IN (SELECT k FROM {CHANGES} WHERE action = 'delete')"
        if policy == "delete":
            return int(self.sql(f"DELETE FROM {self.table} AS t WHERE {gone}").rowcount), 0
        if policy == "mark":
            days = self.spec.deletion.suspect_after_days
            since = self.days_since("t.last_seen_date")
            update = f"UPDATE {self.table} AS t SET"
            touched = f", {quote(UPDATED_AT)} = {self.now()}" if self.updated_at else ""
            marked = self.sql(f"{update} data_status = 'missing', last_seen_date = {{p}}{touched} "
                              f"WHERE {gone}",
                              (self.adapt(last_seen, "last_seen_date"),)).rowcount
            suspected = f"t.data_status = 'missing' AND {since} >= {days}"
            age = (f"{update} consecutive_missing_days = {since}{touched}, data_status = CASE WHEN "
                   f"{suspected} THEN 'deletion_suspected' ELSE t.data_status END, deletion_suspected_date = "
                   f"CASE WHEN {suspected} THEN {self.today()} ELSE t.deletion_suspected_date END "
                   f"WHERE {self._ageing_where()}")
            # Rows missing since earlier runs (the plan's `ageing`), then the ones just marked
            # (last seen by the previous run, which may be days ago: counted as marked).
            aged = self.sql(f"{age} AND NOT ({gone})").rowcount
            self.sql(f"{age} AND {gone}")
            return int(marked), int(aged)
        return 0, 0

    def _ageing_where(self) -> str:
        """Rows already marked missing, still absent, whose day count or status moves on today."""
        since = self.days_since("t.last_seen_date")
        days = self.spec.deletion.suspect_after_days
        return (f"t.data_status IN ('missing', 'deletion_suspected') AND {self._absent_where(True)} AND "
                f"({self.distinct('t.consecutive_missing_days', since)} OR "
                f"(t.data_status = 'missing' AND {since} >= {days}))")

    def restore(self, rows: Sequence[tuple[str, dict[str, Any] | None]]) -> tuple[int, int, int]:
        """Put rows back as snapshotted (None = the row did not exist): (created, updated, deleted)."""
        created = updated = deleted = 0
        k = quote(self.key)
        for key, values in rows:
            exists = self.scalar(f"SELECT count(*) FROM {self.table} WHERE {k} = {{p}}", (key,))
            if values is None:
                if exists:
                    self.sql(f"DELETE FROM {self.table} WHERE {k} = {{p}}", (key,))
                    deleted += 1
                continue
            cols = list(values)
            params = [self.adapt(values[c], c) for c in cols]
            if self.updated_at and UPDATED_AT not in values:
                cols.append(UPDATED_AT)
                now = datetime.now(UTC)
                params.append(now if self.placeholder == "%s" else now.isoformat())
            if exists:
                sets = ", ".join(f"{quote(c)} = {{p}}" for c in cols)
                self.sql(f"UPDATE {self.table} SET {sets} WHERE {k} = {{p}}", [*params, key])
                updated += 1
            else:
                self.sql(f"INSERT INTO {self.table} ({', '.join(quote(c) for c in cols)}) VALUES "
                         f"({', '.join('{p}' for _ in cols)})", params)
                created += 1
        return created, updated, deleted

    def adapt(self, value: Any, column: str) -> Any:
        return value

    def rows_of(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The current rows (owned + tracking columns) of these keys."""
        k = quote(self.key)
        cols = list(self.owned) + (list(TRACKING) if self.tracking else [])
        out: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            rows = self.sql(f"SELECT {', '.join(quote(c) for c in cols)} FROM {self.table} WHERE {k} IN "
                            f"({', '.join('{p}' for _ in chunk)})", chunk).fetchall()
            for row in rows:
                values = dict(zip(cols, row, strict=True))
                out[str(values[self.key])] = values
        return out

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection may already be gone
            self.conn.rollback()
        self.conn.close()


class PostgresTarget(Target):
    placeholder = "%s"

    @classmethod
    def connect(cls, url: str, spec: AedSourceBindingSpec) -> PostgresTarget:
        import psycopg

        url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        try:
            conn = psycopg.connect(url, autocommit=False)
        except psycopg.Error as exc:
            raise TargetError(f"cannot connect to the target database: {exc}".strip()) from None
        return cls(conn, spec)

    def table_columns(self) -> dict[str, bool] | None:
        t = self.spec.target
        rows = self.sql("SELECT a.attname, a.attnotnull FROM pg_attribute a JOIN pg_class c ON c.oid = "
                        "a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND "
                        "c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
                        (t.schema_name, t.table)).fetchall()
        return {name: notnull for name, notnull in rows} or None

    def required_without_default(self) -> list[str]:
        t = self.spec.target
        rows = self.sql("SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN "
                        "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s "
                        "AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef "
                        "AND a.attidentity = '' AND a.attgenerated = '' ORDER BY a.attnum",
                        (t.schema_name, t.table)).fetchall()
        return [name for (name,) in rows]

    def create_table(self) -> None:
        cols = [f"{quote(m.column)} {_PG_TYPES[m.type]}" + (" PRIMARY KEY" if m.column == self.key else "")
                for m in self.spec.mapping.columns]
        cols += ["data_status text NOT NULL DEFAULT 'active'", "first_seen_date date", "last_seen_date date",
                 "consecutive_missing_days integer NOT NULL DEFAULT 0", "deletion_suspected_date date",
                 "sync_batch_id text"]
        self.sql(f"CREATE SCHEMA IF NOT EXISTS {quote(self.spec.target.schema_name)}")
        self.sql(f"CREATE TABLE {self.table} ({', '.join(cols)})")

    def text_limits(self) -> dict[str, int]:
        """Owned columns of a bounded character type (varchar(n), char(n)) and their bound."""
        t = self.spec.target
        rows = self.sql("SELECT column_name, character_maximum_length FROM information_schema.columns WHERE "
                        "table_schema = %s AND table_name = %s AND character_maximum_length IS NOT NULL",
                        (t.schema_name, t.table)).fetchall()
        return {str(c): int(n) for c, n in rows if c in self.owned}

    def _staged(self, columns: Sequence[str]) -> str:
        """The select list of a stage: bounded character columns as text, so that a longer
        value is staged and rejected by stage 3 (`database_checks`), never a failed COPY."""
        limits = self._limits
        return ", ".join(f"{quote(c)}::text AS {quote(c)}" if c in limits else quote(c) for c in columns)

    def create_stage(self) -> None:
        k = quote(self.key)
        self._limits = self.text_limits()
        self.sql(f"CREATE TEMP TABLE {STAGE} ON COMMIT DROP AS SELECT {self._staged(self.owned)} FROM "
                 f"{self.table} WITH NO DATA")
        self.sql(f"CREATE TEMP TABLE {REJECTED} ON COMMIT DROP AS SELECT {self._staged([self.key])} FROM "
                 f"{self.table} WITH NO DATA")
        rest = self._staged([c for c in self.owned if c != self.key]) or k
        self.sql(f"CREATE TEMP TABLE {REJECTED_ROWS} ON COMMIT DROP AS SELECT {rest} FROM {self.table} "
                 "WITH NO DATA")
        self.sql(f"CREATE TEMP TABLE {CHANGES} ON COMMIT DROP AS SELECT {k} AS k, ''::text AS action "
                 f"FROM {self.table} WITH NO DATA")

    def load_stage(self, rows: Iterable[Sequence[Any]]) -> None:
        with self.cur.copy(f"COPY {STAGE} ({self._owned_list()}) FROM STDIN") as copy:
            if self.owned_index == tuple(range(len(self.columns))):  # every column, in order
                for row in rows:
                    copy.write_row(row)
            else:
                for row in rows:
                    copy.write_row([row[i] for i in self.owned_index])

    def database_checks(self) -> list[tuple[str, str, str, str]]:
        """NOT NULL, CHECK and single-column foreign keys of the target, on the stage."""
        checks: list[tuple[str, str, str, str]] = []
        columns = self.table_columns() or {}
        k = quote(self.key)
        if self.spec.validation.database.constraints.enabled:
            for column in self.owned:
                if columns.get(column) and column != self.key:
                    checks.append(("constraints", column, f"{column} is NOT NULL in the target",
                                   f"SELECT {k} FROM {STAGE} WHERE {quote(column)} IS NULL"))
            rows = self.sql("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                            "contype = 'c' AND conrelid = to_regclass(%s)", (self.table,)).fetchall()
            for name, definition in rows:
                expression = definition[len("CHECK "):] if definition.startswith("CHECK ") else None
                if expression is None or any(c in expression for c in TRACKING):
                    continue
                checks.append(("constraints", name, f"check constraint {name}: {definition}",
                               f"SELECT {k} FROM {STAGE} WHERE NOT {expression}"))
            for column, limit in sorted(self._limits.items()):
                checks.append(("constraints", column,
                               f"{column} holds at most {limit} characters in the target",
                               f"SELECT {k} FROM {STAGE} WHERE length({quote(column)}) > {limit}"))
            checks.extend(self._unique_checks())
        if self.spec.validation.database.foreign_keys.enabled:
            rows = self.sql(
                "SELECT c.conname, a.attname, c.confrelid::regclass::text, fa.attname FROM pg_constraint c "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
                "JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1] "
                "WHERE c.contype = 'f' AND c.conrelid = to_regclass(%s) AND cardinality(c.conkey) = 1",
                (self.table,)).fetchall()
            for name, column, ref_table, ref_column in rows:
                if column not in self.owned:
                    continue
                own, ref = quote(column), quote(ref_column)
                checks.append(("foreignKeys", column, f"foreign key {name}: no {ref_column} in {ref_table}",
                               f"SELECT s.{k} FROM {STAGE} s WHERE s.{own} IS NOT NULL AND NOT EXISTS "
                               f"(SELECT 1 FROM {ref_table} r WHERE r.{ref} = s.{own})"))
        return checks


    def unique_indexes(self) -> list[tuple[str, list[str]]]:
        rows = self.sql(
            "SELECT ic.relname, array_agg(a.attname ORDER BY a.attnum) "
            "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indpred IS NULL "
            "AND i.indexprs IS NULL GROUP BY ic.relname", (self.table,)).fetchall()
        return [(name, list(columns)) for name, columns in rows]


class SqliteTarget(Target):
    """SQLite for the quickstart: same semantics, batched inserts instead of COPY."""

    placeholder = "?"

    @classmethod
    def connect(cls, url: str, spec: AedSourceBindingSpec) -> SqliteTarget:
        path = url.split("///", 1)[1] if "///" in url else url.removeprefix("sqlite:")
        from pathlib import Path

        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Used from worker threads, one call at a time (the driver keeps the event loop free).
        conn = sqlite3.connect(str(Path(path).expanduser()), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("BEGIN IMMEDIATE")
        return cls(conn, spec)

    def qualified(self, schema: str, table: str) -> str:
        return quote(table)  # SQLite has no schemas (the main database)

    def table_columns(self) -> dict[str, bool] | None:
        rows = self.sql(f"PRAGMA table_info({quote(self.spec.target.table)})").fetchall()
        return {row[1]: bool(row[3]) for row in rows} or None

    def required_without_default(self) -> list[str]:
        rows = self.sql(f"PRAGMA table_info({quote(self.spec.target.table)})").fetchall()
        # (cid, name, type, notnull, default, pk): an INTEGER PRIMARY KEY is the rowid (filled)
        return [row[1] for row in rows if row[3] and row[4] is None
                and not (row[5] and str(row[2]).upper() == "INTEGER")]

    def now(self) -> str:
        return "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"

    def create_table(self) -> None:
        cols = [f"{quote(m.column)} {_SQLITE_TYPES[m.type]}" + (" PRIMARY KEY" if m.column == self.key
                                                                 else "") for m in self.spec.mapping.columns]
        cols += ["data_status TEXT NOT NULL DEFAULT 'active'", "first_seen_date TEXT", "last_seen_date TEXT",
                 "consecutive_missing_days INTEGER NOT NULL DEFAULT 0", "deletion_suspected_date TEXT",
                 "sync_batch_id TEXT"]
        self.sql(f"CREATE TABLE {self.table} ({', '.join(cols)})")

    def create_stage(self) -> None:
        cols = ", ".join(f"{quote(c)} {_SQLITE_TYPES[self.types[c]]}" for c in self.owned)
        self.sql(f"DROP TABLE IF EXISTS temp.{STAGE}")
        self.sql(f"DROP TABLE IF EXISTS temp.{REJECTED}")
        self.sql(f"CREATE TEMP TABLE {STAGE} ({cols}, PRIMARY KEY ({quote(self.key)}))")
        self.sql(f"CREATE TEMP TABLE {REJECTED} ({quote(self.key)} TEXT PRIMARY KEY)")
        self.sql(f"DROP TABLE IF EXISTS temp.{REJECTED_ROWS}")
        rest = ", ".join(f"{quote(c)} {_SQLITE_TYPES[self.types[c]]}" for c in self.owned if c != self.key)
        self.sql(f"CREATE TEMP TABLE {REJECTED_ROWS} ({rest or quote(self.key) + ' TEXT'})")
        self.sql(f"DROP TABLE IF EXISTS temp.{CHANGES}")
        self.sql(f"CREATE TEMP TABLE {CHANGES} (k TEXT PRIMARY KEY, action TEXT NOT NULL)")

    def load_stage(self, rows: Iterable[Sequence[Any]]) -> None:
        marks = ", ".join("?" for _ in self.owned)
        self.cur.executemany(f"INSERT INTO {STAGE} ({self._owned_list()}) VALUES ({marks})",
                             [[_sqlite_value(row[i]) for i in self.owned_index] for row in rows])

    def distinct(self, left: str, right: str) -> str:
        lefts, rights = left.split(", "), right.split(", ")
        return "(" + " OR ".join(f"{a} IS NOT {b}" for a, b in zip(lefts, rights, strict=True)) + ")"

    def today(self) -> str:
        return "date('now')"

    def count_if(self, condition: str) -> str:
        return f"coalesce(sum(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)"

    def days_since(self, column: str) -> str:
        return f"CAST(julianday(date('now')) - julianday({column}) AS INTEGER)"

    def adapt(self, value: Any, column: str) -> Any:
        return _sqlite_value(value)

    def database_checks(self) -> list[tuple[str, str, str, str]]:
        checks: list[tuple[str, str, str, str]] = []
        if self.spec.validation.database.constraints.enabled:
            k = quote(self.key)
            for column, notnull in (self.table_columns() or {}).items():
                if notnull and column in self.owned and column != self.key:
                    checks.append(("constraints", column, f"{column} is NOT NULL in the target",
                                   f"SELECT {k} FROM {STAGE} WHERE {quote(column)} IS NULL"))
            checks.extend(self._unique_checks())
        return checks

    def unique_indexes(self) -> list[tuple[str, list[str]]]:
        """From `PRAGMA index_list` (unique, not partial) and `PRAGMA index_info` (no
        expression columns); an inline `UNIQUE` is named by SQLite `sqlite_autoindex_…`."""
        table = quote(self.spec.target.table)
        found: list[tuple[str, list[str]]] = []
        for _seq, name, unique, _origin, partial in self.sql(f"PRAGMA index_list({table})").fetchall():
            if not unique or partial:
                continue
            info = self.sql(f"PRAGMA index_info({quote(name)})").fetchall()
            columns = [column for _seqno, _cid, column in sorted(info)]
            if columns and all(columns):
                found.append((name, columns))
        return found


def open_target(url: str, spec: AedSourceBindingSpec) -> Target:
    """A target for a `postgresql://…` or `sqlite:///path` URL."""
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return PostgresTarget.connect(url.replace("postgres://", "postgresql://", 1), spec)
    if url.startswith("sqlite:"):
        return SqliteTarget.connect(url, spec)
    scheme = url.split(":", 1)[0] if ":" in url else "(none)"
    raise DriverError(f"target.databaseUrl: expected a postgresql:// or sqlite:/// URL, got scheme "
                      f"{scheme!r}")
