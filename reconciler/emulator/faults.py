"""The ways the AED emulator can misbehave, as one immutable value and its command-line syntax.

data.go.kr fails in ways a client must survive without damaging the target: a quota
error arrives as HTTP 200 with a different XML envelope, a page can time out inside the
provider (resultCode 05), the gateway can answer 500 for a while, a page can be slow or
cut short, a source can be empty. `Faults` lists which of these the emulator injects;
it is a frozen value, so a test builds one, hands it over and can swap it for another at
run time (`EgenEmulator.set_faults`).

Page faults count *requests for that page*: `times=K` affects the first K requests of
the page and lets the next ones through (a client's retry can then succeed); without
`times` every request for the page is affected. A page fault without `page` applies to
every page, each page counted separately. Faults on the same page count independently
and the first that applies wins, in this order: http500, timeout-envelope, truncate
(slow only delays, whatever else happens).

Command-line syntax, one `--fault` per fault, `NAME[:key=value[,key=value]...]`:

    quota:page=P            code 22 envelope for every page >= P (the daily quota runs out)
    quota:after=N           code 22 envelope for every request after the N-th since the faults
                            were set (N may be 0)
    unregistered-key        code 30 envelope for every request
    unregistered-key-99     code 99 "SERVICE KEY IS NOT REGISTERED ERROR." in the normal envelope
                            for every request (how the gateway also answers an unknown key)
    timeout-envelope[:page=P][,times=K]   resultCode 05 in the normal envelope, no body
    http500[:page=P][,times=K]            HTTP 500 with an HTML error page
    slow:seconds=S[,page=P][,times=K]     sleep S seconds before answering
    truncate[:page=P][,times=K]           the body cut in the middle (Content-Length matches)
    empty                   no records at all: totalCount 0, empty items
    single-item             exactly one record is served (totalCount 1)
    single-item:rows=R      the records are trimmed to the largest n <= count with
                            n % R == 1, so that with numOfRows=R the last page holds one item

Without a key, a missing `serviceKey` parameter already yields the code 30 envelope.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum


class PageFaultKind(StrEnum):
    HTTP500 = "http500"
    TIMEOUT_ENVELOPE = "timeout-envelope"
    SLOW = "slow"
    TRUNCATE = "truncate"


@dataclass(frozen=True, slots=True)
class PageFault:
    """One fault on one page (or every page when `page` is None) for its first `times` requests."""

    kind: PageFaultKind
    page: int | None = None
    times: int | None = None
    seconds: float = 0.0

    def applies_to(self, page: int) -> bool:
        return self.page is None or self.page == page

    def spec(self) -> str:
        options = []
        if self.kind is PageFaultKind.SLOW:
            options.append(f"seconds={self.seconds:g}")
        if self.page is not None:
            options.append(f"page={self.page}")
        if self.times is not None:
            options.append(f"times={self.times}")
        return f"{self.kind.value}:{','.join(options)}" if options else self.kind.value


@dataclass(frozen=True, slots=True)
class Faults:
    """Everything the emulator injects; the default injects nothing."""

    quota_from_page: int | None = None
    quota_after_requests: int | None = None
    unregistered_key: bool = False
    unregistered_key_99: bool = False
    empty: bool = False
    single_item: bool = False
    single_item_rows: int | None = None
    pages: tuple[PageFault, ...] = ()

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Faults:
        """Faults from command-line strings (see the module docstring); ValueError on a bad one."""
        faults = cls()
        for spec in specs:
            faults = faults.with_spec(spec)
        return faults

    def with_spec(self, spec: str) -> Faults:
        """These faults plus the one `spec` describes."""
        name, _, rest = spec.strip().partition(":")
        options = _options(spec, rest)
        allowed = _ALLOWED.get(name)
        if allowed is None:
            raise ValueError(f"expected a fault among {', '.join(_ALLOWED)}, got {name!r} in {spec!r}")
        extra = sorted(options.keys() - allowed)
        if extra:
            raise ValueError(
                f"expected options of {name} among {', '.join(sorted(allowed)) or 'none'}, "
                f"got {', '.join(extra)} in {spec!r}"
            )
        page = _count(spec, options, "page")
        times = _count(spec, options, "times")
        if name == "quota":
            after = _count(spec, options, "after", minimum=0)
            if (page is None) == (after is None):
                raise ValueError(f"expected quota:page=P or quota:after=N, got {spec!r}")
            if page is not None:
                return replace(self, quota_from_page=page)
            return replace(self, quota_after_requests=after)
        if name == "unregistered-key":
            return replace(self, unregistered_key=True)
        if name == "unregistered-key-99":
            return replace(self, unregistered_key_99=True)
        if name == "empty":
            return replace(self, empty=True)
        if name == "single-item":
            return replace(self, single_item=True, single_item_rows=_count(spec, options, "rows"))
        seconds = 0.0
        if name == "slow":
            if "seconds" not in options:
                raise ValueError(f"expected slow:seconds=S, got {spec!r}")
            try:
                seconds = float(options["seconds"])
            except ValueError:
                seconds = math.nan
            if not 0.0 <= seconds < math.inf:
                raise ValueError(
                    f"expected seconds to be a number >= 0, got {options['seconds']!r} in {spec!r}"
                )
        fault = PageFault(PageFaultKind(name), page=page, times=times, seconds=seconds)
        return replace(self, pages=(*self.pages, fault))

    def specs(self) -> tuple[str, ...]:
        """The command-line strings that parse back to these faults."""
        specs: list[str] = []
        if self.quota_from_page is not None:
            specs.append(f"quota:page={self.quota_from_page}")
        if self.quota_after_requests is not None:
            specs.append(f"quota:after={self.quota_after_requests}")
        if self.unregistered_key:
            specs.append("unregistered-key")
        if self.unregistered_key_99:
            specs.append("unregistered-key-99")
        if self.empty:
            specs.append("empty")
        if self.single_item:
            rows = self.single_item_rows
            specs.append("single-item" if rows is None else f"single-item:rows={rows}")
        specs.extend(fault.spec() for fault in self.pages)
        return tuple(specs)


_PAGE_OPTIONS = frozenset({"page", "times"})
_ALLOWED: dict[str, frozenset[str]] = {
    "quota": frozenset({"page", "after"}),
    "unregistered-key": frozenset(),
    "unregistered-key-99": frozenset(),
    "empty": frozenset(),
    "single-item": frozenset({"rows"}),
    "http500": _PAGE_OPTIONS,
    "timeout-envelope": _PAGE_OPTIONS,
    "slow": _PAGE_OPTIONS | {"seconds"},
    "truncate": _PAGE_OPTIONS,
}


def _options(spec: str, text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"expected key=value options, got {part!r} in {spec!r}")
        options[key.strip()] = value.strip()
    return options


def _count(spec: str, options: dict[str, str], key: str, *, minimum: int = 1) -> int | None:
    text = options.get(key)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) < minimum:
        raise ValueError(f"expected {key} to be a whole number >= {minimum}, got {text!r} in {spec!r}")
    return int(text)
