"""`reconciler serve`: the scheduler, the spec watcher, the HTTP API and events, in one loop.

At start the daemon loads the specs (folder or git), reconciles every object once (as
Flux does after a restart), then runs concurrently:

- the scheduler (SyncJobs: cron or interval, persisted next/last run times, claims that
  make a due run happen once across daemons sharing a PostgreSQL store);
- the spec watcher: a folder is re-read when a file changes, a git branch is fetched every
  `poll` interval or at once on a verified push webhook; objects whose specs changed are
  reconciled with the commit SHA recorded on their runs;
- the HTTP API (uvicorn in the same event loop);
- the event publishers (Redis Streams, MQTT, webhook alerts) when configured (publishers.py).

SIGTERM or SIGINT stops accepting work, lets the runs in flight (the start-up reconcile
included) finish within the grace period and cancels the rest (recorded `cancelled`, the
target left as it was), closes the SSE and WebSocket streams, flushes the publishers and
closes the store; a second signal exits at once (see stopping.py). `health` (see
health.py) follows the spec source and the publishers for `/readyz`, the status API, the
metrics and the MQTT health payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from reconciler.access import TokenTable
from reconciler.api.streaming import Streams
from reconciler.assembly import open_runtime
from reconciler.errors import ReconcilerError
from reconciler.logs import LogBuffer
from reconciler.models import ObjectRef
from reconciler.runtime.control import Controller
from reconciler.runtime.health import DaemonHealth
from reconciler.runtime.publishers import start_publishers
from reconciler.runtime.sources import FolderSource, GitSource
from reconciler.runtime.stopping import Stopping
from reconciler.settings import Settings
from reconciler.structs.runs import Trigger

log = structlog.get_logger("reconciler.daemon")


@dataclass(slots=True)
class DaemonOptions:
    specs: Path | None = None
    git_url: str | None = None
    git_credentials: str | None = None
    """A secret reference (`env:NAME` or `file:PATH`) to `USER:TOKEN` for the git URL."""
    branch: str = "main"
    path: str = "."
    write_back: str | None = None
    """Git mode: the remote branch accepted proposals are pushed to (never `branch`)."""
    poll_seconds: float = 30.0
    host: str = "127.0.0.1"
    port: int = 8080
    tokens: TokenTable = field(default_factory=TokenTable)
    webhook_secret: str | None = None
    grace_seconds: float = 60.0
    initial_reconcile: bool = True


@dataclass(slots=True)
class Daemon:
    settings: Settings
    options: DaemonOptions
    logs: LogBuffer = field(default_factory=LogBuffer)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    poke: asyncio.Event = field(default_factory=asyncio.Event)
    controller: Controller | None = None
    scheduler: Any = None
    closers: list[Callable[[], Awaitable[object]]] = field(default_factory=list)  # results ignored
    health: DaemonHealth = field(default_factory=DaemonHealth)
    streams: Streams = field(default_factory=Streams)  # the API's SSE and WebSocket streams
    stopping: Stopping | None = None

    def source(self) -> FolderSource | GitSource:
        o = self.options
        if o.git_url:
            credentials = None
            if o.git_credentials:
                from reconciler.loading.secrets import SecretResolver, parse_reference

                ref = parse_reference(o.git_credentials, option="--git-credentials")
                credentials = SecretResolver().resolve(ref).reveal()
            return GitSource(o.git_url, o.branch, o.path, self.settings.state_dir / "git",
                             credentials=credentials, limits=self.settings.loader_limits())
        if o.specs is None:
            raise ReconcilerError("serve needs --specs PATH or --git URL")
        return FolderSource(o.specs, limits=self.settings.loader_limits())

    async def run(self) -> None:
        from reconciler.loading.specs import SpecSet

        source = self.source()
        if isinstance(source, GitSource):  # accepted proposals become commits (runtime/writeback.py)
            from reconciler.drivers.agents.specpatch import use_git
            from reconciler.runtime.writeback import GitWriteBack

            use_git(GitWriteBack(source, self.options.write_back))
        runtime = open_runtime(self.settings)
        head = await asyncio.to_thread(source.head)
        specs = await asyncio.to_thread(self._load, source, head)
        self.health.source.source = source.describe()
        self.health.source.loaded(specs.revision or head)
        self.stopping = stopping = Stopping(self.options.grace_seconds, requested=self.stop)
        self.controller = controller = Controller(runtime, SpecSet((), {}, None))
        log.info("daemon starting", source=source.describe(), revision=specs.revision, objects=len(specs))
        await self._start_scheduler(controller)
        self.closers += await start_publishers(self.settings, controller, health=self.health,
                                               role_of=self.options.tokens.role_of)
        server = self._server(controller)
        stopping.install()
        serving = asyncio.create_task(server.serve(), name="api")
        watchers: asyncio.Task[None] | None = None
        try:
            first = None
            if self.options.initial_reconcile:
                # A task like any run: the grace covers it, and a signal is heard meanwhile.
                first = controller.spawn(controller.take(specs, trigger=Trigger.GIT if isinstance(
                    source, GitSource) else Trigger.MANUAL))
            else:
                controller.specs = specs
            watchers = asyncio.create_task(self._follow(source, head, first), name="watchers")
            await self.stop.wait()
        finally:
            await self._shut_down(controller, server, serving, watchers)
            runtime.close()
            log.info("daemon stopped")

    async def _follow(self, source: FolderSource | GitSource, head: str | None,
                      first: asyncio.Task[Any] | None) -> None:
        """The target watcher at once (a hand edit made while the start-up reconcile is still
        recording would otherwise be fingerprinted as known and missed); after the start-up
        reconcile, the spec watcher and retention."""
        targets = asyncio.create_task(self._watch_targets(), name="target watcher")
        try:
            if first is not None:
                await asyncio.wait({first})
                if not first.cancelled() and first.exception() is not None:
                    log.error("the start-up reconcile failed", error=str(first.exception()))
            await asyncio.gather(self._watch(source, head), targets, self._prune_history())
        finally:
            targets.cancel()

    async def _shut_down(self, controller: Controller, server: Any, serving: asyncio.Task[Any],
                         watchers: asyncio.Task[None] | None) -> None:
        """No new work; the runs in flight get the grace; then streams, server, publishers."""
        assert self.stopping is not None
        stopping = self.stopping
        stopping.request()  # also when run() ends by an error: the grace clock starts now
        controller.closing = self.health.stopping = True
        log.info("daemon stopping", grace=self.options.grace_seconds)
        if watchers is not None:
            watchers.cancel()
            await asyncio.gather(watchers, return_exceptions=True)
        for _ in range(3):  # runs that started while the first ones were awaited
            running: set[asyncio.Task[Any]] = set(controller.tasks)
            if self.scheduler is not None:
                running |= self.scheduler.run_tasks()
            if not running:
                break
            await stopping.let_finish(running)
        if self.scheduler is not None:
            await self.scheduler.shutdown(0)
        loop = asyncio.get_running_loop()
        cleanup_until = loop.time() + stopping.cleanup_seconds
        # Streams end after the runs' last events (RunCancelled included) went out on them, and
        # before the server stops (which would drop a WebSocket without a goodbye).
        await self.streams.close(timeout=max(0.1, cleanup_until - loop.time()))
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(serving, return_exceptions=True),
                                   timeout=max(0.1, cleanup_until - loop.time()))
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(close(), timeout=max(0.1, cleanup_until - loop.time()))

    @staticmethod
    def _load(source: FolderSource | GitSource, head: str | None) -> Any:
        if isinstance(source, GitSource):
            return source.load(head)
        return source.load()

    def _server(self, controller: Controller) -> Any:
        import uvicorn

        from reconciler.api.app import create_app

        app = create_app(controller, tokens=self.options.tokens, logs=self.logs,
                         ready=lambda: self.scheduler is None or self.scheduler.alive(),
                         webhook_secret=self.options.webhook_secret, on_push=self.poke.set,
                         settings=self.settings, health=self.health, streams=self.streams)
        # The streams are closed by us before the server stops; the timeout is a backstop for
        # a request handler that does not end.
        config = uvicorn.Config(app, host=self.options.host, port=self.options.port, log_level="warning",
                                lifespan="off", access_log=False, timeout_graceful_shutdown=2)
        server = uvicorn.Server(config)
        # Server.serve() would take SIGINT/SIGTERM for as long as it runs (capture_signals) and
        # start its own shutdown, which waits for every open SSE/WebSocket connection: the
        # signals are ours (stopping.py), so that capture is switched off.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        return server

    async def _start_scheduler(self, controller: Controller) -> None:
        try:
            from reconciler.schedule.scheduler import Scheduler
        except ImportError:  # pragma: no cover - the scheduler ships with the package
            return
        from reconciler.schedule.clock import SystemClock

        async def start_run(job: Any, target: Any, trigger: Trigger, mode: Any, dry_run: bool,
                            scheduled_for: Any) -> Any:
            return await controller.reconcile(controller.get(target), trigger=trigger, mode=mode,
                                              dry_run=dry_run)

        self.scheduler = Scheduler(controller.store, clock=SystemClock(), start_run=start_run,
                                   jobs=controller.jobs)
        task = asyncio.create_task(self.scheduler.run_forever(self.stop), name="scheduler")
        self.closers.append(lambda: asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5))

    async def _watch(self, source: FolderSource | GitSource, head: str | None) -> None:
        """Poll the source (or wake on a push webhook); reconcile what a new revision changed."""
        assert self.controller is not None
        current = head
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.poke.wait(), timeout=self.options.poll_seconds)
            self.poke.clear()
            since = self.controller.write_backs  # before the source is read (see Controller.take)
            try:
                new_head = await asyncio.to_thread(source.head)
            except Exception as exc:
                log.warning("could not read the spec source", error=str(exc))
                self.health.source.failed(None, f"could not read the spec source: {exc}")
                continue
            self.health.source.reachable()
            if new_head == current:
                continue
            try:
                specs = await asyncio.to_thread(self._load, source, new_head)
            except ReconcilerError as exc:
                log.warning("new specs not loaded; keeping the last good set", error=str(exc),
                            revision=new_head)
                self.health.source.failed(new_head, str(exc))
                current = new_head  # not loaded again until a new revision comes
                continue
            except Exception as exc:
                log.exception("could not load the specs", revision=new_head)
                self.health.source.failed(new_head, f"could not load the specs: {type(exc).__name__}: {exc}")
                continue
            current = new_head
            changed = self.controller.changed(specs)
            log.info("new specs", revision=specs.revision, changed=[o.ref.short for o in changed])
            self.health.source.loaded(specs.revision or new_head)
            # Spawned, so that the grace of a shutdown covers these runs; shielded, so that
            # cancelling this watcher does not cancel them.
            with contextlib.suppress(ReconcilerError):
                await asyncio.shield(self.controller.spawn(self.controller.take(
                    specs, trigger=Trigger.GIT if isinstance(source, GitSource) else Trigger.MANUAL,
                    since=since)))
            if self.controller.write_backs != since:
                current = None  # a run wrote a spec back while the source was read: read it again


    async def _prune_history(self) -> None:
        """Apply the history retention (`RECONCILER_HISTORY_RETENTION_*`) once the first
        reconcile is done, then every interval; see reconciler/store/pruning.py."""
        from datetime import UTC, datetime

        from reconciler.store.pruning import prune_history

        assert self.controller is not None
        policy = self.settings.history_retention()
        if not policy.enabled:
            return
        interval = self.settings.history_retention_interval.total_seconds()
        while not self.stop.is_set():
            try:
                report = await asyncio.to_thread(prune_history, self.controller.store, policy=policy,
                                                 now=datetime.now(UTC), actor="daemon")
                if not report.empty:
                    log.info("history pruned", runs=report.runs, rows=report.rows, keeping=policy.describe())
            except Exception as exc:  # a busy or unreachable store: try again next interval
                log.warning("history retention failed; retrying next interval", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=interval)

    def _watched(self) -> dict[Path, ObjectRef]:
        """Target files that drivers ask to watch (`watch_paths`), and their objects."""
        from reconciler.engine.drivers import WatchesPaths

        assert self.controller is not None
        out: dict[Path, ObjectRef] = {}
        for obj in self.controller.specs:
            if not self.controller.runtime.drivers.has(obj.KIND):
                continue
            driver = self.controller.runtime.drivers.get(obj.KIND)
            if isinstance(driver, WatchesPaths):
                with contextlib.suppress(Exception):
                    for path in driver.watch_paths(obj):
                        out[Path(path)] = obj.ref
        return out

    async def _watch_targets(self) -> None:
        """A hand edit of a watched file runs its object within a second (trigger
        file-watch), so that its conflict policy handles the drift. The reconciler's own
        writes are recognised and ignored: after each run the watched files' contents are
        fingerprinted, and a change that leaves a file as the run wrote it is no edit."""
        import hashlib

        from watchfiles import awatch

        assert self.controller is not None
        known: dict[Path, str | None] = {}

        def fingerprint(path: Path) -> str | None:
            try:
                return hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                return None

        def written_by(run_id: str) -> dict[Path, str | None]:
            """What the run wrote into each file, from its snapshots ({path, after}): exactly
            the run's own bytes, so a hand edit made meanwhile is never taken for them."""
            assert self.controller is not None
            out: dict[Path, str | None] = {}
            with contextlib.suppress(Exception):
                for _key, snap in self.controller.store.snapshots(run_id):
                    if isinstance(snap, dict) and snap.get("path") and "after" in snap:
                        after = snap["after"]
                        out[Path(snap["path"])] = (None if after is None else
                                                   hashlib.sha256(str(after).encode("utf-8")).hexdigest())
            return out

        def after_run(event: Any) -> None:
            # Only files the run wrote change their known fingerprint, and to what it wrote; a
            # run that wrote nothing leaves them, so an edit made during it is still news.
            if event.run_id and event.type not in ("RunStarted", "RunStillRunning"):
                written = written_by(event.run_id)
                for path, ref in self._watched().items():
                    if ref == event.target and path in written:
                        known[path] = written[path]

        self.controller.runtime.bus.subscribe(after_run)
        while not self.stop.is_set():
            watched = self._watched()
            # A linked file (dotfiles managers link client files from a repository) changes
            # where its target lives: that folder is watched too, its events mapped back.
            aliases = {Path(os.path.realpath(p)): p for p in watched}
            wanted = {p.parent for p in [*watched, *aliases]}
            folders = sorted(folder for folder in wanted if folder.exists())
            if not folders:  # no spec set yet (start-up), or its files' folders not created yet
                await asyncio.sleep(min(self.options.poll_seconds, 0.25))
                continue
            specs = self.controller.specs
            touched: set[ObjectRef] = set()
            for path in watched:
                now = fingerprint(path)
                if path in known and now != known[path]:
                    touched.add(watched[path])  # changed while the watch restarted
                known[path] = now
            self._run_edited(touched)
            # Every second without a change the watch yields nothing: a client's folder created
            # meanwhile (a first reconcile makes `.gemini/`) is then watched too.
            async for changes in awatch(*folders, stop_event=self.stop, debounce=200, step=50,
                                        recursive=False, rust_timeout=1000, yield_on_timeout=True):
                paths = {aliases.get(Path(p), Path(p)) for _, p in changes}
                touched = set()
                for path in paths & watched.keys():
                    now = fingerprint(path)
                    if now != known.get(path):
                        # What the file holds now is known: a later change back (a file restored
                        # from a backup after a failed run) is an edit too, not the last write.
                        known[path] = now
                        touched.add(watched[path])
                self._run_edited(touched)
                # Watching again only when the files or folders to watch changed (an edit made
                # while the watch restarts is found by its fingerprint above).
                if self.controller.specs is not specs:
                    # New specs (a spec set taken, or a run's write-back): new files to watch,
                    # if they name others.
                    if self._watched() != watched:
                        break
                    specs = self.controller.specs
                if any(folder.exists() for folder in wanted.difference(folders)):
                    break  # a client's folder was created

    def _run_edited(self, refs: set[ObjectRef]) -> None:
        """A file-watch run of each object whose watched file was edited by hand."""
        assert self.controller is not None
        for ref in refs:
            log.info("target file changed outside the reconciler", object=ref.short)
            with contextlib.suppress(ReconcilerError):
                self.controller.start_run(ref, trigger=Trigger.FILE_WATCH, even_if_suspended=False)


def serve(settings: Settings, options: DaemonOptions, logs: LogBuffer | None = None) -> None:
    """Run the daemon until a signal stops it; a second signal exits with 128 + its number."""
    daemon = Daemon(settings, options, logs or LogBuffer())
    try:
        asyncio.run(daemon.run())  # its end waits for worker threads too: the watchdog stays armed
    finally:
        if daemon.stopping is not None:
            daemon.stopping.done()
    if daemon.stopping is not None and daemon.stopping.signal is not None:
        raise SystemExit(128 + daemon.stopping.signal)
