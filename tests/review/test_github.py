"""The sticky plan comment and the commit status, through the real client over real HTTP.

The server (`github_server.FakeGitHub`) keeps its comments and statuses in memory and logs
every request; only the client's sleeping between attempts is recorded instead of done.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from reconciler import __version__
from reconciler.errors import ReconcilerError
from reconciler.review.comments import BLOCK_SEPARATOR
from reconciler.review.github import GitHub, GitHubError
from reconciler.review.posting import plan_status, post_plan
from review.conftest import PR, REPO, TOKEN
from review.github_server import FakeGitHub

COMMENTS = rf"/repos/{REPO}/issues/{PR}/comments"
ONE_COMMENT = rf"/repos/{REPO}/issues/comments/\d+"


def plan(*, changed: int = 1, guards: int = 0, errors: int = 0, targets: int = 1, rows: int = 3) -> str:
    summary = {"changed": changed, "guardsTripped": guards, "errors": errors, "warnings": 0}
    blocks = [f"### reconciler plan\n<!-- reconciler:summary {json.dumps(summary)} -->"]
    for t in range(targets):
        diff = "\n".join(f"+ target {t} row {r}" for r in range(rows))
        blocks.append(f"<details><summary>target {t}</summary>\n\n```diff\n{diff}\n```\n</details>")
    return f"\n{BLOCK_SEPARATOR}\n".join(blocks)


# --- the sticky comment ---------------------------------------------------------------------------

def test_the_first_post_creates_one_comment_and_a_success_status_on_the_head_commit(
    gh: GitHub, github: FakeGitHub
) -> None:
    result = post_plan(gh, pr=PR, markdown=plan(changed=3))

    [comment] = github.comments(PR)
    assert comment["body"].startswith("<!-- reconciler-plan part 1/1 -->\n")
    assert "target 0 row 2" in comment["body"]
    assert result.comment_ids == (comment["id"],)
    assert (result.created, result.updated, result.deleted, result.unchanged) == (1, 0, 0, 0)
    assert result.url == comment["html_url"]
    [status] = github.statuses
    assert status == {
        "id": 1, "sha": github.pulls[PR], "state": "success", "description": "3 targets would change",
        "context": "reconciler/plan", "target_url": comment["html_url"],
    }
    assert result.state == "success" and result.sha == github.pulls[PR]


def test_a_changed_plan_edits_the_same_comment_in_place(gh: GitHub, github: FakeGitHub) -> None:
    first = post_plan(gh, pr=PR, markdown=plan(rows=3))
    second = post_plan(gh, pr=PR, markdown=plan(rows=5))

    [comment] = github.comments(PR)
    assert second.comment_ids == first.comment_ids == (comment["id"],)
    assert "target 0 row 4" in comment["body"]
    assert (second.created, second.updated) == (0, 1)
    assert len(github.requests_to("POST", COMMENTS)) == 1
    assert len(github.requests_to("PATCH", ONE_COMMENT)) == 1


def test_an_unchanged_plan_is_not_written_again(gh: GitHub, github: FakeGitHub) -> None:
    post_plan(gh, pr=PR, markdown=plan())
    again = post_plan(gh, pr=PR, markdown=plan())

    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    assert github.requests_to("PATCH", ONE_COMMENT) == []
    assert len(github.statuses) == 2  # the status is set for every push, on its head commit


def test_a_long_plan_takes_several_parts_and_a_shorter_one_deletes_the_surplus(
    gh: GitHub, github: FakeGitHub
) -> None:
    long = post_plan(gh, pr=PR, markdown=plan(targets=6, rows=6), limit=400)

    parts = github.comments(PR)
    assert len(parts) == len(long.comment_ids) >= 3
    assert [c["id"] for c in parts] == list(long.comment_ids)
    assert [c["body"].split("\n", 1)[0] for c in parts] == [
        f"<!-- reconciler-plan part {i}/{len(parts)} -->" for i in range(1, len(parts) + 1)
    ]
    assert all(len(c["body"]) <= 400 for c in parts)

    short = post_plan(gh, pr=PR, markdown=plan(targets=1), limit=400)

    [remaining] = github.comments(PR)
    assert short.comment_ids == (long.comment_ids[0],) == (remaining["id"],)
    assert remaining["body"].startswith("<!-- reconciler-plan part 1/1 -->")
    assert (short.updated, short.deleted, short.created) == (1, len(parts) - 1, 0)
    assert len(github.requests_to("DELETE", ONE_COMMENT)) == len(parts) - 1


def test_a_comment_without_our_marker_is_never_edited_or_deleted(gh: GitHub, github: FakeGitHub) -> None:
    before = github.add_comment(PR, "Looks good, but see the second target.")
    quoting = github.add_comment(PR, "> <!-- reconciler-plan part 1/1 -->\n> quoted plan\n\nWhy?")

    post_plan(gh, pr=PR, markdown=plan(targets=6, rows=6), limit=400)
    post_plan(gh, pr=PR, markdown=plan(targets=1), limit=400)

    comments = {c["id"]: c for c in github.comments(PR)}
    assert comments[before["id"]] == before
    assert comments[quoting["id"]] == quoting
    touched = {r.path for r in github.requests if r.method in {"PATCH", "DELETE"}}
    assert not touched & {f"/repos/{REPO}/issues/comments/{c['id']}" for c in (before, quoting)}


def test_our_part_on_the_second_page_of_comments_is_found_and_edited(gh: GitHub, github: FakeGitHub) -> None:
    for i in range(120):
        github.add_comment(PR, f"comment {i}")
    first = post_plan(gh, pr=PR, markdown=plan(rows=2))

    second = post_plan(gh, pr=PR, markdown=plan(rows=4))

    assert second.comment_ids == first.comment_ids
    assert (second.created, second.updated) == (0, 1)
    assert len(github.comments(PR)) == 121
    listing = github.comment_listings(PR)[-2:]  # the second post's two pages
    assert [r.query.get("per_page") for r in listing] == ["100", "100"]
    assert listing[1].path == f"/repositories/4242/issues/{PR}/comments" and listing[1].query["page"] == "2"


def test_a_guard_that_would_trip_sets_a_failure_status(gh: GitHub, github: FakeGitHub) -> None:
    result = post_plan(gh, pr=PR, markdown=plan(changed=3, guards=1))

    assert result.state == "failure"
    assert github.statuses[-1]["state"] == "failure"
    assert github.statuses[-1]["description"] == "3 targets would change, 1 guard would trip"


def test_plan_errors_set_an_error_status(gh: GitHub, github: FakeGitHub) -> None:
    result = post_plan(gh, pr=PR, markdown=plan(changed=0, guards=1, errors=2))

    assert result.state == "error"
    assert github.statuses[-1]["description"] == "no target would change, 1 guard would trip, 2 errors"


def test_the_status_goes_on_the_given_commit_with_the_given_link(gh: GitHub, github: FakeGitHub) -> None:
    sha = "c0ffee" + "0" * 34

    post_plan(gh, pr=PR, markdown=plan(), sha=sha, target_url="https://ci.example/run/1", context="plan/prod")

    assert github.requests_to("GET", rf"/repos/{REPO}/pulls/{PR}") == []
    assert github.statuses[-1] | {"id": 0} == {
        "id": 0, "sha": sha, "state": "success", "description": "1 target would change",
        "context": "plan/prod", "target_url": "https://ci.example/run/1",
    }


def test_a_long_status_description_is_cut_to_githubs_140_characters(gh: GitHub, github: FakeGitHub) -> None:
    gh.create_status(github.pulls[PR], state="pending", description="x" * 300)

    assert github.statuses[-1]["description"] == "x" * 139 + "…"


def test_two_plans_with_different_markers_share_a_pull_request(gh: GitHub, github: FakeGitHub) -> None:
    staging = post_plan(gh, pr=PR, markdown=plan(rows=2), marker="plan.staging", context="plan/staging")
    prod = post_plan(gh, pr=PR, markdown=plan(rows=3), marker="plan.prod", context="plan/prod")
    again = post_plan(gh, pr=PR, markdown=plan(rows=4), marker="plan.staging", context="plan/staging")

    assert again.comment_ids == staging.comment_ids != prod.comment_ids
    assert len(github.comments(PR)) == 2


def test_the_plan_works_against_github_enterprise_under_api_v3(sleeps: list[float]) -> None:
    with FakeGitHub(token=TOKEN, repo=REPO, prefix="/api/v3") as ghe:
        ghe.add_pull(PR)
        assert ghe.base_url.endswith("/api/v3")
        with GitHub(repo=REPO, token=TOKEN, base_url=ghe.base_url + "/", sleep=sleeps.append) as client:
            for i in range(105):
                ghe.add_comment(PR, f"comment {i}")
            first = post_plan(client, pr=PR, markdown=plan(rows=2))
            second = post_plan(client, pr=PR, markdown=plan(rows=3))

        assert second.comment_ids == first.comment_ids and second.updated == 1
        assert ghe.statuses[-1]["state"] == "success"
        assert all(r.status < 400 for r in ghe.requests)
        assert ghe.comment_listings(PR)[-1].path == f"/repositories/4242/issues/{PR}/comments"


def test_requests_carry_the_token_and_githubs_headers(gh: GitHub, github: FakeGitHub) -> None:
    gh.pull_head_sha(PR)

    headers = github.requests[-1].headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"] == f"reconciler/{__version__}"


# --- retries ------------------------------------------------------------------------------------

def test_two_502s_then_success_is_retried(gh: GitHub, github: FakeGitHub, sleeps: list[float]) -> None:
    github.fail_next(2)

    comment = gh.create_issue_comment(PR, "hello")

    assert [r.status for r in github.requests_to("POST", COMMENTS)] == [502, 502, 201]
    assert len(sleeps) == 2
    assert [c["id"] for c in github.comments(PR)] == [comment["id"]]


def test_the_back_off_doubles_with_jitter_up_to_its_cap(github: FakeGitHub, sleeps: list[float]) -> None:
    github.fail_next(4, status=503)
    with GitHub(repo=REPO, token=TOKEN, base_url=github.base_url, backoff=1.0, max_backoff=3.0,
                sleep=sleeps.append) as client:
        client.pull_head_sha(PR)

    assert len(sleeps) == 4
    for delay, ceiling in zip(sleeps, [1.0, 2.0, 3.0, 3.0], strict=True):
        assert 0.8 * ceiling <= delay <= ceiling


def test_a_403_rate_limit_waits_until_the_reset(gh: GitHub, github: FakeGitHub, sleeps: list[float]) -> None:
    github.rate_limit_next(reset_in=1)

    assert gh.pull_head_sha(PR) == github.pulls[PR]

    assert [r.status for r in github.requests] == [403, 200]
    assert sleeps == [1.0]  # x-ratelimit-reset minus the answer's Date


def test_a_429_waits_as_long_as_retry_after_says(gh: GitHub, github: FakeGitHub, sleeps: list[float]) -> None:
    github.throttle_next(retry_after=3)

    post_plan(gh, pr=PR, markdown=plan())

    assert sleeps == [3.0]
    assert github.requests[0].status == 429 and github.requests[1].path == github.requests[0].path


def test_a_secondary_rate_limit_403_is_retried_after_retry_after(
    gh: GitHub, github: FakeGitHub, sleeps: list[float]
) -> None:
    github.throttle_next(retry_after=2, status=403)

    gh.list_issue_comments(PR)

    assert sleeps == [2.0]
    assert [r.status for r in github.requests] == [403, 200]


def test_a_wait_longer_than_max_wait_fails_at_once_instead_of_sleeping(
    gh: GitHub, github: FakeGitHub, sleeps: list[float]
) -> None:
    github.throttle_next(retry_after=3600)

    with pytest.raises(GitHubError, match="wait 3600 s, longer than the 60 s") as caught:
        gh.list_issue_comments(PR)

    assert sleeps == []
    assert caught.value.status == 429


def test_exhausted_retries_name_the_request_and_status_but_never_the_token(
    github: FakeGitHub, sleeps: list[float]
) -> None:
    github.fail_next(10)
    with GitHub(repo=REPO, token=TOKEN, base_url=github.base_url, retries=2, backoff=0.0,
                sleep=sleeps.append) as client:
        with pytest.raises(GitHubError) as caught:
            client.update_issue_comment(99, "body")
        assert TOKEN not in repr(client)

    error = caught.value
    assert str(error) == (
        f"GitHub PATCH /repos/{REPO}/issues/comments/99: HTTP 502: Server Error [after 3 attempts]"
    )
    assert (error.method, error.path, error.status, error.attempts) == (
        "PATCH", f"/repos/{REPO}/issues/comments/99", 502, 3
    )
    assert isinstance(error, ReconcilerError)
    assert len(github.requests) == 3 and len(sleeps) == 2
    assert TOKEN not in f"{error} {error!r} {error.args} {error.__context__!r} {error.__cause__!r}"


def test_a_wrong_token_is_refused_at_once_and_not_echoed(github: FakeGitHub, sleeps: list[float]) -> None:
    wrong = "ghp_notTheRightToken0000000000000000000"
    with (
        GitHub(repo=REPO, token=wrong, base_url=github.base_url, sleep=sleeps.append) as client,
        pytest.raises(GitHubError, match="HTTP 401: Bad credentials") as caught,
    ):
        post_plan(client, pr=PR, markdown=plan())

    assert len(github.requests) == 1 and sleeps == []
    assert wrong not in str(caught.value) and github.comments(PR) == []


def test_an_unknown_pull_request_is_a_404_that_is_not_retried(gh: GitHub, github: FakeGitHub) -> None:
    with pytest.raises(GitHubError, match=rf"GET /repos/{REPO}/pulls/99: HTTP 404: Not Found") as caught:
        gh.pull_head_sha(99)

    assert caught.value.status == 404 and len(github.requests) == 1


def test_no_server_at_all_is_retried_then_reported_without_httpx_attached(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once the probe closes: nothing listens there
    with (
        GitHub(repo=REPO, token=TOKEN, base_url=f"http://127.0.0.1:{port}", retries=2, backoff=0.0,
               sleep=sleeps.append) as client,
        pytest.raises(GitHubError, match=rf"GET /repos/{REPO}/pulls/{PR}: no answer \(ConnectError\)") as err,
    ):
        client.pull_head_sha(PR)

    assert len(sleeps) == 2 and err.value.status is None
    assert err.value.__context__ is None and err.value.__cause__ is None


def test_a_next_page_on_another_host_is_not_followed(gh: GitHub, github: FakeGitHub) -> None:
    for i in range(101):
        github.add_comment(PR, f"comment {i}")
    github.link_base = "http://127.0.0.2:9"

    with pytest.raises(GitHubError, match="outside"):
        gh.list_issue_comments(PR)

    assert len(github.requests) == 1


# --- configuration and pure parts ---------------------------------------------------------------

@pytest.mark.parametrize("repo", ["plans", "octo/", "/plans", "octo/plans/x", "octo/..", "-octo/plans"])
def test_the_repository_must_be_owner_slash_name(repo: str) -> None:
    with pytest.raises(GitHubError, match="OWNER/NAME"):
        GitHub(repo=repo, token=TOKEN)


@pytest.mark.parametrize(("token", "base_url", "problem"), [
    ("  ", "https://api.github.com", "token is empty"),
    ("ghp_a\nX-Injected: 1", "https://api.github.com", "whitespace"),
    (TOKEN, "ftp://ghe.example.com/api/v3", "base URL"),
    (TOKEN, "https://ghe.example.com/api/v3?x=1", "base URL"),
])
def test_a_bad_token_or_base_url_is_refused_without_echoing_the_token(token: str, base_url: str,
                                                                       problem: str) -> None:
    with pytest.raises(GitHubError, match=problem) as caught:
        GitHub(repo=REPO, token=token, base_url=base_url)

    assert not token.strip() or token.strip() not in str(caught.value)


def test_the_client_transport_can_be_given(github: FakeGitHub) -> None:
    transport = httpx.HTTPTransport(retries=0)
    with GitHub(repo=REPO, token=TOKEN, base_url=github.base_url, transport=transport) as client:
        assert client.pull_head_sha(PR) == github.pulls[PR]


def test_plan_status_without_a_summary_is_an_error_not_a_success() -> None:
    state, description = plan_status({})

    assert state == "error" and "no summary" in description


def test_plan_status_describes_the_figures() -> None:
    assert plan_status({"changed": 1, "guardsTripped": 0, "errors": 0, "warnings": 2}) == (
        "success", "1 target would change, 2 warnings"
    )
    assert plan_status({"changed": 0, "guardsTripped": 2, "errors": 0})[0] == "failure"
    with pytest.raises(ValueError, match="guardsTripped"):
        plan_status({"changed": 1, "guardsTripped": "many"})


def test_a_malformed_summary_writes_nothing(gh: GitHub, github: FakeGitHub) -> None:
    with pytest.raises(ValueError):
        post_plan(gh, pr=PR, markdown="<!-- reconciler:summary {oops} -->\nplan")

    assert github.requests == []
