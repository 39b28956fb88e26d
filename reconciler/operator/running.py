"""`reconciler operator`: kopf, the HTTP API (probes, metrics, runs) and the configured event
publishers (Redis Streams, MQTT, webhook alerts: runtime/publishers.py, as `serve` starts
them) in one event loop.

With several replicas, kopf peering makes the one with the highest priority active and the
others wait (give each replica its own `--priority`; failover takes up to about a minute,
kopf's peering keepalive), and the store's per-target lock and schedule claims keep a run
from happening twice whichever replica starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import kopf

from reconciler.access import TokenTable
from reconciler.assembly import open_runtime
from reconciler.loading.secrets import SecretResolver
from reconciler.loading.specs import SpecSet
from reconciler.operator.handlers import FINALIZER, Operator
from reconciler.operator.secrets import SecretReader
from reconciler.runtime.control import Controller
from reconciler.runtime.health import DaemonHealth
from reconciler.runtime.publishers import start_publishers
from reconciler.settings import Settings


async def operate(settings: Settings, *, namespaces: list[str], port: int, priority: int,
                  tick_seconds: float, tokens: TokenTable,
                  stop: asyncio.Event | threading.Event | None = None,
                  host: str = "0.0.0.0", peering: str = "default", scan: bool = True) -> None:
    """Run kopf and the API until `stop` is set. `scan=False` does not watch for namespaces
    and CRDs appearing later (a fixed namespace list then needs no cluster-wide list rights)."""
    import uvicorn

    from reconciler.api.app import create_app

    reader = SecretReader()
    runtime = open_runtime(settings, secrets=lambda: SecretResolver(kubernetes=reader))
    registry = kopf.OperatorRegistry()
    Operator(runtime, registry, tick_seconds=tick_seconds, secrets=reader)
    options = kopf.OperatorSettings()
    options.persistence.finalizer = FINALIZER
    options.scanning.disabled = not scan
    controller = Controller(runtime, SpecSet((), {}, None))
    health = DaemonHealth()
    app = create_app(controller, tokens=tokens, settings=settings, health=health)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                           access_log=False))
    stop = stop or asyncio.Event()
    try:
        closers = await start_publishers(settings, controller, health=health, role_of=tokens.role_of)
    except BaseException:
        runtime.close()
        raise
    serving = asyncio.create_task(server.serve())
    try:
        # Priority 0 runs standalone; naming a peering object would make kopf require it.
        standalone = priority == 0
        await kopf.operator(registry=registry, clusterwide=not namespaces, namespaces=namespaces,
                            priority=priority, standalone=standalone, stop_flag=stop,
                            peering_name=None if standalone else peering, settings=options)
    finally:
        health.stopping = True
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 10)
        for close in reversed(closers):  # flush the publishers after the runs' last events
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close(), 10)
        runtime.close()


def run_operator(settings: Settings, **options: object) -> None:
    asyncio.run(operate(settings, **options))  # type: ignore[arg-type]
