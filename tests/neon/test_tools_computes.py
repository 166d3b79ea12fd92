"""The compute tools on Neon (local Neon over real HTTP): list_computes, configure_compute, manage_compute,
create_read_replica, list_operations and connection_check; Neon's limits, confirmation on protected branches, read
replicas refusing writes at the database, waking, findings with fixes, API faults.

Protected cases use a branch of their own that Neon marks protected: the shared project's production compute is
never suspended here (other tests reach it directly).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from server.errors import DatabaseError
from server.neon.client import NeonClient
from server.neon.connections import Connections
from server.neon.targets import Directory
from server.settings import Settings
from server.sql.database import Caps, Guards, Statement
from tests.helpers import Human, data_of, mcp_client, sql, text_of
from tests.neon.conftest import NeonTestProject, injected_faults

pytestmark = pytest.mark.anyio

READING = {"list_computes", "list_operations", "connection_check"}
CHANGING = {"configure_compute", "manage_compute", "create_read_replica"}


def _endpoint(project: NeonTestProject, branch_id: str, kind: str = "read_write") -> dict[str, Any]:
    endpoints = project.api.call("GET", f"/projects/{project.id}/branches/{branch_id}/endpoints")["endpoints"]
    return next(e for e in endpoints if e["type"] == kind)


# --- registration and listing ----------------------------------------------------------------------------------------


async def test_read_only_mode_offers_only_the_reading_tools(neon_settings: Callable[..., Settings]) -> None:
    async with mcp_client(neon_settings(access_mode="read-only")) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert names >= READING
    assert not names & (CHANGING | {"create_role"})
    async with mcp_client(neon_settings()) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert READING | CHANGING | {"create_role"} <= set(tools)
    assert tools["list_computes"].annotations is not None and tools["list_computes"].annotations.read_only_hint
    manage = tools["manage_compute"].annotations
    assert manage is not None and manage.destructive_hint and not manage.read_only_hint


async def test_list_computes_shows_type_state_autoscaling_suspend_pooler_and_host(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("cm-listed")
    endpoint = _endpoint(project, branch["id"])
    async with mcp_client(neon_settings()) as client:
        one = data_of(await client.call_tool("list_computes", {"branch": "cm-listed"}))
        everything = data_of(await client.call_tool("list_computes", {}))
    (compute,) = one["computes"]
    assert compute["id"] == endpoint["id"] and compute["type"] == "read_write" and compute["state"] == "active"
    assert compute["branch"] == "cm-listed" and compute["host"] == endpoint["host"]
    assert compute["min_cu"] == 0.25 and compute["max_cu"] == 0.25 and compute["pooler_mode"] == "transaction"
    assert compute["suspend_timeout_seconds"] == endpoint["suspend_timeout_seconds"]
    by_branch = {c["branch"]: c for c in everything["computes"]}
    assert by_branch["production"]["protected_because"] and "cm-listed" in by_branch


# --- configure -------------------------------------------------------------------------------------------------------


async def test_configure_compute_changes_autoscaling_and_scale_to_zero(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("cm-sized")
    async with mcp_client(neon_settings()) as client:
        result = await client.call_tool(
            "configure_compute",
            {"branch": "cm-sized", "min_cu": 0.5, "max_cu": 4, "suspend_timeout_seconds": 120},
        )
        again = await client.call_tool("configure_compute", {"branch": "cm-sized", "max_cu": 4})
    data = data_of(result)
    assert data["status"] == "ok" and data["action"] == "configure"
    assert data["after"] == {"min_cu": 0.5, "max_cu": 4, "suspend_timeout_seconds": 120}
    assert "0.5–4 CU" in text_of(result)
    stored = _endpoint(project, branch["id"])
    assert (stored["autoscaling_limit_min_cu"], stored["autoscaling_limit_max_cu"]) == (0.5, 4)
    assert stored["suspend_timeout_seconds"] == 120
    assert data_of(again)["changed"] is False


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"min_cu": 1, "max_cu": 10}, "the maximum permitted autoscaling range is 8 CU"),
        ({"min_cu": 0.3}, "autoscaling_limit_min_cu 0.3 is not a compute size Neon offers"),
        ({"min_cu": 4, "max_cu": 2}, "must not be greater than autoscaling_limit_max_cu"),
        ({"min_cu": 12, "max_cu": 20}, "a fixed size"),
        ({"suspend_timeout_seconds": 30}, "from 60 to 604800 seconds"),
        ({"suspend_timeout_seconds": 604801}, "suspend_timeout_seconds 604801 is out of range"),
    ],
)
async def test_configure_compute_refuses_values_outside_neons_limits_with_neons_reason(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    arguments: dict[str, Any],
    reason: str,
) -> None:
    branch = project.create_branch("cm-limits")
    endpoint = _endpoint(project, branch["id"])
    async with mcp_client(neon_settings()) as client:
        result = await client.call_tool("configure_compute", {"branch": "cm-limits", **arguments})
    assert result.is_error and reason in text_of(result)
    # Local Neon refuses the same values, for the same reason, when asked directly.
    fields = {
        {"min_cu": "autoscaling_limit_min_cu", "max_cu": "autoscaling_limit_max_cu"}.get(key, key): value
        for key, value in arguments.items()
    }
    refused = project.api.call(
        "PATCH", f"/projects/{project.id}/endpoints/{endpoint['id']}", expect=400, json={"endpoint": fields}
    )
    assert reason in refused["message"]
    assert _endpoint(project, branch["id"])["autoscaling_limit_max_cu"] == 0.25


async def test_a_protected_branchs_compute_changes_only_after_confirmation(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    protected_branch: Callable[[str], dict[str, Any]],
) -> None:
    branch = protected_branch("cm-guarded")
    async with mcp_client(neon_settings()) as client:
        asked = data_of(
            await client.call_tool("configure_compute", {"branch": "cm-guarded", "suspend_timeout_seconds": 600})
        )
        assert asked["status"] == "confirmation_required"
        assert "Neon marks it protected" in asked["summary"] and "suspends after 600 s idle" in asked["summary"]
        assert _endpoint(project, branch["id"])["suspend_timeout_seconds"] != 600
        done = data_of(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
        started = data_of(await client.call_tool("manage_compute", {"endpoint": "cm-guarded", "action": "start"}))
    assert done["status"] == "ok" and _endpoint(project, branch["id"])["suspend_timeout_seconds"] == 600
    assert started["status"] == "ok" and started["changed"] is False  # starting never needs a confirmation


@pytest.mark.parametrize(("human", "restarted"), [(Human(), True), (Human("decline"), False)])
async def test_restarting_a_protected_compute_is_asked_by_elicitation(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    protected_branch: Callable[[str], dict[str, Any]],
    human: Human,
    restarted: bool,
) -> None:
    branch = protected_branch("cm-asked")
    endpoint = _endpoint(project, branch["id"])
    uri = project.uri_of(branch["id"])
    started = "SELECT pg_postmaster_start_time()"
    before = (await sql(uri, started))[0][0]
    async with mcp_client(neon_settings(), elicitation_callback=human) as client:
        result = await client.call_tool("manage_compute", {"endpoint": endpoint["id"], "action": "restart"})
    data = data_of(result)
    (question,) = human.asked
    assert f"Restart the read-write compute {endpoint['id']} of branch cm-asked" in question
    assert data["status"] == ("ok" if restarted else "declined")
    assert ((await sql(uri, started))[0][0] != before) is restarted


# --- manage ----------------------------------------------------------------------------------------------------------


async def test_a_suspended_compute_is_woken_by_the_next_query(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("cm-sleeper")
    async with mcp_client(neon_settings()) as client:
        assert not (await client.call_tool("run_sql", {"sql": "SELECT 1", "branch": "cm-sleeper"})).is_error
        suspended = data_of(await client.call_tool("manage_compute", {"endpoint": "cm-sleeper", "action": "suspend"}))
        assert suspended["state"] == "idle" and _endpoint(project, branch["id"])["current_state"] == "idle"
        twice = data_of(await client.call_tool("manage_compute", {"endpoint": "cm-sleeper", "action": "suspend"}))
        read = await client.call_tool("run_sql", {"sql": "SELECT count(*) FROM auslex.users", "branch": "cm-sleeper"})
    assert twice["changed"] is False and "already" in " ".join(twice["notes"])
    assert data_of(read)["rows"] == [[3]]
    assert _endpoint(project, branch["id"])["current_state"] == "active"


async def test_manage_compute_names_what_exists_when_the_compute_is_unknown(
    neon_settings: Callable[..., Settings],
) -> None:
    async with mcp_client(neon_settings()) as client:
        unknown = await client.call_tool("manage_compute", {"endpoint": "ep-nothing-here-00000000", "action": "start"})
    assert unknown.is_error and "compute 'ep-nothing-here-00000000' not found" in text_of(unknown)


# --- read replicas ---------------------------------------------------------------------------------------------------


async def test_a_read_replica_refuses_a_write_at_the_database(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("cm-replicated")
    async with mcp_client(neon_settings()) as client:
        made = data_of(await client.call_tool("create_read_replica", {"branch": "cm-replicated"}))
        listed = data_of(await client.call_tool("list_computes", {"branch": "cm-replicated"}))
    assert made["in_recovery"] is True and made["state"] == "active"
    assert made["elapsed_ms"] < 20_000
    assert sorted(c["type"] for c in listed["computes"]) == ["read_only", "read_write"]
    uri = project.api.call(
        "GET",
        f"/projects/{project.id}/connection_uri",
        params={
            "branch_id": branch["id"],
            "endpoint_id": made["compute"],
            "database_name": "neondb",
            "role_name": "neondb_owner",
        },
    )["uri"]
    conn = await asyncpg.connect(uri)
    try:
        assert await conn.fetchval("SELECT count(*) FROM auslex.users") == 3
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("INSERT INTO auslex.users VALUES (70, 'refused')")
        with pytest.raises(asyncpg.PostgresError, match="recovery"):
            await conn.execute("BEGIN; SET TRANSACTION READ WRITE")
    finally:
        await conn.close()


async def test_connections_for_read_only_mode_go_through_a_replica_when_there_is_one(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("cm-reader")
    settings = neon_settings()
    assert settings.neon_api_key is not None
    client = NeonClient(settings.neon_api_key.get_secret_value(), base_url=settings.neon_api_host)
    guards = Guards(30, 5, 60)
    directory = Directory(client, project_id=project.id)
    write = [Statement("INSERT INTO auslex.users VALUES (71, 'through the replica')", verb="INSERT")]
    caps = Caps(10, 10_000)
    try:
        target = await directory.target("cm-reader")
        without = Connections(client, directory, guards, prefer_replicas=True)
        assert (await (await without.databases(target)).run(write, read_only=False, caps=caps))[0].rows_affected == 1
        await without.close()
        body = project.api.call(
            "POST",
            f"/projects/{project.id}/endpoints",
            expect=201,
            json={"endpoint": {"branch_id": branch["id"], "type": "read_only"}},
        )
        project.api.wait(project.id, body["operations"])
        replicated = Connections(client, directory, guards, prefer_replicas=True)
        databases = await replicated.databases(target)
        with pytest.raises(DatabaseError) as refused:
            await databases.run(write, read_only=False, caps=caps)
        # The server opens writes with BEGIN READ WRITE, which a hot standby refuses itself ("during recovery").
        assert refused.value.sqlstate == "0A000" and "recovery" in refused.value.message
        read = await databases.run([Statement("SELECT count(*) FROM auslex.users")], read_only=True, caps=caps)
        assert read[0].rows == [[4]]
        await replicated.close()
    finally:
        await client.aclose()


# --- operations ------------------------------------------------------------------------------------------------------


async def test_list_operations_newest_first_for_a_branch_with_durations(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("cm-history")
    async with mcp_client(neon_settings()) as client:
        await client.call_tool("manage_compute", {"endpoint": "cm-history", "action": "suspend"})
        mine = data_of(await client.call_tool("list_operations", {"branch": "cm-history", "limit": 10}))
        recent = data_of(await client.call_tool("list_operations", {"limit": 2}))
        bad = await client.call_tool("list_operations", {"limit": 0})
    actions = [op["action"] for op in mine["operations"]]
    assert actions[0] == "suspend_compute" and "create_timeline" in actions and "start_compute" in actions
    assert all(op["branch_id"] == branch["id"] and op["status"] == "finished" for op in mine["operations"])
    assert all(op["duration_ms"] is not None for op in mine["operations"])
    assert len(recent["operations"]) == 2 and recent["more"] is True
    assert bad.is_error


# --- connection_check ------------------------------------------------------------------------------------------------


def _findings(data: dict[str, Any], check: str) -> list[dict[str, Any]]:
    return [f for f in data["findings"] if f["check"] == check]


async def test_connection_check_of_a_healthy_branch_finds_no_problem_and_shows_no_password(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("cm-healthy")
    password = project.api.call(
        "GET", f"/projects/{project.id}/branches/{branch['id']}/roles/neondb_owner/reveal_password"
    )["password"]
    async with mcp_client(neon_settings()) as client:
        result = await client.call_tool("connection_check", {"branch": "cm-healthy"})
    data = data_of(result)
    assert data["ok"] is True, data["findings"]
    assert {r["route"] for r in data["routes"] if r["reachable"]} == {"pooled", "direct"}
    assert all(r["connect_ms"] > 0 for r in data["routes"])
    assert data["tls"] == "require" and "requires TLS" in _findings(data, "tls")[0]["finding"]  # the front door
    assert _findings(data, "connections")[0]["status"] == "ok" and data["max_connections"] > 0
    assert "transaction mode" in _findings(data, "pooler")[0]["finding"]
    assert all(f["fix"] for f in data["findings"] if f["status"] != "ok")
    assert password not in text_of(result) and password not in json.dumps(data)


async def test_connection_check_finds_a_suspended_compute_a_wrong_role_and_a_missing_database(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("cm-trouble")
    endpoint = _endpoint(project, branch["id"])
    body = project.api.call("POST", f"/projects/{project.id}/endpoints/{endpoint['id']}/suspend")
    project.api.wait(project.id, body["operations"])
    async with mcp_client(neon_settings()) as client:
        asleep = data_of(await client.call_tool("connection_check", {"branch": "cm-trouble"}))
        role = data_of(await client.call_tool("connection_check", {"branch": "cm-trouble", "role": "app_user"}))
        database = data_of(await client.call_tool("connection_check", {"branch": "cm-trouble", "database": "shop"}))
    compute = _findings(asleep, "compute")
    assert asleep["compute_state"] == "idle" and compute[0]["status"] == "warning"
    assert "was suspended" in compute[0]["finding"] and "suspend_timeout_seconds" in compute[0]["fix"]
    assert asleep["woke_in_ms"] is not None and asleep["ok"] is True

    (missing_role,) = _findings(role, "role")
    assert missing_role["status"] == "problem" and "role 'app_user' does not exist" in missing_role["finding"]
    assert "create_role" in missing_role["fix"] and "neondb_owner" in role["login_roles"]
    assert role["ok"] is False

    (missing_db,) = _findings(database, "database")
    assert missing_db["status"] == "problem" and "database 'shop' does not exist" in missing_db["finding"]
    assert "neondb" in database["databases"] and "CREATE DATABASE" in missing_db["fix"]
    assert all(r["reachable"] for r in database["routes"])  # the other checks ran on neondb


async def test_connection_check_finds_a_role_that_may_not_log_in(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("cm-nologin")
    await sql(project.uri_of(branch["id"]), "CREATE ROLE readers NOLOGIN")
    async with mcp_client(neon_settings()) as client:
        data = data_of(await client.call_tool("connection_check", {"branch": "cm-nologin", "role": "readers"}))
    (finding,) = _findings(data, "role")
    assert finding["status"] == "problem" and "may not log in" in finding["finding"]
    assert "ALTER ROLE readers LOGIN" in finding["fix"]


# --- faults ----------------------------------------------------------------------------------------------------------


async def test_compute_tools_succeed_under_injected_api_faults(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("cm-stormy")
    with injected_faults(project.api):
        async with mcp_client(neon_settings()) as client:
            listed = await client.call_tool("list_computes", {"branch": "cm-stormy"})
            configured = await client.call_tool("configure_compute", {"branch": "cm-stormy", "max_cu": 2})
            operations = await client.call_tool("list_operations", {"branch": "cm-stormy"})
    assert data_of(listed)["computes"] and data_of(configured)["after"]["max_cu"] == 2
    assert data_of(operations)["operations"]


async def test_read_only_mode_reads_through_a_read_replica(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("ro-replica")
    async with mcp_client(neon_settings(access_mode="full")) as client:
        created = await client.call_tool("create_read_replica", {"branch": "ro-replica"})
        assert not created.is_error, text_of(created)
    async with mcp_client(neon_settings(access_mode="read-only")) as client:
        read = await client.call_tool(
            "run_sql", {"sql": "SELECT pg_is_in_recovery(), count(*) FROM auslex.users", "branch": "ro-replica"}
        )
    assert not read.is_error, text_of(read)
    assert read.structured_content is not None and read.structured_content["rows"] == [[True, 3]]
