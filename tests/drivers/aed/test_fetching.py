"""Fetching every page: concurrency, retries, consistency and secrecy, against a real HTTP server.

The server is the project's AED open API emulator on a loopback port; its faults make it
fail the way data.go.kr does. The few answers it cannot give (NODATA, a short page) come
from httpx's mock transport.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from reconciler.drivers.aed.fetching import (
    HttpStatusError,
    SourceChanged,
    TransportError,
    fetch_pages,
)
from reconciler.drivers.aed.parsing import ApiError, PageData, QuotaExceeded, ResponseFormatError
from reconciler.emulator.egen import EgenEmulator, Faults
from reconciler.errors import SourceError
from reconciler.models.aed import AedSource

COUNT, PAGE_SIZE, PAGES = 5000, 500, 10
KEY = "test-key"
SENTINEL = "SeNtInEl+Key/0123=="  # with the characters that URL encoding changes
ONE_QUICK_RETRY = {"limit": 1, "backoff": "10ms", "maxBackoff": "10ms"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[EgenEmulator]:
    egen = EgenEmulator(count=COUNT, seed=7)
    egen.start()
    yield egen
    egen.stop()


@pytest.fixture
def egen(emulator: EgenEmulator) -> Iterator[EgenEmulator]:
    emulator.set_faults(Faults())
    yield emulator
    emulator.set_faults(Faults())


def source(url: str, **overrides: Any) -> AedSource:
    spec: dict[str, Any] = {
        "serviceKey": {"env": "AED_SERVICE_KEY"},
        "baseUrl": url,
        "pageSize": PAGE_SIZE,
        "concurrency": 4,
        "timeout": "5s",
        "retries": {"limit": 3, "backoff": "10ms", "maxBackoff": "40ms"},
    }
    spec.update(overrides)
    return AedSource.model_validate(spec)


def others_running() -> set[asyncio.Task[Any]]:
    """Tasks still running besides the test's own.

    Left out: the event loop's finalizers of async generators that httpx abandons inside
    a closed response (`async_generator_athrow`); they are scheduled whenever the garbage
    collector gets to them and do nothing but close the generator.
    """
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and "athrow" not in repr(t.get_coro())}


async def pull(src: AedSource, key: str = KEY, **options: Any) -> list[PageData]:
    pages = [page async for page in fetch_pages(src, key, **options)]
    assert not others_running()
    return pages


async def pull_failing(src: AedSource, key: str = KEY, **options: Any) -> SourceError:
    with pytest.raises(SourceError) as caught:
        async for _ in fetch_pages(src, key, **options):
            pass
    assert not others_running()  # every request of the pull has ended
    return caught.value


def serials(pages: list[PageData]) -> list[str]:
    return sorted(item["serialSeq"] for page in pages for item in page.items)


def expected_serials(egen: EgenEmulator) -> list[str]:
    return sorted(record["serialSeq"] for record in egen.items)


def requests_during(egen: EgenEmulator, work: Any) -> tuple[Any, int]:
    before = egen.request_count
    result = asyncio.run(work)
    return result, egen.request_count - before


def faults(*specs: str) -> Faults:
    return Faults.parse(specs)


# --- a full pull ---------------------------------------------------------------------------------


def test_full_pull_gets_every_record_exactly_once(egen: EgenEmulator) -> None:
    progress: list[tuple[int, int | None]] = []
    pages, requests = requests_during(
        egen, pull(source(egen.base_url), on_progress=lambda done, total: progress.append((done, total)))
    )
    assert serials(pages) == expected_serials(egen)
    assert sorted(page.page_no for page in pages) == list(range(1, PAGES + 1))
    assert requests == PAGES
    assert progress == [(done, PAGES) for done in range(1, PAGES + 1)]


def test_items_arrive_as_served_with_leading_zeros(egen: EgenEmulator) -> None:
    pages = asyncio.run(pull(source(egen.base_url)))
    items = [item for page in pages for item in page.items]
    got = {item["serialSeq"]: {k: v for k, v in item.items() if k != "rnum"} for item in items}
    assert got == {record["serialSeq"]: record for record in egen.items}


def test_json_pull_gets_the_same_records(egen: EgenEmulator) -> None:
    pages = asyncio.run(pull(source(egen.base_url, format="json", pageSize=700, concurrency=3)))
    assert serials(pages) == expected_serials(egen)
    assert max(page.page_no for page in pages) == 8  # 5000 / 700: the last page holds the remainder


def test_an_empty_source_is_one_empty_page(egen: EgenEmulator) -> None:
    egen.set_faults(faults("empty"))
    pages = asyncio.run(pull(source(egen.base_url)))
    assert [(p.page_no, p.total_count, p.items) for p in pages] == [(1, 0, ())]


def test_a_last_page_of_one_item_is_complete(egen: EgenEmulator) -> None:
    egen.set_faults(faults(f"single-item:rows={PAGE_SIZE}"))
    pages = asyncio.run(pull(source(egen.base_url)))
    assert serials(pages) == expected_serials(egen) and len(serials(pages)) % PAGE_SIZE == 1


def test_a_url_encoded_key_is_not_encoded_twice() -> None:
    with EgenEmulator(count=30, seed=1, service_key="abc+/def==") as url:
        pages = asyncio.run(pull(source(url, pageSize=10), key="abc%2B%2Fdef%3D%3D"))
    assert len(serials(pages)) == 30


# --- concurrency and memory ----------------------------------------------------------------


class InFlight(httpx.AsyncBaseTransport):
    """A real transport that counts requests between sending and the end of their body."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.now = self.peak = self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self.now -= 1
            raise
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_Counted(response.stream, self), extensions=response.extensions)

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Counted(httpx.AsyncByteStream):
    def __init__(self, inner: Any, owner: InFlight) -> None:
        self.inner, self.owner, self.open = inner, owner, True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield chunk

    async def aclose(self) -> None:
        if self.open:
            self.open = False
            self.owner.now -= 1
        await self.inner.aclose()


def test_pages_are_fetched_concurrently_never_more_than_the_limit(egen: EgenEmulator) -> None:
    egen.set_faults(faults("slow:seconds=0.2"))
    transport = InFlight()

    async def timed() -> float:
        async with httpx.AsyncClient(transport=transport) as client:
            start = time.perf_counter()
            pages = await pull(source(egen.base_url), client=client)
            assert len(serials(pages)) == COUNT
            return time.perf_counter() - start

    elapsed = asyncio.run(timed())
    # Page 1 alone, then 9 pages four at a time: at most four slow pages in flight at once,
    # and never fewer than the 4 × 0.2 s that four rounds take.
    assert transport.peak == 4
    assert elapsed >= 0.2 * 3


def test_a_slow_consumer_holds_back_the_pull(egen: EgenEmulator) -> None:
    concurrency = 2
    lead: list[int] = []

    async def slowly() -> None:
        start = egen.request_count
        consumed = 0
        async for _ in fetch_pages(source(egen.base_url, pageSize=100, concurrency=concurrency), KEY):
            consumed += 1
            lead.append(egen.request_count - start - consumed)
            await asyncio.sleep(0.01)

    asyncio.run(slowly())
    assert len(lead) == COUNT // 100
    # Pages fetched but not consumed: one per worker plus the hand-over queue, never the table.
    assert max(lead) <= 2 * concurrency


def test_stopping_early_cancels_the_pull(egen: EgenEmulator) -> None:
    async def first_page_only() -> None:
        pages = fetch_pages(source(egen.base_url, pageSize=100), KEY)
        async for _ in pages:
            break
        await pages.aclose()  # type: ignore[attr-defined]
        assert not others_running()

    _, requests = requests_during(egen, first_page_only())
    time.sleep(0.1)
    assert requests < COUNT // 100


# --- failures and retries --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_quota_envelope_stops_the_pull_and_nothing_more_is_requested(egen: EgenEmulator, fmt: str) -> None:
    egen.set_faults(faults("quota:page=3"))
    transport = InFlight()

    async def run() -> tuple[SourceError, int, int]:
        async with httpx.AsyncClient(transport=transport) as client:
            error = await pull_failing(source(egen.base_url, format=fmt), client=client)
            sent = transport.sent
            await asyncio.sleep(0.2)  # time for anything left behind to send one more
            return error, sent, transport.sent

    error, sent_at_failure, sent_later = asyncio.run(run())
    assert isinstance(error, QuotaExceeded) and error.code == "22"
    assert sent_at_failure < PAGES  # stopped before the end...
    assert sent_later == sent_at_failure  # ...and nothing still running sends another
    time.sleep(0.1)  # the server's threads may still be counting requests sent before the stop
    settled = egen.request_count
    time.sleep(0.2)
    assert egen.request_count == settled


def test_quota_is_never_retried(egen: EgenEmulator) -> None:
    egen.set_faults(faults("quota:after=0"))
    error, requests = requests_during(egen, pull_failing(source(egen.base_url)))
    assert isinstance(error, QuotaExceeded) and requests == 1


def test_http_500_twice_is_survived_with_three_retries(egen: EgenEmulator) -> None:
    egen.set_faults(faults("http500:page=2,times=2"))
    pages, requests = requests_during(egen, pull(source(egen.base_url)))
    assert serials(pages) == expected_serials(egen) and requests == PAGES + 2


def test_http_500_twice_fails_with_one_retry(egen: EgenEmulator) -> None:
    egen.set_faults(faults("http500:page=2,times=2"))
    src = source(egen.base_url, retries=ONE_QUICK_RETRY)
    error = asyncio.run(pull_failing(src))
    assert isinstance(error, HttpStatusError) and error.status == 500 and error.retryable
    assert "pageNo=2" in error.request


def test_a_truncated_page_is_retried(egen: EgenEmulator) -> None:
    egen.set_faults(faults("truncate:page=4,times=1"))
    pages, requests = requests_during(egen, pull(source(egen.base_url)))
    assert serials(pages) == expected_serials(egen) and requests == PAGES + 1


def test_a_page_truncated_every_time_fails_after_the_retries(egen: EgenEmulator) -> None:
    egen.set_faults(faults("truncate:page=1"))
    error, requests = requests_during(egen, pull_failing(source(egen.base_url)))
    assert isinstance(error, ResponseFormatError) and requests == 1 + 3


def test_a_provider_timeout_code_is_retried(egen: EgenEmulator) -> None:
    egen.set_faults(faults("timeout-envelope:page=2,times=1"))
    pages, requests = requests_during(egen, pull(source(egen.base_url)))
    assert len(serials(pages)) == COUNT and requests == PAGES + 1


def test_an_unregistered_key_fails_at_once_without_retries(egen: EgenEmulator) -> None:
    egen.set_faults(faults("unregistered-key"))
    error, requests = requests_during(egen, pull_failing(source(egen.base_url)))
    assert isinstance(error, ApiError) and error.code == "30" and not error.retryable
    assert requests == 1


def test_a_request_slower_than_the_timeout_is_a_transport_error(egen: EgenEmulator) -> None:
    egen.set_faults(faults("slow:seconds=1,page=1"))
    src = source(egen.base_url, timeout="100ms", retries={"limit": 0})
    error = asyncio.run(pull_failing(src))
    assert isinstance(error, TransportError) and error.retryable and "0.1s" in str(error)


def test_a_total_count_that_changes_mid_pull_fails_the_pull(egen: EgenEmulator) -> None:
    def shrink_after_page_1(done: int, total: int | None) -> None:
        if done == 1:  # page 1 is in; the others have not been asked for yet
            egen.set_faults(faults(f"single-item:rows={PAGE_SIZE}"))

    error = asyncio.run(pull_failing(source(egen.base_url), on_progress=shrink_after_page_1))
    assert isinstance(error, SourceChanged) and error.retryable
    assert "totalCount 4501" in str(error) and "changed during the pull" in str(error)


# --- answers the emulator does not give --------------------------------------------------------


def mock_client(answer: Any) -> httpx.AsyncClient:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["pageNo"])
        calls.append(page)
        return httpx.Response(200, content=answer(page, len(calls)))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client.calls = calls  # type: ignore[attr-defined]
    return client


def json_page(page: int, total: int, count: int) -> bytes:
    items = [{"serialSeq": f"{page}-{n}"} for n in range(count)]
    body = {"items": {"item": items}, "numOfRows": 2, "pageNo": page, "totalCount": total}
    return json.dumps({"response": {"header": {"resultCode": "00"}, "body": body}}).encode()


NODATA = b'{"response": {"header": {"resultCode": "03", "resultMsg": "NODATA_ERROR"}}}'


def test_nodata_on_page_1_is_one_empty_page_for_the_guard_to_judge() -> None:
    async def run() -> list[PageData]:
        async with mock_client(lambda page, n: NODATA) as client:
            return await pull(source("http://aed.test/svc", pageSize=2), client=client)

    assert asyncio.run(run()) == [PageData(page_no=1, num_of_rows=2, total_count=0, items=())]


def test_nodata_on_a_later_page_means_the_data_changed() -> None:
    async def run() -> SourceError:
        async with mock_client(lambda page, n: json_page(1, 4, 2) if page == 1 else NODATA) as client:
            return await pull_failing(source("http://aed.test/svc", pageSize=2), client=client)

    assert isinstance(asyncio.run(run()), SourceChanged)


def test_a_short_page_is_retried_as_truncated_then_fails() -> None:
    async def run() -> tuple[SourceError, list[int]]:
        async with mock_client(lambda page, n: json_page(page, 6, 2 if page != 2 else 1)) as client:
            error = await pull_failing(source("http://aed.test/svc", pageSize=2), client=client)
            return error, client.calls  # type: ignore[attr-defined]

    error, calls = asyncio.run(run())
    assert isinstance(error, ResponseFormatError) and "page 2 holds 1 items, expected 2" in str(error)
    assert calls.count(2) == 1 + 3


def test_a_capped_page_size_is_reported_as_such() -> None:
    def capped(page: int, n: int) -> bytes:  # one item per page whatever numOfRows asks
        return json_page(page, 10, 1).replace(b'"numOfRows": 2', b'"numOfRows": 1', 1)

    async def run() -> SourceError:
        async with mock_client(capped) as client:
            return await pull_failing(source("http://aed.test/svc", pageSize=2), client=client)

    error = asyncio.run(run())
    assert not error.retryable and "set source.pageSize to 1 or less" in str(error)


# --- secrets -----------------------------------------------------------------------------------


def texts(error: BaseException) -> str:
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    seen: BaseException | None = error
    while seen is not None:  # chained exceptions are printed by some tools even when suppressed
        parts += [str(seen), repr(seen)]
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, SourceError):
        parts.append(error.request)
    return "\n".join(parts)


def assert_secret_kept(error: BaseException, caplog: pytest.LogCaptureFixture,
                       capsys: pytest.CaptureFixture[str]) -> None:
    from urllib.parse import quote

    out = capsys.readouterr()
    # The emulator's own request log (the server side) is no client output: leave it out.
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("reconciler.emulator")]
    everything = texts(error) + "".join(ours) + out.out + out.err
    for form in (SENTINEL, quote(SENTINEL, safe=""), "SeNtInEl"):
        assert form not in everything
    assert "serviceKey=***" in error.request  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("unregistered-key", ApiError), ("http500:page=1", HttpStatusError), ("quota:page=1", QuotaExceeded),
     ("truncate:page=1", ResponseFormatError), ("slow:seconds=1,page=1", TransportError)],
)  # fmt: skip
def test_the_service_key_appears_in_no_error_or_log_line(
    egen: EgenEmulator, fault: str, kind: type[SourceError],
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    egen.set_faults(faults(fault))
    src = source(egen.base_url, timeout="100ms", retries=ONE_QUICK_RETRY)
    error = asyncio.run(pull_failing(src, key=SENTINEL))
    assert isinstance(error, kind)
    assert any("HTTP Request" in r.getMessage() for r in caplog.records) or kind is TransportError
    assert_secret_kept(error, caplog, capsys)


def test_the_service_key_appears_in_no_connection_error(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    src = source(f"http://127.0.0.1:{port}/svc", retries=ONE_QUICK_RETRY)
    error = asyncio.run(pull_failing(src, key=SENTINEL))
    assert isinstance(error, TransportError) and error.retryable
    assert "ConnectError" in str(error)
    assert_secret_kept(error, caplog, capsys)
