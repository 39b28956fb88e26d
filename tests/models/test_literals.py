"""Masking literal secrets in a client file's lines (what a plan's diff shows): pure."""

from __future__ import annotations

import pytest

from reconciler.models.literals import mask_secrets


@pytest.mark.parametrize(("line", "shown"), [
    ('      "env": {"OPENAI_API_KEY": "sk-x1y2z3"}', '      "env": {"OPENAI_API_KEY": "***"}'),
    ('"headers": {"Authorization": "Bearer abc123", "X-Team": "core"},',
     '"headers": {"Authorization": "***", "X-Team": "core"},'),
    ('env = { STRIPE_SECRET_KEY = "s3cr3t", LOG = "debug" }',
     'env = { STRIPE_SECRET_KEY = "***", LOG = "debug" }'),
    ("  password: hunter2  # mine", "  password: ***  # mine"),
    ("  - {command: npx, token: 'abc'}", "  - {command: npx, token: '***'}"),
    ('"url": "https://u:pa55@h.example/mcp?api_key=k123&page=2"',
     '"url": "https://u:***@h.example/mcp?api_key=***&page=2"'),
    ('args = ["--x", "ghp_abcdefghijklmnopqrstuvwxyz0123"]', 'args = ["--x", "***"]'),
])
def test_a_literal_secret_is_masked_and_the_line_kept(line: str, shown: str) -> None:
    assert mask_secrets(line) == shown


@pytest.mark.parametrize("line", [
    '"command": "npx", "args": ["-y", "server-github"]',
    'bearer_token_env_var = "DOCS_MCP_TOKEN"',
    'env_http_headers = { "X-Api-Key" = "DOCS_API_KEY" }',
    '"Authorization": "Bearer ${GITHUB_TOKEN}"',
    '"GITHUB_TOKEN": "$GITHUB_TOKEN"',
    "max_tokens: 8192",
    '"model": "cl100k", "api_key": ""',
    "Use the secret handshake: never commit keys.",
])
def test_what_holds_no_secret_is_shown_as_it_is(line: str) -> None:
    assert mask_secrets(line) == line
