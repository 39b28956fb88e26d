"""The dashboard in a real browser (Playwright driving Debian's chromium) against a real
`reconciler serve` process: login, live overview, AgentConfig diff, actions, logs, export.

One server per module. Every request the browser makes is intercepted: anything not to
127.0.0.1 fails the test (no CDN). Screenshots of each page at 1280 px and 390 px go to
`tests/web/screenshots/` (ignored by git). Waits poll with Playwright's own expectations.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).parent / "screenshots"  # ignored by tests/web/.gitignore
CHROMIUM = os.environ.get("RECONCILER_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ADMIN, ADMIN_PW = "alice", "alice-password-1"
VIEWER, VIEWER_PW = "bob", "bob-password-12"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")

AGENTS = """apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {name: team-agents}
spec:
  mcpServers:
    github:
      command: npx
      args: ["-y", "@modelcontextprotocol/server-github"]
      env: {GITHUB_PERSONAL_ACCESS_TOKEN: {env: GITHUB_TOKEN}}
  targets:
    - {client: claude-code, scope: project, root: ./sandbox/project}
---
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {name: team-review}
spec:
  mcpServers:
    docs: {command: npx, args: ["-y", "docs-mcp"]}
  targets:
    - {client: claude-code, scope: project, root: ./sandbox/review}
  conflictPolicy: {default: manual-review}  # hand edits become proposals
---
apiVersion: reconciler.dev/v1alpha1
kind: SyncJob
metadata: {name: agents-hourly}
spec:
  targetRef: {kind: AgentConfig, name: team-agents}
  interval: 1h
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(predicate: Callable[[], Any], *, timeout: float = 90.0, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "RECONCILER_STATE_DIR": str(work / "state"), "HOME": str(work / "home")}
        for name in ("RECONCILER_DATABASE_URL", "RECONCILER_REDIS_URL", "RECONCILER_MQTT_HOST",
                     "RECONCILER_ALERT_WEBHOOK_URL", "RECONCILER_PLUGINS", "RECONCILER_USERS_FILE"):
            self.env.pop(name, None)
        for user, password, role in ((ADMIN, ADMIN_PW, "admin"), (VIEWER, VIEWER_PW, "viewer")):
            done = subprocess.run([sys.executable, "-m", "reconciler.cli", "users", "add", user,
                                   "--role", role, "--password-stdin"], input=password + "\n", env=self.env,
                                  cwd=work, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
        self.log = (work / "serve.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "serve", "--specs", "specs",
                                      "--port", str(self.port)], env=self.env, cwd=work, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        poll(self.up, what="the dashboard")

    def up(self) -> bool:
        assert self.proc.poll() is None, (self.work / "serve.log").read_text()
        try:
            return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def token(self, user: str = ADMIN, password: str = ADMIN_PW) -> str:
        answer = httpx.post(f"{self.base}/api/v1/auth/login", json={"username": user, "password": password})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    def api(self, path: str) -> Any:
        answer = httpx.get(f"{self.base}{path}", headers={"Authorization": f"Bearer {self.token()}"},
                           timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("dashboard")
    (work / "specs").mkdir()
    (work / "specs" / "agents.yaml").write_text(AGENTS)
    served = Server(work)
    poll(lambda: any(r["result"] in ("succeeded", "noop") for r in served.api("/api/v1/objects")),
         what="the start-up run")
    yield served
    served.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def outside() -> list[str]:
    return []


def new_page(browser: Browser, server: Server, outside: list[str], *, width: int = 1280) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)

    def route(r: Any) -> None:
        if r.request.url.startswith(server.base):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def login(page: Page, server: Server, user: str, password: str, next_path: str = "/") -> None:
    page.goto(f"{server.base}{next_path}")
    expect(page).to_have_url(f"{server.base}/login?next={next_path.replace('/', '%2F')}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def shoot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)


def test_login_good_and_bad_password_and_viewer_sees_no_buttons(browser: Browser, server: Server,
                                                                 outside: list[str]) -> None:
    page = new_page(browser, server, outside)
    login(page, server, ADMIN, "wrong-password")
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
    page.fill("input[name=username]", VIEWER)
    page.fill("input[name=password]", VIEWER_PW)
    page.click("button[type=submit]")
    expect(page.get_by_test_id("user")).to_have_text("bob (viewer)")
    page.goto(f"{server.base}/objects/AgentConfig/default/team-agents")
    expect(page.get_by_test_id("spec")).to_contain_text("GITHUB_TOKEN")
    expect(page.get_by_test_id("actions")).to_have_count(0)
    # The server refuses a viewer's action even with the form's CSRF token.
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    csrf = page.locator("body").get_attribute("hx-headers") or ""
    answer = httpx.post(f"{server.base}/objects/AgentConfig/default/team-agents/run", cookies=cookies,
                        data={"csrf": json.loads(csrf)["X-CSRF-Token"]})
    assert answer.status_code == 403
    # A cookie without the CSRF token changes nothing through the API either.
    answer = httpx.post(f"{server.base}/api/v1/objects/SyncJob/agents-hourly/suspend", cookies=cookies)
    assert answer.status_code in (401, 403)
    assert server.api("/api/v1/objects/SyncJob/agents-hourly")["suspended"] is False
    assert not outside, outside


def test_admin_diff_run_now_live_overview_suspend_resume(browser: Browser, server: Server,
                                                         outside: list[str]) -> None:
    page = new_page(browser, server, outside)
    login(page, server, ADMIN, ADMIN_PW)
    expect(page.get_by_test_id("user")).to_have_text("alice (admin)")
    expect(page.get_by_test_id("live")).to_have_text("live")
    runs_before = page.get_by_test_id("total-runs").inner_text()
    shoot(page, "overview")
    # A hand edit of a managed file: the daemon's watcher repairs it at once; the overview
    # updates live when that run ends, and the object page shows the file's diff.
    mcp = server.work / "sandbox" / "project" / ".mcp.json"
    mcp.write_text(mcp.read_text().replace('"npx"', '"node"'))
    history = "/api/v1/objects/AgentConfig/team-agents/history"
    poll(lambda: any(r["counts"]["updated"] == 1 for r in server.api(history)),
         what="the repair of the hand edit")
    expect(page.get_by_test_id("total-runs")).not_to_have_text(runs_before)
    expect(page.get_by_test_id("timeline")).to_contain_text("RunSucceeded")
    detail = page.context.new_page()
    detail.on("dialog", lambda dialog: dialog.accept())
    detail.goto(f"{server.base}/objects/AgentConfig/default/team-agents")
    diff = detail.get_by_test_id("diff").first
    expect(diff).to_contain_text('-  "command": "node"')
    expect(diff).to_contain_text('+  "command": "npx"')
    shoot(detail, "object")
    # Plan and Run now from the UI start runs the API then reports.
    detail.get_by_role("button", name="Plan").click()
    expect(detail.get_by_test_id("flash")).to_contain_text("plan started")
    expect(page.get_by_test_id("timeline")).to_contain_text("RunPlanned")
    detail.get_by_role("button", name="Run now").click()
    expect(detail.get_by_test_id("flash")).to_contain_text("run started")
    run_id = detail.get_by_test_id("flash").inner_text().rsplit(" ", 1)[-1]
    poll(lambda: server.api(f"/api/v1/runs/{run_id}")["run"]["outcome"] in ("succeeded", "noop"),
         what="the run started from the UI")
    # Suspend and resume from the UI change what the API reports.
    detail.get_by_role("button", name="Suspend").click()
    expect(detail.get_by_test_id("suspended")).to_have_text("yes")
    assert server.api("/api/v1/objects/SyncJob/agents-hourly")["suspended"] is True
    detail.get_by_role("button", name="Resume").click()
    expect(detail.get_by_test_id("suspended")).to_have_text("no")
    assert server.api("/api/v1/objects/SyncJob/agents-hourly")["suspended"] is False
    audit = server.work / "state" / "reconciler.db"
    from reconciler.store import Store

    store = Store.open(f"sqlite:///{audit}", migrate=False)
    try:
        from sqlalchemy import select

        from reconciler.store import tables

        with store.engine.connect() as conn:
            actions = {(r.actor, r.action) for r in conn.execute(select(tables.audit))}
    finally:
        store.close()
    assert {("user:alice", "suspend"), ("user:alice", "resume"), ("user:alice", "run")} <= actions
    # Rollback to the first run, from its row in the history.
    detail.get_by_role("button", name="Rollback to this run").last.click()
    expect(detail.get_by_test_id("flash")).to_contain_text("rollback to")
    poll(lambda: any(r["trigger"] == "rollback" for r in
                     server.api("/api/v1/objects/AgentConfig/team-agents/history")), what="the rollback run")
    assert not outside, outside


def test_logs_filters_csv_export_and_pages_at_both_widths(browser: Browser, server: Server,
                                                          outside: list[str], tmp_path: Path) -> None:
    page = new_page(browser, server, outside)
    login(page, server, ADMIN, ADMIN_PW, "/logs")
    page.select_option("select[name=level]", "info")
    page.select_option("select[name=object]", "AgentConfig/team-agents")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(f"{server.base}/logs?object=AgentConfig%2Fteam-agents&level=info&since=&until=")
    rows = page.get_by_test_id("logs").locator("tbody tr")
    expect(rows.first).to_contain_text("AgentConfig/team-agents")
    levels = set(page.get_by_test_id("logs").locator("tbody tr td:nth-child(2)").all_inner_texts())
    assert levels == {"info"}
    rows.first.click()
    expect(page.get_by_test_id("log-detail")).to_contain_text('"level": "info"')
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    saved = tmp_path / "logs.csv"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("timestamp,level,event,kind,name,run_id")
    assert len(lines) > 1 and all(",info," in line for line in lines[1:])
    for width in (1280, 390):
        phone = new_page(browser, server, outside, width=width)
        login(phone, server, ADMIN, ADMIN_PW)
        expect(phone.get_by_test_id("tile")).to_have_count(3)
        pages = (("overview", "/"), ("runs", "/runs"), ("logs", "/logs"), ("settings", "/settings"),
                 ("proposals", "/proposals"), ("object", "/objects/AgentConfig/default/team-agents"),
                 ("docs", "/docs"))
        for name, path in pages:
            phone.goto(f"{server.base}{path}")
            if name == "docs":
                expect(phone.locator(".swagger-ui .info")).to_be_visible()
            shoot(phone, name)
            overflow = phone.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
            assert not overflow, f"{path} scrolls sideways at {width} px"
    assert not outside, outside


def test_accepting_a_proposal_from_the_dashboard(browser: Browser, server: Server,
                                                 outside: list[str]) -> None:
    # A hand edit under manual-review becomes a proposal; Accept in the UI puts it in the
    # spec file (comments kept) and the proposal is accepted.
    mcp = server.work / "sandbox" / "review" / ".mcp.json"
    # Edit once the start-up run is recorded (an edit before that looks like the run's own write).
    poll(lambda: mcp.exists() and any(r["outcome"] != "running" for r in
                                      server.api("/api/v1/objects/AgentConfig/team-review/history")),
         what="the review object's first run")
    mcp.write_text(mcp.read_text().replace('"docs-mcp"', '"docs-mcp@2"'))
    poll(lambda: server.api("/api/v1/proposals")["items"], what="a pending proposal")
    page = new_page(browser, server, outside)
    login(page, server, ADMIN, ADMIN_PW, "/proposals")
    card = page.get_by_test_id("proposal").first
    expect(card).to_contain_text("AgentConfig/team-review")
    expect(card).to_contain_text("docs-mcp@2")
    card.get_by_role("button", name="Accept").click()
    poll(lambda: not server.api("/api/v1/proposals")["items"], what="the proposal decided")
    accepted = server.api("/api/v1/proposals?status=accepted")["items"]
    assert accepted and accepted[0]["object"] == "AgentConfig/team-review"
    spec = (server.work / "specs" / "agents.yaml").read_text()
    assert "docs-mcp@2" in spec and "# hand edits become proposals" in spec
    assert not outside, outside
