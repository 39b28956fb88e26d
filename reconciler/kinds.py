"""The kind registry: one registration per kind, for the built-ins and for plugins alike.

A kind is what a spec's `kind:` names. Everything the project knows about one lives in a
`KindInfo`: its model (`module:Class`, imported when first used), its driver factory, its
plural (the Kubernetes resource), whether it runs on embedded defaults (SQLite store,
local files: `reconciler quickstart` includes it). Every place that needs the set of
kinds derives it from here: the spec loader, a SyncJob's `targetRef.kind`, the JSON
Schema and CRD generators, the driver registry, the operator's watches, quickstart, and
the Helm chart's RBAC lists (a test checks the chart against this registry).

Registrations come from the entry-point group `reconciler.kinds` (each entry point names
a `KindInfo`), which the built-in kinds use too (see `pyproject.toml`). Scanning entry
points costs tens of milliseconds, so the built-ins are also listed in `BUILTINS` (a test
checks that the two agree) and other distributions are scanned only when a kind is not
found among those already known, or when every kind is asked for. Plugins named in
`RECONCILER_PLUGINS` may also call `register` (or `reconciler.models.register_kind`).
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.engine.drivers import Driver
    from reconciler.models.common import Resource

ENTRY_POINT_GROUP = "reconciler.kinds"
SCHEDULER_KIND = "SyncJob"


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True, slots=True)
class KindInfo:
    """One kind: its model, driver, plural and what it runs on."""

    kind: str
    plural: str
    model: str | type[Resource]  # "module:Class", or the class itself
    driver: str | Callable[[], Driver] | None = None  # "module:factory" (None: no driver)
    embedded: bool = False  # runs on embedded defaults (quickstart)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def load_model(self) -> type[Resource]:
        if not isinstance(self.model, str):
            return self.model
        if "model" not in self._cache:
            self._cache["model"] = _load(self.model)
        model: type[Resource] = self._cache["model"]
        return model

    def driver_factory(self) -> Callable[[], Driver] | None:
        if self.driver is None or callable(self.driver):
            return self.driver
        target = self.driver
        return lambda: _load(target)()


BUILTINS: tuple[KindInfo, ...] = (
    KindInfo(SCHEDULER_KIND, "syncjobs", "reconciler.models.syncjob:SyncJob"),
    KindInfo("RbacMapping", "rbacmappings", "reconciler.models.rbac:RbacMapping",
             "reconciler.drivers.rbac.driver:RbacMappingDriver"),
    KindInfo("AedSourceBinding", "aedsourcebindings", "reconciler.models.aed:AedSourceBinding",
             "reconciler.drivers.aed.driver:AedSourceBindingDriver", embedded=True),
    KindInfo("AgentConfig", "agentconfigs", "reconciler.models.agents:AgentConfig",
             "reconciler.drivers.agents.driver:AgentConfigDriver", embedded=True),
)
SYNC_JOB, RBAC_MAPPING, AED_SOURCE_BINDING, AGENT_CONFIG = BUILTINS  # entry-point targets


class KindRegistry:
    """Kind name → `KindInfo`; other distributions' entry points are scanned on demand."""

    def __init__(self, builtins: tuple[KindInfo, ...] = BUILTINS) -> None:
        self._kinds: dict[str, KindInfo] = {info.kind: info for info in builtins}
        self._scanned = False
        self._lock = threading.Lock()

    def register(self, info: KindInfo) -> KindInfo:
        self._kinds[info.kind] = info
        return info

    def _scan(self) -> None:
        with self._lock:
            if self._scanned:
                return
            from importlib.metadata import entry_points

            for point in entry_points(group=ENTRY_POINT_GROUP):
                if point.name in self._kinds:
                    continue
                info = point.load()
                if not isinstance(info, KindInfo):
                    raise TypeError(f"entry point {point.name} = {point.value} in {ENTRY_POINT_GROUP} "
                                    f"is not a KindInfo")
                self._kinds.setdefault(info.kind, info)
            self._scanned = True

    def find(self, kind: str) -> KindInfo | None:
        if kind not in self._kinds:
            self._scan()
        return self._kinds.get(kind)

    def get(self, kind: str) -> KindInfo:
        info = self.find(kind)
        if info is None:
            raise KeyError(kind)
        return info

    def known(self) -> list[KindInfo]:
        """The kinds registered so far, without scanning (cheap)."""
        return list(self._kinds.values())

    def all(self) -> list[KindInfo]:
        """Every kind, plugins' entry points included."""
        self._scan()
        return list(self._kinds.values())

    def targets(self) -> list[KindInfo]:
        """The kinds a SyncJob can schedule: every kind but SyncJob itself."""
        return [info for info in self.all() if info.kind != SCHEDULER_KIND]


REGISTRY = KindRegistry()


def register(info: KindInfo) -> KindInfo:
    """Register a kind (a plugin's, or a test's)."""
    return REGISTRY.register(info)


_RENDERED: ContextVar[tuple[str, ...] | None] = ContextVar("rendered_kinds", default=None)


@contextlib.contextmanager
def rendering(kinds: Sequence[str]) -> Iterator[None]:
    """While generating schemas or CRDs for `kinds`, a SyncJob's `targetRef.kind` enum lists
    exactly those (not whatever else this process happens to have registered)."""
    token = _RENDERED.set(tuple(k for k in kinds if k != SCHEDULER_KIND))
    try:
        yield
    finally:
        _RENDERED.reset(token)


def schedulable_kinds() -> list[str]:
    """The kinds a SyncJob may target: those being rendered, else every registered one."""
    rendered = _RENDERED.get()
    return list(rendered) if rendered is not None else [info.kind for info in REGISTRY.targets()]
