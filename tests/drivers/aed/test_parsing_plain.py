"""The plain-shape reading of XML pages (regular expressions) gives what the element tree gives.

`XmlPageParser` reads a page of the usual shape with regular expressions and anything else
with `xml.etree.ElementTree`; these tests hold the two to the same result, item by item and
key order included, on every shape that could tell them apart."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from reconciler.drivers.aed import parsing
from reconciler.drivers.aed.parsing import PageData, XmlPageParser


def by_tree(body: bytes, fields: frozenset[str] | None = None) -> PageData:
    """The reference: the whole document as an element tree."""
    envelope = parsing._envelope_of(ET.fromstring(body), fields)
    return parsing._page(envelope)


def by_parser(body: bytes, fields: frozenset[str] | None = None, chunk: int = 7) -> PageData:
    parser = XmlPageParser(fields=fields)
    for start in range(0, len(body), chunk):
        parser.feed(body[start:start + chunk])
    return parser.close()


def page(items: str, *, head: str = '<?xml version="1.0" encoding="UTF-8"?>',
         total: int | None = None) -> bytes:
    count = items.count("<item>") if total is None else total
    return (f"{head}<response><header><resultCode>00</resultCode><resultMsg>NORMAL SERVICE.</resultMsg>"
            f"</header><body><items>{items}</items><numOfRows>10</numOfRows><pageNo>1</pageNo>"
            f"<totalCount>{count}</totalCount></body></response>").encode()


def same(body: bytes, fields: frozenset[str] | None = None) -> PageData:
    got, want = by_parser(body, fields), by_tree(body, fields)
    assert got == want
    assert [list(item.items()) for item in got.items] == [list(item.items()) for item in want.items]
    return got


ITEM = ("<item><buildAddress>문화대로 259</buildAddress><gugun>용산구</gugun><rnum>1</rnum>"
        "<serialSeq>017-110517-001778</serialSeq><sido>서울특별시</sido><zipcode1>017</zipcode1></item>")
SHORT = "<item><gugun>중구</gugun><rnum>2</rnum><serialSeq>A-2</serialSeq></item>"


@pytest.mark.parametrize("items", [
    ITEM * 3,
    ITEM + SHORT + ITEM + SHORT,  # absent fields stay absent
    SHORT + ITEM,  # the order is learnt from a short item first
    "<item><sido>부산</sido><gugun>중구</gugun><serialSeq>B</serialSeq></item>" + ITEM,  # another order
    "<item><org></org><serialSeq>E</serialSeq></item>",  # an empty element is ""
    "<item><org/><serialSeq>E</serialSeq><model /></item>",  # so is a self-closing one
    "<item><org>A&amp;B &lt;1&gt; &#48;&#x41; &quot;&apos;</org><serialSeq>R</serialSeq></item>",
    "<item><org>  spaced  </org><serialSeq> S </serialSeq></item>",  # text kept as sent
    "\n  <item>\n    <org>x</org>\n    <serialSeq>W</serialSeq>\n  </item>\n",  # indented
    "<item><org>first</org><org>second</org><serialSeq>D</serialSeq></item>",  # the last one wins
    "<item><SERIALSEQ>L</SERIALSEQ><Sido>서울</Sido><customField>c</customField></item>",  # any case
    "<item><serialSeq>a</serialSeq><serialseq>b</serialseq></item>",  # two spellings of one field
    "<item><item>nested</item><serialSeq>N</serialSeq></item>",  # a field called item
    '<item><org a="1">attr</org><serialSeq>T</serialSeq></item>',  # attributes
    "<item><!-- c --><org>x</org><serialSeq>C</serialSeq></item>",  # a comment
    "<item><org><![CDATA[<b>&]]></org><serialSeq>C</serialSeq></item>",  # CDATA
    "<item><org>1 > 0</org><serialSeq>G</serialSeq></item>",  # a bare >
    "<item><org>line\r\nbreak\rhere</org><serialSeq>N</serialSeq></item>",  # newlines normalised
    "<item></item>" + ITEM,  # an empty item
    "",  # no items
])
def test_the_plain_reading_gives_what_the_element_tree_gives(items: str) -> None:
    same(page(items))


@pytest.mark.parametrize(("items", "plain"), [
    (ITEM * 3, True), (SHORT + ITEM + SHORT, True), ("<item><org/><serialSeq>E</serialSeq></item>", True),
    ("<item><org>A&amp;B</org></item>", True), ("\n <item>\n <org>x</org>\n </item>\n", True), ("", True),
    ('<item><org a="1">x</org></item>', False), ("<item><!-- c --></item>", False),
    ("<item><org><![CDATA[x]]></org></item>", False), ("<item><org>a\r\nb</org></item>", False),
    ("<item><item>x</item></item>", False), ("<other></other>", False),
])
def test_which_pages_are_read_plainly(items: str, plain: bool) -> None:
    assert (parsing._plain_envelope(page(items), None) is not None) is plain


def test_fields_not_kept_are_left_out_in_either_reading() -> None:
    fields = frozenset({"serialSeq", "sido"})
    got = same(page(ITEM + SHORT + ITEM), fields)
    assert got.items[0] == {"serialSeq": "017-110517-001778", "sido": "서울특별시"}
    assert got.items[1] == {"serialSeq": "A-2"}
    same(page("<item><org/><rnum>1</rnum><serialSeq>E</serialSeq></item>"), fields)


def test_other_documents_take_the_element_tree() -> None:
    latin = "<item><org>Caf\u00e9</org><serialSeq>L1</serialSeq></item>"
    got = same(page(latin, head='<?xml version="1.0" encoding="ISO-8859-1"?>').replace(  # another encoding
        "Caf\u00e9".encode(), "Caf\u00e9".encode("latin-1")))
    assert got.items[0]["org"] == "Caf\u00e9"
    same(page(ITEM, head='<?xml version="1.0"?><!DOCTYPE response [<!ENTITY x "ex">]>').replace(
        b"<org>", b"<org>&x;"))
    same(b'<response xmlns="urn:x"><header><resultCode>00</resultCode></header><body><items>'
         + ITEM.encode() + b"</items><numOfRows>10</numOfRows><pageNo>1</pageNo><totalCount>1</totalCount>"
         b"</body></response>")  # a default namespace
    same(page(ITEM).replace(b"<items>", b"<items>" + ITEM.replace("<item>", "<other>")
                            .replace("</item>", "</other>").encode(), 1))  # a stray element


def test_items_elsewhere_in_the_document_are_not_taken_for_the_page() -> None:
    body = (b"<response><header><resultCode>00</resultCode><resultMsg><![CDATA[<items>]]></resultMsg>"
            b"</header><body><items>" + ITEM.encode() + b"</items><numOfRows>10</numOfRows><pageNo>1</pageNo>"
            b"<totalCount>1</totalCount></body></response>")
    assert same(body).items[0]["serialSeq"] == "017-110517-001778"


def test_the_plain_reading_is_the_one_used_for_the_usual_page(monkeypatch: pytest.MonkeyPatch) -> None:
    # The emulator's shape is read without building the element tree of the items.
    built: list[bytes] = []
    real = ET.fromstring

    def spy(text: bytes | str, parser: ET.XMLParser | None = None) -> ET.Element:
        built.append(text if isinstance(text, bytes) else text.encode())
        return real(text, parser)

    monkeypatch.setattr(ET, "fromstring", spy)
    body = page(ITEM * 50)
    assert by_parser(body, chunk=4096) == by_tree(body)
    assert built and all(b"<serialSeq>" not in text for text in built[:1])


# --- well-formedness: the plain reading refuses exactly what expat refuses ---------------------
#
# The plain reading checks the items region itself (expat sees only the envelope around it),
# so every document is fuzzed here against the reference: a document the element tree
# cannot parse must be refused as a `ResponseFormatError`, any other must give the element
# tree's page (or its error), whatever was inserted where, and however the body is chunked.
# The early expat check of the first bytes is turned off (`no_early_check`): these pages
# are smaller than it, and it would hide what the plain reading lets through.

from typing import Any  # noqa: E402
from unittest import mock  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reconciler.drivers.aed.parsing import ResponseFormatError  # noqa: E402
from reconciler.errors import SourceError  # noqa: E402

TROUBLE = [
    "\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1c", "\x1f", "\x7f", "\x85", "\u00a0", "\u2028",
    "\ufffe", "\uffff", "\r", "\t", "\n", "]]>", "]]", "&", "& ", "&amp;", "&lt;", "&#65;", "&#x41;",
    "&#0;", "&#x1;", "&#xD800;", "&#1114112;", "&#xFFFE;", "&foo;", "&amp", "&#;", "<", ">", "/>",
    "</item>", "<item>", "<item/>", "<org>", "</org>", "<é>x</é>", "<a:b>x</a:b>", "<a.b-c_d>x</a.b-c_d>",
    "<1a>x</1a>", "<-a>x</-a>", "<a\u00b7b>x</a\u00b7b>", "<!---->", "<?pi x?>", "<![CDATA[x]]>",
    '"', "'", "é", "한", "\U0001f600", "<x/>", "<x />", "<x></x>", "<items>", "</items>",
    "<a\u00b2>x</a\u00b2>", "<\u00aa>x</\u00aa>", "<x\u00a0/>", "<x\x85/>", "<x\u2028/>", "<x\t/>",
]
BASE = page(ITEM * 2 + SHORT + "<item><org>A&amp;B</org><serialSeq>R</serialSeq></item>").decode()
# Where an insertion keeps the page's shape most often: between two tags.
BOUNDARIES = [index + 1 for index, char in enumerate(BASE) if char == ">"]


def no_early_check() -> Any:
    return mock.patch.object(parsing, "_EARLY_CHECK", 0)


def outcome(run: object) -> object:
    try:
        return run()  # type: ignore[operator]
    except SourceError as exc:
        return type(exc).__name__


def reference(body: bytes) -> object:
    # Leading white space (and a BOM) before the document is let through on purpose.
    body = body.removeprefix(b"\xef\xbb\xbf").lstrip()
    try:
        ET.fromstring(body)
    except ET.ParseError:
        return "ResponseFormatError"
    return outcome(lambda: by_tree(body))


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(st.integers(0, len(BASE)) | st.sampled_from(BOUNDARIES), st.sampled_from(TROUBLE)),
                min_size=1, max_size=3),
       st.sampled_from([1, 7, 4096, 1 << 20]))
def test_anything_inserted_anywhere_is_read_as_the_element_tree_reads_it(
        inserts: list[tuple[int, str]], chunk: int) -> None:
    text = BASE
    for position, piece in sorted(inserts, reverse=True):
        text = text[:position] + piece + text[position:]
    body = text.encode("utf-8")
    with no_early_check():
        assert outcome(lambda: by_parser(body, chunk=chunk)) == reference(body)
    assert outcome(lambda: by_parser(body, chunk=chunk)) == reference(body)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.integers(0, len(BASE.encode()) - 1), st.sampled_from([b"", b"\xff", b"\xc3", b"\xed\xa0\x80"]))
def test_a_body_cut_or_broken_anywhere_is_refused_as_the_element_tree_refuses_it(
        cut: int, tail: bytes) -> None:
    body = BASE.encode()[:cut] + tail
    with no_early_check():
        assert outcome(lambda: by_parser(body, chunk=4096)) == reference(body)
    assert outcome(lambda: by_parser(body, chunk=4096)) == reference(body)
    whole = BASE.encode()
    spoilt = whole[:cut] + tail + whole[cut:]
    with no_early_check():
        assert outcome(lambda: by_parser(spoilt, chunk=4096)) == reference(spoilt)


def test_a_long_page_broken_after_the_early_check_is_refused() -> None:
    body = page(ITEM * 200 + "<item><org>\x01</org></item>")
    assert len(body) > 2 * parsing._EARLY_CHECK
    with pytest.raises(ResponseFormatError, match=r"malformed|truncated|not well-formed|invalid token"):
        by_parser(body, chunk=4096)
