"""confirm_operation: run a destructive operation that a human has approved, exactly as it was stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from server.mcp import Ctx, add_tool, replay, services, session_id

from . import branches, computes, migrate, projects, roles, sql

__all__ = ["register"]

CONFIRMABLE: dict[str, Callable[..., Awaitable[CallToolResult]]] = {
    fn.__name__: fn
    for fn in (
        sql.run_sql,
        sql.run_sql_transaction,
        projects.delete_project,
        branches.delete_branch,
        branches.reset_branch,
        branches.restore_branch,
        computes.configure_compute,
        computes.manage_compute,
        roles.create_role,
        migrate.migrate,
    )
}
"""The tools whose calls can wait for confirm_operation, by name: what a stored operation replays."""


async def confirm_operation(
    operation_id: Annotated[str, Field(description="The operation_id from a confirmation_required result.")],
    ctx: Ctx,
) -> CallToolResult:
    """Run a pending destructive operation after the user has agreed to it.

    Only call this when the user has seen the operation's summary and said yes. It runs exactly the stored
    operation (never new SQL), once, before it expires (5 minutes by default), and only if it would still do exactly
    what the summary said. Unknown, expired or already used ids, and ids from another session, are refused.
    """
    operation = services(ctx).pending.take(operation_id.strip(), session=session_id(ctx))
    return await replay(ctx, CONFIRMABLE[operation.tool], operation)


def register(server: MCPServer[Any]) -> None:
    add_tool(
        server,
        confirm_operation,
        title="Confirm a destructive operation",
        read_only=False,
        destructive=True,
        idempotent=False,
    )
