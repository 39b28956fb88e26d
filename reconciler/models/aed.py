"""`AedSourceBinding`: Korea's national AED registry, kept in a PostgreSQL (or SQLite) table.

An AedSourceBinding binds one source, the National Medical Center's AED open API (served
through data.go.kr), to one target table (`aed_data` by default). The reconciler pulls
every page, maps API fields to columns (`mapping`), checks the rows in four stages
(`validation`: format, business, database, post-sync), refuses runs that look wrong
before anything is written (`guards`), and upserts only the rows whose content changed.
Rows absent from a full pull are marked, deleted or ignored (`deletion`).

The API has no modified-since cursor, so both modes pull everything: `full` also applies
deletions, `incremental` writes changed rows only and never deletes. The schedule (which
mode, when) lives in a SyncJob that points at the binding.

A minimal spec needs only `source.serviceKey`, `target.databaseUrl` and
`mapping.columns` (which must map the key column, `equipment_serial` by default); every
other field has a default taken from the reference facts (bounding box of Korea,
placeholder strings, ±10% row-count guard, mark-then-suspect after 7 days).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from reconciler.models.common import (
    Duration,
    HttpUrlText,
    Resource,
    SecretRef,
    ShareThreshold,
    SpecModel,
    SqlIdentifier,
    Threshold,
)
from reconciler.models.status import ObjectStatus

DEFAULT_BASE_URL = "https://apis.data.go.kr/B552657/AEDInfoInqireService"
DEFAULT_PLACEHOLDERS: tuple[str, ...] = ("필요", "신규", "미정", "없음")
# Query parameters the driver sets itself; `source.params` may not override them.
RESERVED_PARAMS = frozenset({"serviceKey", "pageNo", "numOfRows", "_type"})

# --- scalar types ----------------------------------------------------------------------------

def _check_range(value: Any) -> tuple[float, float]:
    numbers = (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not numbers:
        raise ValueError(f"expected [min, max], got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not low < high:
        raise ValueError(f"expected [min, max] with min < max, got {value!r}")
    return (low, high)


CoordinateRange = Annotated[
    tuple[float, float],
    BeforeValidator(_check_range),
    WithJsonSchema({"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}),
]

# --- source ------------------------------------------------------------------------------------


class AedOperation(StrEnum):
    """The three operations of `AEDInfoInqireService`."""

    FULL_DOWN = "getAedFullDown"
    MANAGE_INFO = "getEgytAedManageInfoInqire"
    LOCATION_INFO = "getAedLcinfoInqire"


class SourceFormat(StrEnum):
    XML = "xml"
    JSON = "json"


class RetryPolicy(SpecModel):
    """Retries of a failed page: exponential back-off from `backoff`, capped at `maxBackoff`."""

    limit: int = Field(default=4, ge=0, le=20, description="Retries per page after the first try.")
    # Duration defaults are written as text (validated) so the JSON Schema shows "30s".
    backoff: Duration = Field("1s", validate_default=True, description="First wait; doubles.")
    max_backoff: Duration = Field("30s", validate_default=True, description="Longest wait.")

    @model_validator(mode="after")
    def _backoff_within_cap(self) -> RetryPolicy:
        if self.backoff > self.max_backoff:
            raise ValueError(
                f"expected backoff <= maxBackoff, got backoff {self.backoff} > maxBackoff {self.max_backoff}"
            )
        return self


class AedSource(SpecModel):
    """Where rows come from: the AED open API."""

    base_url: HttpUrlText = Field(default=DEFAULT_BASE_URL, description="Service URL.")
    operation: AedOperation = Field(
        default=AedOperation.FULL_DOWN, description="getAedFullDown pages through every record."
    )
    service_key: SecretRef = Field(description="data.go.kr service key (a secret reference).")
    params: dict[str, str] = Field(
        default_factory=dict,
        description="Extra query parameters (Q0/Q1, WGS84_LON/WGS84_LAT); not serviceKey, "
        "pageNo, numOfRows or _type, which the reconciler sets.",
    )
    page_size: int = Field(default=1000, ge=1, le=10000, description="numOfRows per page.")
    concurrency: int = Field(default=4, ge=1, le=32, description="Pages fetched at once.")
    timeout: Duration = Field("30s", validate_default=True, description="Per HTTP request.")
    retries: RetryPolicy = Field(default_factory=RetryPolicy, description="Retries per page.")
    format: SourceFormat = Field(default=SourceFormat.XML, description="xml, or json (_type).")

    @model_validator(mode="after")
    def _no_reserved_params(self) -> AedSource:
        reserved = sorted(RESERVED_PARAMS & self.params.keys())
        if reserved:
            raise ValueError(
                "expected params without the parameters the reconciler sets "
                f"({', '.join(sorted(RESERVED_PARAMS))}), got {', '.join(reserved)}"
            )
        return self


# --- target ------------------------------------------------------------------------------------


class AedTarget(SpecModel):
    """The table that holds the registry."""

    database_url: SecretRef = Field(description="Target database URL (a secret reference).")
    schema_name: SqlIdentifier = Field(default="public", alias="schema", description="Schema.")
    table: SqlIdentifier = Field(default="aed_data", description="Target table.")
    key_column: SqlIdentifier = Field(default="equipment_serial", description="Mapped key column.")
    create_table: bool = Field(default=True, description="Create the table when it is absent.")


# --- mapping -----------------------------------------------------------------------------------


class ColumnType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    NUMERIC = "numeric"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"


class Transform(StrEnum):
    """Value transforms, applied in the order listed on the column."""

    TRIM = "trim"
    PLACEHOLDER_TO_NULL = "placeholderToNull"
    PARSE_NUMBER = "parseNumber"
    PARSE_DATE = "parseDate"
    SIDO_SHORT_NAME = "sidoShortName"
    SIDO_LONG_NAME = "sidoLongName"
    PREFIX_ADDRESS = "prefixAddress"


class ColumnMapping(SpecModel):
    """One target column and the API field it is filled from."""

    column: SqlIdentifier = Field(description="Target column.")
    source_field: str = Field(alias="from", min_length=1, description="API field, e.g. serialSeq.")
    type: ColumnType = Field(default=ColumnType.TEXT, description="Column type.")
    transforms: list[Transform] = Field(
        default_factory=list,
        description="Applied in order; prefixAddress prepends sido and gugun when missing.",
    )
    max_length: int | None = Field(default=None, ge=1, description="Longest text accepted.")
    required: bool = Field(default=False, description="NULL (after transforms) is invalid.")

    @model_validator(mode="after")
    def _one_sido_form(self) -> ColumnMapping:
        both = {Transform.SIDO_SHORT_NAME, Transform.SIDO_LONG_NAME}
        if both <= set(self.transforms):
            raise ValueError(
                f"expected at most one of sidoShortName or sidoLongName on column {self.column!r}, got both"
            )
        return self


class AedMapping(SpecModel):
    """API fields to columns, and which columns the reconciler owns."""

    columns: list[ColumnMapping] = Field(description="Mapped columns, each target column once.")
    placeholders: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PLACEHOLDERS),
        description="Strings that placeholderToNull turns into NULL.",
    )
    owned_columns: list[SqlIdentifier] | None = Field(
        default=None, description="Columns written (default: all mapped); others never are."
    )

    @model_validator(mode="after")
    def _columns_consistent(self) -> AedMapping:
        if not self.columns:
            raise ValueError("expected at least one column in mapping.columns, got none")
        seen: set[str] = set()
        for mapping in self.columns:
            if mapping.column in seen:
                raise ValueError(
                    f"expected each column once in mapping.columns, got {mapping.column!r} twice"
                )
            seen.add(mapping.column)
        if self.owned_columns is not None:
            for column in self.owned_columns:
                if column not in seen:
                    raise ValueError(
                        f"expected every owned column to be mapped, got {column!r} in "
                        "ownedColumns but not in mapping.columns"
                    )
        return self

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(m.column for m in self.columns)

    @property
    def owned(self) -> tuple[str, ...]:
        """The columns the reconciler writes (`ownedColumns`, or every mapped column)."""
        return tuple(self.owned_columns) if self.owned_columns is not None else self.column_names


# --- validation --------------------------------------------------------------------------------


class RuleAction(StrEnum):
    """What a failed check does: drop the row (and record it) or fail the whole run."""

    REJECT_ROW = "reject-row"
    FAIL_RUN = "fail-run"


class Rule(SpecModel):
    enabled: bool = Field(default=True, description="Run this check.")
    action: RuleAction = Field(default=RuleAction.REJECT_ROW, description="On failure.")


class FailRunRule(Rule):
    action: RuleAction = Field(default=RuleAction.FAIL_RUN, description="On failure.")


class RequiredRule(Rule):
    fields: list[SqlIdentifier] = Field(
        default_factory=list, description="Non-NULL columns, besides those marked required."
    )


class FormatValidation(SpecModel):
    """Stage 1, per row: required fields, types, lengths."""

    required: RequiredRule = Field(default_factory=RequiredRule)
    types: Rule = Field(default_factory=Rule, description="Values parse as the column type.")
    lengths: Rule = Field(default_factory=Rule, description="Text within the column's maxLength.")


class BoundsRule(Rule):
    latitude: CoordinateRange = Field(default=(33.0, 38.7), description="[min, max] (WGS84).")
    longitude: CoordinateRange = Field(default=(124.5, 132.0), description="[min, max] (WGS84).")


class BusinessValidation(SpecModel):
    """Stage 2: duplicate keys, coordinates inside Korea, sido/gugun consistency."""

    duplicate_keys: FailRunRule = Field(default_factory=FailRunRule, description="Unique keys.")
    bounds: BoundsRule = Field(default_factory=BoundsRule, description="Inside the box.")
    sido_gugun: Rule = Field(default_factory=Rule, description="The gugun belongs to the sido.")


class DatabaseValidation(SpecModel):
    """Stage 3: the target's constraints and foreign keys, checked before writing."""

    constraints: Rule = Field(default_factory=Rule, description="NOT NULL, CHECK, UNIQUE.")
    foreign_keys: Rule = Field(default_factory=Rule, description="Referenced rows exist.")


class PostSyncValidation(FailRunRule):
    """Stage 4: the counts of the run against expectations (the transaction rolls back)."""

    max_inserted: Threshold | None = Field(default=None, description="Most rows inserted.")
    max_updated: Threshold | None = Field(default=None, description="Most rows updated.")
    max_deleted: ShareThreshold | None = Field(default=None, description="Most rows deleted/marked.")

    @model_validator(mode="after")
    def _fail_run_only(self) -> PostSyncValidation:
        if self.action is not RuleAction.FAIL_RUN:
            raise ValueError(
                "expected action fail-run for validation.postSync (counts are checked after "
                f"writing, no single row can be rejected), got {self.action.value!r}"
            )
        return self


class AedValidation(SpecModel):
    format: FormatValidation = Field(default_factory=FormatValidation)
    business: BusinessValidation = Field(default_factory=BusinessValidation)
    database: DatabaseValidation = Field(default_factory=DatabaseValidation)
    post_sync: PostSyncValidation = Field(default_factory=PostSyncValidation)


# --- guards, deletion --------------------------------------------------------------------------


class AedGuards(SpecModel):
    """Checks that abort a run before anything is written."""

    max_row_count_change: Threshold = Field(default="10%", description="Largest row-count change.")
    forbid_all_null_columns: bool = Field(default=True, description="No owned column all NULL.")
    max_deletes: ShareThreshold | None = Field(default=None, description="Most rows deleted/marked.")
    allow_empty: bool = Field(default=False, description="Accept a source with no rows.")


class DeletionPolicy(StrEnum):
    """mark: data_status missing, then deletion_suspected after suspectAfterDays."""

    MARK = "mark"
    DELETE = "delete"
    IGNORE = "ignore"


class AedDeletion(SpecModel):
    """What happens to rows absent from a full pull (incremental runs never delete)."""

    policy: DeletionPolicy = Field(default=DeletionPolicy.MARK, description="mark, delete, ignore.")
    suspect_after_days: int = Field(default=7, ge=1, description="Then deletion_suspected.")


# --- the kind ----------------------------------------------------------------------------------


class AedSourceBindingSpec(SpecModel):
    source: AedSource
    target: AedTarget
    mapping: AedMapping
    validation: AedValidation = Field(default_factory=AedValidation)
    guards: AedGuards = Field(default_factory=AedGuards)
    deletion: AedDeletion = Field(default_factory=AedDeletion)

    @model_validator(mode="after")
    def _columns_known(self) -> AedSourceBindingSpec:
        mapped = self.mapping.column_names
        key = self.target.key_column
        if key not in mapped:
            raise ValueError(
                f"expected target.keyColumn {key!r} to be a mapped column, got columns {list(mapped)}"
            )
        if key not in self.mapping.owned:
            raise ValueError(
                f"expected mapping.ownedColumns to include the key column {key!r}, got "
                f"{list(self.mapping.owned)}"
            )
        for column in self.validation.format.required.fields:
            if column not in mapped:
                raise ValueError(
                    f"expected validation.format.required.fields to name mapped columns, got {column!r}"
                )
        return self


class AedSourceBinding(Resource):
    KIND: ClassVar[str] = "AedSourceBinding"
    PLURAL: ClassVar[str] = "aedsourcebindings"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("aed",)

    kind: Literal["AedSourceBinding"]
    spec: AedSourceBindingSpec
    status: ObjectStatus | None = None
