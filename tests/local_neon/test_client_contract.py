"""The Neon API client against local Neon over real HTTP: the same code that talks to Neon Cloud.

Faults are injected by local Neon itself (429 with Retry-After, 423, 503) at a high rate; every call must still
succeed through the client's retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

from server.errors import NeonAPIFailure
from server.neon.client import NeonClient
from tests.local_neon.helpers import API

pytestmark = pytest.mark.anyio


def _admin(api: API) -> str:
    return api.host.replace("/api/v2", "") + "/admin/faults"


@pytest.fixture
async def client(neon_api: API) -> AsyncIterator[NeonClient]:
    async with NeonClient(neon_api.key, base_url=neon_api.host) as neon:
        yield neon


@pytest.fixture
def faults(neon_api: API) -> Iterator[None]:
    """Local Neon answers 45% of requests with an injected 429, 423 or 503 during the test."""
    response = neon_api.http.post(
        _admin(neon_api), json={"429": 0.2, "423": 0.15, "503": 0.1, "retry_after": 0, "seed": 11}
    )
    assert response.status_code == 200, response.text
    try:
        yield
    finally:
        neon_api.http.post(_admin(neon_api), json={"429": 0, "423": 0, "503": 0, "retry_after": 1})


async def test_projects_and_branches_through_the_client(client: NeonClient, neon_project: dict[str, Any]) -> None:
    project_id = neon_project["project"]["id"]
    projects = await client.list_projects()
    assert project_id in {p.id for p in projects}
    branches = await client.list_branches(project_id)
    production = next(b for b in branches if b.name == "production")
    assert production.default is True


async def test_errors_carry_neons_code_message_and_request_id(client: NeonClient) -> None:
    with pytest.raises(NeonAPIFailure) as caught:
        await client.get_project("no-such-project-00000000")
    assert caught.value.status == 404
    assert caught.value.request_id


async def test_every_call_succeeds_under_injected_faults(
    client: NeonClient, neon_project: dict[str, Any], faults: None
) -> None:
    project_id = neon_project["project"]["id"]
    progress: list[str] = []

    async def report(done: float, total: float | None, message: str) -> None:
        progress.append(message)

    created = await client.create_branch(project_id, name="faulty", with_compute=True)
    await client.wait_for_operations(project_id, created.operations, progress=report, poll_interval=0.05)
    uri = await client.connection_uri(project_id, created.branch.id, "neondb", "neondb_owner", pooled=False)
    conn = await asyncpg.connect(uri.get_secret_value())
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
    for _ in range(10):
        assert await client.list_branches(project_id)
    operations = await client.delete_branch(project_id, created.branch.id)
    await client.wait_for_operations(project_id, operations, poll_interval=0.05)
    assert "faulty" not in {b.name for b in await client.list_branches(project_id)}
    assert progress, "progress was reported while operations ran"
    assert client.request_count > 15, "faults were really injected and retried"
