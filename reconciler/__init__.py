"""reconciler: a declarative, GitOps-style reconciler for databases and config files.

The public API is re-exported here; everything else is internal and may change.
"""

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
)
from reconciler.loading import SecretResolver, SpecSet, load_specs
from reconciler.models import KINDS, Mode, ObjectRef, Resource, register_kind

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
    "Trigger",
    "__version__",
    "load_specs",
    "register_kind",
]
