"""Confirmation of destructive operations, by MCP elicitation or by ``confirm_operation``.

Two paths, and no third:

1. The client declared form elicitation: a tool's resolver (``ask``) returns an ``Elicit`` with a summary of the exact
   operation, including a fingerprint of it; the SDK asks the human. On the 2026-07-28 protocol the question rides
   the retried call and is matched by its exact text, so an answer cannot be reused for different SQL.
2. Otherwise the tool stores the exact pending operation here (``Confirmations.add``) and answers
   ``confirmation_required`` with its id; ``confirm_operation(id)`` takes it (once, before it expires) and runs the
   stored operation, never SQL re-sent by the model.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from mcp.server.mcpserver import (
    AcceptedElicitation,
    CancelledElicitation,
    Context,
    DeclinedElicitation,
    Elicit,
    ElicitationResult,
)
from pydantic import BaseModel, Field

from ..errors import ConfirmationError

__all__ = [
    "ConfirmAnswer",
    "Confirmations",
    "Decision",
    "NotAsked",
    "PendingOperation",
    "ask",
    "decide",
]


class ConfirmAnswer(BaseModel):
    """The form the human answers."""

    confirm: bool = Field(title="Run it", description="Tick to run exactly the operation described above.")


@dataclass(frozen=True, slots=True)
class NotAsked:
    """The resolver did not ask: no confirmation was needed, or the client cannot be asked."""

    reason: Literal["not-needed", "no-elicitation", "not-planned"]


def _client_can_elicit(ctx: Context[Any, Any]) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    # A bare ``elicitation: {}`` (before modes existed) means form support; URL-only does not.
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def ask(ctx: Context[Any, Any], *, needed: bool, message: str) -> Elicit[ConfirmAnswer] | NotAsked:
    """What a tool's confirmation resolver returns: ask the human when needed and possible."""
    if not needed:
        return NotAsked("not-needed")
    if not _client_can_elicit(ctx):
        return NotAsked("no-elicitation")
    return Elicit(message, ConfirmAnswer)


Decision = Literal["run", "run-confirmed", "store", "declined", "cancelled"]


def decide(outcome: ElicitationResult[Any], *, needed: bool) -> Decision:
    """Turn the resolver's outcome into what the tool does.

    ``run``: nothing needed confirming. ``run-confirmed``: a human accepted by elicitation. ``store``: confirmation
    is needed and nobody was asked, so the tool must store the operation for ``confirm_operation``.
    """
    match outcome:
        case AcceptedElicitation(data=ConfirmAnswer(confirm=True)):
            return "run-confirmed" if needed else "run"
        case AcceptedElicitation(data=ConfirmAnswer()):
            return "declined"
        case AcceptedElicitation():
            # NotAsked (or anything else a resolver returned without asking): never counts as a yes.
            return "store" if needed else "run"
        case DeclinedElicitation():
            return "declined"
        case CancelledElicitation():
            return "cancelled"
    return "store" if needed else "run"


@dataclass(frozen=True, slots=True)
class PendingOperation:
    id: str
    tool: str
    summary: str
    expires_at: float
    """``time.time()`` when it expires."""
    run: Callable[[str], Awaitable[Any]]
    """Runs the stored operation; receives the operation id (for the audit log)."""


class Confirmations:
    """Pending operations waiting for ``confirm_operation``; each runs at most once, before it expires."""

    _USED_MEMORY = 10_000

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self._clock = clock
        self._pending: dict[str, PendingOperation] = {}
        self._finished: dict[str, str] = {}

    def add(self, *, tool: str, summary: str, run: Callable[[str], Awaitable[Any]]) -> PendingOperation:
        self._purge()
        operation = PendingOperation(
            id="op_" + secrets.token_urlsafe(12),
            tool=tool,
            summary=summary,
            expires_at=self._clock() + self.ttl,
            run=run,
        )
        self._pending[operation.id] = operation
        return operation

    def take(self, operation_id: str) -> PendingOperation:
        """Remove and return the pending operation; raises ``ConfirmationError`` if unknown, used or expired."""
        operation = self._pending.pop(operation_id, None)
        if operation is None:
            why = self._finished.get(operation_id)
            if why is not None:
                raise ConfirmationError(f"operation {operation_id} {why}; it cannot run again")
            raise ConfirmationError(
                f"unknown operation id {operation_id!r}; ids come from a confirmation_required result"
            )
        if operation.expires_at <= self._clock():
            self._remember(operation_id, "expired before it was confirmed")
            raise ConfirmationError(
                f"operation {operation_id} expired before it was confirmed; run the original tool again"
            )
        self._remember(operation_id, "was already confirmed and ran")
        return operation

    def _remember(self, operation_id: str, why: str) -> None:
        self._finished[operation_id] = why
        if len(self._finished) > self._USED_MEMORY:
            self._finished.pop(next(iter(self._finished)))

    def _purge(self) -> None:
        now = self._clock()
        for operation_id in [key for key, op in self._pending.items() if op.expires_at <= now]:
            del self._pending[operation_id]
            self._remember(operation_id, "expired before it was confirmed")
