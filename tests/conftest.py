"""Shared fixtures: real stores (SQLite file, PostgreSQL database) and the test driver.

Each test session creates its own PostgreSQL database (`reconciler_test_<pid>`) on the
server at 127.0.0.1:5432 and drops it at the end; `test` and `postgres` are never touched.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import delete

from reconciler.store import Store
from reconciler.store import tables as t

PG_ADMIN_URL = os.environ.get("RECONCILER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new PostgreSQL database, dropped on exit; yields its psycopg URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this session; yields its SQLAlchemy URL."""
    name = f"reconciler_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_store(pg_database: str) -> Iterator[Store]:
    store = Store.open(pg_database)
    yield store
    store.close()


def _empty(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in reversed(t.metadata.sorted_tables):
            conn.execute(delete(table))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store on SQLite (a file in tmp) and on PostgreSQL: every store test runs twice."""
    if request.param == "sqlite":
        s = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
        yield s
        s.close()
    else:
        s = request.getfixturevalue("pg_store")
        _empty(s)
        yield s
        _empty(s)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()
