"""Fixtures for local Neon tests: one local Neon daemon for the whole session, started like a user would (HTTP), and
one ``LocalNeon`` in process with one project (service level); every cluster start costs time."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from server.local_neon import LocalNeon
from tests.local_neon.helpers import API, ServiceAPI, execute, scratch_dir

# --- over HTTP ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def neon_project(neon_api: API) -> dict[str, Any]:
    body = neon_api.call("POST", "/projects", "/projects", expect=201, json={"project": {"name": "shop"}})
    neon_api.wait(body["project"]["id"], body["operations"])
    return body


# --- in process ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def neon_home() -> Iterator[Path]:
    base = scratch_dir("neon-mcp-service-")
    yield base / "home"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
async def neon(neon_home: Path) -> AsyncIterator[LocalNeon]:
    service = LocalNeon(neon_home, min_suspend_seconds=1)  # Neon's minimum is 60 s: tests watch scale to zero in 1 s
    await service.open()
    yield service
    await service.close()


@pytest.fixture(scope="session", params=["direct", "http"])
async def service_api(neon: LocalNeon, request: pytest.FixtureRequest) -> AsyncIterator[ServiceAPI]:
    """The shared LocalNeon, called directly or over real HTTP (its Starlette app on a loopback port)."""
    if request.param == "direct":
        yield ServiceAPI(neon)
        return
    import socket

    import uvicorn

    from server.local_neon.http import create_app

    token = "test-token"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY: see daemon
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = uvicorn.Server(uvicorn.Config(create_app(neon, token=token), log_level="warning", lifespan="off"))
    serving = asyncio.ensure_future(server.serve(sockets=[listener]))
    host = f"http://127.0.0.1:{listener.getsockname()[1]}/api/v2"
    async with httpx.AsyncClient(base_url=host, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        while not server.started:
            await asyncio.sleep(0.01)
        yield ServiceAPI(neon, http)
    server.should_exit = True
    await serving


@pytest.fixture(scope="session")
async def project(service_api: ServiceAPI) -> dict[str, Any]:
    """The shared project, its creation body as answered (with ``connection_uris``), once its operations finished."""
    body = await service_api("create_project", {"project": {"name": "shop"}})
    await service_api.wait(body["project"]["id"], body["operations"])
    seed = "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a'), (2, 'b')"
    await execute(body["connection_uris"][0]["connection_uri"], seed)
    return body
