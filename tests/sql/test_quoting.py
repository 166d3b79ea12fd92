"""The one quoting helper: identifiers quoted exactly when PostgreSQL needs it, checked against PostgreSQL itself."""

from __future__ import annotations

import pytest
from pglast.keywords import UNRESERVED_KEYWORDS

from server.sql.quoting import qualified, quote_ident, quote_literal
from tests.helpers import script, sql

pytestmark = pytest.mark.anyio

IDENTIFIERS = [
    pytest.param("users", "users", id="plain"),
    pytest.param("_x9", "_x9", id="underscore-and-digit"),
    pytest.param("abort", "abort", id="unreserved-keyword-stays-bare"),
    pytest.param("name", "name", id="unreserved-type-name"),
    pytest.param("Users", '"Users"', id="upper-case"),
    pytest.param("order", '"order"', id="reserved-keyword"),
    pytest.param("select", '"select"', id="reserved-keyword-select"),
    pytest.param("user", '"user"', id="reserved-user"),
    pytest.param("current_user", '"current_user"', id="reserved-current-user"),
    pytest.param("between", '"between"', id="column-name-keyword"),
    pytest.param("int", '"int"', id="column-name-keyword-int"),
    pytest.param("authorization", '"authorization"', id="type-func-name-keyword"),
    pytest.param("9lives", '"9lives"', id="leading-digit"),
    pytest.param("a b", '"a b"', id="space"),
    pytest.param("a-b", '"a-b"', id="dash"),
    pytest.param("a$b", '"a$b"', id="dollar"),
    pytest.param('x"y', '"x""y"', id="double-quote-doubled"),
    pytest.param('"', '""""', id="only-a-double-quote"),
    pytest.param("a.b", '"a.b"', id="dot-is-part-of-the-name"),
    pytest.param("x; DROP TABLE t; --", '"x; DROP TABLE t; --"', id="injection-stays-one-name"),
    pytest.param("café", '"café"', id="non-ascii"),
    pytest.param("", '""', id="empty-fails-in-postgresql"),
]


@pytest.mark.parametrize(("name", "quoted"), IDENTIFIERS)
def test_quote_ident(name: str, quoted: str) -> None:
    assert quote_ident(name) == quoted


@pytest.mark.parametrize(
    ("schema", "name", "expected"),
    [
        pytest.param("auslex", "users", "auslex.users", id="plain"),
        pytest.param(None, "users", "users", id="no-schema"),
        pytest.param("", "users", "users", id="empty-schema"),
        pytest.param("auslex", "Order", 'auslex."Order"', id="quoted-name"),
        pytest.param("My Schema", "order", '"My Schema"."order"', id="both-quoted"),
        pytest.param("public", 'a"."b', 'public."a"".""b"', id="dot-and-quotes-cannot-split-the-name"),
    ],
)
def test_qualified(schema: str | None, name: str, expected: str) -> None:
    assert qualified(schema, name) == expected


@pytest.mark.parametrize(
    ("text", "literal"),
    [("plain", "'plain'"), ("it's", "'it''s'"), ("''", "''''''"), ("", "''"), ("a\\b", "'a\\b'")],
)
def test_quote_literal(text: str, literal: str) -> None:
    assert quote_literal(text) == literal


async def test_never_bare_where_postgresql_quotes(fresh_db: str) -> None:
    """Against the server's own quote_ident, over every keyword it knows and the table above: where PostgreSQL quotes,
    so do we, identically; we quote more only for words that are keywords in pglast's newer parser."""
    rows = await sql(fresh_db, "SELECT word FROM pg_catalog.pg_get_keywords()")
    words = [row["word"] for row in rows] + [param.values[0] for param in IDENTIFIERS]
    theirs = await sql(fresh_db, "SELECT w, pg_catalog.quote_ident(w) AS q FROM unnest($1::text[]) AS w", words)
    assert len(theirs) > 400
    for row in theirs:
        word, expected = row["w"], row["q"]
        ours = quote_ident(word)
        if ours != expected:
            assert expected == word and word not in UNRESERVED_KEYWORDS, f"{word!r}: ours {ours}, theirs {expected}"


async def test_quoted_names_round_trip_through_postgresql(fresh_db: str) -> None:
    names = ["Order", "order", "between", 'x"y', "a.b", "x; DROP TABLE t; --", "café", "users"]
    await script(
        fresh_db, "; ".join(f"CREATE SCHEMA {quote_ident(n)}; CREATE TABLE {qualified(n, n)} ()" for n in names)
    )
    rows = await sql(
        fresh_db,
        "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c"
        " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1::text[])",
        names,
    )
    assert sorted((row["nspname"], row["relname"]) for row in rows) == sorted((n, n) for n in names)
