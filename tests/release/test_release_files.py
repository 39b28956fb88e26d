"""The shipping files: GitHub workflows, the compose stack, the changelog, and the names they share.

The workflows are validated against the GitHub workflow JSON schema and compose.yaml against
the Compose specification's JSON schema, both as vendored by check-jsonschema (no network);
each check is also shown to reject a broken file, so a green run means something.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def _check(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema,
                           *map(str, files)], capture_output=True, text=True, timeout=120, check=False)


def _project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def test_workflows_are_ci_and_release() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "release.yml"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_against_the_github_workflow_schema(workflow: Path) -> None:
    done = _check("vendor.github-workflows", workflow)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_schema_check_rejects_a_job_without_runs_on(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    steps:\n      - run: echo hi\n")
    assert _check("vendor.github-workflows", broken).returncode == 1


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    done = _check("vendor.compose-spec", ROOT / "compose.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_schema_check_rejects_an_unknown_depends_on_condition(tmp_path: Path) -> None:
    text = (ROOT / "compose.yaml").read_text().replace("condition: service_healthy", "condition: healthy", 1)
    broken = tmp_path / "compose.yaml"
    broken.write_text(text)
    assert _check("vendor.compose-spec", broken).returncode == 1


def test_ci_runs_lint_types_and_the_suite_with_postgres_redis_and_mosquitto() -> None:
    ci = _yaml(ROOT / ".github" / "workflows" / "ci.yml")
    runs = {job: " ".join(step.get("run", "") for step in spec["steps"]) for job, spec in ci["jobs"].items()}
    assert "ruff check" in runs["lint"] and "mypy" in runs["lint"]
    assert "pytest" in runs["test"]
    assert set(ci["jobs"]["test"]["services"]) == {"postgres", "redis", "mosquitto"}
    assert "tests/container" in runs["container"]
    assert ".ci/container-tier prepare" in runs["container"]


def test_release_runs_on_version_tags_and_publishes_by_trusted_publishing() -> None:
    release = _yaml(ROOT / ".github" / "workflows" / "release.yml")
    assert release["on"]["push"]["tags"] == ["v[0-9]+.[0-9]+.[0-9]+*"]
    jobs = release["jobs"]
    assert "python -m build" in " ".join(s.get("run", "") for s in jobs["dist"]["steps"])
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}
    assert [s["uses"] for s in jobs["pypi"]["steps"]][-1] == "pypa/gh-action-pypi-publish@release/v1"
    assert "password" not in str(jobs["pypi"]), "trusted publishing takes no token"


def test_release_pushes_the_image_with_its_digest_sbom_and_provenance() -> None:
    steps = {s.get("id") or s.get("uses", "").split("@")[0]: s
             for s in _yaml(ROOT / ".github" / "workflows" / "release.yml")["jobs"]["image"]["steps"]}
    build = steps["build"]["with"]
    assert build["push"] is True and build["sbom"] is True and build["provenance"] == "mode=max"
    attest = steps["actions/attest-build-provenance"]["with"]
    assert attest["subject-digest"] == "${{ steps.build.outputs.digest }}"
    assert attest["subject-name"] == "${{ env.IMAGE_NAME }}"


def test_chart_compose_readme_and_dockerfile_name_the_image_the_release_publishes() -> None:
    image = _yaml(ROOT / ".github" / "workflows" / "release.yml")["env"]["IMAGE_NAME"]
    assert _yaml(ROOT / "charts" / "reconciler" / "values.yaml")["image"]["repository"] == image
    compose = _yaml(ROOT / "compose.yaml")
    assert compose["services"]["reconciler"]["image"] == f"${{RECONCILER_IMAGE:-{image}:latest}}"
    readme = (ROOT / "README.md").read_text()
    assert f"{image}:{_project_version()}" in readme
    owner_repo = image.removeprefix("ghcr.io/")
    source = f'org.opencontainers.image.source="https://github.com/{owner_repo}"'
    assert source in (ROOT / "Dockerfile").read_text()


def test_compose_stack_has_health_checks_conditions_volumes_and_an_optional_emulator() -> None:
    compose = _yaml(ROOT / "compose.yaml")
    services = compose["services"]
    assert set(services) == {"reconciler", "aed-emulator", "postgres", "redis", "mosquitto"}
    assert all("healthcheck" in spec for spec in services.values())
    assert services["aed-emulator"]["profiles"] == ["aed"]
    assert services["reconciler"]["depends_on"] == {
        name: {"condition": "service_healthy"} for name in ("postgres", "redis", "mosquitto")}
    assert set(compose["volumes"]) == {"reconciler-state", "postgres-data", "redis-data", "mosquitto-data"}
    assert "reconciler-state:/var/lib/reconciler" in services["reconciler"]["volumes"]
    assert services["reconciler"]["environment"]["RECONCILER_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_compose_secrets_come_from_env_and_every_one_is_in_env_example() -> None:
    text = (ROOT / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert required == {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "RECONCILER_API_ADMIN_TOKEN"}
    example = (ROOT / ".env.example").read_text()
    listed = dict(re.findall(r"(?m)^([A-Z_]+)=(.*)$", example))
    assert required <= set(listed)
    assert all(listed[name] == "" for name in required), ".env.example must not carry a usable secret"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_compose_example_specs_validate() -> None:
    done = subprocess.run([sys.executable, "-m", "reconciler.cli", "validate", "deploy/compose/specs"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _released_versions() -> set[str]:
    return set(re.findall(r"(?m)^## \[(\d+\.\d+\.\d+[^\]]*)\] - \d{4}-\d{2}-\d{2}$",
                          (ROOT / "CHANGELOG.md").read_text()))


def test_changelog_follows_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/en/1.1.0/" in text and "https://semver.org/" in text
    headings = re.findall(r"(?m)^## (.*)$", text)
    assert headings[0] == "[Unreleased]"
    assert all(re.fullmatch(r"\[\d+\.\d+\.\d+\S*\] - \d{4}-\d{2}-\d{2}", h) for h in headings[1:]), headings
    sections = set(re.findall(r"(?m)^### (.*)$", text))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    assert re.search(r"(?m)^\[Unreleased\]: https://github.com/\S+", text)


@pytest.mark.parametrize("example", ["github-plan.yml", "gitlab-plan.yml"])
def test_examples_ci_installs_a_version_that_a_release_publishes(example: str) -> None:
    text = (ROOT / "examples" / "ci" / example).read_text()
    install = r"reconciler==\$\{\{? ?(?:vars\.)?RECONCILER_VERSION[^}]*?'?(\d+\.\d+\.\d+)"
    pinned = set(re.findall(install, text))
    assert len(pinned) == 1, pinned
    version = pinned.pop()
    assert version in _released_versions() | {_project_version()}
    assert "release.yml" in text, "the example says which release publishes the version it installs"
