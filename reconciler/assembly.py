"""Putting the pieces together for a front end: settings → store, drivers, orchestrator.

Every front end (CLI, daemon, operator) builds its runtime here, so that they differ only
in how they take input and show output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.drivers import default_registry
from reconciler.engine.drivers import DriverRegistry
from reconciler.engine.events import EventBus
from reconciler.engine.orchestrator import Orchestrator
from reconciler.engine.overruns import DurationLimits
from reconciler.loading.secrets import SecretResolver
from reconciler.settings import Settings
from reconciler.store.repository import Store


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    drivers: DriverRegistry
    bus: EventBus
    orchestrator: Orchestrator

    def close(self) -> None:
        self.store.close()


def load_drivers(settings: Settings) -> DriverRegistry:
    """Import plugins (which may register kinds) and build the driver registry."""
    return default_registry(settings.plugin_modules())


def open_runtime(settings: Settings, *, drivers: DriverRegistry | None = None,
                 secrets: Callable[[], SecretResolver] = SecretResolver) -> Runtime:
    """`secrets` builds each run's resolver (the operator's reads Kubernetes Secrets)."""
    drivers = drivers if drivers is not None else load_drivers(settings)
    store = Store.open(settings.store_url(), sqlite_synchronous=settings.sqlite_synchronous)
    bus = EventBus()
    orchestrator = Orchestrator(store=store, drivers=drivers, bus=bus,
                                lock_timeout=settings.lock_timeout_seconds, secrets=secrets,
                                duration_limits=DurationLimits(settings.alert_slow_run_seconds,
                                                               settings.alert_long_run_seconds))
    return Runtime(settings, store, drivers, bus, orchestrator)
