"""AED driver tests: the project's emulator over real HTTP, a real PostgreSQL table."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import fresh_database
from running import Runner, runner

from reconciler.emulator.egen import EgenEmulator
from reconciler.models.aed import AedSourceBinding

COUNT = 3000

COLUMNS = [
    {"column": "equipment_serial", "from": "serialSeq", "transforms": ["trim"], "maxLength": 20,
     "required": True},
    {"column": "sido", "from": "sido", "transforms": ["trim", "placeholderToNull", "sidoShortName"]},
    {"column": "gugun", "from": "gugun", "transforms": ["trim", "placeholderToNull"]},
    {"column": "installation_institution", "from": "org", "transforms": ["trim", "placeholderToNull"],
     "maxLength": 100},
    {"column": "installation_address", "from": "buildAddress",
     "transforms": ["trim", "placeholderToNull", "prefixAddress"], "maxLength": 200},
    {"column": "installation_position", "from": "buildPlace", "transforms": ["trim", "placeholderToNull"]},
    {"column": "latitude", "from": "wgs84Lat", "type": "numeric", "transforms": ["trim", "parseNumber"],
     "required": True},
    {"column": "longitude", "from": "wgs84Lon", "type": "numeric", "transforms": ["trim", "parseNumber"],
     "required": True},
    {"column": "manufacturer", "from": "mfg", "transforms": ["trim", "placeholderToNull"]},
    {"column": "model_name", "from": "model", "transforms": ["trim", "placeholderToNull"]},
]


@pytest.fixture(scope="module")
def emulator() -> Iterator[EgenEmulator]:
    emu = EgenEmulator(count=COUNT)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def aed_database() -> Iterator[str]:
    """A database of its own for the AED target tables (the store's test database must hold
    only the store's tables)."""
    with fresh_database("reconciler_aed_test") as url:
        yield url


@pytest.fixture
def pg_url(aed_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    url = aed_database
    monkeypatch.setenv("AED_TEST_DB", url)
    monkeypatch.setenv("AED_TEST_KEY", "test-service-key-0042")
    return url


@pytest.fixture
def table() -> str:
    return f"aed_{uuid.uuid4().hex[:10]}"


def binding(base_url: str, table: str, *, name: str = "aed", **spec: Any) -> AedSourceBinding:
    body: dict[str, Any] = {
        "source": {"baseUrl": base_url, "serviceKey": {"env": "AED_TEST_KEY"}, "pageSize": 500,
                   "concurrency": 4, "timeout": "10s",
                   "retries": {"limit": 2, "backoff": "10ms", "maxBackoff": "50ms"}},
        "target": {"databaseUrl": {"env": "AED_TEST_DB"}, "table": table},
        "mapping": {"columns": COLUMNS},
    }
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return AedSourceBinding.model_validate(
        {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AedSourceBinding", "metadata": {"name": name},
         "spec": body})


__all__ = ["Runner", "runner"]


def checksum(url: str, table: str) -> tuple[int, str | None]:
    """(rows, md5 of every row in key order): equal means byte-for-byte the same content."""
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"public.{table}",)).fetchone()
        if exists is None or exists[0] is None:
            return (-1, None)
        row = conn.execute(f'SELECT count(*), md5(string_agg(t::text, \'|\' ORDER BY equipment_serial)) '
                           f'FROM "{table}" t').fetchone()
        assert row is not None
        return int(row[0]), row[1]


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []
