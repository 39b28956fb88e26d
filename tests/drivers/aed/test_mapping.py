"""Mapping transforms and the per-row validation stages, without I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drivers.aed.conftest import binding
from reconciler.drivers.aed.mapping import Mapper
from reconciler.drivers.aed.parsing import parse_page
from reconciler.drivers.aed.validating import ValidationFailed, Validator, post_sync

ITEM = {"serialSeq": " 031-130110-000123 ", "sido": "서울특별시", "gugun": "종로구", "org": " 종로구보건소 ",
        "buildAddress": "종로 1길 12 (청운동)", "buildPlace": "1층 로비", "wgs84Lat": "37.5735",
        "wgs84Lon": "126.9788", "mfg": "없음", "model": "CU-SP1"}


def spec(**extra: object):
    return binding("http://127.0.0.1:1/B552657/AEDInfoInqireService", "aed_data", **extra).spec


def test_transforms_in_order() -> None:
    row = Mapper(spec()).row(ITEM)
    values = dict(zip(Mapper(spec()).names, row.values, strict=True))
    assert row.key == "031-130110-000123" and not row.problems
    assert values["sido"] == "서울" and values["gugun"] == "종로구"
    assert values["installation_institution"] == "종로구보건소"
    assert values["installation_address"] == "서울특별시 종로구 종로 1길 12 (청운동)"
    assert values["latitude"] == Decimal("37.5735")
    assert values["manufacturer"] is None  # placeholder 없음 → NULL


def test_address_already_prefixed_is_kept() -> None:
    item = {**ITEM, "sido": "세종특별자치시", "gugun": "세종시",
            "buildAddress": "세종특별자치시 한누리대로 2130"}
    values = dict(zip(Mapper(spec()).names, Mapper(spec()).row(item).values, strict=True))
    assert values["installation_address"] == "세종특별자치시 한누리대로 2130"


def test_lower_case_field_names_from_the_api_map_the_same() -> None:
    fields = "".join(f"<{k.lower()}>{v}</{k.lower()}>" for k, v in ITEM.items())
    body = ("<response><header><resultCode>00</resultCode><resultMsg>NORMAL SERVICE.</resultMsg></header>"
            f"<body><items><item>{fields}</item></items><numOfRows>10</numOfRows><pageNo>1</pageNo>"
            "<totalCount>1</totalCount></body></response>").encode()
    item = parse_page(body, fmt="xml").items[0]
    assert Mapper(spec()).row(item).values == Mapper(spec()).row(ITEM).values


@pytest.mark.parametrize(("change", "rule", "column"), [
    ({"wgs84Lat": "abc"}, "types", "latitude"),
    ({"wgs84Lat": ""}, "required", "latitude"),
    ({"serialSeq": "x" * 25}, "lengths", "equipment_serial"),
    ({"org": "가" * 101}, "lengths", "installation_institution"),
])
def test_format_stage_names_rule_and_column(change: dict[str, str], rule: str, column: str) -> None:
    row = Validator(spec()).check(Mapper(spec()).row({**ITEM, **change}))
    assert (rule, column) in {(p.rule, p.column) for p in row.problems}
    assert all(p.stage == "format" for p in row.problems)


@pytest.mark.parametrize(("change", "rule"), [
    ({"wgs84Lat": "0.0", "wgs84Lon": "0.0"}, "bounds"),
    ({"wgs84Lat": "40.1"}, "bounds"),
    ({"gugun": "해운대구"}, "sidoGugun"),
])
def test_business_stage(change: dict[str, str], rule: str) -> None:
    row = Validator(spec()).check(Mapper(spec()).row({**ITEM, **change}))
    assert [p.rule for p in row.problems] == [rule] and row.problems[0].stage == "business"


def test_duplicate_keys_fail_the_run_by_default_or_reject_the_row() -> None:
    validator, mapper = Validator(spec()), Mapper(spec())
    assert not validator.check(mapper.row(ITEM)).problems
    with pytest.raises(ValidationFailed, match="duplicateKeys"):
        validator.check(mapper.row(ITEM))
    lenient = spec(validation={"business": {"duplicateKeys": {"action": "reject-row"}}})
    validator = Validator(lenient)
    validator.check(Mapper(lenient).row(ITEM))
    assert [p.rule for p in validator.check(Mapper(lenient).row(ITEM)).problems] == ["duplicateKeys"]


def test_fail_run_action_raises_with_row_and_column() -> None:
    strict = spec(validation={"format": {"types": {"action": "fail-run"}}})
    with pytest.raises(ValidationFailed, match=r"format\.types .* row '031-130110-000123', column latitude"):
        Validator(strict).check(Mapper(strict).row({**ITEM, "wgs84Lat": "north"}))


def test_post_sync_limits() -> None:
    limited = spec(validation={"postSync": {"maxDeleted": "2%", "maxInserted": 10}})
    post_sync(limited, inserted=10, updated=0, deleted=20, current=1000)
    with pytest.raises(ValidationFailed, match="maxDeleted"):
        post_sync(limited, inserted=0, updated=0, deleted=21, current=1000)
    with pytest.raises(ValidationFailed, match="maxInserted"):
        post_sync(limited, inserted=11, updated=0, deleted=0, current=1000)
    post_sync(limited, inserted=5000, updated=0, deleted=0, current=0)  # a first load is not limited
