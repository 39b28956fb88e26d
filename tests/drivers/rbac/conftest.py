"""RbacMapping tests: small seeded DCM4CHEE archives and an RBAC database on real PostgreSQL.

Each archive release is built once per session as a template database; a test that needs
an archive gets its own copy (`CREATE DATABASE … TEMPLATE …`, a file copy), so tests can
add, re-stamp and delete studies without seeing each other. The RBAC target is one
database per session with one managed schema per test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from conftest import PG_ADMIN_URL
from running import Runner, runner

from reconciler.drivers.rbac.archive_ddl import RELEASES, Release
from reconciler.drivers.rbac.archive_fixture import ArchiveShape, build_archive, set_study_access_control
from reconciler.models.rbac import RbacMapping

SHAPE = ArchiveShape(studies=240)
BASE = PG_ADMIN_URL.rsplit("/", 1)[0]
PREFIX = f"rbac_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _admin(statement: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(scope="session")
def templates() -> Iterator[dict[str, str]]:
    names = {release: f"{PREFIX}_tpl_{release.replace('.', '')}" for release in RELEASES}
    for release, name in names.items():
        _admin(f'CREATE DATABASE "{name}"')
        with psycopg.connect(f"{BASE}/{name}", autocommit=True) as conn:
            build_archive(conn, release, SHAPE)
    yield names
    for name in names.values():
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


ArchiveFactory = Callable[[Release], str]


@pytest.fixture
def make_archive(templates: dict[str, str]) -> Iterator[ArchiveFactory]:
    """`make_archive("5.35")` → the URL of a fresh copy of that release's archive."""
    made: list[str] = []

    def make(release: Release) -> str:
        name = f"{PREFIX}_a{len(made)}_{uuid.uuid4().hex[:6]}"
        _admin(f'CREATE DATABASE "{name}" TEMPLATE "{templates[release]}"')
        made.append(name)
        return f"{BASE}/{name}"

    yield make
    for name in made:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def rbac_database() -> Iterator[str]:
    name = f"{PREFIX}_rbac"
    _admin(f'CREATE DATABASE "{name}"')
    yield f"{BASE}/{name}"
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def schema() -> str:
    return f"rbac_{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["5.34", "5.35"])
def release(request: pytest.FixtureRequest) -> Release:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def archive(make_archive: ArchiveFactory, release: Release, rbac_database: str,
            monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh archive of `release`, wired to the env vars the specs below reference."""
    url = make_archive(release)
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", url)
    monkeypatch.setenv("RBAC_DATABASE_URL", rbac_database)
    return url


PERMISSIONS = [{"name": "study:read", "description": "Query and view studies"},
               {"name": "series:read", "description": "Query and view series"},
               {"name": "study:export", "description": "Export studies"}]
ROLES = [{"name": "study-reader", "description": "Reads studies within a scope",
          "permissions": ["study:read", "series:read"]},
         {"name": "archive-admin", "description": "Reads and exports everything",
          "permissions": ["study:read", "series:read", "study:export"]}]
DEPT_RULE = {"name": "dept-readers", "facts": "series-access-control",
             "subject": "dept:{institution}/{department}", "role": "study-reader",
             "scope": "acl:{access_control_id}"}


def mapping(schema: str, *, name: str = "archive-rbac", **spec: Any) -> RbacMapping:
    body: dict[str, Any] = {
        "source": {"databaseUrl": {"env": "ARCHIVE_DATABASE_URL"}},
        "permissions": PERMISSIONS, "roles": ROLES,
        "bindings": [{"subject": "group:pacs-admins", "role": "archive-admin"}],
        "derive": [DEPT_RULE],
        "target": {"databaseUrl": {"env": "RBAC_DATABASE_URL"}, "managedSchema": {"schema": schema}},
    }
    body.update(spec)
    return RbacMapping.model_validate({"apiVersion": "reconciler.dev/v1alpha1", "kind": "RbacMapping",
                                       "metadata": {"name": name}, "spec": body})


def query(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(statement, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description is not None else []


def execute(url: str, statement: str, params: tuple[Any, ...] | None = None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)  # type: ignore[arg-type]


def bindings(url: str, schema: str) -> set[tuple[str, str, str | None]]:
    rows = query(url, f'SELECT s.name, r.name, b.scope FROM "{schema}".bindings b '
                      f'JOIN "{schema}".subjects s ON s.id = b.subject_id '
                      f'JOIN "{schema}".roles r ON r.id = b.role_id')
    return {(r[0], r[1], r[2]) for r in rows}


def checksum(url: str, schema: str) -> str:
    """md5 over every row of the five tables (and their schema_version): equal means the
    target is byte-for-byte as it was."""
    parts = []
    for table in ("schema_version", "permissions", "roles", "role_permissions", "subjects", "bindings"):
        exists = query(url, "SELECT to_regclass(%s)", (f'"{schema}".{table}',))[0][0]
        if exists is None:
            parts.append(f"{table}:absent")
            continue
        rows = query(url, f'SELECT md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) '
                          f'FROM "{schema}".{table} t')
        parts.append(f"{table}:{rows[0][0]}")
    return ";".join(parts)


def restamp(url: str, release: Release, study_pk: int, acl: str) -> None:
    """Give one old study and all its series a new access-control ID (only updated_time moves)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT study_iuid FROM study WHERE pk = %s", (study_pk,)).fetchone()
        assert row is not None
        set_study_access_control(conn, release, row[0], [acl])
        if release == "5.35":
            conn.execute("DELETE FROM series_access_control_id WHERE series_fk IN "
                         "(SELECT pk FROM series WHERE study_fk = %s)", (study_pk,))
            conn.execute("INSERT INTO series_access_control_id SELECT pk, %s FROM series WHERE study_fk = %s",
                         (acl, study_pk))
        else:
            conn.execute("UPDATE series SET access_control_id = %s WHERE study_fk = %s", (acl, study_pk))


def expected_dept_bindings(url: str, release: Release) -> set[tuple[str, str, str | None]]:
    """The dept-readers rule computed the naive way, in Python over every series row: the
    ground truth the driver's SQL must match."""
    if release == "5.35":
        rows = query(url, "SELECT se.institution, se.department, a.access_control_id FROM series se "
                          "LEFT JOIN series_access_control_id a ON a.series_fk = se.pk")
    else:
        rows = query(url, "SELECT institution, department, access_control_id FROM series")
    return {(f"dept:{i}/{d}", "study-reader", f"acl:{a}") for i, d, a in rows
            if "*" not in (i, d, a) and None not in (i, d, a)}


__all__ = ["Runner", "runner"]
