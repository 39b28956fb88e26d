"""`reconciler operator`: kopf and the HTTP API (probes, metrics, runs) in one event loop.

With several replicas, kopf peering makes the one with the highest priority active and the
others wait (give each replica its own `--priority`; failover takes up to about a minute,
kopf's peering keepalive), and the store's per-target lock and schedule claims keep a run
from happening twice whichever replica starts it.
"""

from __future__ import annotations

import asyncio
import contextlib

import kopf

from reconciler.api.auth import TokenTable
from reconciler.assembly import open_runtime
from reconciler.loading.specs import SpecSet
from reconciler.operator.handlers import Operator
from reconciler.runtime.control import Controller
from reconciler.settings import Settings


async def operate(settings: Settings, *, namespaces: list[str], port: int, priority: int,
                  tick_seconds: float, tokens: TokenTable, stop: asyncio.Event | None = None,
                  host: str = "0.0.0.0", peering: str = "default") -> None:
    import uvicorn

    from reconciler.api.app import create_app

    runtime = open_runtime(settings)
    registry = kopf.OperatorRegistry()
    Operator(runtime, registry, tick_seconds=tick_seconds)
    controller = Controller(runtime, SpecSet((), {}, None))
    app = create_app(controller, tokens=tokens)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                           access_log=False))
    stop = stop or asyncio.Event()
    serving = asyncio.create_task(server.serve())
    try:
        await kopf.operator(registry=registry, clusterwide=not namespaces, namespaces=namespaces or None,
                            priority=priority, standalone=priority == 0, stop_flag=stop,
                            peering_name=peering)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 10)
        runtime.close()


def run_operator(settings: Settings, **options: object) -> None:
    asyncio.run(operate(settings, **options))  # type: ignore[arg-type]
