"""The README's AgentConfig section stays true: the example and the capability table."""

from __future__ import annotations

from pathlib import Path

from reconciler.drivers.agents.clients import capability_table

REPO = Path(__file__).parents[2]


def test_readme_shows_the_shipped_example_verbatim() -> None:
    example = (REPO / "examples" / "agents" / "agentconfig.yaml").read_text()
    assert f"```yaml\n{example}```" in (REPO / "README.md").read_text()


def test_readme_capability_table_is_generated_from_the_adapters() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- capabilities:begin -->\n", 1)[1].split("<!-- capabilities:end -->", 1)[0]
    assert block == capability_table(), "regenerate: python -c 'from reconciler.drivers.agents." \
        "clients import capability_table; print(capability_table())'"
