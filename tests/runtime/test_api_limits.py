"""Hostile requests against a real `reconciler serve` process (issue 15, findings 5 and 6).

A request without a valid token is refused from its headers alone: the daemon answers 401
and closes the connection without reading the body, however big. Bodies are bounded per
route (413 beyond), whether the size is announced in Content-Length or only found by
counting the chunks of a chunked body. A date-time without a time zone is a 400 that says
a time zone is expected.

The big bodies are sent over a raw socket by a second thread while the test reads the
answer, so the test can see how much of the body the client managed to send before the
daemon hung up, and the daemon's resident memory is read from /proc/PID/status.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from reconciler.settings import Settings
from runtime.daemon_process import ADMIN, VIEWER, WEBHOOK_SECRET, Daemon, rss_bytes, serve

MiB = 1024 * 1024
BIG = 200 * MiB
RUN = "/api/v1/objects/AgentConfig/team/run"
WEBHOOK = "/api/v1/webhooks/git"
DEADLINE = 120.0  # generous: a deadline for an answer to come at all, not a speed claim


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with serve(tmp_path_factory.mktemp("limits")) as running:
        yield running


@dataclass
class Exchange:
    """One request whose body a second thread streams while the answer is read."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    sent: int = 0  # body bytes the client got into the socket before the server hung up
    closed: bool = False  # the server closed the connection after answering


def _read_answer(sock: socket.socket, exchange: Exchange) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before an answer: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    exchange.status = int(lines[0].split()[1])
    fields = (line.partition(":") for line in lines[1:])
    exchange.headers = {k.strip().lower(): v.strip() for k, _, v in fields}
    length = int(exchange.headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    exchange.body = rest[:length]


def exchange(daemon: Daemon, path: str, *, size: int, headers: dict[str, str] | None = None,
             chunked: bool = False, wait_for_close: bool = True) -> Exchange:
    """POST `size` bytes of JSON-ish filler to `path` and read the answer while sending."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{daemon.port}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    piece = b" " * MiB
    result = Exchange()
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=DEADLINE)

    def send_body() -> None:
        try:
            sock.sendall(head)
            while result.sent < size:
                n = min(MiB, size - result.sent)
                data = (f"{n:x}\r\n".encode() + piece[:n] + b"\r\n") if chunked else piece[:n]
                sock.sendall(data)
                result.sent += n
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            return  # the server hung up: what it did not read was never sent

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    try:
        _read_answer(sock, result)
        if wait_for_close:
            try:
                while sock.recv(65536):
                    pass
                result.closed = True
            except ConnectionResetError:
                result.closed = True
        sender.join(DEADLINE)
    finally:
        sock.close()
        sender.join(DEADLINE)
    return result


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


# --- finding 5: authentication before the body, bounded bodies ------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_unauthenticated_big_post_is_refused_before_the_body_is_read(daemon: Daemon, chunked: bool) -> None:
    before = rss_bytes(daemon.pid)
    answer = exchange(daemon, RUN, size=BIG, chunked=chunked)
    grown = rss_bytes(daemon.pid) - before
    assert answer.status == 401, answer.body[:300]
    assert b"bearer token" in answer.body
    assert answer.headers.get("www-authenticate") == "Bearer"
    assert answer.closed and answer.sent < BIG, f"the client sent {answer.sent} of {BIG} bytes"
    assert grown < BIG // 4, f"the daemon grew by {grown} bytes"


def test_a_bad_token_is_refused_before_the_body_too(daemon: Daemon) -> None:
    answer = exchange(daemon, RUN, size=BIG, headers={"Authorization": "Bearer not-a-token"})
    assert answer.status == 401 and answer.closed and answer.sent < BIG


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_authenticated_body_over_the_limit_is_413(daemon: Daemon, chunked: bool) -> None:
    limit = Settings().api_max_body_bytes
    before = rss_bytes(daemon.pid)
    answer = exchange(daemon, RUN, size=BIG, chunked=chunked, headers={"Authorization": f"Bearer {ADMIN}"})
    grown = rss_bytes(daemon.pid) - before
    assert answer.status == 413, answer.body[:300]
    assert f"{limit} bytes".encode() in answer.body and b"RECONCILER_API_MAX_BODY_BYTES" in answer.body
    assert answer.closed and answer.sent < BIG
    assert grown < BIG // 4, f"the daemon grew by {grown} bytes"


def test_a_body_one_byte_over_the_limit_is_413_and_at_the_limit_is_read(daemon: Daemon) -> None:
    limit = Settings().api_max_body_bytes
    admin = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    over = httpx.post(daemon.base + RUN, headers=admin, content=b" " * (limit + 1), timeout=DEADLINE)
    assert over.status_code == 413
    body = b'{"dryRun": true}'
    at_limit = httpx.post(daemon.base + RUN, headers=admin, content=body + b" " * (limit - len(body)),
                          timeout=DEADLINE)
    assert at_limit.status_code == 202, at_limit.text


def test_a_viewer_with_a_big_body_gets_413_not_a_read(daemon: Daemon) -> None:
    answer = exchange(daemon, RUN, size=BIG, headers={"Authorization": f"Bearer {VIEWER}"})
    assert answer.status == 413 and answer.closed and answer.sent < BIG


def test_the_webhook_body_is_bounded(daemon: Daemon) -> None:
    before = rss_bytes(daemon.pid)
    answer = exchange(daemon, WEBHOOK, size=BIG, chunked=True,
                      headers={"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "push"})
    grown = rss_bytes(daemon.pid) - before
    assert answer.status == 413, answer.body[:300]
    assert b"RECONCILER_API_WEBHOOK_MAX_BODY_BYTES" in answer.body
    assert answer.closed and answer.sent < BIG
    assert grown < BIG // 4, f"the daemon grew by {grown} bytes"
    announced = exchange(daemon, WEBHOOK, size=BIG, headers={"X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert announced.status == 413 and announced.closed and announced.sent < BIG


def test_an_unsigned_webhook_is_refused_before_its_body(daemon: Daemon) -> None:
    answer = exchange(daemon, WEBHOOK, size=BIG, chunked=True, headers={"X-GitHub-Event": "push"})
    assert answer.status == 401 and answer.closed and answer.sent < BIG
    gitlab = exchange(daemon, WEBHOOK, size=BIG, chunked=True, headers={"X-Gitlab-Token": "wrong"})
    assert gitlab.status == 401 and gitlab.closed and gitlab.sent < BIG


def test_a_signed_webhook_within_the_limit_is_accepted(daemon: Daemon) -> None:
    payload = b'{"ref": "refs/heads/main", "commits": []}' + b" " * 100_000
    ok = httpx.post(daemon.base + WEBHOOK, content=payload, timeout=DEADLINE,
                    headers={"X-Hub-Signature-256": signature(payload), "Content-Type": "application/json"})
    assert ok.status_code == 202, ok.text
    bad = httpx.post(daemon.base + WEBHOOK, content=payload, timeout=DEADLINE,
                     headers={"X-Hub-Signature-256": signature(b"other"), "Content-Type": "application/json"})
    assert bad.status_code == 401


def test_ordinary_requests_still_work_and_keep_the_connection(daemon: Daemon) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=daemon.base, timeout=DEADLINE) as client:
        assert client.post(RUN, headers=admin, json={"dryRun": True}).status_code == 202
        assert client.get("/api/v1/objects", headers=admin).status_code == 200
        assert client.get("/api/v1/objects").status_code == 401
        assert client.get("/healthz").status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_limits_are_settings(tmp_path: Path) -> None:
    env = {"RECONCILER_API_MAX_BODY_BYTES": "100", "RECONCILER_API_WEBHOOK_MAX_BODY_BYTES": "200"}
    with serve(tmp_path, env=env) as small:
        admin = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
        assert httpx.post(small.base + RUN, headers=admin, content=b" " * 101).status_code == 413
        assert httpx.post(small.base + RUN, headers=admin, content=b'{"dryRun": true}').status_code == 202
        payload = b"{}" + b" " * 199
        hook = httpx.post(small.base + WEBHOOK, content=payload,
                          headers={"X-Hub-Signature-256": signature(payload)})
        assert hook.status_code == 413


def test_a_limit_that_is_not_positive_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="api_max_body_bytes"):
        Settings(api_max_body_bytes=0)


# --- finding 6: naive date-times -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["since", "until"])
def test_a_naive_datetime_is_a_400_that_asks_for_a_time_zone(daemon: Daemon, name: str) -> None:
    viewer = {"Authorization": f"Bearer {VIEWER}"}
    answer = httpx.get(f"{daemon.base}/api/v1/logs", params={name: "2026-01-01T00:00:00"}, headers=viewer)
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert name in detail and "time zone" in detail and "2026-01-01T00:00:00" in detail
    aware = httpx.get(f"{daemon.base}/api/v1/logs", params={name: "2026-01-01T00:00:00Z"}, headers=viewer)
    assert aware.status_code == 200


def test_since_filters_the_logs(daemon: Daemon) -> None:
    viewer = {"Authorization": f"Bearer {VIEWER}"}
    everything = httpx.get(f"{daemon.base}/api/v1/logs", params={"since": "2000-01-01T00:00:00+00:00"},
                           headers=viewer)
    assert everything.status_code == 200 and everything.json()
    future = time.strftime("%Y", time.gmtime(time.time() + 400 * 86400)) + "-12-31T00:00:00+02:00"
    nothing = httpx.get(f"{daemon.base}/api/v1/logs", params={"since": future}, headers=viewer)
    assert nothing.status_code == 200 and nothing.json() == []
