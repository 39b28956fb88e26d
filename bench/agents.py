"""Wall-clock benchmark of `reconciler` on the AgentConfig example, against rulesync.

What is measured: the wall time of whole processes (interpreter start-up, imports, spec
loading, the store, the file I/O), timed from outside with `time.perf_counter` around
`subprocess.run`; each command runs once as a warm-up and then N times, and min / median /
max are reported in seconds.

- `reconciler --help`: the CLI start-up floor (interpreter + Typer, no reconciling).
- `reconciler plan examples/agents`: a dry run against a fresh, empty home (everything to
  create).
- `reconciler apply examples/agents`, no-op: after one initial apply (not timed), so the
  timed runs find every file already in place. The script checks that those runs left
  every file outside the store untouched (size and mtime), and fails if not.
- `rulesync generate` on the equivalent input in `bench/rulesync/` (two rules, one root and
  one with globs; three MCP servers, stdio with env, http with a header, sse; permissions),
  when rulesync can be found: `$RULESYNC_BIN`, else `rulesync` on PATH, else
  `npx --no-install rulesync` (then npx's own start-up is in the figure). rulesync 17
  declares Node >= 22; on an older Node it is still run if `rulesync --version` works, and
  the report says so. Its input targets five clients (rulesync 17 has no Gemini CLI
  target), the AgentConfig six, so the comparison is, if anything, in rulesync's favour.

Before anything is timed, the package's bytecode is written as an installation writes it
(`bench/installed.py`): where PYTHONDONTWRITEBYTECODE is set, an editable install would
otherwise compile every module in every timed process.

The ratio `no-op apply / rulesync generate` (medians of the same run) is checked against
the target "no-op apply <= 0.5 x rulesync generate".

Isolation: every scenario gets a fresh temporary directory holding `home/` (the HOME of
the process, where user-scope targets write), `project/` (the cwd, holding a copy of the
example as `examples/agents`, where project-scope targets write) and `state/`
(RECONCILER_STATE_DIR, a SQLite store). Inherited RECONCILER_*, XDG_* and client
config-directory variables are dropped so that nothing outside the temporary directory is
read or written. rulesync runs with cwd = a copy of `bench/rulesync/` and HOME = its own
temporary `home/`.

Run from the repository root, with the reconciler's venv first on PATH:

    PATH=/work/venv/bin:$PATH python bench/agents.py [--runs N] [--json]

Options: `--example DIR` times another AgentConfig folder (copied in as examples/agents);
`--rulesync-input DIR` another rulesync input folder. Exit status 0 when every measured
command succeeded, 1 when a reconciler command failed (its output is shown).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_EXAMPLE = REPO / "examples" / "agents"
DEFAULT_RULESYNC_INPUT = REPO / "bench" / "rulesync"
SPEC_ARG = "examples/agents"  # as given on the command line, relative to the project cwd
TARGET_RATIO = 0.5
WARMUPS = 1
# rulesync major version -> the lowest Node major its package.json `engines` accepts (from then on).
RULESYNC_NODE_MIN = {17: 22}
# Environment variables that could point a process outside the temporary directory.
DROPPED_ENV_PREFIXES = ("RECONCILER_", "XDG_")
DROPPED_ENV = ("CODEX_HOME", "CLAUDE_CONFIG_DIR", "GEMINI_CLI_HOME", "QWEN_HOME", "CURSOR_CONFIG_DIR")


class BenchError(Exception):
    """A measured command failed or did something it should not have."""


@dataclass(frozen=True, slots=True)
class Figures:
    samples: list[float]
    min: float
    median: float
    max: float

    @classmethod
    def of(cls, samples: list[float]) -> Figures:
        return cls(samples=samples, min=min(samples), median=statistics.median(samples), max=max(samples))


@dataclass(slots=True)
class Measurement:
    label: str
    command: str
    figures: Figures
    files: int | None = None  # files the command (or the initial apply) wrote


@dataclass(slots=True)
class RulesyncInfo:
    available: bool
    reason: str | None = None
    command: list[str] = field(default_factory=list)
    version: str | None = None
    via_npx: bool = False
    node: str | None = None
    engine_warning: str | None = None


@dataclass(slots=True)
class Report:
    runs: int
    warmups: int
    python: str
    platform: str
    reconciler: str
    example: str
    measurements: list[Measurement]
    rulesync: RulesyncInfo
    ratio: float | None = None
    target_ratio: float = TARGET_RATIO
    meets_target: bool | None = None


# --- processes ------------------------------------------------------------------------------


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(DROPPED_ENV_PREFIXES) and k not in DROPPED_ENV
    }
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def run(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run one process to completion; its wall time in seconds and its result."""
    start = time.perf_counter()
    result = subprocess.run(list(argv), cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    return time.perf_counter() - start, result


def checked(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> float:
    elapsed, result = run(argv, cwd, env)
    if result.returncode != 0:
        raise BenchError(failure(argv, result))
    return elapsed


def failure(argv: Sequence[str], result: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    tail = (result.stderr.strip().splitlines() or result.stdout.strip().splitlines())[-lines:]
    shown = "\n    ".join(tail) if tail else "(no output)"
    return f"`{' '.join(argv)}` exited with {result.returncode}:\n    {shown}"


def timed(argv: Sequence[str], cwd: Path, env: Mapping[str, str], runs: int) -> Figures:
    for _ in range(WARMUPS):
        checked(argv, cwd, env)
    return Figures.of([checked(argv, cwd, env) for _ in range(runs)])


# --- files -----------------------------------------------------------------------------------


def snapshot(root: Path, skip: Sequence[Path] = ()) -> dict[str, tuple[int, int]]:
    """Every file under root (outside `skip`) with its size and mtime in nanoseconds."""
    files: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in skip]
        for name in filenames:
            path = here / name
            if path in skip:
                continue
            st = path.lstat()
            files[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return files


def changed(before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


# --- reconciler ------------------------------------------------------------------------------


def find_reconciler() -> str:
    sibling = Path(sys.executable).parent / "reconciler"
    found = shutil.which("reconciler") or (str(sibling) if sibling.is_file() else None)
    if found is None:
        raise BenchError("no `reconciler` on PATH nor next to this Python; put the venv's bin/ first on PATH")
    return found


class Sandbox:
    """A fresh temporary home, project (cwd, with the example copied in) and state directory."""

    def __init__(self, example: Path) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-agents-")
        self.root = Path(self._tmp.name)
        self.home = self.root / "home"
        self.project = self.root / "project"
        self.state = self.root / "state"
        self.home.mkdir()
        shutil.copytree(example, self.project / SPEC_ARG)
        self.env = clean_env(self.home, {"RECONCILER_STATE_DIR": str(self.state)})

    def written(self) -> dict[str, tuple[int, int]]:
        """The files outside the store and the copied spec: what the reconciler wrote."""
        return snapshot(self.root, skip=(self.state, self.project / SPEC_ARG))

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()


def bench_reconciler(reconciler: str, example: Path, runs: int) -> list[Measurement]:
    measurements: list[Measurement] = []

    with Sandbox(example) as box:
        argv = [reconciler, "--help"]
        measurements.append(
            Measurement("start-up floor", "reconciler --help", timed(argv, box.project, box.env, runs))
        )

    with Sandbox(example) as box:
        argv = [reconciler, "plan", SPEC_ARG]
        figures = timed(argv, box.project, box.env, runs)
        if box.written():
            raise BenchError(f"`reconciler plan` wrote files: {', '.join(sorted(box.written()))}")
        measurements.append(Measurement("plan (fresh home)", f"reconciler plan {SPEC_ARG}", figures))

    with Sandbox(example) as box:
        # A long-used Claude Code home: `~/.claude.json` keeps every project's history (15 MB
        # here, 3,000 projects); the reconciler edits its `mcpServers` among all that.
        big = box.home / ".claude.json"
        big.write_text(large_claude_json(), encoding="utf-8")
        size = f"{big.stat().st_size / 2**20:.0f} MB ~/.claude.json"
        argv = [reconciler, "plan", SPEC_ARG]
        measurements.append(Measurement(f"plan, {size}", f"reconciler plan {SPEC_ARG}",
                                        timed(argv, box.project, box.env, runs)))
        argv = [reconciler, "apply", SPEC_ARG]
        checked(argv, box.project, box.env)
        measurements.append(Measurement(f"no-op apply, {size}", f"reconciler apply {SPEC_ARG}",
                                        timed(argv, box.project, box.env, runs)))

    with Sandbox(example) as box:
        argv = [reconciler, "apply", SPEC_ARG]
        checked(argv, box.project, box.env)  # the initial apply, which writes everything
        before = box.written()
        figures = timed(argv, box.project, box.env, runs)
        if moved := changed(before, box.written()):
            raise BenchError(f"the no-op `reconciler apply` changed files: {', '.join(moved)}")
        measurements.append(
            Measurement("no-op apply", f"reconciler apply {SPEC_ARG}", figures, files=len(before))
        )
    return measurements


def large_claude_json(projects: int = 3000, prompts: int = 20) -> str:
    """A `~/.claude.json` as Claude Code grows it: per project, its prompt history and state."""
    body = {"numStartups": 812, "projects": {
        f"/home/me/src/project-{p}": {
            "allowedTools": [], "history": [{"display": f"prompt {p}.{i}: " + "x" * 200, "pastedContents": {}}
                                            for i in range(prompts)],
            "mcpContextUris": [], "hasTrustDialogAccepted": True, "lastCost": 0.42}
        for p in range(projects)}, "mcpServers": {"mine": {"command": "mine-mcp"}}}
    return json.dumps(body, indent=2) + "\n"


# --- rulesync --------------------------------------------------------------------------------


def node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def major(version: str | None) -> int | None:
    match = re.search(r"(\d+)\.\d+", version or "")
    return int(match.group(1)) if match else None


def probe(argv: list[str]) -> tuple[str | None, str]:
    """`argv --version`: the version printed, or None and why not."""
    try:
        out = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"`{' '.join(argv)} --version` could not run: {exc}"
    version = out.stdout.strip().splitlines()[-1:] if out.returncode == 0 else []
    if version and major(version[0]) is not None:
        return version[0], ""
    noise = ("npm warn", "npm notice", "npm error a complete log")
    lines = [ln for ln in out.stderr.splitlines() if ln.strip() and not ln.lower().startswith(noise)]
    detail = lines[-1].strip() if lines else f"exit status {out.returncode}"
    return None, f"`{' '.join(argv)} --version` failed: {detail}"


def find_rulesync() -> RulesyncInfo:
    node = node_version()
    tried: list[str] = []
    candidates: list[tuple[list[str], bool]] = []
    if env_bin := os.environ.get("RULESYNC_BIN"):
        path = shutil.which(env_bin) or env_bin
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return RulesyncInfo(False, f"RULESYNC_BIN={env_bin} is not an executable file", node=node)
        candidates.append(([path], False))
    else:
        if on_path := shutil.which("rulesync"):
            candidates.append(([on_path], False))
        else:
            tried.append("no `rulesync` on PATH")
        if npx := shutil.which("npx"):
            candidates.append(([npx, "--no-install", "rulesync"], True))
        else:
            tried.append("no `npx` on PATH")
    for argv, via_npx in candidates:
        version, why = probe(argv)
        if version is None:
            tried.append(why)
            continue
        info = RulesyncInfo(True, command=argv, version=version, via_npx=via_npx, node=node)
        wanted = max((n for v, n in RULESYNC_NODE_MIN.items() if v <= (major(version) or 0)), default=None)
        if wanted is not None and node is not None and (major(node) or 0) < wanted:
            info.engine_warning = (
                f"rulesync {version} declares Node >= {wanted}, this is Node {node}: "
                "outside its supported engines"
            )
        return info
    if node is None:
        tried.append("no `node` on PATH")
    else:
        wanted = max(RULESYNC_NODE_MIN.values())
        if (major(node) or 0) < wanted:
            tried.append(f"Node {node}; rulesync 17 declares Node >= {wanted}")
    tried.append("set RULESYNC_BIN to a rulesync binary, or `npm install -g rulesync`")
    return RulesyncInfo(False, "; ".join(tried), node=node)


def bench_rulesync(info: RulesyncInfo, source: Path, runs: int) -> Measurement | None:
    """Time `rulesync generate`; None (and the reason in info) when it does not run."""
    with tempfile.TemporaryDirectory(prefix="bench-rulesync-") as tmp:
        root = Path(tmp)
        home, project = root / "home", root / "project"
        home.mkdir()
        shutil.copytree(source, project)
        inputs = snapshot(project)
        argv = [*info.command, "generate"]
        try:
            figures = timed(argv, project, clean_env(home), runs)
        except BenchError as exc:
            info.available, info.reason = False, f"generate failed: {exc}"
            return None
        written = [k for k in snapshot(project) if k not in inputs] + list(snapshot(home))
    label = "generate" + (" (via npx)" if info.via_npx else "")
    return Measurement(label, "rulesync generate", figures, files=len(written))


# --- report ----------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> Report:
    from installed import compile_package

    print(compile_package(), file=sys.stderr)
    reconciler = find_reconciler()
    example = Path(args.example).resolve()
    if not any(example.glob("*.y*ml")):
        raise BenchError(f"expected an AgentConfig spec folder, got {example} (no YAML in it)")
    measurements = bench_reconciler(reconciler, example, args.runs)
    info = find_rulesync()
    report = Report(
        runs=args.runs,
        warmups=WARMUPS,
        python=platform.python_version(),
        platform=platform.platform(),
        reconciler=reconciler,
        example=str(example),
        measurements=measurements,
        rulesync=info,
    )
    if info.available and (generate := bench_rulesync(info, Path(args.rulesync_input).resolve(), args.runs)):
        measurements.append(generate)
        apply = next(m for m in measurements if m.label == "no-op apply")
        report.ratio = apply.figures.median / generate.figures.median
        report.meets_target = report.ratio <= TARGET_RATIO
    return report


def render(report: Report) -> str:
    rs = report.rulesync
    lines = [
        f"bench/agents.py: wall time of whole processes in seconds, {report.runs} run(s) each "
        f"after {report.warmups} warm-up",
        f"reconciler: {report.reconciler}; spec: {report.example}; bench Python {report.python}",
    ]
    if rs.available:
        how = " ".join(rs.command) + (" (npx start-up included)" if rs.via_npx else "")
        lines.append(f"rulesync:   {rs.version} via {how}; node {rs.node or 'not found'}")
        if rs.engine_warning:
            lines.append(f"            note: {rs.engine_warning}")
    else:
        lines.append(f"rulesync: not available ({rs.reason}); node {rs.node or 'not found'}")
    rows = [(f"{m.command}  [{m.label}]", m.figures, m.files) for m in report.measurements]
    width = max(len(r[0]) for r in rows)
    lines += ["", f"{'command':<{width}}  {'min':>7}  {'median':>7}  {'max':>7}  files"]
    for name, fig, files in rows:
        shown = "" if files is None else str(files)
        lines.append(f"{name:<{width}}  {fig.min:7.3f}  {fig.median:7.3f}  {fig.max:7.3f}  {shown}")
    lines.append("")
    if report.ratio is None:
        lines.append("ratio no-op apply / rulesync generate: skipped (rulesync did not run)")
    else:
        verdict = "met" if report.meets_target else "NOT met"
        lines.append(
            f"ratio no-op apply / rulesync generate (medians): {report.ratio:.2f}; "
            f"target <= {report.target_ratio:.2f}: {verdict}"
        )
    return "\n".join(lines)


def as_json(report: Report) -> dict[str, Any]:
    data = asdict(report)
    data["measurements"] = {
        m.command: {"label": m.label, "files": m.files, **asdict(m.figures)} for m in report.measurements
    }
    return data


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/agents.py",
        description="Wall times of `reconciler plan/apply examples/agents` and of `rulesync generate`.",
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--example", default=str(DEFAULT_EXAMPLE), help="AgentConfig folder to time")
    parser.add_argument("--rulesync-input", default=str(DEFAULT_RULESYNC_INPUT), help="rulesync input folder")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"expected --runs of at least 1, got {args.runs}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = measure(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(as_json(report), indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
