"""LocalNeon endpoints, roles, databases, connection URIs, schemas and operations, on the shared session project."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from tests.local_neon.helpers import ServiceAPI, execute, fetch, ids, new_branch, uri_of, wait_state

pytestmark = pytest.mark.anyio


# --- endpoints ---------------------------------------------------------------------------------------------------


async def test_suspend_start_and_restart_an_endpoint(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    created = await new_branch(service_api, project_id, name="computes")
    endpoint = created["endpoints"][0]
    uri = created["connection_uris"][0]["connection_uri"]
    assert endpoint["host"].startswith(endpoint["id"] + ".localhost:") and endpoint["type"] == "read_write"

    suspended = await service_api("suspend_endpoint", project_id, endpoint["id"])
    assert suspended["endpoint"]["pending_state"] == "idle"
    assert [op["action"] for op in suspended["operations"]] == ["suspend_compute"]
    await service_api.wait(project_id, suspended["operations"])
    assert (await wait_state(service_api, project_id, endpoint["id"], "idle"))["suspended_at"]

    started = await service_api("start_endpoint", project_id, endpoint["id"])
    await service_api.wait(project_id, started["operations"])
    assert len(await fetch(uri, "SELECT 1")) == 1

    restarted = await service_api("restart_endpoint", project_id, endpoint["id"])
    assert [op["action"] for op in restarted["operations"]] == ["suspend_compute", "start_compute"]
    await service_api.wait(project_id, restarted["operations"])
    assert len(await fetch(uri, "SELECT 1")) == 1

    listed = await service_api.list_endpoints(project_id)
    assert endpoint["id"] in [e["id"] for e in listed["endpoints"]]
    await service_api.wait(
        project_id, (await service_api("delete_branch", project_id, created["branch"]["id"]))["operations"]
    )


async def test_an_idle_endpoint_is_suspended_after_its_timeout(
    service_api: ServiceAPI, project: dict[str, Any]
) -> None:
    project_id, _ = ids(project)
    body = {"branch": {"name": "sleepy"}, "endpoints": [{"type": "read_write", "suspend_timeout_seconds": 1}]}
    created = await service_api("create_branch", project_id, body)
    await service_api.wait(project_id, created["operations"])
    endpoint_id = created["endpoints"][0]["id"]
    assert created["endpoints"][0]["suspend_timeout_seconds"] == 1
    uri = created["connection_uris"][0]["connection_uri"]

    held = await asyncpg.connect(uri)  # an open session keeps the endpoint in use
    try:
        await asyncio.sleep(1.5)
        assert (await service_api("get_endpoint", project_id, endpoint_id))["endpoint"]["current_state"] == "active"
    finally:
        await held.close()
    await wait_state(service_api, project_id, endpoint_id, "idle")
    actions = [op["action"] for op in (await service_api("list_operations", project_id))["operations"]]
    assert "suspend_compute" in actions

    # asking for a connection URI wakes it, as Neon's proxy wakes a compute on connect
    woken = await uri_of(service_api, project_id, created["branch"]["id"])
    assert len(await fetch(woken, "SELECT 1")) == 1
    await service_api("update_endpoint", project_id, endpoint_id, {"endpoint": {"suspend_timeout_seconds": 0}})
    await service_api.wait(
        project_id, (await service_api("delete_branch", project_id, created["branch"]["id"]))["operations"]
    )


async def test_endpoint_create_update_delete_and_refusals(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    branch = await service_api("create_branch", project_id, {"branch": {"name": "endpointless"}})
    branch_id = branch["branch"]["id"]
    await service_api.wait(project_id, branch["operations"])
    assert (await service_api.list_endpoints(project_id, branch_id))["endpoints"] == []
    await service_api.refused(
        404, "connection_uri", project_id, database_name="neondb", role_name="neondb_owner", branch_id=branch_id
    )

    await service_api.refused(
        400, "create_endpoint", project_id, {"endpoint": {"branch_id": branch_id, "type": "huge"}}
    )
    await service_api.refused(400, "create_endpoint", project_id, {"endpoint": {"type": "read_write"}})
    await service_api.refused(
        404, "create_endpoint", project_id, {"endpoint": {"branch_id": "br-x-y-00000000", "type": "read_write"}}
    )
    await service_api.refused(
        400, "create_endpoint", project_id, {"endpoint": {"branch_id": root_id, "type": "read_write"}}
    )

    body = {"endpoint": {"branch_id": branch_id, "type": "read_write", "suspend_timeout_seconds": 300, "name": "w"}}
    created = await service_api("create_endpoint", project_id, body)
    endpoint_id = created["endpoint"]["id"]
    assert created["endpoint"]["current_state"] == "init" and created["endpoint"]["pending_state"] == "active"
    await service_api.wait(project_id, created["operations"])
    assert len(await fetch(await uri_of(service_api, project_id, branch_id), "SELECT 1")) == 1

    updated = await service_api(
        "update_endpoint", project_id, endpoint_id, {"endpoint": {"suspend_timeout_seconds": 600}}
    )
    assert updated["endpoint"]["suspend_timeout_seconds"] == 600
    await service_api.refused(
        400, "update_endpoint", project_id, endpoint_id, {"endpoint": {"suspend_timeout_seconds": "x"}}
    )
    disabled = await service_api("update_endpoint", project_id, endpoint_id, {"endpoint": {"disabled": True}})
    await service_api.wait(project_id, disabled["operations"])
    assert (await wait_state(service_api, project_id, endpoint_id, "idle"))["disabled"]
    await service_api.refused(400, "start_endpoint", project_id, endpoint_id)
    await service_api("update_endpoint", project_id, endpoint_id, {"endpoint": {"disabled": False}})

    deleted = await service_api("delete_endpoint", project_id, endpoint_id)
    await service_api.wait(project_id, deleted["operations"])
    await service_api.refused(404, "get_endpoint", project_id, endpoint_id)
    await service_api.wait(project_id, (await service_api("delete_branch", project_id, branch_id))["operations"])


# --- roles and databases -----------------------------------------------------------------------------------------


async def test_roles_create_reveal_reset_and_delete(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, branch_id = ids(project)
    created = await service_api("create_role", project_id, branch_id, {"role": {"name": "sally"}})
    password = created["role"]["password"]
    assert created["role"]["name"] == "sally" and [op["action"] for op in created["operations"]] == ["apply_config"]
    await service_api.wait(project_id, created["operations"])
    assert (await service_api("reveal_password", project_id, branch_id, "sally"))["password"] == password
    uri = await uri_of(service_api, project_id, branch_id, role="sally")
    assert [r["u"] for r in await fetch(uri, "SELECT current_user AS u")] == ["sally"]
    assert await fetch(uri, "SELECT 1 FROM items LIMIT 1"), "Neon's roles can read all data"

    reset = await service_api("reset_password", project_id, branch_id, "sally")
    assert reset["role"]["password"] != password
    await service_api.wait(project_id, reset["operations"])
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(uri)
    assert len(await fetch(await uri_of(service_api, project_id, branch_id, role="sally"), "SELECT 1")) == 1

    await service_api.refused(409, "create_role", project_id, branch_id, {"role": {"name": "sally"}})
    await service_api.refused(400, "create_role", project_id, branch_id, {"role": {"name": "pg_mine"}})
    await service_api.refused(400, "create_role", project_id, branch_id, {"role": {}})
    nologin = await service_api("create_role", project_id, branch_id, {"role": {"name": "nologin", "no_login": True}})
    await service_api.wait(project_id, nologin["operations"])
    await service_api.refused(412, "reveal_password", project_id, branch_id, "nologin")
    names = [r["name"] for r in (await service_api("list_roles", project_id, branch_id))["roles"]]
    assert names == ["neondb_owner", "sally", "nologin"]
    assert (await service_api("get_role", project_id, branch_id, "sally"))["role"]["name"] == "sally"
    assert "owns" in await service_api.refused(422, "delete_role", project_id, branch_id, "neondb_owner")

    for name in ("sally", "nologin"):
        await service_api.wait(
            project_id, (await service_api("delete_role", project_id, branch_id, name))["operations"]
        )
    await service_api.refused(404, "get_role", project_id, branch_id, "sally")
    await service_api.refused(404, "reveal_password", project_id, branch_id, "sally")
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        await asyncpg.connect(uri)


async def test_databases_create_and_delete(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, branch_id = ids(project)
    created = await service_api(
        "create_database", project_id, branch_id, {"database": {"name": "shop2", "owner_name": "neondb_owner"}}
    )
    assert created["database"]["name"] == "shop2" and isinstance(created["database"]["id"], int)
    await service_api.wait(project_id, created["operations"])
    uri = await uri_of(service_api, project_id, branch_id, db="shop2")
    await execute(uri, "CREATE TABLE t (x int)")
    assert [d["name"] for d in (await service_api("list_databases", project_id, branch_id))["databases"]] == [
        "neondb",
        "shop2",
    ]
    assert (await service_api("get_database", project_id, branch_id, "shop2"))["database"][
        "owner_name"
    ] == "neondb_owner"

    await service_api.refused(
        409, "create_database", project_id, branch_id, {"database": {"name": "shop2", "owner_name": "neondb_owner"}}
    )
    await service_api.refused(
        400, "create_database", project_id, branch_id, {"database": {"name": "x", "owner_name": "nobody"}}
    )
    await service_api.refused(
        400, "create_database", project_id, branch_id, {"database": {"name": "postgres", "owner_name": "neondb_owner"}}
    )
    await service_api.refused(400, "create_database", project_id, branch_id, {"database": {"name": "x"}})

    held = await asyncpg.connect(uri)  # deleting ends the sessions on the database
    deleted = await service_api("delete_database", project_id, branch_id, "shop2")
    await service_api.wait(project_id, deleted["operations"])
    await held.close()
    await service_api.refused(404, "get_database", project_id, branch_id, "shop2")
    await service_api.refused(404, "connection_uri", project_id, database_name="shop2", role_name="neondb_owner")
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(uri)


# --- connection URIs, schemas, operations ------------------------------------------------------------------------


async def test_connection_uri_pooled_and_unknown_names(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, branch_id = ids(project)
    direct = await uri_of(service_api, project_id, branch_id)
    pooled = await service_api(
        "connection_uri", project_id, database_name="neondb", role_name="neondb_owner", pooled=True
    )
    params = project["connection_uris"][0]["connection_parameters"]
    endpoint_id = project["endpoints"][0]["id"]
    assert pooled["uri"] == direct.replace(endpoint_id, f"{endpoint_id}-pooler"), "Neon's pooler name, in the options"
    assert params["pooler_host"] == params["host"].replace(endpoint_id, f"{endpoint_id}-pooler")
    with_endpoint = await service_api(
        "connection_uri", project_id, database_name="neondb", role_name="neondb_owner", endpoint_id=endpoint_id
    )
    assert with_endpoint["uri"] == direct
    await service_api.refused(404, "connection_uri", project_id, database_name="nope", role_name="neondb_owner")
    await service_api.refused(404, "connection_uri", project_id, database_name="neondb", role_name="nope")
    await service_api.refused(
        404, "connection_uri", "no-such-project", database_name="neondb", role_name="neondb_owner"
    )


async def test_schema_at_head_and_in_the_past_and_compare(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    schema = (await service_api("branch_schema", project_id, root_id, db_name="neondb"))["sql"]
    assert "CREATE TABLE public.items" in schema
    await service_api.refused(404, "branch_schema", project_id, root_id, db_name="nope")

    child = await new_branch(service_api, project_id, name="schema-change")
    child_id = child["branch"]["id"]
    child_uri = child["connection_uris"][0]["connection_uri"]
    moment = datetime.now(UTC)
    await asyncio.sleep(0.02)
    await execute(child_uri, "CREATE TABLE public.orders (id bigint PRIMARY KEY, total numeric)")

    diff = (await service_api("compare_schema", project_id, child_id, base_branch_id=None, db_name="neondb"))["diff"]
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert "+CREATE TABLE public.orders (" in changed and not [line for line in changed if "items" in line]
    same = await service_api("compare_schema", project_id, root_id, base_branch_id=root_id, db_name="neondb")
    assert same["diff"] == ""
    await service_api.refused(400, "compare_schema", project_id, root_id, base_branch_id=None, db_name="neondb")

    past = (await service_api("branch_schema", project_id, child_id, db_name="neondb", timestamp=moment.isoformat()))[
        "sql"
    ]
    assert "orders" not in past and "CREATE TABLE public.items" in past
    await service_api.refused(
        400, "branch_schema", project_id, child_id, db_name="neondb", timestamp="2999-01-01T00:00:00Z"
    )
    await service_api.wait(project_id, (await service_api("delete_branch", project_id, child_id))["operations"])


async def test_operations_list_page_and_get(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    everything = (await service_api("list_operations", project_id))["operations"]
    assert len(everything) >= 2
    created = [datetime.fromisoformat(op["created_at"]) for op in everything]
    assert created == sorted(created, reverse=True), "newest first"
    first = await service_api("list_operations", project_id, limit=1)
    assert first["operations"] == everything[:1]
    rest = await service_api("list_operations", project_id, cursor=first["pagination"]["cursor"], limit=1000)
    assert rest["operations"] == everything[1:]
    operation = (await service_api("get_operation", project_id, everything[-1]["id"]))["operation"]
    assert operation["action"] == "create_timeline" and operation["status"] == "finished"
    assert operation["total_duration_ms"] > 0
    await service_api.refused(404, "get_operation", project_id, "00000000-0000-4000-8000-000000000000")
    await service_api.refused(404, "list_operations", "no-such-project")
    await service_api.refused(400, "list_operations", project_id, limit=0)


async def test_unknown_ids_are_404_naming_the_id(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, branch_id = ids(project)
    missing = "br-none-such-00000000"
    for method, args in (
        ("get_branch", (project_id, missing)),
        ("list_roles", (project_id, missing)),
        ("list_databases", (project_id, missing)),
        ("get_endpoint", (project_id, "ep-none-such-00000000")),
        ("start_endpoint", (project_id, "ep-none-such-00000000")),
        ("get_branch", ("no-such-project", branch_id)),
        ("get_database", (project_id, branch_id, "nope")),
    ):
        message = await service_api.refused(404, method, *args)
        assert "not found" in message and any(str(arg) in message for arg in args), message
    with pytest.raises(Exception, match="not found"):
        await service_api.list_endpoints(project_id, missing)
