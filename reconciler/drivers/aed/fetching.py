"""Pulling every page of the AED open API, several at once, checking that they add up.

The API has no cursor: a pull asks for page 1, learns `totalCount`, and then asks for
pages 2..N. With real latency the order dominates (82 pages × 200 ms is 16 s one after
another), so after page 1 a fixed pool of `source.concurrency` workers takes page
numbers from one shared counter and hands each parsed page to the caller through a
queue of `concurrency` slots. At most `concurrency` requests are in flight and at most
`concurrency` parsed pages wait for the caller: memory is bounded by pages, never by the
table, and a slow consumer slows the pull down instead of filling memory. Pages are
yielded as they complete, in any order. XML bodies are parsed while they stream in.

Each page is retried on its own (`source.retries`: exponential back-off from `backoff`,
doubling, capped at `maxBackoff`, with a little jitter, and `Retry-After` honoured) when
the failure can pass: HTTP 5xx/429/408, timeouts, dropped connections, a truncated or
garbled body, and API codes of the RETRY class (99 and unknown codes once only). FAIL
codes (a bad key, parameter or account) are never retried. `QuotaExceeded` (22) stops
the whole pull at once: the requests in flight are cancelled and no other is sent.

The pages must add up, or the pull fails rather than hand the driver a partial table:
every page but the last holds exactly `numOfRows` items and the last the remainder; a
short page is treated as truncated (retried, then fatal); every page must report page 1's
`totalCount`, else the data changed during the pull (`SourceChanged`, retryable: a later
run sees a stable table); the item count must equal `totalCount` at the end. Code 03
(NODATA) on page 1 becomes one empty page (`totalCount` 0), because that is what the API
says about an empty registry: whether an empty source may be applied is the driver's
empty-source guard's decision, not the fetcher's. On any later page it means the data
shrank mid-pull (`SourceChanged`).

When anything fails, the iteration raises and every task it started has ended: the
workers run in a `TaskGroup` inside one producer task, which the iterator cancels and
awaits on exit, including when the caller stops early.

The service key is a secret: it appears in no exception, log line or repr. Requests are
described as `GET url?serviceKey=***&...&pageNo=3` (`SourceError.request`), httpx
exceptions (which embed the URL) are replaced, not chained, and a filter on the `httpx`
logger masks the key in its request log lines. A key pasted in its URL-encoded form
(data.go.kr shows both forms) is decoded once, so it is not encoded twice (`%252B`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
from collections.abc import AsyncGenerator, Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import cast
from urllib.parse import quote, quote_plus, unquote

import httpx
import structlog

from reconciler.drivers.aed.parsing import (
    ApiError,
    PageData,
    QuotaExceeded,
    ResponseFormatError,
    RetryClass,
    XmlPageParser,
)
from reconciler.errors import SourceError
from reconciler.models.aed import AedSource, SourceFormat

log = structlog.get_logger("reconciler.aed")

ProgressCallback = Callable[[int, int | None], None]
"""`on_progress(pages_done, pages_total)`, called after each page is fetched and checked."""

_RETRY_STATUSES = frozenset({408, 425, 429})
_KEY_IN_URL = re.compile(r"(serviceKey=)[^&\s'\"]*", re.IGNORECASE)


class HttpStatusError(SourceError):
    """An HTTP error status whose body is not an API error envelope."""

    def __init__(self, status: int, *, request: str, retry_after: float | None = None) -> None:
        self.status = status
        self.retry_after = retry_after
        retryable = status in _RETRY_STATUSES or status >= 500
        super().__init__(
            f"{request}: HTTP {status}", request=request, code=f"HTTP {status}", retryable=retryable
        )


class TransportError(SourceError):
    """No complete answer: the connection failed or dropped, or the request timed out."""

    def __init__(self, detail: str, *, request: str) -> None:
        self.detail = detail
        super().__init__(f"{request}: {detail}", request=request, retryable=True)


class SourceChanged(SourceError):
    """The pages do not add up to one consistent table: the data changed during the pull."""

    def __init__(self, detail: str, *, request: str = "") -> None:
        message = f"{detail}; the data changed during the pull, nothing was taken from it"
        super().__init__(f"{request}: {message}" if request else message, request=request, retryable=True)


def _redact_service_keys(record: logging.LogRecord) -> bool:
    """Mask `serviceKey=` in httpx's request log lines (it logs every URL at INFO)."""
    message = record.getMessage()
    if "servicekey=" in message.lower():
        record.msg, record.args = _KEY_IN_URL.sub(r"\1***", message), ()
    return True


# Installed on import, once: any code path that sends a key through httpx must be covered,
# including clients the caller passes in.
if _redact_service_keys not in logging.getLogger("httpx").filters:
    logging.getLogger("httpx").addFilter(_redact_service_keys)


class _Redactor:
    """Replaces every spelling of the secrets (raw, URL-encoded, in a URL) with `***`."""

    def __init__(self, *secrets: str) -> None:
        forms = {
            form
            for secret in secrets
            for form in (secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret))
            if form
        }
        self._forms = sorted(forms, key=len, reverse=True)  # longest first: no partial masks

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, "***")
        return _KEY_IN_URL.sub(r"\1***", text)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _Pull:
    """One pull: the request template, the figures from page 1 and the running totals."""

    def __init__(self, source: AedSource, service_key: str, on_progress: ProgressCallback | None,
                 fields: frozenset[str] | None = None) -> None:
        self.fields = fields
        # A key pasted URL-encoded would be encoded again by httpx (`+` → %2B → %252B).
        key = unquote(service_key) if "%" in service_key else service_key
        self.source = source
        self.url = f"{source.base_url.rstrip('/')}/{source.operation.value}"
        self.params: dict[str, str] = {"serviceKey": key, "numOfRows": str(source.page_size)}
        if source.format is SourceFormat.JSON:
            self.params["_type"] = "json"
        self.params.update(source.params)
        self.timeout = source.timeout.total_seconds()
        self.redact = _Redactor(key, service_key)
        self.on_progress = on_progress
        self.total = 0
        self.pages = 1
        self.pages_done = 0
        self.items_seen = 0

    def describe(self, page_no: int) -> str:
        shown = [f"{name}={'***' if name == 'serviceKey' else value}" for name, value in self.params.items()]
        return f"GET {self.url}?{'&'.join(shown)}&pageNo={page_no}"

    # --- the pull as a whole --------------------------------------------------------------

    async def run(self, client: httpx.AsyncClient, queue: asyncio.Queue[PageData]) -> None:
        first = await self.fetch(client, 1)
        await queue.put(first)
        if self.pages > 1:
            numbers = iter(range(2, self.pages + 1))
            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(self.source.concurrency, self.pages - 1)):
                        group.create_task(self.work(client, numbers, queue))
            except BaseExceptionGroup as failures:
                raise _most_telling(failures) from None
        if self.items_seen != self.total:
            raise SourceChanged(f"the pages held {self.items_seen} items, but totalCount is {self.total}")

    async def work(
        self, client: httpx.AsyncClient, numbers: Iterator[int], queue: asyncio.Queue[PageData]
    ) -> None:
        # One iterator shared by all workers: each page number is taken by exactly one of them.
        for page_no in numbers:
            page = await self.fetch(client, page_no)
            await queue.put(page)  # waits while `concurrency` pages already wait for the caller

    # --- one page, with retries ----------------------------------------------------------

    async def fetch(self, client: httpx.AsyncClient, page_no: int) -> PageData:
        request = self.describe(page_no)
        retries = self.source.retries
        limit = retries.limit
        attempt = 0
        while True:
            wait: float | None = None
            try:
                page = await self.get(client, page_no, request)
            except QuotaExceeded:
                raise
            except ApiError as exc:
                if exc.retry_class is RetryClass.EMPTY:
                    return self.accept(self.nodata(exc, page_no, request), page_no, request)
                if exc.retry_class is not RetryClass.RETRY:
                    raise
                limit = min(limit, exc.retry_limit) if exc.retry_limit is not None else limit
                failure: SourceError = exc
            except HttpStatusError as exc:
                if not exc.retryable:
                    raise
                failure, wait = exc, exc.retry_after
            except (TransportError, ResponseFormatError) as exc:
                failure = exc
            else:
                try:
                    return self.accept(page, page_no, request)
                except ResponseFormatError as exc:  # a short page: a truncated answer
                    failure = exc
            if attempt >= limit:
                if attempt:
                    log.warning("aed page failed", request=request, attempts=attempt + 1, error=str(failure))
                raise failure
            delay = min(retries.max_backoff.total_seconds(), retries.backoff.total_seconds() * 2**attempt)
            delay *= random.uniform(0.8, 1.0)  # jitter: workers that failed together retry apart
            if wait is not None:
                delay = max(delay, min(wait, retries.max_backoff.total_seconds()))
            attempt += 1
            log.warning(
                "aed page retry", request=request, attempt=attempt, delay=round(delay, 3), error=str(failure)
            )
            await asyncio.sleep(delay)

    def nodata(self, error: ApiError, page_no: int, request: str) -> PageData:
        if page_no != 1:
            raise SourceChanged(
                f"page {page_no} answered {error.code} {error.code_name}, but page 1 reported "
                f"totalCount {self.total}",
                request=request,
            )
        log.warning("aed source reports no data", request=request, code=error.code)
        return PageData(page_no=1, num_of_rows=self.source.page_size, total_count=0, items=())

    def accept(self, page: PageData, page_no: int, request: str) -> PageData:
        """Check a page against page 1's figures, count it and report progress."""
        size = self.source.page_size
        if page.page_no != page_no:
            raise ResponseFormatError(f"the API answered page {page.page_no}", request=request)
        if page_no == 1:
            total = page.total_count
            pages = max(1, math.ceil(total / size))
        elif page.total_count != self.total:
            raise SourceChanged(
                f"page {page_no} reports totalCount {page.total_count}, page 1 reported {self.total}",
                request=request,
            )
        else:
            total, pages = self.total, self.pages
        expected = size if page_no < pages else total - size * (pages - 1)
        if len(page.items) != expected:
            if page_no == 1 and page.num_of_rows != size and len(page.items) == page.num_of_rows:
                raise SourceError(
                    f"{request}: the API answered numOfRows {page.num_of_rows} to numOfRows {size}; "
                    f"it seems to cap the page size: set source.pageSize to {page.num_of_rows} or less",
                    request=request,
                )
            raise ResponseFormatError(
                f"page {page_no} holds {len(page.items)} items, expected {expected} "
                f"(numOfRows {size}, totalCount {total})",
                request=request,
            )
        if page_no == 1:
            self.total, self.pages = total, pages
        self.items_seen += len(page.items)
        self.pages_done += 1
        if self.on_progress is not None:
            self.on_progress(self.pages_done, self.pages)
        return page

    # --- one request -----------------------------------------------------------------------

    async def get(self, client: httpx.AsyncClient, page_no: int, request: str) -> PageData:
        """One GET, streamed into the parser. Raises only SourceErrors that name no secret."""
        params = {**self.params, "pageNo": str(page_no)}
        parser = XmlPageParser(requested=self.source.format.value, fields=self.fields)
        status, retry_after = 0, None
        page: PageData | None = None
        failure: SourceError | None = None
        format_error: ResponseFormatError | None = None
        try:
            async with (
                asyncio.timeout(self.timeout),
                client.stream(
                    "GET", self.url, params=params, timeout=self.timeout, follow_redirects=True
                ) as response,
            ):
                status, retry_after = response.status_code, _retry_after(response)
                # aclosing: a parse error mid-body must not leave the byte iterator to the GC.
                # (httpx types aiter_bytes() as an AsyncIterator; it is an async generator.)
                body = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
                async with contextlib.aclosing(body) as chunks:
                    async for chunk in chunks:
                        parser.feed(chunk)
            page = parser.close()
        except ApiError as exc:
            failure = exc.with_request(request, reason=self.redact(exc.reason))
        except ResponseFormatError as exc:
            format_error = exc.with_request(request)
        except (TimeoutError, httpx.TimeoutException):
            failure = TransportError(f"no complete answer within {self.timeout:g}s", request=request)
        except httpx.HTTPError as exc:
            # httpx messages can quote the URL, key included: keep the type, mask the text.
            failure = TransportError(f"{type(exc).__name__}: {self.redact(str(exc))}", request=request)
        # Raised here, outside the handlers, so no httpx exception rides along as __context__.
        if failure is not None:
            raise failure
        if not 200 <= status < 300:
            raise HttpStatusError(status, request=request, retry_after=retry_after)
        if format_error is not None:
            raise format_error
        assert page is not None
        return page


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _most_telling(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one failure to report when several workers failed: quota first, then any SourceError."""
    leaves = list(_leaves(group))
    for kind in (QuotaExceeded, SourceError):
        for exc in leaves:
            if isinstance(exc, kind):
                return exc
    return group


async def fetch_pages(
    source: AedSource,
    service_key: str,
    *,
    client: httpx.AsyncClient | None = None,
    on_progress: ProgressCallback | None = None,
    fields: frozenset[str] | None = None,
) -> AsyncGenerator[PageData, None]:
    """Every page of `source`, each yielded once it is fetched and checked, in any order.

    Raises a `SourceError` (`ApiError`, `QuotaExceeded`, `HttpStatusError`, `TransportError`,
    `ResponseFormatError`, `SourceChanged`) when the pull cannot be completed; by then no
    request of this pull is still running. `client` is used as given and left open; without
    one, a client sized for `source.concurrency` is opened and closed here. `fields` keeps
    only those item fields (canonical names) from XML pages: less work per row.
    """
    pull = _Pull(source, service_key, on_progress, fields)
    http = client if client is not None else httpx.AsyncClient(
        limits=httpx.Limits(max_connections=source.concurrency, max_keepalive_connections=source.concurrency),
        timeout=source.timeout.total_seconds(),
        follow_redirects=True,
    )
    queue: asyncio.Queue[PageData] = asyncio.Queue(maxsize=source.concurrency)
    producer = asyncio.create_task(pull.run(http, queue), name="aed-fetch-pages")
    try:
        # Wait for a page or for the producer to end, whichever comes first: a failed pull
        # is reported at once, not after the pages still queued.
        while not producer.done():
            getter = asyncio.ensure_future(queue.get())
            try:
                await asyncio.wait({getter, producer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                getter.cancel()  # a cancelled get leaves its item in the queue
            if getter.done() and not getter.cancelled():
                yield getter.result()
        producer.result()  # raises the pull's failure
        while not queue.empty():
            yield queue.get_nowait()
    finally:
        producer.cancel()
        try:
            await asyncio.wait({producer})
            if not producer.cancelled():
                producer.exception()  # retrieved, or asyncio logs it as never retrieved
        finally:
            if client is None:
                await http.aclose()
