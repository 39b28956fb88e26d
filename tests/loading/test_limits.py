"""Hostile spec files (issue 15, findings 3 and 4): refused at file:line:col, never built.

The expensive cases run the real CLI in a subprocess whose address space is capped at
1 GiB, so that a regression (the bomb expanded after all) fails the test with a
MemoryError or a kill instead of eating the machine. No test measures time: the speed and
memory figures are in `bench/loader.py`.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import git
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import SpecError
from reconciler.loading import load_specs
from reconciler.loading.limits import LoaderLimits
from reconciler.runtime.sources import FolderSource
from reconciler.settings import Settings

ONE_GIB = 1 << 30
JOB = """\
apiVersion: reconciler.dev/v1alpha1
kind: SyncJob
metadata:
  name: {name}
spec:
  targetRef: {{kind: AgentConfig, name: team}}
  schedule: "0 4 * * *"
"""


def list_bomb() -> str:
    """Nine levels of nine aliases: 9**9 (387 million) strings from about 700 bytes."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def map_bomb() -> str:
    """The same with mappings: every level a mapping of nine keys to the level below."""
    keys = [f"k{j}" for j in range(9)]
    lines = ["m0: &m0 {" + ", ".join(f"{k}: lol" for k in keys) + "}"]
    lines += [f"m{i}: &m{i} {{" + ", ".join(f"{k}: *m{i - 1}" for k in keys) + "}" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ONE_GIB, ONE_GIB))


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI with at most 1 GiB of address space. The timeout is no speed claim: it
    only turns a hang (a bomb expanded after all) into a failure before pytest's own."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler.cli", *args], cwd=cwd, capture_output=True, text=True,
        preexec_fn=_cap_memory, timeout=100,
        env={**os.environ, "RECONCILER_STATE_DIR": str(cwd / "state"), **(env or {})},
    )


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The one located error line of a refused load; fails on a traceback or another exit."""
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def problems(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_specs(path, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in info.value.problems]


# --- finding 3: alias bombs and huge lists ------------------------------------------------


def test_a_list_alias_bomb_is_refused_at_the_alias_that_crosses_the_alias_limit(tmp_path: Path) -> None:
    write(tmp_path, "specs/bomb.yaml", list_bomb())
    assert len(list_bomb()) < 800
    line = refusal(cli("validate", "specs", cwd=tmp_path))
    # a3 holds 9 + 81 + 729 + ... nodes; the 2nd alias on line 5 crosses 10,000.
    assert re.match(r"error: specs/bomb\.yaml:5:\d+: aliases expand to too many values", line), line
    assert "RECONCILER_SPEC_MAX_ALIAS_NODES" in line and "10,000" in line


def test_a_map_alias_bomb_is_refused_naming_the_limit(tmp_path: Path) -> None:
    write(tmp_path, "specs/bomb.yaml", map_bomb())
    assert len(map_bomb()) < 900
    line = refusal(cli("validate", "specs", cwd=tmp_path))
    assert re.match(r"error: specs/bomb\.yaml:\d+:\d+: aliases expand to too many values", line), line
    assert "RECONCILER_SPEC_MAX_ALIAS_NODES" in line


def test_a_list_of_a_million_numbers_is_refused_by_size_where_the_limit_falls(tmp_path: Path) -> None:
    text = "numbers: [" + ", ".join(str(i) for i in range(1_000_000)) + "]\n"
    assert len(text) == 7_888_900
    write(tmp_path, "specs/big.yaml", text)
    line = refusal(cli("validate", "specs", cwd=tmp_path))
    # one line: the first byte beyond 1 MiB is at column 1,048,577
    assert line.startswith("error: specs/big.yaml:1:1048577: file too large: 7,888,900 bytes, "
                           "more than 1,048,576 bytes"), line
    assert "RECONCILER_SPEC_MAX_BYTES" in line


def test_a_list_under_the_size_limit_is_refused_by_node_count_at_the_node_that_crosses_it(
        tmp_path: Path) -> None:
    write(tmp_path, "specs/wide.yaml", "numbers: [" + ",".join("0" * 150_000) + "]\n")
    line = refusal(cli("validate", "specs", cwd=tmp_path))
    # node 1 is the mapping, 2 the key, 3 the list: the 99,998th zero is node 100,001.
    column = 11 + 2 * (99_998 - 1)
    assert line.startswith(f"error: specs/wide.yaml:1:{column}: too many values: more than 100,000 nodes"), \
        line
    assert "RECONCILER_SPEC_MAX_NODES" in line


def test_the_limits_are_settings(tmp_path: Path) -> None:
    write(tmp_path, "specs/jobs.yaml", JOB.format(name="one"))
    assert cli("validate", "specs", cwd=tmp_path).returncode == 0
    line = refusal(cli("validate", "specs", cwd=tmp_path, env={"RECONCILER_SPEC_MAX_NODES": "10"}))
    assert "more than 10 nodes" in line and "RECONCILER_SPEC_MAX_NODES" in line
    line = refusal(cli("validate", "specs", cwd=tmp_path, env={"RECONCILER_SPEC_MAX_DEPTH": "2"}))
    assert re.match(r"error: specs/jobs\.yaml:6:14: nested too deeply: more than 2 levels", line), line
    line = refusal(cli("validate", "specs", cwd=tmp_path, env={"RECONCILER_SPEC_MAX_BYTES": "100"}))
    # byte 101 is on line 6 ("  targetRef: {kind: AgentConfig, ..."), at column 23
    assert JOB.format(name="one")[:100].splitlines()[-1] == "  targetRef: {kind: Ag"
    assert line.startswith("error: specs/jobs.yaml:6:23: file too large: 147 bytes, more than 100 bytes"), \
        line


def test_plan_base_head_refuses_a_bomb_committed_in_the_head_revision(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    write(tmp_path, "specs/jobs.yaml", JOB.format(name="one"))
    repo.index.add(["specs/jobs.yaml"])
    repo.index.commit("base")
    write(tmp_path, "specs/bomb.yaml", list_bomb())
    repo.index.add(["specs/bomb.yaml"])
    head = repo.index.commit("head")
    result = cli("plan", "specs", "--base", "HEAD~1", "--head", "HEAD", cwd=tmp_path)
    line = refusal(result)
    assert re.match(r"error: HEAD:specs/bomb\.yaml:5:\d+: aliases expand to too many values", line), line
    assert head.hexsha  # the revision was real


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        list(_parse("a: &a [1, *a]\n"))
    assert [str(p) for p in info.value.problems] == [
        "x.yaml:1:11: the alias *a is inside the node it refers to (a recursive structure)"]


def test_anchors_and_merge_keys_within_the_limits_still_load(tmp_path: Path) -> None:
    write(tmp_path, "jobs.yaml", textwrap.dedent("""\
        apiVersion: reconciler.dev/v1alpha1
        kind: SyncJob
        metadata: {name: one}
        spec:
          targetRef: &target {kind: AgentConfig, name: team}
          schedule: &daily "0 4 * * *"
          timeZone: Asia/Seoul
        ---
        apiVersion: reconciler.dev/v1alpha1
        kind: SyncJob
        metadata: {name: two}
        spec: &spec
          targetRef: {<<: &other {kind: AgentConfig}, name: other}
          schedule: "0 5 * * *"
        """))
    one, two = load_specs(tmp_path)
    assert (one.spec.target_ref.name, two.spec.target_ref.name) == ("team", "other")  # type: ignore[attr-defined]


def test_the_daemon_sources_load_with_the_settings_limits(tmp_path: Path) -> None:
    write(tmp_path, "jobs.yaml", JOB.format(name="one"))
    limits = Settings(spec_max_nodes=10).loader_limits()
    assert limits == LoaderLimits(max_nodes=10)
    with pytest.raises(SpecError, match="more than 10 nodes"):
        FolderSource(tmp_path, limits=limits).load()
    assert len(FolderSource(tmp_path).load()) == 1


# --- finding 4: deep nesting, explicit tags, bytes and characters ---------------------------


def _parse(text: str, limits: LoaderLimits | None = None) -> list[object]:
    from reconciler.loading.documents import parse_documents

    return list(parse_documents(text, source="x.yaml", limits=limits))


def test_nesting_a_thousand_deep_is_refused_at_the_level_that_crosses_the_limit(tmp_path: Path) -> None:
    write(tmp_path, "specs/deep.yaml", "a: " + "[" * 1000 + "]" * 1000 + "\n")
    line = refusal(cli("validate", "specs", cwd=tmp_path))
    # the root mapping is level 1; the 64th bracket, at column 67, is level 65.
    assert line.startswith("error: specs/deep.yaml:1:67: nested too deeply: more than 64 levels"), line
    assert "RECONCILER_SPEC_MAX_DEPTH" in line


@pytest.mark.parametrize(("value", "message"), [
    ("!!float 'abc'", "!!float 'abc': the value is not a number"),
    ("!!int abc", "!!int 'abc': the value is not an integer"),
    ("!!int", "!!int '': the value is not an integer"),
    ("!!bool maybe", "!!bool 'maybe': the value is not true or false"),
    ("!!null x", "!!null 'x': the value is not null"),
    ("!!timestamp soon", "!!timestamp 'soon': the value is not a date or timestamp"),
    ("!!omap [a: 1]", "explicit YAML tag !!omap is not supported here"),
    ("!!set {a}", "explicit YAML tag !!set is not supported here"),
    ("!!binary aGk=", "explicit YAML tag !!binary is not supported here"),
    ("!!python/object:os.system x", "explicit YAML tag !!python/object:os.system is not supported"),
    ("!custom x", "explicit YAML tag !custom is not supported here"),
    ("!!map [1]", "explicit YAML tag !!map is not supported here"),
    ("!!seq {a: 1}", "explicit YAML tag !!seq is not supported here"),
    ("!!str [1]", "explicit YAML tag !!str is not supported here"),
])
def test_an_explicit_tag_that_does_not_fit_is_refused_at_its_place(value: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _parse(f"metadata:\n  name: {value}\n")
    [problem] = info.value.problems
    assert (problem.source, problem.line, problem.column) == ("x.yaml", 2, 9)
    assert problem.message.startswith(message), problem.message


def test_explicit_core_tags_on_fitting_values_load_as_plain_values(tmp_path: Path) -> None:
    write(tmp_path, "jobs.yaml", JOB.format(name="!!str 123").replace(
        'schedule: "0 4 * * *"', 'schedule: !!str "0 4 * * *"\n  suspend: !!bool true'))
    [job] = load_specs(tmp_path)
    assert job.metadata.name == "123" and type(job.metadata.name) is str
    [doc] = _parse("a: !!int 0x1f\nb: !!float 1\nc: !!null ~\nd: !!map {e: !!seq [1]}\n")
    assert doc.data == {"a": 31, "b": 1.0, "c": None, "d": {"e": [1]}}  # type: ignore[attr-defined]


def test_undecodable_bytes_are_refused_at_their_line_and_column(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "metadata:\n  name: caf\u00e9 x\n".encode("latin-1"))  # é in Latin-1
    assert problems(tmp_path) == [
        f"{tmp_path / 'bad.yaml'}:2:12: not UTF-8: byte 0xe9 cannot be decoded (invalid continuation byte)"]
    write(tmp_path, "bad.yaml", "metadata:\n  name: café ".encode() + b"\xff\n")  # columns count characters
    assert problems(tmp_path) == [
        f"{tmp_path / 'bad.yaml'}:2:14: not UTF-8: byte 0xff cannot be decoded (invalid start byte)"]


def test_control_characters_are_refused_at_their_line_and_column(tmp_path: Path) -> None:
    write(tmp_path, "ctrl.yaml", "metadata:\n  name: é\x1b[31m\n")
    assert problems(tmp_path) == [
        f"{tmp_path / 'ctrl.yaml'}:2:10: control character U+001B is not allowed in YAML "
        "(write it as an escape inside a double-quoted string)"]
    write(tmp_path, "ctrl.yaml", "a: 1\x00\n")
    assert problems(tmp_path)[0].startswith(f"{tmp_path / 'ctrl.yaml'}:1:5: control character U+0000")


def test_undecodable_bytes_in_a_git_revision_are_refused_at_their_place(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    write(tmp_path, "specs/bad.yaml", b"a: 1\nb: \xff\n")
    repo.index.add(["specs/bad.yaml"])
    repo.index.commit("bad bytes")
    assert problems(Path("specs"), repo=tmp_path, rev="HEAD") == [
        "HEAD:specs/bad.yaml:2:4: not UTF-8: byte 0xff cannot be decoded (invalid start byte)"]


def test_every_file_is_reported_not_only_the_first(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", b"\xff")
    write(tmp_path, "b.yaml", "a: " + "[" * 100 + "]" * 100)
    write(tmp_path, "c.yaml", "a: !!int x")
    found = problems(tmp_path)
    where = [p.split(": ", 1)[0].rsplit("/", 1)[1] for p in found]
    assert where == ["a.yaml:1:1", "b.yaml:1:67", "c.yaml:1:4"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_an_ascii_text_and_any_other_are_checked_against_the_same_printable_set(text: str) -> None:
    """ASCII texts are checked by a small pattern (start-up time); both name the same first
    character YAML does not allow as printable, as the whole class of YAML 1.2 §5.1 does."""
    from reconciler.loading.decoding import decode_spec

    printable = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
    for candidate in (text, text.encode("ascii", "ignore").decode()):
        bad = printable.search(candidate)
        try:
            decode_spec(candidate.encode("utf-8"), source="s.yaml", limits=LoaderLimits())
        except SpecError as exc:
            assert bad is not None and f"U+{ord(bad.group()):04X}" in str(exc)
        else:
            assert bad is None
