"""SQL tools: run_sql and run_sql_transaction.

Every statement is parsed and classified by the SQL policy before it runs; reads run in a read-only transaction;
destructive statements are confirmed by the human first (elicitation, or confirm_operation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver import ElicitationResult, Resolve
from mcp_types import CallToolResult
from pydantic import Field

from server.mcp import (
    ConfirmAnswer,
    Ctx,
    Offer,
    Question,
    ToolSpec,
    add_tool,
    neon_services,
    question,
    run_or_store,
    services,
)
from server.state import Confirmed

from ._params import Branch, Database
from ._results import SQLResult, TransactionResult, sql_result, transaction_result

if TYPE_CHECKING:
    from server.sql import Execution, Plan

__all__ = ["register"]


async def _plan(
    ctx: Ctx,
    sql: str | list[str],
    branch: str | None,
    database: str | None,
    params: list[list[Any]] | None,
    as_of: str | None = None,
) -> Plan:
    found = services(ctx)
    place = await found.places.place(branch, database)
    return await found.sql.plan(sql, place=place, params=params, single=isinstance(sql, str), as_of=as_of)


async def _confirm_statement(
    sql: str, database: str | None, params: list[Any] | None, branch: str | None, as_of: str | None, ctx: Ctx
) -> Question:
    return await question(ctx, _plan(ctx, sql, branch, database, _one(params), as_of))


async def _confirm_transaction(
    statements: list[str], database: str | None, params: list[list[Any]] | None, branch: str | None, ctx: Ctx
) -> Question:
    return await question(ctx, _plan(ctx, statements, branch, database, params))


def _one(params: list[Any] | None) -> list[list[Any]] | None:
    return None if params is None else [params]


async def run_sql(
    sql: Annotated[str, Field(description="Exactly one SQL statement. Use $1, $2 … placeholders with params.")],
    ctx: Ctx,
    confirmation: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_confirm_statement)],
    database: Database = None,
    params: Annotated[
        list[Any] | None, Field(description="Values for $1, $2 … in order (JSON values; dates as ISO strings).")
    ] = None,
    max_rows: Annotated[
        int | None, Field(ge=1, description="Return at most this many rows (cannot exceed the server's limit).")
    ] = None,
    branch: Branch = None,
    as_of: Annotated[
        str | None,
        Field(
            description="Time travel (Neon): answer a read as of this ISO 8601 timestamp or LSN (0/1A2B3C), "
            "on a short-lived branch deleted afterwards."
        ),
    ] = None,
) -> Annotated[CallToolResult, SQLResult]:
    """Run one SQL statement and return its rows or its effect.

    Reads run in a read-only transaction. Writes need the server in a write-enabled mode. Destructive statements
    (DROP, TRUNCATE, DELETE/UPDATE without WHERE, DROP COLUMN, …) need the human's confirmation: the user is asked
    directly when the client supports it, otherwise the result is `confirmation_required` with an operation_id for
    confirm_operation. Results are capped (rows and bytes): `truncated` says when more rows exist. Schema-qualify
    table names (e.g. auslex.users). On Neon, `branch` picks the branch (protected branches take reads only in the
    default access mode) and `as_of` reads the past.
    """
    plan = await _plan(ctx, sql, branch, database, _one(params), as_of)
    if plan.as_of is not None:  # a read on a Neon branch: planning refused anything else
        return sql_result(plan, await neon_services(ctx).time_travel.read(plan, max_rows=max_rows))
    return await _run(ctx, plan, confirmation, "run_sql", lambda execution: sql_result(plan, execution), max_rows)


async def run_sql_transaction(
    statements: Annotated[
        list[str], Field(min_length=1, max_length=100, description="SQL statements, one per item, run in order.")
    ],
    ctx: Ctx,
    confirmation: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_confirm_transaction)],
    database: Database = None,
    params: Annotated[
        list[list[Any]] | None,
        Field(description="One list of $n values per statement (use [] for a statement without parameters)."),
    ] = None,
    branch: Branch = None,
) -> Annotated[CallToolResult, TransactionResult]:
    """Run several SQL statements in one transaction: all of them commit, or none does.

    The strictest statement decides what is needed: all reads run read-only; any destructive statement needs the
    human's confirmation for the whole transaction. Each statement's result is returned in order.
    """
    plan = await _plan(ctx, statements, branch, database, params)
    return await _run(
        ctx, plan, confirmation, "run_sql_transaction", lambda execution: transaction_result(plan, execution)
    )


async def _run(
    ctx: Ctx,
    plan: Plan,
    confirmation: ElicitationResult[ConfirmAnswer],
    tool: str,
    shape: Callable[[Execution], CallToolResult],
    max_rows: int | None = None,
) -> CallToolResult:
    sql = services(ctx).sql

    async def apply(confirmed: Confirmed) -> CallToolResult:
        return shape(await sql.execute(plan, confirmed, max_rows=max_rows))

    return await run_or_store(ctx, confirmation, tool=tool, change=plan, apply=apply)


def register(tools: list[ToolSpec], offer: Offer) -> None:
    add_tool(
        tools,
        run_sql,
        title="Run SQL",
        read_only=not offer.writes,
        destructive=offer.writes,
        idempotent=False,
    )
    add_tool(
        tools,
        run_sql_transaction,
        title="Run SQL in one transaction",
        read_only=not offer.writes,
        destructive=offer.writes,
        idempotent=False,
    )
