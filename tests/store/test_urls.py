"""A malformed store URL is one clear error line, with its password masked (issue 15, finding 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.errors import StoreError
from reconciler.store import Store

SECRET = "s3cr3t-pw"


def bad_urls(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "afile").write_text("")
    return [
        (f"postgresql://app:{SECRET}@host:notaport/db",
         "the store URL 'postgresql://***@host:notaport/db' is not valid: its port is not a number"),
        (f"postgresql://app:{SECRET}@[::1/db",
         "the store URL 'postgresql://***@[::1/db' is not valid: its port is not a number"),
        (f"sqlite:///{tmp_path}/afile/x.db",
         f"cannot create the folder '{tmp_path}/afile' for the SQLite store: "
         "a file of that name is in the way"),
        ("nonsense", "the store URL 'nonsense' is not a URL: expected postgresql://HOST:PORT/DATABASE"),
        (f"mysql://app:{SECRET}@host/db",
         "the store URL 'mysql://***@host/db' names a 'mysql' database: the store is PostgreSQL or SQLite"),
        ("postgresql+asyncpg://host/db",
         "the store URL 'postgresql+asyncpg://host/db' names the driver 'asyncpg', "
         "which the store does not use"),
    ]


@pytest.mark.parametrize("case", range(6))
def test_a_malformed_store_url_is_one_error_line_without_the_password(tmp_path: Path, case: int) -> None:
    url, message = bad_urls(tmp_path)[case]
    env = {**os.environ, "RECONCILER_DATABASE_URL": url, "RECONCILER_STATE_DIR": str(tmp_path / "state")}
    result = subprocess.run([sys.executable, "-m", "reconciler.cli", "history"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [result.stderr.splitlines()[0]], result.stderr  # one line
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_store_open_raises_a_store_error_not_a_value_error() -> None:
    with pytest.raises(StoreError, match="port is not a number"):
        Store.open(f"postgresql://app:{SECRET}@host:notaport/db")
