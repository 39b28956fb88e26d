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
