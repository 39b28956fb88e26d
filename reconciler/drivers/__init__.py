"""Drivers, one package per kind, and the default registry.

Every kind's driver comes from its registration in `reconciler.kinds` (the built-in
`aed/`, `agents/` and `rbac/` too). Site-specific drivers come from plugins: a distribution
with an entry point in the group `reconciler.kinds`, or a module named in
`RECONCILER_PLUGINS` (comma-separated) that, on import, may register a kind with
`reconciler.models.register_kind` and expose `register(registry)` to add its driver.
"""

from __future__ import annotations

import importlib

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


def default_registry(plugins: list[str] | None = None) -> DriverRegistry:
    """The drivers of every registered kind (`reconciler.kinds`) plus those of the given
    plugin modules."""
    from reconciler.kinds import REGISTRY

    registry = DriverRegistry()
    for info in REGISTRY.known():
        factory = info.driver_factory()
        if factory is not None:
            registry.register(info.kind, factory)
    load_plugins(plugins or [], registry)
    return registry
