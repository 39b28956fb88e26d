"""A small GitHub REST client for posting plans (see `posting` for the sticky comment).

`GitHub` is a small synchronous REST client on httpx: a plan is posted by a CI step in a
handful of requests that depend on one another, so there is nothing to overlap. It
speaks to github.com or to GitHub Enterprise Server (`base_url=https://HOST/api/v3`).

Requests are retried when the failure can pass: HTTP 500/502/503/504, 429, a 403 that is
a rate limit (`x-ratelimit-remaining: 0`, a `retry-after` header, or "rate limit" in the
message: GitHub's secondary limits), dropped connections and timeouts. The wait follows
GitHub's advice: `retry-after` seconds if given, else until `x-ratelimit-reset` when the
quota is spent (measured against the response's `Date`, so the runner's clock does not
matter), else a minute for a secondary limit without headers; never less than the
exponential back-off (`backoff` doubling, capped at `max_backoff`, with jitter). A wait
longer than `max_wait` (60 s by default) is not sat out: the primary quota can be an hour
away, and a CI job that sleeps an hour helps nobody, so the request fails at once with a
message that says when the limit resets. Retrying a POST can, after a timeout, create a
comment twice; the next run's `post_plan` sees the extra part and deletes it.

The token is a secret: it is sent only in the Authorization header and only to
`base_url` (a pagination link to another host is refused), and no message, log line or
repr holds it. httpx exceptions are replaced, not chained.
"""

from __future__ import annotations

import importlib.metadata
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import structlog

from reconciler.errors import ReconcilerError

log = structlog.get_logger("reconciler.review")

DEFAULT_BASE_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
STATUS_CONTEXT = "reconciler/plan"
STATUS_DESCRIPTION_LIMIT = 140
"""GitHub rejects a commit status whose description is longer."""

StatusState = Literal["error", "failure", "pending", "success"]

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SECONDARY_LIMIT_WAIT = 60.0  # GitHub: "wait for at least one minute" when no header says how long
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_REPO = re.compile(r"(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)/(?P<name>[A-Za-z0-9._-]+)")
_SHA = re.compile(r"[0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?")  # SHA-1, or SHA-256 repositories
_HINTS = {
    401: "the token was refused: is it expired or revoked?",
    403: "the token may lack a permission (issues or pull requests: write; statuses: write)",
    404: "is the number right, and can the token see this repository?",
}


class GitHubError(ReconcilerError):
    """A GitHub API request failed: which request, what GitHub answered, after how many tries."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        github_message: str = "",
        attempts: int = 0,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.github_message = github_message
        self.attempts = attempts
        super().__init__(message)


def _user_agent() -> str:
    try:
        version = importlib.metadata.version("reconciler")
    except importlib.metadata.PackageNotFoundError:
        version = "dev"
    return f"reconciler/{version}"


class GitHub:
    """The few GitHub REST endpoints a plan review needs, for one repository."""

    def __init__(
        self,
        *,
        repo: str,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        retries: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_wait: float = 60.0,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if not _REPO.fullmatch(repo) or repo.split("/")[1] in {".", ".."}:
            raise GitHubError(f"expected the repository as OWNER/NAME, got {repo!r}")
        if not token.strip():
            raise GitHubError("the GitHub token is empty")
        if any(char.isspace() or not char.isprintable() for char in token.strip()):
            raise GitHubError("the GitHub token contains whitespace or control characters")
        url = httpx.URL(base_url)
        if url.scheme not in {"http", "https"} or not url.host or url.query or url.fragment:
            raise GitHubError(f"expected the GitHub API base URL as https://HOST[/PATH], got {base_url!r}")
        if min(retries, backoff, max_backoff, max_wait) < 0 or timeout <= 0:
            raise ValueError("retries, backoff, max_backoff and max_wait must be >= 0, timeout > 0")
        self.repo = repo
        self.base_url = base_url.rstrip("/")
        self.retries, self.backoff, self.max_backoff, self.max_wait = retries, backoff, max_backoff, max_wait
        self._token = token.strip()
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=self.base_url + "/",
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": _user_agent(),
            },
            timeout=timeout,
            transport=transport,
            # A renamed repository answers 301. httpx drops the Authorization header when a
            # redirect leaves the origin, so following cannot leak the token.
            follow_redirects=True,
        )

    def __repr__(self) -> str:
        return f"GitHub(repo={self.repo!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> GitHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- endpoints ---------------------------------------------------------------------------

    def list_issue_comments(self, pr: int) -> list[dict[str, Any]]:
        """Every comment on the pull request's conversation, oldest first, all pages."""
        return list(self._pages(f"repos/{self.repo}/issues/{_number(pr)}/comments"))

    def create_issue_comment(self, pr: int, body: str) -> dict[str, Any]:
        return self._object("POST", f"repos/{self.repo}/issues/{_number(pr)}/comments", json={"body": body})

    def update_issue_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        path = f"repos/{self.repo}/issues/comments/{_number(comment_id)}"
        return self._object("PATCH", path, json={"body": body})

    def delete_issue_comment(self, comment_id: int) -> None:
        self._request("DELETE", f"repos/{self.repo}/issues/comments/{_number(comment_id)}")

    def pull_head_sha(self, pr: int) -> str:
        pull = self._object("GET", f"repos/{self.repo}/pulls/{_number(pr)}")
        head = pull.get("head")
        sha = head.get("sha") if isinstance(head, dict) else None
        if not isinstance(sha, str) or not _SHA.fullmatch(sha):
            raise GitHubError(f"GitHub GET /repos/{self.repo}/pulls/{pr}: the answer has no head.sha",
                              method="GET", path=f"/repos/{self.repo}/pulls/{pr}")
        return sha

    def create_status(
        self,
        sha: str,
        *,
        state: StatusState,
        description: str,
        context: str = STATUS_CONTEXT,
        target_url: str | None = None,
    ) -> dict[str, Any]:
        """Set the commit status `context` on `sha`; the description is cut to GitHub's 140."""
        if not _SHA.fullmatch(sha):
            raise ValueError(f"expected a full commit SHA, got {sha!r}")
        if state not in {"error", "failure", "pending", "success"}:
            raise ValueError(f"expected a status state error, failure, pending or success, got {state!r}")
        payload: dict[str, str] = {"state": state, "description": clip_description(description),
                                   "context": context}
        if target_url:
            payload["target_url"] = target_url
        return self._object("POST", f"repos/{self.repo}/statuses/{sha}", json=payload)

    # --- requests ----------------------------------------------------------------------------

    def _object(self, method: str, path: str, *, json: Any = None) -> dict[str, Any]:
        response = self._request(method, path, json=json)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise self._error(method, self._shown(path), response.status_code,
                              "the answer is not a JSON object")
        return answer

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        url: str | None = path
        params: dict[str, str] | None = {"per_page": "100"}
        while url is not None:
            response = self._request("GET", url, params=params)
            try:
                page = response.json()
            except ValueError:
                page = None
            if not isinstance(page, list):
                raise self._error("GET", self._shown(url, params), response.status_code,
                                  "the answer is not a JSON list")
            yield from page
            url, params = response.links.get("next", {}).get("url"), None
            if url is not None and not url.startswith(self.base_url + "/"):
                # The token goes with every request: never to a host the user did not name.
                raise GitHubError(
                    f"GitHub GET {self._shown(path)}: the next page is at {url.split('?')[0]!r}, outside "
                    f"{self.base_url}; not following it",
                    method="GET", path=self._shown(path),
                )

    def _request(
        self, method: str, url: str, *, json: Any = None, params: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """One request, retried while the failure can pass; raises `GitHubError` otherwise."""
        shown = self._shown(url, params)
        attempt = 0
        while True:
            status: int | None = None
            wait: float | None = None
            try:
                response = self._client.request(method, url, json=json, params=params)
            except _TRANSIENT as exc:
                detail, retryable = f"no answer ({type(exc).__name__})", True
            except httpx.HTTPError as exc:
                detail, retryable = f"the request failed ({type(exc).__name__})", False
            else:
                if response.is_success:
                    return response
                status, detail = response.status_code, self._redact(_github_message(response))
                retryable, wait = _retry_hint(response, detail)
            # Raised outside the handlers, so no httpx exception rides along as __context__.
            if retryable and wait is not None and wait > self.max_wait:
                raise self._error(
                    method, shown, status, detail, attempts=attempt + 1,
                    note=f"GitHub asks to wait {wait:.0f} s, longer than the {self.max_wait:g} s this client "
                         "waits; try again later",
                )
            if not retryable or attempt >= self.retries:
                hint = _HINTS.get(status, "") if not retryable and status is not None else ""
                raise self._error(method, shown, status, detail, attempts=attempt + 1, note=hint)
            delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.8, 1.0)
            if wait is not None:
                delay = max(delay, wait)
            attempt += 1
            log.warning("github request retry", method=method, path=shown, status=status, error=detail,
                        attempt=attempt, delay=round(delay, 3))
            self._sleep(delay)

    def _shown(self, url: str, params: Mapping[str, str] | None = None) -> str:
        """The request as a message names it: the path below `base_url`, with its query."""
        if url.startswith(self.base_url + "/"):
            url = url[len(self.base_url):]
        elif not url.startswith("/"):
            url = "/" + url
        return f"{url}?{urlencode(params)}" if params else url

    def _error(
        self, method: str, shown: str, status: int | None, detail: str, *, attempts: int = 1, note: str = ""
    ) -> GitHubError:
        message = f"GitHub {method} {shown}: " + (f"HTTP {status}" if status is not None else "")
        if detail:
            message += f": {detail}" if status is not None else detail
        if note:
            message += f" ({note})"
        if attempts > 1:
            message += f" [after {attempts} attempts]"
        return GitHubError(self._redact(message), method=method, path=shown, status=status,
                           github_message=detail, attempts=attempts)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***")


def _number(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a positive whole number, got {value!r}")
    return value


def clip_description(text: str, limit: int = STATUS_DESCRIPTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _github_message(response: httpx.Response) -> str:
    """GitHub's `message`, with the details of a validation error, or the reason phrase."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return response.reason_phrase
    message = str(answer.get("message") or response.reason_phrase)
    details = []
    for error in answer.get("errors") or ():
        if isinstance(error, dict):
            details.append(str(error.get("message") or f"{error.get('field')} {error.get('code')}"))
        else:
            details.append(str(error))
    if details:
        message += f" ({'; '.join(details)})"
    return clip_description(message, 300)


def _retry_hint(response: httpx.Response, message: str) -> tuple[bool, float | None]:
    """Whether a failed answer may pass, and how long GitHub asks us to wait (None: no say)."""
    status, headers = response.status_code, response.headers
    rate_limited = status == 429 or (
        status == 403
        and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
             or "rate limit" in message.lower())
    )
    if not rate_limited and status not in _RETRY_STATUSES:
        return False, None
    now = _server_time(response)
    retry_after = headers.get("retry-after", "").strip()
    if retry_after.isdigit():
        return True, float(retry_after)
    if retry_after:
        try:
            return True, max(0.0, parsedate_to_datetime(retry_after).timestamp() - now)
        except (TypeError, ValueError):
            pass
    reset = headers.get("x-ratelimit-reset", "").strip()
    if rate_limited and headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        return True, max(0.0, int(reset) - now)
    return True, _SECONDARY_LIMIT_WAIT if rate_limited else None


def _server_time(response: httpx.Response) -> float:
    """Now, by GitHub's clock (its `Date` header) when it gave one, else by ours."""
    try:
        return parsedate_to_datetime(response.headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return time.time()
