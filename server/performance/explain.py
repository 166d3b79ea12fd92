"""Turning a caller's statement into the EXPLAIN statements the server runs.

``explainable`` parses the statement (pglast), checks that EXPLAIN accepts it, and counts its ``$n`` parameters.
``Explainable.explain`` wraps it as ``EXPLAIN (<options>) <statement>``; the result is planned by the SQL policy like
any other statement before it runs, so the wrapper never decides what is allowed.

A statement with ``$n`` parameters and no values is explained with PostgreSQL's generic plan (the plan a prepared
statement gets when its values are unknown). ``EXPLAIN (GENERIC_PLAN)`` (PostgreSQL 16+) cannot be used here: through
the extended protocol the ``$n`` become protocol parameters whose bound values (NULLs) are folded into the plan as
constants (seen on PostgreSQL 18: ``One-Time Filter: false``). ``GenericPlan`` does what works on every version
instead, inside one server transaction: ``SET LOCAL plan_cache_mode = force_generic_plan``, ``PREPARE`` the statement,
``EXPLAIN … EXECUTE`` it with NULLs, ``DEALLOCATE``.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pglast import ast
from pglast.visitors import Visitor

from ..errors import InvalidInput
from ..sql.analysis import analyze
from ..sql.database import Caps, Outcome, Statement

__all__ = [
    "EXPLAIN_OPTIONS",
    "PLAN_CAPS",
    "Explainable",
    "GenericPlan",
    "Probe",
    "document",
    "explainable",
    "probe",
    "run_probe",
]

PLAN_CAPS = Caps(max_rows=1, max_bytes=16_000_000)
"""How much of a plan is read to summarise it (what reaches the model is capped separately, by NEON_MCP_MAX_BYTES)."""

Run = Callable[[Statement], Awaitable[Outcome]]

EXPLAIN_OPTIONS = ("FORMAT JSON", "VERBOSE", "BUFFERS", "SETTINGS")
"""What explain_query asks for; ANALYZE is added on request."""

_EXPLAINABLE = {
    "SelectStmt": "SELECT",
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
    "CreateTableAsStmt": "CREATE TABLE AS",
}


@dataclass(frozen=True, slots=True)
class Explainable:
    """One statement EXPLAIN accepts: its text (without the ending ``;``), kind, and highest ``$n``."""

    sql: str
    tag: str
    parameters: int

    @property
    def verb(self) -> str:
        return _EXPLAINABLE[self.tag]

    def explain(self, options: Sequence[str], params: Sequence[Any] = ()) -> Statement:
        return Statement(f"EXPLAIN ({', '.join(options)}) {self.sql}", tuple(params))


@dataclass(frozen=True, slots=True)
class GenericPlan:
    """The statements that explain ``target`` with its generic plan, on one backend within one transaction."""

    target: Explainable
    name: str = field(default_factory=lambda: f"neon_mcp_generic_{secrets.token_hex(4)}")

    def setup(self) -> list[Statement]:
        return [
            Statement("SET LOCAL plan_cache_mode = force_generic_plan"),
            Statement(f"PREPARE {self.name} AS {self.target.sql}"),
        ]

    def explain(self, options: Sequence[str]) -> Statement:
        nulls = ", ".join(["NULL"] * self.target.parameters)
        return Statement(f"EXPLAIN ({', '.join(options)}) EXECUTE {self.name}({nulls})")

    def teardown(self) -> list[Statement]:
        return [Statement(f"DEALLOCATE {self.name}")]


@dataclass(frozen=True, slots=True)
class Probe:
    """The statements that give one EXPLAIN document, run in order on one backend: setup, the EXPLAIN, teardown."""

    explain: Statement
    setup: tuple[Statement, ...] = ()
    teardown: tuple[Statement, ...] = ()

    @property
    def simple(self) -> bool:
        """One statement, which any guarded transaction can run."""
        return not self.setup and not self.teardown


def probe(target: Explainable, options: Sequence[str], params: Sequence[Any] | None) -> Probe:
    """How to explain ``target``: with the caller's values, or with its generic plan when it has ``$n`` and none
    (``InvalidInput`` for a CREATE TABLE AS, which cannot be prepared)."""
    if target.parameters and params is None:
        if target.tag == "CreateTableAsStmt":  # PREPARE does not take it
            raise InvalidInput("CREATE TABLE AS with $n placeholders has no generic plan: pass params")
        generic = GenericPlan(target)
        return Probe(generic.explain(options), tuple(generic.setup()), tuple(generic.teardown()))
    return Probe(target.explain(options, params or ()))


def document(outcome: Outcome) -> Any:
    """The EXPLAIN (FORMAT JSON) document in an outcome; ``InvalidInput`` if it was too large to read whole."""
    if outcome.truncated or not outcome.rows:
        raise InvalidInput(
            f"the plan is over {PLAN_CAPS.max_bytes // 1_000_000} MB of JSON; explain a smaller part of the query"
        )
    return outcome.rows[0][0]


async def run_probe(run: Run, how: Probe) -> Any:
    """Run a probe's statements through ``run`` (one transaction) and return its EXPLAIN document."""
    for statement in how.setup:
        await run(statement)
    found = document(await run(how.explain))
    for statement in how.teardown:
        await run(statement)
    return found


class _Params(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.highest = 0

    def visit_ParamRef(self, ancestors: Any, node: ast.ParamRef) -> None:
        self.highest = max(self.highest, node.number or 0)


def explainable(sql: str, *, max_bytes: int, what: str = "sql") -> Explainable:
    """The one statement in ``sql``, if EXPLAIN accepts it.

    Raises ``InvalidInput`` for empty or oversized text, several statements, or a statement EXPLAIN does not take
    (``EXPLAIN`` itself included: pass the statement, the tool adds EXPLAIN), and ``SQLParseError`` when it does not
    parse.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidInput(f"{what} is empty: pass one SELECT, INSERT, UPDATE, DELETE or MERGE statement")
    size = len(sql.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise InvalidInput(f"{what} is {size:,} bytes; the limit is {max_bytes:,} bytes (NEON_MCP_MAX_SQL_BYTES)")
    return _explainable(sql, what) if len(sql) <= _CACHED_CHARS else _explainable.__wrapped__(sql, what)


_CACHED_CHARS = 4096
"""As ``sql_analysis``: longer texts are neither cached nor kept."""


@functools.lru_cache(maxsize=256)
def _explainable(sql: str, what: str) -> Explainable:
    facts = analyze(sql)
    if len(facts) != 1:
        raise InvalidInput(f"{what} holds {len(facts)} statements; pass exactly one")
    fact = facts[0]
    if fact.tag == "ExplainStmt":
        raise InvalidInput(f"{what} is already an EXPLAIN: pass the statement itself; the tool adds EXPLAIN")
    if fact.tag not in _EXPLAINABLE:
        kind = fact.tag.removesuffix("Stmt")
        raise InvalidInput(
            f"EXPLAIN cannot take {what} ({kind}): it explains SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES and "
            "CREATE TABLE AS"
        )
    counter = _Params()
    counter(fact.node)
    return Explainable(fact.sql, fact.tag, counter.highest)
