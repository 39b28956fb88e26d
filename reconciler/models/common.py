"""Parts shared by every kind: object metadata, conditions, secret references, schedules.

These pydantic models are the single source of truth for the spec format: the loader
validates YAML against them, and the JSON Schemas and CRDs are generated from them. YAML
uses Kubernetes naming (camelCase aliases); Python code uses snake_case attributes.
Models are strict (an unknown field is an error) and frozen (a loaded spec is a value).

A secret is never a value in a spec, only a reference (`{env: NAME}`, `{file: PATH}`,
`{secretRef: {name, key}}`); resolution happens at run time in `loading.secrets`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError

API_GROUP = "reconciler.dev"
API_VERSION = f"{API_GROUP}/v1alpha1"


class SpecModel(BaseModel):
    """Base of every spec model: camelCase in YAML, strict, immutable."""

    model_config = ConfigDict(
        defer_build=True,  # validators are built on first use: CLI start-up stays fast
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )


# --- scalar types with helpful validation -------------------------------------------------

_DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def _check_dns1123_subdomain(value: str) -> str:
    if len(value) > 253 or not re.fullmatch(_DNS1123_SUBDOMAIN, value):
        raise ValueError(
            "expected a DNS-1123 name: lower-case letters, digits, '-' and '.', starting and "
            f"ending with a letter or digit, at most 253 characters; got {value!r}"
        )
    return value


def _check_dns1123_label(value: str) -> str:
    if len(value) > 63 or not re.fullmatch(_DNS1123_LABEL, value):
        raise ValueError(
            "expected a DNS-1123 label: lower-case letters, digits and '-', starting and "
            f"ending with a letter or digit, at most 63 characters; got {value!r}"
        )
    return value


ObjectName = Annotated[
    str,
    AfterValidator(_check_dns1123_subdomain),
    WithJsonSchema({"type": "string", "maxLength": 253, "pattern": _DNS1123_SUBDOMAIN}),
]
NamespaceName = Annotated[
    str,
    AfterValidator(_check_dns1123_label),
    WithJsonSchema({"type": "string", "maxLength": 63, "pattern": _DNS1123_LABEL}),
]

SQL_IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_HTTP_URL = r"https?://[^\s/]+(/\S*)?"


def _check_sql_identifier(value: str) -> str:
    if len(value) > 63 or not re.fullmatch(SQL_IDENTIFIER_PATTERN, value):
        raise ValueError(
            "expected an SQL identifier (letters, digits and '_', not starting with a digit, "
            f"at most 63 characters), got {value!r}"
        )
    return value


SqlIdentifier = Annotated[
    str,
    AfterValidator(_check_sql_identifier),
    WithJsonSchema({"type": "string", "maxLength": 63, "pattern": SQL_IDENTIFIER_PATTERN}),
]


def _check_http_url(value: str) -> str:
    if not re.fullmatch(_HTTP_URL, value):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


HttpUrlText = Annotated[
    str,
    AfterValidator(_check_http_url),
    WithJsonSchema({"type": "string", "pattern": r"^https?://", "format": "uri"}),
]
DnsLabel = NamespaceName
"""A DNS-1123 label: the shape of namespaces and of names that become file names."""

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_MAX_DURATION = timedelta(days=36500)


def parse_duration(value: Any) -> timedelta:
    """Parse Go-style durations (`90s`, `5m`, `1h30m`, `500ms`, `2d`) into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a duration such as '90s', '5m' or '1h'; got {value!r}")
    if isinstance(value, int | float):
        raise ValueError(
            f"expected a duration with a unit, such as '{value}s' or '{value}m'; got {value!r}"
        )
    text = value.strip()
    if not re.fullmatch(_DURATION_PATTERN, text):
        raise ValueError(f"expected a duration such as '90s', '5m' or '1h'; got {value!r}")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"expected a positive duration; got {value!r}")
    if seconds > _MAX_DURATION.total_seconds():  # later than year 9999 is past what a datetime holds
        raise ValueError(f"expected a duration of at most {_MAX_DURATION.days}d (100 years); got {value!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render a timedelta back in the shortest Go-style form (`1h30m`, `90ms`)."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms % 1000:
        return f"{total_ms}ms"
    seconds = total_ms // 1000
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _DURATION_PATTERN, "examples": ["90s", "5m"]}),
]


def _check_cron(value: str) -> str:
    from croniter import croniter  # imported here: only specs with schedules pay for it

    fields = value.split()
    if not value.startswith("@") and len(fields) != 5:
        raise ValueError(
            "expected a cron expression with 5 fields (minute hour day-of-month month "
            f"day-of-week), such as '0 4 * * *'; got {value!r}"
        )
    if not croniter.is_valid(value):
        raise ValueError(f"expected a valid cron expression such as '0 4 * * *'; got {value!r}")
    return value


CronExpression = Annotated[
    str,
    AfterValidator(_check_cron),
    WithJsonSchema({"type": "string", "examples": ["0 4 * * *", "@daily"]}),
]


def _check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"expected an IANA time zone name such as 'Asia/Seoul' or 'UTC'; got {value!r}"
        ) from None
    return value


TimeZoneName = Annotated[
    str,
    AfterValidator(_check_time_zone),
    WithJsonSchema({"type": "string", "examples": ["Asia/Seoul", "UTC"]}),
]


def _check_threshold(value: Any) -> int | str:
    if isinstance(value, bool):
        raise ValueError(f"expected a count such as 100 or a percentage such as '10%'; got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a non-negative count; got {value!r}")
        return value
    if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?%", value.strip()):
        return value.strip()
    raise ValueError(f"expected a count such as 100 or a percentage such as '10%'; got {value!r}")


Threshold = Annotated[
    int | str,
    BeforeValidator(_check_threshold),
    WithJsonSchema(
        {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    ),
]


def _check_share(value: int | str) -> int | str:
    if isinstance(value, str) and float(value.rstrip("%")) > 100:
        raise ValueError(f"expected a percentage of at most 100% (of what is there to remove), got "
                         f"{value!r}; a count is written without %")
    return value


ShareThreshold = Annotated[Threshold, AfterValidator(_check_share)]
"""A threshold on removals: a count, or a percentage of at most 100%."""


def threshold_limit(threshold: int | str, total: int) -> float:
    """The absolute limit a threshold allows against `total` (a count or a percentage)."""
    if isinstance(threshold, int):
        return float(threshold)
    return total * float(threshold.rstrip("%")) / 100.0


Problems = list[tuple[tuple[str | int, ...], str]]
"""(location within the model, message) of each problem a model validator found."""


def raise_problems(model: str, found: Problems) -> None:
    """Raise every problem a model validator found at once, each at its own location (below
    the model's), so that a spec's author reads them all, each at its line and column, in one
    `validate`; a `ValueError` would name only the first, at the model."""
    if found:
        raise ValidationError.from_exception_data(model, [
            InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)
            for loc, message in found])


# --- secret references ----------------------------------------------------------------------


class KubernetesSecretKey(SpecModel):
    """A key of a Kubernetes Secret in the object's namespace."""

    name: ObjectName
    key: str = Field(min_length=1)


class KeyringEntry(SpecModel):
    """An entry of the OS keyring (macOS Keychain, Windows Credential Locker, Secret Service):
    stored with `reconciler secrets set SERVICE USERNAME`."""

    service: str = Field(min_length=1, max_length=200)
    username: str = Field(min_length=1, max_length=200)


class SecretRef(SpecModel):
    """Where a secret value comes from; the value itself never appears in a spec.

    Exactly one of `env`, `file`, `keyring` or `secretRef` is set. Printing a reference
    shows where the value lives, never the value.
    """

    env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: str | None = None
    keyring: KeyringEntry | None = None
    secret_ref: KubernetesSecretKey | None = None

    @model_validator(mode="before")
    @classmethod
    def _reject_literals(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(
                "expected a secret reference {env: NAME}, {file: PATH}, {keyring: {service, "
                "username}} or {secretRef: {name, key}}; got a literal value (not shown): secret "
                "values are never written in specs"
            )
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [n for n in ("env", "file", "keyring", "secret_ref") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("expected exactly one of env, file, keyring or secretRef")
        return self

    def describe(self) -> str:
        if self.env is not None:
            return f"env:{self.env}"
        if self.file is not None:
            return f"file:{self.file}"
        if self.keyring is not None:
            return f"keyring:{self.keyring.service}/{self.keyring.username}"
        assert self.secret_ref is not None
        return f"secretRef:{self.secret_ref.name}/{self.secret_ref.key}"


# --- metadata, references, conditions -------------------------------------------------------


class ObjectMeta(SpecModel):
    """The subset of Kubernetes object metadata that specs use."""

    name: ObjectName
    namespace: NamespaceName = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = Field(default=None, ge=0)
    uid: str | None = None
    resource_version: str | None = None
    creation_timestamp: datetime | None = None


class _TargetKind:
    """A kind a SyncJob can schedule: any registered kind but SyncJob (see `reconciler.kinds`).
    Validated against the registry when a spec is loaded; the JSON Schema's enum is the
    registry's kinds when the schema is generated."""

    @staticmethod
    def _names() -> list[str]:
        from reconciler.kinds import schedulable_kinds

        return schedulable_kinds()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic_core import core_schema

        def check(value: str) -> str:
            from reconciler.kinds import REGISTRY, SCHEDULER_KIND

            if value == SCHEDULER_KIND or REGISTRY.find(value) is None:
                raise ValueError(f"expected one of {', '.join(sorted(cls._names()))}, got {value!r}")
            return value

        return core_schema.no_info_after_validator_function(check, core_schema.str_schema())

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "enum": cls._names()}


DomainKind = Annotated[str, _TargetKind]


class TargetRef(SpecModel):
    """A reference to the object a SyncJob reconciles."""

    kind: DomainKind
    name: ObjectName
    namespace: NamespaceName | None = None


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(SpecModel):
    """A Kubernetes-style status condition (see `engine.conditions` for the helpers)."""

    type: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=316)
    status: ConditionStatus
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field(default="", max_length=32768)
    last_transition_time: datetime
    observed_generation: int | None = None


class DeletionPolicy(StrEnum):
    """What deleting the object does to its target (as Flux's `prune`, but opt-in)."""

    ORPHAN = "Orphan"  # the target keeps everything; the store keeps the history
    DELETE = "Delete"  # remove what the inventory says the reconciler created, nothing else


class Mode(StrEnum):
    """How much of a target a run reconciles."""

    FULL = "full"
    INCREMENTAL = "incremental"


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """The identity of an object: kind, namespace and name (`Kind/namespace/name`)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def short(self) -> str:
        """`Kind/name` in the default namespace, `Kind/namespace/name` elsewhere."""
        if self.namespace == "default":
            return f"{self.kind}/{self.name}"
        return str(self)

    @classmethod
    def parse(cls, text: str, *, default_namespace: str = "default") -> ObjectRef:
        """Parse `Kind/name` or `Kind/namespace/name`."""
        parts = text.split("/")
        if len(parts) == 2 and all(parts):
            return cls(parts[0], default_namespace, parts[1])
        if len(parts) == 3 and all(parts):
            return cls(parts[0], parts[1], parts[2])
        raise ValueError(f"expected KIND/NAME or KIND/NAMESPACE/NAME, got {text!r}")


class Resource(SpecModel):
    """Base of every kind: `apiVersion`, `kind`, `metadata`, `spec` (and `status`)."""

    KIND: ClassVar[str] = ""
    PLURAL: ClassVar[str] = ""
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()

    api_version: Literal["reconciler.dev/v1alpha1"]
    metadata: ObjectMeta

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.KIND, self.metadata.namespace, self.metadata.name)
