"""Run objects through the real engine in tests: an orchestrator over a SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers import default_registry
from reconciler.engine.orchestrator import Orchestrator
from reconciler.models import Resource
from reconciler.store import Store
from reconciler.structs.runs import RunResult, Trigger


class Runner:
    """`runner(obj, **run_options)`: one recorded run with the built-in drivers."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.orchestrator = Orchestrator(store=store, drivers=default_registry())

    def __call__(self, obj: Resource, **kwargs: Any) -> RunResult:
        kwargs.setdefault("trigger", Trigger.MANUAL)
        return asyncio.run(self.orchestrator.run(obj, **kwargs))


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield Runner(store)
    store.close()
