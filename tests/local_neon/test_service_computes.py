"""LocalNeon computes: read replicas (hot standbys of their branch's primary), endpoint updates checked against Neon's
limits, and the operation each change reports."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.local_neon import LocalNeon
from tests.local_neon.helpers import (
    ServiceAPI,
    execute,
    fetch,
    fetch_pooled,
    ids,
    new_branch,
    scratch_dir,
    uri_of,
    wait_state,
)

pytestmark = pytest.mark.anyio


async def _replica(api: ServiceAPI, project_id: str, branch_id: str) -> dict[str, Any]:
    body = await api("create_endpoint", project_id, {"endpoint": {"branch_id": branch_id, "type": "read_only"}})
    assert body["endpoint"]["type"] == "read_only"
    assert [op["action"] for op in body["operations"]] == ["start_compute"]
    await api.wait(project_id, body["operations"])
    endpoint: dict[str, Any] = body["endpoint"]
    return endpoint


async def _replica_uri(api: ServiceAPI, project_id: str, branch_id: str, endpoint_id: str, **query: Any) -> str:
    body = await api(
        "connection_uri",
        project_id,
        database_name="neondb",
        role_name="neondb_owner",
        branch_id=branch_id,
        endpoint_id=endpoint_id,
        **query,
    )
    uri: str = body["uri"]
    return uri


async def _until(uri: str, query: str, wanted: object, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while (await fetch(uri, query))[0][0] != wanted:
        assert time.monotonic() < deadline, f"{query} never became {wanted!r}"
        await asyncio.sleep(0.05)


async def test_a_read_replica_streams_from_its_primary_and_refuses_writes(
    service_api: ServiceAPI, project: dict[str, Any], neon_home: Path
) -> None:
    project_id, _ = ids(project)
    created = await new_branch(service_api, project_id, name="replicated")
    branch_id = created["branch"]["id"]
    primary = created["connection_uris"][0]["connection_uri"]
    await execute(primary, "CREATE TABLE readings (value int); INSERT INTO readings VALUES (1)")

    started = time.monotonic()
    replica = await _replica(service_api, project_id, branch_id)
    assert time.monotonic() - started < 10
    assert replica["host"] != created["endpoints"][0]["host"]
    uri = await _replica_uri(service_api, project_id, branch_id, replica["id"])
    assert (await fetch(uri, "SELECT pg_is_in_recovery(), count(*) FROM readings"))[0] == (True, 1)
    conn = await asyncpg.connect(uri)
    try:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("INSERT INTO readings VALUES (2)")
    finally:
        await conn.close()

    await execute(primary, "INSERT INTO readings VALUES (3)")
    await _until(uri, "SELECT count(*) FROM readings", 2)
    pooled = await _replica_uri(service_api, project_id, branch_id, replica["id"], pooled=True)
    assert (await fetch_pooled(pooled, "SELECT count(*) FROM readings"))[0][0] == 2
    listed = await service_api.list_endpoints(project_id, branch_id)
    assert sorted(e["type"] for e in listed["endpoints"]) == ["read_only", "read_write"]

    deleted = await service_api("delete_endpoint", project_id, replica["id"])
    await service_api.wait(project_id, deleted["operations"])
    assert not (neon_home / "clusters" / f"ro-{replica['id']}").exists()
    await service_api.wait(project_id, (await service_api("delete_branch", project_id, branch_id))["operations"])


async def test_a_replica_sees_writes_made_while_it_slept_and_follows_a_reset(
    service_api: ServiceAPI, project: dict[str, Any], neon_home: Path
) -> None:
    project_id, root_id = ids(project)
    created = await new_branch(service_api, project_id, name="follower")
    branch_id = created["branch"]["id"]
    writer = created["endpoints"][0]["id"]
    primary = created["connection_uris"][0]["connection_uri"]
    replica = await _replica(service_api, project_id, branch_id)
    uri = await _replica_uri(service_api, project_id, branch_id, replica["id"])

    suspended = await service_api("suspend_endpoint", project_id, replica["id"])
    await service_api.wait(project_id, suspended["operations"])
    await execute(primary, "INSERT INTO items VALUES (30, 'written while the replica slept')")
    suspended = await service_api("suspend_endpoint", project_id, writer)
    await service_api.wait(project_id, suspended["operations"])
    started = await service_api("start_endpoint", project_id, replica["id"])
    await service_api.wait(project_id, started["operations"])
    # The primary is suspended: the standby read the last write from the primary's WAL on disk.
    assert (await fetch(uri, "SELECT count(*) FROM items WHERE id = 30"))[0][0] == 1
    assert (await service_api("get_endpoint", project_id, writer))["endpoint"]["current_state"] == "idle"

    reset = await service_api("restore_branch", project_id, branch_id, {"source_branch_id": root_id})
    await service_api.wait(project_id, reset["operations"])
    await _until(uri, "SELECT count(*) FROM items WHERE id = 30", 0)
    await service_api.wait(project_id, (await service_api("delete_branch", project_id, branch_id))["operations"])
    assert not (neon_home / "clusters" / f"ro-{replica['id']}").exists()


async def test_a_read_replica_serves_a_branch_without_a_primary(
    service_api: ServiceAPI, project: dict[str, Any]
) -> None:
    """As on Neon, a branch may have read-only computes only (neonctl branches create --type read_only)."""
    project_id, _ = ids(project)
    created = await service_api(
        "create_branch", project_id, {"branch": {"name": "replica-only"}, "endpoints": [{"type": "read_only"}]}
    )
    await service_api.wait(project_id, created["operations"])
    branch_id = created["branch"]["id"]
    (endpoint,) = (await service_api.list_endpoints(project_id, branch_id))["endpoints"]
    assert endpoint["type"] == "read_only" and endpoint["current_state"] == "active"
    uri = await uri_of(service_api, project_id, branch_id)
    parent = await fetch(project["connection_uris"][0]["connection_uri"], "SELECT count(*) AS n FROM items")
    assert await fetch(uri, "SELECT count(*) AS n FROM items") == parent, "the replica serves the branch's data"
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await fetch(uri, "INSERT INTO items VALUES (99, 'no')")
    await service_api.wait(project_id, (await service_api("delete_branch", project_id, branch_id))["operations"])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"autoscaling_limit_min_cu": 0.1}, "autoscaling_limit_min_cu 0.1 is not a compute size Neon offers"),
        ({"autoscaling_limit_max_cu": 1.5}, "autoscaling_limit_max_cu 1.5 is not a compute size Neon offers"),
        ({"autoscaling_limit_max_cu": 57}, "autoscaling_limit_max_cu 57 is not a compute size Neon offers"),
        ({"autoscaling_limit_min_cu": 2, "autoscaling_limit_max_cu": 1}, "must not be greater than"),
        ({"autoscaling_limit_min_cu": 1, "autoscaling_limit_max_cu": 10}, "maximum permitted autoscaling range is 8"),
        ({"autoscaling_limit_min_cu": 10, "autoscaling_limit_max_cu": 20}, "a fixed size"),
        ({"suspend_timeout_seconds": 604801}, "suspend_timeout_seconds 604801 is out of range"),
        ({"suspend_timeout_seconds": -2}, "suspend_timeout_seconds -2 is out of range"),
        ({"pooler_mode": "session"}, "transaction mode only"),
    ],
)
async def test_updates_outside_neons_limits_are_refused_with_the_reason(
    service_api: ServiceAPI, project: dict[str, Any], change: dict[str, Any], reason: str
) -> None:
    project_id, root_id = ids(project)
    endpoint = (await service_api.list_endpoints(project_id, root_id))["endpoints"][0]
    message = await service_api.refused(400, "update_endpoint", project_id, endpoint["id"], {"endpoint": change})
    assert reason in message
    after = (await service_api("get_endpoint", project_id, endpoint["id"]))["endpoint"]
    assert after["autoscaling_limit_max_cu"] == endpoint["autoscaling_limit_max_cu"]
    assert after["suspend_timeout_seconds"] == endpoint["suspend_timeout_seconds"]


async def test_neons_minimum_suspend_timeout_holds_unless_lowered() -> None:
    base = scratch_dir("neon-mcp-limits-")
    api = ServiceAPI(LocalNeon(base / "home"))
    await api.neon.open()
    try:
        created = await api("create_project", {"project": {"name": "strict"}})
        project_id = created["project"]["id"]
        await api.wait(project_id, created["operations"])
        endpoint_id = created["endpoints"][0]["id"]
        message = await api.refused(
            400, "update_endpoint", project_id, endpoint_id, {"endpoint": {"suspend_timeout_seconds": 30}}
        )
        assert "from 60 to 604800 seconds" in message
        await api.refused(
            400,
            "create_project",
            {
                "project": {
                    "default_endpoint_settings": {"autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 9}
                }
            },
        )
        body = await api("update_endpoint", project_id, endpoint_id, {"endpoint": {"suspend_timeout_seconds": 60}})
        assert body["endpoint"]["suspend_timeout_seconds"] == 60
    finally:
        await api.neon.close()
        shutil.rmtree(base, ignore_errors=True)


async def test_autoscaling_is_stored_and_each_change_reports_its_operation(
    service_api: ServiceAPI, project: dict[str, Any]
) -> None:
    project_id, _ = ids(project)
    created = await new_branch(service_api, project_id, name="scaling")
    endpoint_id = created["endpoints"][0]["id"]
    change = {"autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 4, "suspend_timeout_seconds": 120}
    updated = await service_api("update_endpoint", project_id, endpoint_id, {"endpoint": change})
    assert [op["action"] for op in updated["operations"]] == ["apply_config"]
    assert updated["operations"][0]["status"] == "finished"
    stored = (await service_api("get_endpoint", project_id, endpoint_id))["endpoint"]
    assert {key: stored[key] for key in change} == change
    assert (await service_api("update_endpoint", project_id, endpoint_id, {"endpoint": change}))["operations"] == []

    suspended = await service_api("suspend_endpoint", project_id, endpoint_id)
    await service_api.wait(project_id, suspended["operations"])
    await wait_state(service_api, project_id, endpoint_id, "idle")
    idle_change = {"endpoint": {"autoscaling_limit_max_cu": 2}}
    assert (await service_api("update_endpoint", project_id, endpoint_id, idle_change))["operations"] == []
    woken = await uri_of(service_api, project_id, created["branch"]["id"])
    assert len(await fetch(woken, "SELECT 1")) == 1

    recent = (await service_api("list_operations", project_id, limit=5))["operations"]
    mine = [op["action"] for op in recent if op.get("endpoint_id") == endpoint_id]
    assert mine[:3] == ["start_compute", "suspend_compute", "apply_config"]  # newest first
    await service_api.wait(
        project_id, (await service_api("delete_branch", project_id, created["branch"]["id"]))["operations"]
    )
