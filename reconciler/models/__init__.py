"""The spec models: what users write, one module per kind.

`KINDS` maps each kind name to its model. Plugins (test drivers, site-specific kinds)
add theirs with :func:`register_kind`; the loader and the generators only ever look here.
"""

from __future__ import annotations

from reconciler.models.aed import AedSourceBinding
from reconciler.models.agents import AgentConfig
from reconciler.models.common import (
    API_GROUP,
    API_VERSION,
    Condition,
    ConditionStatus,
    Mode,
    ObjectMeta,
    ObjectRef,
    Resource,
    SecretRef,
    TargetRef,
)
from reconciler.models.rbac import RbacMapping
from reconciler.models.status import LastResult, ObjectStatus, RunCounts
from reconciler.models.syncjob import ConcurrencyPolicy, SyncJob, SyncJobSpec, SyncJobStatus

BUILTIN_KINDS: tuple[type[Resource], ...] = (SyncJob, RbacMapping, AedSourceBinding, AgentConfig)
KINDS: dict[str, type[Resource]] = {model.KIND: model for model in BUILTIN_KINDS}


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
