"""`reconciler pr-comment` as CI runs it: a subprocess posting to the GitHub API on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from review.conftest import PR, REPO, TOKEN
from review.github_server import FakeGitHub

PLAN = """### reconciler plan

| Change | Kind | Name |
|---|---|---|
| changed | AgentConfig | `team` |

<!-- reconciler:summary {"objects": 1, "changed": 1, "guardsTripped": %d, "errors": 0, "warnings": 0} -->

<!-- reconciler:block -->

<details><summary>team</summary>

%s

</details>
"""


def cli(tmp_path: Path, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    if token is not None:
        env["GITHUB_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "reconciler.cli", "pr-comment", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)


def test_posts_then_edits_in_place_and_sets_the_status(github: FakeGitHub, tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    args = ["--repo", REPO, "--pr", str(PR), "--from", str(plan), "--api-url", github.base_url]
    plan.write_text(PLAN % (0, "first push"))
    first = cli(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert "1 created" in first.stdout and "success" in first.stdout
    plan.write_text(PLAN % (1, "second push"))
    second = cli(tmp_path, *args)
    assert second.returncode == 0, second.stderr
    comments = github.comments(PR)
    assert len(comments) == 1 and "second push" in comments[0]["body"]
    assert [s["state"] for s in github.statuses] == ["success", "failure"]
    assert TOKEN not in first.stdout + first.stderr + second.stdout + second.stderr


def test_missing_token_or_file_is_one_clear_line(github: FakeGitHub, tmp_path: Path) -> None:
    args = ["--repo", REPO, "--pr", str(PR), "--api-url", github.base_url]
    no_token = cli(tmp_path, *args, "--from", "plan.md", token=None)
    assert no_token.returncode == 1
    assert "--token-env GITHUB_TOKEN: the environment variable is not set" in no_token.stderr
    no_file = cli(tmp_path, *args, "--from", "absent.md")
    assert no_file.returncode == 1 and "--from absent.md: cannot read" in no_file.stderr
    assert github.comments(PR) == []


def test_example_workflows_use_options_the_cli_has() -> None:
    """Every `--option` the CI examples pass to `reconciler plan` / `pr-comment` exists."""
    root = Path(__file__).resolve().parents[2] / "examples" / "ci"
    for name in ("github-plan.yml", "gitlab-plan.yml"):
        text = (root / name).read_text()
        YAML(typ="safe").load(text)  # valid YAML
        for command in ("plan", "pr-comment"):
            if f"reconciler {command}" not in text:
                continue
            usage = subprocess.run([sys.executable, "-m", "reconciler.cli", command, "--help"],
                                   capture_output=True, text=True,
                                   env={**os.environ, "COLUMNS": "200"}).stdout
            options: set[str] = set()
            for occurrence in text.split(f"reconciler {command} ")[1:]:
                lines = occurrence.splitlines()
                span = [lines[0]]
                for line in lines[1:]:  # the command's continuation lines
                    if not span[-1].rstrip().endswith("\\"):
                        break
                    span.append(line)
                options |= {w.strip('"\\;') for w in " ".join(span).split() if w.startswith("--")}
            assert options, f"{name}: no options found for reconciler {command}"
            for option in options:
                assert option in usage, f"{name}: reconciler {command} has no option {option}"
