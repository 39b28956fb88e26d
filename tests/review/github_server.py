"""The corner of GitHub's REST API a plan review uses, served over real HTTP on a loopback port.

`FakeGitHub` keeps one repository's pull requests, issue comments and commit statuses in
memory and answers like api.github.com does for them:

- `GET /repos/{o}/{r}/issues/{n}/comments` pages by `per_page` (default 30, at most 100)
  and `page`, with a `Link` header (`next`, `last`, `first`, `prev`) whose URLs use the
  `/repositories/{id}/...` form, as GitHub's do; that form is served too.
- `POST` the same path creates a comment (201; 422 without a body or over 65,536
  characters), `PATCH` and `DELETE /repos/{o}/{r}/issues/comments/{id}` edit (200) and
  delete (204) one; an unknown id or pull request is 404.
- `GET /repos/{o}/{r}/pulls/{n}` gives `head.sha`; `POST /repos/{o}/{r}/statuses/{sha}`
  records a status (201; 422 for an unknown state or a description over 140 characters).
- Every request needs `Authorization: Bearer <token>`, else 401 "Bad credentials".
- `prefix` serves everything below a path, as GitHub Enterprise Server does (`/api/v3`).

Faults are queued and each spoils the next request, whatever it is: `fail_next(k)` (k
answers 502), `rate_limit_next()` (403 with `x-ratelimit-remaining: 0` and a reset one
second after the answer's `Date`), `throttle_next(retry_after=s)` (429, or a 403 secondary
rate limit, with `Retry-After`). Every request is logged with the answer it got.
"""

from __future__ import annotations

import json
import re
import socketserver
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

COMMENT_LIMIT = 65536
REPOSITORY_ID = 4242


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request as the server saw it: the path is below the prefix, without the query."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Fault:
    status: int
    message: str
    headers: dict[str, str]
    reset_in: int | None = None  # x-ratelimit-reset, in seconds after the answer's Date


class FakeGitHub:
    """One repository's pull requests, comments and statuses behind GitHub's REST API."""

    def __init__(self, *, token: str, repo: str = "octo/plans", prefix: str = "", host: str = "127.0.0.1"):
        self.token = token
        self.repo = repo
        self.prefix = prefix.rstrip("/")
        self.host = host
        self.link_base: str | None = None
        """Where `Link` URLs point, instead of this server (to test a client that must not follow)."""
        self.pulls: dict[int, str] = {}
        self.statuses: list[dict[str, Any]] = []
        self.requests: list[LoggedRequest] = []
        self._comments: dict[int, dict[str, Any]] = {}
        self._next_id = 1000
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle

    def start(self) -> str:
        server = _Server((self.host, 0), _Handler)
        server.github = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-github", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeGitHub:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running: call start() first")
        return f"http://{self.host}:{self._server.server_port}"

    @property
    def base_url(self) -> str:
        return self.origin + self.prefix

    # -- state

    def add_pull(self, number: int, *, head_sha: str | None = None) -> str:
        sha = head_sha or f"{number:08x}".ljust(40, "a")
        with self._lock:
            self.pulls[number] = sha
        return sha

    def add_comment(self, pr: int, body: str, *, user: str = "reviewer") -> dict[str, Any]:
        with self._lock:
            return dict(self._create(pr, body, user=user))

    def comments(self, pr: int) -> list[dict[str, Any]]:
        with self._lock:
            return [_public(c) for c in sorted(self._comments.values(), key=lambda c: c["id"])
                    if c["pr"] == pr]

    def requests_to(self, method: str, pattern: str) -> list[LoggedRequest]:
        """The logged requests with this method whose path matches the regular expression."""
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def comment_listings(self, pr: int) -> list[LoggedRequest]:
        """The requests that listed pull request `pr`'s comments, a page each, in order."""
        pattern = rf"/(?:repos/{re.escape(self.repo)}|repositories/{REPOSITORY_ID})/issues/{pr}/comments"
        return self.requests_to("GET", pattern)

    # -- faults

    def fail_next(self, count: int, *, status: int = 502) -> None:
        with self._lock:
            self._faults.extend(_Fault(status, "Server Error", {}) for _ in range(count))

    def rate_limit_next(self, *, reset_in: int = 1) -> None:
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000"}
        with self._lock:
            self._faults.append(_Fault(403, "API rate limit exceeded for user ID 1.", headers, reset_in))

    def throttle_next(self, *, retry_after: int, status: int = 429) -> None:
        message = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                   if status == 403 else "Too Many Requests")
        with self._lock:
            self._faults.append(_Fault(status, message, {"retry-after": str(retry_after)}))

    # -- answering

    def respond(self, method: str, target: str, headers: dict[str, str], payload: bytes, now: float) -> Reply:
        parts = urlsplit(target)
        path, query = parts.path, dict(parse_qsl(parts.query))
        reply = self._answer(method, path, query, headers, payload, now)
        shown = path[len(self.prefix):] if self.prefix and path.startswith(self.prefix + "/") else path
        with self._lock:
            self.requests.append(LoggedRequest(method, shown, query, reply.status, headers))
        return reply

    def _answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
                payload: bytes, now: float) -> Reply:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None:
            extra = dict(fault.headers)
            if fault.reset_in is not None:
                extra["x-ratelimit-reset"] = str(int(now) + fault.reset_in)
            return Reply(fault.status, {"message": fault.message}, extra)
        if headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "Bad credentials")
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return _error(404, "Not Found")
            path = path[len(self.prefix):]
        try:
            data = json.loads(payload) if payload else None
        except ValueError:
            return _error(400, "Problems parsing JSON")
        repo = re.escape(self.repo)
        with self._lock:
            if match := re.fullmatch(rf"/(?:repos/{repo}|repositories/{REPOSITORY_ID})/issues/(\d+)/comments",
                                     path):
                pr = int(match[1])
                if pr not in self.pulls:
                    return _error(404, "Not Found")
                if method == "GET":
                    return self._list(pr, query)
                if method == "POST":
                    body = data.get("body") if isinstance(data, dict) else None
                    if problem := _invalid_body(body):
                        return problem
                    return Reply(201, self._create(pr, body, user="reconciler[bot]"))
            elif match := re.fullmatch(rf"/repos/{repo}/issues/comments/(\d+)", path):
                comment = self._comments.get(int(match[1]))
                if comment is None:
                    return _error(404, "Not Found")
                if method == "PATCH":
                    body = data.get("body") if isinstance(data, dict) else None
                    if problem := _invalid_body(body):
                        return problem
                    comment["body"] = body
                    comment["updated_at"] = _stamp(now)
                    return Reply(200, _public(comment))
                if method == "DELETE":
                    del self._comments[comment["id"]]
                    return Reply(204)
                if method == "GET":
                    return Reply(200, _public(comment))
            elif match := re.fullmatch(rf"/repos/{repo}/pulls/(\d+)", path):
                if method == "GET":
                    number = int(match[1])
                    if number not in self.pulls:
                        return _error(404, "Not Found")
                    return Reply(200, {"number": number, "state": "open",
                                       "head": {"sha": self.pulls[number], "ref": f"change-{number}"}})
            elif match := re.fullmatch(rf"/repos/{repo}/statuses/([0-9a-f]{{40}})", path):
                if method == "POST":
                    return self._status(match[1], data)
            else:
                return _error(404, "Not Found")
        return _error(404, "Not Found")  # GitHub answers an unsupported method on a known path so too

    def _list(self, pr: int, query: dict[str, str]) -> Reply:
        try:
            per_page = min(100, max(1, int(query.get("per_page", "30"))))
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            return _error(422, "Validation Failed")
        comments = [c for c in sorted(self._comments.values(), key=lambda c: c["id"]) if c["pr"] == pr]
        last = max(1, -(-len(comments) // per_page))
        items = [_public(c) for c in comments[(page - 1) * per_page: page * per_page]]
        origin = self.link_base or self.origin
        base = f"{origin}{self.prefix}/repositories/{REPOSITORY_ID}/issues/{pr}/comments"

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode({"per_page": per_page, "page": number})}>; rel="{rel}"'

        links = []
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        return Reply(200, items, {"link": ", ".join(links)} if links else {})

    def _create(self, pr: int, body: str, *, user: str) -> dict[str, Any]:
        self._next_id += 1
        stamp = _stamp(time.time())
        comment = {
            "id": self._next_id,
            "pr": pr,
            "body": body,
            "user": {"login": user, "type": "Bot" if user.endswith("[bot]") else "User"},
            "html_url": f"https://github.example/{self.repo}/pull/{pr}#issuecomment-{self._next_id}",
            "created_at": stamp,
            "updated_at": stamp,
        }
        self._comments[comment["id"]] = comment
        return _public(comment)

    def _status(self, sha: str, data: Any) -> Reply:
        if not isinstance(data, dict) or data.get("state") not in {"error", "failure", "pending", "success"}:
            return _error(422, "Validation Failed", "state is not included in the list")
        description = data.get("description") or ""
        if len(description) > 140:
            return _error(422, "Validation Failed", "description is too long (maximum is 140 characters)")
        status = {"id": len(self.statuses) + 1, "sha": sha, "state": data["state"],
                  "description": description, "context": data.get("context") or "default",
                  "target_url": data.get("target_url")}
        self.statuses.append(status)
        return Reply(201, dict(status))


def _public(comment: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in comment.items() if key != "pr"}


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _error(status: int, message: str, *details: str) -> Reply:
    body: dict[str, Any] = {"message": message, "documentation_url": "https://docs.github.com/rest"}
    if details:
        body["errors"] = [{"message": detail} for detail in details]
    return Reply(status, body)


def _invalid_body(body: Any) -> Reply | None:
    if not isinstance(body, str) or not body:
        return _error(422, "Validation Failed", "body wasn't supplied")
    if len(body) > COMMENT_LIMIT:
        return _error(422, "Validation Failed", f"Body is too long (maximum is {COMMENT_LIMIT} characters)")
    return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    github: FakeGitHub

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS round trip on some hosts.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server
    _now: float | None = None

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        self._now = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.github.respond(method, self.path, headers, payload, self._now)
        body = b"" if reply.status == 204 else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header and x-ratelimit-reset come from the same instant, as at GitHub.
        return super().date_time_string(self._now if timestamp is None else timestamp)

    def log_message(self, format: str, *args: Any) -> None:
        pass

