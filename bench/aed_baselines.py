"""Baselines for `bench/aed.py`: the AED registry into PostgreSQL without the reconciler.

    python bench/aed_baselines.py limit|executemany|dlt --url BASE_URL --db POSTGRES_URL --table NAME

`--url` is the service URL (`http://127.0.0.1:PORT/B552657/AEDInfoInqireService`, the
emulator's or the real one), `--db` a `postgresql://` URL, `--table` the target table
(schema `public`; dlt writes to its own dataset schema, `--dataset`, default `aed_dlt`).
Each run ends by printing one JSON line on stdout: `{"tool", "table", "source_rows",
"written"}` (`written`: rows the upsert inserted or updated; null when unknown).

- `limit`, the practical limit: httpx fetch of every page (page 1 first for `totalCount`,
  then pages 2..N by `--concurrency` workers sharing one page counter, `--page-size` rows
  each, as the reconciler's fetcher does), each page parsed whole with
  `xml.etree.ElementTree` and mapped to the same columns with the same simple
  conversions as the spec (`--columns example`: the 11 of `examples/aed`; `full`: the 36 of
  `bench/aed_full.yaml`; strip, placeholders to NULL, `Decimal` coordinates, the short sido
  name, the address prefixed with the long sido and the gugun when it has none, Y/N flags
  as booleans),
  streamed through psycopg 3 (async) `COPY` into a temporary staging table as pages arrive,
  then ONE `INSERT … SELECT … ON CONFLICT (equipment_serial) DO UPDATE SET … WHERE
  (t.cols) IS DISTINCT FROM (EXCLUDED.cols)` and a commit. No validation, no deletions or
  marks, no bookkeeping: the floor any loader of this API into this table pays.
- `executemany`: the same fetch, parse and mapping, then the row-by-row upsert (`INSERT …
  VALUES … ON CONFLICT … DO UPDATE … WHERE … IS DISTINCT FROM`) through psycopg 3
  `executemany`, one call per page as pages arrive, all in one transaction: the usual
  hand-written loader.
- `dlt`: dlt's `rest_api` source (JSON answers, `_type=json`; page-number paginator, one
  page after another, as the declarative source pages sequentially) into PostgreSQL with
  `write_disposition` merge / upsert on `equipment_serial`, the same mapping applied with
  `add_map`. Only when `import dlt` works; nothing is installed here (`bench/aed.py --dlt`
  runs this script in a virtual environment of its own that has dlt). dlt keeps its pipeline
  state in `--work-dir` (a temporary directory by default).

`limit` and `executemany` create the table when it is absent, with the columns the
reconciler's `PostgresTarget.create_table` gives it for the spec (the mapped columns, then
the tracking columns with their defaults), so the tables compare column by
column.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql


def _regions() -> Any:
    """`reconciler/drivers/aed/regions.py` (pure data, standard library only), loaded by path:
    importing it as a module of the package would import the reconciler's engine first,
    which a baseline does not need (and the dlt environment does not have)."""
    path = Path(__file__).resolve().parent.parent / "reconciler" / "drivers" / "aed" / "regions.py"
    spec = importlib.util.spec_from_file_location("_aed_regions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_REGIONS = _regions()
long_sido, short_sido = _REGIONS.long_sido, _REGIONS.short_sido

OPERATION = "getAedFullDown"
KEY = "equipment_serial"
EXAMPLE_COLUMNS: tuple[str, ...] = (
    "equipment_serial", "sido", "gugun", "installation_institution", "installation_address",
    "installation_position", "latitude", "longitude", "manufacturer", "model_name", "institution_contact",
)  # fmt: skip
"""The mapped columns of `examples/aed`, in its order."""
_EXTRA_TEXT: tuple[tuple[str, str], ...] = (
    ("manager", "manager"), ("manager_contact", "managerTel"),
)
_PLAIN: tuple[tuple[str, str], ...] = (
    ("zipcode1", "zipcode1"), ("zipcode2", "zipcode2"),
    *((f"{day}_{name}", f"{day}{edge}Tme") for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "hol")
      for edge, name in (("Stt", "start"), ("End", "end"))),
)
_FLAGS: tuple[tuple[str, str], ...] = tuple(
    (f"sunday_week{i}", f"sun{w}Yon") for i, w in enumerate(("Frt", "Scd", "Thi", "Fur", "Fif"), 1))
FULL_COLUMNS: tuple[str, ...] = (
    *EXAMPLE_COLUMNS, *(c for c, _ in _EXTRA_TEXT), *(c for c, _ in _PLAIN), *(c for c, _ in _FLAGS))
"""The mapped columns of `bench/aed_full.yaml` (every field of an item but rnum), in its order."""
COLUMNS = EXAMPLE_COLUMNS  # the set in use (`--columns`)
PLACEHOLDERS = frozenset({"필요", "신규", "미정", "없음"})
_TRACKING_DDL = (
    "data_status text NOT NULL DEFAULT 'active', first_seen_date date, last_seen_date date, "
    "consecutive_missing_days integer NOT NULL DEFAULT 0, deletion_suspected_date date, sync_batch_id text"
)
_TYPES = {"latitude": "numeric", "longitude": "numeric", **{c: "boolean" for c, _ in _FLAGS}}


def _ddl_columns() -> str:
    """The columns `PostgresTarget.create_table` gives the spec of the column set in use."""
    cols = [f"{c} {_TYPES.get(c, 'text')}" + (" PRIMARY KEY" if c == KEY else "") for c in COLUMNS]
    return ", ".join([*cols, _TRACKING_DDL])


Row = tuple[Any, ...]
Sink = Callable[[list[Row]], Awaitable[None]]


# --- mapping (the example spec's transforms, without validation) ------------------------------------

def _clean(value: str | None) -> str | None:
    """trim, then placeholderToNull."""
    if value is None:
        return None
    value = value.strip()
    return None if not value or value in PLACEHOLDERS else value


def _address(item: Mapping[str, str]) -> str | None:
    address = _clean(item.get("buildAddress"))
    sido = (item.get("sido") or "").strip()
    if address is None or not sido or short_sido(address.split(" ", 1)[0]) is not None:
        return address
    prefix = f"{long_sido(sido) or sido} {(item.get('gugun') or '').strip()}".strip()
    return address if address.startswith(prefix) else f"{prefix} {address}"


def _decimal(value: Any) -> Decimal | None:
    text = str(value).strip() if value is not None else ""
    return Decimal(text.replace(",", "")) if text else None


def _flag(value: str | None) -> bool | None:
    """trim, then Y/N as a boolean (the spec's `type: boolean`)."""
    text = (value or "").strip().upper()
    return None if not text else text in ("Y", "YES", "TRUE", "1")


def _plain(value: str | None) -> str | None:
    """trim only."""
    return (value.strip() or None) if value is not None else None


def map_item(item: Mapping[str, Any]) -> Row:
    """One API item (field → string) as a row of `COLUMNS`."""
    serial = str(item.get("serialSeq") or "").strip() or None
    sido = _clean(item.get("sido"))
    row: Row = (
        serial,
        (short_sido(sido) or sido) if sido is not None else None,
        _clean(item.get("gugun")),
        _clean(item.get("org")),
        _address(item),
        _clean(item.get("buildPlace")),
        _decimal(item.get("wgs84Lat")),
        _decimal(item.get("wgs84Lon")),
        _clean(item.get("mfg")),
        _clean(item.get("model")),
        _clean(item.get("clerkTel")),
    )
    if COLUMNS is EXAMPLE_COLUMNS:
        return row
    return (*row, *(_clean(item.get(f)) for _, f in _EXTRA_TEXT), *(_plain(item.get(f)) for _, f in _PLAIN),
            *(_flag(item.get(f)) for _, f in _FLAGS))


# --- fetching and parsing ------------------------------------------------------------------------------

def parse_page(body: bytes) -> tuple[int, list[Row]]:
    """(totalCount, rows) of one XML page; any result code but 00 raises."""
    root = ET.fromstring(body)
    code = root.findtext("header/resultCode")
    if code != "00":
        raise RuntimeError(f"the API answered resultCode {code!r}: {root.findtext('header/resultMsg')!r}")
    total = int(root.findtext("body/totalCount") or "0")
    items = root.iterfind("body/items/item")
    rows = [map_item({child.tag: child.text or "" for child in item}) for item in items]
    return total, rows


async def pull(url: str, key: str, page_size: int, concurrency: int, sink: Sink) -> int:
    """Fetch every page (`concurrency` at a time after page 1), hand each page's rows to `sink`
    (one call at a time, in completion order); the number of rows."""
    endpoint = f"{url.rstrip('/')}/{OPERATION}"
    lock = asyncio.Lock()
    seen = 0

    async def page(client: httpx.AsyncClient, number: int) -> int:
        nonlocal seen
        response = await client.get(endpoint, params={"serviceKey": key, "numOfRows": str(page_size),
                                                      "pageNo": str(number)})
        response.raise_for_status()
        total, rows = parse_page(response.content)
        async with lock:
            await sink(rows)
            seen += len(rows)
        return total

    async def worker(client: httpx.AsyncClient, numbers: Iterator[int]) -> None:
        for number in numbers:
            await page(client, number)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        total = await page(client, 1)
        pages = max(1, math.ceil(total / page_size))
        numbers = iter(range(2, pages + 1))
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, pages - 1)):
                group.create_task(worker(client, numbers))
    if seen != total:
        raise RuntimeError(f"the pages held {seen} rows, but totalCount is {total}")
    return seen


# --- the SQL -----------------------------------------------------------------------------------------

def _ident_list(alias: str = "", names: tuple[str, ...] | None = None) -> sql.Composable:
    names = COLUMNS if names is None else names
    return sql.SQL(", ").join(sql.Identifier(alias, n) if alias else sql.Identifier(n) for n in names)


def _on_conflict() -> sql.Composable:
    rest = tuple(c for c in COLUMNS if c != KEY)
    sets = sql.SQL(", ").join(sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
                              for c in rest)
    return sql.SQL("ON CONFLICT ({key}) DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})").format(
        key=sql.Identifier(KEY), sets=sets, old=_ident_list("t", rest), new=_ident_list("excluded", rest))


async def _create_table(conn: psycopg.AsyncConnection[Any], table: str) -> None:
    await conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(
        sql.Identifier("public", table), sql.SQL(_ddl_columns())))


async def run_limit(args: argparse.Namespace) -> tuple[int, int | None]:
    target = sql.Identifier("public", args.table)
    stage = sql.Identifier("_bench_aed_stage")
    async with await psycopg.AsyncConnection.connect(args.db) as conn:
        await _create_table(conn, args.table)
        await conn.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
                           .format(stage, _ident_list(), target))
        cur = conn.cursor()
        async with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, _ident_list())) as copy:

            async def sink(rows: list[Row]) -> None:
                for row in rows:
                    await copy.write_row(row)

            source_rows = await pull(args.url, args.key, args.page_size, args.concurrency, sink)
        await cur.execute(sql.SQL("INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {stage} {conflict}")
                          .format(target=target, cols=_ident_list(), stage=stage, conflict=_on_conflict()))
        written = cur.rowcount
        await conn.commit()
    return source_rows, written


async def run_executemany(args: argparse.Namespace) -> tuple[int, int | None]:
    target = sql.Identifier("public", args.table)
    statement = sql.SQL("INSERT INTO {target} AS t ({cols}) VALUES ({marks}) {conflict}").format(
        target=target, cols=_ident_list(), marks=sql.SQL(", ").join(sql.Placeholder() for _ in COLUMNS),
        conflict=_on_conflict())
    written = 0
    async with await psycopg.AsyncConnection.connect(args.db) as conn:
        await _create_table(conn, args.table)
        cur = conn.cursor()

        async def sink(rows: list[Row]) -> None:
            nonlocal written
            await cur.executemany(statement, rows)
            written += max(cur.rowcount, 0)

        source_rows = await pull(args.url, args.key, args.page_size, args.concurrency, sink)
        await conn.commit()
    return source_rows, written


def _with_password(url: str) -> str:
    """dlt's PostgreSQL credentials require a password; trust auth ignores the one given here."""
    parts = urlsplit(url)
    if parts.password is not None or "@" not in parts.netloc:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user}:unused@{host}"))


def run_dlt(args: argparse.Namespace) -> tuple[int, int | None]:
    try:
        import dlt
        from dlt.sources.rest_api import rest_api_source
    except ImportError:
        print("dlt: not installed (skipped)", file=sys.stderr)
        raise SystemExit(3) from None
    # The page count, so the paginator needs neither totalCount in pages nor an empty page.
    first = httpx.get(f"{args.url.rstrip('/')}/{OPERATION}",
                      params={"serviceKey": args.key, "numOfRows": "1", "pageNo": "1"}, timeout=30.0)
    total, _ = parse_page(first.content)
    pages = max(1, math.ceil(total / args.page_size))
    config: dict[str, Any] = {
        "client": {
            "base_url": args.url.rstrip("/") + "/",
            "paginator": {"type": "page_number", "base_page": 1, "page_param": "pageNo", "total_path": None,
                          "maximum_page": pages + 1, "stop_after_empty_page": True},
        },
        "resources": [{
            "name": args.table,
            "primary_key": KEY,
            "write_disposition": {"disposition": "merge", "strategy": "upsert"},
            "endpoint": {
                "path": OPERATION,
                "params": {"serviceKey": args.key, "numOfRows": args.page_size, "_type": "json"},
                "data_selector": "response.body.items.item",
            },
        }],
    }
    source = rest_api_source(config)
    source.resources[args.table].add_map(lambda item: dict(zip(COLUMNS, map_item(item), strict=True)))
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench-aed-dlt-")
    pipeline = dlt.pipeline(pipeline_name=f"bench_aed_{args.table}", pipelines_dir=work_dir,
                            destination=dlt.destinations.postgres(credentials=_with_password(args.db)),
                            dataset_name=args.dataset)
    pipeline.run(source)
    with pipeline.sql_client() as client:
        rows = client.execute_sql(f"SELECT count(*) FROM {args.dataset}.{args.table}")
    print(f"dlt: {rows[0][0]} rows in {args.dataset}.{args.table}", file=sys.stderr)
    return total, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("tool", choices=("limit", "executemany", "dlt"))
    parser.add_argument("--url", required=True, help="the service URL (…/AEDInfoInqireService)")
    parser.add_argument("--db", required=True, help="a postgresql:// URL")
    parser.add_argument("--table", required=True)
    parser.add_argument("--key", default="bench", help="the service key")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--dataset", default="aed_dlt", help="dlt only: the schema it loads into")
    parser.add_argument("--work-dir", default=None, help="dlt only: its pipelines directory")
    parser.add_argument("--columns", choices=("example", "full"), default="example",
                        help="the columns of examples/aed (11) or of bench/aed_full.yaml (36)")
    args = parser.parse_args(argv)
    global COLUMNS
    COLUMNS = FULL_COLUMNS if args.columns == "full" else EXAMPLE_COLUMNS
    if args.tool == "dlt":
        source_rows, written = run_dlt(args)
        table = f"{args.dataset}.{args.table}"
    else:
        runner = run_limit if args.tool == "limit" else run_executemany
        source_rows, written = asyncio.run(runner(args))
        table = f"public.{args.table}"
    print(json.dumps({"tool": args.tool, "table": table, "source_rows": source_rows, "written": written}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
