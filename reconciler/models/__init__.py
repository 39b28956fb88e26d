"""The spec models: what users write, one module per kind.

`KINDS` maps each kind name to its model. Plugins (test drivers, site-specific kinds)
add theirs with :func:`register_kind`; the loader and the generators only ever look here.
The built-in kinds other than SyncJob are imported when first looked up, so a command
that loads only AgentConfigs never builds the AED or RBAC models (CLI start-up time).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from reconciler.models.common import (
    API_GROUP,
    API_VERSION,
    Condition,
    ConditionStatus,
    DeletionPolicy,
    Mode,
    ObjectMeta,
    ObjectRef,
    Resource,
    SecretRef,
    TargetRef,
)
from reconciler.models.status import LastResult, ObjectStatus, RunCounts
from reconciler.models.syncjob import ConcurrencyPolicy, SyncJob, SyncJobSpec, SyncJobStatus

if TYPE_CHECKING:
    from reconciler.models.aed import AedSourceBinding
    from reconciler.models.agents import AgentConfig
    from reconciler.models.rbac import RbacMapping

_LAZY = {
    "RbacMapping": "reconciler.models.rbac",
    "AedSourceBinding": "reconciler.models.aed",
    "AgentConfig": "reconciler.models.agents",
}


class _Kinds(MutableMapping[str, type[Resource]]):
    """Kind name → model; built-in models are imported on first lookup."""

    def __init__(self) -> None:
        self._models: dict[str, type[Resource] | None] = {"SyncJob": SyncJob, **dict.fromkeys(_LAZY)}

    def __getitem__(self, kind: str) -> type[Resource]:
        model = self._models[kind]
        if model is None:
            model = getattr(importlib.import_module(_LAZY[kind]), kind)
            self._models[kind] = model
        return model

    def __setitem__(self, kind: str, model: type[Resource]) -> None:
        self._models[kind] = model

    def __delitem__(self, kind: str) -> None:
        del self._models[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)


KINDS: MutableMapping[str, type[Resource]] = _Kinds()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return KINDS[name]
    if name == "BUILTIN_KINDS":
        return tuple(KINDS[k] for k in ("SyncJob", "RbacMapping", "AedSourceBinding", "AgentConfig"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_kind(model: type[Resource]) -> type[Resource]:
    """Make a kind loadable (used by plugins; the built-in kinds are registered above)."""
    if not model.KIND:
        raise ValueError(f"{model.__name__} has no KIND")
    KINDS[model.KIND] = model
    return model


__all__ = [
    "API_GROUP",
    "API_VERSION",
    "BUILTIN_KINDS",
    "KINDS",
    "AedSourceBinding",
    "AgentConfig",
    "ConcurrencyPolicy",
    "Condition",
    "ConditionStatus",
    "DeletionPolicy",
    "LastResult",
    "Mode",
    "ObjectMeta",
    "ObjectRef",
    "ObjectStatus",
    "RbacMapping",
    "Resource",
    "RunCounts",
    "SecretRef",
    "SyncJob",
    "SyncJobSpec",
    "SyncJobStatus",
    "TargetRef",
    "register_kind",
]
