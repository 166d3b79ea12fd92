"""Progress of the tool call in flight, for mechanisms deep below the tools (operation waits, waking a compute).

The tool boundary (``tooling.boundary``) puts the request's ``ctx.report_progress`` here for the duration of the call;
``report`` sends an MCP progress notification when a caller asked for them and does nothing otherwise. A context
variable rather than a parameter threaded through every layer: each task (each call) sees its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TypeAlias

__all__ = ["Reporter", "current", "report"]

logger = logging.getLogger(__name__)

Reporter: TypeAlias = Callable[[float, float | None, str | None], Awaitable[None]]

current: ContextVar[Reporter | None] = ContextVar("neon_mcp_progress", default=None)


async def report(done: float, total: float | None, message: str) -> None:
    """Tell the caller how far a long step has got (a no-op outside a tool call or when nobody listens)."""
    logger.debug("progress %s/%s: %s", done, total, message)
    reporter = current.get()
    if reporter is None:
        return
    try:
        await reporter(done, total, message)
    except Exception:  # a notification that cannot be sent must not fail the work it reports on
        logger.debug("progress notification failed", exc_info=True)
