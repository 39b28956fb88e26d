"""`reconciler review`: the proposals of AgentConfig runs, and the decisions on them.

`reconciler review` lists pending proposals (a client's edit the spec could take);
`reconciler review accept ID...` writes each one's spec patch into the spec file (then
reconciles, so the change reaches every other client), `reconciler review reject ID...`
re-imposes the spec on that client (then reconciles). With `--server URL` the running
daemon decides through its API: the way in git mode, where accept makes a commit on a new
branch (or pushes to `--write-back`) and prints where it is. Thin: the work is in
`drivers/agents/deciding.py` and `store/proposals.py`; the daemon's API does the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

review_app = typer.Typer(help="Proposals: clients' edits the spec could take (AgentConfig). Without a "
                         "command: list the pending ones.", pretty_exceptions_show_locals=False,
                         invoke_without_command=True)

SpecsOpt = Annotated[Path, typer.Option("--specs", help="The spec file or folder the proposals' objects "
                                        "are declared in (accept patches it; both reconcile it).")]


@review_app.callback()
def review(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="pending, accepted, rejected, superseded or all.")] = "pending",
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
) -> None:
    """List proposals (pending by default)."""
    if ctx.invoked_subcommand is not None:
        return
    from reconciler.cli.common import abort, open_cli_runtime
    from reconciler.store.proposals import STATUSES, ProposalBook

    if status != "all" and status not in STATUSES:
        raise abort(f"--status: expected one of {', '.join(STATUSES)} or all, got {status!r}", code=2)
    runtime = open_cli_runtime()
    try:
        found = ProposalBook(runtime.store.engine).list(status=None if status == "all" else status)
    finally:
        runtime.close()
    if output == "json":
        typer.echo(json.dumps([p.as_dict() for p in found], ensure_ascii=False, indent=2))
        return
    if not found:
        typer.echo(f"no {'' if status == 'all' else status + ' '}proposals")
        return
    for p in found:
        typer.echo(f"{p.id}  {p.status:<10} {p.target.short}  {p.client or '-'}  {p.key}")
        typer.echo(f"    {p.canonical}: spec {json.dumps(p.spec_value, ensure_ascii=False)}")
        typer.echo(f"    {' ' * len(p.canonical)}  file {json.dumps(p.file_value, ensure_ascii=False)}")
        if p.reason:
            typer.echo(f"    {p.outcome or p.status}: {p.reason}")


ServerOpt = Annotated[str | None, typer.Option(help="Decide on a running daemon (its URL) instead: the "
                                              "only way in git mode, where accept commits the patch.")]
TokenEnvOpt = Annotated[str, typer.Option(help="Env var holding an admin API token (with --server).")]


def _decide_on_server(ids: list[str], server: str, *, token_env: str, accept: bool) -> None:
    """`review accept|reject --server`: the daemon's API decides (and, in git mode, commits)."""
    from reconciler.cli.remote import Server

    daemon = Server(server, token_env=token_env)
    for pid in ids:
        decision = "accept" if accept else "reject"
        answer = daemon.post(f"/api/v1/proposals/{pid}/{decision}", read_timeout=300.0)
        patched = f" (spec patched: {answer['specFile']})" if answer.get("specFile") else ""
        typer.echo(f"{pid}: {answer['proposal']['status']}{patched}")
        if answer.get("note"):  # git mode: the commit and branch to push
            typer.echo(f"    {answer['note']}")
        elif answer.get("runId"):
            typer.echo(f"    run {answer['runId']} started")


def _decide(ids: list[str], specs: Path, *, accept: bool) -> None:
    from reconciler.cli.common import (
        ModeOption,
        abort,
        load_spec_set,
        open_cli_runtime,
        print_failures,
        reconcile_specs,
        say_error,
        show_applied,
    )
    from reconciler.drivers.agents.deciding import decide
    from reconciler.errors import ReconcilerError
    from reconciler.store.proposals import ProposalBook

    try:
        loaded = load_spec_set(specs)
    except ReconcilerError as exc:
        raise abort(str(exc)) from None
    runtime = open_cli_runtime()
    targets: set[str] = set()
    refused = False
    try:
        book = ProposalBook(runtime.store.engine)
        for pid in ids:
            try:
                done = decide(book, pid, accept=accept, actor="cli", audit=runtime.store, source="cli")
            except ReconcilerError as exc:
                # The others are still decided, and what was decided is reconciled below: an
                # accepted spec change must not wait for the next run to reach the clients.
                say_error(str(exc))
                refused = True
                continue
            patched = f" (spec patched: {done.spec_file})" if done.spec_file else ""
            typer.echo(f"{pid}: {done.status}{patched}")
            if done.note():  # git mode: the commit and branch to push
                typer.echo(f"    {done.note()}")
            targets.add(done.proposal.target.short)
    finally:
        runtime.close()
    if not targets:
        raise typer.Exit(1)
    if accept:
        loaded = load_spec_set(specs)  # the patched spec
    results = reconcile_specs(specs, sorted(targets), ModeOption.full, dry_run=False, specs=loaded)
    show_applied(results)
    if print_failures(results) or refused:
        raise typer.Exit(1)


@review_app.command("accept")
def accept(ids: Annotated[list[str], typer.Argument(help="Proposal ids (see `reconciler review`).")],
           specs: SpecsOpt = Path("specs"), server: ServerOpt = None,
           token_env: TokenEnvOpt = "RECONCILER_TOKEN") -> None:
    """Take each proposal's edit into the spec file, then reconcile (every client gets it).
    With --server on a daemon following git: a commit on a new branch (or --write-back)."""
    if server is not None:
        _decide_on_server(ids, server, token_env=token_env, accept=True)
        return
    _decide(ids, specs, accept=True)


@review_app.command("reject")
def reject(ids: Annotated[list[str], typer.Argument(help="Proposal ids (see `reconciler review`).")],
           specs: SpecsOpt = Path("specs"), server: ServerOpt = None,
           token_env: TokenEnvOpt = "RECONCILER_TOKEN") -> None:
    """Re-impose the spec on the client that was edited, then reconcile."""
    if server is not None:
        _decide_on_server(ids, server, token_env=token_env, accept=False)
        return
    _decide(ids, specs, accept=False)
