"""reconciler: a declarative, GitOps-style reconciler for databases and config files.

The public API is re-exported here; everything else is internal and may change. Names
are imported on first access (PEP 562), so `import reconciler` and `reconciler --help`
do not pay for the engine, the store and the models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reconciler.errors import (
    ConflictError,
    DriverError,
    GuardAborted,
    LockTimeout,
    NoDriverError,
    ReconcilerError,
    SecretError,
    SourceError,
    SpecError,
    StoreError,
    TargetError,
)

if TYPE_CHECKING:
    from reconciler.engine import (
        Action,
        ApplyResult,
        Change,
        Counts,
        Driver,
        DriverRegistry,
        Event,
        EventBus,
        Guard,
        MaxDeletes,
        Outcome,
        Plan,
        RunContext,
        RunResult,
        Trigger,
    )
    from reconciler.loading import SecretResolver, SpecSet, load_specs
    from reconciler.models import KINDS, Mode, ObjectRef, Resource, register_kind

_LAZY = {
    **dict.fromkeys(("Action", "ApplyResult", "Change", "Counts", "Driver", "DriverRegistry", "Event",
                     "EventBus", "Guard", "MaxDeletes", "Outcome", "Plan", "RunContext", "RunResult",
                     "Trigger"), "reconciler.engine"),
    **dict.fromkeys(("SecretResolver", "SpecSet", "load_specs"), "reconciler.loading"),
    **dict.fromkeys(("KINDS", "Mode", "ObjectRef", "Resource", "register_kind"), "reconciler.models"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "Action",
    "ApplyResult",
    "Change",
    "ConflictError",
    "Counts",
    "Driver",
    "DriverError",
    "DriverRegistry",
    "Event",
    "EventBus",
    "Guard",
    "GuardAborted",
    "LockTimeout",
    "MaxDeletes",
    "Mode",
    "NoDriverError",
    "ObjectRef",
    "Outcome",
    "Plan",
    "ReconcilerError",
    "Resource",
    "RunContext",
    "RunResult",
    "SecretError",
    "SecretResolver",
    "SourceError",
    "SpecError",
    "SpecSet",
    "StoreError",
    "TargetError",
    "Trigger",
    "__version__",
    "load_specs",
    "register_kind",
]
