"""confirm_operation: run a destructive operation that a human has approved, exactly as it was stored."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult
from pydantic import Field

from server.mcp import Ctx, add_tool, services

__all__ = ["register"]


async def confirm_operation(
    operation_id: Annotated[str, Field(description="The operation_id from a confirmation_required result.")],
    ctx: Ctx,
) -> CallToolResult:
    """Run a pending destructive operation after the user has agreed to it.

    Only call this when the user has seen the operation's summary and said yes. It runs exactly the stored
    operation (never new SQL), once, before it expires (5 minutes by default). Unknown, expired or already used
    ids are refused.
    """
    operation = services(ctx).pending.take(operation_id.strip())
    result: CallToolResult = await operation.run(operation.id)
    return result


def register(server: MCPServer[Any]) -> None:
    add_tool(
        server,
        confirm_operation,
        title="Confirm a destructive operation",
        read_only=False,
        destructive=True,
        idempotent=False,
    )
