"""The example AgentConfig applied to homes written the way real people write them.

Each case of `tests/agents/corpus/` is a `$HOME` (see its README). For every case the real
CLI runs as a user runs it — `reconciler apply examples/agents` in a subprocess, with
`HOME` and `RECONCILER_STATE_DIR` in a temporary folder — and the checks are:

- `preserves`: every foreign key keeps its value, every list item and every comment line
  present before is still there, files the spec does not touch keep every byte, Markdown
  outside the reconciler's block is unchanged (see `corpus_checks`);
- `idempotent`: a second apply exits 0 and changes no byte; `plan --detailed-exitcode`
  then exits 0;
- `no-weakening`: no deny rule disappears; no Rovo Dev command that was denied is allowed
  or asked after;
- `import`: `reconciler import agents --client C --scope user --root HOME` on a fresh copy,
  the printed spec applied with a fresh state: no byte of any file changes;
- `refuses` (the `malformed-*` cases): apply exits non-zero, names the file with
  `:line:column` and what was expected, and every file of the home keeps every byte.

The subprocesses of all selected tests are started up front on a small thread pool (each
case in its own folders), so the module takes a few CLI start-ups per core, not per test.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents.corpus_checks import (
    OWNED,
    comment_lines,
    denials,
    outside_block,
    parse,
    rovo_permissions,
    tree_problems,
    value_problems,
    weakening_problems,
)

REPO = Path(__file__).parents[2]
CORPUS = Path(__file__).parent / "corpus"
SENTINEL = "sentinel-9c1d-never-in-a-file"

# case → the clients whose files it holds (each is imported in the `import` check).
CASES: dict[str, tuple[str, ...]] = {
    "claude-heavy": ("claude-code",),
    "claude-fresh": ("claude-code",),  # what Claude Code writes on a new install: empty objects
    "windows-crlf": ("codex", "gemini-cli"),  # files saved by Windows editors: CRLF everywhere
    "codex": ("codex",),
    "qwen": ("qwen-code",),
    "rovo": ("rovo-dev",),
    "rovo-no-final-newline": ("rovo-dev",),
    "gemini": ("gemini-cli",),
    "cursor": ("cursor",),
    "control-untouched": (),  # the harness's control: the spec edits nothing foreign here
}


# case → the spec's items that stay unwritten because the user's own item with the same
# identity says something stricter (`plan --detailed-exitcode` exits 2 on them, and only them).
PENDING: dict[str, tuple[str, ...]] = {
    "rovo": ("bash/commands#Bash(git push *)",),
    "rovo-no-final-newline": ("bash/commands#Bash(git push *)",),
}


@dataclass(frozen=True)
class Refusal:
    file: str  # relative to HOME
    lines: frozenset[int] | None  # acceptable lines in the message (None: any)


MALFORMED: dict[str, Refusal] = {
    "malformed-claude-settings-comment": Refusal(".claude/settings.json", frozenset({4})),
    "malformed-claude-settings-trailing-comma": Refusal(".claude/settings.json", frozenset({5, 6})),
    "malformed-claude-json-mcpservers-array": Refusal(".claude.json", frozenset({6})),
    "malformed-codex-mcp-servers-string": Refusal(".codex/config.toml", frozenset({6})),
    "malformed-rovo-duplicate-toolpermissions": Refusal(".rovodev/config.yml", frozenset({5, 17})),
    "malformed-qwen-legacy-flat": Refusal(".qwen/settings.json", None),
    "malformed-claude-settings-duplicate-permissions": Refusal(".claude/settings.json",
                                                               frozenset({2, 10})),
}


def _params() -> list[Any]:
    out = []
    for case, clients in CASES.items():
        for check in ("preserves", "idempotent", "no-weakening"):
            out.append(pytest.param(case, check, "", id=f"{case}-{check}"))
        for client in clients:
            name = f"{case}-import" if len(clients) == 1 else f"{case}-import-{client}"
            out.append(pytest.param(case, "import", client, id=name))
    for case in MALFORMED:
        out.append(pytest.param(case, "refuses", "", id=f"{case}-refuses"))
    return out


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- running the CLI -------------------------------------------------------------------------

Result = subprocess.CompletedProcess


class Cli:
    """`python -m reconciler.cli ARGS` in `work`, with HOME and the state dir in tmp."""

    def __init__(self, work: Path, home: Path, state: Path) -> None:
        self.work = work
        self.env = {**os.environ, "HOME": str(home), "RECONCILER_STATE_DIR": str(state),
                    "GITHUB_TOKEN": SENTINEL, "DOCS_MCP_TOKEN": SENTINEL}
        self.env.pop("RECONCILER_DATABASE_URL", None)
        self.env.pop("RECONCILER_PLUGINS", None)

    def __call__(self, *args: str) -> Result[str]:
        return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], cwd=self.work,
                              env=self.env, capture_output=True, text=True, timeout=120)


def _setup(folder: Path, case: str) -> tuple[Path, Cli]:
    home = folder / "home"
    shutil.copytree(CORPUS / case / "home", home, symlinks=True)
    work = folder / "work"
    shutil.copytree(REPO / "examples" / "agents", work / "examples" / "agents")
    return home, Cli(work, home, folder / "state")


@dataclass
class Applied:
    before: dict[str, bytes]
    first: Result[str]
    after: dict[str, bytes]
    second: Result[str]
    again: dict[str, bytes]
    plan: Result[str]


def run_apply(folder: Path, case: str) -> Applied:
    home, cli = _setup(folder, case)
    before = tree(home)
    first = cli("apply", "examples/agents")
    after = tree(home)
    second = cli("apply", "examples/agents")
    again = tree(home)
    plan = cli("plan", "--detailed-exitcode", "examples/agents")
    return Applied(before, first, after, second, again, plan)


@dataclass
class Imported:
    before: dict[str, bytes]
    imported: Result[str]
    spec: str
    applied: Result[str] | None
    after: dict[str, bytes]


def run_import(folder: Path, case: str, client: str) -> Imported:
    home, cli = _setup(folder, case)
    before = tree(home)
    imported = cli("import", "agents", "--client", client, "--scope", "user", "--root", str(home))
    if imported.returncode != 0:
        return Imported(before, imported, "", None, tree(home))
    specs = folder / "imported"
    specs.mkdir()
    (specs / f"{client}.yaml").write_text(imported.stdout, encoding="utf-8")
    fresh = Cli(cli.work, home, folder / "fresh-state")
    applied = fresh("apply", str(specs))
    return Imported(before, imported, imported.stdout, applied, tree(home))


@dataclass
class Refused:
    before: dict[str, bytes]
    result: Result[str]
    after: dict[str, bytes]


def run_refusal(folder: Path, case: str) -> Refused:
    home, cli = _setup(folder, case)
    before = tree(home)
    result = cli("apply", "examples/agents")
    return Refused(before, result, tree(home))


class Runs:
    """Every pipeline the selected tests need, started at once on a thread pool."""

    def __init__(self, factory: pytest.TempPathFactory, wanted: list[tuple[str, str, str]]) -> None:
        self.factory = factory
        self.pool = ThreadPoolExecutor(max_workers=min(4, (os.cpu_count() or 2) + 1))
        self.futures: dict[tuple[str, ...], Future[Any]] = {}
        for case, check, client in wanted:
            self.future(case, check, client)

    @staticmethod
    def key(case: str, check: str, client: str) -> tuple[str, ...]:
        if check == "import":
            return ("import", case, client)
        if check == "refuses":
            return ("refuses", case)
        return ("apply", case)

    def future(self, case: str, check: str, client: str) -> Future[Any]:
        key = self.key(case, check, client)
        if key not in self.futures:
            folder = self.factory.mktemp("-".join(key).replace(" ", "_"))
            if key[0] == "import":
                self.futures[key] = self.pool.submit(run_import, folder, case, client)
            elif key[0] == "refuses":
                self.futures[key] = self.pool.submit(run_refusal, folder, case)
            else:
                self.futures[key] = self.pool.submit(run_apply, folder, case)
        return self.futures[key]

    def get(self, case: str, check: str, client: str) -> Any:
        return self.future(case, check, client).result()


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    wanted = []
    for item in request.session.items:
        spec = getattr(item, "callspec", None)
        if getattr(item, "module", None) is request.module and spec is not None \
                and item.originalname == "test_corpus":
            wanted.append((spec.params["case"], spec.params["check"], spec.params["client"]))
    pool = Runs(tmp_path_factory, wanted)
    yield pool
    pool.pool.shutdown(wait=True, cancel_futures=True)


# --- reporting -------------------------------------------------------------------------------

def _report(case: str, what: str, problems: list[str], limit: int = 60) -> str:
    shown = problems[:limit]
    more = [f"... and {len(problems) - limit} more"] if len(problems) > limit else []
    return f"{case}: {what}: {len(problems)} problem(s):\n  " + "\n  ".join([*shown, *more])


def _output(result: Result[str]) -> str:
    err = "\n".join(line for line in result.stderr.splitlines() if "[info" not in line)
    return f"exit {result.returncode}\nstderr:\n{err[-3000:]}\nstdout:\n{result.stdout[-2000:]}"


def _changed_files(case: str, before: dict[str, bytes], after: dict[str, bytes], context: int = 1,
                   limit: int = 40) -> list[str]:
    problems: list[str] = []
    for rel in sorted(set(before) | set(after)):
        old, new = before.get(rel), after.get(rel)
        if old == new:
            continue
        if old is None or new is None:
            problems.append(f"~/{rel}: {'created' if old is None else 'deleted'}")
            continue
        diff = list(difflib.unified_diff(old.decode("utf-8", "replace").splitlines(),
                                         new.decode("utf-8", "replace").splitlines(),
                                         lineterm="", n=context))[2:]
        shown = diff[:limit] + ([f"... {len(diff) - limit} more diff lines"] if len(diff) > limit else [])
        problems.append(f"~/{rel}: changed:\n      " + "\n      ".join(shown))
    return problems


# --- the checks ------------------------------------------------------------------------------

def check_preserves(case: str, run: Applied) -> None:
    assert run.first.returncode == 0, f"{case}: apply failed, nothing to compare:\n{_output(run.first)}"
    problems = tree_problems(run.before, run.after)
    assert not problems, _report(case, "foreign values, list items or comments lost by apply", problems)


def check_idempotent(case: str, run: Applied) -> None:
    assert run.first.returncode == 0, f"{case}: first apply failed:\n{_output(run.first)}"
    assert run.second.returncode == 0, f"{case}: second apply failed:\n{_output(run.second)}"
    changed = _changed_files(case, run.after, run.again)
    assert not changed, _report(case, "the second apply changed files", changed)
    pending = PENDING.get(case, ())
    if pending:
        held = [line for line in run.plan.stdout.splitlines() if "the file has its own" in line]
        assert run.plan.returncode == 2 and len(held) == len(pending) and all(
            any(p in line for line in held) for p in pending), (
            f"{case}: `plan --detailed-exitcode` should exit 2 on exactly {pending}:\n{_output(run.plan)}")
        assert "No changes to make" in run.plan.stdout, _output(run.plan)
        return
    assert run.plan.returncode == 0, (f"{case}: `plan --detailed-exitcode` after two applies is not 0 "
                                      f"(in sync):\n{_output(run.plan)}")


def check_no_weakening(case: str, run: Applied) -> None:
    assert run.first.returncode == 0, f"{case}: apply failed, nothing to compare:\n{_output(run.first)}"
    problems = weakening_problems(run.before, run.after)
    assert not problems, _report(case, "deny rules weakened by apply", problems)


def check_import(case: str, client: str, run: Imported) -> None:
    assert run.imported.returncode == 0, (f"{case}: `import agents --client {client}` failed:\n"
                                          f"{_output(run.imported)}")
    assert run.applied is not None
    assert run.applied.returncode == 0, (f"{case}: applying the spec imported from {client} failed:\n"
                                         f"{_output(run.applied)}\nimported spec:\n{run.spec[:3000]}")
    changed = _changed_files(case, run.before, run.after)
    assert not changed, _report(case, f"applying the spec imported from {client} to the files it was "
                                f"imported from changed them (the import is lossy)", changed)


def check_refuses(case: str, run: Refused) -> None:
    expected = MALFORMED[case]
    out = _output(run.result)
    assert run.result.returncode != 0, f"{case}: apply accepted ~/{expected.file}:\n{out}"
    located = re.search(re.escape(expected.file) + r":(\d+):(\d+)", run.result.stderr)
    assert located, f"{case}: the error does not name ~/{expected.file}:LINE:COLUMN:\n{out}"
    if expected.lines is not None:
        assert int(located.group(1)) in expected.lines, (
            f"{case}: the error points at line {located.group(1)} of ~/{expected.file}, expected "
            f"one of {sorted(expected.lines)}:\n{out}")
    assert "expected" in run.result.stderr.lower(), \
        f"{case}: the error does not say what was expected:\n{out}"
    changed = _changed_files(case, run.before, run.after)
    assert not changed, _report(case, "a refused apply wrote files", changed)


@pytest.mark.parametrize(("case", "check", "client"), _params())
def test_corpus(runs: Runs, case: str, check: str, client: str) -> None:
    run = runs.get(case, check, client)
    if check == "preserves":
        check_preserves(case, run)
    elif check == "idempotent":
        check_idempotent(case, run)
    elif check == "no-weakening":
        check_no_weakening(case, run)
    elif check == "import":
        check_import(case, client, run)
    else:
        check_refuses(case, run)


# --- the corpus and the harness themselves ---------------------------------------------------

def test_every_corpus_folder_is_a_case() -> None:
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert folders == set(CASES) | set(MALFORMED)
    for folder in folders:
        assert (CORPUS / folder / "home").is_dir(), folder


def test_the_corpus_holds_what_it_claims() -> None:
    claude = parse(".json", (CORPUS / "claude-heavy/home/.claude/settings.json").read_bytes())
    perms = claude["permissions"]
    assert (len(perms["deny"]), len(perms["allow"])) == (43, 20)
    assert {"Bash(sudo:*)", "Read(~/.ssh/**)", "Read(**/.env)", "Read(**/*.pem)", "Bash(curl:*)",
            "WebFetch(domain:*)"} <= set(perms["deny"])
    state = parse(".json", (CORPUS / "claude-heavy/home/.claude.json").read_bytes())
    assert set(state["mcpServers"]) == {"filesystem", "github"} and len(state["projects"]) == 2
    rovo = (CORPUS / "rovo/home/.rovodev/config.yml").read_bytes()
    commands = parse(".yml", rovo)["toolPermissions"]["bash"]["commands"]
    assert len(commands) == 59
    assert {"command": "git push(\\s.*)?", "permission": "deny"} in commands
    assert not (CORPUS / "rovo-no-final-newline/home/.rovodev/config.yml").read_bytes().endswith(b"\n")
    assert not (CORPUS / "claude-heavy/home/.claude.json").read_bytes().endswith(b"\n")
    codex = parse(".toml", (CORPUS / "codex/home/.codex/config.toml").read_bytes())
    assert codex["mcp_servers"]["sentry"]["tools"]["search_issues"] == {"approval_mode": "approve"}
    assert "my server" in codex["mcp_servers"]
    cursor = parse(".json", (CORPUS / "cursor/home/.cursor/mcp.json").read_bytes())
    assert {"Sequential Thinking", "Größen-Rechner"} <= set(cursor["mcpServers"])
    for case in CASES:  # the files people write carry comments wherever the format allows
        for path in (CORPUS / case / "home").rglob("*"):
            rel = str(path.relative_to(CORPUS / case / "home"))
            if path.suffix in (".toml", ".yml") and not rel.endswith("reconciler.toml"):
                assert comment_lines(rel, path.read_bytes()), rel


def test_the_owned_table_names_only_files_the_example_spec_renders() -> None:
    """`OWNED` describes examples/agents/agentconfig.yaml: every file it lists is rendered."""
    from reconciler.drivers.agents.planning import render_spec
    from reconciler.loading import load_specs

    (obj,) = [o for o in load_specs(REPO / "examples" / "agents").objects if o.KIND == "AgentConfig"]
    rendered = {e.file.removeprefix("~/") for e in render_spec(obj).entries}
    assert set(OWNED) == rendered


def test_the_harness_reports_lost_values_items_and_comments() -> None:
    before = b'{\n  // mine\n  "a": 1,\n  "permissions": {"deny": ["x", "y"], "allow": ["p"]},\n' \
             b'  "mcpServers": {"github": {"command": "old"}, "mine": {"args": ["1"]}}\n}\n'
    owned = OWNED[".qwen/settings.json"]
    same = value_problems("~/f", parse(".json", before), parse(".json", before), owned)
    assert same == []
    after = b'{\n  "a": 2,\n  "permissions": {"deny": ["y", "spec"], "allow": ["p", "spec"]},\n' \
            b'  "mcpServers": {"github": {"command": "new"}, "mine": {"args": []}}\n}\n'
    problems = value_problems("~/f", parse(".json", before), parse(".json", after), owned)
    assert problems == ['~/f: /a: value changed: 1 -> 2', '~/f: /permissions/deny: item lost: "x"',
                        '~/f: /mcpServers/mine/args: item lost: "1"']
    from agents.corpus_checks import comment_problems

    assert comment_problems("~/f", "f.json", before, after) == ["~/f: comment lost: '// mine'"]
    assert outside_block("mine\n\n<!-- reconciler:begin x -->\nours\n<!-- reconciler:end x -->\n") == "mine"
    rovo = (b"toolPermissions:\n  bash:\n    commands:\n    - command: a\n      permission: deny\n"
            b"    - command: b\n      permission: allow\n")
    weaker = rovo.replace(b"deny", b"ask")
    assert denials("x/config.yml", rovo) == {'toolPermissions.bash command "a": deny':
                                             "/toolPermissions/bash/commands"}
    assert rovo_permissions(weaker) == {"bash:a": ["ask"], "bash:b": ["allow"]}
    assert weakening_problems({"x/config.yml": rovo}, {"x/config.yml": weaker}) == [
        '~/x/config.yml: /toolPermissions/bash/commands: deny rule lost: '
        'toolPermissions.bash command "a": deny (now: [\'ask\'])']
    assert tree_problems({"other.json": b"{}"}, {"other.json": b"{ }"}) == [
        "~/other.json: a file the spec does not touch changed (2 -> 3 bytes)"]
