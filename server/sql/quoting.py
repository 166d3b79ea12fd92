"""Identifiers and literals in SQL text this server writes: the one place they are quoted.

``quote_ident`` follows PostgreSQL's own ``quote_ident`` (``ruleutils.c``): a name stays bare only when it is made of
lower-case ASCII letters, digits and underscores, does not start with a digit, and is no keyword other than an
unreserved one; anything else is double-quoted with inner double quotes doubled. So ``users`` stays ``users``, while
``Users``, ``order``, ``between``, ``a b`` and ``x"y`` come out as ``"Users"``, ``"order"``, ``"between"``,
``"a b"`` and ``"x""y"``. Quoting only when needed keeps generated statements and advice readable; quoting every
keyword PostgreSQL reserves in any position (not only the fully reserved ones) keeps them valid wherever the name
goes.
"""

from __future__ import annotations

import functools
import re

__all__ = ["qualified", "quote_ident", "quote_literal"]

_BARE = re.compile(r"[a-z_][a-z0-9_]*")


@functools.cache
def _keywords() -> frozenset[str]:
    """PostgreSQL's keywords that a bare name may not be (every category but unreserved), as pglast's parser has them.

    Imported on first use: pglast loads PostgreSQL's parser, which code that only quotes names (local Neon, roles)
    should not pay for at start.
    """
    from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

    return frozenset(RESERVED_KEYWORDS | COL_NAME_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS)


def quote_ident(name: str) -> str:
    """``name`` as an SQL identifier, double-quoted only when PostgreSQL needs it (as its ``quote_ident`` does)."""
    if _BARE.fullmatch(name) and name not in _keywords():
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str | None, name: str) -> str:
    """``schema.name`` with each part quoted as needed; just ``name`` when ``schema`` is None or empty."""
    return f"{quote_ident(schema)}.{quote_ident(name)}" if schema else quote_ident(name)


def quote_literal(text: str) -> str:
    """``text`` as a standard SQL string literal (inner single quotes doubled; needs standard_conforming_strings,
    PostgreSQL's default since 9.1, for backslashes to stay themselves)."""
    return "'" + text.replace("'", "''") + "'"
