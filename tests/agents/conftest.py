"""Helpers for AgentConfig tests: build specs, run them through the real engine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers import default_registry
from reconciler.engine.orchestrator import Orchestrator
from reconciler.engine.runs import RunResult, Trigger
from reconciler.models.agents import AgentConfig
from reconciler.store import Store


def agent_config(spec: dict[str, Any], name: str = "team") -> AgentConfig:
    return AgentConfig.model_validate(
        {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig", "metadata": {"name": name},
         "spec": spec})


class Runner:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.orchestrator = Orchestrator(store=store, drivers=default_registry())

    def __call__(self, obj: AgentConfig, **kwargs: Any) -> RunResult:
        kwargs.setdefault("trigger", Trigger.MANUAL)
        return asyncio.run(self.orchestrator.run(obj, **kwargs))


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield Runner(store)
    store.close()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path → bytes), the store excluded."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith("store.db") for part in p.parts)}
