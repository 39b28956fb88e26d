"""The HTTP API of a running reconciler (FastAPI; OpenAPI at `/docs` and `/openapi.json`).

A thin front end over the `Controller`: status and history from the store, forced runs,
suspend/resume, schedule overrides, run details, events as Server-Sent Events and over a
WebSocket, recent logs, exports, health and Prometheus metrics. Every route but the health
ones needs a bearer token; changes need the `admin` role and are written to the audit
table with the caller and the client address. Store reads are plain functions, run by
FastAPI in its thread pool so the event loop stays free for the scheduler.
"""

# No `from __future__ import annotations` here: FastAPI reads the route annotations at run
# time, and the dependencies (`Viewer`, `Admin`) are local to `create_app`.
import csv
import hashlib
import hmac
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from reconciler.access import Caller, Role, TokenTable
from reconciler.api.gate import BodyLimit, RequestGate
from reconciler.api.metrics import Metrics
from reconciler.api.streaming import Streams
from reconciler.engine.events import Event, EventMessage, EventType
from reconciler.errors import ReconcilerError
from reconciler.logs import LogBuffer
from reconciler.models import Mode, ObjectRef, SyncJob
from reconciler.runtime.control import (
    DEFAULT_RUN_WAIT_SECONDS,
    MAX_RUN_WAIT_SECONDS,
    Controller,
    NotFound,
    Refused,
)
from reconciler.runtime.health import DaemonHealth
from reconciler.settings import Settings
from reconciler.status import object_statuses, run_detail
from reconciler.structs.jsonable import jsonable
from reconciler.structs.runs import Trigger
from reconciler.web.sessions import CSRF_HEADER, Authenticator, Sessions
from reconciler.web.users import UserStore

log = structlog.get_logger("reconciler.api")

WEBHOOK_PATH = "/api/v1/webhooks/git"
LOGIN_PATH = "/api/v1/auth/login"
UNGATED = (WEBHOOK_PATH, LOGIN_PATH)  # the webhook checks an HMAC of its body; login checks a password


def _logged_at(entry: dict[str, Any]) -> datetime | None:
    """A log entry's time (UTC when it names no zone), or None when it has none that parses."""
    stamp = entry.get("timestamp")
    try:
        at = datetime.fromisoformat(stamp.replace("Z", "+00:00")) if isinstance(stamp, str) else None
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at is not None and at.utcoffset() is None else at


def _aware(name: str, value: datetime | None) -> datetime | None:
    """A date-time query parameter must say its time zone: 2026-01-01T00:00:00 could be any of 25."""
    if value is not None and value.utcoffset() is None:
        raise HTTPException(400, f"{name}: expected a date-time with a time zone (such as "
                                 f"2026-01-01T00:00:00Z or 2026-01-01T00:00:00+02:00), "
                                 f"got {value.isoformat()!r}")
    return value


class LoginRequest(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class RunRequest(BaseModel):
    mode: Mode | None = Field(default=None, description="full or incremental (default: the job's mode).")
    dry_run: bool = Field(default=False, alias="dryRun")
    even_if_suspended: bool = Field(default=False, alias="evenIfSuspended")


class ScheduleOverride(BaseModel):
    schedule: str | None = Field(default=None, description="A cron expression, instead of the spec's.")
    interval: str | None = Field(default=None, description="A Go duration such as 15m, instead.")
    time_zone: str | None = Field(default=None, alias="timeZone")


class StatusCache:
    """Every object's status row, built at most once per `ttl` seconds and dropped on any run
    event or change made through the API: a status GET is a dictionary lookup, not a query
    per request (the store is read once per second however many clients ask)."""

    def __init__(self, controller: Controller, ttl: float = 1.0) -> None:
        self.controller, self.ttl = controller, ttl
        self._rows: dict[str, Any] | None = None
        self._built = 0.0

    def invalidate(self, *_: Any) -> None:
        self._rows = None

    def rows(self) -> dict[str, Any]:
        now = time.monotonic()
        rows = self._rows
        if rows is None or now - self._built > self.ttl:
            built = object_statuses(self.controller.store, self.controller.specs, now=datetime.now(UTC))
            rows = {r.object: r.model_dump(mode="json") for r in built}
            self._rows, self._built = rows, now
        return rows


def _event_json(event: Event) -> dict[str, Any]:
    return EventMessage.of(event).wire()


def create_app(controller: Controller, *, tokens: TokenTable, logs: LogBuffer | None = None,
               ready: Callable[[], bool] | None = None, webhook_secret: str | None = None,
               on_push: Callable[[], None] | None = None, settings: Settings | None = None,
               health: DaemonHealth | None = None, streams: Streams | None = None) -> FastAPI:
    """The API over `controller`. `ready` reports whether the scheduler is alive; a verified
    push webhook calls `on_push` (the spec watcher fetches at once). `settings` gives the
    body limits (their defaults without it). `health` is the daemon's (publishers, spec
    source, process; see runtime/health.py); `streams.close()` ends the event streams."""
    # The docs pages are served from the package (reconciler/web/docs.py), never from a CDN.
    app = FastAPI(title="reconciler", version="v1", docs_url=None, redoc_url=None,
                  description="Status, history and control of a running reconciler.")
    limits = settings or Settings.model_construct()
    auth = Authenticator(tokens, Sessions(UserStore(limits.users_file or limits.state_dir / "users.json"),
                                          limits.session_idle_timeout.total_seconds()))
    body_limit = BodyLimit(limits.api_max_body_bytes, "RECONCILER_API_MAX_BODY_BYTES")
    webhook_limit = BodyLimit(limits.api_webhook_max_body_bytes, "RECONCILER_API_WEBHOOK_MAX_BODY_BYTES")
    # Tokens are checked, and bodies bounded, before FastAPI reads a body (see gate.py); the
    # webhook authenticates by an HMAC of its body, so it is bounded instead.
    app.add_middleware(RequestGate, tokens=tokens,
                       protected=lambda path: path.startswith("/api/") and path not in UNGATED,
                       limit_for=lambda path: webhook_limit if path == WEBHOOK_PATH else body_limit,
                       authenticate=auth.caller_of)
    metrics = Metrics()
    store = controller.store
    metrics.resume({ref: store.runs(ref, limit=100, dry_run=False) for ref in store.latest_runs()})
    health = health or DaemonHealth()
    metrics.watch(health)
    streams = streams or Streams()
    controller.runtime.bus.subscribe(metrics.observe)
    cache = StatusCache(controller)
    controller.runtime.bus.subscribe(cache.invalidate)
    logs = logs or LogBuffer()
    app.state.metrics = metrics

    async def caller(request: Request) -> Caller:  # async: no thread hop for a digest lookup
        found = auth.identify(request.headers)  # a bearer token, or a dashboard session
        if found is None:
            raise HTTPException(401, "a valid bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})
        if not auth.csrf_ok(found, request.method, request.headers.get(CSRF_HEADER)):
            raise HTTPException(403, "a change made with the session cookie needs its X-CSRF-Token header")
        return found.caller

    async def admin(request: Request, who: Annotated[Caller, Depends(caller)]) -> Caller:
        if who.role is not Role.ADMIN:
            raise HTTPException(403, "this needs the admin role; the token has the viewer role")
        cache.invalidate()  # whatever it changes shows at once
        return who

    Viewer = Annotated[Caller, Depends(caller)]
    Admin = Annotated[Caller, Depends(admin)]

    def ref_of(kind: str, name: str, namespace: str) -> ObjectRef:
        ref = ObjectRef(kind, namespace, name)
        try:
            controller.get(ref)
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        return ref

    def source(request: Request) -> str | None:
        return request.client.host if request.client else None

    @app.exception_handler(Refused)
    async def refused(_request: Request, exc: Refused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(ReconcilerError)
    async def bad(_request: Request, exc: ReconcilerError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.post(LOGIN_PATH, tags=["auth"])
    def login(body: LoginRequest, request: Request) -> dict[str, Any]:
        """Log in as a dashboard user (`reconciler users add`): a bearer token for the API, valid
        until it has been idle for the session timeout."""
        user = auth.sessions.users.verify(body.username, body.password)
        if user is None:
            log.warning("login refused", user=body.username, source=source(request))
            controller.store.record_audit(actor=f"user:{body.username}", action="login-refused",
                                          source=source(request))
            raise HTTPException(401, "wrong user name or password")
        session = auth.sessions.start(user.name)
        controller.store.record_audit(actor=f"user:{user.name}", action="login", source=source(request))
        return {"token": session.id, "tokenType": "bearer", "user": user.name, "role": str(user.role),
                "idleTimeoutSeconds": auth.sessions.idle_seconds}

    # --- health and metrics -------------------------------------------------------------

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        """Liveness: the process answers; with its pid, CPU and memory."""
        return {"status": "ok", "process": health.process.sample()}

    @app.get("/readyz", tags=["health"])
    def readyz(strict: bool = False) -> JSONResponse:
        """Ready unless stopping or the store or scheduler fail (503). Degraded publishers and
        specs that failed to load are reported (`status: degraded`) without costing readiness,
        unless `strict=true`."""
        checks: dict[str, bool] = {}
        try:
            controller.store.runs(limit=1)
            checks["store"] = True
        except Exception:
            checks["store"] = False
        checks["scheduler"] = ready() if ready is not None else True
        checks["accepting"] = not health.stopping
        report = health.report()
        ok = all(checks.values()) and not (strict and report["degraded"])
        return JSONResponse({"ready": ok, "checks": checks, **report}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/status", tags=["health"])
    async def daemon_status(_who: Viewer) -> dict[str, Any]:
        """The daemon: health (specs, publishers, process) and every object's status row."""
        return {**health.report(), "startedAt": controller.started_at.isoformat(),
                "objects": list(cache.rows().values())}

    # --- objects --------------------------------------------------------------------------

    @app.get("/api/v1/objects", tags=["objects"])
    async def list_objects(_who: Viewer) -> list[dict[str, Any]]:
        return list(cache.rows().values())

    @app.get("/api/v1/clients", tags=["objects"])
    def list_clients(_who: Viewer) -> list[dict[str, Any]]:
        """Every AgentConfig target (object, client, scope): files, last sync, drift, pending
        proposals and the client's own CLI check (see `reconciler clients`)."""
        from reconciler.drivers.agents.overview import client_rows

        return [r.model_dump(mode="json") for r in client_rows(controller.store, controller.specs)]

    @app.get("/api/v1/objects/{kind}/{name}", tags=["objects"])
    async def get_object(kind: str, name: str, _who: Viewer, namespace: str = "default") -> dict[str, Any]:
        ref = ref_of(kind, name, namespace)
        obj = controller.get(ref)
        rows = cache.rows()
        row = rows[ref.short]
        if isinstance(obj, SyncJob):
            suspended = bool(row.get("suspended"))
        else:
            jobs = [rows[j.ref.short] for j in controller.jobs_of(ref) if j.ref.short in rows]
            suspended = bool(jobs) and all(j.get("suspended") for j in jobs)
        return {**row, "suspended": suspended, "spec": obj.model_dump(mode="json", by_alias=True)["spec"]}

    @app.post("/api/v1/objects/{kind}/{name}/run", tags=["control"], status_code=202)
    async def run(kind: str, name: str, who: Admin, request: Request, response: Response,
                  namespace: str = "default", body: RunRequest | None = None,
                  wait: Annotated[bool, Query(
                      description="Answer when the run has ended (200, with its result), or when "
                                  "`timeout` has passed (202; the run goes on).")] = False,
                  timeout: Annotated[float, Query(
                      gt=0, le=MAX_RUN_WAIT_SECONDS,
                      description="Seconds to wait with wait=true.")] = DEFAULT_RUN_WAIT_SECONDS,
                  ) -> dict[str, Any]:
        """Run an object now. 202 with `runId` and a `Location` of `/api/v1/runs/{runId}` at
        once; with `wait=true`, 200 with the run's outcome once it ended within `timeout`."""
        ref = ref_of(kind, name, namespace)
        body = body or RunRequest()
        started = controller.start_run(ref, trigger=Trigger.API, mode=body.mode, dry_run=body.dry_run,
                                       even_if_suspended=body.even_if_suspended, actor=who.actor,
                                       source=source(request))
        location = f"/api/v1/runs/{started.run_id}"
        response.headers["Location"] = location
        answer: dict[str, Any] = {"accepted": True, "object": ref.short, "runId": started.run_id,
                                  "location": location}
        if not wait:
            return answer
        result = await controller.wait_for_run(started, timeout=timeout)
        if result is None:
            return {**answer, "finished": False}
        response.status_code = 200
        record = controller.store.run(result.run_id)
        return {**answer, "finished": True, "outcome": str(result.outcome), "ok": result.outcome.ok,
                "error": result.error, "run": record.model_dump(mode="json") if record else None}

    # --- proposals (AgentConfig): list, accept, reject -------------------------------------

    @app.get("/api/v1/proposals", tags=["proposals"])
    def proposals(_who: Viewer, status: Annotated[str, Query(
            pattern="^(pending|accepted|rejected|superseded|all)$",
            description="pending (default), accepted, rejected, superseded or all.")] = "pending",
            ) -> dict[str, Any]:
        """Clients' edits the spec could take (see `reconciler review`), newest first."""
        from reconciler.store.proposals import ProposalBook

        found = ProposalBook(controller.store.engine).list(status=None if status == "all" else status)
        return {"items": [p.as_dict() for p in found]}

    @app.post("/api/v1/proposals/{proposal_id}/{decision}", tags=["proposals"])
    async def decide_proposal(proposal_id: str,
                              decision: Annotated[str, PathParam(pattern="^(accept|reject)$")],
                              who: Admin, request: Request) -> dict[str, Any]:
        """accept: the spec file takes the edit, the specs reload, every client follows (git
        mode: a commit on a new branch, or pushed to --write-back; not reconciled now).
        reject: the spec is re-imposed on the edited client by a run started at once."""
        import asyncio

        from reconciler.drivers.agents.deciding import ProposalError, decide
        from reconciler.store.proposals import ProposalBook

        book = ProposalBook(controller.store.engine)
        try:  # in a thread: git mode may commit and push
            done = await asyncio.to_thread(decide, book, proposal_id, accept=decision == "accept",
                                           actor=who.actor, audit=controller.store, source=source(request))
        except ProposalError as exc:
            raise HTTPException(404 if book.get(proposal_id) is None else 409, str(exc)) from None
        answer: dict[str, Any] = {"proposal": book.get(proposal_id).as_dict(),  # type: ignore[union-attr]
                                  "specFile": done.spec_file}
        p = done.proposal
        controller.runtime.bus.publish(Event(
            EventType.PROPOSAL_DECIDED, p.target, p.run_id, done.status.capitalize(),
            f"proposal {p.id} {done.status} by {who.actor}: {p.key}",
            {"proposal": p.id, "key": p.key, "client": p.client, "status": done.status, "actor": who.actor}))
        if done.committed is not None:  # git mode: the watched branch brings it to the clients
            c = done.committed
            answer["gitCommit"] = {"repository": c.repository, "branch": c.branch, "commit": c.commit,
                                   "path": c.path, "base": c.base, "pushedTo": c.pushed_to}
            answer["note"] = done.note()
            return answer
        if decision == "accept" and on_push is not None:
            on_push()  # the spec watcher reloads now; the changed object runs
        else:
            try:
                answer["runId"] = controller.start_run(done.proposal.target, trigger=Trigger.API,
                                                       actor=who.actor, source=source(request)).run_id
            except ReconcilerError as exc:  # suspended, or the daemon is stopping: decided anyway
                answer["runRefused"] = str(exc)
        return answer

    @app.post("/api/v1/objects/{kind}/{name}/suspend", tags=["control"])
    def suspend(kind: str, name: str, who: Admin, request: Request,
                namespace: str = "default") -> dict[str, Any]:
        ref = ref_of(kind, name, namespace)
        controller.set_suspended(ref, True, actor=who.actor, source=source(request))
        return {"object": ref.short, "suspended": True}

    @app.post("/api/v1/objects/{kind}/{name}/resume", tags=["control"])
    def resume(kind: str, name: str, who: Admin, request: Request,
               namespace: str = "default") -> dict[str, Any]:
        ref = ref_of(kind, name, namespace)
        controller.set_suspended(ref, False, actor=who.actor, source=source(request))
        return {"object": ref.short, "suspended": False}

    @app.get("/api/v1/objects/{kind}/{name}/schedule", tags=["control"])
    def get_schedule(kind: str, name: str, _who: Viewer, namespace: str = "default") -> dict[str, Any]:
        return jsonable(controller.schedule(ref_of(kind, name, namespace)))

    @app.put("/api/v1/objects/{kind}/{name}/schedule", tags=["control"])
    def put_schedule(kind: str, name: str, body: ScheduleOverride, who: Admin, request: Request,
                     namespace: str = "default") -> dict[str, Any]:
        ref = ref_of(kind, name, namespace)
        override = body.model_dump(by_alias=True, exclude_none=True)
        if not override.get("schedule") and not override.get("interval"):
            raise HTTPException(422, "expected schedule (cron) or interval")
        try:
            controller.set_schedule(ref, override, actor=who.actor, source=source(request))
        except ValueError as exc:
            raise HTTPException(422, f"invalid schedule override: {exc}") from None
        return jsonable(controller.schedule(ref))

    @app.delete("/api/v1/objects/{kind}/{name}/schedule", tags=["control"])
    def delete_schedule(kind: str, name: str, who: Admin, request: Request,
                        namespace: str = "default") -> dict[str, Any]:
        ref = ref_of(kind, name, namespace)
        controller.set_schedule(ref, None, actor=who.actor, source=source(request))
        return jsonable(controller.schedule(ref))

    @app.get("/api/v1/objects/{kind}/{name}/history", tags=["objects"])
    def history(kind: str, name: str, _who: Viewer, namespace: str = "default",
                limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> list[dict[str, Any]]:
        ref = ref_of(kind, name, namespace)
        obj = controller.get(ref)
        target = controller.job_target(obj) if isinstance(obj, SyncJob) else ref
        return [r.model_dump(mode="json") for r in controller.store.runs(target, limit=limit)]

    @app.get("/api/v1/runs/{run_id}", tags=["runs"])
    def get_run(run_id: str, _who: Viewer) -> dict[str, Any]:
        record = controller.store.run(run_id)
        if record is None and run_id in controller.started:  # accepted, waiting for its target's lock
            ref = controller.started[run_id].ref
            return {"run": {"id": run_id, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name,
                            "outcome": "queued"}, "changes": [], "rejects": []}
        detail = run_detail(controller.store, record.id, rejects_limit=1000) if record is not None else None
        if detail is None:
            raise HTTPException(404, f"no run {run_id!r} (or the prefix is ambiguous)")
        return detail.model_dump(mode="json")

    @app.post(WEBHOOK_PATH, tags=["control"], status_code=202)
    async def git_push(request: Request) -> dict[str, Any]:
        """A GitHub (`X-Hub-Signature-256` HMAC) or GitLab (`X-Gitlab-Token`) push event."""
        if not webhook_secret:
            raise HTTPException(404, "no webhook secret is configured (serve --webhook-secret-env)")
        signature = request.headers.get("x-hub-signature-256")
        gitlab = request.headers.get("x-gitlab-token")
        if gitlab is not None:  # GitLab's token is a header: checked without reading the body
            valid = hmac.compare_digest(gitlab.encode(), webhook_secret.encode())
        elif signature is not None:  # the body is read, within the gate's bound, only when signed
            body = await request.body()
            expected = "sha256=" + hmac.new(webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            valid = hmac.compare_digest(signature.encode(), expected.encode())
        else:
            valid = False
        if not valid:
            log.warning("git webhook refused: bad signature", source=source(request))
            raise HTTPException(401, "bad webhook signature")
        controller.store.record_audit(actor="webhook", action="git-push", source=source(request))
        if on_push is not None:
            on_push()
        return {"accepted": True}

    # --- events, logs, export ---------------------------------------------------------------

    @app.get("/api/v1/events", tags=["events"])
    async def events(_who: Viewer, request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            async with streams.opened(), controller.runtime.bus.stream() as queue:
                yield b": connected\n\n"
                async for event in streams.follow(queue, keepalive=15):  # ends when the daemon stops
                    if await request.is_disconnected():
                        return
                    if event is None:
                        yield b": keep-alive\n\n"
                        continue
                    data = json.dumps(_event_json(event), ensure_ascii=False)
                    yield f"event: {event.type}\ndata: {data}\n\n".encode()

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.websocket("/ws/events")
    async def ws_events(websocket: WebSocket) -> None:
        token = websocket.query_params.get("token") or (
            websocket.headers.get("authorization", "")[7:] or None)
        if tokens.check(token) is None:
            await websocket.close(code=4401)
            return
        await websocket.accept()
        async with streams.opened(), controller.runtime.bus.stream() as queue:
            try:
                async for event in streams.follow(queue, keepalive=15):  # ends when the daemon stops
                    if event is not None:
                        await websocket.send_json(_event_json(event))
                await websocket.close(code=1001, reason="the reconciler is shutting down")
            except WebSocketDisconnect:
                return

    @app.get("/api/v1/logs", tags=["events"])
    def get_logs(_who: Viewer, object: str | None = None, level: str | None = None,
                 since: datetime | None = None, until: datetime | None = None,
                 limit: Annotated[int, Query(ge=1, le=10000)] = 500) -> list[dict[str, Any]]:
        since, until = _aware("since", since), _aware("until", until)
        out = []
        for entry in reversed(logs.entries):
            if level and entry.get("level") != level.lower():
                continue
            if object and f"{entry.get('kind')}/{entry.get('name')}" != object:
                continue
            at = _logged_at(entry) if since or until else None
            if at is not None and ((since and at < since) or (until and at > until)):
                continue
            out.append(entry)
            if len(out) >= limit:
                break
        return out

    @app.get("/api/v1/export", tags=["runs"])
    def export(_who: Viewer, format: str = "json",
               limit: Annotated[int, Query(ge=1, le=100000)] = 1000) -> Response:
        runs = controller.store.runs(limit=limit)
        if format == "json":
            return JSONResponse([{"run": r.model_dump(mode="json"),
                                  "changes": [c.model_dump(mode="json")
                                              for c in controller.store.changes(r.id)]}
                                 for r in runs])
        if format != "csv":
            raise HTTPException(422, "expected format=csv or format=json")
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["run_id", "kind", "namespace", "name", "trigger", "mode", "dry_run", "outcome",
                         "started_at", "duration_seconds", "revision", "action", "item", "key"])
        for r in runs:
            head = [r.id, r.kind, r.namespace, r.name, r.trigger, r.mode, r.dry_run, r.outcome,
                    r.started_at.isoformat(), r.duration_seconds, r.revision or ""]
            changes = controller.store.changes(r.id)
            if not changes:
                writer.writerow([*head, "", "", ""])
            for c in changes:
                writer.writerow([*head, c.action, c.item, c.key])
        return Response(buffer.getvalue(), media_type="text/csv")

    from reconciler.web.docs import mount_docs
    from reconciler.web.pages import mount_dashboard

    mount_docs(app)
    mount_dashboard(app, controller, auth=auth, cache=cache, logs=logs, health=health, settings=limits)
    return app
