"""Operations waiting for ``confirm_operation``: stored once, taken at most once, before they expire, by the session
that stored them.

An operation is plain data: the tool and the arguments of the call that needs confirming, the summary the human
is shown, and the objects it is bound to (``server.state.binding``). This is the store only; asking the human and
replaying the call is ``server.mcp.confirmations``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfirmationError

__all__ = ["PendingOperation", "PendingOperations"]


@dataclass(frozen=True, slots=True)
class PendingOperation:
    id: str
    tool: str
    summary: str
    expires_at: float
    """``time.time()`` when it expires."""
    arguments: dict[str, Any] = field(default_factory=dict)
    """The call's arguments, as the caller gave them (JSON values)."""
    session: str | None = None
    """The MCP session that stored it; only that session may confirm it (None: any session of the tenant)."""
    binding: list[dict[str, Any]] = field(default_factory=list)
    """The objects the change touches, as they were when the human was asked (``server.state.binding``, as JSON)."""


class PendingOperations:
    """Pending operations of one tenant; each runs at most once, before it expires."""

    _USED_MEMORY = 10_000

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self._clock = clock
        self._pending: dict[str, PendingOperation] = {}
        self._finished: dict[str, str] = {}

    def add(
        self,
        *,
        tool: str,
        arguments: dict[str, Any],
        summary: str,
        session: str | None = None,
        binding: list[dict[str, Any]] | None = None,
    ) -> PendingOperation:
        self._purge()
        operation = PendingOperation(
            id="op_" + secrets.token_urlsafe(12),
            tool=tool,
            summary=summary,
            expires_at=self._clock() + self.ttl,
            arguments=dict(arguments),
            session=session,
            binding=list(binding or ()),
        )
        self._pending[operation.id] = operation
        return operation

    def take(self, operation_id: str, *, session: str | None = None) -> PendingOperation:
        """Remove and return the pending operation; raises ``ConfirmationError`` if unknown, used, expired, or stored
        by another MCP session (then it stays pending for its own session)."""
        operation = self._pending.get(operation_id)
        if operation is not None and operation.session is not None and operation.session != session:
            raise ConfirmationError(
                f"operation {operation_id} was asked for in another MCP session; only that session can confirm it"
            )
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
