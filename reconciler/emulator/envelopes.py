"""What the AED open API sends back, byte for byte: result pages and the error envelopes.

A normal answer is one line of UTF-8 XML, `<?xml ... standalone="yes"?><response>` with
`header/{resultCode, resultMsg}` and `body/{items, numOfRows, pageNo, totalCount}`; each
item's children come in ASCII alphabetical order, absent fields are left out, and `rnum`
is the item's 1-based position in the whole result (`aed-api-spec.md` §4). With `_type=json`
the same page is `{"response": {"header": …, "body": {"items": {"item": [...]}, …}}}`; a
page of one item holds `"item": {...}`, an empty page `"items": ""`. In JSON, record fields
stay strings (zipcodes and times keep their leading zeros); `rnum`, `numOfRows`, `pageNo`
and `totalCount` are numbers.

Errors come in three shapes (`aed-egen.md` §2.5): the gateway's
`OpenAPI_ServiceResponse/cmmMsgHeader` (quota, key; XML, or the same object in JSON), the
provider's normal envelope with a header only (resultCode 05), and, in JSON mode, a bare
`{"resultCode", "resultMsg"}` for parameter errors. All of them come with HTTP 200.

A `ResultSet` renders pages of one query's records. Rendering is the emulator's hot path
(a full pull is 82 pages of 1,000 items of ~40 fields), so each distinct field layout is
compiled once into a %-format string and a page is a string join.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from operator import itemgetter

Record = dict[str, str]
Shape = Callable[[int, Record], Record]  # (position in the result, stored record) -> item sent

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
XML_CONTENT_TYPE = "application/xml"
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
GATEWAY_CONTENT_TYPE = "text/xml;charset=UTF-8"
NORMAL_CODE, NORMAL_MESSAGE = "00", "NORMAL SERVICE."

# returnReasonCode -> returnAuthMsg, as data.go.kr names them.
GATEWAY_REASONS: dict[str, str] = {
    "05": "SERVICETIMEOUT_ERROR",
    "10": "INVALID_REQUEST_PARAMETER_ERROR",
    "11": "NO_MANDATORY_REQUEST_PARAMETERS_ERROR",
    "12": "NO_OPENAPI_SERVICE_ERROR",
    "22": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
    "30": "SERVICE_KEY_IS_NOT_REGISTERED_ERROR",
}

_XML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer; `delay` seconds pass before it is sent."""

    status: int
    content_type: str
    body: bytes
    delay: float = 0.0


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def gateway_error(code: str, *, as_json: bool) -> Reply:
    """The gateway's `OpenAPI_ServiceResponse` envelope (quota, key, unknown service)."""
    reason = GATEWAY_REASONS[code]
    if as_json:
        header = {"errMsg": "SERVICE ERROR", "returnAuthMsg": reason, "returnReasonCode": code}
        body = _json_bytes({"OpenAPI_ServiceResponse": {"cmmMsgHeader": header}})
        return Reply(200, JSON_CONTENT_TYPE, body)
    text = (
        "<OpenAPI_ServiceResponse>\n\t<cmmMsgHeader>\n\t\t<errMsg>SERVICE ERROR</errMsg>\n"
        f"\t\t<returnAuthMsg>{reason}</returnAuthMsg>\n\t\t<returnReasonCode>{code}</returnReasonCode>\n"
        "\t</cmmMsgHeader>\n</OpenAPI_ServiceResponse>"
    )
    return Reply(200, GATEWAY_CONTENT_TYPE, text.encode())


def parameter_error(code: str, *, as_json: bool) -> Reply:
    """A rejected parameter: the bare `{resultCode, resultMsg}` in JSON, the gateway envelope in XML."""
    if as_json:
        body = _json_bytes({"resultCode": code, "resultMsg": GATEWAY_REASONS[code]})
        return Reply(200, JSON_CONTENT_TYPE, body)
    return gateway_error(code, as_json=False)


def header_only(code: str, *, as_json: bool) -> Reply:
    """The provider's normal envelope with an error code and no body (e.g. 05, a timeout inside)."""
    message = GATEWAY_REASONS[code]
    if as_json:
        body = _json_bytes({"response": {"header": {"resultCode": code, "resultMsg": message}}})
        return Reply(200, JSON_CONTENT_TYPE, body)
    text = (
        f"{XML_DECLARATION}<response><header><resultCode>{code}</resultCode>"
        f"<resultMsg>{message}</resultMsg></header></response>"
    )
    return Reply(200, XML_CONTENT_TYPE, text.encode())


KEY_NOT_REGISTERED_99 = "SERVICE KEY IS NOT REGISTERED ERROR."


def key_not_registered_99(*, as_json: bool) -> Reply:
    """An unknown key answered with code 99 in the normal envelope, the name in words."""
    if as_json:
        body = _json_bytes({"response": {"header": {"resultCode": "99", "resultMsg": KEY_NOT_REGISTERED_99}}})
        return Reply(200, JSON_CONTENT_TYPE, body)
    text = (f"{XML_DECLARATION}<response><header><resultCode>99</resultCode>"
            f"<resultMsg>{KEY_NOT_REGISTERED_99}</resultMsg></header></response>")
    return Reply(200, XML_CONTENT_TYPE, text.encode())


def server_error() -> Reply:
    """What Apache in front of the provider sends when the back end fails."""
    text = (
        "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n"
        "<title>500 Internal Server Error</title>\n</head><body>\n<h1>Internal Server Error</h1>\n"
        "<p>The server encountered an internal error or misconfiguration and was unable to "
        "complete your request.</p>\n</body></html>\n"
    )
    return Reply(500, "text/html; charset=iso-8859-1", text.encode())


class _ItemTemplate:
    """How to write the items that share one field layout: %-formats and a getter.

    `%` with a tuple from `operator.itemgetter` is about three times faster than
    `str.format_map` (and than `json.dumps` of the dicts), and an item is written once per
    page it appears on.
    """

    __slots__ = ("get", "json_text", "split", "xml_text")

    def __init__(self, keys: tuple[str, ...]) -> None:
        names = sorted(k for k in keys if k != "rnum")  # the position replaces a stored rnum
        self.split = split = bisect_left(names, "rnum")
        tags = [f"<{n}>%s</{n}>" for n in (name.replace("%", "%%") for name in names)]
        self.xml_text = f"<item>{''.join(tags[:split])}<rnum>%d</rnum>{''.join(tags[split:])}</item>"
        members = [json.dumps(name).replace("%", "%%") + ":%s" for name in names]
        self.json_text = "{" + ",".join([*members[:split], '"rnum":%d', *members[split:]]) + "}"
        if len(names) > 1:
            self.get: Callable[[Record], tuple[str, ...]] = itemgetter(*names)
        else:
            self.get = lambda record: tuple(record[name] for name in names)

    def xml(self, record: Record, position: int) -> str:
        values = self.get(record)
        joined = "".join(values)
        if "&" in joined or "<" in joined or ">" in joined:
            values = tuple(v.translate(_XML_ESCAPES) for v in values)
        return self.xml_text % (*values[: self.split], position, *values[self.split:])

    def json(self, record: Record, position: int) -> str:
        values = tuple(map(encode_basestring, self.get(record)))
        return self.json_text % (*values[: self.split], position, *values[self.split:])


class ResultSet:
    """The records one query returns, in order, rendered a page at a time.

    `shape`, when given, turns the stored record at a position into the item the
    operation sends (e.g. the address-list operation's full address, the location
    operation's `distance`); it runs only for records on rendered pages.
    """

    def __init__(self, records: Sequence[Record], shape: Shape | None = None) -> None:
        self.records = records
        self.shape = shape
        self._templates: dict[tuple[str, ...], _ItemTemplate] = {}

    @property
    def total(self) -> int:
        return len(self.records)

    def _items(self, page: int, rows: int) -> tuple[int, list[Record]]:
        start = (page - 1) * rows
        chunk = self.records[start:start + rows] if start < len(self.records) else []
        if self.shape is not None:
            chunk = [self.shape(start + i, record) for i, record in enumerate(chunk)]
        return start, list(chunk)

    def _template(self, record: Record) -> _ItemTemplate:
        keys = tuple(record)
        template = self._templates.get(keys)
        if template is None:
            template = self._templates[keys] = _ItemTemplate(keys)
        return template

    def xml(self, page: int, rows: int) -> bytes:
        start, items = self._items(page, rows)
        parts = [
            f"{XML_DECLARATION}<response><header><resultCode>{NORMAL_CODE}</resultCode>"
            f"<resultMsg>{NORMAL_MESSAGE}</resultMsg></header><body>",
            "<items>" if items else "<items/>",
        ]
        for position, record in enumerate(items, start + 1):
            parts.append(self._template(record).xml(record, position))
        if items:
            parts.append("</items>")
        parts.append(
            f"<numOfRows>{rows}</numOfRows><pageNo>{page}</pageNo><totalCount>{self.total}</totalCount>"
            "</body></response>"
        )
        return "".join(parts).encode()

    def json(self, page: int, rows: int) -> bytes:
        start, items = self._items(page, rows)
        rendered = [self._template(r).json(r, position) for position, r in enumerate(items, start + 1)]
        if not rendered:
            items_json = '""'
        elif len(rendered) == 1:
            items_json = '{"item":' + rendered[0] + "}"
        else:
            items_json = '{"item":[' + ",".join(rendered) + "]}"
        text = (
            '{"response":{"header":{"resultCode":"' + NORMAL_CODE + '","resultMsg":"' + NORMAL_MESSAGE + '"},'
            '"body":{"items":' + items_json + f',"numOfRows":{rows},"pageNo":{page},"totalCount":{self.total}'
            "}}}"
        )
        return text.encode()
