"""`RbacMapping`: roles, permissions and bindings, some of them derived from a DICOM archive.

An RbacMapping declares the desired content of an RBAC database: a `permissions`
catalogue, `roles` made of those permissions, and static `bindings` (subject → role,
optionally on a scope). `derive` rules add bindings computed from facts in a
dcm4chee-arc-light (archive 5) PostgreSQL database, the `source`: for example the group
`dept:{institution}/{department}` gets `study-reader` on scope `acl:{access_control_id}`.
A rule reads a built-in fact set (`facts`) or, as an escape hatch, a named read-only
`SELECT` (`query`) whose columns feed the `{placeholder}` templates.

The archive's schema changed over 5.26–5.35; `source.layout` pins it or `auto` detects it.
`target` is either a schema the reconciler manages or a mapping onto existing tables.
Only rows the reconciler created are changed (`ownership.authority: owned`) unless full
authority is opted into, and `guards` stop a run that would revoke too much.
"""

from __future__ import annotations

import difflib
import re
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator, model_validator

from reconciler.models.common import (
    SQL_IDENTIFIER_PATTERN,
    DeletionPolicy,
    Duration,
    Problems,
    Resource,
    SecretRef,
    ShareThreshold,
    SpecModel,
    SqlIdentifier,
    raise_problems,
)
from reconciler.models.status import ObjectStatus

# --- scalar types ----------------------------------------------------------------------------

_NAME = r"^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$"


def _check_name(value: str) -> str:
    if len(value) > 128 or not re.fullmatch(_NAME, value):
        raise ValueError(
            "expected a name of letters, digits, '_', '.', ':' and '-', starting and ending "
            f"with a letter or digit, at most 128 characters, such as 'study-reader', got {value!r}"
        )
    return value


RbacName = Annotated[
    str,
    AfterValidator(_check_name),
    WithJsonSchema({"type": "string", "maxLength": 128, "pattern": _NAME}),
]




def _check_table_name(value: str) -> str:
    parts = value.split(".")
    if len(parts) > 2 or not all(re.fullmatch(SQL_IDENTIFIER_PATTERN, p) for p in parts):
        raise ValueError(f"expected a table name such as 'roles' or 'app.roles', got {value!r}")
    return value


TableName = Annotated[
    str,
    AfterValidator(_check_table_name),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)?$"}),
]


_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def template_placeholders(template: str) -> tuple[str, ...]:
    """The placeholder names of a template, in order (`{{` and `}}` are literal braces).

    Raises ValueError when braces are unbalanced or a placeholder is not an identifier.
    """
    names: list[str] = []
    for match in _TEMPLATE_TOKEN.finditer(template):
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            continue
        if name is None:
            raise ValueError(
                f"expected balanced braces in template, got a lone {token!r} in {template!r}"
            )
        if not re.fullmatch(SQL_IDENTIFIER_PATTERN, name):
            raise ValueError(
                "expected placeholders such as {institution} (letters, digits, '_'), got "
                f"{{{name}}} in {template!r}"
            )
        names.append(name)
    return tuple(names)


def _check_template(value: str) -> str:
    if not value:
        raise ValueError("expected a non-empty template such as 'dept:{department}', got ''")
    template_placeholders(value)
    return value


Template = Annotated[
    str,
    AfterValidator(_check_template),
    WithJsonSchema({"type": "string", "minLength": 1, "examples": ["dept:{institution}"]}),
]

# Statements that write, lock or change the session: never part of a derive query.
_FORBIDDEN_SQL = re.compile(
    r"\b(insert|update|delete|merge|truncate|drop|alter|create|grant|revoke|copy|call|"
    r"vacuum|into)\b",
    re.IGNORECASE,
)
_SQL_LITERALS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)


def _check_select(value: str) -> str:
    code = _SQL_LITERALS.sub(" ", value).strip()
    code = code.removesuffix(";").rstrip()
    if ";" in code:
        raise ValueError(
            "expected a single SELECT statement, got several statements separated by ';'"
        )
    first = re.findall(r"^[\s(]*(\w*)", code)[0].lower()
    if first not in ("select", "with"):
        raise ValueError(
            f"expected a single read-only SELECT (or WITH ... SELECT), got a statement "
            f"starting with {first or 'nothing'!r}"
        )
    forbidden = _FORBIDDEN_SQL.search(code)
    if forbidden:
        raise ValueError(
            "expected a read-only SELECT, got the keyword "
            f"{forbidden.group(0).upper()!r} (derive queries never write)"
        )
    return value


SelectStatement = Annotated[
    str,
    AfterValidator(_check_select),
    WithJsonSchema({"type": "string", "minLength": 1, "examples": ["SELECT ... FROM study"]}),
]


# --- source ------------------------------------------------------------------------------------


class ArchiveLayout(StrEnum):
    """The dcm4chee-arc-light schema layout (see the reference on 5.26–5.35)."""

    AUTO = "auto"
    PRE_5_31 = "pre-5.31"
    V5_31 = "5.31"  # patient_id.patient_fk; study access control only
    V5_33 = "5.33"  # + series.access_control_id
    V5_35 = "5.35"  # multi-valued study/series_access_control_id tables


class RbacSource(SpecModel):
    """The archive database the derive rules read (read-only transactions only)."""

    database_url: SecretRef = Field(description="Archive PostgreSQL URL (a secret reference).")
    layout: ArchiveLayout = Field(default=ArchiveLayout.AUTO, description="auto: detect it.")

    @field_validator("layout", mode="before")
    @classmethod
    def _unquoted_version(cls, value: object) -> object:
        """`layout: 5.35` is a number in YAML: read it as the version it spells."""
        return str(value) if isinstance(value, float) and not isinstance(value, bool) else value


# --- declared roles, permissions, bindings -----------------------------------------------------


class Permission(SpecModel):
    name: RbacName = Field(description="Permission name, e.g. study:read.")
    description: str = Field(default="", description="What the permission allows.")


class Role(SpecModel):
    name: RbacName = Field(description="Role name, e.g. study-reader.")
    description: str = Field(default="", description="What the role is for.")
    permissions: list[str] = Field(default_factory=list, description="From the catalogue.")


class Binding(SpecModel):
    """A static binding: `subject` has `role`, optionally only on `scope`."""

    subject: str = Field(min_length=1, description="User or group, e.g. group:radiology.")
    role: str = Field(min_length=1, description="A declared role.")
    scope: str | None = Field(default=None, description="Scope, e.g. acl:CT1; none = global.")


# --- derive rules ------------------------------------------------------------------------------


class FactSet(StrEnum):
    """Built-in fact sets read from the archive (the columns they yield feed the templates)."""

    STUDY_ACCESS_CONTROL = "study-access-control"
    SERIES_ACCESS_CONTROL = "series-access-control"
    SERIES_INSTITUTION = "series-institution"
    MWL_INSTITUTION = "mwl-institution"
    PATIENT_ID_ISSUERS = "patient-id-issuers"


_COMMON = ("accession_no", "department", "department_code", "institution", "institution_code", "modality",
           "study_iuid")
_SERIES = (*_COMMON, "body_part", "receiving_aet", "rejection_state", "sending_aet", "series_iuid",
           "series_rejection_state", "station_name")
FACT_COLUMNS: dict[FactSet, frozenset[str]] = {
    FactSet.STUDY_ACCESS_CONTROL: frozenset({*_SERIES, "access_control_id"}),
    FactSet.SERIES_ACCESS_CONTROL: frozenset({*_SERIES, "access_control_id", "study_access_control_id",
                                              "study_rejection_state"}),
    FactSet.SERIES_INSTITUTION: frozenset({*_SERIES, "study_rejection_state"}),
    FactSet.MWL_INSTITUTION: frozenset({*_COMMON, "sps_status", "worklist_label"}),
    FactSet.PATIENT_ID_ISSUERS: frozenset({"entity_id", "entity_uid", "entity_uid_type", "pat_id",
                                           "pat_id_type_code"}),
}
"""The columns each fact set yields on some archive layout (what templates and filters may
name; the driver's fact sources must agree: tests/drivers/rbac/test_facts.py)."""


class DeriveQuery(SpecModel):
    """An escape hatch: a named read-only SELECT whose columns feed the templates."""

    name: SqlIdentifier = Field(description="Name of the query (in plans and logs).")
    sql: SelectStatement = Field(description="A single SELECT (or WITH ... SELECT) statement.")


class FilterOperator(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "notEquals"
    IN = "in"
    NOT_IN = "notIn"
    MATCHES = "matches"


class FactFilter(SpecModel):
    """Keep only the facts whose `field` satisfies `operator` against `values`."""

    field: SqlIdentifier = Field(description="A column of the fact set or query.")
    operator: FilterOperator = Field(description="equals, notEquals, in, notIn or matches.")
    values: list[str] = Field(description="Values; regular expressions for matches.")

    @model_validator(mode="after")
    def _values_fit_operator(self) -> FactFilter:
        op = self.operator
        if op in (FilterOperator.EQUALS, FilterOperator.NOT_EQUALS) and len(self.values) != 1:
            raise ValueError(
                f"expected exactly one value for operator {op.value}, got {len(self.values)} "
                "(use in / notIn for several)"
            )
        if not self.values:
            raise ValueError(f"expected at least one value for operator {op.value}, got none")
        if op is FilterOperator.MATCHES:
            for pattern in self.values:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(
                        f"expected a regular expression for matches, got {pattern!r} ({exc})"
                    ) from None
        return self


class DeriveRule(SpecModel):
    """Turn archive facts into bindings through subject, role and scope templates."""

    name: RbacName = Field(description="Rule name, unique within derive.")
    facts: FactSet | None = Field(default=None, description="A built-in fact set.")
    query: DeriveQuery | None = Field(default=None, description="Or a read-only SELECT.")
    filters: list[FactFilter] = Field(default_factory=list, description="All must match.")
    subject: Template = Field(description="Subject template, e.g. dept:{institution}.")
    role: Template = Field(description="Role template; a literal must be a declared role.")
    scope: Template | None = Field(
        default=None, description="Scope template, e.g. acl:{access_control_id}; none = global."
    )

    @model_validator(mode="after")
    def _exactly_one_fact_source(self) -> DeriveRule:
        if self.facts is None and self.query is None:
            raise ValueError(
                f"expected exactly one of facts or query in derive rule {self.name!r}, got neither"
            )
        if self.facts is not None and self.query is not None:
            raise ValueError(
                f"expected exactly one of facts or query in derive rule {self.name!r}, got both"
            )
        if self.facts is not None:
            self._check_columns(FACT_COLUMNS[self.facts])
        return self

    def _check_columns(self, columns: frozenset[str]) -> None:
        """Every placeholder and filter field names a column of the fact set, each misspelling
        at its own place (a query's columns are known only when it runs)."""
        found: Problems = []

        def unknown(name: str, what: str) -> str:
            close = difflib.get_close_matches(name, sorted(columns), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return (f"expected {what} to be a column of fact set {self.facts.value if self.facts else ''!r}, "
                    f"got {name!r}{hint} (its columns: {', '.join(sorted(columns))})")

        for field_name in ("subject", "role", "scope"):
            text = getattr(self, field_name)
            for name in template_placeholders(text) if text is not None else ():
                if name not in columns:
                    found.append(((field_name,), unknown(name, f"placeholder {{{name}}}")))
        for index, rule_filter in enumerate(self.filters):
            if rule_filter.field not in columns:
                found.append((("filters", index, "field"), unknown(rule_filter.field, "the filter's field")))
        raise_problems("DeriveRule", found)

    @property
    def placeholders(self) -> frozenset[str]:
        """Every placeholder that the subject, role and scope templates use."""
        names = [*template_placeholders(self.subject), *template_placeholders(self.role)]
        if self.scope is not None:
            names.extend(template_placeholders(self.scope))
        return frozenset(names)


# --- target ------------------------------------------------------------------------------------


class ManagedSchema(SpecModel):
    """A schema the reconciler creates and migrates (roles, permissions, role_permissions,
    subjects, bindings)."""

    schema_name: SqlIdentifier = Field(default="rbac", alias="schema", description="Schema name.")


class TableMapping(SpecModel):
    table: TableName = Field(description="Existing table, optionally schema-qualified.")
    columns: dict[SqlIdentifier, SqlIdentifier] = Field(
        default_factory=dict,
        description="Logical column (e.g. name, role_id) → the table's column name.",
    )


class ExistingTables(SpecModel):
    roles: TableMapping
    permissions: TableMapping
    role_permissions: TableMapping
    subjects: TableMapping
    bindings: TableMapping


class ExistingSchema(SpecModel):
    """A mapping onto tables that already exist (identifiers are always quoted)."""

    tables: ExistingTables


class RbacTarget(SpecModel):
    database_url: SecretRef = Field(description="RBAC PostgreSQL URL (a secret reference).")
    managed_schema: ManagedSchema | None = Field(default=None, description="A schema of its own.")
    existing_schema: ExistingSchema | None = Field(default=None, description="Or existing tables.")

    @model_validator(mode="after")
    def _exactly_one_schema(self) -> RbacTarget:
        given = (self.managed_schema is not None) + (self.existing_schema is not None)
        if given != 1:
            raise ValueError(
                "expected exactly one of managedSchema or existingSchema in target, got "
                f"{'both' if given else 'neither'}"
            )
        return self


# --- sync, ownership, guards -------------------------------------------------------------------


class RbacSync(SpecModel):
    """Incremental runs (`mode: incremental`) read only facts of studies whose
    `watermarkColumn` is past the last run's watermark; full runs compare everything."""

    watermark_column: SqlIdentifier = Field(
        default="created_time", description="Indexed column for incremental runs' watermark."
    )
    # Duration defaults are written as text (validated) so the JSON Schema shows "5m".
    lookback: Duration = Field(
        "5m", validate_default=True,
        description="Re-read facts this long before the watermark (rows committed late).",
    )


class Authority(StrEnum):
    """owned: change only rows the reconciler created; full: own whole tables (opt-in)."""

    OWNED = "owned"  # only rows the reconciler created are updated or deleted
    FULL = "full"  # the reconciler owns the whole tables (explicit opt-in)


class RbacOwnership(SpecModel):
    authority: Authority = Field(default=Authority.OWNED, description="owned or full.")


class RbacGuards(SpecModel):
    max_revokes: ShareThreshold = Field(default="10%", description="Most bindings revoked per run.")
    allow_empty_facts: bool = Field(default=False, description="Empty facts may revoke all.")


# --- the kind ----------------------------------------------------------------------------------


class RbacMappingSpec(SpecModel):
    source: RbacSource | None = Field(default=None, description="The archive (for derive).")
    permissions: list[Permission] = Field(default_factory=list, description="The catalogue.")
    roles: list[Role] = Field(default_factory=list, description="Roles and their permissions.")
    bindings: list[Binding] = Field(default_factory=list, description="Static bindings.")
    derive: list[DeriveRule] = Field(default_factory=list, description="Derived bindings.")
    target: RbacTarget
    sync: RbacSync = Field(default_factory=RbacSync)
    ownership: RbacOwnership = Field(default_factory=RbacOwnership)
    guards: RbacGuards = Field(default_factory=RbacGuards)
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.ORPHAN,
        description="When the object is deleted (Kubernetes): Orphan keeps the RBAC database as "
        "it is; Delete revokes and removes the rows the reconciler created (inventory and marker).",
    )

    @model_validator(mode="after")
    def _references_resolve(self) -> RbacMappingSpec:
        """Every problem between fields at once, each at its own place (not one per run of
        `validate`, all at `spec`)."""
        found: Problems = []
        for section, kind, names in (("permissions", "permission", [p.name for p in self.permissions]),
                                     ("roles", "role", [r.name for r in self.roles]),
                                     ("derive", "derive rule", [d.name for d in self.derive])):
            first: dict[str, int] = {}
            for index, name in enumerate(names):
                if name in first:
                    found.append(((section, index, "name"), f"expected unique {kind} names, got {name!r} "
                                                            f"twice (first at {section}[{first[name]}])"))
                first.setdefault(name, index)
        catalogue = {p.name for p in self.permissions}
        roles = {r.name for r in self.roles}
        for i, role in enumerate(self.roles):
            for j, permission in enumerate(role.permissions):
                if permission not in catalogue:
                    found.append((("roles", i, "permissions", j),
                                  f"expected role {role.name!r} to use permissions from the catalogue, "
                                  f"got unknown permission {permission!r}"))
        for i, binding in enumerate(self.bindings):
            if binding.role not in roles:
                found.append((("bindings", i, "role"), f"expected binding of {binding.subject!r} to name a "
                                                       f"declared role, got unknown role {binding.role!r}"))
            for field_name, text in (("subject", binding.subject), ("scope", binding.scope)):
                if text is not None and (text != text.strip() or " → " in text or " @ " in text):
                    found.append((("bindings", i, field_name),
                                  f"expected a {field_name} without surrounding spaces, ' → ' or ' @ ' "
                                  f"(they separate a binding's parts), got {text!r}"))
        for i, rule in enumerate(self.derive):
            if not template_placeholders(rule.role) and rule.role not in roles:
                found.append((("derive", i, "role"), f"expected derive rule {rule.name!r} to name a declared "
                                                     f"role, got unknown role {rule.role!r}"))
        if self.derive and self.source is None:
            found.append((("derive",), "expected a source (the archive database) for derive rules, got none"))
        raise_problems("RbacMappingSpec", found)
        return self


class RbacMapping(Resource):
    KIND: ClassVar[str] = "RbacMapping"
    PLURAL: ClassVar[str] = "rbacmappings"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("rbac",)

    kind: Literal["RbacMapping"]
    spec: RbacMappingSpec
    status: ObjectStatus | None = None
