"""Benchmark of the daemon's status API under a fixed request rate, while it schedules runs.

    python bench/api.py [--objects 100] [--rate 200] [--duration 10] [--connections 64] [--json]

What is measured: the latency of `GET /api/v1/objects/AgentConfig/agent-<i>` (one object's
status: the main figure) and of `GET /api/v1/objects` (every object's status), as seen by an
HTTP client on the same machine, against a real `reconciler serve` whose scheduler is busy.

Set-up, in a temporary directory:
- a specs folder with `--objects` objects (100 by default): half `AgentConfig`s, each with one
  stdio MCP server and one `claude-code` target at project scope whose `root` is its own
  sub-folder of the temporary directory (the reconcile writes a small `.mcp.json` there:
  quick and harmless), and half `SyncJob`s, one per AgentConfig, with `interval: 30s`, so that
  the scheduler is firing runs during the measurement (reported: how many AgentConfigs were
  re-run while the load ran). The SyncJobs' first occurrences come about 30 s after the
  daemon starts, all together; the load is started so that the next one falls inside the
  measurement window (a fifth of the way in, at most 2 s), a conservative placement;
- `reconciler serve --specs DIR --port <free port> --viewer-token-env BENCH_TOKEN`, with
  RECONCILER_STATE_DIR in the temporary directory (a fresh SQLite store) and its log in a
  file there; the bench waits for `/readyz` to answer 200 and for the initial reconcile (every
  AgentConfig has a `result` in `GET /api/v1/objects`).

The load comes from a second process (this script with `--load`), so that the client does
not share an interpreter (and its GIL) with the bench's bookkeeping: asyncio with one
`httpx.AsyncClient` holding `--connections` keep-alive connections (64 by default), each
driven by a worker task. It is open-loop: a dispatcher hands request k over at its due time
`start + k / rate` whatever the earlier answers are doing, so slow answers do not lower the
offered rate; a request waits in a queue while every connection is busy, and its latency is
measured from its due time (not from when it was actually sent), so queueing in the client
or the server counts: the measurement is coordinated-omission aware (as wrk2's). Workers over
a fixed set of connections, rather than one task per request over httpx's own pool, keep the
client's cost per request constant when a backlog builds up. Every 10th request is the list
endpoint, the others the single-object endpoint, over the AgentConfigs in turn. A request
that fails (a transport error, a 10 s timeout, a status other than 200) counts as an error
and is kept out of the percentiles. Achieved rate = answered requests / (last answer - first
due time). Percentiles are nearest-rank over the answered requests.

Reported: offered and achieved rates, counts, errors, p50/p90/p99/max in ms per endpoint,
the dispatcher's worst lateness against the schedule (the load generator's own health),
and whether the target "single-object GET p99 < 50 ms at 200 req/s" is met (which also needs
`--rate` >= 200, no single-object errors and an achieved rate within 5% of the offered one). Then the daemon
gets SIGTERM and must exit 0. Exit status: 1 if the set-up fails, the daemon does not stop
with 0, or the load process fails; a missed latency target is reported, not an error. The
temporary directory is removed at the end unless `--keep` (or a failure) keeps it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

TOKEN_ENV = "BENCH_TOKEN"
TOKEN = "bench-api-token"
LIST_EVERY = 10
TARGET_P99_MS = 50.0
TARGET_RATE = 200.0
REQUEST_TIMEOUT_S = 10.0
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
INTERVAL_S = 30  # the SyncJobs' interval
RECONCILER = Path(sys.executable).with_name("reconciler")


# --- the load process ---------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One request: which endpoint, its latency from the intended send time, how it ended."""

    endpoint: str  # "single" or "list"
    latency_s: float
    ok: bool
    error: str = ""


@dataclass(slots=True)
class EndpointFigures:
    count: int
    errors: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    error_examples: list[str] = field(default_factory=list)


@dataclass(slots=True)
class LoadFigures:
    offered_rate: float
    achieved_rate: float
    duration_s: float
    count: int
    errors: int
    max_dispatch_lag_ms: float
    single: EndpointFigures
    listing: EndpointFigures


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def endpoint_figures(samples: list[Sample], endpoint: str) -> EndpointFigures:
    mine = [s for s in samples if s.endpoint == endpoint]
    ok = sorted(s.latency_s * 1000 for s in mine if s.ok)
    failed = [s for s in mine if not s.ok]
    examples = sorted({s.error for s in failed})[:5]
    if not ok:
        return EndpointFigures(len(mine), len(failed), None, None, None, None, examples)
    return EndpointFigures(len(mine), len(failed), percentile(ok, 50), percentile(ok, 90),
                           percentile(ok, 99), ok[-1], examples)


async def worker(client: httpx.AsyncClient, due: asyncio.Queue[tuple[str, str, float] | None],
                 samples: list[Sample]) -> None:
    """Send the requests handed over by the dispatcher, one at a time on this connection."""
    while (item := await due.get()) is not None:
        path, endpoint, intended = item
        try:
            response = await client.get(path)
            await response.aread()
            ok = response.status_code == 200
            error = "" if ok else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        samples.append(Sample(endpoint, time.perf_counter() - intended, ok, error))


async def generate_load(url: str, token: str, agents: int, rate: float, duration: float,
                        connections: int, start_at: float) -> LoadFigures:
    """Open-loop load: request k is due at start + k / rate, whatever the answers are doing; start
    is `start_at` (a `time.time()` instant) or, if that has passed, as soon as the client is ready."""
    total = int(rate * duration)
    samples: list[Sample] = []
    lags: list[float] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
    due: asyncio.Queue[tuple[str, str, float] | None] = asyncio.Queue()
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"},
                                 limits=limits, timeout=timeout) as client:
        # Open the connections and warm the server's first-request paths outside the measurement.
        await asyncio.gather(*(client.get(f"/api/v1/objects/AgentConfig/agent-{i % agents}")
                               for i in range(connections)))
        workers = [asyncio.create_task(worker(client, due, samples)) for _ in range(connections)]
        start = time.perf_counter() + max(0.05, start_at - time.time())
        for k in range(total):
            intended = start + k / rate
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(time.perf_counter() - intended)
            if k % LIST_EVERY == LIST_EVERY - 1:
                due.put_nowait(("/api/v1/objects", "list", intended))
            else:
                due.put_nowait((f"/api/v1/objects/AgentConfig/agent-{k % agents}", "single", intended))
        for _ in workers:
            due.put_nowait(None)
        await asyncio.gather(*workers)
        end = time.perf_counter()
    answered = sum(1 for s in samples if s.ok)
    elapsed = end - start
    return LoadFigures(
        offered_rate=rate, achieved_rate=answered / elapsed if elapsed > 0 else 0.0, duration_s=elapsed,
        count=len(samples), errors=sum(1 for s in samples if not s.ok),
        max_dispatch_lag_ms=max(lags, default=0.0) * 1000,
        single=endpoint_figures(samples, "single"), listing=endpoint_figures(samples, "list"))


def load_main(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_ENV, "")
    figures = asyncio.run(generate_load(args.url, token, args.agents, args.rate, args.duration,
                                         args.connections, args.start_at))
    print(json.dumps(asdict(figures)))
    return 0


# --- the orchestrating process ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_specs(folder: Path, projects: Path, agents: int, jobs: int) -> None:
    """`agents` AgentConfigs (agent-<i>) and `jobs` SyncJobs (sync-<i>, every 30 s) over them."""
    folder.mkdir(parents=True)
    for i in range(agents):
        root = projects / f"agent-{i}"
        root.mkdir(parents=True)
        doc = (
            "apiVersion: reconciler.dev/v1alpha1\n"
            "kind: AgentConfig\n"
            "metadata:\n"
            f"  name: agent-{i}\n"
            "spec:\n"
            "  mcpServers:\n"
            "    bench:\n"
            "      command: echo\n"
            f"      args: [\"agent-{i}\"]\n"
            "  targets:\n"
            "    - client: claude-code\n"
            "      scope: project\n"
            f"      root: {json.dumps(str(root))}\n"
        )
        (folder / f"agent-{i}.yaml").write_text(doc)
    for i in range(jobs):
        doc = (
            "apiVersion: reconciler.dev/v1alpha1\n"
            "kind: SyncJob\n"
            "metadata:\n"
            f"  name: sync-{i}\n"
            "spec:\n"
            f"  targetRef: {{kind: AgentConfig, name: agent-{i % agents}}}\n"
            f"  interval: {INTERVAL_S}s\n"
        )
        (folder / f"sync-{i}.yaml").write_text(doc)


def agent_runs(client: httpx.Client) -> dict[str, str | None] | None:
    """{AgentConfig name: its last run id}, or None if the API does not answer yet."""
    try:
        response = client.get("/api/v1/objects")
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    rows: list[dict[str, Any]] = response.json()
    return {r["name"]: r.get("last_run_id") if r.get("result") else None
            for r in rows if r["kind"] == "AgentConfig"}


def wait_until_reconciled(client: httpx.Client, daemon: subprocess.Popen[bytes], agents: int) -> float:
    """Wait for /readyz 200 and for every AgentConfig to have a result; seconds taken."""
    begun = time.perf_counter()
    deadline = begun + STARTUP_TIMEOUT_S
    ready = False
    while time.perf_counter() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode} during start-up")
        if not ready:
            with contextlib.suppress(httpx.HTTPError):
                ready = client.get("/readyz").status_code == 200
        if ready:
            runs = agent_runs(client)
            if runs is not None and len(runs) == agents and all(runs.values()):
                return time.perf_counter() - begun
        time.sleep(0.1)
    raise RuntimeError(f"the daemon was not ready with {agents} reconciled AgentConfigs "
                       f"within {STARTUP_TIMEOUT_S:.0f} s")


def load_start(client: httpx.Client, duration: float) -> float:
    """When the load should start (a `time.time()` instant): so that the SyncJobs' next
    scheduled occurrence falls inside the measurement window, a fifth of the way in (at most
    2 s), and no sooner than 3 s from now (the load process starts and opens its connections)."""
    earliest = time.time() + 3.0
    response = client.get("/api/v1/objects")
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()
    due = [datetime.fromisoformat(r["next_run_time"]).timestamp() for r in rows
           if r["kind"] == "SyncJob" and r.get("next_run_time")]
    if not due:
        return earliest
    lead = min(2.0, duration / 5)
    upcoming = min(due)
    while upcoming - lead < earliest:  # too close: aim at the occurrence after it
        upcoming += INTERVAL_S
    return upcoming - lead


def run_load(url: str, agents: int, rate: float, duration: float, connections: int,
             start_at: float) -> LoadFigures:
    command = [sys.executable, str(Path(__file__).resolve()), "--load", "--url", url,
               "--agents", str(agents), "--rate", str(rate), "--duration", str(duration),
               "--connections", str(connections), "--start-at", repr(start_at)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, TOKEN_ENV: TOKEN},
                          timeout=duration * 10 + 300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the load process failed ({done.returncode}):\n{done.stderr}")
    data: dict[str, Any] = json.loads(done.stdout)
    data["single"] = EndpointFigures(**data["single"])
    data["listing"] = EndpointFigures(**data["listing"])
    return LoadFigures(**data)


def stop_daemon(daemon: subprocess.Popen[bytes]) -> tuple[int, float]:
    """SIGTERM; its exit status and how long it took to stop."""
    begun = time.perf_counter()
    daemon.send_signal(signal.SIGTERM)
    try:
        code = daemon.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
        return -9, time.perf_counter() - begun
    return code, time.perf_counter() - begun


@dataclass(slots=True)
class Report:
    objects: int
    agent_configs: int
    sync_jobs: int
    startup_s: float
    load: LoadFigures
    reruns_during_load: int
    target: str
    target_met: bool
    daemon_exit: int
    daemon_stop_s: float


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_report(r: Report) -> None:
    load = r.load
    print(f"objects: {r.objects} ({r.agent_configs} AgentConfig, {r.sync_jobs} SyncJob every 30s); "
          f"daemon ready and reconciled in {r.startup_s:.1f} s")
    print(f"offered rate: {load.offered_rate:.1f} req/s; achieved rate: {load.achieved_rate:.1f} req/s "
          f"(last answer {load.duration_s:.2f} s after the first request was due)")
    print(f"requests: {load.count}, errors: {load.errors}, "
          f"max dispatch lag (client health): {load.max_dispatch_lag_ms:.1f} ms")
    print(f"AgentConfigs re-run by the scheduler during the load: {r.reruns_during_load}")
    print(f"{'endpoint':<38} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8}")
    for label, f in (("GET /api/v1/objects/AgentConfig/{name}", load.single),
                     ("GET /api/v1/objects", load.listing)):
        print(f"{label:<38} {f.count:>6} {f.errors:>6} {fmt_ms(f.p50_ms):>8} {fmt_ms(f.p90_ms):>8} "
              f"{fmt_ms(f.p99_ms):>8} {fmt_ms(f.max_ms):>8}")
        for example in f.error_examples:
            print(f"  error: {example}")
    print(f"target: {r.target}: {'met' if r.target_met else 'MISSED'}")
    print(f"daemon stopped on SIGTERM in {r.daemon_stop_s:.1f} s with exit status {r.daemon_exit} "
          f"({'ok' if r.daemon_exit == 0 else 'FAILED'})")


def bench_main(args: argparse.Namespace) -> int:
    agents = args.objects - args.objects // 2
    jobs = args.objects // 2
    keep = args.keep
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    specs, projects, state = tmp / "specs", tmp / "projects", tmp / "state"
    write_specs(specs, projects, agents, jobs)
    state.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, TOKEN_ENV: TOKEN, "RECONCILER_STATE_DIR": str(state)}
    log_file = tmp / "daemon.log"
    command = [str(RECONCILER), "serve", "--specs", str(specs), "--port", str(port),
               "--viewer-token-env", TOKEN_ENV]
    with log_file.open("wb") as log:
        daemon = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
            startup = wait_until_reconciled(client, daemon, agents)
            start_at = load_start(client, args.duration)
            before = agent_runs(client) or {}
            load = run_load(url, agents, args.rate, args.duration, args.connections, start_at)
            after = agent_runs(client) or {}
        reruns = sum(1 for name, run in after.items() if run != before.get(name))
    except (RuntimeError, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        sys.stderr.write(f"bench failed: {exc}\ndaemon log: {log_file}\n")
        return 1
    except BaseException:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        sys.stderr.write(f"daemon log: {log_file}\n")
        raise
    code, stop_s = stop_daemon(daemon)
    p99 = load.single.p99_ms
    met = (p99 is not None and p99 < TARGET_P99_MS and load.single.errors == 0
           and args.rate >= TARGET_RATE and load.achieved_rate >= 0.95 * args.rate)
    report = Report(objects=agents + jobs, agent_configs=agents, sync_jobs=jobs, startup_s=startup,
                    load=load, reruns_during_load=reruns,
                    target=f"single-object GET p99 < {TARGET_P99_MS:.0f} ms at {TARGET_RATE:.0f} req/s",
                    target_met=met, daemon_exit=code, daemon_stop_s=stop_s)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print_report(report)
    if code != 0:
        keep = True
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept: {tmp} (daemon log: {log_file})", file=sys.stderr if args.json else sys.stdout)
    return 0 if code == 0 else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=100,
                        help="Objects in the specs: half AgentConfigs, half SyncJobs (default 100).")
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="Offered requests per second.")
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds of load.")
    parser.add_argument("--connections", type=int, default=64,
                        help="Keep-alive connections of the load process (default 64).")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory.")
    # Internal: the load process.
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--agents", type=int, default=50, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.objects < 2 or args.rate <= 0 or args.duration <= 0 or args.connections < 1:
        parser.error("expected --objects >= 2, --rate > 0, --duration > 0 and --connections >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load:
        return load_main(args)
    return bench_main(args)


if __name__ == "__main__":
    sys.exit(main())
