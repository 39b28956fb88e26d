"""No secret in any output, ever (issue 15, findings 1 and 2).

Sentinel secrets go into every secret field a user can fill: the AED service key and the
AED and RBAC database URLs (secret references to environment variables), the store's
PostgreSQL URL (with a password), the API tokens, and a token in a git URL. Then failures
of every kind are forced (a driver that raises an unexpected `RuntimeError` whose frame
locals hold the resolved key and URL, a target database that cannot be reached, an error
outside any run) and every sink is read: the stdout and stderr of real `reconciler`
processes, the daemon's log, every GET route of its API, the SSE stream, Redis, the store's
run records, the clone of the git repository on disk, and the pull-request Markdown of
`reconciler plan --base/--head`. No sentinel may appear in any of them.

The git repository is served over HTTP by `git http-backend` behind Basic authentication,
so `--git https://user:TOKEN@host/repo` and `--git-credentials env:NAME` are tested as a
user would use them against a private repository.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import git
import httpx
import psycopg
import pytest

AED_KEY = "SENTINEL-aed-service-key-7f3a9c"
AED_DB_PASSWORD = "SENTINEL-aed-db-pw-2b81"
RBAC_DB_PASSWORD = "SENTINEL-rbac-dsn-pw-93ce"
STORE_PASSWORD = "SENTINEL-store-pw-51d7"
GIT_TOKEN = "SENTINEL-git-token-c4e0"
ADMIN_TOKEN = "SENTINEL-admin-token-6a12"
VIEWER_TOKEN = "SENTINEL-viewer-token-0f55"
SENTINELS = (AED_KEY, AED_DB_PASSWORD, RBAC_DB_PASSWORD, STORE_PASSWORD, GIT_TOKEN, ADMIN_TOKEN,
             VIEWER_TOKEN)
GIT_USER = "deploy"
PG = "postgresql://postgres@127.0.0.1:5432"

# A plugin that replaces the AED driver by one that resolves the secrets, keeps them in its
# frame locals and fails with an exception no one expected (its message carries the URL).
LEAK_PLUGIN = '''
from reconciler.drivers.aed.driver import AedSourceBindingDriver


class CrashingAedDriver(AedSourceBindingDriver):
    async def observe(self, obj, ctx):
        service_key = ctx.secrets.resolve(obj.spec.source.service_key).reveal()
        database_url = ctx.secrets.resolve(obj.spec.target.database_url).reveal()
        headers = {"Authorization": "Bearer " + service_key}
        raise RuntimeError("cannot reach " + database_url + " with " + repr(headers)[:10])


def register(registry):
    registry.register("AedSourceBinding", CrashingAedDriver)
'''

AED_SPEC = """\
apiVersion: reconciler.dev/v1alpha1
kind: AedSourceBinding
metadata: {name: aed-registry}
spec:
  source:
    baseUrl: http://127.0.0.1:9/B552657/AEDInfoInqireService
    operation: getAedFullDown
    serviceKey: {env: SENTINEL_AED_KEY}
    retries: {limit: 0}
  target:
    databaseUrl: {env: SENTINEL_AED_DATABASE_URL}
    table: aed_data
    keyColumn: equipment_serial
    createTable: true
  mapping:
    columns:
      - {column: equipment_serial, from: serialSeq, required: true}
"""

RBAC_SPEC = """\
apiVersion: reconciler.dev/v1alpha1
kind: RbacMapping
metadata: {name: archive-rbac}
spec:
  permissions:
    - {name: "study:read"}
  roles:
    - {name: study-reader, permissions: ["study:read"]}
  bindings:
    - {subject: "group:readers", role: study-reader}
  target:
    databaseUrl: {env: SENTINEL_RBAC_DATABASE_URL}
    managedSchema: {schema: rbac}
"""


# --- helpers -------------------------------------------------------------------------------


def assert_clean(where: str, text: str) -> None:
    leaked = [s for s in SENTINELS if s in text]
    assert not leaked, f"{where} shows {leaked}:\n{text[:4000]}"
    # The frame locals of the crashing driver never print (rich's locals table or repr).
    assert "service_key = " not in text and "database_url = " not in text, f"{where} shows locals"


def wait_for(predicate: Callable[[], Any], *, timeout: float = 90.0, what: str = "a condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            value = predicate()
            if value:
                return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def store_url() -> Iterator[str]:
    """A fresh PostgreSQL store, reached with a URL that carries a password (trust auth
    accepts any password, so the sentinel is really used to connect)."""
    name = f"leak_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres:{STORE_PASSWORD}@127.0.0.1:5432/{name}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "leak_plugin.py").write_text(LEAK_PLUGIN)
    specs = tmp_path / "repo" / "specs"
    specs.mkdir(parents=True)
    (specs / "aed.yaml").write_text(AED_SPEC)
    (specs / "rbac.yaml").write_text(RBAC_SPEC)
    return tmp_path


def environment(workdir: Path, store_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "RECONCILER_STATE_DIR": str(workdir / "state"),
           "RECONCILER_DATABASE_URL": store_url, "RECONCILER_PLUGINS": "leak_plugin",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(workdir / "plugins"),
                                                       os.environ.get("PYTHONPATH")])),
           "SENTINEL_AED_KEY": AED_KEY,
           # Nothing listens on port 1: the RBAC driver's real connection fails.
           "SENTINEL_AED_DATABASE_URL": f"postgresql://aed:{AED_DB_PASSWORD}@127.0.0.1:1/aed",
           "SENTINEL_RBAC_DATABASE_URL": f"postgresql://rbac:{RBAC_DB_PASSWORD}@127.0.0.1:1/rbac",
           "ADMIN_T": ADMIN_TOKEN, "VIEWER_T": VIEWER_TOKEN, "COLUMNS": "200"}
    env.pop("RECONCILER_LOG_FORMAT", None)
    return {**env, **extra}


def cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def stored_runs(store_url: str) -> str:
    """Every run record's text, read straight from the store's tables."""
    dsn = store_url.replace(f":{STORE_PASSWORD}", "")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT * FROM runs").fetchall()
        events = conn.execute("SELECT * FROM events").fetchall()
    assert rows, "no run was recorded"
    return repr(rows) + repr(events)


# --- a private git repository over HTTP ----------------------------------------------------


class GitServer:
    """`git http-backend` behind HTTP Basic authentication (user GIT_USER, password GIT_TOKEN)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.refused = 0
        expected = "Basic " + base64.b64encode(f"{GIT_USER}:{GIT_TOKEN}".encode()).decode()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.cgi()

            def do_POST(self) -> None:
                self.cgi()

            def cgi(self) -> None:
                if self.headers.get("Authorization") != expected:
                    server.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="private"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path, _, query = self.path.partition("?")
                env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(server.root),
                       "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
                       "REQUEST_METHOD": self.command, "REMOTE_USER": GIT_USER,
                       "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)),
                       "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                       "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                                     check=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                headers = [line.split(b":", 1) for line in head.split(b"\r\n") if b":" in line]
                status = next((int(v.split()[0]) for k, v in headers if k.lower() == b"status"), 200)
                self.send_response(status)
                for key, value in headers:
                    if key.lower() != b"status":
                        self.send_header(key.decode(), value.decode().strip())
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, *, userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}/specs.git"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def git_server(workdir: Path) -> Iterator[GitServer]:
    work = git.Repo.init(workdir / "repo", initial_branch="main")
    with work.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    work.index.add(["specs/aed.yaml", "specs/rbac.yaml"])
    work.index.commit("specs")
    served = workdir / "served"
    git.Repo.clone_from(str(workdir / "repo"), served / "specs.git", bare=True)
    server = GitServer(served)
    yield server
    server.close()


@contextlib.contextmanager
def daemon(args: list[str], env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "serve", *args, "--port", str(port),
                                 "--poll", "1h", "--admin-token-env", "ADMIN_T",
                                 "--viewer-token-env", "VIEWER_T"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"the daemon exited ({proc.returncode}):\n{log.read_text()}")
            return httpx.get(f"{base}/healthz", timeout=5).status_code == 200

        wait_for(ready, what="the daemon's API")
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def viewer() -> dict[str, str]:
    return {"Authorization": f"Bearer {VIEWER_TOKEN}"}


def failed_runs(base: str, kind: str, name: str) -> list[dict[str, Any]]:
    runs = httpx.get(f"{base}/api/v1/objects/{kind}/{name}/history", headers=viewer(), timeout=10).json()
    return [r for r in runs if r.get("outcome") == "failed"]


# --- finding 1: an unexpected driver error on the console ----------------------------------


@pytest.mark.parametrize("log_format", ["console", "json"])
def test_cli_driver_crash_prints_no_locals_and_no_secret(workdir: Path, store_url: str,
                                                        log_format: str) -> None:
    env = environment(workdir, store_url)
    specs = str(workdir / "repo" / "specs")
    applied = cli("--log-format", log_format, "apply", specs, env=env)
    planned = cli("--log-format", log_format, "plan", specs, env=env)
    for name, result in (("apply", applied), ("plan", planned)):
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        # The failures are reported: the unexpected error with a (plain) traceback, and the
        # RBAC target that cannot be reached.
        assert "RuntimeError" in output and "Traceback" in result.stderr, output
        assert "RbacMapping/archive-rbac" in output, output
        assert_clean(f"`reconciler {name}` ({log_format})", output)
    history = cli("history", "AedSourceBinding/aed-registry", "-o", "json", env=env)
    assert history.returncode == 0, history.stderr
    assert "RuntimeError" in history.stdout
    assert_clean("`reconciler history`", history.stdout + history.stderr)
    assert_clean("the store's run records", stored_runs(store_url))


def test_cli_error_outside_a_run_is_redacted(workdir: Path, store_url: str) -> None:
    """A plugin that fails on import with the store URL in its message: a plain traceback,
    the URL's password masked. A store that cannot be reached: no password either."""
    (workdir / "plugins" / "broken_plugin.py").write_text(
        "import os\nraise RuntimeError('no store at ' + os.environ['RECONCILER_DATABASE_URL'])\n")
    env = environment(workdir, store_url, RECONCILER_PLUGINS="broken_plugin")
    result = cli("apply", str(workdir / "repo" / "specs"), env=env)
    assert result.returncode == 1
    assert "RuntimeError: no store at postgresql://***@127.0.0.1:5432/" in result.stderr, result.stderr
    assert_clean("a crash outside any run", result.stdout + result.stderr)

    unreachable = f"postgresql://postgres:{STORE_PASSWORD}@127.0.0.1:1/nowhere"
    result = cli("status", env=environment(workdir, unreachable))
    assert result.returncode != 0
    assert_clean("an unreachable store", result.stdout + result.stderr)


def test_log_lines_never_render_locals(capsys: pytest.CaptureFixture[str]) -> None:
    """In process: structlog (console and JSON) and the standard `logging` module render an
    exception without its frame locals, URL userinfo masked."""
    import logging

    import structlog

    from reconciler.logs import configure
    from reconciler.redaction import forget_all, remember

    def crash() -> None:
        token = AED_KEY  # noqa: F841 - a local that a locals-rendering traceback would show
        raise RuntimeError(f"failed at https://{GIT_USER}:{GIT_TOKEN}@example.com/repo")

    try:
        for fmt in ("console", "json"):
            configure(fmt=fmt)
            remember(AED_KEY)
            try:
                crash()
            except RuntimeError:
                structlog.get_logger("t").exception("boom", url=f"postgresql://u:{STORE_PASSWORD}@h/db",
                                                    nested={"k": [f"x {AED_KEY}"]})
                logging.getLogger("some.library").error("failed", exc_info=True)
            err = capsys.readouterr().err
            assert "RuntimeError: failed at https://***@example.com/repo" in err, err
            assert "postgresql://***@h/db" in err
            assert_clean(f"the {fmt} log", err)
            assert "token = " not in err
    finally:
        forget_all()
        with capsys.disabled():  # bind the loggers to the real stderr, not this test's capture
            configure()


# --- finding 2: a token in the git URL, and --git-credentials ------------------------------


def test_daemon_with_token_in_git_url_shows_no_secret_anywhere(workdir: Path, store_url: str,
                                                                git_server: GitServer) -> None:
    import redis

    stream = f"leak-test:{uuid.uuid4().hex[:8]}"
    env = environment(workdir, store_url, RECONCILER_REDIS_URL="redis://127.0.0.1:6379/0",
                      RECONCILER_REDIS_STREAM=stream)
    url = git_server.url(userinfo=f"{GIT_USER}:{GIT_TOKEN}@")
    log = workdir / "daemon.log"
    sse: list[str] = []
    with daemon(["--git", url, "--path", "specs"], env, log) as (base, _proc):
        # The initial reconcile ran both objects: both failed.
        wait_for(lambda: failed_runs(base, "AedSourceBinding", "aed-registry"), what="the AED run")
        wait_for(lambda: failed_runs(base, "RbacMapping", "archive-rbac"), what="the RBAC run")

        stop_listening = threading.Event()

        def listen() -> None:
            with contextlib.suppress(httpx.HTTPError), httpx.stream(
                    "GET", f"{base}/api/v1/events", headers=viewer(), timeout=90) as response:
                for line in response.iter_lines():
                    sse.append(line)
                    if stop_listening.is_set():
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        wait_for(lambda: any(": connected" in line for line in sse), what="the SSE stream")
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        for kind, name in (("AedSourceBinding", "aed-registry"), ("RbacMapping", "archive-rbac")):
            response = httpx.post(f"{base}/api/v1/objects/{kind}/{name}/run", headers=admin, json={},
                                  timeout=10)
            assert response.status_code == 202, response.text

        def failures_streamed() -> bool:
            data = [x for x in sse if x.startswith("data:") and '"RunFailed"' in x]
            return {"aed-registry", "archive-rbac"} <= {json.loads(x[5:])["name"] for x in data}

        wait_for(failures_streamed, what="the failed runs on the SSE stream")
        stop_listening.set()
        listener.join(timeout=60)  # the stream yields a keep-alive at least every 15 s

        # Every GET route of the API, filled in with what exists.
        spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
        runs = failed_runs(base, "AedSourceBinding", "aed-registry")
        routes = []
        for path, methods in spec["paths"].items():
            if "get" not in methods or path == "/api/v1/events":
                continue
            for kind, name in (("AedSourceBinding", "aed-registry"), ("RbacMapping", "archive-rbac")):
                routes.append(path.replace("{kind}", kind).replace("{name}", name)
                              .replace("{run_id}", runs[0]["id"]))
        bodies = {}
        for route in sorted(set(routes)):
            response = httpx.get(f"{base}{route}", headers=viewer(), timeout=30)
            assert response.status_code < 500, (route, response.text)
            bodies[route] = response.text
        for fmt in ("json", "csv"):
            bodies[f"export {fmt}"] = httpx.get(f"{base}/api/v1/export", params={"format": fmt},
                                                headers=viewer(), timeout=30).text
        logs = httpx.get(f"{base}/api/v1/logs", headers=viewer(), timeout=10).json()
    output = log.read_text()

    # The failures did happen and were reported in each sink.
    assert "RuntimeError" in bodies["/api/v1/logs"] and "RuntimeError" in output
    starting = [e for e in logs if e.get("event") == "daemon starting"]
    # The credentials were taken out of the URL (git got them as a header): it shows bare.
    assert starting and starting[0]["source"] == f"{git_server.url()}#main:specs", starting
    assert "RuntimeError" in json.dumps(runs)
    events = redis.Redis.from_url("redis://127.0.0.1:6379/0").xrange(stream)
    assert events, "nothing reached Redis"
    redis.Redis.from_url("redis://127.0.0.1:6379/0").delete(stream)

    assert_clean("the daemon's log", output)
    for route, body in bodies.items():
        assert_clean(f"GET {route}", body)
    assert_clean("the SSE stream", "\n".join(sse))
    assert_clean("Redis", repr(events))
    assert_clean("the store's run records", stored_runs(store_url))
    # The token is not written into the clone's configuration on disk either.
    for config in (workdir / "state" / "git").rglob("config"):
        assert_clean(f"the clone's {config.name}", config.read_text())


@pytest.mark.parametrize("reference", ["env", "file"])
def test_git_credentials_reference_reaches_a_private_repository(workdir: Path, store_url: str,
                                                                git_server: GitServer,
                                                                reference: str) -> None:
    (workdir / "git-credentials").write_text(f"{GIT_USER}:{GIT_TOKEN}\n")
    option = "env:GIT_CREDS" if reference == "env" else f"file:{workdir / 'git-credentials'}"
    env = environment(workdir, store_url, GIT_CREDS=f"{GIT_USER}:{GIT_TOKEN}")
    log = workdir / "daemon.log"
    with daemon(["--git", git_server.url(), "--git-credentials", option, "--path", "specs"], env,
                log) as (base, _proc):
        objects = wait_for(lambda: httpx.get(f"{base}/api/v1/objects", headers=viewer(), timeout=10).json(),
                           what="the objects")
        assert {o["name"] for o in objects} >= {"aed-registry", "archive-rbac"}, objects
        wait_for(lambda: failed_runs(base, "AedSourceBinding", "aed-registry"), what="the AED run")
        logs = httpx.get(f"{base}/api/v1/logs", headers=viewer(), timeout=10).text
    assert_clean("the daemon's log", log.read_text())
    assert_clean("GET /api/v1/logs", logs)
    for config in (workdir / "state" / "git").rglob("config"):
        assert_clean("the clone's config", config.read_text())


def test_private_repository_without_credentials_fails_clearly(workdir: Path, store_url: str,
                                                              git_server: GitServer) -> None:
    """No credentials: git is refused (it never waits for a password on a terminal) and the
    daemon exits with an error; a literal value given to --git-credentials is refused unseen."""
    env = environment(workdir, store_url)
    result = subprocess.run([sys.executable, "-m", "reconciler.cli", "serve", "--git", git_server.url(),
                             "--path", "specs", "--port", str(free_port())], env=env, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and git_server.refused, result.stderr
    assert f"error: cannot clone {git_server.url()}#main:specs: fatal: could not read Username" \
        in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert_clean("serve without credentials", result.stdout + result.stderr)

    result = cli("serve", "--git", git_server.url(), "--git-credentials", GIT_TOKEN, "--port",
                 str(free_port()), env=env)
    assert result.returncode == 1
    assert "--git-credentials: expected a secret reference env:NAME" in result.stderr, result.stderr
    assert_clean("a literal --git-credentials", result.stdout + result.stderr)


def test_redact_url_masks_userinfo() -> None:
    from reconciler.redaction import redact, redact_url

    assert redact_url(f"https://{GIT_USER}:{GIT_TOKEN}@github.com/o/r.git") == "https://***@github.com/o/r.git"
    assert redact_url(f"https://{GIT_TOKEN}@github.com/o/r") == "https://***@github.com/o/r"
    assert redact_url(f"postgresql+psycopg://app:p@ss{STORE_PASSWORD}@db:5432/app?sslmode=require") == \
        "postgresql+psycopg://***@db:5432/app?sslmode=require"
    assert redact_url("https://github.com/o/r?x=a@b") == "https://github.com/o/r?x=a@b"
    assert redact(f"host=db password={RBAC_DB_PASSWORD} user=app") == "host=db password=*** user=app"
    assert redact("git@github.com:o/r.git") == "git@github.com:o/r.git"


# --- pull-request Markdown ---------------------------------------------------------------------


def test_pr_markdown_shows_no_secret(workdir: Path, store_url: str) -> None:
    repo = git.Repo.init(workdir / "repo", initial_branch="main")
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    base = str(repo.index.commit("empty").hexsha)
    repo.index.add(["specs/aed.yaml", "specs/rbac.yaml"])
    head = str(repo.index.commit("specs").hexsha)
    env = environment(workdir, store_url)
    result = cli("plan", "specs", "--base", base, "--head", head, "-f", "markdown", "--no-record",
                 env=env, cwd=workdir / "repo")
    assert result.returncode != 0 or "RuntimeError" in result.stdout
    assert "aed-registry" in result.stdout, result.stdout + result.stderr
    assert_clean("the pull-request Markdown", result.stdout + result.stderr)


# --- database URLs whose password is not percent-encoded ------------------------------------------


@pytest.mark.parametrize("password", ["Se%cretZQX9", "p@ssZQX9w0rd", "pa ssZQX9", "pa:ss/ZQX9"])
@pytest.mark.parametrize("log_format", ["console", "json"])
def test_a_password_libpq_cannot_read_never_shows_in_its_error(workdir: Path, password: str,
                                                                log_format: str) -> None:
    """libpq quotes the part of a URL it cannot read, which for an un-encoded `@`, `%`, space
    or `/` in the password is (part of) the password. Whatever it quotes, no piece of the
    password is shown: not on the terminal, in the logs, or in the store's run records."""
    (workdir / "repo" / "specs" / "aed.yaml").unlink()
    env = {**os.environ, "RECONCILER_STATE_DIR": str(workdir / "state"),
           "RECONCILER_LOG_FORMAT": log_format, "COLUMNS": "200",
           "SENTINEL_RBAC_DATABASE_URL": f"postgresql://rbac:{password}@127.0.0.1:1/rbac"}
    env.pop("RECONCILER_DATABASE_URL", None)
    result = cli("--log-level", "debug", "apply", str(workdir / "repo" / "specs"), env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    stored = (workdir / "state" / "reconciler.db").read_bytes().decode("latin-1")
    shown = result.stdout + result.stderr + stored
    assert "ZQX9" not in shown, shown[-3000:]
    assert "RbacMapping/archive-rbac" in result.stdout + result.stderr


def test_an_rbac_target_that_is_not_postgresql_is_named_as_such(workdir: Path) -> None:
    (workdir / "repo" / "specs" / "aed.yaml").unlink()
    env = {**os.environ, "RECONCILER_STATE_DIR": str(workdir / "state"),
           "SENTINEL_RBAC_DATABASE_URL": f"sqlite:///{workdir / 'rbac.db'}"}
    env.pop("RECONCILER_DATABASE_URL", None)
    result = cli("apply", str(workdir / "repo" / "specs"), env=env)
    assert result.returncode == 1
    assert ("the RBAC database is PostgreSQL (postgresql://HOST:PORT/DATABASE), got a sqlite:// URL"
            in result.stderr), result.stderr
