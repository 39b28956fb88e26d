"""The engine: plans and changes, the driver contract, guards, events, conditions, runs.

The orchestrator lives in `reconciler.engine.orchestrator` (it needs the store, which in
turn uses the plan types defined here).
"""

from reconciler.engine.drivers import ApplyResult, Driver, DriverRegistry, RunContext
from reconciler.engine.events import Event, EventBus, EventType
from reconciler.engine.guards import Guard, MaxDeletes
from reconciler.structs.plans import Action, Change, Counts, FieldChange, Plan
from reconciler.structs.runs import Outcome, RunResult, Trigger

__all__ = [
    "Action",
    "ApplyResult",
    "Change",
    "Counts",
    "Driver",
    "DriverRegistry",
    "Event",
    "EventBus",
    "EventType",
    "FieldChange",
    "Guard",
    "MaxDeletes",
    "Outcome",
    "Plan",
    "RunContext",
    "RunResult",
    "Trigger",
]
