"""The state database: what the replicas of one service share so that any of them can answer any call — pending
confirmations, migration plans and the audit log — in a schema of its own, ``neon_mcp_state``.

``StateDatabase(url)`` holds a small asyncpg pool of its own: the stores' queries are the server's own, fixed and
parameterised, and never pass through the SQL policy. ``open()`` connects and brings the schema to this server's
version: numbered steps, each applied once and recorded in ``neon_mcp_state.schema_version``, all in one transaction
that first takes an advisory lock, so that replicas starting together migrate it once and the others find it done. A
schema at a newer version than this server knows is refused: a newer server changed it, this one must be upgraded.

Every time that decides something (when a confirmation or a plan expires, when an audit record was written) is the
database's ``now()``: replicas' clocks may disagree, the database has one.

Driver errors become ``StateUnavailable`` here, once; their text goes to the log (it may name hosts), never to a
client.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import StateUnavailable

if TYPE_CHECKING:
    import asyncpg

__all__ = ["SCHEMA", "STEPS", "Health", "StateDatabase", "replica"]

logger = logging.getLogger("neon_mcp.state")

SCHEMA = "neon_mcp_state"

STEPS: tuple[str, ...] = (
    # 1: pending confirmations, migration plans, the audit log, and the secret that seals request state.
    """
    CREATE TABLE neon_mcp_state.pending_operations (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        session text,
        tool text NOT NULL,
        summary text NOT NULL,
        operation jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by text NOT NULL,
        expires_at timestamptz NOT NULL,
        taken_at timestamptz,
        taken_by text
    );
    CREATE INDEX pending_operations_expires_at ON neon_mcp_state.pending_operations (expires_at);
    COMMENT ON TABLE neon_mcp_state.pending_operations IS
        'Calls waiting for confirm_operation: operation holds the call (tool, arguments, summary, session) as JSON';

    CREATE TABLE neon_mcp_state.migration_plans (
        id text PRIMARY KEY,
        tenant text NOT NULL,
        plan jsonb NOT NULL,
        checksum text NOT NULL,
        schema_fingerprint text NOT NULL,
        state text NOT NULL DEFAULT 'planned' CHECK (state IN ('planned', 'applied', 'discarded')),
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by text NOT NULL,
        expires_at timestamptz NOT NULL,
        finished_at timestamptz,
        finished_by text
    );
    CREATE INDEX migration_plans_tenant ON neon_mcp_state.migration_plans (tenant, state);
    COMMENT ON TABLE neon_mcp_state.migration_plans IS
        'Migrations planned by migrate(action=plan): the script tested, its checksum, the target''s schema fingerprint';

    CREATE TABLE neon_mcp_state.audit_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        tenant text NOT NULL,
        session text,
        client text,
        replica text NOT NULL,
        tool text,
        target text NOT NULL,
        statement_fingerprint text NOT NULL,
        sql text NOT NULL,
        classification text NOT NULL,
        confirmation text NOT NULL,
        operation_id text,
        outcome text NOT NULL,
        rows_affected bigint,
        error text
    );
    CREATE INDEX audit_log_at ON neon_mcp_state.audit_log (at);
    CREATE INDEX audit_log_tenant_at ON neon_mcp_state.audit_log (tenant, at);
    COMMENT ON TABLE neon_mcp_state.audit_log IS
        'Every write or destructive statement that ran (or failed): who (tenant, session, client), what, when, outcome';

    CREATE TABLE neon_mcp_state.secrets (
        name text PRIMARY KEY,
        value bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    """,
)
"""The schema's versions: step N brings it from version N-1 to N. Append only; a step, once released, never
changes."""

_BOOTSTRAP = """
SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('neon_mcp_state', 0));
CREATE SCHEMA IF NOT EXISTS neon_mcp_state;
CREATE TABLE IF NOT EXISTS neon_mcp_state.schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL
);
"""
_VERSION = "SELECT coalesce(max(version), 0) FROM neon_mcp_state.schema_version"
_RECORD_VERSION = "INSERT INTO neon_mcp_state.schema_version (version, applied_by) VALUES ($1, $2)"
_KEEP_KEY = """
INSERT INTO neon_mcp_state.secrets (name, value) VALUES ('request_state_key', $1) ON CONFLICT (name) DO NOTHING
"""
_READ_KEY = "SELECT value FROM neon_mcp_state.secrets WHERE name = 'request_state_key'"

_DRIVER_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError)
"""Completed with asyncpg's own base classes on first use (asyncpg is imported lazily)."""


@functools.cache
def replica() -> str:
    """This process, as the state tables name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Health:
    """What /healthz says about the state database."""

    ok: bool
    ms: float | None = None
    schema_version: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {"store": "postgres", "ok": self.ok, "ms": self.ms, "schema_version": self.schema_version}


def _driver_errors() -> tuple[type[BaseException], ...]:
    import asyncpg

    return (*_DRIVER_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Driver errors inside the block become ``StateUnavailable`` saying what did not happen; the driver's text is
    logged."""
    try:
        yield
    except _driver_errors() as exc:
        logger.error("state database: %s failed: %s: %s", doing, type(exc).__name__, exc)
        raise StateUnavailable(
            f"the state database did not answer, so {doing} did not happen; try again (the server's log has the cause)"
        ) from exc


async def _nothing_to_reset(_: asyncpg.Connection) -> None:
    """The pool's ``reset`` hook. The stores' queries leave no session state behind (no ``SET``, ``LISTEN``, cursor or
    session lock; asyncpg itself rolls back a transaction left open), so the reset query asyncpg would send on every
    release — a second round trip for each query — has nothing to do."""


class StateDatabase:
    """The pool to the state database, its schema, and its health; the stores run their queries through it."""

    def __init__(self, url: str, *, pool_size: int = 4, timeout: float = 10.0) -> None:
        self._url = url
        self.pool_size = pool_size
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._key: bytes | None = None
        self.schema_version = 0

    # --- lifetime ----------------------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and migrate the schema (see the module docstring); raises ``StateUnavailable``."""
        import asyncpg

        with translated("opening the state store"):
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=self.pool_size,
                timeout=self.timeout,
                command_timeout=self.timeout,
                server_settings={"application_name": "neon-mcp state"},
                reset=_nothing_to_reset,
            )
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.execute(_BOOTSTRAP)
                    current = int(await conn.fetchval(_VERSION))
                    if current > len(STEPS):
                        raise StateUnavailable(
                            f"the state schema {SCHEMA} is at version {current}, newer than this server knows "
                            f"({len(STEPS)}): a newer neon-mcp migrated it; run that version here too"
                        )
                    for version in range(current + 1, len(STEPS) + 1):
                        await conn.execute(STEPS[version - 1])
                        await conn.execute(_RECORD_VERSION, version, replica())
                        logger.info("state database: schema %s migrated to version %d", SCHEMA, version)
                    await conn.execute(_KEEP_KEY, secrets.token_bytes(32))
                    self._key = bytes(await conn.fetchval(_READ_KEY))
                self.schema_version = len(STEPS)
            except BaseException:
                await self._pool.close()
                self._pool = None
                raise

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def request_state_key(self) -> bytes | None:
        """The secret every replica seals request state with (kept in the database; None before ``open``)."""
        return self._key

    # --- queries -----------------------------------------------------------------------------------------------------

    def _ready(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StateUnavailable("the state store is not open (the server is starting or stopping)")
        return self._pool

    async def fetchrow(self, doing: str, query: str, *args: Any) -> asyncpg.Record | None:
        with translated(doing):
            return await self._ready().fetchrow(query, *args)

    async def fetch(self, doing: str, query: str, *args: Any) -> list[asyncpg.Record]:
        with translated(doing):
            return list(await self._ready().fetch(query, *args))

    async def execute(self, doing: str, query: str, *args: Any) -> str:
        with translated(doing):
            return str(await self._ready().execute(query, *args))

    async def executemany(self, doing: str, query: str, rows: Sequence[Sequence[Any]]) -> None:
        with translated(doing):
            await self._ready().executemany(query, rows)

    @asynccontextmanager
    async def transaction(self, doing: str) -> AsyncIterator[asyncpg.Connection]:
        """A connection of its own (not the pool's: it may be held for as long as a migration runs) inside a
        transaction, committed when the block ends and rolled back when it raises; if this process dies, the
        database ends the transaction and releases its locks."""
        import asyncpg

        self._ready()
        with translated(doing):
            conn = await asyncpg.connect(
                self._url,
                timeout=self.timeout,
                command_timeout=self.timeout,
                server_settings={"application_name": "neon-mcp state"},
            )
        try:
            transaction = conn.transaction()
            with translated(doing):
                await transaction.start()
            try:
                yield conn
            except BaseException:
                # Closing the connection below rolls back too: a failed rollback must not hide why the block failed.
                with suppress(Exception):
                    await transaction.rollback()
                raise
            with translated(doing):
                await transaction.commit()
        finally:
            with suppress(Exception):  # a connection that broke is gone either way
                await conn.close(timeout=self.timeout)

    async def health(self) -> Health:
        """Whether the state database answers now (within 2 s), and how fast."""
        if self._pool is None:
            return Health(ok=False)
        started = time.perf_counter()
        try:
            with translated("the health check"):
                await self._pool.fetchval("SELECT 1", timeout=2.0)
        except StateUnavailable:
            return Health(ok=False, schema_version=self.schema_version)
        return Health(True, round((time.perf_counter() - started) * 1000, 2), self.schema_version)
