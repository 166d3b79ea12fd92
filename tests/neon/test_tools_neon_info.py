"""The Neon information tools on local Neon (real HTTP, real PostgreSQL): projects, the branch tree, one branch,
connection strings with their passwords redacted or revealed, schema comparisons, and API economy under faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from server.settings import Settings
from tests.helpers import mcp_client, sql, text_of
from tests.neon.conftest import NeonTestProject, injected_faults

pytestmark = pytest.mark.anyio

INFO_TOOLS = [
    "list_projects",
    "describe_project",
    "list_branches",
    "describe_branch",
    "get_connection_string",
    "compare_schemas",
]


def _data(result: Any) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


async def test_the_tools_are_read_only_and_idempotent(neon_settings: Callable[..., Settings]) -> None:
    async with mcp_client(neon_settings()) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in INFO_TOOLS:
        annotations = tools[name].annotations
        assert annotations is not None
        assert annotations.read_only_hint and annotations.idempotent_hint, name
        assert not annotations.destructive_hint and not annotations.open_world_hint, name
        assert tools[name].output_schema is not None, name


async def test_list_projects_marks_the_served_project(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    async with mcp_client(neon_settings()) as client:
        data = _data(result := await client.call_tool("list_projects", {}))
    served = [p for p in data["projects"] if p["served"]]
    assert [p["id"] for p in served] == [project.id] and data["served"] == project.id
    assert served[0]["name"] == "agents" and served[0]["pg_version"] and served[0]["created_at"]
    assert f"* agents ({project.id})" in text_of(result)


async def test_list_projects_works_when_no_project_is_settled(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    body = project.api.call("POST", "/projects", expect=201, json={"project": {"name": "other"}})
    other = body["project"]["id"]
    try:
        project.api.wait(other, body["operations"])
        async with mcp_client(neon_settings(neon_project_id=None)) as client:
            listed = await client.call_tool("list_projects", {})
            described = await client.call_tool("describe_project", {})
            named = await client.call_tool("describe_project", {"project": "other"})
    finally:
        project.api.http.delete(f"/projects/{other}")
    data = _data(listed)
    assert {project.id, other} <= {p["id"] for p in data["projects"]}
    assert data["served"] is None and not any(p["served"] for p in data["projects"])
    assert "NEON_PROJECT_ID" in (data["note"] or "")
    assert described.is_error and "several projects" in text_of(described) and "agents" in text_of(described)
    assert _data(named)["id"] == other and _data(named)["served"] is False


async def test_describe_project(neon_settings: Callable[..., Settings], project: NeonTestProject) -> None:
    project.create_branch("side")
    async with mcp_client(neon_settings()) as client:
        data = _data(result := await client.call_tool("describe_project", {}))
        unknown = await client.call_tool("describe_project", {"project": "nope"})
        renamed = _data(await client.call_tool("describe_project", {}))
    async with mcp_client(neon_settings(production_branch="prod")) as client:
        elsewhere = _data(await client.call_tool("describe_project", {"project": "agents"}))
    assert data["id"] == project.id and data["served"] is True
    assert data["history_retention_seconds"] and data["history_retention_seconds"] > 0
    assert data["default_branch"] == "production" and data["production_branch"] == "production"
    assert data["production_branch_exists"] is True
    assert data["branches"] == len(project.branches()) and data["branches"] >= 2
    assert data["computes"] >= 2
    assert "history retention" in text_of(result) and "default branch production" in text_of(result)
    assert unknown.is_error and "project 'nope' not found" in text_of(unknown) and "agents" in text_of(unknown)
    assert renamed == data
    assert elsewhere["production_branch"] == "prod" and elsewhere["production_branch_exists"] is False
    assert elsewhere["served"] is True


async def test_list_branches_shows_the_tree_protection_and_computes(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    api_requests: Callable[[], int],
    protected_branch: Callable[[str], dict[str, Any]],
) -> None:
    production = project.branch("production")
    assert production is not None
    feature = project.create_branch("feature")
    expires = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    project.create_branch("feature-child", parent=feature["id"], expires_at=expires.isoformat())
    protected_branch("locked")  # unprotected afterwards, so that it is deleted with the test's other branches
    async with mcp_client(neon_settings()) as client:
        await client.call_tool("list_branches", {})  # settles the project
        before = api_requests()
        data = _data(result := await client.call_tool("list_branches", {}))
        used = api_requests() - before
    assert used == 2, used  # one branches call, one endpoints call
    by_name = {b["name"]: b for b in data["branches"]}
    assert data["project_id"] == project.id
    assert data["branches"][0]["name"] == "production" and by_name["production"]["default"]
    assert by_name["production"]["protected_because"] == "it is the production branch"
    assert by_name["locked"]["protected_because"] == "Neon marks it protected"
    assert by_name["feature"]["protected"] is False and by_name["feature"]["protected_because"] is None
    assert by_name["feature"]["parent"] == "production" and by_name["feature-child"]["parent"] == "feature"
    assert by_name["feature-child"]["depth"] == 2 and by_name["feature-child"]["expires_at"].startswith(
        f"{expires:%Y-%m-%d}"
    )
    assert by_name["feature"]["compute"] in {"active", "idle", "init"}
    assert "logical_size" in by_name["production"]  # local Neon does not report sizes yet: null there
    names = [b["name"] for b in data["branches"]]
    assert names.index("feature") < names.index("feature-child")
    lines = text_of(result).splitlines()
    child_line = next(line for line in lines if line.lstrip().startswith("feature-child "))
    feature_line = next(line for line in lines if line.lstrip().startswith("feature "))
    assert child_line.startswith("    feature-child") and feature_line.startswith("  feature ")
    assert lines.index(child_line) > lines.index(feature_line)
    assert "protected: it is the production branch" in text_of(result)
    assert "protected: Neon marks it protected" in text_of(result)
    assert f"expires {expires:%Y-%m-%d}" in child_line


async def test_describe_branch(neon_settings: Callable[..., Settings], project: NeonTestProject) -> None:
    parent = project.create_branch("parent")
    project.create_branch("kid", parent=parent["id"])
    for kind, body in (
        ("roles", {"role": {"name": "reader"}}),
        ("databases", {"database": {"name": "extra", "owner_name": "reader"}}),
    ):
        made = project.api.call("POST", f"/projects/{project.id}/branches/{parent['id']}/{kind}", expect=201, json=body)
        project.api.wait(project.id, made["operations"])
    async with mcp_client(neon_settings()) as client:
        data = _data(result := await client.call_tool("describe_branch", {"branch": "parent"}))
        by_id = _data(await client.call_tool("describe_branch", {"branch": parent["id"]}))
        production = _data(await client.call_tool("describe_branch", {"branch": "production"}))
        unknown = await client.call_tool("describe_branch", {"branch": "nope"})
    assert data["id"] == parent["id"] and by_id["name"] == "parent"
    assert data["parent"] == "production" and data["children"] == ["kid"]
    assert data["protected"] is False and production["protected_because"] == "it is the production branch"
    assert production["parent"] is None and "parent" in production["children"]
    [endpoint] = data["endpoints"]
    assert endpoint["type"] == "read_write" and endpoint["host"] and endpoint["state"]
    assert endpoint["autoscaling_limit_min_cu"] is not None
    assert {"neondb", "extra"} <= {d["name"] for d in data["databases"]}
    assert {"name": "neondb", "owner": "neondb_owner"} in data["databases"]
    assert {"name": "extra", "owner": "reader"} in data["databases"]
    assert {"neondb_owner", "reader"} <= {r["name"] for r in data["roles"]}
    assert all(set(r) == {"name", "protected"} for r in data["roles"])
    text = text_of(result)
    assert "untrusted-data-" in text and "neondb (neondb_owner)" in text and "extra (reader)" in text
    assert "suspends" in text and "password" not in text.lower()
    assert unknown.is_error and "branch 'nope' not found" in text_of(unknown) and "production" in text_of(unknown)


def _password(uri: str) -> str:
    password = urlsplit(uri).password
    assert password
    return unquote(password)


async def test_connection_strings_are_redacted_by_default(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    real = _password(project.uri)
    async with mcp_client(neon_settings()) as client:
        pooled = await client.call_tool("get_connection_string", {})
        direct = await client.call_tool("get_connection_string", {"pooled": False})
    for result in (pooled, direct):
        data = _data(result)
        assert data["password_redacted"] is True
        assert urlsplit(data["uri"]).password == "****"
        assert real not in data["uri"] and real not in text_of(result) and real not in str(data)
        assert "NEON_MCP_REVEAL_PASSWORDS" in text_of(result) and "console" in text_of(result)
        assert data["branch"] == "production" and data["database"] == "neondb" and data["role"] == "neondb_owner"
        assert data["protected_because"] == "it is the production branch"
    assert _data(pooled)["pooled"] is True and "PgBouncer in transaction mode" in text_of(pooled)
    assert "prepared statements" in text_of(pooled) and "migrations" in text_of(pooled)
    assert _data(direct)["pooled"] is False and "direct" in text_of(direct)
    # Both go through local Neon's front door; the pooled one names the endpoint's pooler, as on Neon.
    assert _data(pooled)["uri"].endswith("-pooler") and not _data(direct)["uri"].endswith("-pooler")


async def test_connection_strings_reveal_the_password_when_the_operator_allows(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("open")
    async with mcp_client(neon_settings(reveal_passwords=True)) as client:
        direct = _data(await client.call_tool("get_connection_string", {"branch": "open", "pooled": False}))
        pooled = _data(await client.call_tool("get_connection_string", {"branch": "open"}))
    assert direct["password_redacted"] is False and direct["password_note"] is None
    assert direct["branch_id"] == branch["id"] and direct["protected_because"] is None
    assert _password(direct["uri"]) == _password(project.uri_of(branch["id"]))
    for uri in (direct["uri"], pooled["uri"]):
        assert (await sql(uri, "SELECT count(*) FROM auslex.users"))[0][0] == 3


async def test_connection_string_names_what_exists_when_a_name_is_wrong(
    neon_settings: Callable[..., Settings],
) -> None:
    async with mcp_client(neon_settings()) as client:
        branch = await client.call_tool("get_connection_string", {"branch": "nope"})
        database = await client.call_tool("get_connection_string", {"database": "nodb"})
        role = await client.call_tool("get_connection_string", {"role": "nobody"})
    assert branch.is_error and "branch 'nope' not found" in text_of(branch) and "production" in text_of(branch)
    assert database.is_error and "database 'nodb' not found" in text_of(database) and "neondb" in text_of(database)
    assert role.is_error and "role 'nobody' not found" in text_of(role) and "neondb_owner" in text_of(role)


async def test_compare_schemas_shows_a_table_made_on_a_child_branch(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    child = project.create_branch("migration")
    project.create_branch("untouched")
    await sql(project.uri_of(child["id"]), "CREATE TABLE auslex.invoices (id int PRIMARY KEY, total numeric)")
    async with mcp_client(neon_settings()) as client:
        data = _data(result := await client.call_tool("compare_schemas", {"branch": "migration"}))
        reverse = _data(await client.call_tool("compare_schemas", {"branch": "production", "base_branch": "migration"}))
        same = await client.call_tool("compare_schemas", {"branch": "untouched"})
        orphan = await client.call_tool("compare_schemas", {"branch": "production"})
        wrong_db = await client.call_tool("compare_schemas", {"branch": "migration", "database": "nodb"})
    assert data["base_branch"] == "production" and data["database"] == "neondb" and not data["identical"]
    assert "+CREATE TABLE auslex.invoices" in data["diff"] and data["added"] > 0 and data["removed"] == 0
    assert "untrusted-data-" in text_of(result) and "auslex.invoices" in text_of(result)
    assert "-CREATE TABLE auslex.invoices" in reverse["diff"] and reverse["removed"] == data["added"]
    assert _data(same)["identical"] is True and "no differences" in text_of(same)
    assert orphan.is_error and "no parent" in text_of(orphan) and "base_branch" in text_of(orphan)
    assert wrong_db.is_error and "database 'nodb' not found" in text_of(wrong_db) and "neondb" in text_of(wrong_db)


async def test_compare_schemas_cuts_a_long_diff_at_max_bytes(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    child = project.create_branch("wide")
    columns = ", ".join(f"column_with_a_long_name_{n} text" for n in range(200))
    await sql(project.uri_of(child["id"]), f"CREATE TABLE auslex.wide ({columns})")
    async with mcp_client(neon_settings(max_bytes=1_000)) as client:
        data = _data(result := await client.call_tool("compare_schemas", {"branch": "wide"}))
    assert data["truncated"] is True and data["omitted_bytes"] > 0
    assert len(data["diff"].encode()) <= 1_000 and data["diff"].endswith("\n")
    assert data["added"] > 200  # counted over the whole diff
    assert "truncated:" in text_of(result)


async def test_every_tool_succeeds_under_injected_api_faults(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("stormy")
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_projects", {}),
        ("describe_project", {}),
        ("list_branches", {}),
        ("describe_branch", {"branch": "stormy"}),
        ("get_connection_string", {"branch": "stormy"}),
        ("compare_schemas", {"branch": "stormy"}),
    ]
    # 30% of requests fail (not the fixture's 45%): every tool here makes several requests, and a request fails for
    # good only when all 7 attempts do; at 45% that is 0.4% per request, too often for a suite to stay green.
    with injected_faults(project.api, **{"429": 0.15, "423": 0.1, "503": 0.05}):
        async with mcp_client(neon_settings()) as client:
            results = [(name, await client.call_tool(name, args)) for name, args in calls]
    for name, result in results:
        assert not result.is_error, (name, text_of(result))
        assert "stormy" in text_of(result) or name in {"list_projects", "describe_project"}, name
