"""The audit log: a record of every write or destructive statement that ran (or failed), with who asked for it, its
password literals redacted (``server.redaction``) before it is written or fingerprinted.

``AuditLog`` is the interface, with two implementations: ``AuditFile``, JSON lines in the server's data directory (the
embedded default), and ``AuditTable``, the table ``neon_mcp_state.audit_log`` of the state database, where the records
of every replica meet and operators query them with SQL.

Who: the tenant (the hash of its Neon API key, or of its database URL), the MCP session and the client's name, and the
tool: the tool boundary (``server.mcp.tooling``) sets ``current_caller`` for each call, and every record appended
during the call carries it. A record is appended synchronously (services call ``append`` where the statement ran); the
table writes it in the background, and the boundary waits for ``Caller.settle`` before it answers, so a call whose
answer arrived has its records in the table, and a call without records waits for nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import threading
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio

from ..errors import StateUnavailable
from ..redaction import redact, redact_text
from .binding import Binding

if TYPE_CHECKING:
    from .database import StateDatabase

__all__ = [
    "NOT_NEEDED",
    "AuditFile",
    "AuditLog",
    "AuditRecord",
    "AuditTable",
    "Caller",
    "ConfirmationPath",
    "Confirmed",
    "current_caller",
    "statement_fingerprint",
]

logger = logging.getLogger(__name__)

ConfirmationPath = Literal["not-needed", "elicitation", "confirm_operation"]


@dataclass(frozen=True, slots=True)
class Confirmed:
    """How a change came to run: not needing a confirmation, a human's yes by elicitation, or ``confirm_operation``
    of a stored operation (``operation_id``)."""

    path: ConfirmationPath
    operation_id: str | None = None
    summary: str | None = None
    """For ``confirm_operation``: the summary the human confirmed (a change confirmed by what it measured when it ran
    checks its new measurement against it)."""
    binding: Binding = ()
    """The objects the human was shown (``server.state.binding``), which the run holds where it can."""


NOT_NEEDED = Confirmed("not-needed")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    target: str
    sql: str
    classification: str
    confirmation: ConfirmationPath
    outcome: Literal["ok", "error", "rolled-back"]
    rows_affected: int | None = None
    error: str | None = None
    operation_id: str | None = None


@dataclass(slots=True, eq=False)
class Caller:
    """Who is calling: the tool call in flight (set by the tool boundary for its duration)."""

    tool: str
    session: str | None = None
    """The MCP session (None where the protocol has none: stdio, the 2026-07-28 protocol over HTTP)."""
    client: str | None = None
    """The name the MCP client gave (``clientInfo.name``), when it gave one."""
    unwritten: set[AuditLog] = field(default_factory=set)
    """Audit logs holding records of this call not yet written."""

    async def settle(self) -> None:
        """Write the records this call appended (never raises: a failure to write is logged)."""
        while self.unwritten:
            await self.unwritten.pop().flush()


current_caller: ContextVar[Caller | None] = ContextVar("neon_mcp_caller", default=None)


def statement_fingerprint(sql: str) -> str:
    """16 hex digits of the statement's SHA-256: the same statement text has the same fingerprint on every replica."""
    return hashlib.sha256(sql.encode()).hexdigest()[:16]


def _entry(record: AuditRecord, tenant: str) -> dict[str, Any]:
    """The record, its password literals redacted, with who asked for it (the call in flight) and its statement's
    fingerprint (of the redacted text: a hash of a secret would let it be guessed offline)."""
    caller = current_caller.get()
    safe = replace(record, sql=redact(record.sql), error=None if record.error is None else redact_text(record.error))
    return {
        **asdict(safe),
        "statement_fingerprint": statement_fingerprint(safe.sql),
        "tenant": tenant,
        "session": caller.session if caller else None,
        "client": caller.client if caller else None,
        "tool": caller.tool if caller else None,
    }


class AuditLog(Protocol):
    """Where the records of one tenant go."""

    def append(self, record: AuditRecord) -> None:
        """Record a statement that ran or failed; never raises (the statement already ran)."""
        ...

    async def flush(self) -> None:
        """Write every record appended so far; never raises (a failure to write is logged)."""
        ...

    async def aclose(self) -> None:
        """Flush, and give up on what cannot be written (each such record is logged in full)."""
        ...


class AuditFile:
    """``AuditLog`` as JSON lines in ``path`` (created with its directory on first write, mode 0600).

    Lines are appended with a single ``write`` on a file opened in append mode, so concurrent writers in one process
    never interleave within a line.
    """

    def __init__(self, path: Path, *, tenant: str = "default") -> None:
        self.path = path
        self.tenant = tenant
        self._lock = threading.Lock()

    def append(self, record: AuditRecord) -> None:
        entry = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **_entry(record, self.tenant)}
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)
        except OSError:
            logger.exception("could not write the audit log at %s", self.path)

    async def flush(self) -> None:
        """Nothing to do: ``append`` wrote the line."""

    async def aclose(self) -> None:
        """Nothing to do: ``append`` wrote the line."""

    def read(self) -> list[dict[str, object]]:
        """Every record so far (for tests and inspection)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


_COLUMNS = ("tenant", "session", "client", "replica", "tool", "target", "statement_fingerprint", "sql",
            "classification", "confirmation", "operation_id", "outcome", "rows_affected", "error")  # fmt: skip
_INSERT = """
INSERT INTO neon_mcp_state.audit_log (tenant, session, client, replica, tool, target, statement_fingerprint, sql,
    classification, confirmation, operation_id, outcome, rows_affected, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""
_KEEP_UNWRITTEN = 10_000
"""Records kept for a later attempt while the state database does not answer; older ones are logged and dropped."""


class AuditTable:
    """``AuditLog`` as rows of ``neon_mcp_state.audit_log``, for one tenant of one replica.

    ``append`` queues the row; ``flush`` inserts everything queued in one batch (one at a time, so a flush that
    returns has written what was appended before it began). Records appended outside a tool call are flushed by a
    task of their own. While the database does not answer, rows stay queued (at most ``_KEEP_UNWRITTEN``) for the
    next flush.
    """

    def __init__(self, database: StateDatabase, *, tenant: str, replica: str) -> None:
        self.database = database
        self.tenant = tenant
        self.replica = replica
        self._queue: list[tuple[Any, ...]] = []
        self._lock = anyio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def append(self, record: AuditRecord) -> None:
        entry = {**_entry(record, self.tenant), "replica": self.replica}
        self._queue.append(tuple(entry[column] for column in _COLUMNS))
        caller = current_caller.get()
        if caller is not None:
            caller.unwritten.add(self)
            return
        try:
            task = asyncio.get_running_loop().create_task(self.flush())
        except RuntimeError:
            return  # no event loop here: the next flush writes it
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        async with self._lock:
            batch, self._queue = self._queue, []
            if not batch:
                return
            try:
                await self.database.executemany("writing the audit log", _INSERT, batch)
            except StateUnavailable:
                kept = (batch + self._queue)[-_KEEP_UNWRITTEN:]
                for row in (batch + self._queue)[:-_KEEP_UNWRITTEN]:
                    _log_lost(row)
                self._queue = kept
                logger.error("audit log: %d record(s) not written yet (the state database did not answer)", len(kept))

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.flush()
        for row in self._queue:
            _log_lost(row)
        self._queue = []


def _log_lost(row: tuple[Any, ...]) -> None:
    entry = dict(zip(_COLUMNS, row, strict=True))
    logger.error("audit record not written to the state database: %s", json.dumps(entry, ensure_ascii=False))
