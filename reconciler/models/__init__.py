"""The spec models: what users write, one module per kind.

`KINDS` maps each kind name to its model. Plugins (test drivers, site-specific kinds)
add theirs with :func:`register_kind`; the loader and the generators only ever look here.
The built-in kinds other than SyncJob are imported when first looked up, so a command
that loads only AgentConfigs never builds the AED or RBAC models (CLI start-up time).
"""

from __future__ import annotations

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

_LAZY = {"RbacMapping", "AedSourceBinding", "AgentConfig"}


class _Kinds(MutableMapping[str, type[Resource]]):
    """Kind name → model, a view of the kind registry (`reconciler.kinds`): models are
    imported on first lookup; a kind not known yet makes the registry scan plugins."""

    def __getitem__(self, kind: str) -> type[Resource]:
        from reconciler.kinds import REGISTRY

        info = REGISTRY.find(kind)
        if info is None:
            raise KeyError(kind)
        return info.load_model()

    def __setitem__(self, kind: str, model: type[Resource]) -> None:
        from reconciler.kinds import REGISTRY, KindInfo

        known = REGISTRY.find(kind)
        REGISTRY.register(KindInfo(kind, model.PLURAL or f"{kind.lower()}s", model,
                                   known.driver if known is not None else None))

    def __delitem__(self, kind: str) -> None:
        raise TypeError("kinds are not unregistered")

    def __iter__(self) -> Iterator[str]:
        from reconciler.kinds import REGISTRY

        return iter([info.kind for info in REGISTRY.all()])

    def __len__(self) -> int:
        from reconciler.kinds import REGISTRY

        return len(REGISTRY.all())


KINDS: MutableMapping[str, type[Resource]] = _Kinds()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return KINDS[name]
    if name == "BUILTIN_KINDS":
        from reconciler.kinds import BUILTINS

        return tuple(info.load_model() for info in BUILTINS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_kind(model: type[Resource]) -> type[Resource]:
    """Make a kind loadable (used by plugins; see `reconciler.kinds` for the registry)."""
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
