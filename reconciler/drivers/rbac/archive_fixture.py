"""A seeded DCM4CHEE archive for tests, examples and benchmarks, generated in SQL.

`build_archive` creates the tables of one release (`archive_ddl`) in an empty database and
fills them set-based — `INSERT … SELECT` over `generate_series`, one statement per table —
so that a million studies take seconds of PostgreSQL time, not a million round trips.
Indexes and foreign keys come after the load, as in a restore.

Every value is a pure function of the row's key and the seed (`hashint8extended`), not of
the order PostgreSQL happens to produce rows in: the same shape and seed give the same
archive, and `add_studies` extends it with exactly the rows a bigger first build would
have had (new patients, studies, series, worklist items), after the newest `created_time`.

What the data looks like (`ArchiveShape`): patients with two studies each on average;
one to three series per study, all from the study's institution, each with its own
department; a share of studies unrestricted (`'*'`); series that inherit the study's
access-control ID, carry their own, or none; patient IDs from a few issuers, some with
unknown issuer parts (`'*'` from 5.34, NULL before); worklist items for some studies.
From 5.35 the access-control IDs live in `study_access_control_id` /
`series_access_control_id` (some studies get a second one); rows `build_archive` writes
keep the old columns filled, as `update-5.35-psql.sql` leaves them, while studies added
afterwards have them NULL — a delta query that still reads the columns is visibly wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from reconciler.drivers.rbac.archive_ddl import SEQUENCES, Release, create_indexes, create_tables

INSTITUTIONS = ("SEOUL-GENERAL", "BUSAN-MEDICAL", "INCHEON-UNIV", "DAEGU-CATHOLIC", "GWANGJU-CHRISTIAN",
                "DAEJEON-ST-MARY", "ULSAN-UNIV", "SUWON-AJOU", "JEJU-NATIONAL", "CHEONAN-DANKOOK",
                "WONJU-SEVERANCE", "JEONJU-UNIV")
DEPARTMENTS = ("RADIOLOGY", "CARDIOLOGY", "ONCOLOGY", "NEUROLOGY", "EMERGENCY", "ORTHOPEDICS",
               "PEDIATRICS", "NUCLEAR-MEDICINE")
MODALITIES = ("CT", "MR", "CR", "DX", "US", "MG", "NM", "PT", "XA")
ISSUERS = (("SNUH", "1.2.410.200001.1"), ("AMC", "1.2.410.200001.2"), ("SMC", "1.2.410.200001.3"),
           ("YUHS", "1.2.410.200001.4"))


@dataclass(frozen=True, slots=True)
class ArchiveShape:
    """How big the archive is and how its values are spread (shares are 0..1)."""

    studies: int = 1000
    studies_per_patient: int = 2
    max_series_per_study: int = 3
    institutions: tuple[str, ...] = INSTITUTIONS
    departments: tuple[str, ...] = DEPARTMENTS
    access_control_ids: tuple[str, ...] = tuple(f"ACL-{i:03d}" for i in range(1, 41))
    unrestricted: float = 0.2  # studies stamped '*'
    series_own: float = 0.2  # series with an access-control ID of their own
    series_unrestricted: float = 0.4  # series left at '*' (the rest inherit the study's)
    unknown_department: float = 0.05  # series whose department is absent ('*')
    unknown_issuer: float = 0.1  # patient IDs without issuer
    second_patient_id: float = 0.1  # patients with an ID from a second issuer
    second_access_control: float = 0.05  # 5.35: studies with a second access-control ID
    worklist: float = 0.1  # studies with a worklist item
    seed: int = 20240901
    start: datetime = datetime(2016, 1, 1)
    step: timedelta = field(default=timedelta(minutes=5))  # created_time between studies


@dataclass(frozen=True, slots=True)
class Batch:
    """The key ranges one generation step wrote."""

    first_study: int
    last_study: int
    first_patient: int
    last_patient: int
    start: datetime


def _pick(expr: str, modulus: str | int, salt: int, seed: int) -> str:
    """SQL: a pseudo-random 0..modulus-1 that depends only on `expr`, the seed and the salt."""
    m = f"({modulus})"
    return f"mod(mod(hashint8extended(({expr})::bigint, {seed * 100 + salt}), {m}) + {m}, {m})"


def _pool(name: str, expr: str, salt: int, seed: int) -> str:
    """SQL: one value of the text-array parameter `name`, picked by `expr`."""
    return f"(%({name})s::text[])[1 + {_pick(expr, f'cardinality(%({name})s::text[])', salt, seed)}]"


def _share(expr: str, share: float, salt: int, seed: int) -> str:
    """SQL: true for about `share` of the keys `expr` takes."""
    return f"{_pick(expr, 10_000, salt, seed)} < {round(share * 10_000)}"


def _params(shape: ArchiveShape, batch: Batch) -> dict[str, Any]:
    return {
        "fs": batch.first_study, "ls": batch.last_study, "fp": batch.first_patient, "lp": batch.last_patient,
        "start": batch.start, "step": shape.step, "pstep": shape.step * shape.studies_per_patient,
        "inst": list(shape.institutions), "dept": list(shape.departments),
        "acl": list(shape.access_control_ids),
        "mod": list(MODALITIES), "issuer": [i for i, _ in ISSUERS], "issuer_uid": [u for _, u in ISSUERS],
        "seed": shape.seed,
    }


def _insert_patients(cur: psycopg.Cursor[Any], release: Release, shape: ArchiveShape, batch: Batch) -> None:
    s = shape.seed
    p = _params(shape, batch)
    patients = f"""
        INSERT INTO patient (pk, created_time, failed_verifications, num_studies, pat_birthdate, pat_custom1,
            pat_custom2, pat_custom3, pat_sex, updated_time, verification_status, version, dicomattrs_fk
            {", patient_id_fk" if release == "5.30" else ""})
        SELECT n, %(start)s + (n - %(fp)s) * %(pstep)s, 0, %(studies_per)s,
            to_char(date '1940-01-01' + {_pick('n', 25_000, 11, s)}::int, 'YYYYMMDD'), '*', '*', '*',
            (ARRAY['M', 'F', 'O'])[1 + {_pick('n', 3, 12, s)}], %(start)s + (n - %(fp)s) * %(pstep)s, 0, 0, n
            {", 2 * n" if release == "5.30" else ""}
        FROM generate_series(%(fp)s::bigint, %(lp)s::bigint) AS n"""
    p["studies_per"] = shape.studies_per_patient
    if release != "5.30":  # patient_id.patient_fk references patient (5.31)
        cur.execute(patients, p)
    placeholders = release in ("5.34", "5.35")
    unknown = "'*'" if placeholders else "NULL"
    issuer = f"{_pick('n', 'cardinality(%(issuer)s::text[])', 13, s)}"
    second = f"{_pick('n', 'cardinality(%(issuer)s::text[])', 14, s)}"
    columns = "pk, pat_id, pat_id_type_code, entity_id, entity_uid, entity_uid_type, version"
    columns += ", pat_name" if placeholders else ""
    columns += ", patient_fk" if release != "5.30" else ""
    name = ", 'PATIENT^' || n" if placeholders else ""
    fk = ", n" if release != "5.30" else ""
    cur.execute(f"""
        INSERT INTO patient_id ({columns})
        SELECT 2 * n, 'P' || lpad(n::text, 9, '0'), NULL,
            CASE WHEN {_share('n', shape.unknown_issuer, 15, s)} THEN {unknown}
                 ELSE (%(issuer)s::text[])[1 + {issuer}] END,
            CASE WHEN {_share('n', shape.unknown_issuer, 15, s)} THEN {unknown}
                 ELSE (%(issuer_uid)s::text[])[1 + {issuer}] END,
            CASE WHEN {_share('n', shape.unknown_issuer, 15, s)} THEN {unknown} ELSE 'ISO' END,
            0 {name} {fk}
        FROM generate_series(%(fp)s::bigint, %(lp)s::bigint) AS n""", p)
    if release == "5.30":  # patient.patient_id_fk references patient_id
        cur.execute(patients, p)
    if release != "5.30":  # a second ID per patient needs patient_id.patient_fk (5.31)
        cur.execute(f"""
            INSERT INTO patient_id ({columns})
            SELECT 2 * n + 1, 'X' || lpad(n::text, 9, '0'), NULL, (%(issuer)s::text[])[1 + {second}],
                (%(issuer_uid)s::text[])[1 + {second}], 'ISO', 0 {name} {fk}
            FROM generate_series(%(fp)s::bigint, %(lp)s::bigint) AS n
            WHERE {_share('n', shape.second_patient_id, 16, s)}""", p)


def _study_acl(shape: ArchiveShape) -> str:
    s = shape.seed
    return (f"CASE WHEN {_share('n', shape.unrestricted, 1, s)} THEN '*' "
            f"ELSE {_pool('acl', 'n', 2, s)} END")


def _series_acl(shape: ArchiveShape) -> str:
    """A series' own ID, '*', or its study's (`x` is the series key, `n` the study's)."""
    s = shape.seed
    unrestricted = shape.series_unrestricted / (1 - shape.series_own)
    return (f"CASE WHEN {_share('x', shape.series_own, 21, s)} "
            f"THEN {_pool('acl', 'x', 22, s)} "
            f"WHEN {_share('x', unrestricted, 23, s)} THEN '*' ELSE ({_study_acl(shape)}) END")


def _insert_studies(cur: psycopg.Cursor[Any], release: Release, shape: ArchiveShape, batch: Batch,
                    legacy_columns: bool) -> None:
    s = shape.seed
    acl = _study_acl(shape) if legacy_columns or release != "5.35" else "NULL"
    cur.execute(f"""
        INSERT INTO study (pk, access_control_id, access_time, accession_no, accno_entity_id, admission_id,
            completeness, created_time, study_deleting, expiration_state, ext_retrieve_aet, failed_retrieves,
            modified_time, rejection_state, study_size, storage_ids, study_custom1, study_custom2,
            study_custom3, study_date, study_desc, study_id, study_iuid, study_time, updated_time, version,
            dicomattrs_fk, patient_fk)
        SELECT n, {acl}, t, 'A' || n, 'HOSP', '*', 2, t, false, 0, '*', 0, t,
            CASE WHEN {_share('n', 0.01, 3, s)} THEN 2 ELSE 0 END, 1048576 + {_pick('n', 1_000_000, 4, s)},
            'fs1', '*', '*', '*', to_char(t, 'YYYYMMDD'), '*', n::text,
            '1.2.826.0.1.3680043.10.' || %(seed)s || '.' || n, to_char(t, 'HH24MISS'), t, 0, n,
            %(fp)s + {_pick('n', '%(lp)s - %(fp)s + 1', 5, s)}
        FROM generate_series(%(fs)s::bigint, %(ls)s::bigint) AS n,
             LATERAL (SELECT %(start)s + (n - %(fs)s) * %(step)s AS t) AS times""", _params(shape, batch))


def _insert_series(cur: psycopg.Cursor[Any], release: Release, shape: ArchiveShape, batch: Batch,
                   legacy_columns: bool) -> None:
    s, m = shape.seed, shape.max_series_per_study
    with_acl = release in ("5.34", "5.35")
    acl_column = "access_control_id, " if with_acl else ""
    acl_value = ""
    if with_acl:
        acl_value = f"{_series_acl(shape)}, " if legacy_columns or release != "5.35" else "NULL, "
    load_objects = "metadata_update_load_objects, " if with_acl else ""
    inst = _pick("n", "cardinality(%(inst)s::text[])", 6, s)
    dept = _pick("x", "cardinality(%(dept)s::text[])", 7, s)
    cur.execute(f"""
        INSERT INTO series (pk, {acl_column}body_part, completeness, compress_failures, created_time,
            expiration_state, ext_retrieve_aet, failed_retrieves, stgver_failures, inst_purge_state,
            institution, department, laterality, metadata_update_failures, {load_objects}modality,
            modified_time, pps_cuid, pps_iuid, pps_start_date, pps_start_time, receiving_aet, rejection_state,
            sending_aet, series_custom1, series_custom2, series_custom3, series_desc, series_iuid, series_no,
            series_size, sop_cuid, station_name, tsuid, updated_time, version, dicomattrs_fk, inst_code_fk,
            dept_code_fk, study_fk)
        SELECT x, {acl_value}'*', 2, 0, t, 0, '*', 0, 0, 0,
            (%(inst)s::text[])[1 + {inst}],
            CASE WHEN {_share('x', shape.unknown_department, 8, s)} THEN '*'
                 ELSE (%(dept)s::text[])[1 + {dept}] END,
            '*', 0, {"false, " if with_acl else ""}{_pool('mod', 'x', 9, s)},
            t, '*', '*', '*', '*', 'ARCHIVE', 0, 'MODALITY' || (1 + {inst}), '*', '*', '*', '*',
            study_iuid || '.' || k, k, 524288, '1.2.840.10008.5.1.4.1.1.2', 'STATION' || (1 + {inst}),
            '1.2.840.10008.1.2.1', t, 0, x, 1 + {inst},
            CASE WHEN {_share('x', shape.unknown_department, 8, s)} THEN NULL ELSE 1001 + {dept} END, n
        FROM (SELECT pk AS n, study_iuid, created_time FROM study WHERE pk BETWEEN %(fs)s AND %(ls)s) AS st,
             LATERAL generate_series(1, 1 + {_pick('n', m, 10, s)}::int) AS k,
             LATERAL (SELECT n * {m} + k AS x, st.created_time + k * interval '1 second' AS t) AS keyed""",
                _params(shape, batch))


def _insert_worklist(cur: psycopg.Cursor[Any], shape: ArchiveShape, batch: Batch) -> None:
    s = shape.seed
    inst = _pick("n", "cardinality(%(inst)s::text[])", 6, s)
    dept = _pick("n", "cardinality(%(dept)s::text[])", 17, s)
    cur.execute(f"""
        INSERT INTO mwl_item (pk, accession_no, accno_entity_id, admission_id, created_time, institution,
            department, modality, req_proc_id, sps_id, sps_start_date, sps_start_time, sps_status,
            study_iuid, updated_time, version, worklist_label, dicomattrs_fk, inst_code_fk, dept_code_fk,
            patient_fk)
        SELECT n, accession_no, 'HOSP', '*', created_time, (%(inst)s::text[])[1 + {inst}],
            (%(dept)s::text[])[1 + {dept}], {_pool('mod', 'n', 18, s)},
            'RP' || n, 'SPS' || n, study_date, study_time, 0, study_iuid, created_time, 0, 'WORKLIST', n,
            1 + {inst}, 1001 + {dept}, patient_fk
        FROM (SELECT pk AS n, * FROM study WHERE pk BETWEEN %(fs)s AND %(ls)s) AS st
        WHERE {_share('n', shape.worklist, 19, s)}""", _params(shape, batch))


def _insert_acl_tables(cur: psycopg.Cursor[Any], shape: ArchiveShape, batch: Batch) -> None:
    """5.35: the multi-valued tables, as update-5.35 fills them (no row for '*'), plus a
    second access-control ID on some studies (what 5.35 makes possible)."""
    s = shape.seed
    p = _params(shape, batch)
    cur.execute(f"""
        INSERT INTO study_access_control_id (study_fk, access_control_id)
        SELECT n, acl FROM generate_series(%(fs)s::bigint, %(ls)s::bigint) AS n,
             LATERAL (SELECT {_study_acl(shape)} AS acl) AS a
        WHERE acl <> '*'
        UNION ALL
        SELECT n, {_pool('acl', 'n', 24, s)}
        FROM generate_series(%(fs)s::bigint, %(ls)s::bigint) AS n
        WHERE {_share('n', shape.second_access_control, 25, s)}
          AND NOT {_share('n', shape.unrestricted, 1, s)}""", p)
    cur.execute(f"""
        INSERT INTO series_access_control_id (series_fk, access_control_id)
        SELECT se.pk, acl FROM series se,
             LATERAL (SELECT se.study_fk AS n, se.pk AS x) AS keys,
             LATERAL (SELECT {_series_acl(shape)} AS acl) AS a
        WHERE se.study_fk BETWEEN %(fs)s AND %(ls)s AND acl <> '*'""", p)


def _codes(cur: psycopg.Cursor[Any], shape: ArchiveShape) -> None:
    rows = [(i + 1, name, f"I{i + 1:03d}") for i, name in enumerate(shape.institutions)]
    rows += [(1001 + j, name, f"D{j + 1:03d}") for j, name in enumerate(shape.departments)]
    columns = "pk, code_meaning, code_value, code_designator, code_version"
    with cur.copy(f"COPY code ({columns}) FROM STDIN") as copy:
        for pk, meaning, value in rows:
            copy.write_row((pk, meaning, value, "99RBACFIX", "*"))


def _generate(cur: psycopg.Cursor[Any], release: Release, shape: ArchiveShape, batch: Batch, *,
              legacy_columns: bool) -> None:
    _insert_patients(cur, release, shape, batch)
    _insert_studies(cur, release, shape, batch, legacy_columns)
    _insert_series(cur, release, shape, batch, legacy_columns)
    _insert_worklist(cur, shape, batch)
    if release == "5.35":
        _insert_acl_tables(cur, shape, batch)


def _advance_sequences(cur: psycopg.Cursor[Any]) -> None:
    for sequence in SEQUENCES:
        table = sequence.removesuffix("_pk_seq")
        cur.execute(f"SELECT setval('{sequence}', GREATEST((SELECT max(pk) FROM {table}), 1))")


def build_archive(conn: psycopg.Connection[Any], release: Release,
                  shape: ArchiveShape | None = None) -> Batch:
    """Create the archive tables of `release` in `conn`'s database (which must not have
    them yet) and fill them; one transaction, then ANALYZE (and VACUUM on an autocommit
    connection, so that index-only scans work as on a maintained archive)."""
    shape = shape or ArchiveShape()
    patients = max(1, -(-shape.studies // shape.studies_per_patient))
    batch = Batch(1, shape.studies, 1, patients, shape.start)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET LOCAL synchronous_commit = off")
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for statement in create_tables(release):
            cur.execute(statement)
        _codes(cur, shape)
        _generate(cur, release, shape, batch, legacy_columns=True)
        for statement in create_indexes(release):
            cur.execute(statement)
        _advance_sequences(cur)
    _analyze(conn, release)
    return batch


def add_studies(conn: psycopg.Connection[Any], release: Release, shape: ArchiveShape, count: int, *,
                start: datetime | None = None) -> Batch:
    """Append `count` new studies (with new patients, series and worklist items) created
    after the newest study (or from `start`), the way the archive receives them."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(pk), 0), max(created_time) FROM study")
        last_study, newest = cur.fetchone() or (0, None)
        cur.execute("SELECT coalesce(max(pk), 0) FROM patient")
        row = cur.fetchone()
        last_patient = row[0] if row else 0
        if start is None:
            start = (newest or shape.start) + shape.step
        patients = max(1, -(-count // shape.studies_per_patient))
        batch = Batch(last_study + 1, last_study + count, last_patient + 1, last_patient + patients, start)
        _generate(cur, release, shape, batch, legacy_columns=False)
        _advance_sequences(cur)
    return batch


def set_study_access_control(conn: psycopg.Connection[Any], release: Release, study_iuid: str,
                             ids: list[str]) -> None:
    """Re-stamp one study (as a Change Access Control ID rule would): `[]` or `['*']` lifts
    the restriction. Touches `updated_time` only, as the archive does: no index sees it."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pk FROM study WHERE study_iuid = %s", (study_iuid,))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"no study {study_iuid}")
        values = [v for v in ids if v != "*"]
        if release == "5.35":
            cur.execute("DELETE FROM study_access_control_id WHERE study_fk = %s", (row[0],))
            for value in values:
                cur.execute("INSERT INTO study_access_control_id VALUES (%s, %s)", (row[0], value))
            cur.execute("UPDATE study SET updated_time = now() WHERE pk = %s", (row[0],))
        else:
            cur.execute("UPDATE study SET access_control_id = %s, updated_time = now() WHERE pk = %s",
                        (values[0] if values else "*", row[0]))


def delete_study(conn: psycopg.Connection[Any], release: Release, study_iuid: str) -> None:
    """Delete one study with its series, as the archive's deletion does: no tombstone."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pk FROM study WHERE study_iuid = %s", (study_iuid,))
        row = cur.fetchone()
        if row is None:
            raise LookupError(f"no study {study_iuid}")
        if release == "5.35":
            cur.execute("DELETE FROM series_access_control_id WHERE series_fk IN "
                        "(SELECT pk FROM series WHERE study_fk = %s)", (row[0],))
            cur.execute("DELETE FROM study_access_control_id WHERE study_fk = %s", (row[0],))
        cur.execute("DELETE FROM series WHERE study_fk = %s", (row[0],))
        cur.execute("DELETE FROM study WHERE pk = %s", (row[0],))


def _analyze(conn: psycopg.Connection[Any], release: Release) -> None:
    tables = ["code", "patient", "patient_id", "study", "series", "mwl_item"]
    if release == "5.35":
        tables += ["study_access_control_id", "series_access_control_id"]
    if conn.autocommit:
        for table in tables:
            conn.execute(f"VACUUM (ANALYZE) {table}")
    else:
        with conn.transaction():
            for table in tables:
                conn.execute(f"ANALYZE {table}")
