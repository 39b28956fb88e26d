"""The SQLite store's durability setting: `PRAGMA synchronous` on every connection it opens.

`normal` (the default: WAL commits synced at checkpoints) and `full` (every commit synced),
from `RECONCILER_SQLITE_SYNCHRONOUS`; anything else is refused before the store opens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from reconciler.errors import StoreError
from reconciler.settings import Settings
from reconciler.store import Store

LEVELS = {1: "normal", 2: "full"}  # what PRAGMA synchronous answers


def _synchronous(store: Store) -> str:
    with store.engine.connect() as conn:
        return LEVELS[int(conn.execute(text("PRAGMA synchronous")).scalar_one())]


@pytest.mark.parametrize("level", ["normal", "full"])
def test_the_setting_reaches_every_connection(tmp_path: Path, level: str) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}", sqlite_synchronous=level)
    try:
        assert _synchronous(store) == level
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    finally:
        store.close()


def test_the_default_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path))
    assert Settings().sqlite_synchronous == "normal"
    monkeypatch.setenv("RECONCILER_SQLITE_SYNCHRONOUS", "full")
    settings = Settings()
    store = Store.open(settings.store_url(), sqlite_synchronous=settings.sqlite_synchronous)
    try:
        assert _synchronous(store) == "full"
    finally:
        store.close()
    monkeypatch.setenv("RECONCILER_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(ValueError, match="normal"):
        Settings()


def test_an_unknown_level_is_refused_before_anything_opens(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="expected normal or full, got 'off'"):
        Store.open(f"sqlite:///{tmp_path / 'store.db'}", sqlite_synchronous="off")
    assert not (tmp_path / "store.db").exists()
