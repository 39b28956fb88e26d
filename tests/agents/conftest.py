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


def entries(body: dict[str, Any]) -> dict[str, Any]:
    """The rendered entries of a spec body, by inventory key."""
    from reconciler.drivers.agents.planning import render_spec

    return {e.key: e for e in render_spec(agent_config(body)).entries}


def in_order(text: str, parts: list[str]) -> bool:
    """Every part occurs verbatim in text, each after the previous one."""
    position = 0
    for part in parts:
        found = text.find(part, position)
        if found < 0:
            return False
        position = found + len(part)
    return True


def assert_same_spec(found: dict[str, Any], body: dict[str, Any]) -> None:
    """What an import read back equals the spec in servers, permissions and rules."""
    expected = agent_config(body).spec
    imported = agent_config({**found, "targets": body["targets"]}).spec
    assert imported.mcp_servers == expected.mcp_servers
    assert imported.permissions == expected.permissions
    assert sorted(imported.rules, key=lambda r: r.name) == sorted(expected.rules, key=lambda r: r.name)


def own_rule(found: dict[str, Any], name: str) -> dict[str, Any]:
    """Take out of an import the rule holding the person's own text of an instruction file
    (outside the reconciler's block; imported whole since it is theirs) and return it."""
    rules = found.get("rules") or []
    own = [rule for rule in rules if rule["name"] == name]
    assert len(own) == 1, f"expected one imported rule {name!r} with the file's own text, got {rules}"
    found["rules"] = [rule for rule in rules if rule["name"] != name]
    return own[0]


def items(got: dict[str, Any], list_key: str) -> list[Any]:
    """The items a spec renders into one set-list (each is an entry of its own), in order."""
    return [entry.value for key, entry in got.items() if key.startswith(list_key + "#")]
