"""Per-target locks: two processes never run the same target at the same time.

With a PostgreSQL store the lock is a session-level advisory lock, held on a dedicated
connection for the whole run: it works across every process and machine that shares the
store, and PostgreSQL releases it if the holder dies. With SQLite (one machine by
nature) it is an exclusive `flock` on a file beside the database, which the kernel also
releases with the process. Waiting is a polling loop with a deadline so that it never
blocks the event loop; a run that cannot get its lock in time fails with `LockTimeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from reconciler.errors import LockTimeout
from reconciler.models import ObjectRef

if TYPE_CHECKING:
    from reconciler.store.repository import Store

_POLL_SECONDS = 0.05


def lock_key(target: ObjectRef) -> int:
    """A stable signed 64-bit key for `pg_advisory_lock`."""
    digest = hashlib.blake2b(str(target).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.asynccontextmanager
async def target_lock(store: Store, target: ObjectRef, *, timeout: float) -> AsyncIterator[None]:
    if store.is_postgres:
        async with _advisory_lock(store, target, timeout):
            yield
    else:
        async with _file_lock(store, target, timeout):
            yield


async def _wait(try_once: object, target: ObjectRef, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not try_once():  # type: ignore[operator]
        if time.monotonic() >= deadline:
            raise LockTimeout(f"{target.short} is being reconciled by another run; "
                              f"gave up after waiting {timeout:g}s")
        await asyncio.sleep(_POLL_SECONDS)


@contextlib.asynccontextmanager
async def _advisory_lock(store: Store, target: ObjectRef, timeout: float) -> AsyncIterator[None]:
    key = lock_key(target)
    conn = store.engine.connect()
    try:
        def try_once() -> bool:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()
            return bool(got)

        await _wait(try_once, target, timeout)
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
    finally:
        conn.close()


def _lock_dir(store: Store) -> Path:
    db = store.sqlite_path
    base = db.parent / f"{db.name}.locks" if db else Path(tempfile.gettempdir()) / "reconciler-locks"
    base.mkdir(parents=True, exist_ok=True)
    return base


@contextlib.asynccontextmanager
async def _file_lock(store: Store, target: ObjectRef, timeout: float) -> AsyncIterator[None]:
    path = _lock_dir(store) / f"{lock_key(target) & 0xFFFFFFFFFFFFFFFF:016x}.lock"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        def try_once() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        await _wait(try_once, target, timeout)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
