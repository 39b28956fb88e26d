"""The store: runs, changes, events, inventory, watermarks, snapshots and audit."""

from reconciler.store.repository import ChangeRecord, RunRecord, Store, TargetState

__all__ = ["ChangeRecord", "RunRecord", "Store", "TargetState"]
