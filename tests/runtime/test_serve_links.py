"""`reconciler serve` watches a symlinked client file where its target lives.

Dotfiles managers keep `~/.claude.json` in a repository and link it into $HOME; the user
edits the repository's copy (or through the link, which writes the same file). The daemon
watches folders, and the edit happens in the target's folder: it must be watched too, or a
hand edit waits for the next schedule.
"""

from __future__ import annotations

import json
from pathlib import Path

from runtime.daemon_process import serve, wait_for

SPEC = """\
apiVersion: reconciler.dev/v1alpha1
kind: AgentConfig
metadata: {name: team}
spec:
  mcpServers:
    github: {command: npx, args: ["-y", "server-github@1"]}
  targets: [{client: claude-code, scope: user}]
"""


def test_an_edit_of_a_linked_files_target_is_reverted_by_the_watcher(tmp_path: Path) -> None:
    home, dotfiles = tmp_path / "home", tmp_path / "dotfiles"
    home.mkdir()
    dotfiles.mkdir()
    real = dotfiles / "claude.json"
    real.write_text(json.dumps({"theme": "dark", "mcpServers": {}}, indent=2) + "\n")
    (home / ".claude.json").symlink_to(real)
    with serve(tmp_path, env={"HOME": str(home)}, spec=SPEC):
        wait_for(lambda: "server-github@1" in real.read_text())  # the start-up run wrote through the link
        assert (home / ".claude.json").is_symlink()
        real.write_text(real.read_text().replace("server-github@1", "server-github@0"))  # in the repo
        wait_for(lambda: "server-github@1" in real.read_text())
    assert (home / ".claude.json").is_symlink() and json.loads(real.read_text())["theme"] == "dark"


TWO = SPEC.replace("targets: [{client: claude-code, scope: user}]",
                   "targets: [{client: claude-code, scope: user}, {client: qwen-code, scope: user}]")


def test_a_file_restored_after_a_failed_run_is_an_edit_and_the_drift_is_reverted(tmp_path: Path) -> None:
    """A broken file fails the run (nothing written, a hand edit elsewhere stays); putting the
    file back as the reconciler last wrote it is news too: the next run reverts the edit."""
    import httpx

    from runtime.daemon_process import ADMIN

    home = tmp_path / "home"
    home.mkdir()
    claude, qwen = home / ".claude.json", home / ".qwen" / "settings.json"
    with serve(tmp_path, env={"HOME": str(home)}, spec=TWO) as daemon:
        wait_for(lambda: qwen.exists() and "server-github@1" in claude.read_text())
        backup = claude.read_text()

        def failed_runs() -> int:
            runs = httpx.get(f"{daemon.base}/api/v1/objects/AgentConfig/team/history",
                             headers={"Authorization": f"Bearer {ADMIN}"},
                             timeout=10).json()
            return sum(1 for r in runs if r["outcome"] == "failed")

        qwen.write_text(qwen.read_text().replace("server-github@1", "server-github@0"))
        claude.write_text(backup.replace("{", "{,", 1))  # not JSON: the run fails, writes nothing
        wait_for(lambda: failed_runs() >= 1)
        assert "server-github@0" in qwen.read_text()
        claude.write_text(backup)  # restored from the backup: what the reconciler last wrote
        wait_for(lambda: "server-github@1" in qwen.read_text())
