"""Parsing a page of the AED open API: every envelope, every quirk, on literal bodies."""

from __future__ import annotations

import json

import pytest

from reconciler.drivers.aed.parsing import (
    CODES,
    FIELDS,
    ApiError,
    PageData,
    QuotaExceeded,
    ResponseFormatError,
    RetryClass,
    XmlPageParser,
    parse_page,
)
from reconciler.errors import SourceError

DECL = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
HEADER = b"<header><resultCode>00</resultCode><resultMsg>NORMAL SERVICE.</resultMsg></header>"
ITEM_1 = (
    "<item><buildAddress>서울특별시 종로구 대학로 101</buildAddress><buildPlace>1층 로비</buildPlace>"
    "<clerkTel>02-000-0000</clerkTel><manager>김**</manager><monEndTme>1800</monEndTme>"
    "<monSttTme>0900</monSttTme><rnum>1</rnum><serialSeq>030-130110-000001</serialSeq>"
    "<wgs84Lat>37.5796212000</wgs84Lat><wgs84Lon>126.9990000000</wgs84Lon>"
    "<zipcode1>030</zipcode1><zipcode2>04</zipcode2></item>"
).encode()
ITEM_2 = (
    "<item><buildAddress>서울특별시 종로구 율곡로 1</buildAddress><clerkTel>\u3000</clerkTel>"
    "<rnum>2</rnum><serialSeq>031-130110-000002</serialSeq><sunFrtYon>N</sunFrtYon></item>"
).encode()


def xml_page(
    items: bytes, *, page: int = 1, rows: int = 5, total: int = 486, header: bytes = HEADER
) -> bytes:
    body = f"<numOfRows>{rows}</numOfRows><pageNo>{page}</pageNo><totalCount>{total}</totalCount>".encode()
    return DECL + b"<response>" + header + b"<body>" + items + body + b"</body></response>"


def gateway_xml(code: str, auth: str) -> bytes:
    return (
        b"<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
        + f"<returnAuthMsg>{auth}</returnAuthMsg><returnReasonCode>{code}</returnReasonCode>".encode()
        + b"</cmmMsgHeader></OpenAPI_ServiceResponse>"
    )


def json_page(items: object, *, code: object = "00", total: object = 2) -> bytes:
    doc = {
        "response": {
            "header": {"resultCode": code, "resultMsg": "NORMAL SERVICE."},
            "body": {"items": items, "numOfRows": 10, "pageNo": 1, "totalCount": total},
        }
    }
    return json.dumps(doc, ensure_ascii=False).encode()


# --- the normal XML envelope -------------------------------------------------------------------


def test_single_line_xml_page_gives_header_counts_and_items_as_strings() -> None:
    page = parse_page(xml_page(b"<items>" + ITEM_1 + ITEM_2 + b"</items>", total=486), fmt="xml")
    assert (page.page_no, page.num_of_rows, page.total_count) == (1, 5, 486)
    assert [item["serialSeq"] for item in page.items] == ["030-130110-000001", "031-130110-000002"]
    first = page.items[0]
    assert first["zipcode1"] == "030" and first["zipcode2"] == "04" and first["monSttTme"] == "0900"
    assert first["wgs84Lat"] == "37.5796212000"
    assert first["buildAddress"] == "서울특별시 종로구 대학로 101"


def test_absent_elements_are_absent_and_odd_values_are_kept_exactly() -> None:
    page = parse_page(xml_page(b"<items>" + ITEM_1 + ITEM_2 + b"</items>"), fmt="xml")
    second = page.items[1]
    assert "satSttTme" not in second and "manager" not in second
    assert second["clerkTel"] == "\u3000"  # a full-width space, as op 2 sends it


def test_rnum_cnt_and_distance_are_kept_for_the_driver_to_ignore() -> None:
    item = b"<item><serialSeq>1</serialSeq><rnum>3376</rnum><cnt>7492</cnt><distance>0.1</distance></item>"
    (only,) = parse_page(xml_page(b"<items>" + item + b"</items>"), fmt="xml").items
    assert only == {"serialSeq": "1", "rnum": "3376", "cnt": "7492", "distance": "0.1"}


def test_a_single_item_is_a_one_item_tuple() -> None:
    page = parse_page(xml_page(b"<items>" + ITEM_1 + b"</items>", total=1), fmt="xml")
    assert isinstance(page.items, tuple) and len(page.items) == 1


@pytest.mark.parametrize("items", [b"<items/>", b"<items></items>", b""])
def test_empty_items_are_an_empty_tuple(items: bytes) -> None:
    assert parse_page(xml_page(items, total=0), fmt="xml").items == ()


def test_lower_case_element_names_map_to_camel_case_and_unknown_names_are_kept() -> None:
    item = b"<item><serialseq>7</serialseq><wgs84lon>127.1</wgs84lon><BUILDADDRESS>x</BUILDADDRESS>"
    item += b"<newField>n</newField></item>"
    (only,) = parse_page(xml_page(b"<items>" + item + b"</items>"), fmt="xml").items
    assert only == {"serialSeq": "7", "wgs84Lon": "127.1", "buildAddress": "x", "newField": "n"}


def test_fields_are_the_documented_camel_case_names() -> None:
    assert len(FIELDS) == len(set(FIELDS)) == 39
    assert {"serialSeq", "holEndTme", "sunFifYon", "wgs84Lon", "zipcode2"} <= set(FIELDS)


def test_pretty_printed_xml_with_a_bom_is_read_the_same() -> None:
    page = xml_page(b"<items>\n  " + ITEM_1 + b"\n</items>\n").replace(b"<body>", b"<body>\n")
    text = b"\xef\xbb\xbf\n  " + page
    assert parse_page(text, fmt="xml").items[0]["serialSeq"] == "030-130110-000001"


# --- result codes --------------------------------------------------------------------------------


def test_result_code_stays_the_string_00_and_other_codes_raise() -> None:
    with pytest.raises(ApiError) as caught:
        parse_page(xml_page(b"", header=HEADER.replace(b">00<", b">05<")), fmt="xml")
    err = caught.value
    assert err.code == "05" and err.code_name == "SERVICETIMEOUT_ERROR"
    assert err.retry_class is RetryClass.RETRY and err.retryable
    assert "05 SERVICETIMEOUT_ERROR" in str(err) and "NORMAL SERVICE." in str(err)


def test_a_json_result_code_sent_as_the_number_0_is_still_success() -> None:
    page = parse_page(json_page({"item": []}, code=0, total=0), fmt="json")
    assert page.total_count == 0 and page.items == ()


def test_code_table_matches_the_reference() -> None:
    assert sorted(CODES) == ["00", "01", "02", "03", "04", "05", "10", "11", "12", "20", "21", "22",
                             "30", "31", "32", "33", "99"]  # fmt: skip
    assert CODES["22"][1] is RetryClass.STOP and CODES["03"][1] is RetryClass.EMPTY
    assert CODES["21"][1] is RetryClass.RETRY and CODES["30"][1] is RetryClass.FAIL


def test_nodata_raises_with_the_empty_class_rather_than_returning_an_empty_page() -> None:
    header = b"<header><resultCode>03</resultCode><resultMsg>NODATA_ERROR</resultMsg></header>"
    with pytest.raises(ApiError) as caught:
        parse_page(xml_page(b"", header=header, total=0), fmt="xml")
    assert caught.value.retry_class is RetryClass.EMPTY and not caught.value.retryable


def test_unknown_error_is_retried_once_at_most() -> None:
    assert ApiError("99").retry_limit == 1
    assert ApiError("77").retry_class is RetryClass.RETRY and ApiError("77").retry_limit == 1
    assert ApiError("01").retry_limit is None


# --- the gateway envelope and bare JSON --------------------------------------------------------


def test_gateway_xml_quota_error_is_quota_exceeded() -> None:
    with pytest.raises(QuotaExceeded) as caught:
        parse_page(gateway_xml("22", "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR"), fmt="xml")
    err = caught.value
    assert err.code == "22" and err.retry_class is RetryClass.STOP
    assert "22 LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR" in str(err) and "SERVICE ERROR" in str(err)


def test_gateway_xml_unregistered_key_fails() -> None:
    with pytest.raises(ApiError) as caught:
        parse_page(gateway_xml("30", "SERVICE_KEY_IS_NOT_REGISTERED_ERROR"), fmt="xml")
    assert not isinstance(caught.value, QuotaExceeded)
    assert caught.value.retry_class is RetryClass.FAIL and not caught.value.retryable
    assert "hour" in str(caught.value)


def test_gateway_json_quota_error_is_quota_exceeded() -> None:
    doc = {"OpenAPI_ServiceResponse": {"cmmMsgHeader": {
        "errMsg": "SERVICE ERROR", "returnAuthMsg": "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR",
        "returnReasonCode": "22"}}}  # fmt: skip
    with pytest.raises(QuotaExceeded):
        parse_page(json.dumps(doc).encode(), fmt="json")


def test_gateway_json_without_a_code_is_classified_by_its_message() -> None:
    header = {"returnAuthMsg": "SERVICE_KEY_IS_NOT_REGISTERED_ERROR"}
    doc = {"OpenAPI_ServiceResponse": {"cmmMsgHeader": header}}
    with pytest.raises(ApiError) as caught:
        parse_page(json.dumps(doc).encode(), fmt="json")
    assert caught.value.code == "30"


def test_bare_json_result_code_raises_its_class() -> None:
    with pytest.raises(ApiError) as caught:
        parse_page(b'{"resultCode": "10", "resultMsg": "INVALID_REQUEST_PARAMETER_ERROR"}', fmt="json")
    assert caught.value.code == "10" and caught.value.retry_class is RetryClass.FAIL


def test_json_answer_to_an_xml_request_is_read_as_json() -> None:
    with pytest.raises(QuotaExceeded):
        parse_page(b'  {"resultCode": "22", "resultMsg": "LIMITED"}', fmt="xml")


def test_xml_answer_to_a_json_request_is_read_as_xml() -> None:
    with pytest.raises(ApiError) as caught:
        parse_page(gateway_xml("31", "DEADLINE_HAS_EXPIRED_ERROR"), fmt="json")
    assert caught.value.code == "31"


# --- JSON pages ------------------------------------------------------------------------------


def test_json_items_as_a_list() -> None:
    items = {"item": [{"serialSeq": "a", "zipcode1": "030"}, {"serialSeq": "b", "rnum": 2}]}
    page = parse_page(json_page(items), fmt="json")
    expected = ({"serialSeq": "a", "zipcode1": "030"}, {"serialSeq": "b", "rnum": "2"})
    assert page == PageData(1, 10, 2, expected)


def test_json_single_item_as_an_object() -> None:
    body = json_page({"item": {"serialseq": "a", "wgs84lat": 0}}, total=1)
    body = body.replace(b'"wgs84lat": 0', b'"wgs84lat": 37.5796212000')
    page = parse_page(body, fmt="json")
    # JSON numbers keep the text they were sent as: no float round trip, no lost zeros.
    assert page.items == ({"serialSeq": "a", "wgs84Lat": "37.5796212000"},)


@pytest.mark.parametrize("items", ["", None, [], {}, {"item": ""}, {"item": []}])
def test_json_empty_items_shapes_are_empty(items: object) -> None:
    assert parse_page(json_page(items, total=0), fmt="json").items == ()


def test_json_nulls_are_absent() -> None:
    page = parse_page(json_page({"item": [{"serialSeq": "a", "manager": None}]}, total=1), fmt="json")
    assert page.items == ({"serialSeq": "a"},)


# --- broken bodies -----------------------------------------------------------------------------


def test_truncated_xml_is_a_retryable_format_error() -> None:
    whole = xml_page(b"<items>" + ITEM_1 + ITEM_2 + b"</items>")
    with pytest.raises(ResponseFormatError) as caught:
        parse_page(whole[: len(whole) // 2], fmt="xml")
    assert caught.value.retryable and isinstance(caught.value, SourceError)
    assert "truncated" in str(caught.value)


def test_truncated_json_is_a_format_error() -> None:
    whole = json_page({"item": [{"serialSeq": "a"}]})
    with pytest.raises(ResponseFormatError):
        parse_page(whole[:-5], fmt="json")


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"<html><body>Bad Gateway</body></html>", b"Internal Server Error", b"[1, 2]",
     b'{"other": 1}', b"<response><header><resultCode>00</resultCode></header></response>"],
)  # fmt: skip
def test_unknown_or_incomplete_documents_are_format_errors(body: bytes) -> None:
    with pytest.raises(ResponseFormatError):
        parse_page(body, fmt="xml")


def test_a_page_without_a_total_count_is_a_format_error() -> None:
    body = DECL + b"<response>" + HEADER + b"<body><items/><numOfRows>5</numOfRows><pageNo>1</pageNo></body>"
    with pytest.raises(ResponseFormatError, match="totalCount"):
        parse_page(body + b"</response>", fmt="xml")


# --- streaming --------------------------------------------------------------------------------


def test_streaming_parser_gives_the_same_page_for_any_chunking() -> None:
    whole = xml_page(b"<items>" + ITEM_1 + ITEM_2 + b"</items>")
    expected = parse_page(whole, fmt="xml")
    for size in (1, 3, 7, 64, 1000):
        parser = XmlPageParser()
        for start in range(0, len(whole), size):
            parser.feed(whole[start : start + size])
        assert parser.close() == expected


def test_streaming_parser_fails_fast_on_bytes_that_cannot_be_xml() -> None:
    parser = XmlPageParser()
    with pytest.raises(ResponseFormatError):
        parser.feed(b"<response><header></response>")
    with pytest.raises(ResponseFormatError):
        parser.close()


def test_streaming_parser_buffers_a_json_body_split_across_chunks() -> None:
    body = json_page({"item": [{"serialSeq": "a"}]}, total=1)
    parser = XmlPageParser()
    for start in range(0, len(body), 5):
        parser.feed(body[start : start + 5])
    assert parser.close().items == ({"serialSeq": "a"},)
