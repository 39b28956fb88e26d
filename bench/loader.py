"""What hostile spec files cost the loader: wall time and peak memory of `reconciler validate`.

    python bench/loader.py [--runs N] [--baseline]

Each case is a folder with one spec file, validated by a fresh `python -m reconciler.cli
validate DIR` process (default limits, see `reconciler/loading/limits.py`); the figures are
that process's wall time (interpreter start-up and imports included) and its peak RSS
(`ru_maxrss` from `os.wait4` on that one child). A no-op control, the shipped
`examples/agents` spec, shows the floor: start-up and imports.

The cases are those of issue 15 (findings 3 and 4): a 700-byte list alias bomb (9**9
strings), an 800-byte map bomb, a 7.9 MB list of 1,000,000 numbers, a 300 kB list of
150,000 zeros (under the byte limit, over the node limit), nesting 1,000 deep, and a
legitimate 1,000-item spec (a big AgentConfig rule list, loaded in full) to show what
normal input costs.

`--baseline` also runs each hostile case through what the loader did before the limits
(ruamel.yaml's round-trip load, then the plain-data copy), in a process capped at 1 GiB
of address space and `--baseline-timeout` seconds, to show what the limits prevent.

Every command of the bounded loader must exit 1 with one located error line naming the
limit (exit 0 for the controls); a case that does not is reported and makes the exit
status 1. The figures are printed, not asserted: on a loaded machine they vary.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def list_bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def map_bomb() -> str:
    keys = [f"k{j}" for j in range(9)]
    lines = ["m0: &m0 {" + ", ".join(f"{k}: lol" for k in keys) + "}"]
    lines += [f"m{i}: &m{i} {{" + ", ".join(f"{k}: *m{i - 1}" for k in keys) + "}" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def big_rule_list(count: int) -> str:
    rules = "".join(f"    - name: rule-{i}\n      description: rule {i}\n      content: |\n"
                    f"        Rule number {i}: say what was expected.\n" for i in range(count))
    return ("apiVersion: reconciler.dev/v1alpha1\nkind: AgentConfig\nmetadata: {name: big}\n"
            "spec:\n  rules:\n" + rules + "  targets:\n    - client: claude-code\n")


CASES: list[tuple[str, str, object]] = [
    # (name, expected outcome: a phrase of the refusal or "ok", content)
    ("control: examples/agents", "ok", ROOT / "examples/agents/agentconfig.yaml"),
    ("control: 1,000 rules (5,000+ nodes)", "ok", lambda: big_rule_list(1000)),
    ("list alias bomb (700 B)", "RECONCILER_SPEC_MAX_ALIAS_NODES", list_bomb),
    ("map alias bomb (800 B)", "RECONCILER_SPEC_MAX_ALIAS_NODES", map_bomb),
    ("1,000,000 numbers (7.9 MB)", "RECONCILER_SPEC_MAX_BYTES",
     lambda: "numbers: [" + ", ".join(str(i) for i in range(1_000_000)) + "]\n"),
    ("150,000 zeros (300 kB)", "RECONCILER_SPEC_MAX_NODES",
     lambda: "numbers: [" + ",".join("0" * 150_000) + "]\n"),
    ("nesting 1,000 deep", "RECONCILER_SPEC_MAX_DEPTH", lambda: "a: " + "[" * 1000 + "]" * 1000 + "\n"),
]

BASELINE = """
import sys
from ruamel.yaml import YAML
from reconciler.loading.documents import to_plain
for node in YAML(typ="rt").load_all(open(sys.argv[1], encoding="utf-8").read()):
    to_plain(node)
"""


def measure(cmd: list[str], *, cap: int | None = None,
            timeout: float | None = None) -> tuple[int, float, float, str]:
    """Exit status (-9 when killed at the timeout), wall seconds, peak RSS in MiB of one
    child, and its stderr (through a file: a full pipe would stall the child)."""
    def limit() -> None:
        if cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit)
        deadline = start + timeout if timeout else None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline and time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return proc.returncode, wall, usage.ru_maxrss / 1024, stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--baseline-timeout", type=float, default=60.0)
    args = parser.parse_args()
    failures = 0
    floor = measure(["/bin/true"])[2]
    print(f"method floor (an exec of /bin/true): {floor:.0f} MiB")
    print(f"{'case':38} {'outcome':>9} {'wall s (median)':>16} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for number, (name, expected, content) in enumerate(CASES):
            folder = Path(tmp) / f"case{number}"
            folder.mkdir()
            spec = folder / "spec.yaml"
            if isinstance(content, Path):
                spec.write_text(content.read_text())
            else:
                spec.write_text(content())  # type: ignore[operator]
            walls, peaks, outcome = [], [], ""
            for _ in range(args.runs):
                code, wall, peak, stderr = measure([sys.executable, "-m", "reconciler.cli", "validate",
                                                    str(folder)])
                walls.append(wall)
                peaks.append(peak)
                errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
                if expected == "ok":
                    good = code == 0
                    outcome = "loaded" if good else "FAILED"
                else:
                    good = (code == 1 and len(errors) == 1 and expected in errors[0]
                            and "Traceback" not in stderr)
                    outcome = "refused" if good else "WRONG"
                if not good:
                    failures += 1
                    print(stderr[-1500:], file=sys.stderr)
            print(f"{name:38} {outcome:>9} {statistics.median(walls):16.2f} {max(peaks):9.0f}")
            if expected != "ok" and outcome == "refused":
                print(f"    {errors[0].replace(str(folder) + '/', '')[:150]}")
            if args.baseline and expected != "ok":
                code, wall, peak, stderr = measure([sys.executable, "-c", BASELINE, str(spec)],
                                                   cap=1 << 30, timeout=args.baseline_timeout)
                how = ("killed at the timeout" if code == -9 else
                       "out of memory at 1 GiB" if "MemoryError" in stderr else
                       "RecursionError" if "RecursionError" in stderr else f"exit {code}")
                print(f"    before the limits (ruamel load + plain copy): {wall:.1f} s, {peak:.0f} MiB, "
                      f"{how}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
