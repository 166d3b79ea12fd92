"""Neon's rules and answers on local Neon, each tried to break: protected branches, restore parentage, schema diffs
at points in time, idempotent deletes, read-only and schema-only branches, the schema as JSON, exact parent LSNs,
the account level (auth, user, organisations, regions), and nothing left on disk by deletions.

Every call runs directly and over real HTTP, every answer checked against Neon's OpenAPI spec (see ``conftest``).
Tests that would change the shared project's tree use projects of their own.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.local_neon.helpers import ServiceAPI, execute, fetch, ids, new_branch, uri_of

pytestmark = pytest.mark.anyio


async def _project(api: ServiceAPI, name: str, **options: Any) -> dict[str, Any]:
    body = await api("create_project", {"project": {"name": name, **options}})
    await api.wait(body["project"]["id"], body["operations"])
    return body


async def _count(uri: str, table: str) -> int:
    rows = await fetch(uri, f"SELECT count(*) AS n FROM {table}")
    return int(rows[0]["n"])


def _timelines(root: Path) -> set[str]:
    return {entry.name for entry in root.iterdir() if entry.name.startswith(("tl-", "ro-"))}


# --- protected branches ------------------------------------------------------------------------------------------


async def test_protected_branches_hold_neons_rules(service_api: ServiceAPI) -> None:
    before = _timelines(service_api.neon.clusters_root)
    created = await _project(service_api, "guarded")
    project_id, root_id = ids(created)
    root_uri = created["connection_uris"][0]["connection_uri"]
    await execute(root_uri, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    prot = await new_branch(service_api, project_id, name="prod", protected=True)
    prot_id = prot["branch"]["id"]
    prot_password = (await service_api("reveal_password", project_id, prot_id, "neondb_owner"))["password"]
    prot_endpoint = prot["endpoints"][0]["id"]

    child = await new_branch(service_api, project_id, name="from-prod", parent_id=prot_id)
    child_id = child["branch"]["id"]
    child_password = (await service_api("reveal_password", project_id, child_id, "neondb_owner"))["password"]
    assert child_password != prot_password, "a branch of a protected branch gets passwords of its own"
    child_uri = await uri_of(service_api, project_id, child_id)
    assert child_password in child_uri and await _count(child_uri, "t") == 1
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(child_uri.replace(child_password, prot_password))
    assert child["connection_uris"][0]["connection_parameters"]["password"] == child_password
    reset_child = await service_api("restore_branch", project_id, child_id, {"source_branch_id": prot_id})
    await service_api.wait(project_id, reset_child["operations"])
    assert (await service_api("reveal_password", project_id, child_id, "neondb_owner"))["password"] == child_password
    assert await _count(child_uri, "t") == 1, "a reset from a protected parent keeps the child's own passwords"
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(child_uri.replace(child_password, prot_password))

    reset = {"source_branch_id": root_id}
    assert "cannot be reset" in await service_api.refused(422, "restore_branch", project_id, prot_id, reset)
    assert "cannot be deleted" in await service_api.refused(422, "delete_endpoint", project_id, prot_endpoint)
    assert "protected" in await service_api.refused(422, "delete_branch", project_id, prot_id)
    assert "protected" in await service_api.refused(422, "delete_project", project_id)
    assert (await service_api("get_endpoint", project_id, prot_endpoint))["endpoint"]["id"] == prot_endpoint

    await service_api("update_branch", project_id, prot_id, {"branch": {"protected": False}})
    deleted = await service_api("delete_project", project_id)
    assert deleted["project"]["id"] == project_id
    await service_api.refused(404, "get_project", project_id)
    await asyncio.sleep(0.5)  # the servers stop and their directories go as the deletion finishes
    assert _timelines(service_api.neon.clusters_root) <= before, "a deleted project leaves no cluster behind"


# --- restore -----------------------------------------------------------------------------------------------------


async def test_restore_preserves_the_old_state_as_the_parent_and_reset_undoes_it(service_api: ServiceAPI) -> None:
    created = await _project(service_api, "restored")
    project_id, root_id = ids(created)
    uri = created["connection_uris"][0]["connection_uri"]
    await execute(uri, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
    await asyncio.sleep(0.5)
    moment = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.5)
    await execute(uri, "INSERT INTO t VALUES (2)")

    body = {"source_branch_id": root_id, "source_timestamp": moment, "preserve_under_name": "root_old"}
    restored = await service_api("restore_branch", project_id, root_id, body)
    await service_api.wait(project_id, restored["operations"])
    branches = (await service_api("list_branches", project_id))["branches"]
    backup = next(b for b in branches if b["name"] == "root_old")
    root = next(b for b in branches if b["id"] == root_id)
    assert root["parent_id"] == backup["id"] and "parent_id" not in backup, "the backup takes the root's place"
    assert [b["name"] for b in branches if "parent_id" not in b] == ["root_old"], "one root"
    assert root["default"] and not backup["default"]
    uri = await uri_of(service_api, project_id, root_id)
    assert await _count(uri, "t") == 1

    reset = await service_api("restore_branch", project_id, root_id, {"source_branch_id": backup["id"]})
    await service_api.wait(project_id, reset["operations"])
    assert await _count(uri, "t") == 2, "reset from parent undid the restore"
    await service_api.refused(422, "delete_branch", project_id, backup["id"])  # the root, and a parent
    await service_api("delete_project", project_id)


# --- schemas -----------------------------------------------------------------------------------------------------


async def test_compare_schema_at_points_in_time(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    branch = await new_branch(service_api, project_id, name="schema-points")
    branch_id = branch["branch"]["id"]
    uri = branch["connection_uris"][0]["connection_uri"]
    await asyncio.sleep(0.5)
    before = datetime.now(UTC).isoformat()
    await asyncio.sleep(0.5)
    await execute(uri, "CREATE TABLE added_later (id int)")
    query = {"db_name": "neondb", "base_branch_id": branch_id}
    assert (await service_api("compare_schema", project_id, branch_id, **query))["diff"] == ""
    diff = (await service_api("compare_schema", project_id, branch_id, base_timestamp=before, **query))["diff"]
    assert "+CREATE TABLE public.added_later" in diff
    back = (await service_api("compare_schema", project_id, branch_id, timestamp=before, **query))["diff"]
    assert "-CREATE TABLE public.added_later" in back
    await service_api("delete_branch", project_id, branch_id)


async def test_schema_as_json(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    uri = project["connection_uris"][0]["connection_uri"]
    await execute(
        uri,
        "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, item int NOT NULL REFERENCES items (id), "
        "total numeric(10, 2), doubled int GENERATED ALWAYS AS (item * 2) STORED)",
    )
    body = await service_api("branch_schema", project_id, root_id, db_name="neondb", format="json")
    tables = {(t["schema"], t["name"]): t for t in body["json"]["tables"]}
    orders = tables[("public", "orders")]
    columns = {c["name"]: c for c in orders["columns"]}
    assert columns["total"]["type"] == "numeric(10,2)" and columns["total"]["nullable"]
    assert not columns["item"]["nullable"] and columns["doubled"]["generated"]
    kinds = {c["type"]: c for c in orders["constraints"]}
    assert kinds["primary_key"]["columns"] == ["id"]
    assert kinds["foreign_key"]["referenced_table"] == {"schema": "public", "table": "items", "columns": ["id"]}
    assert "sql" in await service_api("branch_schema", project_id, root_id, db_name="neondb")
    await service_api.refused(400, "branch_schema", project_id, root_id, db_name="neondb", format="yaml")


async def test_schema_only_branches_are_roots_with_the_schema_and_no_data(
    service_api: ServiceAPI, project: dict[str, Any]
) -> None:
    project_id, root_id = ids(project)
    created = await service_api(
        "create_branch",
        project_id,
        {"branch": {"name": "schema-only", "init_source": "schema-only"}, "endpoints": [{"type": "read_write"}]},
    )
    await service_api.wait(project_id, created["operations"])
    branch = (await service_api("get_branch", project_id, created["branch"]["id"]))["branch"]
    assert branch["init_source"] == "schema-only" and "parent_id" not in branch
    uri = created["connection_uris"][0]["connection_uri"]
    assert await _count(uri, "items") == 0, "the schema without the data"
    await execute(uri, "INSERT INTO items VALUES (1, 'a')")
    assert await _count(project["connection_uris"][0]["connection_uri"], "items") >= 2
    await service_api.refused(
        400, "create_branch", project_id, {"branch": {"name": "x", "init_source": "nothing"}, "endpoints": []}
    )
    await service_api("delete_branch", project_id, branch["id"])  # a schema-only root is not the project's root
    assert branch["id"] != root_id


# --- idempotent deletes --------------------------------------------------------------------------------------------


async def test_deleting_what_is_gone_answers_204(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    branch = await new_branch(service_api, project_id, name="deleted-twice")
    branch_id = branch["branch"]["id"]
    await service_api.wait(project_id, (await service_api("delete_branch", project_id, branch_id))["operations"])
    await service_api.gone("delete_branch", project_id, branch_id)
    await service_api.gone("delete_branch", project_id, "br-never-was-00000000")
    await service_api.gone("delete_endpoint", project_id, "ep-never-was-00000000")
    await service_api.gone("delete_database", project_id, root_id, "never_was")
    await service_api.gone("delete_role", project_id, root_id, "never_was")
    await service_api.refused(404, "delete_branch", "no-such-project-00000000", branch_id)
    await service_api.refused(404, "delete_role", project_id, branch_id, "neondb_owner")  # its branch is gone


# --- parent LSN --------------------------------------------------------------------------------------------------


async def test_a_branch_at_an_lsn_reports_that_lsn(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    uri = project["connection_uris"][0]["connection_uri"]
    await execute(uri, "CREATE TABLE IF NOT EXISTS lsn_marks (x int)")
    lsn = str((await fetch(uri, "SELECT pg_current_wal_insert_lsn()::text AS lsn"))[0]["lsn"])
    await execute(uri, "INSERT INTO lsn_marks VALUES (1)")
    created = await new_branch(service_api, project_id, name="at-lsn", parent_lsn=lsn)
    branch = (await service_api("get_branch", project_id, created["branch"]["id"]))["branch"]
    assert branch["parent_lsn"] == lsn
    assert await _count(created["connection_uris"][0]["connection_uri"], "lsn_marks") == 0
    await service_api("delete_branch", project_id, branch["id"])
    assert root_id != branch["id"]


# --- the account level ---------------------------------------------------------------------------------------------


async def test_auth_user_organizations_and_regions(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    auth = await service_api("get_auth_details")
    me = await service_api("me")
    assert auth == {"account_id": me["id"], "auth_method": "api_key_user"}
    assert me["billing_account"]["state"] == "active"
    (org,) = (await service_api("list_user_organizations"))["organizations"]
    assert org["id"].startswith("org-") and org["managed_by"] == "console"
    assert await service_api("get_organization", org["id"]) == org
    await service_api.refused(404, "get_organization", "org-none-such-00000000")
    regions = (await service_api("list_regions"))["regions"]
    assert [(r["region_id"], r["default"]) for r in regions] == [("local", True)]

    got = (await service_api("get_project", project_id))["project"]
    assert got["org_id"] == org["id"]
    listed = await service_api("list_projects", org_id=org["id"], search="sho", limit=400)
    assert project_id in [p["id"] for p in listed["projects"]]
    assert all(p["org_id"] == org["id"] for p in listed["projects"])
    await service_api.refused(404, "list_projects", org_id="org-none-such-00000000")
    assert (await service_api("list_shared_projects", limit=400))["projects"] == []
    await service_api.refused(400, "list_shared_projects", limit=0)
    message = await service_api.refused(400, "create_project", {"project": {"region_id": "aws-us-east-2"}})
    assert "local" in message
    await service_api.refused(404, "create_project", {"project": {"org_id": "org-none-such-00000000"}})
