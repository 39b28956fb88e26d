"""The specialised per-column converters of `Mapper` give exactly what the step-by-step chain gives.

`Mapper` compiles each column's transforms into a chain of small steps and, for the usual
chains, one specialised function that does the same on a string. These tests run both on
values chosen to tell them apart (spaces, placeholders, bad numbers, Y/N variants, lengths,
values that are not strings) and require the same values and the same problems."""

from __future__ import annotations

from typing import Any

import pytest

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
    chained._plan = tuple((s, k, chain, chain, r, m, c) for s, k, _, chain, r, m, c in chained._plan)
    assert any(fast is not chain for _, _, fast, chain, *_ in fused._plan)
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
    assert fused.row(item) == chained.row(item)


@pytest.mark.parametrize("value", ["Y", " y ", "no", "FALSE", "1", "maybe", "", 5, 37.5])
def test_each_value_alone_agrees_including_values_that_are_not_strings(value: Any) -> None:
    fused, chained = mappers()
    for field in ("serialSeq", "sido", "gugun", "buildAddress", "wgs84Lat", "sunFrtYon", "zipcode1", "cnt"):
        item = {"serialSeq": "K", "wgs84Lat": "37", "zipcode1": "1", field: value}
        assert fused.row(item) == chained.row(item), field


def test_problems_name_the_rule_and_the_value() -> None:
    fused, _ = mappers()
    row = fused.row({"serialSeq": "123456789", "wgs84Lat": "abc", "sunFrtYon": "x", "zipcode1": ""})
    rules = {(p.rule, p.column) for p in row.problems}
    assert rules == {("lengths", "equipment_serial"), ("types", "latitude"), ("required", "latitude"),
                     ("types", "flag"), ("required", "zip")}
    assert any("expected Y/N or true/false, got 'x'" in p.message for p in row.problems)
    assert row.raw is not None
