"""The store: runs, changes, events, inventory, watermarks, snapshots and audit.

`Store` implements every port of `reconciler.ports`; the value types it records and
returns live in `reconciler.structs`.
"""

from reconciler.store.repository import Store

__all__ = ["Store"]
