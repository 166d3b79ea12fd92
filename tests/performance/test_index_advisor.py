"""Candidate indexes read from queries (pglast), and which existing index covers a candidate (pure, no database)."""

from __future__ import annotations

from typing import Any

import pytest

from server.performance.index_advisor import (
    Candidate,
    ExistingIndex,
    TableInfo,
    candidates,
    column_uses,
    covering_index,
    index_statement,
)
from server.sql.analysis import analyze

ORDERS = TableInfo("shop", "orders", frozenset({"id", "customer_id", "status", "created", "total"}), 200_000)
CUSTOMERS = TableInfo("shop", "customers", frozenset({"id", "name", "country"}), 50_000)
COUNTRIES = TableInfo("public", "countries", frozenset({"code", "name"}), 250)
TABLES = {
    ("shop", "orders"): ORDERS,
    (None, "orders"): ORDERS,
    ("shop", "customers"): CUSTOMERS,
    (None, "countries"): COUNTRIES,
}


def proposed(*queries: str) -> set[tuple[str, tuple[str, ...], int]]:
    found, _ = candidates(column_uses([analyze(q)[0].node for q in queries]), TABLES)
    return {(c.table, c.columns, c.equality) for c in found}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT * FROM shop.orders WHERE customer_id = 42", {("orders", ("customer_id",), 1)}),
        ("SELECT * FROM shop.orders WHERE 42 = customer_id", {("orders", ("customer_id",), 1)}),
        ("SELECT * FROM shop.orders WHERE customer_id = $1::int", {("orders", ("customer_id",), 1)}),
        ("SELECT * FROM shop.orders WHERE status IN ('open', 'paid')", {("orders", ("status",), 1)}),
        ("SELECT * FROM shop.orders WHERE created BETWEEN $1 AND $2", {("orders", ("created",), 0)}),
        (
            "SELECT * FROM orders WHERE status = 'open' AND created > now() - interval '1 day'",
            {("orders", ("status",), 1), ("orders", ("status", "created"), 1)},
        ),
        (
            "SELECT * FROM shop.orders o WHERE o.customer_id = 1 AND o.status = 'open'",
            {("orders", ("customer_id",), 1), ("orders", ("status",), 1), ("orders", ("customer_id", "status"), 2)},
        ),
        (
            "SELECT * FROM shop.orders WHERE customer_id = 7 ORDER BY created DESC LIMIT 10",
            {("orders", ("customer_id",), 1), ("orders", ("customer_id", "created"), 1)},
        ),
        ("SELECT status, count(*) FROM shop.orders GROUP BY 1", {("orders", ("status",), 1)}),
        (
            "SELECT o.total FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id WHERE c.country = 'NZ'",
            {("customers", ("id",), 1), ("orders", ("customer_id",), 1), ("customers", ("country",), 1)},
        ),
        (  # a correlated subquery: the outer column counts as a value
            "SELECT * FROM shop.customers c WHERE EXISTS (SELECT 1 FROM shop.orders o WHERE o.customer_id = c.id)",
            {("orders", ("customer_id",), 1)},
        ),
        ("SELECT * FROM shop.orders WHERE id IN (SELECT 1)", {("orders", ("id",), 1)}),
        ("UPDATE shop.orders SET total = 0 WHERE status = 'void'", {("orders", ("status",), 1)}),
        ("DELETE FROM shop.orders WHERE created < $1", {("orders", ("created",), 0)}),
        (
            "WITH recent AS (SELECT * FROM shop.orders WHERE created > $1) SELECT * FROM recent WHERE status = 'x'",
            {("orders", ("created",), 0)},
        ),
        ("SELECT * FROM shop.orders WHERE lower(status) = 'open'", set()),  # an expression: left alone
        ("SELECT * FROM shop.orders WHERE status = 'a' OR customer_id = 1", set()),  # OR: left alone
        ("SELECT * FROM shop.orders WHERE total = total + 1", set()),  # not a value on the other side
        ("SELECT * FROM countries WHERE code = 'NZ'", set()),  # a small table
        ("SELECT * FROM nowhere WHERE id = 1", set()),  # not in the catalog
        ("SELECT * FROM shop.orders, generate_series(1, 3) g WHERE status = 'x'", set()),  # whose column?
    ],
)
def test_candidates_from_queries(query: str, expected: set[tuple[str, tuple[str, ...], int]]) -> None:
    assert proposed(query) == expected


def test_the_same_index_asked_twice_is_one_candidate_with_both_reasons() -> None:
    uses = column_uses(
        [
            analyze("SELECT * FROM shop.orders WHERE status = 'open'")[0].node,
            analyze("SELECT status FROM shop.orders ORDER BY status")[0].node,
        ]
    )
    (found,), small = candidates(uses, TABLES)
    assert found.columns == ("status",) and found.equality == 0  # the stricter requirement: in order
    assert found.reasons == ("filter on status", "ORDER BY status") and found.queries == (0, 1)
    assert small == []


def test_small_tables_are_reported() -> None:
    _, small = candidates(column_uses([analyze("SELECT * FROM countries WHERE code = 'NZ'")[0].node]), TABLES)
    assert small == [COUNTRIES]


def index(*columns: str | None, **fields: Any) -> ExistingIndex:
    return ExistingIndex("existing", "shop", "orders", columns, **fields)


@pytest.mark.parametrize(
    ("candidate", "existing", "covered"),
    [
        (("customer_id",), index("customer_id"), True),
        (("customer_id",), index("customer_id", "status"), True),  # a prefix serves it
        (("customer_id",), index("status", "customer_id"), False),
        (("customer_id", "status"), index("status", "customer_id"), True),  # equality columns in any order
        (("customer_id",), index("customer_id", valid=False), False),
        (("customer_id",), index("customer_id", partial=True), False),
        (("customer_id",), index("customer_id", method="hash"), False),
        (("customer_id",), index(None, "customer_id"), False),  # an expression first
    ],
)
def test_covering_index(candidate: tuple[str, ...], existing: ExistingIndex, covered: bool) -> None:
    found = Candidate("shop", "orders", candidate, len(candidate))
    assert (covering_index(found, [existing]) is existing) is covered


def test_order_matters_after_the_equality_columns() -> None:
    ordered = Candidate("shop", "orders", ("customer_id", "created"), 1)
    assert covering_index(ordered, [index("customer_id", "created", "id")]) is not None
    assert covering_index(ordered, [index("created", "customer_id")]) is None
    other_table = ExistingIndex("x", "shop", "customers", ("customer_id", "created"))
    assert covering_index(ordered, [other_table]) is None


@pytest.mark.parametrize(
    ("schema", "table", "columns", "statement"),
    [
        ("shop", "orders", ["customer_id"], "CREATE INDEX CONCURRENTLY ON shop.orders (customer_id)"),
        ("public", "Order", ["select", "a b"], 'CREATE INDEX CONCURRENTLY ON public."Order" ("select", "a b")'),
        ('we"ird', "t", ['x"y'], 'CREATE INDEX CONCURRENTLY ON "we""ird".t ("x""y")'),
    ],
)
def test_statements_quote_every_name(schema: str, table: str, columns: list[str], statement: str) -> None:
    assert index_statement(schema, table, columns, concurrently=True) == statement
    assert analyze(statement)[0].tag == "IndexStmt"
