"""The AedSourceBinding spec model: defaults, a complete spec, and every custom error."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.models.aed import (
    DEFAULT_BASE_URL,
    AedOperation,
    AedSourceBinding,
    ColumnMapping,
    ColumnType,
    DeletionPolicy,
    RuleAction,
    SourceFormat,
    Transform,
)

KEY_COLUMN = {"column": "equipment_serial", "from": "serialSeq", "required": True}


def binding(**spec: Any) -> dict[str, Any]:
    """A minimal valid AedSourceBinding document, with `spec` sections replaced or added."""
    base: dict[str, Any] = {
        "source": {"serviceKey": {"env": "EGEN_SERVICE_KEY"}},
        "target": {"databaseUrl": {"env": "AED_DATABASE_URL"}},
        "mapping": {"columns": [KEY_COLUMN]},
    }
    base.update(spec)
    return {
        "apiVersion": "reconciler.dev/v1alpha1",
        "kind": "AedSourceBinding",
        "metadata": {"name": "aed-registry"},
        "spec": base,
    }


def error_of(document: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        AedSourceBinding.model_validate(document)
    return str(info.value)


def test_minimal_spec_gets_source_defaults() -> None:
    source = AedSourceBinding.model_validate(binding()).spec.source
    assert source.base_url == DEFAULT_BASE_URL
    assert source.operation is AedOperation.FULL_DOWN
    assert (source.page_size, source.concurrency) == (1000, 4)
    assert source.timeout == timedelta(seconds=30)
    assert source.retries.limit == 4
    assert (source.retries.backoff, source.retries.max_backoff) == (
        timedelta(seconds=1),
        timedelta(seconds=30),
    )
    assert source.format is SourceFormat.XML
    assert source.service_key.env == "EGEN_SERVICE_KEY"


def test_minimal_spec_gets_target_defaults() -> None:
    target = AedSourceBinding.model_validate(binding()).spec.target
    assert (target.schema_name, target.table, target.key_column) == (
        "public",
        "aed_data",
        "equipment_serial",
    )
    assert target.create_table is True


def test_minimal_spec_gets_mapping_defaults() -> None:
    mapping = AedSourceBinding.model_validate(binding()).spec.mapping
    assert mapping.placeholders == ["필요", "신규", "미정", "없음"]
    assert mapping.owned_columns is None
    assert mapping.owned == ("equipment_serial",)
    assert mapping.columns[0].type is ColumnType.TEXT


def test_minimal_spec_gets_validation_guard_and_deletion_defaults() -> None:
    spec = AedSourceBinding.model_validate(binding()).spec
    assert spec.validation.business.duplicate_keys.action is RuleAction.FAIL_RUN
    assert spec.validation.business.bounds.action is RuleAction.REJECT_ROW
    assert spec.validation.business.bounds.latitude == (33.0, 38.7)
    assert spec.validation.business.bounds.longitude == (124.5, 132.0)
    assert spec.validation.post_sync.action is RuleAction.FAIL_RUN
    assert spec.guards.max_row_count_change == "10%"
    assert spec.guards.forbid_all_null_columns is True
    assert spec.guards.max_deletes is None
    assert spec.guards.allow_empty is False
    assert spec.deletion.policy is DeletionPolicy.MARK
    assert spec.deletion.suspect_after_days == 7


def test_complete_spec_is_accepted_with_every_section() -> None:
    document = binding(
        source={
            "baseUrl": "http://127.0.0.1:8089/B552657/AEDInfoInqireService",
            "operation": "getEgytAedManageInfoInqire",
            "serviceKey": {"file": "/run/secrets/egen"},
            "params": {"Q0": "서울특별시"},
            "pageSize": 5000,
            "concurrency": 8,
            "timeout": "1m",
            "retries": {"limit": 6, "backoff": "500ms", "maxBackoff": "1m"},
            "format": "json",
        },
        target={
            "databaseUrl": {"secretRef": {"name": "aed-db", "key": "url"}},
            "schema": "registry",
            "table": "aed",
            "keyColumn": "equipment_serial",
            "createTable": False,
        },
        mapping={
            "columns": [
                KEY_COLUMN,
                {"column": "sido", "from": "sido", "transforms": ["trim", "sidoShortName"]},
                {"column": "latitude", "from": "wgs84Lat", "type": "numeric", "maxLength": 20},
            ],
            "placeholders": ["없음"],
            "ownedColumns": ["equipment_serial", "latitude"],
        },
        validation={
            "format": {"required": {"fields": ["sido"], "action": "fail-run"}},
            "business": {"bounds": {"latitude": [33, 39], "longitude": [124, 132]}},
            "database": {"foreignKeys": {"action": "fail-run"}},
            "postSync": {"maxInserted": 100, "maxUpdated": "5%", "maxDeleted": 0},
        },
        guards={"maxRowCountChange": 500, "maxDeletes": "2%", "allowEmpty": True},
        deletion={"policy": "delete", "suspectAfterDays": 3},
    )
    spec = AedSourceBinding.model_validate(document).spec
    assert spec.source.operation is AedOperation.MANAGE_INFO
    assert spec.source.retries.backoff == timedelta(milliseconds=500)
    assert spec.target.schema_name == "registry"
    assert spec.mapping.columns[1].transforms == [Transform.TRIM, Transform.SIDO_SHORT_NAME]
    assert spec.mapping.owned == ("equipment_serial", "latitude")
    assert spec.validation.business.bounds.latitude == (33.0, 39.0)
    assert spec.validation.post_sync.max_updated == "5%"
    assert spec.deletion.policy is DeletionPolicy.DELETE


def test_spec_round_trips_through_its_camel_case_dump() -> None:
    model = AedSourceBinding.model_validate(binding())
    dumped = model.model_dump(by_alias=True, mode="json")
    assert dumped["spec"]["mapping"]["columns"][0]["from"] == "serialSeq"
    assert AedSourceBinding.model_validate(dumped) == model


def test_column_source_field_accepts_the_python_name_too() -> None:
    column = ColumnMapping.model_validate({"column": "sido", "source_field": "sido"})
    assert column.source_field == "sido"


def test_bounds_that_are_not_a_pair_say_expected_min_max() -> None:
    message = error_of(binding(validation={"business": {"bounds": {"latitude": "north"}}}))
    assert "expected [min, max], got 'north'" in message


def test_bounds_with_three_numbers_say_expected_min_max() -> None:
    message = error_of(binding(validation={"business": {"bounds": {"longitude": [1, 2, 3]}}}))
    assert "expected [min, max], got [1, 2, 3]" in message


def test_bounds_with_min_not_below_max_are_refused() -> None:
    message = error_of(binding(validation={"business": {"bounds": {"latitude": [38.7, 33.0]}}}))
    assert "expected [min, max] with min < max, got [38.7, 33.0]" in message


def test_duplicate_target_column_names_the_column() -> None:
    columns = [KEY_COLUMN, {"column": "sido", "from": "sido"}, {"column": "sido", "from": "Q0"}]
    message = error_of(binding(mapping={"columns": columns}))
    assert "expected each column once in mapping.columns, got 'sido' twice" in message


def test_owned_column_that_is_not_mapped_is_refused() -> None:
    message = error_of(
        binding(mapping={"columns": [KEY_COLUMN], "ownedColumns": ["equipment_serial", "gugun"]})
    )
    assert "expected every owned column to be mapped, got 'gugun'" in message


def test_owned_columns_without_the_key_column_are_refused() -> None:
    columns = [KEY_COLUMN, {"column": "sido", "from": "sido"}]
    message = error_of(binding(mapping={"columns": columns, "ownedColumns": ["sido"]}))
    assert "expected mapping.ownedColumns to include the key column 'equipment_serial'" in message


def test_key_column_must_be_mapped() -> None:
    message = error_of(binding(mapping={"columns": [{"column": "sido", "from": "sido"}]}))
    assert "expected target.keyColumn 'equipment_serial' to be a mapped column" in message


def test_empty_mapping_is_refused() -> None:
    message = error_of(binding(mapping={"columns": []}))
    assert "expected at least one column in mapping.columns, got none" in message


def test_required_field_that_is_not_mapped_is_refused() -> None:
    message = error_of(binding(validation={"format": {"required": {"fields": ["org"]}}}))
    assert "expected validation.format.required.fields to name mapped columns, got 'org'" in (
        message
    )


def test_table_name_that_is_not_an_sql_identifier_is_refused() -> None:
    document = binding(target={"databaseUrl": {"env": "DB"}, "table": "aed data; drop"})
    assert "expected an SQL identifier" in error_of(document)
    assert "got 'aed data; drop'" in error_of(document)


def test_column_name_that_starts_with_a_digit_is_refused() -> None:
    message = error_of(binding(mapping={"columns": [KEY_COLUMN, {"column": "1st", "from": "x"}]}))
    assert "expected an SQL identifier" in message


def test_both_sido_name_transforms_on_one_column_are_refused() -> None:
    sido = {"column": "sido", "from": "sido", "transforms": ["sidoShortName", "sidoLongName"]}
    message = error_of(binding(mapping={"columns": [KEY_COLUMN, sido]}))
    assert "expected at most one of sidoShortName or sidoLongName on column 'sido'" in message


def test_unknown_transform_is_refused() -> None:
    column = {"column": "sido", "from": "sido", "transforms": ["uppercase"]}
    message = error_of(binding(mapping={"columns": [KEY_COLUMN, column]}))
    assert "transforms.0" in message
    assert "placeholderToNull" in message


def test_service_key_written_as_a_literal_is_refused() -> None:
    message = error_of(binding(source={"serviceKey": "abc123"}))
    assert "secret values are never written in specs" in message


def test_backoff_above_max_backoff_is_refused() -> None:
    source = {"serviceKey": {"env": "K"}, "retries": {"backoff": "1m", "maxBackoff": "30s"}}
    message = error_of(binding(source=source))
    assert "expected backoff <= maxBackoff" in message


def test_params_that_the_reconciler_sets_are_refused() -> None:
    source = {"serviceKey": {"env": "K"}, "params": {"numOfRows": "10", "Q0": "x"}}
    message = error_of(binding(source=source))
    assert "expected params without the parameters the reconciler sets" in message
    assert "got numOfRows" in message


def test_base_url_without_http_scheme_is_refused() -> None:
    message = error_of(binding(source={"serviceKey": {"env": "K"}, "baseUrl": "apis.data.go.kr"}))
    assert "expected an http:// or https:// URL, got 'apis.data.go.kr'" in message


def test_page_size_above_ten_thousand_is_refused() -> None:
    message = error_of(binding(source={"serviceKey": {"env": "K"}, "pageSize": 10001}))
    assert "source.pageSize" in message


def test_post_sync_reject_row_is_refused() -> None:
    message = error_of(binding(validation={"postSync": {"action": "reject-row"}}))
    assert "expected action fail-run for validation.postSync" in message
    assert "got 'reject-row'" in message


def test_unknown_action_is_refused() -> None:
    message = error_of(binding(validation={"database": {"constraints": {"action": "skip"}}}))
    assert "reject-row" in message
    assert "fail-run" in message


def test_threshold_that_is_not_a_count_or_percentage_is_refused() -> None:
    message = error_of(binding(guards={"maxRowCountChange": "ten"}))
    assert "expected a count such as 100 or a percentage such as '10%'" in message


def test_unknown_spec_field_is_refused() -> None:
    message = error_of(binding(schedule="0 4 * * *"))
    assert "spec.schedule" in message
    assert "Extra inputs are not permitted" in message


def test_a_removal_threshold_is_at_most_100_percent_and_a_growth_one_may_exceed_it() -> None:
    message = error_of(binding(guards={"maxDeletes": "150%"}))
    assert "spec.guards.maxDeletes" in message and "at most 100%" in message
    spec = AedSourceBinding.model_validate(binding(guards={"maxRowCountChange": "150%",
                                                           "maxDeletes": "100%"})).spec
    assert spec.guards.max_row_count_change == "150%"
