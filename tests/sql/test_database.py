"""The guarded executor on real PostgreSQL: caps, guards, error mapping, broken connections.

The attack tests here call the executor directly, with the SQL policy switched off (it is not involved at this layer),
to show what the database layer holds by itself: the read-only transaction with its first snapshot taken, one
statement per prepared statement, and the end-of-call reset.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from server.errors import ConnectionFailed, DatabaseError, InvalidInput, UnknownDatabase
from server.local_neon.clusters import free_port
from server.sql.database import Caps, Databases, Guards, Statement, redact_dsn
from tests.helpers import script, sql

pytestmark = pytest.mark.anyio

GUARDS = Guards(statement_timeout=2.0, lock_timeout=0.5, idle_in_transaction_timeout=10.0)
CAPS = Caps(max_rows=500, max_bytes=100_000)


@pytest.fixture(params=["one-round-trip", "fast-path", "public-api"])
async def databases(fresh_db: str, request: pytest.FixtureRequest) -> AsyncIterator[Databases]:
    """The executor: reads as one implicit transaction on an armed session; on asyncpg's statement cache (fast path)
    with a transaction per call; and on asyncpg's public API alone."""
    dbs = Databases(fresh_db, GUARDS, pool_size=2)
    dbs.fast_path = request.param != "public-api"
    dbs.implicit_reads = request.param == "one-round-trip"
    yield dbs
    await dbs.close()


def _statement(sql: str, *params: object) -> Statement:
    """A statement as the SQL service would pass it (a plain SELECT is a query)."""
    plain = sql.upper().startswith("SELECT") and " INTO " not in sql.upper()
    return Statement(sql, params, query=plain)


async def _read(dbs: Databases, query: str, *params: object) -> list[list[object]]:
    (outcome,) = await dbs.run([_statement(query, *params)], read_only=True, caps=CAPS)
    return outcome.rows


@pytest.fixture(scope="module")
async def million(pg_cluster: object) -> AsyncIterator[str]:
    """A database holding a 1,000,000-row table (built once for this module)."""
    from server.local_neon.clusters import Cluster

    assert isinstance(pg_cluster, Cluster)
    await script(pg_cluster.dsn(), "DROP DATABASE IF EXISTS million")
    await script(pg_cluster.dsn(), "CREATE DATABASE million")
    url = pg_cluster.dsn("million")
    await script(
        url,
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS payload, now() AS at FROM generate_series(1, 1000000) g",
    )
    yield url
    await script(pg_cluster.dsn(), "DROP DATABASE million WITH (FORCE)")


@pytest.mark.parametrize("fast_path", [True, False])
async def test_select_star_on_a_million_rows_is_capped(million: str, fast_path: bool) -> None:
    dbs = Databases(million, GUARDS)
    dbs.fast_path = fast_path
    try:
        started = time.perf_counter()
        (outcome,) = await dbs.run([_statement("SELECT * FROM big")], read_only=True, caps=CAPS)
        elapsed = time.perf_counter() - started
        (narrow,) = await dbs.run([_statement("SELECT * FROM big")], read_only=True, caps=Caps(500, 2_000))
    finally:
        await dbs.close()
    assert len(outcome.rows) == 500 and outcome.truncated
    assert outcome.command == "SELECT 500"
    assert elapsed < 5, "the cursor stops early; the table is never read whole"
    assert 0 < len(narrow.rows) < 40 and narrow.truncated, "the byte budget stops before the row cap"


async def test_rows_past_the_first_batch_are_read_from_the_same_portal(databases: Databases) -> None:
    (outcome,) = await databases.run(
        [_statement("SELECT g FROM generate_series(1, 1000) g")], read_only=True, caps=Caps(450, 1_000_000)
    )
    assert [row[0] for row in outcome.rows] == list(range(1, 451)) and outcome.truncated
    (whole,) = await databases.run(
        [_statement("SELECT g FROM generate_series(1, 250) g")], read_only=True, caps=Caps(450, 1_000_000)
    )
    assert len(whole.rows) == 250 and not whole.truncated and whole.command == "SELECT 250"


async def test_reads_run_read_only_even_without_the_policy(databases: Databases, fresh_db: str) -> None:
    await script(fresh_db, "CREATE TABLE t (a int); CREATE SEQUENCE s")
    attacks = [
        "INSERT INTO t VALUES (1)",
        "WITH x AS (INSERT INTO t VALUES (1) RETURNING a) SELECT * FROM x",
        "SELECT nextval('s')",
        "SELECT * INTO t2 FROM t",
        "SET TRANSACTION READ WRITE",
        "SELECT set_config('transaction_read_only', 'off', true)",
    ]
    for attack in attacks:
        with pytest.raises(DatabaseError) as caught:
            await databases.run([_statement(attack)], read_only=True, caps=CAPS)
        assert caught.value.sqlstate in ("25006", "0A000", "25001"), (attack, caught.value)
    assert (await sql(fresh_db, "SELECT count(*) FROM t"))[0][0] == 0


async def test_one_statement_per_message_even_without_the_policy(databases: Databases, fresh_db: str) -> None:
    await script(fresh_db, "CREATE TABLE victim (a int)")
    with pytest.raises((DatabaseError, InvalidInput)) as caught:
        await databases.run([_statement("SELECT 1; COMMIT; DROP TABLE victim")], read_only=True, caps=CAPS)
    assert "multiple commands" in str(caught.value)
    assert (await sql(fresh_db, "SELECT to_regclass('victim') IS NOT NULL"))[0][0]


async def test_advisory_locks_do_not_leak_into_the_pool(databases: Databases, fresh_db: str) -> None:
    await databases.run([_statement("SELECT pg_advisory_lock(4242)")], read_only=True, caps=CAPS)
    await asyncio.gather(*databases._ending)
    await databases.run([Statement("SELECT pg_advisory_lock(4243)")], read_only=False, caps=CAPS)
    free = await sql(fresh_db, "SELECT pg_try_advisory_lock(4242) AND pg_try_advisory_lock(4243)")
    assert free[0][0] is True


async def test_session_settings_do_not_leak_after_a_commit(databases: Databases) -> None:
    await databases.run(
        [Statement("SET work_mem = '77MB'"), Statement("CREATE TABLE w (a int)")], read_only=False, caps=CAPS
    )
    for _ in range(3):  # whichever pooled connection answers
        assert await _read(databases, "SHOW work_mem") != [["77MB"]]


async def test_statement_timeout_is_enforced_with_a_hint(databases: Databases) -> None:
    with pytest.raises(DatabaseError) as caught:
        await _read(databases, "SELECT pg_sleep(5)")
    assert caught.value.sqlstate == "57014"
    assert "statement_timeout" in str(caught.value)
    assert await _read(databases, "SELECT 1") == [[1]]


async def test_lock_timeout_reports_the_lock(databases: Databases, fresh_db: str) -> None:
    await script(fresh_db, "CREATE TABLE locked (a int)")
    holder = await asyncpg.connect(fresh_db)
    try:
        await holder.execute("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(DatabaseError) as caught:
            await databases.run([Statement("INSERT INTO locked VALUES (1)")], read_only=False, caps=CAPS)
    finally:
        await holder.close()
    assert caught.value.sqlstate == "55P03"
    assert "conflicting lock" in str(caught.value)


async def test_killed_backend_mid_query_then_the_next_call_succeeds(databases: Databases, fresh_db: str) -> None:
    async def kill_soon() -> None:
        await asyncio.sleep(0.3)
        await sql(
            fresh_db,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'neon-mcp' AND query LIKE '%pg_sleep(1.5)%' AND pid <> pg_backend_pid()",
        )

    killer = asyncio.create_task(kill_soon())
    # A read is retried once on a fresh connection: the call survives the kill.
    rows = await _read(databases, "SELECT true AS slept FROM pg_sleep(1.5)")
    await killer
    assert rows == [[True]]

    async def kill_write_soon() -> None:
        await asyncio.sleep(0.3)
        await sql(
            fresh_db,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'neon-mcp' AND query LIKE '%pg_sleep(1.6)%' AND pid <> pg_backend_pid()",
        )

    await script(fresh_db, "CREATE TABLE k (a int)")
    killer = asyncio.create_task(kill_write_soon())
    with pytest.raises(ConnectionFailed) as caught:
        await databases.run([Statement("INSERT INTO k SELECT 1 FROM pg_sleep(1.6)")], read_only=False, caps=CAPS)
    await killer
    assert "nothing was applied" in str(caught.value)
    assert (await sql(fresh_db, "SELECT count(*) FROM k"))[0][0] == 0
    assert await _read(databases, "SELECT 2") == [[2]]


class _Compute:
    """A suspended compute on ``port``: nothing listens there until ``start``, then it forwards to the real server."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.port = free_port()
        self.url = urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{self.port}")))
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _forward(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection(*self.target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            finally:
                sink.close()

        await asyncio.gather(pipe(client_in, server_out), pipe(server_in, client_out), return_exceptions=True)


async def test_a_waking_compute_is_retried_with_jittered_backoff_until_it_answers(fresh_db: str) -> None:
    compute = _Compute(fresh_db)
    woken: list[bool] = []
    waits: list[float] = []

    async def wake() -> None:
        woken.append(True)

    async def sleep(seconds: float) -> None:  # the compute is up after the third wait
        waits.append(seconds)
        if len(waits) == 3:
            await compute.start()

    dbs = Databases(compute.url, GUARDS, wake=wake, wake_patience=30, sleep=sleep)
    try:
        assert await _read(dbs, "SELECT 1") == [[1]]
    finally:
        await dbs.close()
        await compute.stop()
    assert woken == [True] and len(waits) == 3
    for attempt, wait in enumerate(waits):
        ceiling = min(2.0, 0.2 * 2**attempt)
        assert ceiling / 2 <= wait <= ceiling


async def test_a_compute_that_never_wakes_fails_once_its_patience_is_spent(fresh_db: str) -> None:
    compute = _Compute(fresh_db)
    now = [1000.0]
    rounds: list[list[float]] = []

    async def sleep(seconds: float) -> None:
        rounds[-1].append(seconds)
        now[0] += seconds

    async def wake() -> None:
        rounds.append([])

    dbs = Databases(compute.url, GUARDS, wake=wake, wake_patience=10, clock=lambda: now[0], sleep=sleep)
    try:
        with pytest.raises(ConnectionFailed) as caught:
            await _read(dbs, "SELECT 1")
    finally:
        await dbs.close()
    assert "still unreachable 10 s after the compute was started" in str(caught.value)
    # A read is tried twice (as after a broken connection), each time waking the compute and waiting its patience.
    assert len(rounds) == 2
    for waits in rounds:
        assert sum(waits) <= 10 and max(waits) <= 2.0 and len(waits) >= 6
        assert waits[:3] == sorted(waits[:3]), "the first waits grow"


async def test_unknown_database_lists_the_real_ones(databases: Databases) -> None:
    with pytest.raises(UnknownDatabase) as caught:
        await databases.run([Statement("SELECT 1")], read_only=True, caps=CAPS, database="nope")
    assert "'nope' does not exist" in str(caught.value)
    assert "postgres" in str(caught.value)


async def test_stale_prepared_statement_after_a_schema_change_is_retried(databases: Databases, fresh_db: str) -> None:
    await script(fresh_db, "CREATE TABLE s (a int); INSERT INTO s VALUES (1)")
    assert await _read(databases, "SELECT * FROM s") == [[1]]
    await script(fresh_db, "ALTER TABLE s ADD COLUMN b text DEFAULT 'x'")
    assert await _read(databases, "SELECT * FROM s") == [[1, "x"]]


async def test_a_direct_read_is_one_implicit_read_only_transaction(databases: Databases, fresh_db: str) -> None:
    await script(fresh_db, "CREATE EXTENSION pg_stat_statements")
    await _read(databases, "SELECT 1")  # the pool's first connection
    await sql(fresh_db, "SELECT pg_stat_statements_reset()")
    for _ in range(5):
        row = await _read(databases, "SELECT current_setting('transaction_read_only'), current_setting('lock_timeout')")
        assert row == [["on", "500ms"]]
    await asyncio.gather(*databases._ending)
    transactions = await sql(
        fresh_db,
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query ILIKE 'BEGIN%' AND dbid = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    one_round_trip = databases.implicit_reads and databases.fast_path
    assert transactions[0][0] == (0 if one_round_trip else 5)


def test_redact_dsn_hides_the_password() -> None:
    assert redact_dsn("postgresql://neondb_owner:s3cr3t@host:5432/db?sslmode=require") == (
        "postgresql://neondb_owner:***@host:5432/db?sslmode=require"
    )
    assert redact_dsn("postgresql://host/db") == "postgresql://host/db"
