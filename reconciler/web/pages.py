"""The dashboard's routes: server-rendered pages (Jinja2) over the same controller as the API.

Pages: overview `/`, object detail `/objects/{kind}/{namespace}/{name}`, runs `/runs` and
`/runs/{id}`, proposals `/proposals`, logs `/logs` (with `/logs/export.csv|json`), settings
`/settings`, and `/login`. Each page needs a login (a session cookie; see sessions.py);
without one it redirects to `/login?next=...`, so URLs are shareable. Actions (plan, run
now, suspend, resume, rollback) are forms posted with the session's CSRF token; they need
the admin role (a viewer sees no buttons and gets 403 anyway) and are audited with the
user by the controller. Live updates come from the API's `/api/v1/events` stream, read by
`static/dashboard.js` with an EventSource; htmx (vendored, static/VENDORED.md) reloads the
tiles when a run ends.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from reconciler.access import Role
from reconciler.logs import LogBuffer
from reconciler.models import ObjectRef, SyncJob
from reconciler.runtime.control import Controller, NotFound, Refused
from reconciler.runtime.health import DaemonHealth
from reconciler.settings import Settings
from reconciler.status import run_detail
from reconciler.structs.runs import Trigger
from reconciler.web import views
from reconciler.web.sessions import CSRF_HEADER, Authenticator, Identity, cookie_header

HERE = Path(__file__).parent
ACTIONS = ("plan", "run", "suspend", "resume", "rollback")
PAGE_SIZE = 50
log = structlog.get_logger("reconciler.web")


def _stamp(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters["stamp"] = _stamp
    env.filters["seconds"] = lambda s: "—" if s is None else f"{s:.2f} s"
    env.filters["q"] = lambda s: quote(str(s), safe="")
    return env


def mount_dashboard(app: FastAPI, controller: Controller, *, auth: Authenticator, cache: Any,
                    logs: LogBuffer, health: DaemonHealth, settings: Settings) -> None:
    env = _environment()
    app.mount("/static/ui", StaticFiles(directory=HERE / "static"), name="ui")
    store = controller.store

    def who(request: Request) -> Identity | None:
        return auth.identify(request.headers)

    def render(request: Request, template: str, identity: Identity, status: int = 200,
               **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(
            request=request, user=identity.caller.user or identity.caller.actor,
            admin=identity.caller.role is Role.ADMIN,
            csrf=identity.session.csrf if identity.session else "", path=request.url.path, **context)
        return HTMLResponse(html, status_code=status)

    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    def rows() -> list[dict[str, Any]]:
        return sorted(cache.rows().values(), key=lambda r: (r["kind"], r["namespace"], r["name"]))

    def source(request: Request) -> str | None:
        return request.client.host if request.client else None

    # --- login --------------------------------------------------------------------------

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/", error: str = "") -> HTMLResponse:
        html = env.get_template("login.html").render(request=request, next=_local(next), error=error,
                                                     user=None, path="/login")
        return HTMLResponse(html, status_code=401 if error else 200)

    @app.post("/login", include_in_schema=False)
    async def login_submit(request: Request) -> Response:
        form = await _form(request)
        name, password = form.get("username", ""), form.get("password", "")
        nxt = _local(form.get("next", "/"))
        user = auth.sessions.users.verify(name, password)
        if user is None:
            store.record_audit(actor=f"user:{name}", action="login-refused", source=source(request))
            log.warning("dashboard login refused", user=name, source=source(request))
            return login_page(request, next=nxt, error="Wrong user name or password.")
        session = auth.sessions.start(user.name)
        store.record_audit(actor=f"user:{user.name}", action="login", source=source(request))
        response = RedirectResponse(nxt, status_code=303)
        response.set_cookie(**cookie_header(auth.sessions, session, secure=request.url.scheme == "https"))
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        identity = who(request)
        form = await _form(request)
        if identity is not None and auth.csrf_ok(identity, "POST", form.get("csrf")) and identity.session:
            auth.sessions.end(identity.session.id)
        response = RedirectResponse("/login", status_code=303)
        response.set_cookie(**cookie_header(auth.sessions, None, secure=request.url.scheme == "https"))
        return response

    # --- overview -------------------------------------------------------------------------

    def overview_context(kind: str, namespace: str, state: str) -> dict[str, Any]:
        all_rows = rows()
        now = datetime.now(UTC)
        recent = store.runs(limit=1000)
        shown = views.filtered(all_rows, kind=kind, namespace=namespace, state=state)
        tiles = []
        for r in shown:
            ref = ObjectRef(r["kind"], r["namespace"], r["name"])
            history = store.runs(ref, limit=20) if r["kind"] != "SyncJob" else []
            tiles.append({**r, "states": sorted(views.state_of(r)),
                          "spark": views.sparkline([h.duration_seconds or 0.0 for h in reversed(history)])})
        return {"totals": views.totals(all_rows, recent, now=now), "tiles": tiles,
                "kinds": sorted({r["kind"] for r in all_rows}),
                "namespaces": sorted({r["namespace"] for r in all_rows}), "states": views.STATES,
                "filters": {"kind": kind, "namespace": namespace, "state": state}}

    @app.get("/", include_in_schema=False)
    def overview(request: Request, kind: str = "", namespace: str = "", state: str = "") -> Response:
        identity = who(request)
        if identity is None:
            return login_redirect(request)
        events = store.events(limit=30)
        return render(request, "overview.html", identity, events=events,
                      **overview_context(kind, namespace, state))

    @app.get("/ui/tiles", include_in_schema=False)
    def tiles(request: Request, kind: str = "", namespace: str = "", state: str = "") -> Response:
        identity = who(request)
        if identity is None:
            return Response(status_code=401)
        return render(request, "_tiles.html", identity, **overview_context(kind, namespace, state))

    # --- object detail and actions -------------------------------------------------------

    def resolve(kind: str, namespace: str, name: str) -> Any:
        try:
            return controller.get(ObjectRef(kind, namespace, name))
        except NotFound as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/objects/{kind}/{namespace}/{name}", include_in_schema=False)
    def object_page(request: Request, kind: str, namespace: str, name: str, done: str = "",
                    error: str = "") -> Response:
        identity = who(request)
        if identity is None:
            return login_redirect(request)
        obj = resolve(kind, namespace, name)
        ref = obj.ref
        row = cache.rows().get(ref.short, {})
        jobs = [obj] if isinstance(obj, SyncJob) else controller.jobs_of(ref)
        schedules = []
        for job in jobs:
            try:
                schedules.append({"job": job.ref.short, "jobRef": job.ref, **controller.schedule(job.ref)})
            except (NotFound, Refused):
                continue
        target = controller.job_target(obj) if isinstance(obj, SyncJob) else ref
        history = store.runs(target, limit=20)
        last = history[0] if history else None
        detail = run_detail(store, last.id, rejects_limit=500) if last else None
        changes = detail.changes if detail else []
        context: dict[str, Any] = {
            "obj": obj, "ref": ref, "row": row, "target": target, "jobs": schedules,
            "suspended": controller.suspended(obj) if jobs else False, "has_jobs": bool(jobs),
            # The spec as written (fields the user set), secrets as their references.
            "spec": views.spec_yaml(obj.model_dump(mode="json", by_alias=True, exclude_unset=True)["spec"]),
            "history": history, "last": last, "changes": changes[:200], "more_changes": len(changes) > 200,
            "inventory": sorted(store.inventory(target))[:500], "done": done, "error": error,
            "tree": views.file_tree(changes) if target.kind == "AgentConfig" else {},
            "subjects": views.rbac_subjects(changes) if target.kind == "RbacMapping" else {},
            "rejects": views.rejects_by_rule(detail.rejects) if detail else {},
            "diff": views.change_diff, "events": store.events(target, limit=20)}
        return render(request, "object.html", identity, **context)

    @app.post("/objects/{kind}/{namespace}/{name}/{action}", include_in_schema=False)
    async def act(request: Request, kind: str, namespace: str, name: str, action: str) -> Response:
        identity = who(request)
        if identity is None:
            return login_redirect(request)
        form = await _form(request)
        if not auth.csrf_ok(identity, "POST", form.get("csrf") or request.headers.get(CSRF_HEADER)):
            raise HTTPException(403, "the form's CSRF token is missing or stale: reload the page")
        if identity.caller.role is not Role.ADMIN:
            raise HTTPException(403, "this needs the admin role; you are a viewer")
        if action not in ACTIONS:
            raise HTTPException(404, f"no action {action!r}: expected one of {', '.join(ACTIONS)}")
        obj = resolve(kind, namespace, name)
        ref, actor, src = obj.ref, identity.caller.actor, source(request)
        page = f"/objects/{quote(kind)}/{quote(namespace)}/{quote(name)}"
        cache.invalidate()
        try:
            if action in ("suspend", "resume"):
                controller.set_suspended(ref, action == "suspend", actor=actor, source=src)
                done = f"{action}d" if action == "resume" else "suspended"
            elif action == "rollback":
                run_id = form.get("run", "")
                target = controller.job_target(obj) if isinstance(obj, SyncJob) else ref
                record = store.run(run_id) if run_id else None
                if record is None or record.target != target:
                    raise Refused(f"no run {run_id!r} of {target.short}")
                started = controller.start_run(ref, trigger=Trigger.ROLLBACK, actor=actor, source=src,
                                               rollback_to=record.id, even_if_suspended=True)
                done = f"rollback to {record.id[:12]} started as run {started.run_id}"
            else:
                started = controller.start_run(ref, trigger=Trigger.API, dry_run=action == "plan",
                                               actor=actor, source=src)
                done = f"{'plan' if action == 'plan' else 'run'} started: {started.run_id}"
        except (Refused, NotFound) as exc:
            return RedirectResponse(f"{page}?error={quote(str(exc))}", status_code=303)
        return RedirectResponse(f"{page}?done={quote(done)}", status_code=303)

    # --- runs ------------------------------------------------------------------------------

    @app.get("/runs", include_in_schema=False)
    def runs_page(request: Request, object: str = "", outcome: str = "", trigger: str = "",
                  page: int = 1) -> Response:
        identity = who(request)
        if identity is None:
            return login_redirect(request)
        found = views.run_filter(store.runs(limit=2000), obj=object, outcome=outcome, trigger=trigger)
        page = max(page, 1)
        shown = found[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        return render(request, "runs.html", identity, runs=shown, page=page,
                      more=len(found) > page * PAGE_SIZE,
                      filters={"object": object, "outcome": outcome, "trigger": trigger},
                      objects=sorted({f"{r['kind']}/{r['name']}" for r in rows()}))

    @app.get("/runs/{run_id}", include_in_schema=False)
    def run_page(request: Request, run_id: str, page: int = 1) -> Response:
        identity = who(request)
        if identity is None:
            return login_redirect(request)
        detail = run_detail(store, run_id, rejects_limit=500)
        if detail is None:
            raise HTTPException(404, f"no run {run_id!r}")
        record, changes = detail.run, detail.changes
        page = max(page, 1)
        return render(request, "run.html", identity, run=record, page=page,
                      changes=changes[(page - 1) * PAGE_SIZE: page * PAGE_SIZE],
                      total_changes=len(changes), more=len(changes) > page * PAGE_SIZE,
                      diff=views.change_diff, rejects=detail.rejects,
                      lines=views.log_entries(logs.entries, run_id=record.id, limit=500))

    # --- proposals ---------------------------------------------------------------------------

    @app.get("/proposals", include_in_schema=False)
    def proposals_page(request: Request) -> Response:
        identity = who(request)
        if identity is None:
            return login_redirect(request)
        return render(request, "proposals.html", identity)

    # --- logs -----------------------------------------------------------------------------------

    def log_query(object: str, level: str, since: str, until: str) -> list[dict[str, Any]]:
        return views.log_entries(logs.entries, obj=object, level=level, since=_when("since", since),
                                 until=_when("until", until), limit=5000)

    @app.get("/logs", include_in_schema=False)
    def logs_page(request: Request, object: str = "", level: str = "", since: str = "",
                  until: str = "") -> Response:
        identity = who(request)
        if identity is None:
            return login_redirect(request)
        entries = log_query(object, level, since, until)
        return render(request, "logs.html", identity, entries=entries[:500], total=len(entries),
                      filters={"object": object, "level": level, "since": since, "until": until},
                      objects=sorted({f"{r['kind']}/{r['name']}" for r in rows()}),
                      query=str(request.url.query))

    @app.get("/logs/export.{fmt}", include_in_schema=False)
    def logs_export(request: Request, fmt: str, object: str = "", level: str = "", since: str = "",
                    until: str = "") -> Response:
        if who(request) is None:
            return login_redirect(request)
        entries = log_query(object, level, since, until)
        if fmt == "json":
            return JSONResponse(entries, headers={"Content-Disposition": 'attachment; filename="logs.json"'})
        if fmt == "csv":
            return PlainTextResponse(views.logs_csv(entries), media_type="text/csv",
                                     headers={"Content-Disposition": 'attachment; filename="logs.csv"'})
        raise HTTPException(404, "expected logs/export.csv or logs/export.json")

    # --- settings ----------------------------------------------------------------------------

    @app.get("/settings", include_in_schema=False)
    def settings_page(request: Request) -> Response:
        identity = who(request)
        if identity is None:
            return login_redirect(request)
        agents = [o for o in controller.objects() if o.KIND == "AgentConfig"]
        policies = []
        for o in agents:
            spec = o.model_dump(mode="json", by_alias=True)["spec"]
            policies.append({"ref": o.ref, "policy": spec.get("conflictPolicy"),
                             "targets": spec.get("targets", []),
                             "origin": controller.specs.origins.get(o.ref)})
        schedules = []
        for job in controller.jobs():
            try:
                schedules.append({"job": job.ref, "origin": controller.specs.origins.get(job.ref),
                                  **controller.schedule(job.ref)})
            except (NotFound, Refused):
                continue
        retention = {"keep": settings.history_retention_keep, "maxAge": settings.history_retention_max_age,
                     "interval": settings.history_retention_interval}
        return render(request, "settings.html", identity, policies=policies, schedules=schedules,
                      health=health.report(), retention=retention,
                      idle=settings.session_idle_timeout, json=json)


def _local(target: str) -> str:
    """A redirect target on this site only (never //elsewhere or a scheme)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def _when(name: str, value: str) -> datetime | None:
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"{name}: expected a date-time such as 2026-01-01T00:00, "
                                 f"got {value!r}") from None
    return at.replace(tzinfo=UTC) if at.utcoffset() is None else at


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (the gate bounds the body)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
