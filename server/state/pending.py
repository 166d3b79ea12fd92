"""Operations waiting for ``confirm_operation``: stored once, taken at most once, before they expire, by the session
that stored them.

An operation is plain data: the tool and the arguments of the call that needs confirming, the summary the human is
shown, and the objects it is bound to (``server.state.binding``). This is the store only; asking the human and
replaying the call is ``server.mcp.confirmations``.

``PendingOperations`` is the store's interface, with two implementations: ``PendingInMemory`` (one process: the
embedded default) and ``PendingTable`` (the state database, shared by replicas: an operation stored through one is
confirmed through any; it is taken by one conditional ``UPDATE … RETURNING``, so two replicas racing on one id get
one operation and one refusal, and it expires by the database's clock).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfirmationError

if TYPE_CHECKING:
    from .database import StateDatabase

__all__ = ["PendingInMemory", "PendingOperation", "PendingOperations", "PendingTable"]


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


class PendingOperations(Protocol):
    """Pending operations of one tenant; each runs at most once, before it expires."""

    ttl: float

    async def add(
        self,
        *,
        tool: str,
        arguments: dict[str, Any],
        summary: str,
        session: str | None = None,
        binding: list[dict[str, Any]] | None = None,
    ) -> PendingOperation:
        """Store a call waiting for confirmation; raises ``StateUnavailable`` when it cannot be stored."""
        ...

    async def take(self, operation_id: str, *, session: str | None = None) -> PendingOperation:
        """Remove and return the pending operation; raises ``ConfirmationError`` if unknown, used, expired, or stored
        by another MCP session (then it stays pending for its own session)."""
        ...


def _new_id() -> str:
    return "op_" + secrets.token_urlsafe(12)


def _other_session(operation_id: str) -> ConfirmationError:
    return ConfirmationError(
        f"operation {operation_id} was asked for in another MCP session; only that session can confirm it"
    )


def _finished(operation_id: str, why: str) -> ConfirmationError:
    return ConfirmationError(f"operation {operation_id} {why}; it cannot run again")


def _expired(operation_id: str) -> ConfirmationError:
    return ConfirmationError(f"operation {operation_id} expired before it was confirmed; run the original tool again")


def _unknown(operation_id: str) -> ConfirmationError:
    return ConfirmationError(f"unknown operation id {operation_id!r}; ids come from a confirmation_required result")


_TAKEN = "was already confirmed and ran"
_LAPSED = "expired before it was confirmed"


class PendingInMemory:
    """``PendingOperations`` in this process's memory (gone with it)."""

    _USED_MEMORY = 10_000

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self._clock = clock
        self._pending: dict[str, PendingOperation] = {}
        self._finished: dict[str, str] = {}

    async def add(
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
            id=_new_id(),
            tool=tool,
            summary=summary,
            expires_at=self._clock() + self.ttl,
            arguments=dict(arguments),
            session=session,
            binding=list(binding or []),
        )
        self._pending[operation.id] = operation
        return operation

    async def take(self, operation_id: str, *, session: str | None = None) -> PendingOperation:
        operation = self._pending.get(operation_id)
        if operation is not None and operation.session is not None and operation.session != session:
            raise _other_session(operation_id)
        operation = self._pending.pop(operation_id, None)
        if operation is None:
            why = self._finished.get(operation_id)
            if why is not None:
                raise _finished(operation_id, why)
            raise _unknown(operation_id)
        if operation.expires_at <= self._clock():
            self._remember(operation_id, _LAPSED)
            raise _expired(operation_id)
        self._remember(operation_id, _TAKEN)
        return operation

    def _remember(self, operation_id: str, why: str) -> None:
        self._finished[operation_id] = why
        if len(self._finished) > self._USED_MEMORY:
            self._finished.pop(next(iter(self._finished)))

    def _purge(self) -> None:
        now = self._clock()
        for operation_id in [key for key, op in self._pending.items() if op.expires_at <= now]:
            del self._pending[operation_id]
            self._remember(operation_id, _LAPSED)


_ADD = """
INSERT INTO neon_mcp_state.pending_operations (id, tenant, session, tool, summary, operation, created_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, now() + make_interval(secs => $8))
RETURNING extract(epoch FROM expires_at)::float8 AS expires
"""
_TAKE = """
UPDATE neon_mcp_state.pending_operations SET taken_at = now(), taken_by = $4
WHERE id = $1 AND tenant = $2 AND taken_at IS NULL AND expires_at > now() AND (session IS NULL OR session = $3)
RETURNING operation::text AS operation, extract(epoch FROM expires_at)::float8 AS expires
"""
_WHY_NOT = """
SELECT session, taken_at IS NOT NULL AS taken, expires_at <= now() AS expired
FROM neon_mcp_state.pending_operations WHERE id = $1 AND tenant = $2
"""
_PURGE = "DELETE FROM neon_mcp_state.pending_operations WHERE expires_at < now() - interval '1 day'"
_PURGE_EVERY = 600.0
"""Seconds between two purges by one process of operations that expired over a day ago (so a late confirm still
says why it is refused rather than 'unknown')."""


class PendingTable:
    """``PendingOperations`` of one tenant in the state database, shared by every replica.

    The row keeps the whole operation as JSON (``operation``: tool, arguments, summary, session, and whatever a later
    version adds to ``PendingOperation``), with the columns the store decides on beside it.
    """

    def __init__(
        self,
        database: StateDatabase,
        *,
        tenant: str,
        ttl: float,
        replica: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.tenant = tenant
        self.ttl = ttl
        self.replica = replica
        self._clock = clock
        self._next_purge = 0.0

    async def add(
        self,
        *,
        tool: str,
        arguments: dict[str, Any],
        summary: str,
        session: str | None = None,
        binding: list[dict[str, Any]] | None = None,
    ) -> PendingOperation:
        await self._purge()
        operation = PendingOperation(
            id=_new_id(),
            tool=tool,
            summary=summary,
            expires_at=0.0,
            arguments=dict(arguments),
            session=session,
            binding=list(binding or []),
        )
        record = {k: v for k, v in dataclasses.asdict(operation).items() if k not in ("id", "expires_at")}
        row = await self.database.fetchrow(
            "storing the operation for confirm_operation",
            _ADD,
            operation.id,
            self.tenant,
            session,
            tool,
            summary,
            json.dumps(record, ensure_ascii=False),
            self.replica,
            self.ttl,
        )
        assert row is not None
        return dataclasses.replace(operation, expires_at=float(row["expires"]))

    async def take(self, operation_id: str, *, session: str | None = None) -> PendingOperation:
        doing = f"taking operation {operation_id}"
        row = await self.database.fetchrow(doing, _TAKE, operation_id, self.tenant, session, self.replica)
        if row is not None:
            record = json.loads(row["operation"])
            return PendingOperation(id=operation_id, expires_at=float(row["expires"]), **record)
        why = await self.database.fetchrow(doing, _WHY_NOT, operation_id, self.tenant)
        if why is None:
            raise _unknown(operation_id)
        if why["taken"]:
            raise _finished(operation_id, _TAKEN)
        if why["session"] is not None and why["session"] != session:
            raise _other_session(operation_id)
        raise _expired(operation_id)

    async def _purge(self) -> None:
        now = self._clock()
        if now < self._next_purge:
            return
        self._next_purge = now + _PURGE_EVERY
        await self.database.execute("purging old operations", _PURGE)
