"""A small but real driver for tests: a JSON file of keys and values as the target.

Kind `KeyValueStore` declares `file` and `data` (key → value). The driver observes the
file, plans per key, and applies by atomic replacement. Knobs make it misbehave on
purpose: `failOn` (observe | apply) raises, `applyDelaySeconds` holds the lock long
enough to test serialisation, `token` is a secret resolved at run time and put in the
file and in an error message, so tests can check it never leaks into records.
Loaded as a plugin (`RECONCILER_PLUGINS=kvstore_driver`) by the CLI tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from reconciler.engine.drivers import ApplyResult, DriverRegistry, RunContext
from reconciler.engine.guards import MaxDeletes
from reconciler.errors import DriverError
from reconciler.models import Resource, register_kind
from reconciler.models.common import SecretRef, SpecModel, Threshold
from reconciler.structs.plans import Change, Plan

INTERVALS: list[tuple[str, float, float]] = []
"""(run id, apply start, apply end) of every apply, for the serialisation test."""


class KeyValueStoreSpec(SpecModel):
    file: str
    data: dict[str, str] = Field(default_factory=dict)
    fail_on: Literal["observe", "apply"] | None = None
    apply_delay_seconds: float = 0.0
    token: SecretRef | None = None
    max_deletes: Threshold | None = None


@register_kind
class KeyValueStore(Resource):
    KIND: ClassVar[str] = "KeyValueStore"
    PLURAL: ClassVar[str] = "keyvaluestores"
    kind: Literal["KeyValueStore"]
    spec: KeyValueStoreSpec


@register_kind
class Bookmark(Resource):
    """A kind that no driver handles (the CLI skips it with a note)."""

    KIND: ClassVar[str] = "Bookmark"
    PLURAL: ClassVar[str] = "bookmarks"
    kind: Literal["Bookmark"]
    spec: dict[str, str]


def read_file(path: Path) -> dict[str, str]:
    return json.loads(path.read_text()) if path.exists() else {}


class KeyValueStoreDriver:
    kind: ClassVar[str] = "KeyValueStore"

    async def observe(self, spec: KeyValueStore, ctx: RunContext) -> dict[str, str]:
        if spec.spec.fail_on == "observe":
            raise DriverError(f"cannot read {spec.spec.file}: simulated failure")
        return read_file(Path(spec.spec.file))

    def diff(self, spec: KeyValueStore, actual: dict[str, str], ctx: RunContext) -> Plan:
        desired = dict(spec.spec.data)
        if spec.spec.token is not None:
            desired["token"] = ctx.secrets.resolve(spec.spec.token).reveal()
        changes = []
        unchanged = 0
        for key in sorted(desired):
            if key not in actual:
                changes.append(Change.create(key, {"value": desired[key]}, item="key"))
            elif actual[key] != desired[key]:
                changes.append(Change.update(key, {"value": actual[key]}, {"value": desired[key]},
                                             item="key"))
            else:
                unchanged += 1
        for key in sorted(set(actual) - set(desired)):
            if key in ctx.inventory:  # ownership: only what we created
                changes.append(Change.delete(key, {"value": actual[key]}, item="key"))
        return Plan(target=spec.ref, changes=tuple(changes), unchanged=unchanged)

    async def apply(self, plan: Plan, ctx: RunContext) -> ApplyResult:
        spec: KeyValueStore = ctx.obj  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        start = loop.time()
        if spec.spec.apply_delay_seconds:
            await asyncio.sleep(spec.spec.apply_delay_seconds)
        if spec.spec.fail_on == "apply":
            token = ctx.secrets.resolve(spec.spec.token).reveal() if spec.spec.token else ""
            raise RuntimeError(f"connection refused for token {token}")
        path = Path(spec.spec.file)
        content: dict[str, Any] = read_file(path)
        for change in plan.changes:
            if change.action == "delete":
                content.pop(change.key, None)
            else:
                content[change.key] = (
                    ctx.secrets.resolve(spec.spec.token).reveal()
                    if change.key == "token" and spec.spec.token else change.after["value"]
                )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as handle:
            json.dump(content, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        INTERVALS.append((ctx.run_id, start, loop.time()))
        return ApplyResult.from_plan(plan)

    def guards(self, spec: KeyValueStore) -> list[MaxDeletes]:
        return [MaxDeletes(spec.spec.max_deletes)] if spec.spec.max_deletes is not None else []


def register(registry: DriverRegistry) -> None:
    registry.register("KeyValueStore", KeyValueStoreDriver)
