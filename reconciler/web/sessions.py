"""Dashboard sessions: who is logged in, for how long, and the CSRF token of their forms.

A login (the login page or `POST /api/v1/auth/login`) opens a session: a random id kept
in this process's memory with the user, their role, a CSRF token and the time it was last
used. The browser holds it in a cookie signed with an HMAC key of this process
(`HttpOnly`, `SameSite=Lax`, `Secure` over HTTPS); an API client holds the same id as a
bearer token. A session idle for longer than the timeout is gone, as are all sessions when
the daemon restarts. Each use re-reads the user from the users file, so a removed user is
out at once and a changed role applies at once.

`Authenticator` is what the API gate and the routes ask: a request's caller, from a
configured API token, a session bearer token, or the session cookie; a request that came
with the cookie alone must also carry its session's CSRF token to change anything.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from starlette.datastructures import Headers

from reconciler.access import Caller, TokenTable
from reconciler.web.users import UserStore

COOKIE = "reconciler_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(slots=True)
class Session:
    id: str
    user: str
    csrf: str
    last_seen: float


@dataclass(slots=True)
class Sessions:
    """Open sessions (in memory), with an idle timeout in seconds."""

    users: UserStore
    idle_seconds: float
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    open: dict[str, Session] = field(default_factory=dict)

    def start(self, user: str) -> Session:
        self._sweep()
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(24), time.monotonic())
        self.open[session.id] = session
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self.open.pop(session_id, None)

    def get(self, session_id: str | None) -> Session | None:
        """The live session `session_id` (its idle clock restarted), else None."""
        session = self.open.get(session_id or "")
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.idle_seconds or self.users.get(session.user) is None:
            self.open.pop(session.id, None)
            return None
        session.last_seen = now
        return session

    def caller(self, session: Session) -> Caller | None:
        user = self.users.get(session.user)
        return Caller(user.role, "session", user=user.name) if user else None

    def sign(self, session_id: str) -> str:
        return f"{session_id}.{self._mac(session_id)}"

    def unsign(self, cookie: str | None) -> str | None:
        if not cookie or "." not in cookie:
            return None
        session_id, mac = cookie.rsplit(".", 1)
        return session_id if hmac.compare_digest(mac, self._mac(session_id)) else None

    def _mac(self, value: str) -> str:
        return hmac.new(self.key, value.encode(), sha256).hexdigest()[:43]

    def _sweep(self) -> None:
        now = time.monotonic()
        for stale in [s.id for s in self.open.values() if now - s.last_seen > self.idle_seconds]:
            self.open.pop(stale, None)


def cookie_value(headers: Headers, name: str = COOKIE) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Identity:
    """Who made a request and how: `session` is set when it came with a session (cookie or
    bearer); `by_cookie` when the browser's cookie alone vouches for it (CSRF applies)."""

    caller: Caller
    session: Session | None = None
    by_cookie: bool = False


@dataclass(slots=True)
class Authenticator:
    tokens: TokenTable
    sessions: Sessions

    def identify(self, headers: Headers) -> Identity | None:
        header = headers.get("authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
        if bearer:
            found = self.tokens.check(bearer)
            if found is not None:
                return Identity(found)
            session = self.sessions.get(bearer)
            caller = self.sessions.caller(session) if session else None
            return Identity(caller, session) if caller and session else None
        session = self.sessions.get(self.sessions.unsign(cookie_value(headers)))
        caller = self.sessions.caller(session) if session else None
        return Identity(caller, session, by_cookie=True) if caller and session else None

    def caller_of(self, headers: Headers) -> Caller | None:
        identity = self.identify(headers)
        return identity.caller if identity else None

    def csrf_ok(self, identity: Identity, method: str, token: str | None) -> bool:
        """A cookie-borne request that changes something must carry its session's CSRF token."""
        if method.upper() in SAFE_METHODS or not identity.by_cookie or identity.session is None:
            return True
        return bool(token) and hmac.compare_digest(token or "", identity.session.csrf)


def cookie_header(sessions: Sessions, session: Session | None, *, secure: bool) -> dict[str, Any]:
    """Keyword arguments for Starlette's `set_cookie` (or its deletion when `session` is None)."""
    if session is None:
        return {"key": COOKIE, "value": "", "max_age": 0, "httponly": True, "samesite": "lax",
                "secure": secure, "path": "/"}
    return {"key": COOKIE, "value": sessions.sign(session.id), "httponly": True, "samesite": "lax",
            "secure": secure, "path": "/"}
