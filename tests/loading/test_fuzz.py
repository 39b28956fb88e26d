"""Fuzzing the loader and the models: every input loads, or is refused with a location.

Two fuzzers with a fixed, deterministic budget (`derandomize=True`, no example database):

- YAML-ish text and raw bytes built from the tokens that break parsers (anchors, aliases,
  merge keys, every kind of tag, brackets, quotes, directives, control characters, bytes
  that are not UTF-8), loaded with the default limits and with tiny ones;
- the shipped example specs, parsed, with one part replaced by a hostile value (huge or
  non-finite numbers, deep lists, odd strings, wrong types) or a key removed or added,
  dumped back to YAML and loaded.

Each input must either load or raise `SpecError` whose every problem names a file, a line
and a column. Anything else (a traceback from ruamel, pydantic, a validator) fails, and
hypothesis shrinks it to a minimal file. Issue 15, finding 4 found 19 such files out of 396.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.errors import SpecError
from reconciler.loading import load_specs
from reconciler.loading.limits import LoaderLimits

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [ROOT / "examples/aed/aedsourcebinding.yaml", ROOT / "examples/agents/agentconfig.yaml",
            ROOT / "examples/rbac/rbacmapping.yaml", ROOT / "specs/aed.yaml", ROOT / "specs/agents.yaml",
            ROOT / "specs/rbac.yaml"]
BUDGET = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TINY = LoaderLimits(max_bytes=400, max_nodes=60, max_alias_nodes=20, max_depth=5)

TOKENS = [
    "apiVersion: reconciler.dev/v1alpha1\n", "kind: SyncJob\n", "metadata:\n", "  name: ", "spec:\n",
    "a", "b", ": ", ":", "- ", "\n", "  ", "    ", "\t", "[", "]", "{", "}", ", ", "&a ", "*a", "&b ", "*b",
    "<<: ", "? ", "|\n", ">-\n", "'", '"', "\\", "# c\n", "---\n", "...\n", "%YAML 1.2\n",
    "%TAG ! tag:x,1:\n",
    "!!int ", "!!float ", "!!str ", "!!bool ", "!!null ", "!!map ", "!!seq ", "!!omap ", "!!set ",
    "!!binary ", "!!timestamp ", "!!python/object:os.system ", "!local ", "!<tag:yaml.org,2002:int> ",
    "~", "null", "true", "maybe", "0", "-1", "0x1f", "0o17", "1e400", ".nan", "-.inf", "9" * 40, "1_000",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-02-30", "12:30:00", "é", "\u2028", "\ufeff", "\x85",
    "@", "`", "%", "|", "*", "&",
]
CONTROL = ["\x00", "\x07", "\x1b[31m", "\x7f", "\x9b", "\r"]


def yamlish() -> st.SearchStrategy[bytes]:
    """Mostly YAML-shaped text (so that most inputs reach the parser, the composer and the
    models), some with a control character or foreign bytes inserted, some raw bytes."""
    words = st.text(alphabet=st.characters(exclude_categories=("Cc", "Cs")), max_size=5)
    clean = st.lists(st.one_of(st.sampled_from(TOKENS), words), max_size=60).map(
        lambda parts: "".join(parts).encode())

    def insert(t: tuple[bytes, bytes, int]) -> bytes:
        at = t[2] % (len(t[0]) + 1)
        return t[0][:at] + t[1] + t[0][at:]

    foreign = st.one_of(st.sampled_from(CONTROL).map(str.encode), st.binary(min_size=1, max_size=4))
    dirty = st.tuples(clean, foreign, st.integers(min_value=0)).map(insert)
    return st.one_of(clean, clean, clean, clean, dirty, st.binary(max_size=64))


@pytest.fixture(scope="module")
def spec_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "fuzzed.yaml"


def loads_or_is_located(path: Path, data: bytes, limits: LoaderLimits | None = None) -> None:
    path.write_bytes(data)
    try:
        load_specs(path, limits=limits)
    except SpecError as exc:
        for problem in exc.problems:
            assert problem.source == str(path), problem
            assert problem.line is not None and problem.column is not None, str(problem)
            assert problem.line >= 1 and problem.column >= 1, str(problem)


@BUDGET
@given(data=yamlish(), tiny=st.booleans())
@example(data=b"a: " + b"[" * 1000 + b"]" * 1000, tiny=False)
@example(data=b"a: !!float 'abc'", tiny=False)
@example(data=b"a: !!int", tiny=False)
@example(data=b"a: !!bool maybe", tiny=False)
@example(data=b"a: !!omap [b: 1]", tiny=False)
@example(data=b"a: &a [*a]", tiny=False)
@example(data=b"a: \xff", tiny=False)
@example(data=b"a: \x01", tiny=False)
@example(data=b"? [a]\n: 1", tiny=False)
def test_fuzzed_yaml_loads_or_is_refused_with_a_location(spec_file: Path, data: bytes, tiny: bool) -> None:
    loads_or_is_located(spec_file, data, TINY if tiny else None)


# --- the models: real specs with one part made hostile -----------------------------------


def _documents() -> list[Any]:
    yaml = YAML(typ="safe", pure=True)
    docs = []
    for path in EXAMPLES:
        docs += [d for d in yaml.load_all(path.read_text()) if isinstance(d, dict) and "kind" in d]
    return docs


DOCUMENTS = _documents()

hostile_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["", " ", "*", "0 4 * * *", "@daily", "99 99 99 99 99", "-1s", "1h", "P1D",
                     "../../etc/passwd", "{env: X}", "$X", "${X}", "é" * 50, "a" * 300, "Asia/Seoul",
                     "Not/AZone", "2001-02-30",
                     "postgresql://u:p@h/db", "https://example.com", "SELECT 1; DROP TABLE x"]),
)
hostile_values = st.recursive(
    hostile_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def _places(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _places(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _places(value, (*path, index))


def _mutate(doc: Any, path: tuple[Any, ...], action: str, value: Any, key: str) -> Any:
    if not path:
        return value if action == "replace" else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):
        parent[last][key] = value
    else:
        parent[last] = value
    return doc


@st.composite
def mutated_specs(draw: st.DrawFn) -> bytes:
    import copy

    doc = copy.deepcopy(draw(st.sampled_from(DOCUMENTS)))
    path = draw(st.sampled_from(list(_places(doc))))
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    doc = _mutate(doc, path, action, draw(hostile_values), draw(st.text(min_size=1, max_size=10)))
    out = io.StringIO()
    YAML(typ="safe", pure=True).dump(doc, out)
    return out.getvalue().encode("utf-8", errors="surrogatepass")


@BUDGET
@given(data=mutated_specs())
def test_fuzzed_specs_validate_or_are_refused_with_a_location(spec_file: Path, data: bytes) -> None:
    loads_or_is_located(spec_file, data)


def test_the_model_fuzzer_starts_from_every_kind() -> None:
    assert {d["kind"] for d in DOCUMENTS} == {"AedSourceBinding", "AgentConfig", "RbacMapping", "SyncJob"}
