"""LocalNeon's pooler: a PgBouncer in transaction mode before each running endpoint, as Neon runs one.

The tests that need PgBouncer skip only when no ``pgbouncer`` binary exists (``apt-get install pgbouncer``; .ci/run
installs it); what local Neon does without one is tested either way.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from server.local_neon import LocalNeon
from server.local_neon.pooler import find_pgbouncer
from tests.local_neon.helpers import (
    ServiceAPI,
    connect,
    fetch,
    fetch_pooled,
    ids,
    new_branch,
    pooled_uri,
    running,
    scratch_dir,
)

pytestmark = pytest.mark.anyio

needs_pgbouncer = pytest.mark.skipif(
    find_pgbouncer() is None, reason="no pgbouncer binary (apt-get install pgbouncer): local Neon runs no pooler here"
)


@pytest.fixture
async def branch(service_api: ServiceAPI, project: dict[str, Any]) -> Any:
    """A branch of its own, so that its pooler's pools hold nothing another test left."""
    project_id, _ = ids(project)
    created = await new_branch(service_api, project_id, name=f"pooled-{time.monotonic_ns()}")
    yield created
    deleted = await service_api("delete_branch", project_id, created["branch"]["id"])
    await service_api.wait(project_id, deleted["operations"])


@needs_pgbouncer
async def test_pooled_connections_share_server_backends_between_transactions(
    service_api: ServiceAPI, project: dict[str, Any], branch: dict[str, Any]
) -> None:
    project_id, _ = ids(project)
    endpoint = branch["endpoints"][0]
    assert endpoint["pooler_enabled"] is True and endpoint["pooler_mode"] == "transaction"
    params = branch["connection_uris"][0]["connection_parameters"]
    uri = await pooled_uri(service_api, project_id, branch["branch"]["id"])
    assert uri.endswith(f"options=endpoint%3D{endpoint['id']}-pooler")
    assert params["pooler_host"] == endpoint["host"].replace(endpoint["id"], endpoint["id"] + "-pooler")
    direct = branch["connection_uris"][0]["connection_uri"]
    server_port = (await fetch(direct, "SELECT inet_server_port()"))[0][0]

    a, b = await connect(uri), await connect(uri)
    try:
        assert await a.fetchval("SELECT inet_server_port()") == server_port != urlsplit(uri).port
        await a.execute("SET neon_test.marker = 'a'")  # a session-level setting, in a transaction of its own
        first_pid, marker = await a.fetchrow("SELECT pg_backend_pid(), current_setting('neon_test.marker', true)")
        assert marker == "a", "the pooler's one idle server connection served both statements"
        async with b.transaction():
            # b's transaction gets the server connection a used: two clients, one backend.
            assert await b.fetchval("SELECT pg_backend_pid()") == first_pid
            # While b holds it, a's next transaction runs on another backend, where a's SET never happened.
            other_pid, marker = await a.fetchrow("SELECT pg_backend_pid(), current_setting('neon_test.marker', true)")
            assert other_pid != first_pid and marker is None, "a session-level SET does not follow the client"
    finally:
        await a.close()
        await b.close()


@needs_pgbouncer
async def test_suspend_stops_the_pooler_and_start_brings_it_back(
    service_api: ServiceAPI, project: dict[str, Any], branch: dict[str, Any], neon_home: Path
) -> None:
    project_id, _ = ids(project)
    endpoint_id = branch["endpoints"][0]["id"]
    uri = await pooled_uri(service_api, project_id, branch["branch"]["id"])
    assert [r["n"] for r in await fetch_pooled(uri, "SELECT 1 AS n")] == [1]
    pid_file = neon_home / "clusters" / f"pooler-{endpoint_id}" / "pgbouncer.pid"
    pid = int(pid_file.read_text())

    await service_api.wait(project_id, (await service_api("suspend_endpoint", project_id, endpoint_id))["operations"])
    assert not pid_file.exists()
    assert not running(pid)

    await service_api.wait(project_id, (await service_api("start_endpoint", project_id, endpoint_id))["operations"])
    conn = await connect(uri)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
    assert await pooled_uri(service_api, project_id, branch["branch"]["id"]) == uri, "the pooler keeps its port"

    await service_api.wait(project_id, (await service_api("restart_endpoint", project_id, endpoint_id))["operations"])
    assert [r["n"] for r in await fetch_pooled(uri, "SELECT 2 AS n")] == [2]


@needs_pgbouncer
async def test_roles_made_through_the_api_log_in_through_the_pooler(
    service_api: ServiceAPI, project: dict[str, Any], branch: dict[str, Any]
) -> None:
    project_id, _ = ids(project)
    branch_id = branch["branch"]["id"]
    created = await service_api("create_role", project_id, branch_id, {"role": {"name": "pooled_app"}})
    await service_api.wait(project_id, created["operations"])
    uri = await pooled_uri(service_api, project_id, branch_id, role="pooled_app")
    assert [r["u"] for r in await fetch_pooled(uri, "SELECT current_user AS u")] == ["pooled_app"]

    reset = await service_api("reset_password", project_id, branch_id, "pooled_app")
    await service_api.wait(project_id, reset["operations"])
    new_uri = await pooled_uri(service_api, project_id, branch_id, role="pooled_app")
    assert new_uri != uri
    assert [r["u"] for r in await fetch_pooled(new_uri, "SELECT current_user AS u")] == ["pooled_app"]
    # PgBouncer refuses a stale SCRAM proof as a protocol violation (08P01) rather than a bad password (28P01).
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.ProtocolViolationError), match="authentication"):
        await connect(uri)


async def test_without_pgbouncer_pooled_uris_reach_the_endpoint_and_say_so() -> None:
    base = scratch_dir("neon-mcp-nopooler-")
    neon = LocalNeon(base / "home", pooler=False)
    await neon.open()
    try:
        service_api = ServiceAPI(neon)
        assert "no pgbouncer" in neon.pooler_status()
        created = await service_api("create_project", {"project": {"name": "direct"}})
        project_id, branch_id = ids(created)
        await service_api.wait(project_id, created["operations"])
        assert created["endpoints"][0]["pooler_enabled"] is False
        direct = created["connection_uris"][0]["connection_uri"]
        uri = await pooled_uri(service_api, project_id, branch_id)
        assert uri.endswith("-pooler") and uri.replace("-pooler", "") == direct  # Neon's name, the endpoint's server
        pooled_port, direct_port = [(await fetch(u, "SELECT inet_server_port()"))[0][0] for u in (uri, direct)]
        assert pooled_port == direct_port
    finally:
        await neon.close()
        shutil.rmtree(base, ignore_errors=True)
