"""The gate in front of the HTTP API: who may send a body, and how big, decided from the headers.

FastAPI reads and parses a request's body before it resolves the route's dependencies, so
a token check written as a dependency comes too late: an anonymous client could make the
daemon buffer a body of any size before hearing 401. This ASGI middleware runs first, on
the request line and headers alone:

- a path that needs a token (`protected`) without a valid bearer token is answered 401
  before a byte of the body is read;
- each path has a body limit (`limit_for`): a Content-Length beyond it is answered 413 at
  once, and a chunked body is counted as it is read and refused with 413 once it passes
  the limit, so no more than the limit is ever held;
- an answer given while the client is still sending a body says `Connection: close`, so
  the server hangs up instead of reading (and discarding) the rest.

Routes that authenticate from the body itself (the git webhook's HMAC) are not
`protected`; their bound is their limit. Role checks (admin) stay in the routes: by then
the body has been bounded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.access import Caller, TokenTable

CLOSE = (b"connection", b"close")


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """The most bytes a route reads from a request body, and the setting that changes it."""

    max_bytes: int
    setting: str

    def message(self) -> str:
        return (f"the request body is larger than {self.max_bytes} bytes, the limit of this route "
                f"(setting {self.setting})")


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a body being read passes its limit (FastAPI lets it through
    as an HTTP error: 413)."""

    def __init__(self, limit: BodyLimit) -> None:
        super().__init__(413, limit.message(), headers={"Connection": "close"})


def bearer_token(headers: Headers) -> str | None:
    header = headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


def _content_length(headers: Headers) -> int | None:
    try:
        return int(headers["content-length"])
    except (KeyError, ValueError):
        return None


async def _answer(send: Send, status: int, detail: str, *, close: bool,
                  extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    if close:
        headers.append(CLOSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestGate:
    """ASGI middleware: authenticate before the body, bound the body (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, tokens: TokenTable, protected: Callable[[str], bool],
                 limit_for: Callable[[str], BodyLimit],
                 authenticate: Callable[[Headers], Caller | None] | None = None) -> None:
        self.app = app
        self.tokens = tokens
        # Who a request is from its headers (tokens, and the dashboard's sessions); by default
        # the bearer token alone.
        self.authenticate = authenticate or (lambda headers: tokens.check(bearer_token(headers)))
        self.protected = protected
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        length = _content_length(headers)
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        pending = chunked or bool(length)  # a body the client is (or will be) sending
        if self.protected(path) and self.authenticate(headers) is None:
            await _answer(send, 401, "a valid bearer token is required", close=pending,
                          extra=((b"www-authenticate", b"Bearer"),))
            return
        limit = self.limit_for(path)
        if length is not None and length > limit.max_bytes:
            await _answer(send, 413, limit.message(), close=True)
            return

        read = 0
        exceeded = False

        async def bounded_receive() -> Message:
            nonlocal read, pending, exceeded
            if exceeded:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > limit.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(limit)
                pending = pending and bool(message.get("more_body", False))
            return message

        started = False

        async def closing_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if pending and CLOSE not in message.get("headers", []):
                    message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        try:
            await self.app(scope, bounded_receive, closing_send)
        except BodyTooLarge:
            if started:
                raise
            await _answer(send, 413, limit.message(), close=True)
