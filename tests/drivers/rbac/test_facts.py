"""Built-in fact sets on real archives: the driver's SQL against a naive reading of every row."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from drivers.rbac.conftest import ArchiveFactory, query
from reconciler.drivers.rbac.archive_ddl import Release
from reconciler.drivers.rbac.source import read_facts
from reconciler.errors import DriverError
from reconciler.models.rbac import RbacMapping, RbacMappingSpec

pytestmark = pytest.mark.postgres


def spec(*rules: dict[str, Any]) -> RbacMappingSpec:
    return RbacMapping.model_validate({
        "apiVersion": "reconciler.dev/v1alpha1", "kind": "RbacMapping", "metadata": {"name": "m"},
        "spec": {"source": {"databaseUrl": {"env": "A"}},
                 "roles": [{"name": "reader"}], "derive": list(rules),
                 "target": {"databaseUrl": {"env": "T"}, "managedSchema": {}}}}).spec


def facts(url: str, *rules: dict[str, Any]) -> set[tuple[Any, ...]]:
    result = read_facts(url, spec(*rules), incremental=False, watermarks={})
    return set(result.rules[0].rows)


def known(*values: Any) -> bool:
    return all(v not in (None, "", "*") for v in values)


@pytest.mark.parametrize("release", ["5.34", "5.35"])
def test_study_access_control_reads_the_layouts_own_storage(make_archive: ArchiveFactory,
                                                             release: Release) -> None:
    url = make_archive(release)
    rule = {"name": "acl", "facts": "study-access-control", "subject": "study:{study_iuid}",
            "role": "reader", "scope": "acl:{access_control_id}"}
    column = set(query(url, "SELECT access_control_id, study_iuid FROM study"))
    if release == "5.35":
        naive = set(query(url, "SELECT a.access_control_id, st.study_iuid FROM study st "
                               "LEFT JOIN study_access_control_id a ON a.study_fk = st.pk"))
        assert naive != column  # second IDs live only in the table: reading the column is wrong
    else:
        naive = column
    assert facts(url, rule) == {(acl, iuid) for acl, iuid in naive if known(acl)}


@pytest.mark.parametrize("release", ["5.34", "5.35"])
def test_patient_id_issuer_placeholders_never_become_facts(make_archive: ArchiveFactory,
                                                           release: Release) -> None:
    url = make_archive(release)
    rule = {"name": "issuers", "facts": "patient-id-issuers", "subject": "issuer:{entity_id}",
            "role": "reader"}
    assert ("*",) in set(query(url, "SELECT entity_id FROM patient_id"))  # the 5.34 placeholder is there
    assert facts(url, rule) == {("AMC",), ("SMC",), ("SNUH",), ("YUHS",)}


@pytest.mark.parametrize("release", ["5.30", "5.32", "5.34", "5.35"])
def test_series_institution_and_worklist_facts_on_every_layout(make_archive: ArchiveFactory,
                                                               release: Release) -> None:
    url = make_archive(release)
    rule = {"name": "inst", "facts": "series-institution", "subject": "inst:{institution_code}/{department}",
            "role": "reader", "filters": [{"field": "modality", "operator": "in", "values": ["CT", "MR"]}]}
    naive = query(url, "SELECT c.code_value, se.department FROM series se "
                       "JOIN code c ON c.pk = se.inst_code_fk WHERE se.modality IN ('CT', 'MR')")
    assert facts(url, rule) == {(d, c) for c, d in naive if known(d)}
    mwl = {"name": "wl", "facts": "mwl-institution", "subject": "wl:{worklist_label}/{institution}",
           "role": "reader"}
    assert facts(url, mwl) == set(query(url, "SELECT DISTINCT institution, worklist_label FROM mwl_item"))


def test_series_access_control_needs_a_layout_with_series_ids(make_archive: ArchiveFactory) -> None:
    url = make_archive("5.32")
    rule = {"name": "s", "facts": "series-access-control", "subject": "x:{access_control_id}",
            "role": "reader"}
    with pytest.raises(DriverError, match=r"needs series-level access control .* layout 5\.31"):
        facts(url, rule)


def test_a_placeholder_the_fact_set_lacks_is_named() -> None:
    """Found by validation, before any archive is read."""
    from pydantic import ValidationError

    rule = {"name": "s", "facts": "mwl-institution", "subject": "x:{station_name}", "role": "reader"}
    with pytest.raises(ValidationError, match=r"expected placeholder \{station_name\} to be a column of fact "
                                              r"set 'mwl-institution', got 'station_name'.*worklist_label"):
        spec(rule)


def test_an_escape_hatch_query_missing_a_column_is_named(make_archive: ArchiveFactory) -> None:
    rule = {"name": "q", "query": {"name": "mods", "sql": "SELECT modality FROM series"},
            "subject": "x:{modality}/{department}", "role": "reader"}
    with pytest.raises(DriverError, match=r"uses department, which query 'mods' does not have; "
                                          r"it has: modality"):
        facts(make_archive("5.35"), rule)


@pytest.mark.parametrize("release", ["5.34", "5.35"])
def test_a_series_rejected_on_its_own_grants_nothing(make_archive: ArchiveFactory, release: Release) -> None:
    """dcm4chee's RejectionState: 0 none, 1 partial, 2 complete, 3 empty. One series of a study
    is rejected (COMPLETE), the study is then PARTIAL: the series' facts are gone, its siblings'
    stay, and the study's own state stays readable as study_rejection_state."""
    from drivers.rbac.conftest import execute

    url = make_archive(release)
    study = query(url, "SELECT study_fk FROM series GROUP BY study_fk HAVING count(*) >= 2 "
                       "ORDER BY study_fk LIMIT 1")[0][0]
    rejected, kept = (r[0] for r in query(
        url, "SELECT pk FROM series WHERE study_fk = %s ORDER BY pk LIMIT 2", (study,)))
    execute(url, "UPDATE series SET series_iuid = 'REJECTED-' || pk, rejection_state = 2 WHERE pk = %s",
            (rejected,))
    execute(url, "UPDATE series SET series_iuid = 'KEPT-' || pk WHERE pk = %s", (kept,))
    execute(url, "UPDATE study SET rejection_state = 1 WHERE pk = %s", (study,))
    not_rejected = [{"field": "rejection_state", "operator": "notEquals", "values": ["2"]}]
    for fact_set in ("series-access-control", "series-institution"):
        rule = {"name": "r", "facts": fact_set, "subject": "series:{series_iuid}", "role": "reader",
                "filters": not_rejected}
        read = {row[0] for row in facts(url, rule)}
        assert f"KEPT-{kept}" in read and f"REJECTED-{rejected}" not in read, fact_set
        both = {"name": "r", "facts": fact_set, "subject": "series:{series_iuid}",
                "role": "{rejection_state}-{study_rejection_state}"}
        states = {row for row in facts(url, both) if row[1] in (f"KEPT-{kept}", f"REJECTED-{rejected}")}
        assert states == {("0", f"KEPT-{kept}", "1"), ("2", f"REJECTED-{rejected}", "1")}, fact_set
    per_study = {"name": "r", "facts": "study-access-control", "subject": "series:{series_iuid}",
                 "role": "reader", "filters": [*not_rejected, {"field": "series_rejection_state",
                                                               "operator": "notEquals", "values": ["2"]}]}
    read = {row[0] for row in facts(url, per_study)}
    assert f"KEPT-{kept}" in read and f"REJECTED-{rejected}" not in read


def test_the_models_fact_columns_are_the_fact_sources_columns() -> None:
    """What `validate` lets templates and filters name is what the driver can read."""
    from reconciler.drivers.rbac.facts import fact_source
    from reconciler.models.rbac import FACT_COLUMNS, ArchiveLayout, FactSet

    for facts in FactSet:
        columns: set[str] = set()
        for layout in ArchiveLayout:
            if layout is not ArchiveLayout.AUTO:
                with contextlib.suppress(Exception):  # a fact set a layout does not have
                    columns |= set(fact_source(facts, layout, "updated_time").columns)
        assert FACT_COLUMNS[facts] == columns, facts
