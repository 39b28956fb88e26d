"""The AED open API emulator: its data set, its bytes on the wire, and each fault it injects.

Every request is real HTTP against an `EgenEmulator` on a free port (standard library
client, so that the exact headers and bytes are visible).
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from reconciler.drivers.aed import regions
from reconciler.emulator import dataset
from reconciler.emulator.egen import EgenEmulator, Faults, PageFault, PageFaultKind

COUNT = 2345
SERIAL = re.compile(r"^(\d{3})-(\d{6})-(\d{6})$")
DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><response>'


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def xml(self) -> ET.Element:
        return ET.fromstring(self.body)

    def json(self) -> Any:
        return json.loads(self.body)

    def items(self) -> list[dict[str, str]]:
        return [{child.tag: child.text or "" for child in item} for item in self.xml().iter("item")]


def get(base_url: str, operation: str = "getAedFullDown", **params: Any) -> Answer:
    params.setdefault("serviceKey", "test-key")
    params = {k: v for k, v in params.items() if v is not None}
    url = urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.request("GET", f"{url.path}/{operation}?{urlencode(params)}")
        response = conn.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def gateway_code(answer: Answer) -> str | None:
    root = answer.xml()
    return root.findtext("cmmMsgHeader/returnReasonCode") if root.tag == "OpenAPI_ServiceResponse" else None


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with EgenEmulator(count=COUNT) as url:
        yield url


@pytest.fixture(scope="module")
def records() -> list[dict[str, str]]:
    return dataset.generate(COUNT)


@pytest.fixture
def emulator() -> Iterator[EgenEmulator]:
    emulator = EgenEmulator(count=300)
    emulator.start()
    yield emulator
    emulator.stop()


# --- regions ---------------------------------------------------------------------------------


def test_regions_name_all_seventeen_sido_both_ways() -> None:
    assert len(regions.SIDO_SHORT_TO_LONG) == 17
    for short, long in regions.SIDO_SHORT_TO_LONG.items():
        assert regions.SIDO_LONG_TO_SHORT[long] == short
        assert regions.short_sido(long) == short and regions.long_sido(short) == long
    assert set(regions.GUGUN) == set(regions.SIDO_BOUNDS) == set(regions.SIDO_SHORT_TO_LONG)


def test_former_sido_names_map_to_the_current_ones() -> None:
    assert regions.short_sido("강원도") == "강원" and regions.long_sido("강원도") == "강원특별자치도"
    assert regions.short_sido(" 전라북도 ") == "전북" and regions.long_sido("전라북도") == "전북특별자치도"
    assert regions.short_sido("뉴욕") is None and regions.long_sido("") is None


def test_gugun_lists_are_the_real_districts() -> None:
    counts = {short: len(names) for short, names in regions.GUGUN.items()}
    assert counts["서울"] == 25 and counts["경기"] == 31 and counts["부산"] == 16 and counts["대구"] == 9
    assert regions.GUGUN["세종"] == ("세종시",)
    assert sum(counts.values()) == 229
    assert all(len(set(names)) == len(names) for names in regions.GUGUN.values())


def test_gugun_belongs_to_its_sido_given_in_any_form() -> None:
    assert regions.gugun_belongs("서울특별시", "종로구") and regions.gugun_belongs("서울", "종로구")
    assert regions.gugun_belongs("강원도", "강릉시") and regions.gugun_belongs("경기도", "수원시 장안구")
    assert regions.gugun_belongs("대구광역시", "군위군") and regions.gugun_belongs("경북", "군위군")
    assert regions.gugun_belongs("세종특별자치시", "세종시")
    assert not regions.gugun_belongs("서울특별시", "수원시")
    assert not regions.gugun_belongs("경기도", "수원시 분당구")
    assert not regions.gugun_belongs("없는도", "종로구")


def test_sido_bounds_lie_inside_korea() -> None:
    for lat_min, lat_max, lon_min, lon_max in regions.SIDO_BOUNDS.values():
        assert 33.0 <= lat_min < lat_max <= 38.7 and 124.5 <= lon_min < lon_max <= 132.0


# --- the data set ----------------------------------------------------------------------------


def test_same_seed_gives_the_same_records_and_another_seed_others() -> None:
    assert dataset.generate(500) == dataset.generate(500)
    assert dataset.generate(500, seed=1) != dataset.generate(500)
    assert dataset.generate(500) == dataset.generate(COUNT)[:500]


def test_full_registry_generates_with_unique_serials() -> None:
    # How fast it generates is measured by bench/aed.py, not asserted on a busy machine.
    items = dataset.generate()
    assert len(items) == 81464
    assert len({item["serialSeq"] for item in items}) == 81464


def test_serials_are_nnn_yymmdd_nnnnnn_starting_with_zipcode1(records: list[dict[str, str]]) -> None:
    for record in records:
        match = SERIAL.match(record["serialSeq"])
        assert match, record["serialSeq"]
        assert match.group(1) == record["zipcode1"]
        datetime.strptime(match.group(2), "%y%m%d")
        assert re.fullmatch(r"\d{3}", record["zipcode1"]) and re.fullmatch(r"\d{2}", record["zipcode2"])


def test_every_gugun_belongs_to_its_sido_given_by_long_name(records: list[dict[str, str]]) -> None:
    for record in records:
        assert record["sido"] in regions.SIDO_LONG_TO_SHORT
        assert regions.long_sido(record["sido"]) == record["sido"]
        assert regions.gugun_belongs(record["sido"], record["gugun"]), record
    assert len({r["sido"] for r in records}) == 17


def test_coordinates_lie_inside_the_sido_bounds(records: list[dict[str, str]]) -> None:
    long_decimals = 0
    for record in records:
        lat_min, lat_max, lon_min, lon_max = regions.SIDO_BOUNDS[regions.short_sido(record["sido"]) or ""]
        assert lat_min <= float(record["wgs84Lat"]) <= lat_max
        assert lon_min <= float(record["wgs84Lon"]) <= lon_max
        long_decimals += len(record["wgs84Lat"].split(".")[1]) >= 14
    assert long_decimals > len(records) / 3  # float artefacts, as in the full download


def test_managers_and_their_phones_are_masked(records: list[dict[str, str]]) -> None:
    for record in records:
        assert re.fullmatch(r"[가-힣]\*\*", record["manager"])
        assert re.fullmatch(r"\d{3}\*{8}|\d{2,3}-\*{6,7}", record["managerTel"]), record["managerTel"]
        assert re.fullmatch(r"\d{2,3}-\d{3,4}-\d{4}|-", record["clerkTel"]), record["clerkTel"]


def test_weekend_times_are_absent_for_about_forty_percent(records: list[dict[str, str]]) -> None:
    weekend = [f"{d}{e}" for d in ("sat", "sun", "hol") for e in ("SttTme", "EndTme")]
    absent = [r for r in records if "satSttTme" not in r]
    assert 0.33 < len(absent) / len(records) < 0.47
    for record in absent:
        assert not any(name in record for name in weekend)
        assert all(record[flag] == "N" for flag in dataset.SUNDAY_FLAGS)
    weekdays = [f"{d}{e}" for d in dataset.WEEKDAYS for e in ("SttTme", "EndTme")]
    for record in records:
        assert all(re.fullmatch(r"\d{4}", record[name]) for name in weekdays)


def test_records_have_no_rnum_and_no_empty_values(records: list[dict[str, str]]) -> None:
    assert all("rnum" not in r and all(v != "" for v in r.values()) for r in records)


def test_addresses_lack_the_sido_prefix_except_in_sejong(records: list[dict[str, str]]) -> None:
    for record in records:
        starts_with_sido = regions.short_sido(record["buildAddress"].split(" ")[0]) is not None
        assert starts_with_sido == (record["sido"] == "세종특별자치시"), record["buildAddress"]


def test_a_little_realistic_mess_is_planted() -> None:
    items = dataset.generate(20000)
    spaced = sum(r["org"] != r["org"].strip() or r["buildPlace"] != r["buildPlace"].strip() for r in items)
    fields = ("model", "mfg", "buildPlace")
    placeholders = sum(any(r[f] in dataset.PLACEHOLDERS for f in fields) for r in items)
    assert 0.01 < spaced / len(items) < 0.03
    assert 0.005 < placeholders / len(items) < 0.015


def test_mutate_changes_removes_and_adds_the_stated_shares(records: list[dict[str, str]]) -> None:
    after = dataset.mutate(records, 0.2, seed=7)
    assert after == dataset.mutate(records, 0.2, seed=7)
    before_by_serial = {r["serialSeq"]: r for r in records}
    after_by_serial = {r["serialSeq"]: r for r in after}
    assert len(after_by_serial) == len(after)
    removed = before_by_serial.keys() - after_by_serial.keys()
    added = after_by_serial.keys() - before_by_serial.keys()
    changed = [s for s in before_by_serial.keys() & after_by_serial.keys()
               if before_by_serial[s] != after_by_serial[s]]
    assert len(changed) == round(COUNT * 0.2)
    assert len(removed) == len(added) == round(COUNT * 0.05)
    for serial in changed:
        old, new = before_by_serial[serial], after_by_serial[serial]
        assert (old["sido"], old["gugun"], old["zipcode1"]) == (new["sido"], new["gugun"], new["zipcode1"])
    for serial in added:
        assert SERIAL.match(serial) and regions.gugun_belongs(after_by_serial[serial]["sido"],
                                                              after_by_serial[serial]["gugun"])


def test_dirty_plants_each_kind_of_problem_in_turn(records: list[dict[str, str]]) -> None:
    spoiled = dataset.dirty(records, 0.06, seed=3)
    bad = [new for old, new in zip(records, spoiled, strict=True) if old != new]
    assert len(bad) == round(COUNT * 0.06)
    kinds: Counter[str] = Counter()
    for record in bad:
        lat, lon = record.get("wgs84Lat", ""), record.get("wgs84Lon", "")
        if "serialSeq" not in record:
            kinds["missing-serial"] += 1
        elif lat == "미상":
            kinds["bad-latitude"] += 1
        elif lat == lon == "0":
            kinds["zero-coordinates"] += 1
        elif not (33.0 <= float(lat) <= 38.7 and 124.5 <= float(lon) <= 132.0):
            kinds["outside-korea"] += 1
        elif len(record["org"]) > 100:
            kinds["long-org"] += 1
        elif not regions.gugun_belongs(record["sido"], record["gugun"]):
            kinds["foreign-gugun"] += 1
    assert sum(kinds.values()) == len(bad)
    assert set(kinds) == set(dataset.DIRTY_KINDS)
    assert max(kinds.values()) - min(kinds.values()) <= 1


# --- the XML answer --------------------------------------------------------------------------


def test_xml_page_is_one_line_with_exact_headers(base_url: str) -> None:
    answer = get(base_url, pageNo=2, numOfRows=7)
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/xml"
    assert int(answer.headers["Content-Length"]) == len(answer.body)
    assert answer.body.startswith(DECLARATION)
    assert answer.body.endswith(b"</totalCount></body></response>")
    assert b"\n" not in answer.body and b"> <" not in answer.body
    assert re.search(
        rb"<response><header><resultCode>00</resultCode><resultMsg>NORMAL SERVICE\.</resultMsg></header>"
        rb"<body><items>(<item>.*?</item>){7}</items><numOfRows>7</numOfRows><pageNo>2</pageNo>"
        rb"<totalCount>2345</totalCount></body></response>$",
        answer.body,
    )


def test_item_children_are_alphabetical_and_rnum_counts_the_whole_result(
    base_url: str, records: list[dict[str, str]]
) -> None:
    items = get(base_url, pageNo=3, numOfRows=50).xml().findall("body/items/item")
    assert [int(item.findtext("rnum") or 0) for item in items] == list(range(101, 151))
    for item, record in zip(items, records[100:150], strict=True):
        tags = [child.tag for child in item]
        assert tags == sorted(tags) and tags[0] == "buildAddress" and tags[-1] == "zipcode2"
        assert {child.tag: child.text for child in item if child.tag != "rnum"} == record


def test_absent_fields_are_omitted_not_sent_empty(base_url: str) -> None:
    body = get(base_url, numOfRows=200).body
    assert b"<satSttTme>" in body and b"<satSttTme></satSttTme>" not in body and b"/>" not in body
    items = ET.fromstring(body).findall("body/items/item")
    assert any(item.find("satSttTme") is None for item in items)


def test_defaults_are_page_one_of_ten_rows(base_url: str) -> None:
    root = get(base_url).xml()
    assert (root.findtext("body/numOfRows"), root.findtext("body/pageNo")) == ("10", "1")
    assert len(root.findall("body/items/item")) == 10


def test_paging_returns_every_record_exactly_once(base_url: str, records: list[dict[str, str]]) -> None:
    serials: list[str] = []
    page = 1
    while True:
        items = get(base_url, pageNo=page, numOfRows=100).items()
        if not items:
            break
        serials += [item["serialSeq"] for item in items]
        page += 1
    assert page == 25  # 24 pages of up to 100
    assert len(serials) == len(set(serials)) == COUNT
    assert serials == [r["serialSeq"] for r in records]


def test_a_page_past_the_end_has_empty_items_and_the_total(base_url: str) -> None:
    answer = get(base_url, pageNo=99, numOfRows=100)
    tail = b"<items/><numOfRows>100</numOfRows><pageNo>99</pageNo><totalCount>2345</totalCount>"
    assert tail in answer.body


def test_same_seed_serves_the_same_bytes() -> None:
    with EgenEmulator(count=400) as first, EgenEmulator(count=400) as second:
        assert get(first, pageNo=2, numOfRows=150).body == get(second, pageNo=2, numOfRows=150).body


def test_full_pull_of_82_pages_of_1000_rows() -> None:
    # The speed of a full pull is measured by bench/aed.py, not asserted here.
    emulator = EgenEmulator()
    url = urlsplit(emulator.start())
    try:
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        sizes = []
        for page in range(1, 83):
            conn.request("GET", f"{url.path}/getAedFullDown?serviceKey=k&pageNo={page}&numOfRows=1000")
            sizes.append(len(conn.getresponse().read()))
        conn.close()
    finally:
        emulator.stop()
    assert len(sizes) == 82 and sizes[-1] < sizes[0]


# --- the JSON answer -------------------------------------------------------------------------


def test_json_page_nests_a_list_of_items(base_url: str, records: list[dict[str, str]]) -> None:
    answer = get(base_url, pageNo=1, numOfRows=3, _type="json")
    assert answer.headers["Content-Type"] == "application/json;charset=UTF-8"
    document = answer.json()
    assert document["response"]["header"] == {"resultCode": "00", "resultMsg": "NORMAL SERVICE."}
    body = document["response"]["body"]
    assert (body["numOfRows"], body["pageNo"], body["totalCount"]) == (3, 1, COUNT)
    assert [item["rnum"] for item in body["items"]["item"]] == [1, 2, 3]
    assert {k: v for k, v in body["items"]["item"][0].items() if k != "rnum"} == records[0]


def test_json_single_item_is_an_object(base_url: str) -> None:
    body = get(base_url, pageNo=5, numOfRows=1, _type="json").json()["response"]["body"]
    assert isinstance(body["items"]["item"], dict) and body["items"]["item"]["rnum"] == 5


def test_json_empty_items_are_an_empty_string(base_url: str) -> None:
    body = get(base_url, pageNo=999, numOfRows=10, _type="json").json()["response"]["body"]
    assert body["items"] == "" and body["totalCount"] == COUNT


# --- the other two operations ----------------------------------------------------------------


def test_address_list_filters_by_sido_and_gugun_and_sends_full_addresses(
    base_url: str, records: list[dict[str, str]]
) -> None:
    expected = [r for r in records if r["sido"] == "서울특별시" and r["gugun"] == "종로구"]
    answer = get(base_url, "getEgytAedManageInfoInqire", Q0="서울특별시", Q1="종로구", numOfRows=1000)
    items = answer.items()
    assert answer.xml().findtext("body/totalCount") == str(len(expected)) and expected
    assert [i["serialSeq"] for i in items] == [r["serialSeq"] for r in expected]
    assert all(i["buildAddress"].startswith("서울특별시 종로구 ") for i in items)
    assert all("sido" not in i and "gugun" not in i for i in items)
    short = get(base_url, "getEgytAedManageInfoInqire", Q0="서울", Q1="종로", numOfRows=1000).items()
    assert [i["serialSeq"] for i in short] == [r["serialSeq"] for r in expected]


def test_location_list_is_nearest_first_and_needs_coordinates(base_url: str) -> None:
    items = get(base_url, "getAedLcinfoInqire", WGS84_LAT=37.5665, WGS84_LON=126.978, numOfRows=20).items()
    distances = [float(i["distance"]) for i in items]
    assert distances == sorted(distances) and distances[0] < 5
    assert gateway_code(get(base_url, "getAedLcinfoInqire")) == "11"
    missing = get(base_url, "getAedLcinfoInqire", WGS84_LAT=37.5, _type="json").json()
    assert missing == {"resultCode": "11", "resultMsg": "NO_MANDATORY_REQUEST_PARAMETERS_ERROR"}


def test_bad_parameters_and_unknown_operations_get_gateway_codes(base_url: str) -> None:
    assert gateway_code(get(base_url, pageNo="abc")) == "10"
    assert get(base_url, numOfRows=0, _type="json").json() == {
        "resultCode": "10", "resultMsg": "INVALID_REQUEST_PARAMETER_ERROR"}
    assert gateway_code(get(base_url, "getNothing")) == "12"


# --- faults ----------------------------------------------------------------------------------


def test_missing_service_key_gets_code_30_with_http_200(base_url: str) -> None:
    answer = get(base_url, serviceKey=None)
    assert answer.status == 200 and answer.headers["Content-Type"] == "text/xml;charset=UTF-8"
    assert gateway_code(answer) == "30"
    assert answer.xml().findtext("cmmMsgHeader/returnAuthMsg") == "SERVICE_KEY_IS_NOT_REGISTERED_ERROR"
    assert answer.xml().findtext("cmmMsgHeader/errMsg") == "SERVICE ERROR"


def test_a_configured_key_rejects_others_and_the_fault_rejects_all() -> None:
    with EgenEmulator(count=50, service_key="right") as url:
        assert gateway_code(get(url, serviceKey="wrong")) == "30"
        assert get(url, serviceKey="right").xml().findtext("header/resultCode") == "00"
    with EgenEmulator(count=50, faults=Faults(unregistered_key=True)) as url:
        document = get(url, _type="json").json()
        assert document["OpenAPI_ServiceResponse"]["cmmMsgHeader"]["returnReasonCode"] == "30"


def test_quota_from_a_page_is_an_http_200_envelope(emulator: EgenEmulator) -> None:
    emulator.set_faults(Faults.parse(["quota:page=3"]))
    assert get(emulator.base_url, pageNo=2).xml().findtext("header/resultCode") == "00"
    answer = get(emulator.base_url, pageNo=3)
    assert answer.status == 200 and gateway_code(answer) == "22"
    reason = answer.xml().findtext("cmmMsgHeader/returnAuthMsg")
    assert reason == "LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR"
    assert gateway_code(get(emulator.base_url, pageNo=4)) == "22"


def test_quota_after_n_requests_counts_from_when_it_was_set(emulator: EgenEmulator) -> None:
    get(emulator.base_url)
    emulator.set_faults(Faults.parse(["quota:after=2"]))
    assert [gateway_code(get(emulator.base_url)) for _ in range(3)] == [None, None, "22"]
    assert emulator.request_count == 4


def test_http500_for_the_first_k_attempts_then_the_page(emulator: EgenEmulator) -> None:
    emulator.set_faults(Faults.parse(["http500:page=2,times=2"]))
    statuses = [get(emulator.base_url, pageNo=2).status for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert get(emulator.base_url, pageNo=1).status == 200
    emulator.set_faults(emulator.faults)  # counting starts again
    assert get(emulator.base_url, pageNo=2).status == 500


def test_timeout_envelope_has_code_05_and_no_body(emulator: EgenEmulator) -> None:
    emulator.set_faults(Faults.parse(["timeout-envelope:page=2,times=1"]))
    answer = get(emulator.base_url, pageNo=2)
    assert answer.status == 200 and answer.xml().findtext("header/resultCode") == "05"
    assert answer.xml().find("body") is None
    assert get(emulator.base_url, pageNo=2).xml().findtext("header/resultCode") == "00"


def test_truncated_page_is_cut_in_the_middle_and_does_not_parse(emulator: EgenEmulator) -> None:
    whole = get(emulator.base_url, pageNo=5, numOfRows=20).body
    emulator.set_faults(Faults.parse(["truncate:page=5"]))
    answer = get(emulator.base_url, pageNo=5, numOfRows=20)
    assert int(answer.headers["Content-Length"]) == len(answer.body) == len(whole) // 2
    assert whole.startswith(answer.body)
    with pytest.raises(ET.ParseError):
        ET.fromstring(answer.body)


def test_slow_page_answers_after_the_delay(emulator: EgenEmulator) -> None:
    emulator.set_faults(Faults.parse(["slow:page=4,seconds=0.3"]))
    started = time.perf_counter()
    get(emulator.base_url, pageNo=4)
    assert time.perf_counter() - started >= 0.3  # a lower bound: true however busy the machine
    get(emulator.base_url, pageNo=3)


def test_empty_fault_serves_no_records(emulator: EgenEmulator) -> None:
    emulator.set_faults(Faults.parse(["empty"]))
    answer = get(emulator.base_url)
    assert b"<items/><numOfRows>10</numOfRows><pageNo>1</pageNo><totalCount>0</totalCount>" in answer.body
    body = get(emulator.base_url, _type="json").json()["response"]["body"]
    assert body["items"] == "" and body["totalCount"] == 0
    assert emulator.items == []


def test_single_item_fault_serves_one_record_or_a_last_page_of_one(emulator: EgenEmulator) -> None:
    emulator.set_faults(Faults.parse(["single-item"]))
    root = get(emulator.base_url).xml()
    assert root.findtext("body/totalCount") == "1" and len(root.findall("body/items/item")) == 1
    emulator.set_faults(Faults.parse(["single-item:rows=100"]))
    assert emulator.item_count == 201  # 300 trimmed so that 201 % 100 == 1
    last = get(emulator.base_url, pageNo=3, numOfRows=100, _type="json").json()["response"]["body"]
    assert isinstance(last["items"]["item"], dict) and last["totalCount"] == 201


def test_changed_fraction_serves_a_day_of_changes(emulator: EgenEmulator) -> None:
    base = emulator.items
    emulator.set_changed_fraction(0.2)
    assert emulator.items == dataset.mutate(base, 0.2, emulator.seed + 1)
    served = get(emulator.base_url, numOfRows=1000).items()
    assert [i["serialSeq"] for i in served] == [r["serialSeq"] for r in emulator.items]
    emulator.set_changed_fraction(0.0)
    assert emulator.items == base


def test_fault_strings_parse_and_print_back() -> None:
    specs = ["quota:page=3", "unregistered-key", "empty", "single-item:rows=1000",
             "http500:page=2,times=10", "slow:seconds=2,page=4", "truncate:page=5",
             "timeout-envelope:page=2,times=1", "slow:seconds=0.25"]
    faults = Faults.parse(specs)
    assert faults.quota_from_page == 3 and faults.unregistered_key and faults.empty
    assert faults.single_item and faults.single_item_rows == 1000
    assert faults.pages[0] == PageFault(PageFaultKind.HTTP500, page=2, times=10)
    assert faults.pages[-1] == PageFault(PageFaultKind.SLOW, seconds=0.25)
    assert Faults.parse(faults.specs()) == faults


@pytest.mark.parametrize("spec", ["nonsense", "quota", "quota:page=0", "http500:page=x", "slow:page=2",
                                  "truncate:rows=3", "slow:seconds=-1", "http500:page"])
def test_bad_fault_strings_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        Faults.parse([spec])


def test_serve_prints_the_url_and_stops_on_sigterm() -> None:
    code = "from reconciler.emulator.egen import serve; serve(port=0, count=20, faults=['empty'])"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/B552657/AEDInfoInqireService", line)
        assert url, line
        assert b"<totalCount>0</totalCount>" in get(url.group(0)).body
        process.terminate()
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
