"""The dcm4chee-arc-light (archive 5) PostgreSQL tables an RbacMapping reads, per release.

The fixture for tests, examples and benchmarks must look like a real archive, because the
driver's whole job is to read one: the same table and column names and types as the
archive's published `create-psql.sql` and `update-5.xx-psql.sql`, the same NOT NULL
columns (which the archive fills with `'*'` when a DICOM attribute is absent), the same
indexes on the columns a delta query filters on. Row width matters too: a benchmark on
narrow made-up tables would flatter every query, so `study` and `series` carry all their
columns.

What it deliberately leaves out: the tables the driver never reads (instance, location,
dicomattrs, ...) and the foreign keys into them (`dicomattrs_fk` and friends are plain
NOT NULL UNIQUE bigints here), and most of the archive's ~150 indexes (only those a
delta query or a join can use are created).

Releases: `5.34` and `5.35` follow the published DDL. `5.35` is `5.34` plus
`update-5.35-psql.sql`: the multi-valued `study_access_control_id` and
`series_access_control_id` tables, the old columns nullable and their indexes dropped.
`5.30` and `5.32` are layout approximations obtained by reversing the update scripts
(5.31: `patient_id.patient_fk` replaces `patient.patient_id_fk`; 5.33:
`series.access_control_id`; 5.34: `patient_id.pat_name` and the `'*'` issuer
placeholders), enough to test layout detection and the older fact queries.
"""

from __future__ import annotations

from typing import Literal

Release = Literal["5.30", "5.32", "5.34", "5.35"]
RELEASES: tuple[Release, ...] = ("5.30", "5.32", "5.34", "5.35")

_V = "varchar(255)"
_TS = "timestamp(6)"


def _table(name: str, columns: list[str], extra: list[str]) -> str:
    body = ",\n  ".join([*columns, *extra])
    return f"CREATE TABLE {name} (\n  {body}\n)"


def _code() -> str:
    return _table("code", [
        "pk bigint NOT NULL", f"code_meaning {_V} NOT NULL", f"code_value {_V} NOT NULL",
        f"code_designator {_V} NOT NULL", f"code_version {_V} NOT NULL",
    ], ["PRIMARY KEY (pk)", "UNIQUE (code_value, code_designator, code_version)"])


def _patient(release: Release) -> str:
    columns = [
        "pk bigint NOT NULL", f"created_time {_TS} NOT NULL", "failed_verifications integer NOT NULL",
        "num_studies integer NOT NULL", f"pat_birthdate {_V} NOT NULL", f"pat_custom1 {_V} NOT NULL",
        f"pat_custom2 {_V} NOT NULL", f"pat_custom3 {_V} NOT NULL", f"pat_sex {_V} NOT NULL",
        f"updated_time {_TS} NOT NULL",
        "verification_status smallint NOT NULL CHECK (verification_status BETWEEN 0 AND 4)",
        f"verification_time {_TS}", "version bigint", "dicomattrs_fk bigint NOT NULL UNIQUE",
        "merge_fk bigint", "pat_name_fk bigint UNIQUE", "resp_person_fk bigint UNIQUE",
    ]
    if release == "5.30":
        columns.append("patient_id_fk bigint UNIQUE")  # dropped by update-5.31
    return _table("patient", columns, ["PRIMARY KEY (pk)"])


def _patient_id(release: Release) -> str:
    issuer_null = " NOT NULL" if release in ("5.34", "5.35") else ""  # '*' placeholders since 5.34
    columns = [
        "pk bigint NOT NULL", f"pat_id {_V} NOT NULL", f"pat_id_type_code {_V}",
        f"entity_id {_V}{issuer_null}", f"entity_uid {_V}{issuer_null}",
        f"entity_uid_type {_V}{issuer_null}",
    ]
    extra = ["PRIMARY KEY (pk)"]
    if release in ("5.34", "5.35"):
        columns.append(f"pat_name {_V} NOT NULL")
        extra.append("UNIQUE (pat_id, entity_id, entity_uid, entity_uid_type, pat_name)")
    columns.append("version bigint")
    if release != "5.30":
        columns.append("patient_fk bigint NOT NULL")  # added by update-5.31
    return _table("patient_id", columns, extra)


def _study(release: Release) -> str:
    acl_null = "" if release == "5.35" else " NOT NULL"  # update-5.35 drops NOT NULL
    return _table("study", [
        "pk bigint NOT NULL", f"access_control_id {_V}{acl_null}", f"access_time {_TS} NOT NULL",
        f"accession_no {_V} NOT NULL", f"accno_entity_id {_V}", f"accno_entity_uid {_V}",
        f"accno_entity_uid_type {_V}", f"admission_id {_V} NOT NULL", f"admid_entity_id {_V}",
        f"admid_entity_uid {_V}", f"admid_entity_uid_type {_V}",
        "completeness smallint NOT NULL CHECK (completeness BETWEEN 0 AND 2)",
        f"created_time {_TS} NOT NULL", "study_deleting boolean NOT NULL", f"expiration_date {_V}",
        f"expiration_exporter_id {_V}",
        "expiration_state smallint NOT NULL CHECK (expiration_state BETWEEN 0 AND 5)",
        f"ext_retrieve_aet {_V} NOT NULL", "failed_retrieves integer NOT NULL",
        f"modified_time {_TS} NOT NULL",
        "rejection_state smallint NOT NULL CHECK (rejection_state BETWEEN 0 AND 3)",
        "study_size bigint NOT NULL", f"storage_ids {_V}", f"study_custom1 {_V} NOT NULL",
        f"study_custom2 {_V} NOT NULL", f"study_custom3 {_V} NOT NULL", f"study_date {_V} NOT NULL",
        f"study_desc {_V} NOT NULL", f"study_id {_V} NOT NULL", f"study_iuid {_V} NOT NULL",
        f"study_time {_V} NOT NULL", f"updated_time {_TS} NOT NULL", "version bigint",
        "dicomattrs_fk bigint NOT NULL UNIQUE", "patient_fk bigint NOT NULL",
        "ref_phys_name_fk bigint UNIQUE",
    ], ["PRIMARY KEY (pk)", "UNIQUE (study_iuid)"])


def _series(release: Release) -> str:
    columns = ["pk bigint NOT NULL"]
    if release in ("5.34", "5.35"):
        columns.append(f"access_control_id {_V}" + ("" if release == "5.35" else " NOT NULL"))
    columns += [
        f"body_part {_V} NOT NULL", "completeness smallint NOT NULL CHECK (completeness BETWEEN 0 AND 2)",
        "compress_failures integer NOT NULL", f"compress_params {_V}", f"compress_time {_TS}",
        f"compress_tsuid {_V}", f"created_time {_TS} NOT NULL", f"expiration_date {_V}",
        f"expiration_exporter_id {_V}",
        "expiration_state smallint NOT NULL CHECK (expiration_state BETWEEN 0 AND 5)",
        f"ext_retrieve_aet {_V} NOT NULL", "failed_retrieves integer NOT NULL",
        "stgver_failures integer NOT NULL",
        "inst_purge_state smallint NOT NULL CHECK (inst_purge_state BETWEEN 0 AND 2)",
        f"inst_purge_time {_TS}", f"institution {_V} NOT NULL", f"department {_V} NOT NULL",
        f"laterality {_V} NOT NULL", f"metadata_update_time {_TS}",
        "metadata_update_failures integer NOT NULL",
    ]
    if release in ("5.34", "5.35"):
        columns.append("metadata_update_load_objects boolean NOT NULL")
    columns += [
        f"modality {_V} NOT NULL", f"modified_time {_TS} NOT NULL", f"pps_cuid {_V} NOT NULL",
        f"pps_iuid {_V} NOT NULL", f"pps_start_date {_V} NOT NULL", f"pps_start_time {_V} NOT NULL",
        f"receiving_aet {_V}", f"receiving_hl7_app {_V}", f"receiving_hl7_facility {_V}",
        f"receiving_pres_addr {_V}",
        "rejection_state smallint NOT NULL CHECK (rejection_state BETWEEN 0 AND 3)",
        f"sending_aet {_V}", f"sending_hl7_app {_V}", f"sending_hl7_facility {_V}",
        f"sending_pres_addr {_V}", f"series_custom1 {_V} NOT NULL", f"series_custom2 {_V} NOT NULL",
        f"series_custom3 {_V} NOT NULL", f"series_desc {_V} NOT NULL", f"series_iuid {_V} NOT NULL",
        "series_no integer", "series_size bigint NOT NULL", f"sop_cuid {_V} NOT NULL",
        f"station_name {_V} NOT NULL", f"stgver_time {_TS}", f"tsuid {_V} NOT NULL",
        f"updated_time {_TS} NOT NULL", "version bigint", "dicomattrs_fk bigint NOT NULL UNIQUE",
        "inst_code_fk bigint", "dept_code_fk bigint", "metadata_fk bigint UNIQUE",
        "perf_phys_name_fk bigint UNIQUE", "study_fk bigint NOT NULL",
    ]
    return _table("series", columns, ["PRIMARY KEY (pk)", "UNIQUE (study_fk, series_iuid)"])


def _mwl_item() -> str:
    return _table("mwl_item", [
        "pk bigint NOT NULL", f"accession_no {_V} NOT NULL", f"accno_entity_id {_V}",
        f"accno_entity_uid {_V}", f"accno_entity_uid_type {_V}", f"admission_id {_V} NOT NULL",
        f"admid_entity_id {_V}", f"admid_entity_uid {_V}", f"admid_entity_uid_type {_V}",
        f"created_time {_TS} NOT NULL", f"institution {_V} NOT NULL", f"department {_V} NOT NULL",
        f"modality {_V} NOT NULL", f"req_proc_id {_V} NOT NULL", f"sps_id {_V} NOT NULL",
        f"sps_start_date {_V} NOT NULL", f"sps_start_time {_V} NOT NULL",
        "sps_status smallint NOT NULL CHECK (sps_status BETWEEN 0 AND 7)", f"study_iuid {_V} NOT NULL",
        f"updated_time {_TS} NOT NULL", "version bigint", f"worklist_label {_V} NOT NULL",
        "dicomattrs_fk bigint NOT NULL UNIQUE", "inst_code_fk bigint", "dept_code_fk bigint",
        "patient_fk bigint NOT NULL", "perf_phys_name_fk bigint UNIQUE",
    ], ["PRIMARY KEY (pk)", "UNIQUE (study_iuid, sps_id)"])


SEQUENCES = ("code_pk_seq", "patient_pk_seq", "patient_id_pk_seq", "study_pk_seq", "series_pk_seq",
             "mwl_item_pk_seq")
"""The archive's Hibernate sequences (one per table), advanced past the generated rows."""


def create_tables(release: Release) -> list[str]:
    """The CREATE statements of one release, without secondary indexes or foreign keys
    (the generator loads first and indexes after, as a restore would)."""
    statements = [f"CREATE SEQUENCE {name} START WITH 1 INCREMENT BY 1" for name in SEQUENCES]
    statements += [_code(), _patient(release), _patient_id(release), _study(release), _series(release),
                   _mwl_item()]
    if release == "5.35":
        statements += [
            f"CREATE TABLE study_access_control_id (study_fk bigint NOT NULL, access_control_id {_V})",
            f"CREATE TABLE series_access_control_id (series_fk bigint NOT NULL, access_control_id {_V})",
        ]
    return statements


def create_indexes(release: Release) -> list[str]:
    """Foreign keys and the indexes that delta queries and joins use (names are ours)."""
    statements = [
        "CREATE INDEX study_access_time_idx ON study (access_time)",
        "CREATE INDEX study_created_time_idx ON study (created_time)",  # the incremental watermark
        "CREATE INDEX study_rejection_state_idx ON study (rejection_state)",
        "CREATE INDEX study_patient_fk_idx ON study (patient_fk)",
        "CREATE INDEX series_institution_idx ON series (institution)",
        "CREATE INDEX series_department_idx ON series (department)",
        "CREATE INDEX series_inst_code_fk_idx ON series (inst_code_fk)",
        "CREATE INDEX series_dept_code_fk_idx ON series (dept_code_fk)",
        "CREATE INDEX patient_created_time_idx ON patient (created_time)",
        "CREATE INDEX patient_merge_fk_idx ON patient (merge_fk)",
        "CREATE INDEX patient_id_pat_id_idx ON patient_id (pat_id)",
        "CREATE INDEX patient_id_entity_id_idx ON patient_id (entity_id)",
        "CREATE INDEX patient_id_entity_uid_idx ON patient_id (entity_uid, entity_uid_type)",
        "CREATE INDEX mwl_item_institution_idx ON mwl_item (institution)",
        "CREATE INDEX mwl_item_department_idx ON mwl_item (department)",
        "CREATE INDEX mwl_item_updated_time_idx ON mwl_item (updated_time)",
        "CREATE INDEX mwl_item_patient_fk_idx ON mwl_item (patient_fk)",
        "ALTER TABLE study ADD FOREIGN KEY (patient_fk) REFERENCES patient",
        "ALTER TABLE series ADD FOREIGN KEY (study_fk) REFERENCES study",
        "ALTER TABLE series ADD FOREIGN KEY (inst_code_fk) REFERENCES code",
        "ALTER TABLE series ADD FOREIGN KEY (dept_code_fk) REFERENCES code",
        "ALTER TABLE mwl_item ADD FOREIGN KEY (patient_fk) REFERENCES patient",
        "ALTER TABLE mwl_item ADD FOREIGN KEY (inst_code_fk) REFERENCES code",
        "ALTER TABLE mwl_item ADD FOREIGN KEY (dept_code_fk) REFERENCES code",
        "ALTER TABLE patient ADD FOREIGN KEY (merge_fk) REFERENCES patient",
    ]
    if release == "5.30":
        statements.append("ALTER TABLE patient ADD FOREIGN KEY (patient_id_fk) REFERENCES patient_id")
    else:
        statements += ["CREATE INDEX patient_id_patient_fk_idx ON patient_id (patient_fk)",
                       "ALTER TABLE patient_id ADD FOREIGN KEY (patient_fk) REFERENCES patient"]
    if release != "5.35":  # update-5.35 drops both indexes
        statements.append("CREATE INDEX study_access_control_id_idx ON study (access_control_id)")
    if release == "5.34":
        statements.append("CREATE INDEX series_access_control_id_idx ON series (access_control_id)")
    if release == "5.35":
        statements += [
            "CREATE INDEX study_acl_value_idx ON study_access_control_id (access_control_id)",
            "CREATE INDEX study_acl_study_fk_idx ON study_access_control_id (study_fk)",
            "CREATE INDEX series_acl_value_idx ON series_access_control_id (access_control_id)",
            "CREATE INDEX series_acl_series_fk_idx ON series_access_control_id (series_fk)",
            "ALTER TABLE study_access_control_id ADD FOREIGN KEY (study_fk) REFERENCES study",
            "ALTER TABLE series_access_control_id ADD FOREIGN KEY (series_fk) REFERENCES series",
        ]
    return statements
