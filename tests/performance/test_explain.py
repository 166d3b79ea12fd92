"""What explain_query accepts, and how it wraps a statement (pure, no database)."""

from __future__ import annotations

import pytest

from server.errors import InvalidInput, SQLParseError
from server.performance.explain import GenericPlan, explainable, probe
from server.performance.hypothetical import parse_definition
from server.sql.analysis import analyze


@pytest.mark.parametrize(
    ("sql", "verb", "parameters"),
    [
        ("SELECT * FROM t WHERE a = $1 AND b = $3", "SELECT", 3),
        ("VALUES (1)", "SELECT", 0),
        ("  DELETE FROM t WHERE id = $2 ;  ", "DELETE", 2),
        ("INSERT INTO t SELECT * FROM u", "INSERT", 0),
        ("CREATE TABLE c AS SELECT 1", "CREATE TABLE AS", 0),
        ("WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x", "SELECT", 0),
    ],
)
def test_explainable_statements(sql: str, verb: str, parameters: int) -> None:
    target = explainable(sql, max_bytes=1_000)
    assert (target.verb, target.parameters) == (verb, parameters)
    assert not target.sql.endswith(";")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("", "empty"),
        ("EXPLAIN SELECT 1", "already an EXPLAIN"),
        ("SELECT 1; SELECT 2", "holds 2 statements"),
        ("VACUUM t", r"EXPLAIN cannot take sql \(Vacuum\)"),
        ("DROP TABLE t", r"EXPLAIN cannot take sql \(Drop\)"),
        ("SELECT " + "1, " * 400 + "1", "the limit is 1,000 bytes"),
    ],
)
def test_what_explain_does_not_take(sql: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        explainable(sql, max_bytes=1_000)


def test_a_parse_error_is_reported_as_such() -> None:
    with pytest.raises(SQLParseError):
        explainable("SELEC 1", max_bytes=1_000)


def test_the_wrapped_statement_is_one_explain_of_the_same_statement() -> None:
    target = explainable("SELECT * FROM t WHERE a = $1 -- trailing comment", max_bytes=1_000)
    wrapped = target.explain(["FORMAT JSON", "ANALYZE"], [5]).sql
    (facts,) = analyze(wrapped)
    assert facts.tag == "ExplainStmt" and wrapped.startswith("EXPLAIN (FORMAT JSON, ANALYZE) SELECT")


def test_placeholders_without_values_take_the_generic_plan() -> None:
    target = explainable("SELECT * FROM t WHERE a = $1 AND b = $2", max_bytes=1_000)
    generic = probe(target, ["FORMAT JSON"], None)
    assert not generic.simple
    assert generic.setup[0].sql == "SET LOCAL plan_cache_mode = force_generic_plan"
    name = generic.teardown[0].sql.removeprefix("DEALLOCATE ")
    assert generic.setup[1].sql == f"PREPARE {name} AS {target.sql}"
    assert generic.explain.sql == f"EXPLAIN (FORMAT JSON) EXECUTE {name}(NULL, NULL)"
    assert probe(target, ["FORMAT JSON"], [1, 2]).simple
    assert GenericPlan(target).name != GenericPlan(target).name  # one name per use
    with pytest.raises(InvalidInput, match="pass params"):
        probe(explainable("CREATE TABLE c AS SELECT $1::int", max_bytes=1_000), ["FORMAT JSON"], None)


@pytest.mark.parametrize(
    ("definition", "printed"),
    [
        ("create index on shop.orders (customer_id)", "CREATE INDEX ON shop.orders (customer_id)"),
        ("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a, b DESC)", "CREATE INDEX i ON t (a, b DESC)"),
        ("CREATE INDEX ON t USING hash (a)", "CREATE INDEX ON t USING hash (a)"),
        ("CREATE INDEX ON t (lower(a)) WHERE b > 1", "CREATE INDEX ON t ((lower(a))) WHERE b > 1"),
    ],
)
def test_hypothetical_definitions_are_reprinted(definition: str, printed: str) -> None:
    assert parse_definition(definition) == printed


@pytest.mark.parametrize(
    "definition",
    [
        "",
        "DROP TABLE t",
        "CREATE INDEX ON t (a); DROP TABLE t",
        "CREATE UNIQUE INDEX ON t (a)",
        "CREATE INDEX ON t (",
        "SELECT hypopg_reset()",
    ],
)
def test_hypothetical_definitions_must_be_one_create_index(definition: str) -> None:
    with pytest.raises(InvalidInput, match="hypothetical index"):
        parse_definition(definition)
