"""Layout detection from the catalog: every fixture release, and what is refused."""

from __future__ import annotations

import psycopg
import pytest

from drivers.rbac.conftest import ArchiveFactory, execute
from reconciler.drivers.rbac.layouts import Catalog, UnknownLayout, read_catalog, resolve_layout
from reconciler.models.rbac import ArchiveLayout

pytestmark = pytest.mark.postgres


def catalog(url: str) -> Catalog:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        return read_catalog(cur)


@pytest.mark.parametrize(("release", "layout"), [
    ("5.30", ArchiveLayout.PRE_5_31), ("5.32", ArchiveLayout.V5_31), ("5.34", ArchiveLayout.V5_33),
    ("5.35", ArchiveLayout.V5_35)])
def test_each_release_is_detected(make_archive: ArchiveFactory, release: str, layout: ArchiveLayout) -> None:
    found = catalog(make_archive(release))  # type: ignore[arg-type]
    assert resolve_layout(ArchiveLayout.AUTO, found) is layout
    assert resolve_layout(layout, found) is layout


def test_a_pin_that_disagrees_with_the_catalog_is_refused(make_archive: ArchiveFactory) -> None:
    found = catalog(make_archive("5.35"))
    with pytest.raises(UnknownLayout, match=r"pinned to 5.33 but the archive has layout 5.35"):
        resolve_layout(ArchiveLayout.V5_33, found)


def test_an_archive_before_5_26_is_refused(make_archive: ArchiveFactory) -> None:
    url = make_archive("5.32")
    execute(url, "CREATE TABLE issuer (pk bigint PRIMARY KEY, entity_id varchar(255))")
    with pytest.raises(UnknownLayout, match=r"unknown archive layout in schema 'public': study, series, "
                                            r"patient, patient_id, mwl_item, code, issuer"):
        resolve_layout(ArchiveLayout.AUTO, catalog(url))


def test_a_database_without_archive_tables_is_refused_naming_that(make_archive: ArchiveFactory) -> None:
    url = make_archive("5.34")
    execute(url, "DROP TABLE series CASCADE")
    with pytest.raises(UnknownLayout) as info:
        resolve_layout(ArchiveLayout.AUTO, catalog(url))
    assert "study, patient, patient_id" in str(info.value) and "series," not in str(info.value)


def test_detection_is_pure_on_a_hand_made_catalog() -> None:
    columns = {("study", "pk"), ("series", "pk"), ("patient", "pk"), ("patient_id", "entity_id"),
               ("patient_id", "patient_fk"), ("patient", "patient_id_fk")}
    both = r"patient_id\.patient_fk present; patient\.patient_id_fk present"
    with pytest.raises(UnknownLayout, match=both):
        resolve_layout(ArchiveLayout.AUTO, Catalog("public", frozenset(columns)))
    assert resolve_layout(ArchiveLayout.V5_35, Catalog("public", frozenset())) is ArchiveLayout.V5_35


def test_the_5_35_tables_next_to_not_null_columns_are_a_half_applied_upgrade(
        make_archive: ArchiveFactory) -> None:
    from drivers.rbac.test_driver import UPDATE_5_35_PART_1

    url = make_archive("5.34")
    for statement in UPDATE_5_35_PART_1:
        execute(url, statement)
    with pytest.raises(UnknownLayout, match=r"half-applied 5.35 upgrade .*study\.access_control_id and "
                                            r"series\.access_control_id are still NOT NULL"):
        resolve_layout(ArchiveLayout.AUTO, catalog(url))
    with pytest.raises(UnknownLayout, match=r"half-applied"):  # a pin does not override it
        resolve_layout(ArchiveLayout.V5_35, catalog(url))
    execute(url, "ALTER TABLE study ALTER access_control_id DROP NOT NULL")
    with pytest.raises(UnknownLayout, match=r"series\.access_control_id is still NOT NULL"):
        resolve_layout(ArchiveLayout.AUTO, catalog(url))
    execute(url, "ALTER TABLE series ALTER access_control_id DROP NOT NULL")
    assert resolve_layout(ArchiveLayout.AUTO, catalog(url)) is ArchiveLayout.V5_35


def test_one_of_the_two_5_35_tables_is_a_half_applied_upgrade(make_archive: ArchiveFactory) -> None:
    url = make_archive("5.34")
    execute(url, "CREATE TABLE study_access_control_id (study_fk bigint NOT NULL, "
                 "access_control_id varchar(255))")
    with pytest.raises(UnknownLayout, match=r"half-applied 5.35 upgrade .*the table study_access_control_id "
                                            r"exists but series_access_control_id does not"):
        resolve_layout(ArchiveLayout.AUTO, catalog(url))
