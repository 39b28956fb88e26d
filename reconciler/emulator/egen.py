"""An emulator of Korea's national AED open API (data.go.kr `B552657/AEDInfoInqireService`).

The reconciler's AED driver pulls about 81,000 records from a public API with a daily
quota, errors wrapped in HTTP 200 and no test environment. This module serves the same
API from a local, deterministic data set (`dataset.generate`) over real HTTP, so that the
driver, the CLI and the quickstart run, and are tested, without the internet.

What it serves, under `http://HOST:PORT/B552657/AEDInfoInqireService/`:
- `getAedFullDown`: every record, as stored (with `sido` and `gugun`; the address
  without its sido/gugun prefix except in Sejong), paged by `pageNo` (default 1) and
  `numOfRows` (default 10).
- `getEgytAedManageInfoInqire`: the records of sido `Q0` (long name; the short and
  former names work too) and gugun `Q1` (exact, or a prefix: 강릉 finds 강릉시); both
  optional, as public clients page through everything without them. Items carry the full
  address (sido and gugun first) and no `sido`/`gugun` fields, as in the observed answer.
- `getAedLcinfoInqire`: the records nearest to `WGS84_LAT`/`WGS84_LON` (both required),
  nearest first, each with `distance` in km (2 decimals), shaped like the address list;
  records whose coordinates do not parse are left out. `Q0`/`Q1` (codes) are ignored.
- `serviceKey` is required (missing or empty: the gateway's code 30); with `service_key`
  set, any other key gets code 30 as well. `_type=json` answers in JSON.
- Bad `pageNo`/`numOfRows` (not a whole number >= 1) get code 10; an unknown operation code 12.
The answers' bytes are described in `envelopes`, the operations' results in `queries`,
the switchable faults and their command-line syntax in `faults`.

Design: the served records are fixed between changes (a new `changed_fraction`, dirty
share, or an `empty`/`single-item` fault builds a new `queries.View`, which caches query
results and rendered pages, so a repeated pull costs only the HTTP round trips). Fault
counters live beside the view and reset when the faults are set. One lock guards that
state; pages render outside it.
Requests are logged at DEBUG on the `reconciler.emulator.egen` logger, not to stderr.
"""

from __future__ import annotations

import logging
import math
import re
import signal
import socketserver
import threading
from collections.abc import Iterable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reconciler.emulator import envelopes
from reconciler.emulator.dataset import DEFAULT_SEED, FULL_COUNT, Record, dirty, generate, mutate
from reconciler.emulator.envelopes import Reply
from reconciler.emulator.faults import Faults, PageFault, PageFaultKind
from reconciler.emulator.queries import LOCATION_INFO, MANAGE_INFO, OPERATIONS, View

__all__ = ["OPERATIONS", "SERVICE_PATH", "EgenEmulator", "Faults", "PageFault", "PageFaultKind", "serve"]

SERVICE_PATH = "/B552657/AEDInfoInqireService"

log = logging.getLogger(__name__)


def _trimmed(records: list[Record], faults: Faults) -> list[Record]:
    """The records the `empty` / `single-item` faults leave (see `faults`)."""
    if faults.empty:
        return []
    if not faults.single_item or not records:
        return records
    rows = faults.single_item_rows
    if rows is None:
        return records[:1]
    if rows == 1:
        return records
    return records[: len(records) - (len(records) - 1) % rows]


def _served_shape(faults: Faults) -> tuple[bool, bool, int | None]:
    return faults.empty, faults.single_item, faults.single_item_rows


def _whole_number(text: str | None, default: int) -> int | None:
    if text is None or text == "":
        return default
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        return None
    return int(text)


def _number(text: str | None) -> str | None:
    try:
        value = float(text) if text else math.nan
    except ValueError:
        return None
    return repr(value) if math.isfinite(value) else None


# --- the emulator --------------------------------------------------------------------------------

class EgenEmulator:
    """The AED open API on a local port, serving a synthetic registry, with switchable faults."""

    def __init__(
        self,
        *,
        count: int = FULL_COUNT,
        seed: int = DEFAULT_SEED,
        changed_fraction: float = 0.0,
        dirty_fraction: float = 0.0,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        service_key: str | None = None,
    ) -> None:
        if count < 0:
            raise ValueError(f"expected count >= 0, got {count}")
        _check_fraction("changed_fraction", changed_fraction)
        _check_fraction("dirty_fraction", dirty_fraction)
        self.count, self.seed = count, seed
        self.host, self.port = host, port
        self.service_key = service_key
        self._changed_fraction, self._dirty_fraction = changed_fraction, dirty_fraction
        self._faults = faults or Faults()
        self._lock = threading.Lock()
        self._base: list[Record] | None = None
        self._content: tuple[tuple[float, float], list[Record]] | None = None
        self._view: View | None = None
        self._requests = 0
        self._requests_at_faults = 0
        self._attempts: dict[tuple[int, int], int] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- life cycle

    def start(self) -> str:
        """Bind, start serving in a background thread and return the base URL."""
        if self._server is not None:
            return self.base_url
        self._current_view()  # generate before the first request, not during it
        server = _Server((self.host, self.port), _Handler)
        server.emulator = self
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="egen-emulator", daemon=True
        )
        self._thread.start()
        log.debug("AED emulator listening on %s", self.base_url)
        return self.base_url

    def stop(self) -> None:
        """Stop serving; slow pages in progress are cut short. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    # -- state

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        return f"http://{host}:{port}{SERVICE_PATH}"

    @property
    def items(self) -> list[Record]:
        """Copies of the records currently served, in order (after changes, dirt and faults)."""
        return [dict(record) for record in self._current_view().records]

    @property
    def item_count(self) -> int:
        """How many records are served (the full download's totalCount)."""
        return len(self._current_view().records)

    @property
    def request_count(self) -> int:
        """HTTP requests answered so far (every one, errors included)."""
        with self._lock:
            return self._requests

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def set_faults(self, faults: Faults) -> None:
        """Switch faults now; page-fault counters and the `quota:after` count start again."""
        with self._lock:
            if _served_shape(faults) != _served_shape(self._faults):
                self._view = None  # other records served: rebuilt on demand
            self._faults = faults
            self._attempts.clear()
            self._requests_at_faults = self._requests

    def set_changed_fraction(self, fraction: float) -> None:
        """Serve `mutate(base, fraction)` from now on (0: the base set)."""
        _check_fraction("changed_fraction", fraction)
        with self._lock:
            self._changed_fraction = fraction
            self._view = None

    def set_dirty_fraction(self, fraction: float) -> None:
        """Serve `dirty(..., fraction)` records from now on (0: none)."""
        _check_fraction("dirty_fraction", fraction)
        with self._lock:
            self._dirty_fraction = fraction
            self._view = None

    def _current_view(self) -> View:
        with self._lock:
            if self._view is not None:
                return self._view
            if self._base is None:
                self._base = generate(self.count, self.seed)
            fractions = (self._changed_fraction, self._dirty_fraction)
            if self._content is None or self._content[0] != fractions:
                records = self._base
                if fractions[0]:
                    records = mutate(records, fractions[0], self.seed + 1)
                if fractions[1]:
                    records = dirty(records, fractions[1], self.seed + 2)
                self._content = (fractions, records)
            self._view = View(_trimmed(self._content[1], self._faults))
            return self._view

    # -- answering

    def respond(self, target: str) -> Reply:
        """The reply to `GET target` (path and query), faults included; counts the request."""
        url = urlsplit(target)
        prefix, _, operation = url.path.rstrip("/").rpartition("/")
        if prefix != SERVICE_PATH:
            return Reply(404, "text/plain; charset=utf-8", b"Not Found\n")
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        as_json = query.get("_type", "").strip().lower() == "json"
        with self._lock:
            self._requests += 1
            faults = self._faults
            requests_since = self._requests - self._requests_at_faults
        if operation not in OPERATIONS:
            return envelopes.gateway_error("12", as_json=as_json)
        key = query.get("serviceKey", "")
        if not key or faults.unregistered_key or (self.service_key is not None and key != self.service_key):
            return envelopes.gateway_error("30", as_json=as_json)
        if faults.unregistered_key_99:
            return envelopes.key_not_registered_99(as_json=as_json)
        if faults.quota_after_requests is not None and requests_since > faults.quota_after_requests:
            return envelopes.gateway_error("22", as_json=as_json)
        page, rows = _whole_number(query.get("pageNo"), 1), _whole_number(query.get("numOfRows"), 10)
        if page is None or rows is None:
            return envelopes.parameter_error("10", as_json=as_json)
        if faults.quota_from_page is not None and page >= faults.quota_from_page:
            return envelopes.gateway_error("22", as_json=as_json)
        filters: tuple[str, ...] = ()
        if operation == MANAGE_INFO:
            filters = (query.get("Q0", "").strip(), query.get("Q1", "").strip())
        elif operation == LOCATION_INFO:
            if not query.get("WGS84_LAT", "").strip() or not query.get("WGS84_LON", "").strip():
                return envelopes.parameter_error("11", as_json=as_json)
            lat, lon = _number(query["WGS84_LAT"]), _number(query["WGS84_LON"])
            if lat is None or lon is None:
                return envelopes.parameter_error("10", as_json=as_json)
            filters = (lat, lon)
        active = self._active_page_faults(page)
        delay = sum(f.seconds for f in active if f.kind is PageFaultKind.SLOW)
        kinds = {f.kind for f in active}
        if PageFaultKind.HTTP500 in kinds:
            reply = envelopes.server_error()
        elif PageFaultKind.TIMEOUT_ENVELOPE in kinds:
            reply = envelopes.header_only("05", as_json=as_json)
        else:
            body = self._current_view().page(operation, filters, page, rows, as_json)
            if PageFaultKind.TRUNCATE in kinds:
                body = body[: len(body) // 2]
            content_type = envelopes.JSON_CONTENT_TYPE if as_json else envelopes.XML_CONTENT_TYPE
            reply = Reply(200, content_type, body)
        return replace(reply, delay=delay) if delay else reply

    def _active_page_faults(self, page: int) -> list[PageFault]:
        """The page faults that hit this request for `page`, counting it against each."""
        active = []
        with self._lock:
            for index, fault in enumerate(self._faults.pages):
                if not fault.applies_to(page):
                    continue
                attempt = self._attempts.get((index, page), 0) + 1
                self._attempts[(index, page)] = attempt
                if fault.times is None or attempt <= fault.times:
                    active.append(fault)
        return active


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected {name} between 0 and 1, got {value}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    emulator: EgenEmulator

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS round trip on some hosts.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops a keep-alive connection is normal here, not a traceback on stderr.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's connection pool is reused
    server: _Server

    def version_string(self) -> str:
        return "Apache"

    def do_GET(self) -> None:
        emulator = self.server.emulator
        reply = emulator.respond(self.path)
        if reply.delay and emulator._stopping.wait(reply.delay):
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries the service key: never log it, even at debug level.
        text = re.sub(r"(serviceKey=)[^&\s]*", r"\1***", format % args)
        log.debug("%s - %s", self.address_string(), text)


# --- the command ------------------------------------------------------------------------------

def serve(
    port: int = 8089,
    host: str = "127.0.0.1",
    *,
    count: int = FULL_COUNT,
    seed: int = DEFAULT_SEED,
    changed_fraction: float = 0.0,
    dirty_fraction: float = 0.0,
    faults: Iterable[str] = (),
    service_key: str | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, after printing one line with the URL.

    `faults` are command-line strings (`quota:page=3`, see `faults`); a bad one raises
    ValueError before anything is bound.
    """
    parsed = Faults.parse(faults)
    emulator = EgenEmulator(count=count, seed=seed, changed_fraction=changed_fraction,
                            dirty_fraction=dirty_fraction, faults=parsed, host=host, port=port,
                            service_key=service_key)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        url = emulator.start()
        described = f", faults: {' '.join(parsed.specs())}" if parsed.specs() else ""
        print(f"AED open API emulator at {url} ({emulator.item_count:,} records{described})", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
