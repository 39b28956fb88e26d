"""Benchmark of the RbacMapping driver on a 1,000,000-study archive, against the naive sync job.

    python bench/rbac.py [--studies N] [--release 5.35|5.34] [--admin-url URL] [--json] [--keep]

What is measured, all in this process, on one archive and one RBAC database:
- the reconciler: one `Orchestrator.run` of an RbacMapping (three derive rules — department
  groups per series access-control ID, a group per study access-control ID, a group per
  patient-ID issuer — plus a static binding) over a fresh SQLite store, wall time around
  the call (store bookkeeping included);
- the baseline, measured in the same run on the same archive state: the naive sync job a
  site would write — select every study (every series row, every study and patient ID,
  server-side cursors), compute the bindings in Python with the same rules, and rewrite
  every binding of its own copy of the tables in one transaction (DELETE, then COPY). It
  has no incremental mode: every phase costs it a full pass.

The phases, in order:
  (a) full run into an empty RBAC database;
  (b) +1,000 new studies (new patients, series, worklist items; some new access-control
      IDs), then an incremental run (watermark on study.created_time);
  (c) +10,000 new studies, then an incremental run;
  (d) 100 old studies re-stamped with another access-control ID and 100 deleted (no
      tombstones, invisible to incremental runs), then a full run.
After every phase the reconciler's bindings must equal the baseline's, binding for binding
(the phases are ordered so that an incremental run has everything to see: only new
studies changed before it). A failed check makes the exit status 1.
Targets, printed: (b) under 2 s, and (b), (c) growing with the delta, not the archive; full
runs at least 5× faster than the baseline.

The archive comes from `reconciler.drivers.rbac.archive_fixture` (layout 5.35 by default,
120 access-control IDs): `bench_rbac_archive_<pid>` and `bench_rbac_target_<pid>` on
127.0.0.1:5432 (user postgres; `--admin-url`), dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg

from reconciler.drivers import default_registry
from reconciler.drivers.rbac.archive_ddl import Release
from reconciler.drivers.rbac.archive_fixture import ArchiveShape, add_studies, build_archive
from reconciler.engine.orchestrator import Orchestrator
from reconciler.models import Mode
from reconciler.models.rbac import RbacMapping
from reconciler.store import Store
from reconciler.structs.runs import RunResult, Trigger

Binding = tuple[str, str, str | None]
ACLS = tuple(f"ACL-{i:03d}" for i in range(1, 121))
STATIC: Binding = ("group:pacs-admins", "archive-admin", None)


def mapping() -> RbacMapping:
    return RbacMapping.model_validate({
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "RbacMapping", "metadata": {"name": "bench-rbac"},
        "spec": {
            "source": {"databaseUrl": {"env": "ARCHIVE_DATABASE_URL"}},
            "permissions": [{"name": "study:read"}, {"name": "series:read"}, {"name": "study:export"},
                            {"name": "patient:read"}],
            "roles": [{"name": "study-reader", "permissions": ["study:read", "series:read"]},
                      {"name": "patient-reader", "permissions": ["patient:read"]},
                      {"name": "archive-admin",
                       "permissions": ["study:read", "series:read", "study:export"]}],
            "bindings": [{"subject": STATIC[0], "role": STATIC[1]}],
            "derive": [
                {"name": "dept-readers", "facts": "series-access-control",
                 "subject": "dept:{institution}/{department}", "role": "study-reader",
                 "scope": "acl:{access_control_id}"},
                {"name": "acl-groups", "facts": "study-access-control",
                 "subject": "acl-group:{access_control_id}", "role": "study-reader",
                 "scope": "acl:{access_control_id}"},
                {"name": "issuer-readers", "facts": "patient-id-issuers", "subject": "issuer:{entity_id}",
                 "role": "patient-reader"}],
            "target": {"databaseUrl": {"env": "RBAC_DATABASE_URL"}, "managedSchema": {"schema": "rbac"}},
            "guards": {"maxRevokes": "10%"},
        }})


# --- the baseline: select everything, rewrite everything ------------------------------------------

def _known(*values: Any) -> bool:
    return all(v is not None and v not in ("", "*") for v in values)


def naive_sync(archive: str, target: str, release: Release) -> set[Binding]:
    """The sync job as sites write it: every row through Python, every binding rewritten."""
    bindings: set[Binding] = {STATIC}
    series_acl = ("LEFT JOIN series_access_control_id a ON a.series_fk = se.pk", "a.access_control_id") \
        if release == "5.35" else ("", "se.access_control_id")
    study_acl = ("LEFT JOIN study_access_control_id a ON a.study_fk = st.pk", "a.access_control_id") \
        if release == "5.35" else ("", "st.access_control_id")
    with psycopg.connect(archive) as conn:
        conn.read_only = True
        with conn.cursor(name="series_rows") as cur:
            cur.itersize = 20_000
            columns = f"st.study_iuid, se.series_iuid, se.institution, se.department, {series_acl[1]}"
            cur.execute(f"SELECT {columns} FROM study st JOIN series se ON se.study_fk = st.pk "
                        f"{series_acl[0]}")
            for _, _, institution, department, acl in cur:
                if _known(institution, department, acl):
                    bindings.add((f"dept:{institution}/{department}", "study-reader", f"acl:{acl}"))
        with conn.cursor(name="study_rows") as cur:
            cur.itersize = 20_000
            cur.execute(f"SELECT st.study_iuid, {study_acl[1]} FROM study st {study_acl[0]}")
            for _, acl in cur:
                if _known(acl):
                    bindings.add((f"acl-group:{acl}", "study-reader", f"acl:{acl}"))
        with conn.cursor(name="patient_rows") as cur:
            cur.itersize = 20_000
            cur.execute("SELECT pid.pat_id, pid.entity_id FROM patient_id pid "
                        "JOIN patient p ON p.pk = pid.patient_fk")
            for _, issuer in cur:
                if _known(issuer):
                    bindings.add((f"issuer:{issuer}", "patient-reader", None))
    with psycopg.connect(target) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM naive.bindings")
        with cur.copy("COPY naive.bindings (subject, role, scope) FROM STDIN") as copy:
            for row in bindings:
                copy.write_row(row)
    return bindings


# --- helpers ---------------------------------------------------------------------------------------

def admin(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def reconciler_bindings(target: str) -> set[Binding]:
    with psycopg.connect(target) as conn:
        rows = conn.execute("SELECT s.name, r.name, b.scope FROM rbac.bindings b JOIN rbac.subjects s ON "
                            "s.id = b.subject_id JOIN rbac.roles r ON r.id = b.role_id").fetchall()
    return {(r[0], r[1], r[2]) for r in rows}


def change_old_studies(archive: str, release: Release, count: int) -> None:
    """Re-stamp `count` old studies (and their series) and delete `count` others, set-based."""
    with psycopg.connect(archive) as conn, conn.cursor() as cur:
        restamp = f"pk BETWEEN 1000 AND {999 + count}"
        gone = f"pk BETWEEN 5000 AND {4999 + count}"
        series_of = "SELECT se.pk FROM series se JOIN study st ON st.pk = se.study_fk WHERE st."
        if release == "5.35":
            cur.execute("UPDATE study_access_control_id SET access_control_id = 'ACL-MOVED' "
                        f"WHERE study_fk IN (SELECT pk FROM study WHERE {restamp})")
            cur.execute("UPDATE series_access_control_id SET access_control_id = 'ACL-MOVED' "
                        f"WHERE series_fk IN ({series_of}{restamp})")
            cur.execute(f"DELETE FROM series_access_control_id WHERE series_fk IN ({series_of}{gone})")
            cur.execute("DELETE FROM study_access_control_id "
                        f"WHERE study_fk IN (SELECT pk FROM study WHERE {gone})")
        else:
            cur.execute(f"UPDATE study SET access_control_id = 'ACL-MOVED' WHERE {restamp}")
            cur.execute(f"UPDATE series SET access_control_id = 'ACL-MOVED' WHERE study_fk IN "
                        f"(SELECT pk FROM study WHERE {restamp})")
        cur.execute(f"UPDATE study SET updated_time = now() WHERE {restamp}")
        cur.execute(f"DELETE FROM series WHERE study_fk IN (SELECT pk FROM study WHERE {gone})")
        cur.execute(f"DELETE FROM study WHERE {gone}")


@dataclass(slots=True)
class Phase:
    name: str
    reconciler_s: float
    baseline_s: float
    result: str
    bindings: int
    checked: bool

    @property
    def ratio(self) -> float:
        return self.baseline_s / self.reconciler_s if self.reconciler_s else float("inf")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=1_000_000)
    parser.add_argument("--release", choices=["5.34", "5.35"], default="5.35")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON too.")
    parser.add_argument("--keep", action="store_true", help="Keep the two databases.")
    args = parser.parse_args()
    release: Release = args.release
    base = args.admin_url.rsplit("/", 1)[0]
    archive_db, target_db = f"bench_rbac_archive_{os.getpid()}", f"bench_rbac_target_{os.getpid()}"
    archive, target = f"{base}/{archive_db}", f"{base}/{target_db}"
    for name in (archive_db, target_db):
        admin(args.admin_url, f'CREATE DATABASE "{name}"')
    try:
        return run(args, release, archive, target)
    finally:
        if not args.keep:
            for name in (archive_db, target_db):
                admin(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(args: argparse.Namespace, release: Release, archive: str, target: str) -> int:
    shape = ArchiveShape(studies=args.studies, access_control_ids=ACLS)
    with psycopg.connect(archive, autocommit=True) as conn:
        build_s, _ = timed(lambda: build_archive(conn, release, shape))
        series = conn.execute("SELECT count(*) FROM series").fetchone()[0]  # type: ignore[index]
    print(f"archive {release}: {args.studies:,} studies, {series:,} series built in {build_s:.1f} s",
          flush=True)
    admin(target, "CREATE SCHEMA naive; CREATE TABLE naive.bindings (subject text, role text, scope text)")
    os.environ["ARCHIVE_DATABASE_URL"], os.environ["RBAC_DATABASE_URL"] = archive, target
    obj = mapping()
    state = tempfile.mkdtemp(prefix="bench-rbac-")
    store = Store.open(f"sqlite:///{Path(state) / 'store.db'}")
    orchestrator = Orchestrator(store=store, drivers=default_registry())

    def reconcile(mode: Mode) -> RunResult:
        return asyncio.run(orchestrator.run(obj, trigger=Trigger.MANUAL, mode=mode))

    phases: list[Phase] = []

    def phase(name: str, mode: Mode) -> None:
        seconds, result = timed(lambda: reconcile(mode))
        baseline_s, naive = timed(lambda: naive_sync(archive, target, release))
        ours = reconciler_bindings(target)
        checked = ours == naive
        c = result.counts
        summary = f"{result.outcome} (+{c.created} −{c.deleted}, {c.unchanged} unchanged)"
        if result.error:
            summary += f": {result.error}"
        phases.append(Phase(name, seconds, baseline_s, summary, len(ours), checked and result.outcome.ok))
        p = phases[-1]
        print(f"  {name:<40} reconciler {p.reconciler_s:7.2f} s   baseline {p.baseline_s:7.2f} s   "
              f"{p.ratio:6.1f}×   {summary}{'' if p.checked else '   CHECK FAILED'}", flush=True)

    new_ids = replace(shape, access_control_ids=(*ACLS, *(f"ACL-NEW-{i}" for i in range(10))))
    phase("(a) full, empty RBAC database", Mode.FULL)
    with psycopg.connect(archive, autocommit=True) as conn:
        add_studies(conn, release, new_ids, 1_000)
    phase("(b) incremental, +1,000 new studies", Mode.INCREMENTAL)
    with psycopg.connect(archive, autocommit=True) as conn:
        add_studies(conn, release, replace(new_ids, seed=new_ids.seed + 1), 10_000)
    phase("(c) incremental, +10,000 new studies", Mode.INCREMENTAL)
    change_old_studies(archive, release, 100)
    phase("(d) full, 100 re-stamped + 100 deleted", Mode.FULL)
    store.close()

    ok = all(p.checked for p in phases)
    inc_1k, inc_10k = phases[1].reconciler_s, phases[2].reconciler_s
    fulls = [p for p in phases if "full" in p.name]
    print("targets:")
    print(f"  incremental +1,000 under 2 s: {inc_1k:.2f} s — {'met' if inc_1k < 2 else 'MISSED'}")
    print(f"  incremental grows with the delta: +10,000 took {inc_10k / inc_1k:.1f}× the +1,000 run, "
          f"while the full baseline takes {phases[2].baseline_s:.1f} s")
    for p in fulls:
        print(f"  full ≥ 5× faster than the baseline, {p.name}: {p.ratio:.1f}× — "
              f"{'met' if p.ratio >= 5 else 'MISSED'}")
    print(f"checks: {'every phase matched the baseline' if ok else 'FAILED'}")
    if args.json:
        print(json.dumps({"studies": args.studies, "release": release, "buildSeconds": round(build_s, 2),
                          "phases": [{"name": p.name, "reconcilerSeconds": round(p.reconciler_s, 3),
                                      "baselineSeconds": round(p.baseline_s, 3), "ratio": round(p.ratio, 2),
                                      "bindings": p.bindings, "result": p.result, "checked": p.checked}
                                     for p in phases]}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
