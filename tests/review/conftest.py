"""Plan review tests: the real client against a GitHub API served on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.review.github import GitHub
from review.github_server import FakeGitHub

TOKEN = "ghp_reconcilerTestToken0123456789abcdef"
REPO = "octo/plans"
PR = 7


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """The API on 127.0.0.1, a free port, with pull request #7 open."""
    with FakeGitHub(token=TOKEN, repo=REPO) as server:
        server.add_pull(PR)
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    """The client's waits between attempts, recorded instead of slept."""
    return []


@pytest.fixture
def gh(github: FakeGitHub, sleeps: list[float]) -> Iterator[GitHub]:
    """The real client on the real server; no back-off, so a wait recorded is GitHub's request."""
    with GitHub(repo=REPO, token=TOKEN, base_url=github.base_url, backoff=0.0, sleep=sleeps.append) as client:
        yield client
