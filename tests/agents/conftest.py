"""Helpers for AgentConfig tests: build specs, run them through the real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from running import Runner, runner

from reconciler.models.agents import AgentConfig


def agent_config(spec: dict[str, Any], name: str = "team") -> AgentConfig:
    return AgentConfig.model_validate(
        {"apiVersion": "reconciler.dev/v1alpha1", "kind": "AgentConfig", "metadata": {"name": name},
         "spec": spec})


__all__ = ["Runner", "runner"]


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path → bytes), the store excluded."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith("store.db") for part in p.parts)}
