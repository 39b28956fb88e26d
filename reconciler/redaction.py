"""Keeping credentials out of every text the reconciler shows: logs, API answers, errors.

Two kinds of text are masked with `***` wherever they appear:

- the userinfo of a URL (`https://user:TOKEN@host/repo` shows as `https://***@host/repo`,
  a store URL `postgresql://app:pw@db/app` as `postgresql://***@db/app`), and the value of
  a `password=...` keyword in a libpq connection string;
- every value known to be secret in this process: the passwords of the configured store
  and Redis URLs, the alert webhook URL, API tokens, the webhook secret, git credentials,
  and every secret reference a run resolved (`SecretResolver.resolve` registers it).

`redact_url(url)` is what any front end calls before it shows a URL it was given;
`redact(text)` masks both kinds in any text (log lines, exception text, error messages);
`remember(value)` registers a secret value. The logging set-up (`reconciler.logs`) applies
`redact` to every log event and to every traceback, and tracebacks never show frame locals.
"""

from __future__ import annotations

import re
import threading
import traceback
from urllib.parse import quote, unquote

MASK = "***"

# Shorter values would mask unrelated text everywhere (a one-letter password); they are
# still masked inside URLs, by position.
MIN_REMEMBERED = 4

# scheme://userinfo@ : the userinfo runs to the last `@` before the path (a password may hold `@`).
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)"
                           r"(?P<userinfo>[^/\s?#@]*(?:@[^/\s?#@]*)*)@")
# password=VALUE in a libpq keyword connection string (quoted or not).
_PASSWORD_KEYWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<value>'(?:[^'\\]|\\.)*'|[^\s'\"]+)",
                               re.IGNORECASE)

_known: set[str] = set()
_ordered: tuple[str, ...] = ()
_lock = threading.Lock()


def remember(value: str | None) -> None:
    """Mask `value` (and its URL-encoded and decoded forms) in every text from now on.

    A value that is a URL has its password masked too, and every piece of it: a password
    that is not percent-encoded (an `@`, `%`, space or `/` in it) makes libpq and others
    quote the part they cannot read, which is a piece of the password, not the whole."""
    if not value:
        return
    forms = {value, quote(value, safe=""), unquote(value), *_password_pieces(value)}
    global _ordered
    with _lock:
        added = {f for f in forms if len(f) >= MIN_REMEMBERED} - _known
        if not added:
            return
        _known.update(added)
        # Longest first, so that a secret containing another is masked whole.
        _ordered = tuple(sorted(_known, key=len, reverse=True))


# The pieces a reader may quote of a password it cannot read: split where URL syntax is.
_URL_SYNTAX = re.compile(r"[@/\s?#%:]+")


def _password_pieces(value: str) -> set[str]:
    """The password of a URL read liberally (from the first `:` of the userinfo to the last
    `@` before the query), and its pieces between URL syntax characters."""
    scheme, separator, rest = value.partition("://")
    if not separator or not scheme or " " in scheme:
        return set()
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    userinfo, at, _ = rest.rpartition("@")
    _, colon, password = userinfo.partition(":")
    if not at or not colon or not password:
        return set()
    return {password, *_URL_SYNTAX.split(password)}


def remember_url(url: str | None) -> None:
    """Register the credentials a URL carries (its password, or a user-only token)."""
    if not url:
        return
    match = _URL_USERINFO.search(url)
    if match is None:
        return
    user, _, password = match.group("userinfo").partition(":")
    remember(password or user)


def forget_all() -> None:
    """Tests only: start again with no remembered values."""
    global _ordered
    with _lock:
        _known.clear()
        _ordered = ()


def redact_url(url: str) -> str:
    """`url` with its userinfo (user name and password or token) replaced by `***`."""
    return redact(url)


def redact(text: str) -> str:
    """`text` with URL userinfo, `password=` values and every remembered secret masked."""
    if not text:
        return text
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    if "://" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _PASSWORD_KEYWORD.sub(lambda m: f"{m.group('key')}{MASK}", text)
    return text


def _mask_userinfo(match: re.Match[str]) -> str:
    return f"{match.group('scheme')}{MASK}@"


def redacted_traceback(exc: BaseException) -> str:
    """A plain traceback of `exc` (never frame locals), redacted."""
    return redact("".join(traceback.format_exception(exc)))
