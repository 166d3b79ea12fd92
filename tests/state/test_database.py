"""The state database: its schema is created and migrated once however many replicas start together, a newer schema
is refused, driver errors become ``StateUnavailable`` without the driver's text, and /healthz has its health."""

from __future__ import annotations

import anyio
import asyncpg
import pytest

from server.errors import StateUnavailable
from server.state.database import STEPS, StateDatabase

pytestmark = pytest.mark.anyio


async def test_replicas_starting_together_create_the_schema_once(state_url: str) -> None:
    replicas = [StateDatabase(state_url, pool_size=1) for _ in range(5)]
    async with anyio.create_task_group() as tasks:
        for replica in replicas:
            tasks.start_soon(replica.open)
    try:
        conn = await asyncpg.connect(state_url)
        try:
            versions = await conn.fetch("SELECT version FROM neon_mcp_state.schema_version ORDER BY version")
            keys = await conn.fetchval("SELECT count(*) FROM neon_mcp_state.secrets")
        finally:
            await conn.close()
        assert [row["version"] for row in versions] == list(range(1, len(STEPS) + 1))
        assert keys == 1
        # Every replica seals request state under the same key, kept in the database.
        assert len({replica.request_state_key for replica in replicas}) == 1
        assert replicas[0].request_state_key is not None and len(replicas[0].request_state_key) == 32
    finally:
        for replica in replicas:
            await replica.close()


async def test_opening_again_changes_nothing(state_url: str) -> None:
    for _ in range(2):
        state = StateDatabase(state_url)
        await state.open()
        await state.close()
    conn = await asyncpg.connect(state_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM neon_mcp_state.schema_version") == len(STEPS)
    finally:
        await conn.close()


async def test_a_schema_newer_than_the_server_is_refused(state_url: str) -> None:
    state = StateDatabase(state_url)
    await state.open()
    await state.close()
    conn = await asyncpg.connect(state_url)
    try:
        await conn.execute(
            "INSERT INTO neon_mcp_state.schema_version (version, applied_by) VALUES ($1, 'a newer server')",
            len(STEPS) + 1,
        )
    finally:
        await conn.close()
    with pytest.raises(StateUnavailable, match=rf"at version {len(STEPS) + 1}, newer than this server knows"):
        await StateDatabase(state_url).open()


async def test_an_unreachable_state_database_is_said_without_the_drivers_words() -> None:
    state = StateDatabase("postgresql://someone:secret-password@127.0.0.1:1/nowhere", timeout=2)
    with pytest.raises(StateUnavailable) as caught:
        await state.open()
    message = str(caught.value)
    assert "opening the state store did not happen" in message
    assert "secret-password" not in message and "127.0.0.1" not in message and "refused" not in message.lower()
    assert (await state.health()).ok is False


async def test_health_says_how_fast_it_answers(state_url: str) -> None:
    state = StateDatabase(state_url)
    assert (await state.health()).ok is False  # not open yet
    await state.open()
    try:
        health = await state.health()
        assert health.ok and health.ms is not None and health.schema_version == len(STEPS)
    finally:
        await state.close()
    assert (await state.health()).ok is False
