"""The SQL tools on Neon (local Neon over real HTTP): targets, protection, backups, time travel, waking, API economy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from server.settings import Settings
from tests.helpers import mcp_client, sql, text_of
from tests.neon.conftest import NeonTestProject, injected_faults

pytestmark = pytest.mark.anyio


async def test_a_read_runs_on_the_default_branch_and_says_where(neon_settings: Callable[..., Settings]) -> None:
    async with mcp_client(neon_settings()) as client:
        result = await client.call_tool("run_sql", {"sql": "SELECT count(*) AS n FROM auslex.users"})
    assert not result.is_error, text_of(result)
    data: Any = result.structured_content
    assert data["rows"] == [[3]]
    assert data["branch"] == "production"
    assert data["database"] == "neondb"


async def test_the_production_branch_refuses_writes_in_branches_mode(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    async with mcp_client(neon_settings()) as client:
        result = await client.call_tool("run_sql", {"sql": "INSERT INTO auslex.users VALUES (99, 'intruder')"})
    assert result.is_error
    text = text_of(result)
    assert "production is protected" in text and "create_branch" in text
    assert (await sql(project.uri, "SELECT count(*) FROM auslex.users WHERE id = 99"))[0][0] == 0


async def test_a_protection_by_neon_or_by_default_holds_too(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    protected_branch: Callable[[str], dict[str, Any]],
) -> None:
    marked = protected_branch("marked")
    # With another production name, the default branch is still protected for being the default.
    async with mcp_client(neon_settings(production_branch="prod")) as client:
        on_default = await client.call_tool("run_sql", {"sql": "DELETE FROM auslex.users WHERE id = 1"})
        on_marked = await client.call_tool(
            "run_sql", {"sql": "DELETE FROM auslex.users WHERE id = 1", "branch": "marked"}
        )
    assert on_default.is_error and "default branch" in text_of(on_default)
    assert on_marked.is_error and "Neon marks it protected" in text_of(on_marked)
    assert (await sql(project.uri_of(marked["id"]), "SELECT count(*) FROM auslex.users"))[0][0] == 3


async def test_writes_run_on_an_unprotected_branch_by_name_or_id(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("feature")
    async with mcp_client(neon_settings()) as client:
        by_name = await client.call_tool(
            "run_sql", {"sql": "INSERT INTO auslex.users VALUES (10, 'ten')", "branch": "feature"}
        )
        by_id = await client.call_tool(
            "run_sql", {"sql": "SELECT name FROM auslex.users WHERE id = 10", "branch": branch["id"]}
        )
        tx = await client.call_tool(
            "run_sql_transaction",
            {"statements": ["UPDATE auslex.users SET name = 'TEN' WHERE id = 10"], "branch": "feature"},
        )
    assert not by_name.is_error, text_of(by_name)
    assert by_id.structured_content is not None and by_id.structured_content["rows"] == [["ten"]]
    assert not tx.is_error and tx.structured_content is not None and tx.structured_content["branch"] == "feature"
    assert (await sql(project.uri, "SELECT count(*) FROM auslex.users WHERE id = 10"))[0][0] == 0


async def test_unknown_names_list_what_exists(neon_settings: Callable[..., Settings]) -> None:
    async with mcp_client(neon_settings()) as client:
        branch = await client.call_tool("run_sql", {"sql": "SELECT 1", "branch": "nope"})
        database = await client.call_tool("run_sql", {"sql": "SELECT 1", "database": "nodb"})
    assert branch.is_error and "branch 'nope' not found" in text_of(branch) and "production" in text_of(branch)
    assert database.is_error and "database 'nodb' not found" in text_of(database) and "neondb" in text_of(database)


async def test_a_warm_run_sql_makes_no_api_request(
    neon_settings: Callable[..., Settings], api_requests: Callable[[], int]
) -> None:
    async with mcp_client(neon_settings()) as client:
        before = api_requests()
        first = await client.call_tool("run_sql", {"sql": "SELECT 1"})
        cold = api_requests() - before
        before = api_requests()
        for _ in range(5):
            warm = await client.call_tool("run_sql", {"sql": "SELECT count(*) FROM auslex.users"})
            assert not warm.is_error, text_of(warm)
        assert api_requests() - before == 0
    assert not first.is_error
    assert 1 <= cold <= 6, cold


async def test_full_mode_confirms_and_backs_up_before_destroying_on_production(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    async with mcp_client(neon_settings(access_mode="full")) as client:
        asked = await client.call_tool("run_sql", {"sql": "TRUNCATE auslex.users"})
        data: Any = asked.structured_content
        assert data["status"] == "confirmation_required"
        assert "backup branch backup/production/" in data["summary"]
        assert (await sql(project.uri, "SELECT count(*) FROM auslex.users"))[0][0] == 3
        try:
            done = await client.call_tool("confirm_operation", {"operation_id": data["operation_id"]})
            assert not done.is_error, text_of(done)
            backup = done.structured_content["backup_branch"] if done.structured_content else None
            assert backup and backup.startswith("backup/production/")
            kept = project.branch(backup)
            assert kept is not None and kept["expires_at"]
            expires = datetime.fromisoformat(kept["expires_at"].replace("Z", "+00:00"))
            assert 6.9 < (expires - datetime.now(UTC)).total_seconds() / 86_400 <= 7.0
            production = project.branch("production")
            assert production is not None and kept["parent_id"] == production["id"]
            # The backup has no compute of its own (it costs nothing until used): give it one to look inside.
            body = project.api.call(
                "POST",
                f"/projects/{project.id}/endpoints",
                expect=201,
                json={"endpoint": {"branch_id": kept["id"], "type": "read_write"}},
            )
            project.api.wait(project.id, body["operations"])
            assert (await sql(project.uri_of(kept["id"]), "SELECT count(*) FROM auslex.users"))[0][0] == 3
            assert (await sql(project.uri, "SELECT count(*) FROM auslex.users"))[0][0] == 0
        finally:
            await sql(
                project.uri,
                "INSERT INTO auslex.users SELECT g, 'user ' || g FROM generate_series(1, 3) g ON CONFLICT DO NOTHING",
            )


async def test_a_time_travel_read_sees_a_row_deleted_since(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("history")
    uri = project.uri_of(branch["id"])
    await asyncio.sleep(1.1)
    moment = datetime.now(UTC).isoformat()
    await asyncio.sleep(1.1)
    await sql(uri, "DELETE FROM auslex.users WHERE id = 2")
    async with mcp_client(neon_settings()) as client:
        now = await client.call_tool("run_sql", {"sql": "SELECT id FROM auslex.users ORDER BY id", "branch": "history"})
        then = await client.call_tool(
            "run_sql", {"sql": "SELECT id FROM auslex.users ORDER BY id", "branch": "history", "as_of": moment}
        )
        write = await client.call_tool(
            "run_sql", {"sql": "DELETE FROM auslex.users WHERE id = 1", "branch": "history", "as_of": moment}
        )
    assert now.structured_content is not None and now.structured_content["rows"] == [[1], [3]]
    assert not then.is_error, text_of(then)
    assert then.structured_content is not None and then.structured_content["rows"] == [[1], [2], [3]]
    assert then.structured_content["as_of"] == moment
    assert write.is_error and "reads only" in text_of(write)
    assert not [b for b in project.branches() if b["name"].startswith("time-travel/")], "no branch left behind"


async def test_a_suspended_compute_is_woken_by_a_query(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("sleepy")
    endpoints = project.api.call("GET", f"/projects/{project.id}/branches/{branch['id']}/endpoints")["endpoints"]
    endpoint = endpoints[0]
    async with mcp_client(neon_settings()) as client:
        first = await client.call_tool("run_sql", {"sql": "SELECT 1", "branch": "sleepy"})
        assert not first.is_error, text_of(first)
        body = project.api.call("POST", f"/projects/{project.id}/endpoints/{endpoint['id']}/suspend")
        project.api.wait(project.id, body["operations"])
        read = await client.call_tool("run_sql", {"sql": "SELECT count(*) FROM auslex.users", "branch": "sleepy"})
        write = await client.call_tool(
            "run_sql", {"sql": "INSERT INTO auslex.users VALUES (7, 'seven')", "branch": "sleepy"}
        )
    assert not read.is_error, text_of(read)
    assert read.structured_content is not None and read.structured_content["rows"] == [[3]]
    assert not write.is_error, text_of(write)
    state = project.api.call("GET", f"/projects/{project.id}/endpoints/{endpoint['id']}")["endpoint"]
    assert state["current_state"] == "active"


async def test_sql_tools_succeed_under_injected_api_faults(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("stormy")
    with injected_faults(project.api):
        async with mcp_client(neon_settings()) as client:
            read = await client.call_tool("run_sql", {"sql": "SELECT count(*) FROM auslex.users", "branch": "stormy"})
            schema = await client.call_tool("describe_schema", {"table": "auslex.users", "branch": "stormy"})
    assert not read.is_error, text_of(read)
    assert not schema.is_error, text_of(schema)
    assert "stormy" in text_of(schema)


async def test_branch_needs_neon_with_a_database_url(make_settings: Callable[..., Settings]) -> None:
    async with mcp_client(make_settings()) as client:
        result = await client.call_tool("run_sql", {"sql": "SELECT 1", "branch": "production"})
        tools = {tool.name for tool in (await client.list_tools()).tools}
    assert result.is_error and "branch= needs Neon" in text_of(result)
    assert "list_branches" not in tools and "create_branch" not in tools


async def test_the_project_is_named_by_id_or_name_and_several_projects_need_a_choice(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    async with mcp_client(neon_settings(neon_project_id="agents")) as client:
        by_name = await client.call_tool("run_sql", {"sql": "SELECT count(*) FROM auslex.users"})
    other = project.api.call("POST", "/projects", expect=201, json={"project": {"name": "second"}})
    try:
        project.api.wait(other["project"]["id"], other["operations"])
        async with mcp_client(neon_settings(neon_project_id=None)) as client:
            unset = await client.call_tool("run_sql", {"sql": "SELECT 1"})
    finally:
        project.api.http.delete(f"/projects/{other['project']['id']}")
    async with mcp_client(neon_settings(neon_project_id="nothing-like-it")) as client:
        unknown = await client.call_tool("run_sql", {"sql": "SELECT 1"})
    assert not by_name.is_error, text_of(by_name)
    assert unset.is_error and "NEON_PROJECT_ID" in text_of(unset) and "agents" in text_of(unset)
    assert unknown.is_error and "project 'nothing-like-it' not found" in text_of(unknown)


async def test_settings_choose_the_default_branch_database_and_role(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("dev")
    async with mcp_client(neon_settings(neon_branch="dev", neon_database="neondb", neon_role="neondb_owner")) as client:
        where = await client.call_tool("run_sql", {"sql": "SELECT current_user, current_database()"})
        write = await client.call_tool("run_sql", {"sql": "INSERT INTO auslex.users VALUES (50, 'fifty')"})
    async with mcp_client(neon_settings(neon_role="nobody_here")) as client:
        role = await client.call_tool("run_sql", {"sql": "SELECT 1"})
    assert where.structured_content is not None and where.structured_content["branch"] == "dev"
    assert where.structured_content["rows"] == [["neondb_owner", "neondb"]]
    assert not write.is_error, "dev is not protected"
    assert role.is_error and "role 'nobody_here' not found" in text_of(role) and "neondb_owner" in text_of(role)


async def test_statements_outside_a_transaction_go_direct_and_leave_no_session_state_on_the_pooler(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("upkeep")
    async with mcp_client(neon_settings()) as client:
        vacuum = await client.call_tool("run_sql", {"sql": "VACUUM ANALYZE auslex.users", "branch": "upkeep"})
        index = await client.call_tool(
            "run_sql", {"sql": "CREATE INDEX CONCURRENTLY users_name ON auslex.users (name)", "branch": "upkeep"}
        )
        timeout = await client.call_tool("run_sql", {"sql": "SHOW statement_timeout", "branch": "upkeep"})
    assert not vacuum.is_error, text_of(vacuum)
    assert not index.is_error, text_of(index)
    # Through the pooler, a read sees the server's own SET LOCAL value, never a session value left behind.
    assert timeout.structured_content is not None and timeout.structured_content["rows"] == [["30s"]]
    pooled = project.uri_of(project.branch("upkeep")["id"], pooled=True)  # type: ignore[index]
    assert (await sql(pooled, "SHOW statement_timeout"))[0][0] == "0"


async def test_two_backups_in_the_same_second_both_succeed(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    from server.neon.backups import Backups
    from server.neon.client import NeonClient
    from server.neon.targets import Directory

    branch = project.create_branch("twice")
    settings = neon_settings()
    assert settings.neon_api_key is not None
    async with NeonClient(settings.neon_api_key.get_secret_value(), base_url=settings.neon_api_host) as client:
        backups = Backups(client, Directory(client, project_id=project.id))
        first, second = await asyncio.gather(
            backups.take(project.id, branch["id"], "twice"), backups.take(project.id, branch["id"], "twice")
        )
    assert first and second and first != second
    assert {first, second} <= {b["name"] for b in project.branches()}
