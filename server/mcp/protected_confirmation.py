"""Asking the human only when a planned change needs it: a change to a protected branch's compute or roles.

Branch deletion always asks (``tools/_confirmed.question``); compute and role changes ask only on a protected branch
(``plan.needs_confirmation``). ``ask_if_needed`` is what such a tool's confirmation resolver returns: the plan is made
(a plan that fails is not asked about: the tool body plans again and reports the error), and the human is asked when
the plan needs it and the client can be asked (``server.mcp.confirmations.ask``).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from mcp.server.mcpserver import Context, Elicit

from ..errors import NeonMCPError
from .confirmations import ConfirmAnswer, NotAsked, ask

__all__ = ["ConditionalPlan", "ask_if_needed"]


class ConditionalPlan(Protocol):
    @property
    def summary(self) -> str: ...

    @property
    def needs_confirmation(self) -> bool: ...


async def ask_if_needed(
    ctx: Context[Any, Any], planning: Awaitable[ConditionalPlan]
) -> Elicit[ConfirmAnswer] | NotAsked:
    try:
        plan = await planning
    except NeonMCPError:
        return NotAsked("not-planned")
    return ask(ctx, needed=plan.needs_confirmation, message=plan.summary)
