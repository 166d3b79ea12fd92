"""Password literals taken out of text before it leaves the server (tool answers, the audit log, the server's log).

Passwords reach SQL text in a few forms, and SQL text reaches the server from others too (``pg_stat_statements``,
``pg_stat_activity``: an administrator's ``ALTER ROLE … PASSWORD '…'``):

- after the ``PASSWORD`` keyword: ``CREATE/ALTER ROLE|USER … [ENCRYPTED] PASSWORD '…'``, and the ``password`` option
  of ``CREATE SERVER``/``CREATE|ALTER USER MAPPING … OPTIONS (password '…')`` (``ADD``/``SET`` too);
- inside connection strings: ``dblink('host=… password=…')``, ``dblink_connect``, ``CREATE SUBSCRIPTION …
  CONNECTION '…'``, in ``key=value`` form (``password``, ``sslpassword``) or as a URI (``postgresql://user:…@host``).

``redact`` is for SQL text: it reads the text with PostgreSQL's own lexer (pglast's ``scan``), so a literal is found
whole whatever its quoting (``'it''s'``, ``E'…'``, ``$$…$$``) and only literals and comments are rewritten; a literal
following ``PASSWORD`` becomes ``'[redacted]'``. SQL the lexer rejects (cut short, as both statistics views cut long
statements) is redacted by patterns instead, erring on the side of removing more. Normalised texts (constants
replaced by ``$n``) hold nothing to redact. ``redact_text`` is for anything else (error messages, log lines, rows,
fenced database text): the patterns only. ``redact_value`` applies it to every string in a JSON-like value.
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["REDACTED", "redact", "redact_text", "redact_value"]

REDACTED = "[redacted]"

_MAY_HOLD = re.compile(r"password|://[^\s/?#]*@", re.IGNORECASE)
"""Text without either cannot hold a password in any form handled here (the fast path)."""

_STRINGS = {"SCONST", "USCONST", "BCONST", "XCONST"}
_COMMENTS = {"SQL_COMMENT", "C_COMMENT"}

_PATTERNS = (
    # PASSWORD 'x' / password = 'x' (possibly cut short: no closing quote), and the dollar-quoted form.
    (re.compile(r"(\bpassword\b\s*=?\s*)(?:[eu]&?)?'(?:[^']|'')*(?:'|$)", re.IGNORECASE), rf"\1'{REDACTED}'"),
    (re.compile(r"(\bpassword\b\s*=?\s*)\$(\w*)\$.*?(?:\$\2\$|$)", re.IGNORECASE | re.DOTALL), rf"\1'{REDACTED}'"),
    # key=value connection strings: password=x, sslpassword=x.
    (re.compile(r"(\b(?:ssl)?password\s*=\s*)[^\s'\"]+", re.IGNORECASE), rf"\1{REDACTED}"),
    # URIs with a password in their user info: scheme://user:secret@host.
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/?#@'\"]*:)[^\s@'\"]*@", re.IGNORECASE), rf"\1{REDACTED}@"),
)


def _may_hold(text: str) -> bool:
    """Whether ``text`` may hold a password at all. Substring tests first: they run at C speed over large texts (a
    page of rows), where the regular expression alone costs about a millisecond."""
    return ("://" in text or "assword" in text.lower()) and _MAY_HOLD.search(text) is not None


def redact(text: str) -> str:
    """``text`` with every password literal replaced by ``[redacted]`` (see the module docstring)."""
    if not _may_hold(text):
        return text
    return _redact(text)


@functools.lru_cache(maxsize=512)
def _redact(text: str) -> str:
    from pglast.parser import ParseError, scan  # here: log lines and fences need only the patterns, not pglast

    try:
        tokens = scan(text)
    except ParseError:
        return redact_text(text)
    out: list[str] = []
    done = 0
    after_password = False
    for token in tokens:
        end = token.end + 1
        if token.name in _STRINGS and after_password:
            out += [text[done : token.start], f"'{REDACTED}'"]
            done = end
        elif token.name in _STRINGS or token.name in _COMMENTS:
            out += [text[done : token.start], redact_text(text[token.start : end])]
            done = end
        # ``PASSWORD 'x'`` and ``password = 'x'``: the literal right after the keyword (or its ``=``).
        after_password = token.name == "PASSWORD" or (after_password and token.name == "ASCII_61")
    out.append(text[done:])
    return "".join(out)


def redact_text(text: str) -> str:
    """``text`` (not necessarily SQL) with password literals, connection-string passwords and URI passwords replaced
    by ``[redacted]``, found by patterns."""
    if not _may_hold(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """``value`` with ``redact_text`` applied to every string in it (lists and dicts are walked; others kept)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact_value(item) if isinstance(item, (str, list, dict)) else item for item in value]
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    return value
