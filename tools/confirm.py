"""confirm_operation: run a destructive operation that a human has approved, exactly as it was stored."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from mcp_types import CallToolResult
from pydantic import Field

from server.mcp import Ctx, Offer, ToolSpec, add_tool, replay, services, session_id

__all__ = ["CONFIRMABLE", "register"]

CONFIRMABLE = {
    "run_sql": "sql",
    "run_sql_transaction": "sql",
    "delete_project": "projects",
    "delete_branch": "branches",
    "reset_branch": "branches",
    "restore_branch": "branches",
    "configure_compute": "computes",
    "manage_compute": "computes",
    "create_role": "roles",
    "migrate": "migrate",
}
"""The tools whose calls can wait for confirm_operation, by name, and their family (``tools.<family>``): what a
stored operation replays. Named rather than imported, so that a server without Neon never imports Neon's families."""


def _tool(name: str) -> Callable[..., Awaitable[CallToolResult]]:
    return cast(
        Callable[..., Awaitable[CallToolResult]], getattr(importlib.import_module(f"tools.{CONFIRMABLE[name]}"), name)
    )


async def confirm_operation(
    operation_id: Annotated[str, Field(description="The operation_id from a confirmation_required result.")],
    ctx: Ctx,
) -> CallToolResult:
    """Run a pending destructive operation after the user has agreed to it.

    Only call this when the user has seen the operation's summary and said yes. It runs exactly the stored
    operation (never new SQL), once, before it expires (5 minutes by default), and only if it would still do exactly
    what the summary said. Unknown, expired or already used ids, and ids from another session, are refused.
    """
    operation = await services(ctx).pending.take(operation_id.strip(), session=session_id(ctx))
    return await replay(ctx, _tool(operation.tool), operation)


def register(tools: list[ToolSpec], offer: Offer) -> None:
    add_tool(
        tools,
        confirm_operation,
        title="Confirm a destructive operation",
        read_only=False,
        destructive=True,
        idempotent=False,
    )
