"""Recognising literal secrets in what users write: specs, client files, plans.

A secret belongs in a spec only as a reference (`{env: NAME}`, a Kubernetes `secretRef`); a
literal value is refused where the spec is validated, left out where a client file is
imported, and masked where a file's text is shown (a plan's diff). What counts as a literal
secret: a non-empty value under a secret-looking name (`GITHUB_TOKEN`, `Authorization`,
`x-api-key`) that is not only a variable reference in some client's syntax (`${NAME}`,
`$NAME`, `${env:NAME}`, `%NAME%`); the value after a flag named for one in a command's
arguments; a URL's password or a secret-named query parameter; and, anywhere, the shape of a
common provider's token (`ghp_…`, `sk-ant-…`, `AKIA…`). A bare number is a count, never a
secret (`--max-tokens 8192`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# Names whose literal values would be secrets: they must be secret references.
SECRET_ENV = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$",
    re.IGNORECASE,
)
SECRET_HEADER = re.compile(
    r"^(authorization|proxy-authorization|cookie)$|api[-_]?key|token|secret", re.IGNORECASE
)
# A value that is only a variable reference, in any client's syntax (`$X`, `${X}`, `${env:X}`,
# `%X%`), after an optional `Bearer `: it holds no secret, whatever its name (real client
# files carry such values, which each client passes on or expands as written).
ONLY_A_REFERENCE = re.compile(
    r"(Bearer )?(\$\{(env:)?[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*|%[A-Za-z_][A-Za-z0-9_]*%)")


def holds_no_secret(value: str) -> bool:
    """Whether a literal value under a secret-looking name is harmless: empty, or a reference."""
    return not value or ONLY_A_REFERENCE.fullmatch(value) is not None


# Secrets in a server's arguments and URL: a flag named for a secret (`--api-key X`,
# `--token=X`), an env assignment (`GITHUB_TOKEN=X`, as `docker run -e` takes it), a query
# parameter named for one (`?api_key=X`), a URL's password, and anywhere the shapes of the
# common providers' tokens. A bare number (`--max-token 8192`) is a count, not a secret.
_SECRET_FLAG = re.compile(r"--?([A-Za-z0-9][A-Za-z0-9_.-]*?)(?:=(.*))?", re.DOTALL)
_SECRET_WORD = re.compile(
    r"(^|[-_.])(token|secret|password|passwd|pass|api[-_]?key|access[-_]?key|private[-_]?key|"
    r"client[-_]?secret|credentials?)$", re.IGNORECASE)
SECRET_QUERY = re.compile(
    r"(^|[-_.])(token|secret|password|passwd|key|apikey|api[-_]key|signature|sig|auth)$", re.IGNORECASE)
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)
TOKEN_SHAPE = re.compile(
    r"(gh[opusr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|"
    r"sk-(ant|proj)-[A-Za-z0-9_-]{16,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35})")


def is_secret_value(value: str) -> bool:
    return not holds_no_secret(value) and not value.isdigit()


def secret_args(args: list[str]) -> list[int]:
    """The indexes of `args` that hold a literal secret value."""
    found: list[int] = []
    for i, arg in enumerate(args):
        flag = _SECRET_FLAG.fullmatch(arg)
        assignment = _ASSIGNMENT.fullmatch(arg)
        if TOKEN_SHAPE.search(arg) or (assignment and SECRET_ENV.search(assignment[1])
                                        and is_secret_value(assignment[2])):
            found.append(i)
        elif flag and _SECRET_WORD.search(flag[1]):
            if flag[2] is not None:
                found += [i] if is_secret_value(flag[2]) else []
            elif i + 1 < len(args) and not args[i + 1].startswith("-") and is_secret_value(args[i + 1]):
                found.append(i + 1)
    return sorted(set(found))


SECRET_NAME = re.compile(f"{SECRET_ENV.pattern}|{SECRET_HEADER.pattern}", re.IGNORECASE)
"""A name whose literal value would be a secret, in an env map or a header map."""


def secret_paths(value: Any, name: str = "") -> list[tuple[str, ...]]:
    """Where a native value (a target override, a client file's entry) holds a literal
    secret: a text under a secret-looking name, a provider token's shape, a URL with
    credentials, secret arguments; each as the path of keys (and list indexes) below `value`."""
    if isinstance(value, dict):
        return [(str(key), *path) for key, inner in value.items() for path in secret_paths(inner, str(key))]
    if isinstance(value, list):
        if all(isinstance(item, str) for item in value):
            return [(str(i),) for i in secret_args(value)]
        return [(str(i), *path) for i, inner in enumerate(value) for path in secret_paths(inner, name)]
    if not isinstance(value, str):
        return []
    named = SECRET_NAME.search(name) is not None and is_secret_value(value)
    url = value.startswith(("http://", "https://")) and secret_in_url(value)
    return [()] if named or url or TOKEN_SHAPE.search(value) else []


def secret_in_url(url: str) -> bool:
    """Whether a URL holds a literal secret: a password, a secret-named query parameter's
    value, or a provider token's shape anywhere."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if (parts.password and is_secret_value(parts.password)) or TOKEN_SHAPE.search(url):
        return True
    return any(SECRET_QUERY.search(name) and is_secret_value(value) for name, value in query)


MASK = "***"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
# `KEY: value`, `"KEY": "value"`, `KEY = "value"`: a key (quoted or bare), then a value up to
# the next `,`, `}`, `]` or `#` (the end of a flow item or a comment) or the line's end.
_PAIR = re.compile(rf'(?P<key>{_QUOTED}|[A-Za-z0-9_.-]+)(?P<sep>\s*[:=]\s*)'
                   rf'(?P<value>{_QUOTED}|[^\s,#{{}}\[\]"\'][^,#}}\]\n]*)')
_URL_PASSWORD = re.compile(r"(?P<head>://[^/\s:@\"']*:)(?P<password>[^/\s@\"']+)(?=@)")
_QUERY_PARAMETER = re.compile(r"(?P<head>[?&](?P<name>[^=&\s\"'#]+)=)(?P<value>[^&\s\"'#]+)")


def _unquoted(text: str) -> str:
    return text[1:-1] if text[:1] in "\"'" and len(text) > 1 and text[-1] == text[0] else text.rstrip()


_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")  # `bearer_token_env_var = "DOCS_TOKEN"` names a variable


def _mask_pair(match: re.Match[str]) -> str:
    raw, value = match["value"], _unquoted(match["value"])
    secret = SECRET_NAME.search(_unquoted(match["key"])) and is_secret_value(value)
    if not secret or _ENV_NAME.fullmatch(value):
        return match[0]
    quote = raw[0] if raw[:1] in "\"'" else ""
    trailing = "" if quote else raw[len(raw.rstrip()):]
    return f"{match['key']}{match['sep']}{quote}{MASK}{quote}{trailing}"


def _mask_query(match: re.Match[str]) -> str:
    if SECRET_QUERY.search(match["name"]) and is_secret_value(match["value"]):
        return match["head"] + MASK
    return match[0]


def mask_secrets(line: str) -> str:
    """`line` of a client file (JSON, JSONC, TOML, YAML, Markdown) with every literal secret
    masked: the value of a secret-looking key, a URL's password, a secret-named query
    parameter and a provider token's shape."""
    line = _PAIR.sub(_mask_pair, line)
    line = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, line)
    line = _QUERY_PARAMETER.sub(_mask_query, line)
    return TOKEN_SHAPE.sub(MASK, line)


def masked(value: Any, name: str = "") -> Any:
    """`value` (a client file's value: a server entry, an env map, a text) with every literal
    secret in it masked, for what a plan, a run's record or a proposal shows of it."""
    if isinstance(value, dict):
        return {key: masked(inner, str(key)) for key, inner in value.items()}
    if isinstance(value, list):
        hidden = set(secret_args(value)) if all(isinstance(item, str) for item in value) else set()
        return [MASK if i in hidden else masked(item, name) for i, item in enumerate(value)]
    if not isinstance(value, str):
        return value
    if SECRET_NAME.search(name) and is_secret_value(value) and not _ENV_NAME.fullmatch(value):
        return MASK
    return "\n".join(mask_secrets(line) for line in value.split("\n"))
