"""A clean connection after every call (server/sql/session.py), judged by its effect on the next call on the pool.

The executor is called directly with the SQL policy out of the way (it refuses most of these statements): what is
tested is what the executor holds by itself, whichever code path left the state (a statement, a function, a
SECURITY DEFINER function, a failed call, a rolled-back block). Each case runs on a direct connection and through
PgBouncer in transaction mode (skipped, saying why, where pgbouncer is not installed); a pool of one connection makes
"the next call" run on the same session, and the test checks that it did (by backend pid), except where the
executor closed the connection because that is the only way to clear what was left.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from server.errors import DatabaseError
from server.local_neon.clusters import Cluster, free_port
from server.local_neon.pooler import Poolers, find_pgbouncer
from server.sql.database import Caps, Databases, Guards, Statement
from tests.helpers import script, sql

pytestmark = pytest.mark.anyio

GUARDS = Guards(statement_timeout=5.0, lock_timeout=1.0, idle_in_transaction_timeout=10.0)
CAPS = Caps(max_rows=100, max_bytes=100_000)
WEAK = "neon_mcp_test_weak"

SETUP = f"""
DO $$BEGIN CREATE ROLE {WEAK}; EXCEPTION WHEN duplicate_object THEN NULL; END$$;
CREATE TABLE users (name text);
INSERT INTO users VALUES ('real');
CREATE SEQUENCE counter;
CREATE FUNCTION become_weak() RETURNS int LANGUAGE plpgsql AS $f$BEGIN SET ROLE {WEAK}; RETURN 1; END$f$;
CREATE FUNCTION listen_quietly() RETURNS int LANGUAGE plpgsql AS $f$BEGIN EXECUTE 'LISTEN leak'; RETURN 1; END$f$;
CREATE FUNCTION prepare_quietly() RETURNS int LANGUAGE plpgsql
    AS $f$BEGIN EXECUTE 'PREPARE leaked AS SELECT 42'; RETURN 1; END$f$;
CREATE FUNCTION hold_a_cursor() RETURNS int LANGUAGE plpgsql
    AS $f$BEGIN EXECUTE 'DECLARE held CURSOR WITH HOLD FOR SELECT 1'; RETURN 1; END$f$;
CREATE FUNCTION shadow_users() RETURNS int LANGUAGE plpgsql
    AS $f$BEGIN CREATE TEMP TABLE users AS SELECT 'shadow'::text AS name; RETURN 1; END$f$;
CREATE FUNCTION as_its_owner() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $f$BEGIN
    PERFORM pg_catalog.set_config('search_path', 'nowhere', false);
    PERFORM pg_catalog.pg_advisory_lock(7);
    EXECUTE 'LISTEN owner_leak';
    RETURN 1;
END$f$;
ALTER FUNCTION as_its_owner() OWNER TO {WEAK};
"""

CLEAN_STATE = """
SELECT current_user::text AS "user",
       pg_catalog.current_setting('work_mem') AS work_mem,
       pg_catalog.current_setting('search_path') AS search_path,
       pg_catalog.current_setting('application_name') AS application_name,
       (SELECT count(*) FROM pg_catalog.pg_listening_channels()) AS listening,
       (SELECT count(*) FROM pg_catalog.pg_prepared_statements WHERE from_sql) AS prepared,
       (SELECT count(*) FROM pg_catalog.pg_cursors WHERE is_holdable) AS cursors,
       (SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid())
           AS advisory_locks,
       (SELECT name FROM users) AS users_says
"""


@pytest.fixture(scope="module")
def pgbouncer_port(pg_cluster: Cluster) -> Iterator[int]:
    """A PgBouncer in transaction mode in front of the session cluster (as local Neon runs one per endpoint)."""
    binary = find_pgbouncer()
    if binary is None:
        pytest.skip("pgbouncer is not installed (Debian package pgbouncer): the pooled path is not tested here")
    root = Path(tempfile.mkdtemp(prefix="neon-mcp-pooler-"))
    if os.geteuid() == 0:
        root.chmod(0o711)  # PgBouncer runs as the servers' user, which must reach its directory
    poolers = Poolers(root, binary=binary, host=pg_cluster.host, auth_user=pg_cluster.superuser)
    assert pg_cluster.port is not None
    port = asyncio.run(
        poolers.start(
            "sessions", port=free_port(pg_cluster.host), server_port=pg_cluster.port, password=pg_cluster.password
        )
    )
    try:
        yield port
    finally:
        asyncio.run(poolers.stop_all())
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["direct", "direct-transactions", "pgbouncer"])
def pooler(request: pytest.FixtureRequest) -> int | str | None:
    """How the executor connects: directly (reads in one round trip, or each in a transaction of its own), or the
    port of a PgBouncer in transaction mode."""
    if request.param == "pgbouncer":
        return int(request.getfixturevalue("pgbouncer_port"))
    return None if request.param == "direct" else request.param


@pytest.fixture
async def executor(pooler: int | str | None, fresh_db: str) -> AsyncIterator[Databases]:
    """The executor with a pool of one connection, directly or through PgBouncer."""
    await script(fresh_db, SETUP)
    direct = Databases(fresh_db, GUARDS, pool_size=1)
    if not isinstance(pooler, int):
        direct.implicit_reads = pooler is None
        yield direct
        await direct.close()
        return
    port = pooler
    host_port = fresh_db.split("@", 1)[1].split("/", 1)[0]
    pooled_url = fresh_db.replace(host_port, f"{host_port.rsplit(':', 1)[0]}:{port}")

    async def direct_databases() -> Databases:
        return direct

    pooled = Databases(pooled_url, GUARDS, pool_size=1, cache_statements=False, direct=direct_databases)
    yield pooled
    await pooled.close()
    await direct.close()


async def _write(dbs: Databases, *statements: str) -> None:
    await dbs.run([Statement(s) for s in statements], read_only=False, caps=CAPS)


async def _read(dbs: Databases, query: str) -> list[list[object]]:
    (outcome,) = await dbs.run([Statement(query, query=True)], read_only=True, caps=CAPS)
    return outcome.rows


async def _pid(dbs: Databases) -> object:
    return (await _read(dbs, "SELECT pg_catalog.pg_backend_pid()"))[0][0]


async def _assert_clean(dbs: Databases, *, session_of: object | None) -> None:
    """The next call sees a session as fresh as a new one's (and is on the same session, when ``session_of``)."""
    await asyncio.gather(*dbs._ending)  # a read's own end runs in the background; the next call waits for it anyway
    if session_of is not None:
        assert await _pid(dbs) == session_of, "the next call ran on another session: the test proves nothing"
    (state,) = await _read(dbs, CLEAN_STATE)
    fresh = Databases(dbs.dsn(), GUARDS, pool_size=1)
    try:
        (expected,) = await _read(fresh, CLEAN_STATE)
    finally:
        await fresh.close()
    if dbs.pooled:
        # PgBouncer does not always set application_name again on a server connection after RESET ALL.
        assert state[3] in (expected[3], "")
        state[3] = expected[3]
    assert state == expected
    assert state[0] != WEAK and state[-1] == "real"


async def test_a_temporary_table_does_not_shadow_the_real_one(executor: Databases) -> None:
    before = await _pid(executor)
    await _write(executor, "CREATE TEMP TABLE users AS SELECT 'shadow'::text AS name")
    await _assert_clean(executor, session_of=before)
    await _write(executor, "SELECT shadow_users()")
    await _assert_clean(executor, session_of=before)


async def test_a_role_set_by_a_statement_or_a_function_does_not_survive(executor: Databases) -> None:
    before = await _pid(executor)
    await _write(executor, f"SET ROLE {WEAK}")
    await _assert_clean(executor, session_of=before)
    await _write(executor, "SELECT become_weak()")
    await _assert_clean(executor, session_of=before)
    await _read(executor, "SELECT become_weak()")
    await _assert_clean(executor, session_of=before)
    await _write(executor, f"SELECT pg_catalog.set_config('role', '{WEAK}', false)")
    await _assert_clean(executor, session_of=before)


async def test_what_a_security_definer_function_leaves_does_not_survive(executor: Databases) -> None:
    before = await _pid(executor)
    await _write(executor, "SELECT as_its_owner()")
    await _assert_clean(executor, session_of=before)
    await _read(executor, "SELECT as_its_owner()")
    await _assert_clean(executor, session_of=before)


async def test_listen_does_not_survive(executor: Databases) -> None:
    before = await _pid(executor)
    await _write(executor, "LISTEN leak")
    await _assert_clean(executor, session_of=before)
    await _write(executor, "SELECT listen_quietly()")
    await _assert_clean(executor, session_of=before)


async def test_a_cursor_with_hold_does_not_survive(executor: Databases) -> None:
    before = await _pid(executor)
    await _write(executor, "DECLARE held CURSOR WITH HOLD FOR SELECT 1")
    await _assert_clean(executor, session_of=before)
    await _write(executor, "SELECT hold_a_cursor()")
    await _assert_clean(executor, session_of=before)


async def test_a_prepared_statement_does_not_survive_whoever_made_it(executor: Databases) -> None:
    # A rollback keeps SQL-level prepared statements: a direct connection is closed (nothing survives that), a
    # pooled one is cleared by name (the pooler's server connection is not ours to close).
    same = None if not executor.pooled else await _pid(executor)
    await _write(executor, "PREPARE leaked AS SELECT 42")
    await _assert_clean(executor, session_of=same)
    await _read(executor, "SELECT prepare_quietly()")
    await _assert_clean(executor, session_of=same)
    with pytest.raises(DatabaseError):
        await _read(executor, "SELECT prepare_quietly(), 1 / 0")
    await _assert_clean(executor, session_of=same)


async def test_advisory_locks_do_not_survive_a_read_or_a_write(executor: Databases, fresh_db: str) -> None:
    before = await _pid(executor)
    await _read(executor, "SELECT pg_catalog.pg_advisory_lock(4242)")
    await _write(executor, "SELECT pg_catalog.pg_advisory_lock(4243)")
    await _assert_clean(executor, session_of=before)
    assert (await sql(fresh_db, "SELECT pg_try_advisory_lock(4242) AND pg_try_advisory_lock(4243)"))[0][0] is True


async def test_settings_do_not_survive(executor: Databases) -> None:
    before = await _pid(executor)
    await _write(executor, "SET work_mem = '77MB'", "SELECT pg_catalog.set_config('search_path', 'nowhere', false)")
    await _assert_clean(executor, session_of=before)
    await _read(executor, "SELECT pg_catalog.set_config('work_mem', '66MB', false)")
    await _assert_clean(executor, session_of=before)
    await _write(executor, "SELECT pg_catalog.set_config('application_name', 'evil', false)")
    await _assert_clean(executor, session_of=before)


async def test_sequence_state_does_not_survive(executor: Databases) -> None:
    before = await _pid(executor)
    await _write(executor, "SELECT nextval('counter')")
    await _assert_clean(executor, session_of=before)
    with pytest.raises(DatabaseError) as caught:
        await _read(executor, "SELECT lastval()")
    assert caught.value.sqlstate == "55000", "lastval() is not yet defined in this session"


async def test_a_rolled_back_block_leaves_nothing(executor: Databases) -> None:
    same = None if not executor.pooled else await _pid(executor)
    async with executor.rolled_back(None, read_only=False, caps=CAPS) as run:
        await run(Statement("SELECT pg_catalog.pg_advisory_lock(9)"))
        await run(Statement("SELECT become_weak(), listen_quietly(), prepare_quietly()"))
    await _assert_clean(executor, session_of=same)


async def test_a_write_whose_clean_up_cannot_commit_applies_nothing(executor: Databases, fresh_db: str) -> None:
    # Deferred constraints fire before the clean-up, inside the transaction: a violation fails the call, not the
    # clean-up after a commit.
    await script(
        fresh_db,
        "CREATE TABLE parent (id int PRIMARY KEY); "
        "CREATE TABLE child (id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED)",
    )
    with pytest.raises(DatabaseError) as caught:
        await _write(executor, "INSERT INTO child VALUES (1)", "SET ROLE " + WEAK)
    assert caught.value.sqlstate == "23503"
    assert (await sql(fresh_db, "SELECT count(*) FROM child"))[0][0] == 0
    await _assert_clean(executor, session_of=None)
