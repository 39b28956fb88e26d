"""Benchmark of the AedSourceBinding driver against hand-written loaders, on the same data.

    python bench/aed.py [--runs N] [--json] [--port P] [--spec full|example] [--no-dlt]

What is measured: for every phase, the wall time and the peak RSS of one whole process
(interpreter start-up, imports, spec loading, the store, the pull, the database work):
- the reconciler: `reconciler apply <spec dir>`, where the spec is a copy of
  `bench/aed_full.yaml` (`--spec full`, the default: the example binding with every field of
  an item mapped, 36 columns; validation, snapshots and run records on, as in the example)
  or of `examples/aed/aedsourcebinding.yaml` (`--spec example`, 11 columns), with `baseUrl`
  on the bench's emulator and the table `aed_reconciler`; env AED_DATABASE_URL (the bench
  database), EGEN_SERVICE_KEY=bench and RECONCILER_STATE_DIR (a fresh temporary directory
  per run: a fresh SQLite store);
- the baselines of `bench/aed_baselines.py` (see its docstring): `limit` (httpx + ElementTree
  + COPY into a stage + one `INSERT … ON CONFLICT … WHERE … IS DISTINCT FROM`: the practical
  floor), `executemany` (the same, row by row through psycopg 3 `executemany`) and `dlt`
  (dlt's rest_api source with merge/upsert), each mapping the same columns as the spec,
  each into its own table of the same database. dlt runs in a virtual environment of the
  bench's own, `~/.cache/reconciler-bench/dlt-venv` (`--dlt-venv`), created on first use
  with `pip install "dlt[postgres]" httpx "psycopg[binary]"`: it is never a dependency of
  the project. `--no-dlt` skips it.

Before anything is timed, the package's bytecode is written as an installation writes it
(`bench/installed.py`), so that the reconciler's process does not compile its own source
where PYTHONDONTWRITEBYTECODE is set (the baselines are single scripts; dlt is installed).

The phases, in order, each run by every tool on its own table:
  (a) first full load into an empty table (the 81,464 records of `EgenEmulator()`);
  (b) the next day: a second emulator serving `changed_fraction=0.02` (1,629 records
      changed, 1,409 of them in mapped columns; 407 removed, 407 added; the reconciler
      marks the removed ones, the baselines keep them, as they do no bookkeeping);
  (c) a no-op: the same mutated data again.
Both emulators run in this process, in background threads, on free ports (or `--port P`
and P+1), and every page is requested once before any timing, so that no tool pays for
the emulator's first rendering of a page; then this process's objects are frozen
(`gc.freeze`), so that a full collection over the emulators' millions of objects cannot
stall a page being served. `--runs N` repeats the whole sequence N times on
fresh tables (and a fresh reconciler store); medians are reported.

How: each command runs under a tiny wrapper (`python -I -S -c _WRAPPER`, about 10 MiB),
which starts it with `subprocess.Popen` and reaps it with `os.wait4`: that resource usage
belongs to that one child alone, so its `ru_maxrss` is the peak resident set of the
command's process (or of its largest reaped descendant; none of these commands starts
one), not a mix with earlier children as `getrusage(RUSAGE_CHILDREN)` deltas would be.
The wrapper is needed because this process is big (the emulators hold two registries):
Linux counts a child's pre-exec high-water mark in its ru_maxrss, so anything forked from
here directly would report this process's size. The wrapper's own size is the floor of
the method; it is measured (an exec of /bin/true) and printed. Wall time is
`time.perf_counter` in the wrapper, from just before the start to the reap. RSS is
reported in MiB (ru_maxrss KiB / 1024); the 200 MB target is read as 200 MiB.

Checks (a failed one makes the exit status 1): every command exits 0; after (a) every table
holds 81,464 rows; the reconciler reports `succeeded` for (a) and (b) and `noop` for (c); the
baselines write 0 rows in (c); after (c) the reconciler's and the baselines' tables hold the
same values in the mapped columns (dlt's excepted: its table has dlt's own types).
Targets, printed and checked per phase: reconciler wall <= 1.5 x limit, at least 1.5 x
faster than executemany and 3.5 x faster than dlt, reconciler peak RSS < 200 MiB. A missed
target is reported, not an error.

The bench creates its own database `bench_aed_<pid>` on 127.0.0.1:5432 (user postgres;
override with `--admin-url`) and drops it at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from psycopg import sql

from reconciler.emulator.egen import EgenEmulator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "aed" / "aedsourcebinding.yaml"
SPECS = {"full": Path(__file__).resolve().parent / "aed_full.yaml", "example": EXAMPLE}
DLT_VENV = Path.home() / ".cache" / "reconciler-bench" / "dlt-venv"
DLT_PACKAGES = ("dlt[postgres]", "httpx", "psycopg[binary]")
BASELINES = Path(__file__).resolve().parent / "aed_baselines.py"
EXAMPLE_URL = "http://127.0.0.1:8089/B552657/AEDInfoInqireService"
RECORDS = 81_464
PAGE_SIZE = 1000
CHANGED_FRACTION = 0.02
SERVICE_KEY = "bench"
PHASES: tuple[tuple[str, str], ...] = (("a", "first load"), ("b", "2% changed"), ("c", "no-op"))
TOOLS: tuple[str, ...] = ("reconciler", "limit", "executemany", "dlt")
TABLES = {"reconciler": "aed_reconciler", "limit": "aed_limit", "executemany": "aed_executemany",
          "dlt": "aed_dlt"}
DLT_DATASET = "aed_dlt"
RSS_LIMIT_MB = 200.0
LIMIT_RATIO = 1.5
EXECUTEMANY_SPEEDUP = 1.5
DLT_SPEEDUP = 3.5
_SUMMARY = re.compile(r": (\w+) \((\d+) (?:to create|created), (\d+) (?:to update|updated), "
                      r"(\d+) (?:to delete|deleted), (\d+) unchanged\)")


@dataclass(slots=True)
class Sample:
    """One process: wall seconds, peak RSS, exit status, what it printed."""

    wall_s: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str
    result: str = ""  # a one-line summary of what the tool did


@dataclass(slots=True)
class Figures:
    """One tool in one phase over the runs."""

    walls: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    results: list[str] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return statistics.median(self.walls)

    @property
    def peak_rss_mb(self) -> float:
        return statistics.median(self.rss)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


_WRAPPER = """\
import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
wall = time.perf_counter() - start
child.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as report:
    report.write(f"{wall!r} {usage.ru_maxrss} {child.returncode}")
"""
"""Runs argv[2:] and writes `wall maxrss_kib exit` to argv[1]. It exists because this process
is large (two emulators' data): a child forked from it would carry that RSS until its exec,
and Linux counts the pre-exec high-water mark in the child's ru_maxrss."""


def measure(command: Sequence[str], env: dict[str, str]) -> Sample:
    """Run `command` to its end (through `_WRAPPER`); its wall time and its own peak RSS."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".txt") as report:
        wrapper = [sys.executable, "-I", "-S", "-c", _WRAPPER, report.name]
        done = subprocess.run([*wrapper, *command], env=env, stdout=out, stderr=err,
                              stdin=subprocess.DEVNULL, check=False)
        figures = report.read().split()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if len(figures) != 3:
        return Sample(0.0, 0.0, done.returncode or 1, stdout, f"{stderr}\n(the wrapper failed)")
    wall, rss_kib, code = float(figures[0]), int(figures[1]), int(figures[2])
    return Sample(wall, rss_kib / 1024, code, stdout, stderr)


# --- the environment: database, emulators, spec -----------------------------------------------------

@contextlib.contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    """A database of our own for the whole bench, dropped at the end; its URL."""
    name = f"bench_aed_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def as_url(conninfo: str) -> str:
    """A postgresql:// URL for a conninfo string (the reconciler takes URLs only)."""
    if conninfo.startswith(("postgresql://", "postgres://")):
        return conninfo
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    user, host = params.get("user", "postgres"), params.get("host", "127.0.0.1")
    port, dbname = params.get("port", 5432), params.get("dbname", "postgres")
    return f"postgresql://{user}@{host}:{port}/{dbname}"


def warm(emulator: EgenEmulator, *, json_too: bool) -> None:
    """Request every page once: the emulator renders and caches it before any timing."""
    pages = -(-emulator.item_count // PAGE_SIZE)
    url = f"{emulator.base_url}/getAedFullDown"
    with httpx.Client(timeout=60.0) as client:
        for page in range(1, pages + 2):  # one past the end as well (dlt asks for it)
            for extra in ({}, {"_type": "json"}) if json_too else ({},):
                params = {"serviceKey": SERVICE_KEY, "numOfRows": str(PAGE_SIZE), "pageNo": str(page)}
                client.get(url, params={**params, **extra}).raise_for_status()


@dataclass(frozen=True, slots=True)
class Setup:
    """What this bench run compares: the spec, its mapped columns, the dlt interpreter."""

    spec: Path
    columns: str  # the baselines' --columns: "full" or "example"
    mapped: tuple[str, ...]
    dlt_python: Path | None = None


def mapped_columns(spec: Path) -> tuple[str, ...]:
    doc = yaml.safe_load(spec.read_text(encoding="utf-8"))
    return tuple(str(c["column"]) for c in doc["spec"]["mapping"]["columns"])


def dlt_python(venv: Path) -> Path:
    """The interpreter of the bench's own dlt environment, created (and dlt installed) on first use."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import dlt, httpx, psycopg"],
                                          capture_output=True, check=False).returncode == 0:
        return python
    log(f"dlt: creating {venv} and installing {' '.join(DLT_PACKAGES)} (once)")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *DLT_PACKAGES], check=True)
    return python


def write_spec(directory: Path, base_url: str, source: Path) -> Path:
    text = source.read_text(encoding="utf-8")
    for old, new in ((f"baseUrl: {EXAMPLE_URL}", f"baseUrl: {base_url}"),
                     ("table: aed_data", f"table: {TABLES['reconciler']}")):
        if old not in text:
            raise SystemExit(f"{source}: expected {old!r} in the spec")
        text = text.replace(old, new)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / source.name).write_text(text, encoding="utf-8")
    return directory


def base_env() -> dict[str, str]:
    """This environment without RECONCILER_* (no store or settings of the caller leak in)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}


# --- one phase of one tool ----------------------------------------------------------------------------

def reconciler_phase(spec_dir: Path, env: dict[str, str], phase: str, problems: list[str]) -> Sample:
    exe = Path(sys.executable).with_name("reconciler")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "reconciler.cli"]
    sample = measure([*command, "apply", str(spec_dir)], env)
    match = _SUMMARY.search(sample.stdout)
    if sample.returncode != 0 or match is None:
        problems.append(f"({phase}) reconciler: exit {sample.returncode}\n{sample.stdout}\n{sample.stderr}")
        sample.result = f"failed (exit {sample.returncode})"
        return sample
    outcome, created, updated, deleted, unchanged = match.groups()
    sample.result = f"{outcome}: +{created} ~{updated} -{deleted} ={unchanged}"
    expected = "noop" if phase == "c" else "succeeded"
    if outcome != expected:
        problems.append(f"({phase}) reconciler: expected outcome {expected}, got{match.group(0)}")
    return sample


def baseline_phase(tool: str, url: str, db: str, work_dir: Path, phase: str, problems: list[str],
                   setup: Setup) -> Sample:
    python = setup.dlt_python if tool == "dlt" and setup.dlt_python is not None else Path(sys.executable)
    command = [str(python), str(BASELINES), tool, "--url", url, "--db", as_url(db), "--table", TABLES[tool],
               "--key", SERVICE_KEY, "--page-size", str(PAGE_SIZE), "--concurrency", "4",
               "--columns", setup.columns]
    if tool == "dlt":
        command += ["--dataset", DLT_DATASET, "--work-dir", str(work_dir / "dlt")]
    sample = measure(command, base_env())
    report: dict[str, Any] = {}
    with contextlib.suppress(ValueError, IndexError):
        report = json.loads(sample.stdout.strip().splitlines()[-1])
    if sample.returncode != 0 or not report:
        problems.append(f"({phase}) {tool}: exit {sample.returncode}\n{sample.stdout}\n{sample.stderr}")
        sample.result = f"failed (exit {sample.returncode})"
        return sample
    written = report.get("written")
    sample.result = f"{report.get('source_rows')} pulled, {'?' if written is None else written} written"
    if phase == "c" and written not in (0, None):
        problems.append(f"(c) {tool}: the no-op run wrote {written} rows")
    return sample


def table_name(tool: str) -> sql.Composable:
    schema = DLT_DATASET if tool == "dlt" else "public"
    return sql.Identifier(schema, TABLES[tool])


def count_rows(db: str, tool: str) -> int | None:
    with psycopg.connect(db) as conn:
        try:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table_name(tool))).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if row is None else int(row[0])


def differing_rows(db: str, left: str, right: str, mapped: Sequence[str]) -> int:
    """Rows of the mapped columns in one table and not in the other, both ways."""
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in mapped)
    query = sql.SQL("SELECT (SELECT count(*) FROM (SELECT {c} FROM {a} EXCEPT SELECT {c} FROM {b}) x) + "
                    "(SELECT count(*) FROM (SELECT {c} FROM {b} EXCEPT SELECT {c} FROM {a}) y)").format(
        c=cols, a=table_name(left), b=table_name(right))
    with psycopg.connect(db) as conn:
        row = conn.execute(query).fetchone()
    return -1 if row is None else int(row[0])


def drop_tables(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        for tool in TOOLS:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table_name(tool)))
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(DLT_DATASET)))


# --- the sequence -------------------------------------------------------------------------------------

def run_sequence(tools: Sequence[str], urls: dict[str, str], db: str, figures: dict[str, dict[str, Figures]],
                 problems: list[str], run: int, setup: Setup) -> None:
    drop_tables(db)
    with tempfile.TemporaryDirectory(prefix="bench-aed-") as tmp:
        work = Path(tmp)
        changed_spec = write_spec(work / "spec-changed", urls["b"], setup.spec)
        specs = {"a": write_spec(work / "spec-base", urls["a"], setup.spec), "b": changed_spec,
                 "c": changed_spec}
        env = {**base_env(), "AED_DATABASE_URL": as_url(db), "EGEN_SERVICE_KEY": SERVICE_KEY,
               "RECONCILER_STATE_DIR": str(work / "state")}
        for phase, label in PHASES:
            for tool in tools:
                if tool == "reconciler":
                    sample = reconciler_phase(specs[phase], env, phase, problems)
                else:
                    sample = baseline_phase(tool, urls[phase], db, work, phase, problems, setup)
                cell = figures[phase][tool]
                cell.walls.append(sample.wall_s)
                cell.rss.append(sample.peak_rss_mb)
                cell.results.append(sample.result)
                log(f"run {run} ({phase}) {label:<11} {tool:<12} {sample.wall_s:7.2f} s "
                    f"{sample.peak_rss_mb:7.1f} MiB  {sample.result}")
            if phase == "a":
                for tool in tools:
                    rows = count_rows(db, tool)
                    if rows != RECORDS:
                        problems.append(f"(a) {tool}: {rows} rows after the first load, expected {RECORDS}")
        for tool in tools:
            if tool in ("limit", "executemany"):
                differing = differing_rows(db, "reconciler", tool, setup.mapped)
                if differing:
                    problems.append(f"(c) {tool}: {differing} row(s) differ from the reconciler's table "
                                    "in the mapped columns")


# --- the report ---------------------------------------------------------------------------------------

def targets(figures: dict[str, dict[str, Figures]], tools: Sequence[str]) -> list[dict[str, Any]]:
    """The targets, per phase: {phase, label, target, ok, detail}."""
    checks: list[dict[str, Any]] = []
    for phase, label in PHASES:
        row = figures[phase]
        rec = row["reconciler"].wall_s

        def check(target: str, ok: bool, detail: str, phase: str = phase, label: str = label) -> None:
            checks.append({"phase": phase, "label": label, "target": target, "ok": ok, "detail": detail})

        if "limit" in tools:
            limit = row["limit"].wall_s
            check(f"wall <= {LIMIT_RATIO}x limit", rec <= LIMIT_RATIO * limit,
                  f"{rec:.2f} s vs {limit:.2f} s: {rec / limit:.2f}x (allowed {LIMIT_RATIO * limit:.2f} s)")
        if "executemany" in tools:
            many = row["executemany"].wall_s
            check(f">= {EXECUTEMANY_SPEEDUP}x faster than executemany", rec * EXECUTEMANY_SPEEDUP <= many,
                  f"{rec:.2f} s vs {many:.2f} s: {many / rec:.2f}x faster")
        if "dlt" in tools:
            dlt = row["dlt"].wall_s
            check(f">= {DLT_SPEEDUP}x faster than dlt", rec * DLT_SPEEDUP <= dlt,
                  f"{rec:.2f} s vs {dlt:.2f} s: {dlt / rec:.2f}x faster")
        rss = row["reconciler"].peak_rss_mb
        check(f"peak RSS < {RSS_LIMIT_MB:.0f} MB", rss < RSS_LIMIT_MB, f"{rss:.1f} MiB")
    return checks


def print_table(figures: dict[str, dict[str, Figures]], tools: Sequence[str], skipped: dict[str, str],
                runs: int, checks: list[dict[str, Any]], problems: list[str], floor_mb: float,
                setup: Setup) -> None:
    print(f"AED registry benchmark: {RECORDS:,} records, pageSize {PAGE_SIZE}, concurrency 4, "
          f"{runs} run(s), medians; spec {setup.spec.relative_to(ROOT)} ({len(setup.mapped)} columns); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"wall = whole process; peak RSS = ru_maxrss of that process (os.wait4 in a wrapper; "
          f"the method's floor, /bin/true: {floor_mb:.1f} MiB)")
    print()
    head = f"{'phase':<16}" + "".join(f"{t:>26}" for t in TOOLS)
    print(head)
    print(f"{'':<16}" + "".join(f"{'wall s / peak MiB':>26}" for _ in TOOLS))
    for phase, label in PHASES:
        cells = []
        for tool in TOOLS:
            if tool in tools:
                f = figures[phase][tool]
                cells.append(f"{f.wall_s:8.2f} s / {f.peak_rss_mb:6.1f}")
            else:
                cells.append("skipped")
        print(f"({phase}) {label:<12}" + "".join(f"{c:>26}" for c in cells))
    print()
    print("what each did (first run):")
    for phase, label in PHASES:
        for tool in tools:
            print(f"  ({phase}) {label:<12} {tool:<12} {figures[phase][tool].results[0]}")
    for tool, why in skipped.items():
        print(f"  {tool}: {why}")
    print()
    print(f"{'ratios reconciler /':<22}{'limit':>10}{'executemany':>14}{'dlt':>10}")
    for phase, label in PHASES:
        rec = figures[phase]["reconciler"].wall_s
        cells = [f"{rec / figures[phase][t].wall_s:.2f}x" if t in tools else "-"
                 for t in ("limit", "executemany", "dlt")]
        print(f"({phase}) {label:<18}{cells[0]:>10}{cells[1]:>14}{cells[2]:>10}")
    print()
    print("targets:")
    for check in checks:
        mark = "PASS" if check["ok"] else "MISS"
        print(f"  [{mark}] ({check['phase']}) {check['label']:<11} {check['target']:<34} {check['detail']}")
    print()
    if problems:
        print("correctness checks: FAILED")
        for problem in problems:
            print(f"  - {problem}")
    else:
        print(f"correctness checks: ok (every table {RECORDS:,} rows after (a); reconciler noop in (c); "
              "baselines wrote 0 rows in (c); limit/executemany tables equal the reconciler's)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=1, help="phase sequences to run (medians are reported)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--port", type=int, default=0,
                        help="the base emulator's port (the changed one gets P+1); default: free ports")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="where to CREATE/DROP the bench database")
    parser.add_argument("--spec", choices=tuple(SPECS), default="full",
                        help="full: bench/aed_full.yaml (36 columns, default); example: examples/aed (11)")
    parser.add_argument("--no-dlt", action="store_true", help="skip dlt")
    parser.add_argument("--dlt-venv", type=Path, default=DLT_VENV,
                        help=f"dlt's own virtual environment, created on first use (default {DLT_VENV})")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    from installed import compile_package

    print(compile_package(), file=sys.stderr)
    tools = ["reconciler", "limit", "executemany"]
    skipped: dict[str, str] = {}
    setup = Setup(spec=SPECS[args.spec], columns=args.spec, mapped=mapped_columns(SPECS[args.spec]))
    if args.no_dlt:
        skipped["dlt"] = "--no-dlt (skipped)"
    else:
        setup = replace(setup, dlt_python=dlt_python(args.dlt_venv))
        tools.append("dlt")
    figures = {phase: {tool: Figures() for tool in tools} for phase, _ in PHASES}
    problems: list[str] = []
    base = EgenEmulator(port=args.port)
    changed = EgenEmulator(port=args.port + 1 if args.port else 0, changed_fraction=CHANGED_FRACTION)
    try:
        urls = {"a": base.start(), "b": changed.start()}
        urls["c"] = urls["b"]
        log(f"emulators: {urls['a']} ({base.item_count:,} records), {urls['b']} ({changed.item_count:,}, "
            f"changed_fraction {CHANGED_FRACTION}); warming their page caches")
        for emulator in (base, changed):
            warm(emulator, json_too="dlt" in tools)
        gc.collect()
        gc.freeze()  # millions of emulator objects: no collection here may stall the serving threads
        floor_mb = measure(["/bin/true"], base_env()).peak_rss_mb
        with bench_database(args.admin_url) as db:
            for run in range(1, args.runs + 1):
                run_sequence(tools, urls, db, figures, problems, run, setup)
    finally:
        base.stop()
        changed.stop()

    checks = targets(figures, tools)
    if args.json:
        out = {
            "records": RECORDS, "page_size": PAGE_SIZE, "concurrency": 4, "runs": args.runs,
            "rss_floor_mb": round(floor_mb, 1), "spec": str(setup.spec.relative_to(ROOT)),
            "columns": len(setup.mapped), "load_average": os.getloadavg()[0],
            "changed_fraction": CHANGED_FRACTION, "skipped": skipped,
            "phases": {phase: {"label": label, **{tool: {"wall_s": round(f.wall_s, 3),
                                                         "peak_rss_mb": round(f.peak_rss_mb, 1),
                                                         "walls": [round(w, 3) for w in f.walls],
                                                         "rss": [round(r, 1) for r in f.rss],
                                                         "results": f.results}
                                                  for tool, f in figures[phase].items()}}
                       for phase, label in PHASES},
            "ratios": {phase: {t: round(figures[phase]["reconciler"].wall_s / figures[phase][t].wall_s, 3)
                               for t in tools if t != "reconciler"} for phase, _ in PHASES},
            "targets": checks,
            "problems": problems,
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print_table(figures, tools, skipped, args.runs, checks, problems, floor_mb, setup)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

