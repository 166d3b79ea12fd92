"""Confirmation for tools whose operation is not SQL (deleting, resetting, restoring a branch).

A tool plans its operation twice: in its confirmation resolver (``question``), to word what the human is asked, and
in its body, to act on the answer (``confirmed``). The plan's ``summary`` must be the same text both times (the
2026-07-28 protocol matches an answer to its question by the exact text), so plans build it deterministically from
what they resolved, never from the clock. The two paths are those of ``server.mcp.confirmations``: the human accepts by
elicitation and the operation runs at once, or it is stored and ``confirm_operation`` runs it later, once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

from mcp.server.mcpserver import Elicit, ElicitationResult
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from server.audit import ConfirmationPath
from server.errors import NeonMCPError
from server.mcp.confirmations import ConfirmAnswer, NotAsked, ask, decide
from server.mcp.context import Ctx, app
from server.mcp.fence import fence

__all__ = ["Confirmation", "Planned", "confirmed", "question"]


class Planned(Protocol):
    """A checked operation that has not run yet."""

    @property
    def summary(self) -> str: ...


class Confirmation(BaseModel):
    """The fields every confirmed tool's result has (a tool's output model adds its own)."""

    status: Literal["ok", "confirmation_required", "declined"]
    operation_id: str | None = Field(default=None, description="pass to confirm_operation to run it")
    summary: str | None = Field(default=None, description="what would run, for the human to confirm")
    expires_at: str | None = Field(default=None, description="when operation_id expires")


async def question(ctx: Ctx, planning: Awaitable[Planned]) -> Elicit[ConfirmAnswer] | NotAsked:
    """What a confirmed tool's resolver returns: the human is asked about the planned operation when possible.

    A plan that fails is not asked about: the tool body plans again and reports the error.
    """
    try:
        plan = await planning
    except NeonMCPError:
        return NotAsked("not-planned")
    return ask(ctx, needed=True, message=plan.summary)


async def confirmed(
    ctx: Ctx,
    confirmation: ElicitationResult[ConfirmAnswer],
    *,
    tool: str,
    plan: Planned,
    about: Mapping[str, Any],
    run: Callable[[ConfirmationPath], Awaitable[CallToolResult]],
) -> CallToolResult:
    """Run ``plan`` (through ``run``) once a human said yes, store it for confirm_operation, or report the refusal.

    ``about`` is the structured content every answer carries (what the operation is about), so that the pending and
    declined answers validate against the tool's output model too. ``run`` receives how it was confirmed.
    """
    decision = decide(confirmation, needed=True)
    if decision in ("declined", "cancelled"):
        text = f"The user {decision} the confirmation: nothing was changed."
        return _result({**about, "status": "declined"}, [text])
    if decision == "store":

        async def later(operation_id: str) -> CallToolResult:
            return await run("confirm_operation")

        operation = app(ctx).confirmations.add(tool=tool, summary=plan.summary, run=later)
        expires = dt.datetime.fromtimestamp(operation.expires_at, dt.UTC).isoformat(timespec="seconds")
        lines = [
            "CONFIRMATION REQUIRED: nothing has run yet.",
            fence(plan.summary),
            f"Show this to the user and ask them. If they agree, call confirm_operation with operation_id="
            f"{operation.id} before {expires}; it runs exactly the operation above, once.",
        ]
        data = {
            **about,
            "status": "confirmation_required",
            "operation_id": operation.id,
            "summary": plan.summary,
            "expires_at": expires,
        }
        return _result(data, lines)
    return await run("elicitation")


def _result(structured: dict[str, Any], lines: list[str]) -> CallToolResult:
    return CallToolResult(content=[TextContent(text="\n".join(lines))], structured_content=structured)
