"""PostgreSQL access: lazily created pools, guarded transactions, capped reads, and the one asyncpg error mapping.

Every call runs in a transaction this module opens: ``READ ONLY`` for reads, with ``SET LOCAL statement_timeout``,
``lock_timeout`` and ``idle_in_transaction_session_timeout``. User SQL is sent one statement per prepared statement
(extended protocol), never as a script. Rows are read through a portal, at most ``max_rows + 1`` of them and no more
than a byte budget, with large values cut in the database (``server.sql.reading``), so a ``SELECT *`` on a huge
table costs what the answer costs, not what the table holds. Every call ends with a batch that leaves its connection
as it found it (``server.sql.session``); a write's effect on whole tables can be measured before it commits
(``server.sql.effects``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from ..errors import ConfirmationError, ConnectionFailed, DatabaseError, InvalidInput, NeonMCPError, UnknownDatabase
from ..retry import Clock, Sleep, backoff
from ..state.binding import Held
from . import session
from .effects import Effect, measure
from .reading import (
    CACHED_SQL_CHARS,
    Caps,
    Collector,
    Column,
    Outcome,
    Statement,
    param_values,
    rows_affected,
    shape_of,
    source_position,
)

__all__ = [
    "Caps",
    "Check",
    "Column",
    "Databases",
    "Guards",
    "Outcome",
    "Statement",
    "map_error",
    "redact_dsn",
]

logger = logging.getLogger(__name__)

# Connecting to a waking compute is retried after 0.1-0.2 s, then 0.2-0.4 s, … up to 1-2 s between tries: Neon
# usually starts a compute within a second, and a long wait would add to the first query after a suspension.
_WAKE_RETRY_BASE = 0.2
_WAKE_RETRY_CAP = 2.0
_TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "name", "citext"})
Check = Callable[[Sequence[Effect]], None]
"""Receives a write's whole-table effects before it commits (see ``Databases.run``); raises to roll it back."""
_MEASURED = frozenset({"UPDATE", "DELETE", "MERGE"})


def redact_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***`` (for logs and messages)."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True, slots=True)
class Guards:
    """Limits every call runs under (seconds): session settings of a direct connection (``arm``), ``SET LOCAL`` in
    each transaction behind a pooler (where the session is not ours)."""

    statement_timeout: float
    lock_timeout: float
    idle_in_transaction_timeout: float

    def preamble(self, *, read_only: bool, armed: bool = False) -> str:
        """The server's own batch that opens a guarded transaction (one round trip); ``armed``: the connection's
        session already holds the limits.

        The trailing ``SELECT`` takes the transaction's first snapshot: after it, PostgreSQL refuses
        ``SET TRANSACTION READ WRITE``, so a read-only transaction stays read-only even if a statement slipped past
        the policy.
        """
        mode = "READ ONLY" if read_only else "READ WRITE"
        if armed:
            return f"BEGIN {mode}; SELECT 1"
        return (
            f"BEGIN {mode}; "
            f"SET LOCAL statement_timeout = {_ms(self.statement_timeout)}; "
            f"SET LOCAL lock_timeout = {_ms(self.lock_timeout)}; "
            f"SET LOCAL idle_in_transaction_session_timeout = {_ms(self.idle_in_transaction_timeout)}; "
            "SELECT 1"
        )

    def session(self, *, armed: bool = False) -> str:
        """The same limits as session settings, for the few statements that cannot run in a transaction (all of
        which change something: an armed session's read-only default is lifted for them)."""
        if armed:
            return "SET default_transaction_read_only = off"
        return (
            f"SET statement_timeout = {_ms(self.statement_timeout)}; "
            f"SET lock_timeout = {_ms(self.lock_timeout)}; "
            f"SET idle_in_transaction_session_timeout = {_ms(self.idle_in_transaction_timeout)}"
        )

    def arm(self) -> str:
        """The limits as a direct connection's own session settings, and read-only unless a transaction says
        otherwise: a read then needs no transaction of its own (see ``server.sql.session``)."""
        return f"{self.session()}; SET default_transaction_read_only = on"


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class GuardedConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that knows whether the call using it left it clean.

    Each call ends with its own batch (``server.sql.session``) that commits or rolls back and clears what the call may
    have left in the session, in the same round trip, so the pool's reset query is never run. A connection whose
    call did not end that way (``dirty``: cancelled, broken, or left with a SQL-level prepared statement) is closed
    instead of pooled, which nothing can survive.
    """

    dirty = False
    armed: tuple[Any, ...] | None = None
    """``session.STATE`` as read when the connection was armed (direct connections only)."""
    wrappers: frozenset[str] = frozenset()
    """Wrapped reads (``server.sql.reading``) that PostgreSQL has parsed on this connection."""

    def mark_dirty(self, dirty: bool = True) -> None:
        """Whether the call on this connection has not ended cleanly (yet)."""
        self.dirty = dirty

    def parsed_wrapper(self, sql: str) -> bool:
        return sql in self.wrappers

    def remember_wrapper(self, sql: str) -> None:
        if len(sql) > 2 * CACHED_SQL_CHARS:
            return  # not kept: a long one takes the savepoint each time rather than memory for good
        self.wrappers = self.wrappers | {sql} if len(self.wrappers) < 512 else frozenset({sql})

    def get_reset_query(self) -> str:
        return ""


async def _give_back(pool: asyncpg.Pool, conn: GuardedConnection) -> None:
    """Release ``conn`` (a pool's proxy) to ``pool``, closing it first if its call did not end cleanly."""
    # A connection that broke has already left the pool: its proxy no longer holds it.
    if getattr(conn, "_con", conn) is not None and conn.dirty and not conn.is_closed():
        conn.terminate()
    await pool.release(conn)


async def _end(conn: GuardedConnection, batch: str, *, wait: float, pooled: bool) -> None:
    """Run a call's end batch (``server.sql.session``); the connection is clean afterwards unless a direct
    connection's batch reports a SQL-level prepared statement left behind (it stays dirty: closed on release)."""
    status = await conn.execute(batch, timeout=wait)
    conn.mark_dirty(not pooled and session.left_prepared(status))


# The fast path reuses asyncpg's own statement cache and executes the unnamed portal with a row limit: one round trip
# for a warm statement instead of three (Parse, Bind/Execute, Close) through the public PreparedStatement API.
# It relies on private asyncpg methods, so it is used only when they exist; the public path is the fallback.
_FAST = all(
    hasattr(asyncpg.Connection, name) for name in ("_get_statement", "_protocol", "_drop_global_statement_cache")
)
_WRAPPER_SAVEPOINT = "neon_mcp_wrapper"


async def _wrapped_or_none(
    conn: GuardedConnection, sql: str, prepare: Callable[[str], Awaitable[Any]], *, in_transaction: bool
) -> Any:
    """``prepare(sql)`` for a wrapped read, or None when PostgreSQL refuses the wrapper (then the statement is read
    unwrapped). The first time on a connection, inside a transaction, a savepoint keeps such a refusal from aborting
    the caller's transaction."""
    if conn.parsed_wrapper(sql) or not in_transaction:
        try:
            prepared = await prepare(sql)
        except asyncpg.PostgresError:
            if in_transaction:
                raise
            return None
        conn.remember_wrapper(sql)
        return prepared
    await conn.execute(f"SAVEPOINT {_WRAPPER_SAVEPOINT}")
    try:
        await prepare(sql)
    except asyncpg.PostgresError:
        logger.info("PostgreSQL refused the read wrapper; reading the statement unwrapped", exc_info=True)
        await conn.execute(f"ROLLBACK TO SAVEPOINT {_WRAPPER_SAVEPOINT}; RELEASE SAVEPOINT {_WRAPPER_SAVEPOINT}")
        return None
    await conn.execute(f"RELEASE SAVEPOINT {_WRAPPER_SAVEPOINT}")
    conn.remember_wrapper(sql)
    # Prepared again after the savepoint's own statements, which end an unnamed prepared statement (asyncpg prepares
    # a text too long for its cache as the unnamed one); a cached one comes back at once.
    return await prepare(sql)


async def _bind_execute(conn: GuardedConnection, state: Any, args: Sequence[Any], limit: int, wait: float) -> Any:
    """Bind and execute a cached statement: ``(records, status, completed)``. Unlike ``Connection._execute`` it never
    prepares again and retries by itself after a schema change (which it does outside a transaction): the caller's
    view of the statement (its columns, a wrapper written from them) would no longer match; the call is retried
    whole instead (``Databases.run``), after asyncpg's caches are dropped as asyncpg itself would drop them."""
    try:
        return await conn._protocol.bind_execute(state, args, "", limit, True, wait)
    except asyncpg.OutdatedSchemaCacheError:
        await conn.reload_schema_state()
        raise
    except asyncpg.InvalidCachedStatementError:
        conn._drop_global_statement_cache()
        raise


def _no_rows(outcome: Outcome, status: str, started: float) -> Outcome:
    outcome.command = status
    outcome.rows_affected = rows_affected(status)
    outcome.elapsed_ms = (time.perf_counter() - started) * 1000
    return outcome


async def _run_fast(
    conn: GuardedConnection, statement: Statement, caps: Caps, wait: float, *, in_transaction: bool = True
) -> Outcome:
    """Run one statement through asyncpg's statement cache (inside a transaction the unnamed portal survives Sync,
    so further batches come from the same portal)."""
    started = time.perf_counter()
    state = await conn._get_statement(statement.sql, wait)
    args = param_values(state._get_parameters(), statement.params)
    attributes = state._get_attributes()
    if not attributes:
        _, status, _ = await _bind_execute(conn, state, args, 0, wait)
        return _no_rows(Outcome(), status.decode() if status else "", started)
    shape = shape_of(attributes)
    sql, portal_state = statement.sql, state
    if statement.query and shape.wrapped:
        wrapper = shape.wrapper(statement.sql, caps)
        found = await _wrapped_or_none(
            conn, wrapper, lambda text: conn._get_statement(text, wait), in_transaction=in_transaction
        )
        if found is not None:
            sql, portal_state = wrapper, found
        elif not state.name:
            portal_state = await conn._get_statement(statement.sql, wait)  # the savepoint ended the unnamed one
    wrapped = sql is not statement.sql
    collector = Collector(shape, caps, wrapped=wrapped, started=started)
    limit = shape.batch(caps, wrapped=wrapped)
    with _positions_in(statement.sql, sql):
        records, _, completed = await _bind_execute(conn, portal_state, args, limit, wait)
        while collector.add_all(records) and not completed:
            records, _, completed = await conn._protocol.execute(portal_state, "", limit, True, wait)
    return collector.finish(statement)


async def _read_at_once(conn: GuardedConnection, statement: Statement, caps: Caps, wait: float) -> Outcome | None:
    """Read ``statement`` as one implicit read-only transaction (Bind, Execute for ``max_rows + 1`` rows, Sync) on
    an armed connection; None, with nothing run, when its rows cannot come in one batch (then the caller opens a
    transaction). The statement is parsed outside any transaction (asyncpg caches it: no round trip when warm)."""
    started = time.perf_counter()
    state = await conn._get_statement(statement.sql, wait)
    args = param_values(state._get_parameters(), statement.params)
    shape = shape_of(state._get_attributes())
    sql, portal_state = statement.sql, state
    if shape.wrapped:
        wrapper = shape.wrapper(statement.sql, caps)
        found = await _wrapped_or_none(
            conn, wrapper, lambda text: conn._get_statement(text, wait), in_transaction=False
        )
        if found is None:
            return None
        sql, portal_state = wrapper, found
    if shape.batch(caps, wrapped=shape.wrapped) <= caps.max_rows:
        return None
    collector = Collector(shape, caps, wrapped=shape.wrapped, started=started)
    with _positions_in(statement.sql, sql):
        records, _, _ = await _bind_execute(conn, portal_state, args, caps.max_rows + 1, wait)
    collector.add_all(records)
    return collector.finish(statement)


async def _run_public(
    conn: GuardedConnection, statement: Statement, caps: Caps, wait: float, *, in_transaction: bool = True
) -> Outcome:
    """Run one statement with asyncpg's public API (also outside a transaction)."""
    started = time.perf_counter()
    stmt = await conn.prepare(statement.sql)
    args = param_values(stmt.get_parameters(), statement.params)
    attributes = stmt.get_attributes()
    if not attributes:
        await stmt.fetch(*args, timeout=wait)
        return _no_rows(Outcome(), stmt.get_statusmsg() or "", started)
    shape = shape_of(attributes)
    if statement.query and shape.wrapped:
        found = await _wrapped_or_none(
            conn, shape.wrapper(statement.sql, caps), conn.prepare, in_transaction=in_transaction
        )
        stmt = found if found is not None else stmt
    wrapped = stmt.get_query() != statement.sql
    collector = Collector(shape, caps, wrapped=wrapped, started=started)
    with _positions_in(statement.sql, stmt.get_query()):
        async for record in stmt.cursor(*args, prefetch=shape.batch(caps, wrapped=wrapped), timeout=wait):
            if not collector.add(record):
                break
    return collector.finish(statement)


@contextmanager
def _positions_in(sql: str, sent: str) -> Iterator[None]:
    """Errors of a wrapped read point into the caller's text, not into the wrapper."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        position = getattr(exc, "position", None)
        if sent != sql and position:
            exc.position = source_position(sent, sql, int(position))
        raise


async def _roll_back_quietly(conn: GuardedConnection, *, pooled: bool, read_only: bool = False) -> None:
    """End a call's transaction by rolling it back, so the connection goes back to the pool clean."""
    try:
        if conn.is_closed():
            return
        batch = session.end_of_read(pooled=pooled, read_only=read_only)
        await _end(conn, batch, wait=_QUIET_WAIT, pooled=pooled)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        return  # broken, or not clean: the connection stays dirty and is closed on release


_QUIET_WAIT = 10.0


async def _hold(conn: GuardedConnection, hold: Sequence[Held], wait: float, *, lock: bool) -> None:
    """Lock ``hold``'s lockable relations by name (``lock``: inside the call's transaction, until it ends; ROW
    EXCLUSIVE, which any role that may write a table or owns it may take, and which makes a rename wait), then raise
    ``ConfirmationError`` if any name resolves to another OID (or to none) than the one the human was shown."""
    lockable = [held for held in hold if held.lockable]
    if lock and lockable:
        # Only what the role may lock (a role confirmed to GRANT on a table may hold no write privilege on it);
        # whatever else is still checked below.
        may = await conn.fetchval(_MAY_LOCK_SQL, [held.oid for held in lockable], timeout=wait)
        names = [held.sql_name for held, allowed in zip(lockable, may, strict=True) if allowed]
        if names:
            await conn.execute(f"LOCK TABLE {', '.join(names)} IN ROW EXCLUSIVE MODE", timeout=wait)
    moved = await conn.fetch(
        _HELD_SQL, [h.kind for h in hold], [h.sql_name for h in hold], [h.oid for h in hold], timeout=wait
    )
    if moved:
        moved_names = ", ".join(hold[int(row["i"]) - 1].sql_name for row in moved)
        raise ConfirmationError(
            f"{moved_names} is another object now than the one the user confirmed (renamed, dropped or replaced since "
            "they were asked); nothing ran. Run the tool again to ask about the objects as they are now."
        )


_MAY_LOCK_SQL = """
SELECT array_agg(coalesce(pg_catalog.has_table_privilege(o::oid, 'INSERT, UPDATE, DELETE, TRUNCATE'), false) ORDER BY i)
FROM unnest($1::bigint[]) WITH ORDINALITY AS h(o, i)
"""
_HELD_SQL = """
SELECT h.i FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY AS h(kind, name, oid, i)
WHERE CASE h.kind WHEN 'schema' THEN pg_catalog.to_regnamespace(h.name)::oid
                  ELSE pg_catalog.to_regclass(h.name)::oid END IS DISTINCT FROM h.oid::oid
"""


_BROKEN = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    ConnectionError,
)
_STALE = (asyncpg.InvalidCachedStatementError, asyncpg.OutdatedSchemaCacheError)


def map_error(exc: BaseException, *, statement_index: int | None = None) -> NeonMCPError:
    """Translate an asyncpg or socket exception into the matching ``NeonMCPError``."""
    if isinstance(exc, NeonMCPError):
        return exc
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return UnknownDatabase(str(exc), sqlstate=exc.sqlstate)
    if isinstance(exc, (*_BROKEN, OSError, TimeoutError)):
        message = str(exc) or type(exc).__name__
        return ConnectionFailed(f"the database connection failed: {message}", statement_index=statement_index)
    if isinstance(exc, asyncpg.PostgresError):
        position = getattr(exc, "position", None)
        hint = getattr(exc, "hint", None)
        if isinstance(exc, asyncpg.QueryCanceledError) and "statement timeout" in str(exc):
            hint = hint or "The statement ran past statement_timeout: add a LIMIT or an index, or narrow the query."
        if isinstance(exc, asyncpg.LockNotAvailableError):
            hint = hint or "Another session holds a conflicting lock; retry later or find the blocker in pg_locks."
        return DatabaseError(
            getattr(exc, "message", None) or str(exc),  # str() repeats DETAIL and HINT, which are kept apart here
            sqlstate=exc.sqlstate,
            detail=getattr(exc, "detail", None),
            hint=hint,
            position=int(position) if position else None,
            statement_index=statement_index,
            context=getattr(exc, "context", None),
        )
    if isinstance(exc, asyncpg.DataError | asyncpg.InterfaceError):
        prefix = f"statement {statement_index + 1}: " if statement_index is not None else ""
        return InvalidInput(f"{prefix}{exc}")
    raise TypeError(f"no mapping for {type(exc).__name__}") from exc


class Databases:
    """A pool per database of one PostgreSQL server, created on first use and closed by ``close``.

    ``base_dsn`` names the server and the default database; ``database`` arguments swap the database only.

    Behind a transaction-mode pooler (PgBouncer, as Neon's pooled URIs are) pass ``cache_statements=False`` (asyncpg
    then uses unnamed statements only) and ``direct``: the few statements that must run outside a transaction, with
    session settings, go over a direct connection instead, so that no session state is left on a shared server
    connection; given ``direct``, the connections are taken to be pooled (``pooled``: see ``server.sql.session``
    for what that changes at the end of a call). ``wake`` is called when no connection can be made (a suspended
    compute): it starts the compute, and
    connecting is retried with backoff for ``wake_patience`` seconds. Nothing of the caller's has been sent when a
    connection is retried, so writes are retried too. ``clock`` and ``sleep`` pace those retries (tests inject theirs).
    """

    def __init__(
        self,
        base_dsn: str,
        guards: Guards,
        *,
        pool_size: int = 4,
        cache_statements: bool = True,
        connect_timeout: float = 10.0,
        wake: Callable[[], Awaitable[None]] | None = None,
        wake_patience: float = 60.0,
        direct: Callable[[], Awaitable[Databases]] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._base = urlsplit(base_dsn)
        self.default_database = self._base.path.lstrip("/") or (self._base.username or "postgres")
        self.guards = guards
        self._pool_size = pool_size
        self._cache_statements = cache_statements
        self._connect_timeout = connect_timeout
        self._wake = wake
        self._wake_patience = wake_patience
        self._direct = direct
        self._clock = clock
        self._sleep = sleep
        self.pooled = direct is not None
        self._pools: dict[str, asyncpg.Pool] = {}
        self._lock = asyncio.Lock()
        self.fast_path = _FAST and cache_statements
        self._ending: set[asyncio.Task[None]] = set()

    implicit_reads = True
    """Whether a single query on a direct connection is read as one implicit read-only transaction (one round trip)
    rather than in a transaction of its own (three); tests switch it off to run both paths."""

    def dsn(self, database: str | None = None) -> str:
        name = database or self.default_database
        return urlunsplit(self._base._replace(path="/" + quote(name, safe="")))

    async def pool(self, database: str | None = None) -> asyncpg.Pool:
        """The pool for ``database`` (default: the URL's), connecting once to fail fast on a bad name."""
        name = database or self.default_database
        pool = self._pools.get(name)
        if pool is not None:
            return pool
        try:
            async with self._lock:
                pool = self._pools.get(name)
                if pool is None:
                    pool = await self._create_pool(name)
                    self._pools[name] = pool
        except UnknownDatabase as exc:
            known = await self._database_names(exclude=name)
            raise UnknownDatabase(
                f"database {name!r} does not exist; databases on this server: {', '.join(known) or '(none visible)'}",
                sqlstate=exc.sqlstate,
            ) from exc
        return pool

    async def _create_pool(self, name: str) -> asyncpg.Pool:
        # A compute that may scale to zero (``wake`` given) gets no connection floor: asyncpg would otherwise keep
        # reconnecting to restore it, waking the compute again and again. One connection is still made at once,
        # so that a bad name or password fails here.
        scales_to_zero = self._wake is not None
        pool: asyncpg.Pool | None = None
        try:
            pool = await asyncpg.create_pool(
                self.dsn(name),
                min_size=0 if scales_to_zero else 1,
                max_size=self._pool_size,
                max_inactive_connection_lifetime=60.0 if scales_to_zero else 300.0,
                connection_class=GuardedConnection,
                init=None if self.pooled else self._arm,
                statement_cache_size=100 if self._cache_statements else 0,
                timeout=self._connect_timeout,
                server_settings={"application_name": "neon-mcp"},
            )
            if scales_to_zero:
                await pool.release(await pool.acquire())
        except Exception as exc:
            if pool is not None:
                pool.terminate()
            raise map_error(exc) from exc
        return pool

    async def _database_names(self, *, exclude: str) -> list[str]:
        if exclude == self.default_database:
            return []
        try:
            pool = await self.pool(None)
            rows = await pool.fetch(
                "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
            )
        except NeonMCPError:
            return []
        return [row[0] for row in rows]

    @asynccontextmanager
    async def connection(self, database: str | None = None) -> AsyncIterator[GuardedConnection]:
        """A pooled connection for the server's own catalog queries (no user SQL: nothing to clean up after it)."""
        pool, conn = await self._begin(database, None)
        try:
            yield conn
        except (TimeoutError, OSError, *_BROKEN) as exc:
            raise map_error(exc) from exc
        finally:
            await _give_back(pool, conn)

    async def _begin(self, database: str | None, opener: str | None) -> tuple[asyncpg.Pool, GuardedConnection]:
        """A connection with ``opener`` (the guarded transaction's preamble) already run on it.

        Failing to connect, or finding a pooled connection dead before anything of the caller's was sent, is retried:
        once at once, and with ``wake`` (a compute that may be suspended) after waking it, with backoff.
        """
        deadline: float | None = None
        attempt = 0
        waits = 0
        while True:
            attempt += 1
            try:
                pool = await self.pool(database)
                conn: GuardedConnection = await pool.acquire()
            except (ConnectionFailed, TimeoutError, OSError, *_BROKEN) as exc:
                failure = map_error(exc)
            else:
                if opener is None:
                    return pool, conn
                conn.mark_dirty()
                try:
                    await conn.execute(opener)
                    return pool, conn
                except (asyncpg.InterfaceError, OSError, TimeoutError, *_BROKEN) as exc:
                    failure = map_error(exc)
                    await _give_back(pool, conn)
                except asyncpg.PostgresError as exc:
                    await _give_back(pool, conn)
                    raise map_error(exc) from exc
            if self._wake is None:
                if attempt >= 2:
                    raise failure
                continue
            if deadline is None:
                logger.info("cannot connect (%s); waking the compute", failure)
                await self._wake()
                deadline = self._clock() + self._wake_patience
                continue
            delay = backoff(waits, base=_WAKE_RETRY_BASE, cap=_WAKE_RETRY_CAP)
            if self._clock() + delay > deadline:
                raise ConnectionFailed(
                    f"{failure} (still unreachable {self._wake_patience:g} s after the compute was started)"
                ) from failure
            await self._sleep(delay)
            waits += 1

    async def run(
        self,
        statements: Sequence[Statement],
        *,
        read_only: bool,
        caps: Caps,
        database: str | None = None,
        check: Check | None = None,
        hold: Sequence[Held] = (),
    ) -> list[Outcome]:
        """Run ``statements`` all or nothing in one guarded transaction (or alone, outside one, if autocommit).

        ``check`` (for writes): each UPDATE, DELETE and MERGE with a known target is measured in the transaction
        (``server.sql.effects``), and ``check`` receives the effects that touch a whole table, if any, before the
        commit; whatever it raises rolls the transaction back (nothing is applied) and is raised.

        ``hold`` (a confirmed change's objects): before the first statement, in the same transaction, each lockable
        one is locked by name and every name must still resolve to its OID; otherwise nothing runs and
        ``ConfirmationError`` says which changed hands. A statement that runs outside a transaction is checked just
        before it runs (nothing can be held for it).

        A read whose connection broke is retried once on a fresh connection; a write is never retried, and its
        error says whether it can have committed.
        """
        attempts = 2
        for attempt in range(attempts):
            try:
                return await self._run_once(
                    statements, read_only=read_only, caps=caps, database=database, check=check, hold=hold
                )
            except _STALE:
                if attempt + 1 == attempts:
                    raise
                logger.info("prepared statement went stale after a schema change; retrying the call")
            except ConnectionFailed:
                if not read_only or attempt + 1 == attempts:
                    raise
                logger.info("connection broke during a read; retrying once on a fresh connection")
        raise AssertionError("unreachable")

    async def _run_once(
        self,
        statements: Sequence[Statement],
        *,
        read_only: bool,
        caps: Caps,
        database: str | None,
        check: Check | None,
        hold: Sequence[Held] = (),
    ) -> list[Outcome]:
        wait = self.guards.statement_timeout + 5
        autocommit = len(statements) == 1 and statements[0].autocommit
        if autocommit and self._direct is not None:
            direct = await self._direct()
            return await direct._run_once(
                statements, read_only=read_only, caps=caps, database=database, check=None, hold=hold
            )
        armed = not self.pooled
        at_once = self._at_once(statements, read_only=read_only)
        if autocommit:
            opener: str | None = self.guards.session(armed=armed)
        else:
            opener = None if at_once else self.guards.preamble(read_only=read_only, armed=armed)
        pool, conn = await self._begin(database, opener)
        release = True
        outcomes: list[Outcome] = []
        index = 0
        try:
            if at_once:
                conn.mark_dirty()
                outcome = await _read_at_once(conn, statements[0], caps, wait)
                if outcome is not None:
                    # Answer now; look at what the read left in the session before the connection serves again.
                    release = False
                    self._end_later(pool, conn, settle=True)
                    return [outcome]
                await conn.execute(self.guards.preamble(read_only=True, armed=armed))  # its rows take several batches
            if hold:
                try:
                    await _hold(conn, hold, wait, lock=not (autocommit or read_only))  # no LOCK when read-only
                except ConfirmationError:
                    if not autocommit:
                        await _roll_back_quietly(conn, pooled=self.pooled)
                    raise  # outside a transaction the connection stays dirty: closed on release
            if autocommit:
                outcomes.append(await _run_public(conn, statements[0], caps, wait, in_transaction=False))
                reset = session.reset_session(pooled=self.pooled, arm=self._arm_sql)
                await _end(conn, reset, wait=wait, pooled=self.pooled)
                return outcomes
            run_one = _run_fast if self.fast_path else _run_public
            effects: list[Effect] = []
            for index, statement in enumerate(statements):
                outcome = await run_one(conn, statement, caps, wait)
                outcomes.append(outcome)
                if check is not None and statement.verb in _MEASURED and statement.target and outcome.rows_affected:
                    effect = await measure(
                        conn, index, statement.verb or "", statement.target, outcome.rows_affected, wait
                    )
                    if effect is not None and effect.whole_table:
                        effects.append(effect)
            if check is not None:
                try:
                    check(effects)
                except BaseException:
                    await _roll_back_quietly(conn, pooled=self.pooled)
                    raise
            if read_only:
                # Nothing to commit: answer now and roll back in the background (one round trip less to wait for).
                release = False
                self._end_later(pool, conn)
            else:
                end = session.end_of_write(pooled=self.pooled, arm=self._arm_sql)
                await _end(conn, end, wait=wait, pooled=self.pooled)
            return outcomes
        except _STALE:
            await _roll_back_quietly(conn, pooled=self.pooled)
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.DataError, OSError) as exc:
            if not autocommit:
                await _roll_back_quietly(conn, pooled=self.pooled)
            mapped = map_error(exc, statement_index=index if len(statements) > 1 else None)
            if isinstance(mapped, ConnectionFailed) and not read_only:
                mapped.message += (
                    " (the transaction had not committed, so nothing was applied)"
                    if not autocommit
                    else " (the statement may or may not have completed)"
                )
            raise mapped from exc
        finally:
            if release:
                await _give_back(pool, conn)

    def _at_once(self, statements: Sequence[Statement], *, read_only: bool) -> bool:
        """Whether this call is a read to run as one implicit transaction (see ``_read_at_once``): a single query,
        on a direct connection whose session holds the guards, through asyncpg's statement cache."""
        if not (read_only and self.implicit_reads and self.fast_path and not self.pooled and len(statements) == 1):
            return False
        statement = statements[0]
        # set_config can change a setting STATE does not watch; such a read gets a transaction to roll back.
        return statement.query and "set_config" not in statement.sql.lower()

    @property
    def _arm_sql(self) -> str:
        """What a clean-up batch sets again on a direct connection (its RESET ALL clears the armed guards)."""
        return "" if self.pooled else self.guards.arm()

    async def _arm(self, conn: GuardedConnection) -> None:
        """Arm a new direct connection (the pool's ``init``): the guards become its session's, and the state a read
        must leave it in is read once."""
        await conn.execute(self._arm_sql)
        conn.armed = tuple(await conn.fetchrow(session.STATE))

    async def _settle(self, conn: GuardedConnection) -> None:
        """After a read run as one implicit transaction: keep the connection if its session is as armed, else reset
        and arm it again (closed instead, if even that cannot clear it)."""
        wait = self.guards.statement_timeout + 5
        if tuple(await conn.fetchrow(session.STATE, timeout=wait)) == conn.armed:
            conn.mark_dirty(False)
            return
        logger.info("a read changed its session; resetting the connection")
        await _end(conn, session.reset_session(pooled=False, arm=self._arm_sql), wait=wait, pooled=False)

    def _end_later(self, pool: asyncpg.Pool, conn: GuardedConnection, *, settle: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self._end_read(pool, conn, settle=settle))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end_read(self, pool: asyncpg.Pool, conn: GuardedConnection, *, settle: bool) -> None:
        try:
            if settle:
                await self._settle(conn)
            else:
                await _roll_back_quietly(conn, pooled=self.pooled, read_only=True)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
            logger.info("could not end a read cleanly; closing its connection", exc_info=True)
        finally:
            await _give_back(pool, conn)

    async def read_catalog(
        self, database: str | None, queries: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[list[asyncpg.Record]]:
        """Run the server's own read queries in one guarded read-only transaction; rows of each query in order."""
        timeout = self.guards.statement_timeout + 5
        pool, conn = await self._begin(database, self.guards.preamble(read_only=True, armed=not self.pooled))
        try:
            # conn.fetch, not conn.prepare: prepare() bypasses asyncpg's statement cache, so every call parsed and
            # planned each query again in a round trip of its own.
            results = [await conn.fetch(sql, *args, timeout=timeout) for sql, args in queries]
            # The server's own queries run no user code: a rollback is all there is to end.
            await conn.execute("ROLLBACK")
            conn.mark_dirty(False)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise map_error(exc) from exc
        finally:
            await _give_back(pool, conn)
        return results

    async def close(self) -> None:
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, OSError):
                pool.terminate()

    @asynccontextmanager
    async def rolled_back(
        self, database: str | None, *, read_only: bool, caps: Caps
    ) -> AsyncIterator[Callable[[Statement], Awaitable[Outcome]]]:
        """One guarded transaction on one connection that is always rolled back, for work that must leave nothing.

        Yields ``run(statement)``, which runs one statement in the transaction (prepared, parameters coerced, rows
        capped) and raises the mapped error. The block's statements run in order on the same backend: ``EXPLAIN
        ANALYZE`` of a write, hypopg's hypothetical indexes, a statement prepared to explain its generic plan. Session
        state the block creates (hypothetical indexes, prepared statements) it must remove before it ends. On a normal
        exit the transaction is rolled back (and advisory locks released); if the block raises, the connection is
        closed instead of going back to the pool, since what the block could not clean up in an aborted transaction
        must not reach the next caller. Never retried.
        """
        timeout = self.guards.statement_timeout + 5
        pool, conn = await self._begin(database, self.guards.preamble(read_only=read_only, armed=not self.pooled))
        run_one = _run_fast if self.fast_path else _run_public

        async def run(statement: Statement) -> Outcome:
            try:
                return await run_one(conn, statement, caps, timeout)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.DataError, OSError) as exc:
                raise map_error(exc) from exc

        try:
            yield run
            try:
                batch = session.end_of_read(pooled=self.pooled, read_only=read_only)
                await _end(conn, batch, wait=timeout, pooled=self.pooled)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                raise map_error(exc) from exc
        finally:
            # On an exception the connection is still dirty: it is closed, not pooled.
            await _give_back(pool, conn)
