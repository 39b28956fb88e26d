"""Drivers, one package per kind, and the default registry.

The built-in drivers (`aed/`, `agents/`, `rbac/`) are registered here as their issues
land. Site-specific drivers come from plugins: modules named in `RECONCILER_PLUGINS`
(comma-separated) that, on import, may register a kind with
`reconciler.models.register_kind` and expose `register(registry)` to add their driver.
"""

from __future__ import annotations

import importlib
from typing import Any

from reconciler.engine.drivers import DriverRegistry
from reconciler.errors import ReconcilerError


def load_plugins(modules: list[str], registry: DriverRegistry) -> None:
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ReconcilerError(f"cannot import plugin {name!r}: {exc}") from None
        register = getattr(module, "register", None)
        if callable(register):
            register(registry)


def _agent_config_driver() -> Any:
    from reconciler.drivers.agents.driver import AgentConfigDriver

    return AgentConfigDriver()


def _aed_driver() -> Any:
    from reconciler.drivers.aed.driver import AedSourceBindingDriver

    return AedSourceBindingDriver()


def _rbac_driver() -> Any:
    from reconciler.drivers.rbac.driver import RbacMappingDriver

    return RbacMappingDriver()


def default_registry(plugins: list[str] | None = None) -> DriverRegistry:
    """The built-in drivers plus those of the given plugin modules."""
    registry = DriverRegistry()
    registry.register("AgentConfig", _agent_config_driver)
    registry.register("AedSourceBinding", _aed_driver)
    registry.register("RbacMapping", _rbac_driver)
    load_plugins(plugins or [], registry)
    return registry
