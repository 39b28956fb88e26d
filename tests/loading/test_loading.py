"""Loading specs: located errors, all-or-nothing folders, duplicates, git revisions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import git
import pytest

from reconciler.errors import SpecError
from reconciler.loading import load_specs
from reconciler.models import ObjectRef, SyncJob

JOB = """\
apiVersion: reconciler.dev/v1alpha1
kind: SyncJob
metadata:
  name: {name}
spec:
  targetRef: {{kind: AgentConfig, name: team}}
  schedule: "0 4 * * *"
  timeZone: Asia/Seoul
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_specs(path)
    return [str(p) for p in info.value.problems]


def test_a_folder_loads_every_document_of_every_yaml_file(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", JOB.format(name="one") + "---\n" + JOB.format(name="two"))
    write(tmp_path, "nested/b.yml", JOB.format(name="three"))
    write(tmp_path, "notes.txt", "not a spec")
    specs = load_specs(tmp_path)
    assert [o.metadata.name for o in specs] == ["one", "two", "three"]
    assert all(isinstance(o, SyncJob) for o in specs)
    origin = specs.origins[ObjectRef("SyncJob", "default", "two")]
    assert origin.source.endswith("a.yaml") and origin.line == 10


def test_hidden_folders_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, ".git/x.yaml", "not: [valid")
    write(tmp_path, "a.yaml", JOB.format(name="one"))
    assert len(load_specs(tmp_path)) == 1


def test_an_error_names_file_line_column_and_field_path(tmp_path: Path) -> None:
    path = write(tmp_path, "jobs.yaml", JOB.format(name="one").replace(
        'schedule: "0 4 * * *"', "interval: soon"))
    assert problems(tmp_path) == [
        f"{path}:7:13: spec.interval: expected a duration such as '90s', '5m' or '1h'; got 'soon'"
    ]


def test_a_misspelled_field_suggests_the_right_one(tmp_path: Path) -> None:
    write(tmp_path, "jobs.yaml", JOB.format(name="one").replace("timeZone", "timezone"))
    [problem] = problems(tmp_path)
    assert problem.endswith(":8:3: spec.timezone: unknown field 'timezone'; did you mean 'timeZone'?")


def test_a_missing_required_field_names_the_field(tmp_path: Path) -> None:
    write(tmp_path, "jobs.yaml", JOB.format(name="one").replace(
        "  targetRef: {kind: AgentConfig, name: team}\n", ""))
    [problem] = problems(tmp_path)
    assert "spec.targetRef: required field is missing" in problem


def test_an_unknown_kind_lists_the_known_kinds(tmp_path: Path) -> None:
    write(tmp_path, "w.yaml", "apiVersion: reconciler.dev/v1alpha1\nkind: Widget\nmetadata: {name: w}\n")
    [problem] = problems(tmp_path)
    # Plugins (the test driver) may have registered more kinds; the built-in ones are listed.
    assert ":2:7: kind: unknown kind 'Widget'; expected one of: AedSourceBinding, AgentConfig, " in problem
    assert "RbacMapping" in problem and problem.endswith("SyncJob")


def test_a_wrong_api_version_says_which_is_expected(tmp_path: Path) -> None:
    write(tmp_path, "w.yaml", JOB.format(name="one").replace("v1alpha1", "v9"))
    [problem] = problems(tmp_path)
    assert ":1:13: apiVersion: expected 'reconciler.dev/v1alpha1'; got 'reconciler.dev/v9'" in problem


def test_a_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "apiVersion: x\nkind: [SyncJob\nmetadata: {}\n")
    [problem] = problems(tmp_path)
    assert "bad.yaml:" in problem and "invalid YAML" in problem


def test_a_duplicate_object_names_both_places(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", JOB.format(name="one"))
    second = write(tmp_path, "b.yaml", JOB.format(name="one"))
    [problem] = problems(tmp_path)
    assert problem.startswith(f"{second}:1:1: metadata.name: SyncJob/one is declared twice")
    assert f"first at {first}:1:1" in problem


def test_a_folder_with_one_bad_file_loads_nothing(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", JOB.format(name="good"))
    write(tmp_path, "bad.yaml", JOB.format(name="Bad"))
    found = problems(tmp_path)
    assert len(found) == 1 and "bad.yaml:4:9: metadata.name" in found[0]


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", JOB.format(name="A"))
    write(tmp_path, "b.yaml", "key: [unclosed\n")
    write(tmp_path, "c.yaml", JOB.format(name="c").replace('"0 4 * * *"', '"0 4 * *"'))
    found = problems(tmp_path)
    assert len(found) == 3
    assert {Path(p.split(":")[0]).name for p in found} == {"a.yaml", "b.yaml", "c.yaml"}


def test_a_document_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "list.yaml", "- a\n- b\n")
    [problem] = problems(tmp_path)
    assert "expected a mapping with apiVersion, kind, metadata and spec" in problem


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    [problem] = problems(tmp_path / "nope")
    assert "no such file or directory" in problem


def test_specs_load_from_a_git_revision(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    write(tmp_path, "specs/jobs.yaml", JOB.format(name="first"))
    repo.index.add(["specs/jobs.yaml"])
    old = repo.index.commit("first").hexsha
    write(tmp_path, "specs/jobs.yaml", JOB.format(name="second"))
    repo.index.add(["specs/jobs.yaml"])
    repo.index.commit("second")
    write(tmp_path, "specs/jobs.yaml", JOB.format(name="uncommitted"))

    at_old = load_specs("specs", repo=tmp_path, rev=old)
    at_head = load_specs("specs", repo=tmp_path, rev="HEAD")
    assert [o.metadata.name for o in at_old] == ["first"]
    assert [o.metadata.name for o in at_head] == ["second"]
    assert at_old.revision == old
    assert next(iter(at_head.origins.values())).source == "HEAD:specs/jobs.yaml"


def test_git_errors_are_spec_errors(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "t").set_value("user", "email", "t@example.com")
    write(tmp_path, "specs/jobs.yaml", JOB.format(name="first"))
    repo.index.add(["specs/jobs.yaml"])
    repo.index.commit("first")
    with pytest.raises(SpecError, match="unknown git revision 'nope'"):
        load_specs("specs", repo=tmp_path, rev="nope")
    with pytest.raises(SpecError, match="no such path in this revision"):
        load_specs("elsewhere", repo=tmp_path, rev="HEAD")


def test_the_shipped_specs_are_valid() -> None:
    specs = load_specs(Path(__file__).parents[2] / "specs")
    assert {o.KIND for o in specs} >= {"SyncJob", "AgentConfig", "AedSourceBinding", "RbacMapping"}


def test_a_literal_secret_in_a_spec_is_refused_without_echoing_it(tmp_path: Path) -> None:
    write(tmp_path, "aed.yaml", """\
        apiVersion: reconciler.dev/v1alpha1
        kind: AedSourceBinding
        metadata: {name: aed}
        spec:
          source: {serviceKey: sentinel-secret-value}
          target: {databaseUrl: {env: AED_DATABASE_URL}}
          mapping:
            columns:
              - {column: equipment_serial, from: serialSeq}
        """)
    found = problems(tmp_path)
    assert any("spec.source.serviceKey: expected a secret reference" in p for p in found)
    assert not any("sentinel-secret-value" in p for p in found)


def test_a_bounds_pair_error_reads_expected_min_max(tmp_path: Path) -> None:
    path = write(tmp_path, "aed.yaml", """\
        apiVersion: reconciler.dev/v1alpha1
        kind: AedSourceBinding
        metadata: {name: aed}
        spec:
          source: {serviceKey: {env: EGEN_SERVICE_KEY}}
          target: {databaseUrl: {env: AED_DATABASE_URL}}
          mapping:
            columns:
              - {column: equipment_serial, from: serialSeq}
          validation:
            business:
              bounds:
                latitude: north
        """)
    assert problems(tmp_path) == [
        f"{path}:13:19: spec.validation.business.bounds.latitude: expected [min, max], got 'north'"
    ]
