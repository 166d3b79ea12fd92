"""Pending operations: both stores (memory, the state database) keep the same promises — taken once, before expiry,
by the session that stored them — and the table keeps them across processes: two replicas racing on one id get one
operation and one refusal, expiry is the database's clock, and a tenant never sees another's operations."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import asyncpg
import pytest

from server.errors import ConfirmationError
from server.state.database import StateDatabase
from server.state.pending import PendingInMemory, PendingOperations, PendingTable

pytestmark = pytest.mark.anyio

ARGS = {"sql": "DELETE FROM t", "params": [[1, "é", None]], "max_rows": None}


@pytest.fixture
async def state(state_url: str) -> AsyncIterator[StateDatabase]:
    database = StateDatabase(state_url)
    await database.open()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture(params=["memory", "table"])
async def make_store(request: pytest.FixtureRequest, state_url: str) -> AsyncIterator[Callable[..., Any]]:
    """A factory of one store kind: ``await make(ttl=…)``; each table store on a pool of its own (a replica)."""
    opened: list[StateDatabase] = []

    async def make(ttl: float = 300.0) -> PendingOperations:
        if request.param == "memory":
            return PendingInMemory(ttl)
        database = StateDatabase(state_url, pool_size=2)
        await database.open()
        opened.append(database)
        return PendingTable(database, tenant="tenant-a", ttl=ttl, replica=f"replica-{len(opened)}")

    yield make
    for database in opened:
        await database.close()


async def test_an_operation_is_taken_once_with_its_call_intact(make_store: Callable[..., Any]) -> None:
    store = await make_store()
    stored = await store.add(tool="run_sql", arguments=ARGS, summary="Delete every row of t", session="http:s1")
    taken = await store.take(stored.id, session="http:s1")
    assert taken == stored
    assert taken.arguments == ARGS and taken.tool == "run_sql" and taken.summary == "Delete every row of t"
    with pytest.raises(ConfirmationError, match="was already confirmed and ran; it cannot run again"):
        await store.take(stored.id, session="http:s1")
    with pytest.raises(ConfirmationError, match="unknown operation id 'op_nope'"):
        await store.take("op_nope")


async def test_another_session_cannot_take_it_and_it_stays_pending(make_store: Callable[..., Any]) -> None:
    store = await make_store()
    stored = await store.add(tool="run_sql", arguments=ARGS, summary="s", session="http:mine")
    for other in ("http:theirs", None):
        with pytest.raises(ConfirmationError, match="asked for in another MCP session"):
            await store.take(stored.id, session=other)
    assert (await store.take(stored.id, session="http:mine")).id == stored.id
    # Stored without a session (stdio, the 2026-07-28 protocol): any session of the tenant may confirm it.
    open_one = await store.add(tool="run_sql", arguments=ARGS, summary="s")
    assert (await store.take(open_one.id, session="http:anyone")).id == open_one.id


async def test_an_expired_operation_is_refused(make_store: Callable[..., Any]) -> None:
    store = await make_store(ttl=0.3)
    stored = await store.add(tool="run_sql", arguments=ARGS, summary="s")
    await anyio.sleep(0.5)
    with pytest.raises(ConfirmationError, match="expired before it was confirmed"):
        await store.take(stored.id)


async def test_two_replicas_racing_on_one_id_get_one_operation(state: StateDatabase, state_url: str) -> None:
    replicas = [StateDatabase(state_url, pool_size=1) for _ in range(4)]
    for replica in replicas:
        await replica.open()
    try:
        stores = [PendingTable(r, tenant="t", ttl=60, replica=f"r{i}") for i, r in enumerate(replicas)]
        for _ in range(10):
            stored = await stores[0].add(tool="run_sql", arguments=ARGS, summary="s")
            outcomes: list[object] = []
            async with anyio.create_task_group() as tasks:
                for store in stores:
                    tasks.start_soon(_take_into, outcomes, store, stored.id)
            won = [o for o in outcomes if not isinstance(o, ConfirmationError)]
            lost = [str(o) for o in outcomes if isinstance(o, ConfirmationError)]
            assert len(won) == 1 and len(lost) == 3
            assert all("was already confirmed and ran" in message for message in lost)
    finally:
        for replica in replicas:
            await replica.close()


async def _take_into(outcomes: list[object], store: PendingTable, operation_id: str) -> None:
    try:
        outcomes.append(await store.take(operation_id))
    except ConfirmationError as exc:
        outcomes.append(exc)


async def test_expiry_is_the_database_clock(state: StateDatabase, state_url: str) -> None:
    """Expiry is decided by ``now()`` in the database: moving ``expires_at`` there is what makes it expire, whatever
    this process's clock says (replicas' clocks may disagree; the database has one)."""
    store = PendingTable(state, tenant="t", ttl=3600, replica="r")
    stored = await store.add(tool="run_sql", arguments=ARGS, summary="s")
    conn = await asyncpg.connect(state_url)
    try:
        now, expires = await conn.fetchrow(
            "SELECT now(), expires_at FROM neon_mcp_state.pending_operations WHERE id = $1", stored.id
        )
        assert abs((expires - now).total_seconds() - 3600) < 5
        assert abs(expires.timestamp() - stored.expires_at) < 0.001
        await conn.execute(
            "UPDATE neon_mcp_state.pending_operations SET expires_at = now() - interval '1 second' WHERE id = $1",
            stored.id,
        )
    finally:
        await conn.close()
    with pytest.raises(ConfirmationError, match="expired before it was confirmed"):
        await store.take(stored.id)


async def test_a_tenant_never_sees_another_tenants_operations(state: StateDatabase) -> None:
    mine = PendingTable(state, tenant="tenant-a", ttl=60, replica="r")
    theirs = PendingTable(state, tenant="tenant-b", ttl=60, replica="r")
    stored = await mine.add(tool="run_sql", arguments=ARGS, summary="s")
    with pytest.raises(ConfirmationError, match="unknown operation id"):
        await theirs.take(stored.id)
    assert (await mine.take(stored.id)).id == stored.id


async def test_the_row_keeps_the_whole_call_as_json(state: StateDatabase, state_url: str) -> None:
    """The operation column holds every field of the operation but its id and expiry, so a field added to
    ``PendingOperation`` is stored and read back without a schema change."""
    store = PendingTable(state, tenant="t", ttl=60, replica="r")
    bound = [{"kind": "migration", "id": "mig_x"}]
    stored = await store.add(
        tool="migrate", arguments={"action": "apply", "migration_id": "mig_x"}, summary="s", binding=bound
    )
    conn = await asyncpg.connect(state_url)
    try:
        row = await conn.fetchrow(
            "SELECT tool, tenant, created_by, operation::text FROM neon_mcp_state.pending_operations WHERE id = $1",
            stored.id,
        )
    finally:
        await conn.close()
    assert (row["tool"], row["tenant"], row["created_by"]) == ("migrate", "t", "r")
    assert json.loads(row["operation"]) == {
        "tool": "migrate",
        "summary": "s",
        "arguments": {"action": "apply", "migration_id": "mig_x"},
        "session": None,
        "binding": bound,
    }
    assert (await store.take(stored.id)).binding == bound
