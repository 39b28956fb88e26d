"""Reading one page of the AED open API: envelopes, result codes and XML quirks.

A page arrives in one of several shapes, and the HTTP status says little about which: the
data.go.kr gateway answers quota and key errors with HTTP 200 as often as with 401/403,
and a JSON request can get an XML error back (and the other way round). So the body
alone decides, sniffed by its first non-space byte (`<` is XML, `{` is JSON), never by
the requested format or the status:

- the normal envelope `response/header/{resultCode, resultMsg}` + `response/body/{items,
  numOfRows, pageNo, totalCount}`, in XML or JSON;
- the gateway envelope `OpenAPI_ServiceResponse/cmmMsgHeader/{errMsg, returnAuthMsg,
  returnReasonCode}`, in XML or as JSON `{"OpenAPI_ServiceResponse": {...}}`;
- a bare JSON `{resultCode, resultMsg}` for gateway parameter errors.

Every result code other than `00` raises an `ApiError` whose `retry_class` says what the
caller may do (the table `CODES`, from the reference notes): retry with back-off, fail at
once, or stop the whole run and keep the database (`22`, `QuotaExceeded`). `03`
(NODATA) also raises, with `RetryClass.EMPTY`: an error must never be read as "the source
is empty" here, so deciding whether "no data" may stand for an empty page is left to the
fetcher (which allows it for page 1 only) and, after it, to the driver's empty-source guard.

Items are dicts of strings, exactly as sent: leading zeros kept (`zipcode1` "030", times
"0900"), absent elements absent, an empty element the empty string. Field names are
matched case-insensitively and written in the API's camelCase (`FIELDS`), because the
provider's guide spells some in lower case; unknown fields keep their own name. The XML
quirks that trip other clients are normalised: one `<item>` is still a one-item tuple,
`<items/>` and `"items": ""` are empty, and `resultCode` stays the string "00".

XML is read when it is whole (`XmlPageParser`): a page of the API's usual plain shape by
regular expressions, one per item, which also check that the items are well-formed XML,
anything else by `xml.etree.ElementTree`, with the same result and the same refusals. A
document cut short is a `ResponseFormatError`, which is retryable: a truncated page is a
transport accident, not an answer.

This module does no I/O and knows nothing about requests or secrets; the fetcher attaches
the (redacted) request to the errors raised here with `with_request`.
"""

from __future__ import annotations

import functools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from reconciler.errors import SourceError

_TIMES = tuple(
    f"{day}{edge}Tme"
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "hol")
    for edge in ("Stt", "End")
)
FIELDS: tuple[str, ...] = (
    "serialSeq", "rnum", "sido", "gugun", "org", "buildAddress", "buildPlace", "clerkTel",
    "manager", "managerTel", "mfg", "model", "wgs84Lat", "wgs84Lon", "zipcode1", "zipcode2",
    "cnt", "distance",
    *_TIMES,
    "sunFrtYon", "sunScdYon", "sunThiYon", "sunFurYon", "sunFifYon",
)  # fmt: skip
"""The item fields in the API's own camelCase; names are matched against them ignoring case."""

_FIELD_BY_LOWER = {name.lower(): name for name in FIELDS}


class RetryClass(StrEnum):
    """What a result code allows the caller to do."""

    OK = "ok"  # 00 only
    RETRY = "retry"  # retry this request with back-off
    FAIL = "fail"  # retrying cannot help: the request, key or account is wrong
    STOP = "stop"  # stop the whole run now and keep the database as it is (daily quota)
    EMPTY = "empty"  # "no data": an empty answer, which the caller must decide to trust


CODES: dict[str, tuple[str, RetryClass]] = {
    "00": ("NORMAL_SERVICE", RetryClass.OK),
    "01": ("APPLICATION_ERROR", RetryClass.RETRY),
    "02": ("DB_ERROR", RetryClass.RETRY),
    "03": ("NODATA_ERROR", RetryClass.EMPTY),
    "04": ("HTTP_ERROR", RetryClass.RETRY),
    "05": ("SERVICETIMEOUT_ERROR", RetryClass.RETRY),
    "10": ("INVALID_REQUEST_PARAMETER_ERROR", RetryClass.FAIL),
    "11": ("NO_MANDATORY_REQUEST_PARAMETERS_ERROR", RetryClass.FAIL),
    "12": ("NO_OPENAPI_SERVICE_ERROR", RetryClass.FAIL),
    "20": ("SERVICE_ACCESS_DENIED_ERROR", RetryClass.FAIL),
    "21": ("TEMPORARILY_DISABLE_THE_SERVICEKEY_ERROR", RetryClass.RETRY),
    "22": ("LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR", RetryClass.STOP),
    "30": ("SERVICE_KEY_IS_NOT_REGISTERED_ERROR", RetryClass.FAIL),
    "31": ("DEADLINE_HAS_EXPIRED_ERROR", RetryClass.FAIL),
    "32": ("UNREGISTERED_IP_ERROR", RetryClass.FAIL),
    "33": ("UNSIGNED_CALL_ERROR", RetryClass.FAIL),
    "99": ("UNKNOWN_ERROR", RetryClass.RETRY),
}
"""data.go.kr result codes: name and retry class (reference `aed-egen.md` §2.5)."""

RETRY_ONCE: frozenset[str] = frozenset({"99"})
"""Codes retried at most once whatever the retry policy says: an unknown error may be a
blip, but hammering a gateway that cannot say what is wrong does not help."""

_CODE_BY_NAME = {name: code for code, (name, _) in CODES.items()}
_UNKNOWN_CODE = ("UNKNOWN_RESULT_CODE", RetryClass.RETRY)  # a code missing from the table: like 99
_HINTS = {
    "22": "the daily request quota is used up; stop and try again after it resets",
    "30": "the service key is not accepted: check source.serviceKey (the key data.go.kr issued for "
          "this API, pasted once, not URL-encoded twice); a new or reissued key can take an hour or "
          "more to reach the provider",
    "31": "the key's period of use has expired; extend it on data.go.kr",
}
KEY_CODES: frozenset[str] = frozenset({"20", "30", "31", "32", "33"})
"""Codes that say the service key (or the account behind it) is refused: authentication."""


def _code_named(reason: str) -> str | None:
    """The code whose name a message spells (`SERVICE KEY IS NOT REGISTERED ERROR.` → 30).

    The gateway also answers a refused key with code 99 and the name in words: read that way,
    it is what it says, not an unknown error to retry."""
    for part in reason.split(" / "):  # the gateway's "returnAuthMsg / errMsg"
        words = "_".join(part.upper().replace(".", " ").replace("_", " ").split())
        if words in _CODE_BY_NAME:
            return _CODE_BY_NAME[words]
    return None


class ApiError(SourceError):
    """The API answered with a result code other than 00.

    `retry_class` says whether to retry (`RETRY`, and `retry_limit` caps the retries when
    set), give up (`FAIL`), stop the run (`STOP`) or treat the answer as empty (`EMPTY`).
    `retryable` (from `SourceError`) answers a different question: may a later run
    succeed without anyone changing the spec? True for RETRY and STOP, false otherwise.
    `authentication` is true when the key or account is refused (codes 20, 30-33, and code
    99 whose message names one of them, as the gateway also answers a key it does not know).
    """

    def __init__(self, code: str, reason: str = "", *, request: str = "") -> None:
        named = _code_named(reason) if code in RETRY_ONCE or code not in CODES else None
        meaning = named or code  # the code whose class applies
        self.code_name, self.retry_class = CODES.get(meaning, _UNKNOWN_CODE)
        self.reason = reason
        self.authentication = meaning in KEY_CODES
        if self.authentication or meaning == "22":  # the class of the code meant, not of 99
            self.failure_class = "auth" if self.authentication else "quota"
        self.retry_limit: int | None = 1 if meaning in RETRY_ONCE or meaning not in CODES else None
        message = f"the API answered {code} {self.code_name}"
        if (reason and reason != self.code_name and named is None) or named is not None:
            message += f": {reason}"
        if self.authentication:
            message = f"authentication failed: {message}"
        if meaning in _HINTS:
            message += f" ({_HINTS[meaning]})"
        if request:
            message = f"{request}: {message}"
        super().__init__(
            message,
            request=request,
            code=code,
            retryable=self.retry_class in (RetryClass.RETRY, RetryClass.STOP),
        )

    def with_request(self, request: str, *, reason: str | None = None) -> ApiError:
        """The same error, naming the request it answered (and optionally a cleaned reason)."""
        return type(self)(self.code, self.reason if reason is None else reason, request=request)


class QuotaExceeded(ApiError):
    """Code 22: the daily quota is used up. The run stops at once; nothing is written."""


class ResponseFormatError(SourceError):
    """A body that is not a page: unparsable, truncated, empty, or an unknown document.

    Retryable: a cut-off or garbled page is usually a transport accident.
    """

    def __init__(self, detail: str, *, request: str = "") -> None:
        self.detail = detail
        super().__init__(f"{request}: {detail}" if request else detail, request=request, retryable=True)

    def with_request(self, request: str) -> ResponseFormatError:
        return type(self)(self.detail, request=request)


def api_error(code: str, reason: str = "") -> ApiError:
    """The `ApiError` for a result code (`QuotaExceeded` for 22)."""
    return QuotaExceeded(code, reason) if code == "22" else ApiError(code, reason)


@dataclass(frozen=True, slots=True)
class PageData:
    """One page as the API sent it: every item value a string, absent fields absent."""

    page_no: int
    num_of_rows: int
    total_count: int
    items: tuple[dict[str, str], ...]


def field_name(tag: str) -> str:
    """The canonical name of an item field: camelCase when known, else the name as sent."""
    return _FIELD_BY_LOWER.get(tag.lower(), tag)


def parse_page(body: bytes, *, fmt: str = "xml") -> PageData:
    """Parse one whole response body, whatever its shape (see the module docstring).

    `fmt` is the format that was requested; it only words the error for an empty body,
    since the body's first byte decides how it is read.
    """
    parser = XmlPageParser(requested=fmt)
    parser.feed(body)
    return parser.close()


# --- the envelope, once read -----------------------------------------------------------------


@dataclass(slots=True)
class _Envelope:
    """What was read from a document, before it is judged."""

    kind: str = ""  # "response", "gateway" or "bare"
    header: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: dict[str, str] = field(default_factory=dict)  # lower-case names
    items: list[dict[str, str]] = field(default_factory=list)


def _normalise_code(code: str) -> str:
    code = code.strip()
    # JSON clients report "00" arriving as the number 0; a one-digit code is a lost zero.
    return code.zfill(2) if code.isdigit() and len(code) < 2 else code


def _raise_for_code(envelope: _Envelope) -> None:
    header = envelope.header
    if envelope.kind == "gateway":
        auth = header.get("returnauthmsg", "").strip()
        err = header.get("errmsg", "").strip()
        code = header.get("returnreasoncode", "").strip() or _CODE_BY_NAME.get(auth, "99")
        reason = " / ".join(part for part in (auth, err) if part)
    else:
        if "resultcode" not in header:
            raise ResponseFormatError("a response without a resultCode")
        code = header["resultcode"]
        reason = (header.get("resultmsg") or header.get("resultmag") or "").strip()
    code = _normalise_code(code)
    if code != "00":
        raise api_error(code, reason)


def _count(body: dict[str, str], name: str, label: str) -> int:
    text = body.get(name)
    if text is None:
        raise ResponseFormatError(f"a page without {label}")
    try:
        return int(text.strip())
    except ValueError:
        raise ResponseFormatError(f"{label} is not a number: {text[:40]!r}") from None


def _page(envelope: _Envelope) -> PageData:
    _raise_for_code(envelope)
    if envelope.kind != "response":
        raise ResponseFormatError("a success code without a page body")
    return PageData(
        page_no=_count(envelope.body, "pageno", "pageNo"),
        num_of_rows=_count(envelope.body, "numofrows", "numOfRows"),
        total_count=_count(envelope.body, "totalcount", "totalCount"),
        items=tuple(envelope.items),
    )


# --- XML, streamed ---------------------------------------------------------------------------

_XML_ROOTS = {"response": "response", "openapi_serviceresponse": "gateway"}
_BOM = b"\xef\xbb\xbf"
_EARLY_CHECK = 16_384  # bytes of a body expat checks while it arrives (fail fast on garbage)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class XmlPageParser:
    """Parse a page from byte chunks as they arrive: `feed(chunk)` then `close()`.

    The chunks are buffered as they arrive, the first `_EARLY_CHECK` bytes also fed to expat
    (C), so that a body that cannot be XML fails at once; `close()` reads the page from its
    bytes, by regular expressions when it has the plain shape (see `_plain_envelope`), which
    check the items' well-formedness themselves, else as an element tree. Memory holds one
    page per request in flight, never the table. (Handling every element event in Python
    cost about 5 s over the 81,464 records; building and walking the element tree of every
    field, 1.6 s of a 2.6 s parse; expat checking every byte of the pull, 0.8 s of a 4.1 s
    run.) The first non-space byte decides the format: a body that turns out to be JSON
    (a gateway error answering an XML request) is buffered and parsed whole by `close()`.
    A truncated page is read again event by event, so that an error code that arrived in
    full is still reported as the API's error.

    `feed` raises `ResponseFormatError` as soon as the bytes cannot be XML; `close`
    returns the page or raises `ApiError` / `ResponseFormatError`.
    """

    def __init__(self, *, requested: str = "xml", fields: frozenset[str] | None = None) -> None:
        self._requested = requested
        self._fields = fields  # keep only these item fields (canonical names); None: all
        self._mode: str | None = None  # "xml" or "json" once the first byte is seen
        self._head = bytearray()  # bytes seen before the format is known
        self._json = bytearray()
        # expat with no handler to call (the target has none): checks the first bytes as they
        # come, in C, and builds nothing; `close` reads and checks the page from the whole text.
        self._tree = ET.XMLParser(target=_Nothing())
        self._xml = bytearray()  # kept to salvage the header of a truncated page
        self._pull: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
        self._path: list[str] = []  # lower-case local names from the root down
        self._elements: list[ET.Element] = []
        self._envelope = _Envelope()
        self._item: dict[str, str] | None = None
        self._broken: str | None = None
        self._root = ""

    def feed(self, chunk: bytes) -> None:
        if self._broken is not None or not chunk:
            return
        if self._mode is None:
            self._head.extend(chunk)
            start = bytes(self._head).removeprefix(_BOM).lstrip()
            if not start:
                return  # only a BOM or white space so far: the format is still open
            self._mode = "xml" if start.startswith(b"<") else "json"
            # Leading space (even a newline) before `<?xml` is an XML error; not worth failing on.
            chunk = start
            self._head.clear()
        if self._mode == "json":
            self._json.extend(chunk)
            return
        checked = len(self._xml)
        self._xml.extend(chunk)
        if checked >= _EARLY_CHECK:
            return
        try:
            self._tree.feed(chunk[:_EARLY_CHECK - checked])
        except ET.ParseError as exc:
            self._broken = f"unparsable XML: {exc}"
            raise ResponseFormatError(self._broken) from None

    def close(self) -> PageData:
        if self._broken is not None:
            raise ResponseFormatError(self._broken)
        if self._mode is None:
            raise ResponseFormatError(f"an empty body (expected {self._requested.upper()})")
        if self._mode == "json":
            return _parse_json(bytes(self._json))
        body = bytes(self._xml)
        envelope = _plain_envelope(body, self._fields)
        if envelope is None:  # not the plain shape: the element tree reads anything well-formed
            try:
                root = ET.fromstring(body)
            except ET.ParseError:
                return self._salvage()
            envelope = _envelope_of(root, self._fields)
            if not envelope.kind:
                raise ResponseFormatError(f"an unknown XML document (root element <{_local(root.tag)}>)")
        return _page(envelope)

    def _salvage(self) -> PageData:
        """A page that does not parse: report the API's error code if it arrived whole."""
        truncated: str | None = None
        try:
            self._pull.feed(bytes(self._xml))
            self._pull.close()
            self._drain()
        except ET.ParseError as exc:
            truncated = str(exc)
        envelope = self._envelope
        if truncated is not None:
            # An error code read in full is trusted even if the rest was cut off.
            code = "returnreasoncode" if envelope.kind == "gateway" else "resultcode"
            if _normalise_code(envelope.header.get(code, "00")) != "00":
                _raise_for_code(envelope)
            raise ResponseFormatError(f"truncated or malformed XML: {truncated}")
        if not envelope.kind:
            raise ResponseFormatError(f"an unknown XML document (root element <{self._root}>)")
        return _page(envelope)

    def _drain(self) -> None:
        # typeshed's read_events() also admits 1-tuples and namespace events; with only
        # "start" and "end" requested, every event is (name, element).
        events = cast(Iterator[tuple[str, ET.Element]], self._pull.read_events())
        for event, element in events:
            if event == "start":
                self._start(element)
            else:
                self._end(element)

    def _start(self, element: ET.Element) -> None:
        name = _local(element.tag).lower()
        self._path.append(name)
        self._elements.append(element)
        if len(self._path) == 1:
            self._root = _local(element.tag)
            self._envelope.kind = _XML_ROOTS.get(name, "")
        elif self._path == ["response", "body", "items", "item"]:
            self._item = {}

    def _end(self, element: ET.Element) -> None:
        path = self._path
        kind = self._envelope.kind
        depth = len(path)
        if kind == "response":
            if depth == 5 and self._item is not None and path[1:4] == ["body", "items", "item"]:
                self._item[field_name(_local(element.tag))] = element.text or ""
            elif depth == 4 and self._item is not None and path[1:] == ["body", "items", "item"]:
                self._envelope.items.append(self._item)
                self._item = None
                self._elements[-2].remove(element)  # done with it: let the tree forget it
            elif depth == 3 and path[1] == "header":
                self._envelope.header[path[2]] = (element.text or "").strip()
            elif depth == 3 and path[1] == "body" and path[2] != "items":
                self._envelope.body[path[2]] = (element.text or "").strip()
        elif kind == "gateway" and depth == 3 and path[1] == "cmmmsgheader":
            self._envelope.header[path[2]] = (element.text or "").strip()
        path.pop()
        self._elements.pop()


class _Nothing:
    """A parser target without handlers: expat only checks that the document is well-formed."""

    def close(self) -> None:
        return None


# --- XML, the plain shape: items read by regular expressions --------------------------------
#
# Every page of the API has the same plain shape: `<items>` holds `<item>` elements, each
# holding one element per field with text only, the fields in the same order. Building an
# element per field (37 per item, three million per pull) and walking them in Python cost
# more than the rest of the parse; in that shape one regular expression per item, with a
# group per field in the page's order (`_item_pattern`), gives all of an item's values in
# one call to C. Items that do not fit it are read field by field (`_ONE_ITEM`), and the
# whole region must be items, so anything else (attributes, comments, CDATA, a DOCTYPE,
# namespace prefixes, carriage returns, another encoding, no items) takes the element tree
# instead: the result is the same for every document, key order included. The envelope
# around the items (result code, counts) is read by the element tree from the document with
# the items cut out, so expat checks it; the items region is checked here: its structure by
# the patterns (ASCII names, white space as XML spells it), its characters by
# `_forbidden_bytes` and `_odd_text` (what XML forbids in text) and its references by
# `_STRAY_AMPERSAND` and `_resolve`.
# Whatever they do not accept goes to the element tree, which refuses what is not XML: the
# two readings are fuzzed against each other in tests/drivers/aed/test_parsing_plain.py.

_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_S = r"[ \t\n]*"  # XML white space; carriage returns never reach the plain reading
_ITEMS_REGION = re.compile(
    rf"(?:{_S}<item>(?:{_S}(?:<(?!item\b)({_NAME})>[^<]*</\1>|<(?!item\b){_NAME}{_S}/>))*{_S}</item>)*{_S}")
"""The items of a plain page, whole; a field may not be called item (`_ITEM` would split there)."""
_ITEM = re.compile(r"<item>(.*?)</item>", re.DOTALL)
_ONE_ITEM = re.compile(rf"<item>((?:{_S}<(?!item\b)({_NAME})>[^<]*</\2>)*){_S}</item>")
_SPACE = re.compile(_S)
_FIELD_PAIR = re.compile(rf"<({_NAME})>([^<]*)</\1>")
_FIELD_PAIR_OR_EMPTY = re.compile(rf"<({_NAME})>([^<]*)</\1>|<({_NAME}){_S}/>")
# The C0 controls XML forbids anywhere (all but tab, newline and carriage return); deleting
# every other byte is one pass in C, several times faster than a regular expression.
_ALLOWED_BYTES = bytes(sorted(set(range(256)) - set(range(0x20)) | {0x09, 0x0A, 0x0D}))


def _forbidden_bytes(body: bytes) -> bool:
    return bool(body.translate(None, _ALLOWED_BYTES))


def _odd_text(region: str) -> bool:
    """U+FFFE, U+FFFF (a strict UTF-8 decoding lets no surrogate through) or `]]>`, which
    character data may not hold."""
    return "\ufffe" in region or "\uffff" in region or ("]" in region and "]]>" in region)


_STRAY_AMPERSAND = re.compile(r"&(?!(?:#x[0-9A-Fa-f]+|#[0-9]+|amp|lt|gt|quot|apos);)")
_DECLARED_ENCODING = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")
_REFERENCE = re.compile(r"&(?:#x([0-9A-Fa-f]+)|#([0-9]+)|(amp|lt|gt|quot|apos));")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_HOLE = "\u2060items\u2060"  # stands in for the items while the envelope is parsed


class _NotPlain(Exception):
    """A character reference XML does not allow: the element tree decides (and refuses)."""


def _resolve(match: re.Match[str]) -> str:
    hex_, dec, name = match.groups()
    if name:
        return _ENTITIES[name]
    code = int(hex_, 16) if hex_ else int(dec)
    if code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD \
            or 0x10000 <= code <= 0x10FFFF:  # the characters XML allows
        return chr(code)
    raise _NotPlain


class _Names(dict[str, str]):
    """tag → canonical field name, or "" for a field not kept; filled on first sight."""

    def __init__(self, fields: frozenset[str] | None) -> None:
        super().__init__()
        self.fields = fields

    def __missing__(self, tag: str) -> str:
        name = _field(tag)
        kept = name if self.fields is None or name in self.fields else ""
        self[tag] = kept
        return kept


def _items_by_pairs(region: str, names: _Names) -> list[dict[str, str]]:
    """Any plain region (already checked whole): empty elements and references included."""
    items: list[dict[str, str]] = []
    for inner in _ITEM.findall(region):
        row: dict[str, str] = {}
        for tag, text, empty in _FIELD_PAIR_OR_EMPTY.findall(inner):
            tag, text = (empty, "") if empty else (tag, text)
            if name := names[tag]:
                row[name] = _REFERENCE.sub(_resolve, text) if "&" in text else text
        items.append(row)
    return items


def _merged(order: tuple[str, ...], tags: Sequence[str]) -> tuple[str, ...]:
    """`order` with the tags it lacks inserted after the tag they follow in `tags`."""
    merged = list(order)
    for index, tag in enumerate(tags):
        if tag not in merged:
            merged.insert(merged.index(tags[index - 1]) + 1 if index else 0, tag)
    return tuple(merged)


@functools.lru_cache(maxsize=32)
def _item_pattern(order: tuple[str, ...]) -> re.Pattern[str]:
    """One `<item>` whose fields come in `order`, each optional, each value a group."""
    fields = "".join(f"(?:<{re.escape(tag)}>([^<]*)</{re.escape(tag)}>)?" for tag in order)
    return re.compile(rf"{_S}<item>{fields}</item>")


def _plain_items(region: str, fields: frozenset[str] | None) -> list[dict[str, str]] | None:
    """The items of the region between `<items>` and `</items>`, or None if it is not plain.

    Items are read one after another, each where the last ended, so the region is checked
    whole on the way. An item is matched by one pattern with a group per field, in the
    order the page sends its fields (learnt from the items read one field at a time, which
    any item that does not fit the pattern is): one match gives all its values at once."""
    names = _Names(fields)
    if _odd_text(region) or ("&" in region and _STRAY_AMPERSAND.search(region)):
        return None
    if "/>" in region or "&" in region:  # rare: the general reading
        if not _ITEMS_REGION.fullmatch(region):
            return None
        try:
            return _items_by_pairs(region, names)
        except _NotPlain:
            return None
    items: list[dict[str, str]] = []
    order: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    keys: tuple[str, ...] = ()
    dropped = False
    pos, end = 0, len(region)
    while True:
        match = pattern.match(region, pos) if pattern is not None else None
        if match is not None:
            values = match.groups()
            if None in values:
                items.append({k: v for k, v in zip(keys, values, strict=True) if k and v is not None})
            else:
                row = dict(zip(keys, values, strict=True))
                if dropped:
                    del row[""]
                items.append(row)
            pos = match.end()
            continue
        pos = _SPACE.match(region, pos).end()  # type: ignore[union-attr]  # always matches
        if pos == end:
            return items
        single = _ONE_ITEM.match(region, pos)
        if single is None:
            return None
        pairs = _FIELD_PAIR.findall(single[1])
        items.append({name: text for tag, text in pairs if (name := names[tag])})
        pos = single.end()
        tags = [tag for tag, _ in pairs]
        if len(set(tags)) == len(tags) and not set(tags) <= set(order):
            order = _merged(order, tags)
            pattern = _item_pattern(order)
            keys = tuple(names[tag] for tag in order)
            dropped = "" in keys


def _plain_envelope(body: bytes, fields: frozenset[str] | None) -> _Envelope | None:
    """The envelope of a well-formed page of the plain shape, or None for any other document."""
    declared = _DECLARED_ENCODING.match(body)
    if declared is not None and declared[1].lower() not in (b"utf-8", b"utf8"):
        return None
    if b"<!DOCTYPE" in body or _forbidden_bytes(body):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    start, end = text.find("<items>"), text.rfind("</items>")
    if start < 0 or end < start or text.find("<items>", start + 1) >= 0:
        return None
    start += len("<items>")
    region = text[start:end]
    items = _plain_items(region, fields) if "\r" not in region else None
    if items is None:
        return None
    try:
        root = ET.fromstring((text[:start] + _HOLE + text[end:]).encode("utf-8"))
    except ET.ParseError:
        return None
    if _local(root.tag).lower() != "response":
        return None
    holes = [c for part in root if _local(part.tag).lower() == "body"
             for c in part if _local(c.tag).lower() == "items"]
    if len(holes) != 1 or holes[0].text != _HOLE or len(holes[0]):
        return None  # the <items> found is not the page's items
    envelope = _envelope_of(root, fields)
    envelope.items = items
    return envelope


_FIELDS_SEEN: dict[str, str] = {}


def _field(tag: str) -> str:
    name = _FIELDS_SEEN.get(tag)
    if name is None:
        name = _FIELDS_SEEN[tag] = field_name(_local(tag))
    return name


def _items(items: ET.Element, fields: frozenset[str] | None) -> list[dict[str, str]]:
    seen = _FIELDS_SEEN
    out: list[dict[str, str]] = []
    for item in items:
        if _local(item.tag).lower() != "item":
            continue
        row: dict[str, str] = {}
        for f in item:
            name = seen[f.tag] if f.tag in seen else _field(f.tag)
            if fields is None or name in fields:
                row[name] = f.text or ""
        out.append(row)
    return out


def _envelope_of(root: ET.Element, fields: frozenset[str] | None = None) -> _Envelope:
    """The envelope of a whole parsed document (the fast path); items keep only `fields`."""
    envelope = _Envelope()
    envelope.kind = _XML_ROOTS.get(_local(root.tag).lower(), "")
    if envelope.kind == "gateway":
        for part in root:
            if _local(part.tag).lower() == "cmmmsgheader":
                envelope.header = {_local(c.tag).lower(): (c.text or "").strip() for c in part}
    elif envelope.kind == "response":
        for part in root:
            name = _local(part.tag).lower()
            if name == "header":
                envelope.header = {_local(c.tag).lower(): (c.text or "").strip() for c in part}
            elif name == "body":
                for child in part:
                    child_name = _local(child.tag).lower()
                    if child_name == "items":
                        envelope.items = _items(child, fields)
                    else:
                        envelope.body[child_name] = (child.text or "").strip()
    return envelope


# --- JSON, whole -----------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


def _lower_keys(value: Any, what: str) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise ResponseFormatError(f"expected an object for {what}, got {type(value).__name__}")
    return {str(k).lower(): v for k, v in value.items()}


def _scalars(value: Any, what: str) -> dict[str, str]:
    return {k: _text(v).strip() for k, v in _lower_keys(value, what).items() if v is not None}


def _json_items(value: Any) -> list[dict[str, str]]:
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, dict):
        inner = _lower_keys(value, "items")
        if "item" not in inner:
            return []
        value = inner["item"]
        if value is None or value == "":
            return []
        if isinstance(value, dict):
            value = [value]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ResponseFormatError("items is neither an object nor a list of objects")
    return [{field_name(str(k)): _text(v) for k, v in item.items() if v is not None} for item in value]


def _parse_json(body: bytes) -> PageData:
    try:
        # Numbers are kept as the exact text sent, so "37.8175178800" keeps its digits.
        doc = json.loads(body, parse_int=str, parse_float=str)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResponseFormatError(f"unparsable or truncated JSON: {exc}") from None
    top = _lower_keys(doc, "the document")
    envelope = _Envelope()
    if "openapi_serviceresponse" in top:
        gateway = _lower_keys(top["openapi_serviceresponse"], "OpenAPI_ServiceResponse")
        envelope.kind = "gateway"
        envelope.header = _scalars(gateway.get("cmmmsgheader", gateway), "cmmMsgHeader")
    elif "response" in top or "header" in top:
        response = _lower_keys(top["response"], "response") if "response" in top else top
        envelope.kind = "response"
        envelope.header = _scalars(response.get("header"), "header")
        body_part = _lower_keys(response.get("body"), "body")
        envelope.items = _json_items(body_part.pop("items", None))
        envelope.body = {k: _text(v).strip() for k, v in body_part.items() if v is not None}
    elif "resultcode" in top:
        envelope.kind = "bare"
        envelope.header = _scalars(top, "the document")
    else:
        raise ResponseFormatError(f"an unknown JSON document (keys: {', '.join(sorted(top)[:5])})")
    return _page(envelope)
