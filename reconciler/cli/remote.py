"""`--server URL`: the CLI's one client of a running daemon's HTTP API.

`status`, `history`, `clients`, `run` and `review accept|reject` with `--server` ask the
daemon instead of the local store. They all go through `Server`: the bearer token is read
from the environment variable the user named (never from an argument, which `ps` shows)
and remembered for redaction; a connection failure or an error answer becomes one line
(`error: URL: 404 no run 'x'`) and exit 1, never a traceback.
"""

from __future__ import annotations

from typing import Any

from reconciler.cli.common import abort, secret_from_env


class Server:
    """A daemon's API at `url`, called with the token held in `$token_env`."""

    def __init__(self, url: str, *, token_env: str, option: str = "--token-env") -> None:
        self.url = url
        self._base = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {secret_from_env(token_env, option)}"}

    def get(self, path: str, *, params: dict[str, Any] | None = None) -> Any:
        return self._send("GET", path, params=params)

    def post(self, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
             read_timeout: float = 30.0) -> Any:
        return self._send("POST", path, params=params, body=body, read_timeout=read_timeout)

    def _send(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
              read_timeout: float = 30.0) -> Any:
        import httpx

        try:
            response = httpx.request(method, f"{self._base}{path}", params=params, json=body,
                                     headers=self._headers,
                                     timeout=httpx.Timeout(30.0, read=read_timeout))
        except httpx.HTTPError as exc:
            raise abort(f"{self.url}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise abort(f"{self.url}: {response.status_code} {detail}")
        return response.json()
