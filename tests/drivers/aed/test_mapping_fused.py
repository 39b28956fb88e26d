"""The generated row function and the specialised converters of `Mapper` give exactly what the
step-by-step chain gives.

`Mapper` compiles each column's transforms into a chain of small steps and, for the usual
chains, one specialised function that does the same on a string; `Mapper.row` is one
function generated per binding that does a clean item's columns inline and hands any other
item to `checked_row`. These tests run the three on values chosen to tell them apart
(spaces, placeholders, bad numbers, Y/N variants, lengths, values that are not strings,
unknown and missing fields), then on any item hypothesis makes of them, and require the
same values and the same problems."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.aed.conftest import binding
from reconciler.drivers.aed.mapping import Mapper

COLUMNS: list[dict[str, Any]] = [
    {"column": "equipment_serial", "from": "serialSeq", "transforms": ["trim"], "maxLength": 8,
     "required": True},
    {"column": "sido", "from": "sido", "transforms": ["trim", "placeholderToNull", "sidoShortName"]},
    {"column": "sido_long", "from": "sido", "transforms": ["trim", "placeholderToNull", "sidoLongName"]},
    {"column": "gugun", "from": "gugun", "transforms": ["trim", "placeholderToNull"], "maxLength": 4},
    {"column": "address", "from": "buildAddress",
     "transforms": ["trim", "placeholderToNull", "prefixAddress"]},
    {"column": "latitude", "from": "wgs84Lat", "type": "numeric", "transforms": ["trim", "parseNumber"],
     "required": True},
    {"column": "flag", "from": "sunFrtYon", "type": "boolean", "transforms": ["trim"]},
    {"column": "zip", "from": "zipcode1", "transforms": ["trim"], "required": True},
    {"column": "count", "from": "cnt", "type": "integer", "transforms": ["trim"]},  # the generic chain
    {"column": "custom", "from": "someField", "transforms": ["trim", "placeholderToNull"]},  # unknown field
]

VALUES: dict[str, list[Any]] = {
    "serialSeq": [" A-1 ", "", "   ", "123456789", None, "B"],
    "sido": ["서울특별시", " 서울 ", "없음", " 미정 ", "", "어딘가", None],
    "gugun": ["종로구", " 중구 ", "필요", "아주긴구이름", "", None],
    "buildAddress": ["종로 1길", "서울특별시 종로구 종로 1", " 없음 ", "", None],
    "wgs84Lat": ["37.5", " 1,234.5 ", "abc", "NaN", "Infinity", "", " ", None],
    "sunFrtYon": ["Y", " n ", "yes", "TRUE", "0", "x", "", None],
    "zipcode1": ["030", " ", None],
    "cnt": ["3", "3.5", "x", None],
    "SOMEFIELD": ["v", " 없음 ", None],
}


def mappers() -> tuple[Mapper, Mapper]:
    spec = binding("http://127.0.0.1:1/B552657/AEDInfoInqireService", "aed_data",
                   mapping={"columns": COLUMNS}).spec
    fused, chained = Mapper(spec), Mapper(spec)
    # the reference: every column through its step-by-step chain
    chained.plan = tuple((s, k, chain, chain, r, m, c) for s, k, _, chain, r, m, c in chained.plan)
    assert any(fast is not chain for _, _, fast, chain, *_ in fused.plan)
    return fused, chained


def items() -> list[dict[str, Any]]:
    longest = max(len(v) for v in VALUES.values())
    out = []
    for shift in range(longest):
        item = {}
        for index, (name, values) in enumerate(VALUES.items()):
            value = values[(shift + index) % len(values)]
            if value is not None:
                item[name] = value
        out.append(item)
    return out


@pytest.mark.parametrize("item", items())
def test_fused_and_chained_mapping_agree(item: dict[str, Any]) -> None:
    fused, chained = mappers()
    assert fused.row(item) == fused.checked_row(item) == chained.checked_row(item)


@pytest.mark.parametrize("value", ["Y", " y ", "no", "FALSE", "1", "maybe", "", 5, 37.5])
def test_each_value_alone_agrees_including_values_that_are_not_strings(value: Any) -> None:
    fused, chained = mappers()
    for field in ("serialSeq", "sido", "gugun", "buildAddress", "wgs84Lat", "sunFrtYon", "zipcode1", "cnt"):
        item = {"serialSeq": "K", "wgs84Lat": "37", "zipcode1": "1", field: value}
        assert fused.row(item) == fused.checked_row(item) == chained.checked_row(item), field


def test_problems_name_the_rule_and_the_value() -> None:
    fused, _ = mappers()
    row = fused.row({"serialSeq": "123456789", "wgs84Lat": "abc", "sunFrtYon": "x", "zipcode1": ""})
    rules = {(p.rule, p.column) for p in row.problems}
    # a value that cannot be converted is one problem (types), not also a missing value
    assert rules == {("lengths", "equipment_serial"), ("types", "latitude"), ("types", "flag"),
                     ("required", "zip")}
    assert any("expected Y/N or true/false, got 'x'" in p.message for p in row.problems)
    assert "wgs84Lat: expected a number, got 'abc'" in [p.message for p in row.problems]
    assert row.raw is not None


def test_problems_of_the_generated_function_are_those_of_checked_row() -> None:
    fused, _ = mappers()
    item = {"serialSeq": "123456789", "wgs84Lat": "abc", "sunFrtYon": "x", "zipcode1": ""}
    assert fused.row(item) == fused.checked_row(item)
    assert fused.row(item).problems  # not a clean row: the generated function handed it over


def test_the_generated_source_holds_no_value_of_the_spec() -> None:
    """Field names, lengths and placeholders are bound in the namespace, never spelled in source."""
    spec = binding("http://127.0.0.1:1/B552657/AEDInfoInqireService", "aed_data",
                   target={"keyColumn": "x"},
                   mapping={"columns": [{"column": "x", "from": "serialSeq", "transforms": ["trim"],
                                         "maxLength": 7, "required": True},
                                        {"column": "y", "from": 'a"); import os; ("',
                                         "transforms": ["trim"]}],
                            "placeholders": ['"; raise SystemExit; "']},
                   ).spec
    mapper = Mapper(spec)
    code = mapper.row.__code__
    assert 'a"); import os' not in code.co_consts and 7 not in code.co_consts
    assert mapper.row({"serialSeq": " K ", 'a"); import os; ("': " v "}).values == ("K", "v")
    assert mapper.row({"serialSeq": "12345678"}).problems[0].rule == "lengths"


TEXTS = st.one_of(st.sampled_from([" ", "", "없음", " 미정 ", "Y", " n ", "1,234.5", "NaN", "12345678",
                                   "서울특별시", "종로구", "종로 1길"]),
                  st.text(alphabet=" YN0123456789.,-abc서울", max_size=10))
ITEMS = st.dictionaries(st.sampled_from([*VALUES, "cnt"]),
                        st.one_of(TEXTS, st.integers(-5, 5),
                                  st.floats(allow_nan=False, allow_infinity=False)),
                        max_size=len(VALUES) + 1)


@settings(max_examples=300, deadline=None)
@given(ITEMS)
def test_any_item_maps_the_same_three_ways(item: dict[str, Any]) -> None:
    fused, chained = mappers()
    assert fused.row(item) == fused.checked_row(item) == chained.checked_row(item)
