"""What each operation of the AED API returns from the served records, and the page cache.

The three operations are three views of one registry: `getAedFullDown` pages through
the records as stored; `getEgytAedManageInfoInqire` selects by sido (`Q0`) and gugun
(`Q1`) and sends items shaped like the observed answer (the full address with sido and
gugun first, no `sido`/`gugun` elements); `getAedLcinfoInqire` sorts by distance from a
point and adds `distance` in km. A `ResultSet` holds one query's records in order; a
`View` holds one served data set, remembers the result sets of recent queries and the
bytes of every page it rendered (LRU, bounded by `PAGE_CACHE_BYTES`), so that a repeated
pull costs only the HTTP round trips. A view never changes: new data means a new view.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Any

from reconciler.drivers.aed.regions import short_sido
from reconciler.emulator.dataset import Record
from reconciler.emulator.envelopes import ResultSet

FULL_DOWN, MANAGE_INFO, LOCATION_INFO = "getAedFullDown", "getEgytAedManageInfoInqire", "getAedLcinfoInqire"
OPERATIONS = (FULL_DOWN, MANAGE_INFO, LOCATION_INFO)
PAGE_CACHE_BYTES = 256 * 1024 * 1024
_RESULT_SETS_KEPT = 64


def _listed(record: Record) -> Record:
    """A record as the address-list operation sends it: full address, no sido/gugun fields."""
    item = {k: v for k, v in record.items() if k not in ("sido", "gugun")}
    address = record.get("buildAddress")
    sido, gugun = record.get("sido", ""), record.get("gugun", "")
    if address is not None and sido and short_sido(address.split(" ", 1)[0]) is None:
        item["buildAddress"] = " ".join(filter(None, (sido, gugun, address)))
    return item


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    half_lon = math.radians(lon2 - lon1) / 2
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(half_lon) ** 2
    return 12742.0 * math.asin(math.sqrt(a))


def _coordinates(record: Record) -> tuple[float, float] | None:
    try:
        lat, lon = float(record["wgs84Lat"]), float(record["wgs84Lon"])
    except (KeyError, ValueError):
        return None
    return (lat, lon) if math.isfinite(lat) and math.isfinite(lon) else None


def query(records: list[Record], operation: str, filters: tuple[str, ...]) -> ResultSet:
    """The result of `operation` over `records`; filters are (Q0, Q1) or (lat, lon) or ()."""
    if operation == FULL_DOWN:
        return ResultSet(records)
    if operation == MANAGE_INFO:
        sido, gugun = filters
        selected: list[Record] = records
        if sido:
            short = short_sido(sido)
            selected = [r for r in selected if short is not None and short_sido(r.get("sido", "")) == short]
        if gugun:
            selected = [r for r in selected if r.get("gugun", "").startswith(gugun)]
        return ResultSet(selected, lambda _, record: _listed(record))
    lat, lon = float(filters[0]), float(filters[1])
    located = []
    for record in records:
        point = _coordinates(record)
        if point is not None:
            located.append((_distance_km(lat, lon, *point), record))
    located.sort(key=lambda pair: pair[0])
    distances = [d for d, _ in located]

    def shape(index: int, record: Record) -> Record:
        return {**_listed(record), "distance": f"{distances[index]:.2f}"}

    return ResultSet([r for _, r in located], shape)


class View:
    """One served data set with its query results and rendered pages."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self._lock = threading.Lock()
        self._results: OrderedDict[tuple[str, tuple[str, ...]], ResultSet] = OrderedDict()
        self._pages: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._page_bytes = 0

    def page(self, operation: str, filters: tuple[str, ...], page: int, rows: int, as_json: bool) -> bytes:
        key = (operation, filters, page, rows, as_json)
        with self._lock:
            body = self._pages.get(key)
            if body is not None:
                self._pages.move_to_end(key)
                return body
            result = self._results.get((operation, filters))
        if result is None:
            result = query(self.records, operation, filters)
        body = result.json(page, rows) if as_json else result.xml(page, rows)
        with self._lock:
            self._results[(operation, filters)] = result
            self._results.move_to_end((operation, filters))
            while len(self._results) > _RESULT_SETS_KEPT:
                self._results.popitem(last=False)
            if key not in self._pages:
                self._pages[key] = body
                self._page_bytes += len(body)
            while self._page_bytes > PAGE_CACHE_BYTES and len(self._pages) > 1:
                _, dropped = self._pages.popitem(last=False)
                self._page_bytes -= len(dropped)
        return body
