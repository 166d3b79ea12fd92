"""PostgreSQL access: lazily created pools, guarded transactions, capped reads, and the one asyncpg error mapping.

Every call runs in a transaction this module opens: ``READ ONLY`` for reads, with ``SET LOCAL statement_timeout``,
``lock_timeout`` and ``idle_in_transaction_session_timeout``. User SQL is sent one statement per prepared statement
(extended protocol), never as a script. Rows are read through a portal, at most ``max_rows + 1`` of them and no more
than a byte budget, so a ``SELECT *`` on a huge table costs what the answer costs, not what the table holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from ..errors import ConnectionFailed, DatabaseError, InvalidInput, NeonMCPError, UnknownDatabase
from ..retry import Clock, Sleep, backoff
from .values import coerce_param, estimate_size, to_json

__all__ = [
    "Caps",
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
    """Limits every transaction sets with ``SET LOCAL`` (seconds)."""

    statement_timeout: float
    lock_timeout: float
    idle_in_transaction_timeout: float

    def preamble(self, *, read_only: bool) -> str:
        """The server's own batch that opens a guarded transaction (one round trip).

        The trailing ``SELECT`` takes the transaction's first snapshot: after it, PostgreSQL refuses
        ``SET TRANSACTION READ WRITE``, so a read-only transaction stays read-only even if a statement slipped past
        the policy.
        """
        mode = "READ ONLY" if read_only else "READ WRITE"
        return (
            f"BEGIN {mode}; "
            f"SET LOCAL statement_timeout = {_ms(self.statement_timeout)}; "
            f"SET LOCAL lock_timeout = {_ms(self.lock_timeout)}; "
            f"SET LOCAL idle_in_transaction_session_timeout = {_ms(self.idle_in_transaction_timeout)}; "
            "SELECT 1"
        )

    def session(self) -> str:
        """The same limits as session settings, for the few statements that cannot run in a transaction."""
        return (
            f"SET statement_timeout = {_ms(self.statement_timeout)}; "
            f"SET lock_timeout = {_ms(self.lock_timeout)}; "
            f"SET idle_in_transaction_session_timeout = {_ms(self.idle_in_transaction_timeout)}"
        )


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


@dataclass(frozen=True, slots=True)
class Caps:
    """How much of a result is returned."""

    max_rows: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement to run, with its ``$n`` parameter values (JSON values, coerced to the parameter types)."""

    sql: str
    params: Sequence[Any] = ()
    autocommit: bool = False
    verb: str | None = None
    """INSERT, UPDATE, DELETE or MERGE for a data-changing statement (its RETURNING rows count as affected)."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str


@dataclass(slots=True)
class Outcome:
    """What one statement returned."""

    columns: list[Column] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False
    command: str = ""
    rows_affected: int | None = None
    elapsed_ms: float = 0.0

    @property
    def returns_rows(self) -> bool:
        return bool(self.columns)


class GuardedConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that resets itself on release only when a call did not end cleanly.

    The executor ends each call with its own batch that commits or rolls back and clears session state, so the
    pool's reset-on-release query (another round trip) is skipped unless the call ended abnormally (``dirty``).
    """

    dirty = False

    def mark_dirty(self, dirty: bool = True) -> None:
        """Whether the pool must reset this connection on release."""
        self.dirty = dirty

    def get_reset_query(self) -> str:
        if not self.dirty:
            return ""
        self.dirty = False
        # The call may have died inside its transaction; asyncpg's reset query assumes none is open.
        return "ROLLBACK; " + str(super().get_reset_query())


def _element_type(typ: Any) -> str | None:
    """The element type's name of an array type (asyncpg names arrays ``int4[]``; pg_type names them ``_int4``)."""
    if typ.kind != "array":
        return None
    name = str(typ.name)
    return name[:-2] if name.endswith("[]") else name.removeprefix("_")


def _type_label(typ: Any) -> str:
    element = _element_type(typ)
    return f"{element}[]" if element is not None else str(typ.name)


def _converter(type_name: str) -> Callable[[Any], Any]:
    if type_name in ("json", "jsonb"):
        return lambda value: None if value is None else json.loads(value)
    return to_json


def _param_values(types: Sequence[Any], params: Sequence[Any]) -> list[Any]:
    if len(params) != len(types):
        expected = f"{len(types)} parameter{'s' if len(types) != 1 else ''}"
        if types:
            expected += f" (${1}…${len(types)})" if len(types) > 1 else " ($1)"
        raise InvalidInput(f"the statement has {expected} but {len(params)} value(s) were given in params")
    values = []
    for index, (value, typ) in enumerate(zip(params, types, strict=True), start=1):
        values.append(coerce_param(value, index=index, type_name=typ.name, element_type=_element_type(typ)))
    return values


def _rows_affected(command: str) -> int | None:
    parts = command.split()
    if parts and parts[0] in ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "SELECT", "MOVE", "FETCH"):
        try:
            return int(parts[-1])
        except ValueError:
            return None
    return None


class _Collector:
    """Turns records into JSON-safe rows until the row cap or the byte budget is reached."""

    def __init__(self, outcome: Outcome, attributes: Sequence[Any], caps: Caps) -> None:
        self.outcome = outcome
        self.caps = caps
        self.used = 0
        outcome.columns = [Column(attr.name, _type_label(attr.type)) for attr in attributes]
        self.converters = [_converter(attr.type.name) for attr in attributes]

    def add(self, record: Any) -> bool:
        """Keep ``record``; False once the answer is full (the outcome is then marked truncated)."""
        rows = self.outcome.rows
        if len(rows) >= self.caps.max_rows:
            self.outcome.truncated = True
            return False
        row = [convert(value) for convert, value in zip(self.converters, record, strict=True)]
        size = estimate_size(row)
        if self.used + size > self.caps.max_bytes:
            self.outcome.truncated = True
            if not rows:
                rows.append(_shrink(row, self.caps.max_bytes))
            return False
        self.used += size
        rows.append(row)
        return True

    def finish(self, statement: Statement, started: float) -> Outcome:
        outcome = self.outcome
        count = len(outcome.rows)
        outcome.command = f"{statement.verb or 'SELECT'} {count}"
        if statement.verb and not outcome.truncated:
            outcome.rows_affected = count
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000
        return outcome


# The fast path reuses asyncpg's own statement cache and executes the unnamed portal with a row limit: one round trip
# for a warm statement instead of three (Parse, Bind/Execute, Close) through the public PreparedStatement API.
# It relies on three private asyncpg methods, so it is used only when they exist; the public path is the fallback.
_FAST = all(hasattr(asyncpg.Connection, name) for name in ("_get_statement", "_execute", "_protocol"))
_FIRST_BATCH = 100


async def _run_fast(conn: GuardedConnection, statement: Statement, caps: Caps, wait: float) -> Outcome:
    """Run one statement inside the open transaction (the unnamed portal survives Sync there)."""
    started = time.perf_counter()
    state = await conn._get_statement(statement.sql, wait)
    args = _param_values(state._get_parameters(), statement.params)
    attributes = state._get_attributes()
    outcome = Outcome()
    if not attributes:
        _, status, _ = await conn._execute(statement.sql, args, 0, wait, return_status=True)
        outcome.command = status.decode() if status else ""
        outcome.rows_affected = _rows_affected(outcome.command)
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000
        return outcome
    collector = _Collector(outcome, attributes, caps)
    limit = min(caps.max_rows + 1, _FIRST_BATCH)
    records, _, completed = await conn._execute(statement.sql, args, limit, wait, return_status=True)
    while True:
        if not all(collector.add(record) for record in records) or completed:
            break
        records, _, completed = await conn._protocol.execute(state, "", limit, True, wait)
    return collector.finish(statement, started)


async def _run_public(conn: GuardedConnection, statement: Statement, caps: Caps, wait: float) -> Outcome:
    """Run one statement with asyncpg's public API (also outside a transaction)."""
    started = time.perf_counter()
    stmt = await conn.prepare(statement.sql)
    args = _param_values(stmt.get_parameters(), statement.params)
    attributes = stmt.get_attributes()
    outcome = Outcome()
    if not attributes:
        await stmt.fetch(*args, timeout=wait)
        outcome.command = stmt.get_statusmsg() or ""
        outcome.rows_affected = _rows_affected(outcome.command)
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000
        return outcome
    collector = _Collector(outcome, attributes, caps)
    async for record in stmt.cursor(*args, prefetch=min(caps.max_rows + 1, 128), timeout=wait):
        if not collector.add(record):
            break
    return collector.finish(statement, started)


def _shrink(row: list[Any], budget: int) -> list[Any]:
    """The first row alone is over the byte budget: cut its long text values so that something can be shown."""
    share = max(16, budget // max(1, len(row)))
    out: list[Any] = []
    for value in row:
        text = value if isinstance(value, str) else json.dumps(value)
        out.append(value if len(text) <= share else text[:share] + f"… ({len(text)} chars)")
    return out


# The server's own batches that end a call. Rolling back undoes session SETs of a read; after a commit, RESET ALL does.
# Advisory locks survive both, so they are released too (the policy forbids taking them; this is the second layer).
_END_READ = "ROLLBACK; SELECT pg_catalog.pg_advisory_unlock_all()"
_END_WRITE = "COMMIT; RESET ALL; SELECT pg_catalog.pg_advisory_unlock_all()"


async def _roll_back_quietly(conn: GuardedConnection) -> None:
    """End a failed call's transaction ourselves, so the connection goes back to the pool clean."""
    try:
        if conn.is_closed():
            return
        await conn.execute(_END_READ)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        return  # broken or released: the pool resets or discards it
    conn.mark_dirty(False)


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
    connection. ``wake`` is called when no connection can be made (a suspended compute): it starts the compute, and
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
        self._pools: dict[str, asyncpg.Pool] = {}
        self._lock = asyncio.Lock()
        self.fast_path = _FAST and cache_statements
        self._ending: set[asyncio.Task[None]] = set()

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
        """A pooled connection. Callers that open a transaction mark it dirty first and clean when they end it."""
        pool, conn = await self._begin(database, None)
        try:
            yield conn
        except (TimeoutError, OSError, *_BROKEN) as exc:
            raise map_error(exc) from exc
        finally:
            await pool.release(conn)

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
                    await pool.release(conn)
                except asyncpg.PostgresError as exc:
                    await pool.release(conn)
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
    ) -> list[Outcome]:
        """Run ``statements`` all or nothing in one guarded transaction (or alone, outside one, if autocommit).

        A read whose connection broke is retried once on a fresh connection; a write is never retried, and its
        error says whether it can have committed.
        """
        attempts = 2
        for attempt in range(attempts):
            try:
                return await self._run_once(statements, read_only=read_only, caps=caps, database=database)
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
        self, statements: Sequence[Statement], *, read_only: bool, caps: Caps, database: str | None
    ) -> list[Outcome]:
        timeout = self.guards.statement_timeout + 5
        autocommit = len(statements) == 1 and statements[0].autocommit
        if autocommit and self._direct is not None:
            direct = await self._direct()
            return await direct._run_once(statements, read_only=read_only, caps=caps, database=database)
        opener = self.guards.session() if autocommit else self.guards.preamble(read_only=read_only)
        pool, conn = await self._begin(database, opener)
        release = True
        outcomes: list[Outcome] = []
        index = 0
        try:
            if autocommit:
                outcomes.append(await _run_public(conn, statements[0], caps, timeout))
                return outcomes  # still dirty: the session settings are reset on release
            run_one = _run_fast if self.fast_path else _run_public
            for index, statement in enumerate(statements):  # noqa: B007
                outcomes.append(await run_one(conn, statement, caps, timeout))
            if read_only:
                # Nothing to commit: answer now and roll back in the background (one round trip less to wait for).
                release = False
                self._end_later(pool, conn)
            else:
                await conn.execute(_END_WRITE)
                conn.mark_dirty(False)
            return outcomes
        except _STALE:
            await _roll_back_quietly(conn)
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.DataError, OSError) as exc:
            if not autocommit:
                await _roll_back_quietly(conn)
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
                await pool.release(conn)

    def _end_later(self, pool: asyncpg.Pool, conn: GuardedConnection) -> None:
        task = asyncio.get_running_loop().create_task(self._end_read(pool, conn))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end_read(self, pool: asyncpg.Pool, conn: GuardedConnection) -> None:
        try:
            await _roll_back_quietly(conn)
        finally:
            await pool.release(conn)

    async def read_catalog(
        self, database: str | None, queries: Sequence[tuple[str, Sequence[Any]]]
    ) -> list[list[asyncpg.Record]]:
        """Run the server's own read queries in one guarded read-only transaction; rows of each query in order."""
        timeout = self.guards.statement_timeout + 5
        pool, conn = await self._begin(database, self.guards.preamble(read_only=True))
        try:
            # conn.fetch, not conn.prepare: prepare() bypasses asyncpg's statement cache, so every call parsed and
            # planned each query again in a round trip of its own.
            results = [await conn.fetch(sql, *args, timeout=timeout) for sql, args in queries]
            await conn.execute("ROLLBACK")
            conn.mark_dirty(False)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            raise map_error(exc) from exc
        finally:
            await pool.release(conn)
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
        pool, conn = await self._begin(database, self.guards.preamble(read_only=read_only))
        run_one = _run_fast if self.fast_path else _run_public

        async def run(statement: Statement) -> Outcome:
            try:
                return await run_one(conn, statement, caps, timeout)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.DataError, OSError) as exc:
                raise map_error(exc) from exc

        try:
            yield run
            try:
                await conn.execute(_END_READ)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                raise map_error(exc) from exc
            conn.mark_dirty(False)
        except BaseException:
            conn.terminate()
            raise
        finally:
            await pool.release(conn)
