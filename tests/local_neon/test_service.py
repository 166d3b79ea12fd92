"""LocalNeon on real clusters: projects, branches (head and past points), restore, deletion rules, 423, expiry.

One LocalNeon and one project serve the whole session (every cluster start costs time); tests that need their own
data directory make one. Every answer is checked against Neon's OpenAPI spec when ../shared holds it (fixtures in
``conftest.py``, helpers in ``helpers.py``).
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.local_neon import NeonAPIError
from tests.local_neon.helpers import P, ServiceAPI, execute, fetch, ids, new_branch, uri_of
from tests.local_neon.spec import SPEC_PATH, response_validator

pytestmark = pytest.mark.anyio


def test_answers_are_checked_against_neons_spec() -> None:
    """``ServiceAPI`` validates every answer when the spec is present; a body missing required fields is caught."""
    if not SPEC_PATH.exists():
        pytest.skip(f"Neon's OpenAPI spec is not at {SPEC_PATH} (../shared is absent): answers are not checked")
    from jsonschema import ValidationError

    with pytest.raises(ValidationError):
        response_validator("GET", P, 200)({"project": {"id": "x"}})


# --- projects ----------------------------------------------------------------------------------------------------


async def test_a_project_comes_with_production_neondb_and_its_owner(
    service_api: ServiceAPI, project: dict[str, Any]
) -> None:
    project_id, branch_id = ids(project)
    assert project["branch"]["name"] == "production" and project["branch"]["default"]
    assert [(d["name"], d["owner_name"]) for d in project["databases"]] == [("neondb", "neondb_owner")]
    assert project["roles"][0]["name"] == "neondb_owner" and project["roles"][0]["password"]
    assert [op["action"] for op in project["operations"]] == ["create_timeline", "start_compute"]

    uri = project["connection_uris"][0]["connection_uri"]
    await execute(uri, "CREATE TABLE owner_made (id int); INSERT INTO owner_made VALUES (1)")
    assert [r["n"] for r in await fetch(uri, "SELECT count(*) AS n FROM items")] == [2]
    assert [r["current_user"] for r in await fetch(uri, "SELECT current_user")] == ["neondb_owner"]
    assert uri == await uri_of(service_api, project_id, branch_id)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(uri.replace(project["roles"][0]["password"], "wrong"))

    got = await service_api("get_project", project_id)
    assert got["project"]["name"] == "shop" and got["project"]["pg_version"] >= 14
    branch = (await service_api("get_branch", project_id, branch_id))["branch"]
    assert branch["current_state"] == "ready" and "parent_id" not in branch
    endpoint = (await service_api.list_endpoints(project_id, branch_id))["endpoints"][0]
    assert endpoint["current_state"] == "active" and endpoint["id"].startswith("ep-")


async def test_projects_list_update_and_validation(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    listed = await service_api("list_projects", limit=400, search="sho")
    assert project_id in [p["id"] for p in listed["projects"]]
    assert listed["pagination"]["cursor"] == listed["projects"][-1]["id"]
    after = await service_api("list_projects", cursor=listed["pagination"]["cursor"])
    assert project_id not in [p["id"] for p in after["projects"]]

    updated = await service_api("update_project", project_id, {"project": {"history_retention_seconds": 3600}})
    assert updated["project"]["history_retention_seconds"] == 3600 and updated["operations"] == []
    await service_api("update_project", project_id, {"project": {"history_retention_seconds": 86400}})

    assert "pg_version" in await service_api.refused(400, "create_project", {"project": {"pg_version": 14}})
    await service_api.refused(400, "create_project", {})
    await service_api.refused(400, "create_project", {"project": {"name": ""}})
    await service_api.refused(400, "list_projects", limit=0)
    await service_api.refused(404, "get_project", "no-such-project")
    me = await service_api("me")
    assert me["id"]


# --- branches ----------------------------------------------------------------------------------------------------


async def test_a_branch_copies_its_parent_and_the_two_stay_apart(
    service_api: ServiceAPI, project: dict[str, Any]
) -> None:
    project_id, root_id = ids(project)
    parent_uri = await uri_of(service_api, project_id, root_id)
    created = await new_branch(service_api, project_id, name="dev")
    branch = created["branch"]
    assert branch["id"].startswith("br-") and branch["parent_id"] == root_id and branch["current_state"] == "init"
    assert [op["action"] for op in created["operations"]] == ["create_timeline", "start_compute"]
    assert [r["name"] for r in created["roles"]] == ["neondb_owner"] and "password" not in created["roles"][0]
    child_uri = created["connection_uris"][0]["connection_uri"]
    assert child_uri == await uri_of(service_api, project_id, branch["id"])

    assert [r["id"] for r in await fetch(child_uri, "SELECT id FROM items ORDER BY id")] == [1, 2]
    await execute(child_uri, "INSERT INTO items VALUES (3, 'child only')")
    assert len(await fetch(parent_uri, "SELECT 1 FROM items")) == 2, "a write on the child never shows on the parent"
    await execute(parent_uri, "INSERT INTO items VALUES (4, 'parent only')")
    assert [r["id"] for r in await fetch(child_uri, "SELECT id FROM items ORDER BY id")] == [1, 2, 3]

    ready = (await service_api("get_branch", project_id, branch["id"]))["branch"]
    assert ready["current_state"] == "ready" and ready["parent_lsn"].count("/") == 1 and ready["parent_timestamp"]
    await service_api.refused(409, "create_branch", project_id, {"branch": {"name": "dev"}})
    await execute(parent_uri, "DELETE FROM items WHERE id = 4")


async def test_a_branch_at_a_past_timestamp_or_lsn_sees_the_data_of_then(
    service_api: ServiceAPI, project: dict[str, Any]
) -> None:
    project_id, root_id = ids(project)
    parent_uri = await uri_of(service_api, project_id, root_id)
    await execute(parent_uri, "INSERT INTO items VALUES (10, 'deleted later')")
    await asyncio.sleep(0.02)
    moment = datetime.now(UTC)
    await asyncio.sleep(0.02)
    await execute(parent_uri, "DELETE FROM items WHERE id = 10; INSERT INTO items VALUES (11, 'after the moment')")
    lsn = (await fetch(parent_uri, "SELECT pg_current_wal_lsn()::text AS lsn"))[0]["lsn"]
    await execute(parent_uri, "DELETE FROM items WHERE id = 11")

    at_time = await new_branch(service_api, project_id, name="then", parent_timestamp=moment.isoformat())
    then_uri = at_time["connection_uris"][0]["connection_uri"]
    assert [r["id"] for r in await fetch(then_uri, "SELECT id FROM items WHERE id >= 10")] == [10]
    branch = (await service_api("get_branch", project_id, at_time["branch"]["id"]))["branch"]
    assert datetime.fromisoformat(branch["parent_timestamp"]) == moment
    await execute(then_uri, "INSERT INTO items VALUES (12, 'written on the past branch')")
    assert [r["id"] for r in await fetch(then_uri, "SELECT id FROM items WHERE id >= 10 ORDER BY id")] == [10, 12]

    at_lsn = await new_branch(service_api, project_id, name="at-lsn", parent_lsn=lsn)
    lsn_uri = at_lsn["connection_uris"][0]["connection_uri"]
    assert [r["id"] for r in await fetch(lsn_uri, "SELECT id FROM items WHERE id >= 10")] == [11]
    assert [r["id"] for r in await fetch(parent_uri, "SELECT id FROM items WHERE id >= 10")] == []

    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert "future" in await service_api.refused(
        400, "create_branch", project_id, {"branch": {"parent_timestamp": future}}
    )
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    message = await service_api.refused(400, "create_branch", project_id, {"branch": {"parent_timestamp": old}})
    assert "retention" in message
    await service_api.refused(400, "create_branch", project_id, {"branch": {"parent_timestamp": "yesterday"}})
    await service_api.refused(400, "create_branch", project_id, {"branch": {"parent_lsn": "nonsense"}})
    both = {"parent_lsn": lsn, "parent_timestamp": moment.isoformat()}
    await service_api.refused(400, "create_branch", project_id, {"branch": both})
    await service_api.refused(404, "create_branch", project_id, {"branch": {"parent_id": "br-none-such-00000000"}})
    names = {b["name"] for b in (await service_api("list_branches", project_id))["branches"]}
    assert names >= {"production", "dev", "then", "at-lsn"}

    for created in (at_time, at_lsn):
        await service_api.wait(
            project_id, (await service_api("delete_branch", project_id, created["branch"]["id"]))["operations"]
        )


async def test_an_lsn_past_the_head_fails_the_operation_and_leaves_no_branch(
    service_api: ServiceAPI, project: dict[str, Any], neon_home: Path
) -> None:
    project_id, _ = ids(project)
    before = set(os.listdir(neon_home / "clusters"))
    body = await service_api("create_branch", project_id, {"branch": {"name": "too-far", "parent_lsn": "FF/0"}})
    assert await service_api.settle(project_id, body["operations"]) == ["failed"]
    failed = (await service_api("get_operation", project_id, body["operations"][0]["id"]))["operation"]
    assert "past the head" in failed["error"]
    await service_api.refused(404, "get_branch", project_id, body["branch"]["id"])
    assert set(os.listdir(neon_home / "clusters")) == before


async def test_branch_listing_sorts_searches_and_pages(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    everything = (await service_api("list_branches", project_id, sort_by="name", sort_order="asc"))["branches"]
    names = [b["name"] for b in everything]
    assert names == sorted(names)
    first = await service_api("list_branches", project_id, sort_by="name", sort_order="asc", limit=1)
    assert [b["name"] for b in first["branches"]] == names[:1] and first["pagination"]["next"]
    rest = await service_api(
        "list_branches", project_id, sort_by="name", sort_order="asc", cursor=first["pagination"]["next"]
    )
    assert [b["name"] for b in rest["branches"]] == names[1:]
    assert [b["name"] for b in (await service_api("list_branches", project_id, search="prod"))["branches"]] == [
        "production"
    ]
    await service_api.refused(400, "list_branches", project_id, sort_by="size")


async def test_update_rename_protect_and_set_default(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    created = await service_api("create_branch", project_id, {"branch": {"name": "renamer"}})
    branch_id = created["branch"]["id"]
    assert created["endpoints"] == [] and "connection_uris" not in created
    await service_api.wait(project_id, created["operations"])
    renamed = await service_api(
        "update_branch", project_id, branch_id, {"branch": {"name": "renamed", "protected": True}}
    )
    assert renamed["branch"]["name"] == "renamed" and renamed["branch"]["protected"] and renamed["operations"] == []
    assert "protected" in await service_api.refused(422, "delete_branch", project_id, branch_id)
    await service_api("update_branch", project_id, branch_id, {"branch": {"protected": False}})
    await service_api.refused(409, "update_branch", project_id, branch_id, {"branch": {"name": "production"}})
    await service_api.refused(
        400, "update_branch", project_id, branch_id, {"branch": {"expires_at": "2000-01-01T00:00:00Z"}}
    )

    made_default = await service_api("set_default_branch", project_id, branch_id)
    assert made_default["branch"]["default"]
    assert not (await service_api("get_branch", project_id, root_id))["branch"]["default"]
    assert "root" in await service_api.refused(422, "delete_branch", project_id, root_id)
    assert "default" in await service_api.refused(422, "delete_branch", project_id, branch_id)
    await service_api("set_default_branch", project_id, root_id)
    await service_api.wait(project_id, (await service_api("delete_branch", project_id, branch_id))["operations"])
    await service_api.refused(404, "get_branch", project_id, branch_id)


async def test_deleting_refuses_a_branch_with_children(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    parent = await service_api("create_branch", project_id, {"branch": {"name": "parent"}})
    await service_api.wait(project_id, parent["operations"])
    child = await service_api(
        "create_branch", project_id, {"branch": {"name": "child", "parent_id": parent["branch"]["id"]}}
    )
    await service_api.wait(project_id, child["operations"])
    assert "child" in await service_api.refused(422, "delete_branch", project_id, parent["branch"]["id"])
    assert "default" in await service_api.refused(422, "delete_branch", project_id, root_id)
    deleted = await service_api("delete_branch", project_id, child["branch"]["id"])
    assert [op["action"] for op in deleted["operations"]] == ["delete_timeline"]
    await service_api.wait(project_id, deleted["operations"])
    await service_api.wait(
        project_id, (await service_api("delete_branch", project_id, parent["branch"]["id"]))["operations"]
    )


async def test_a_conflicting_mutation_while_an_operation_runs_gets_423(
    service_api: ServiceAPI, project: dict[str, Any]
) -> None:
    project_id, root_id = ids(project)
    created = await service_api(
        "create_branch", project_id, {"branch": {"name": "busy"}, "endpoints": [{"type": "read_write"}]}
    )
    branch_id = created["branch"]["id"]
    message = await service_api.refused(423, "create_role", project_id, branch_id, {"role": {"name": "early"}})
    assert "running conflicting operations" in message
    await service_api.refused(423, "delete_branch", project_id, branch_id)
    back = {"source_branch_id": root_id, "source_timestamp": datetime.now(UTC).isoformat(), "preserve_under_name": "x"}
    await service_api.refused(423, "restore_branch", project_id, root_id, back)  # the parent is being copied
    await service_api.wait(project_id, created["operations"])
    await service_api.wait(project_id, (await service_api("delete_branch", project_id, branch_id))["operations"])


async def test_a_branch_past_expires_at_is_deleted(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    created = await service_api("create_branch", project_id, {"branch": {"name": "ephemeral", "expires_at": soon}})
    assert created["branch"]["expires_at"] and created["branch"]["ttl_interval_seconds"] >= 1
    await service_api.wait(project_id, created["operations"])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            await service_api("get_branch", project_id, created["branch"]["id"])
        except NeonAPIError as exc:
            assert exc.status == 404
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the expired branch was not deleted")
    actions = [op["action"] for op in (await service_api("list_operations", project_id))["operations"]]
    assert "delete_timeline" in actions


# --- restore -----------------------------------------------------------------------------------------------------


async def test_restore_from_the_parent_resets_the_branch(service_api: ServiceAPI, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    created = await new_branch(service_api, project_id, name="to-reset")
    branch_id = created["branch"]["id"]
    uri = created["connection_uris"][0]["connection_uri"]
    await execute(uri, "INSERT INTO items VALUES (100, 'child change')")
    await execute(await uri_of(service_api, project_id, root_id), "INSERT INTO items VALUES (101, 'newer on parent')")

    restored = await service_api("restore_branch", project_id, branch_id, {"source_branch_id": root_id})
    assert restored["branch"]["current_state"] == "resetting"
    assert [op["action"] for op in restored["operations"]] == ["create_timeline", "start_compute"]
    await service_api.wait(project_id, restored["operations"])
    assert uri == await uri_of(service_api, project_id, branch_id), "the endpoint keeps its address"
    assert [r["id"] for r in await fetch(uri, "SELECT id FROM items WHERE id >= 100")] == [101]
    branch = (await service_api("get_branch", project_id, branch_id))["branch"]
    assert branch["last_reset_at"] and branch["current_state"] == "ready" and branch["parent_id"] == root_id

    child = await service_api("create_branch", project_id, {"branch": {"parent_id": branch_id}})
    await service_api.wait(project_id, child["operations"])
    message = await service_api.refused(400, "restore_branch", project_id, branch_id, {"source_branch_id": root_id})
    assert "preserve_under_name" in message
    await service_api.wait(
        project_id, (await service_api("delete_branch", project_id, child["branch"]["id"]))["operations"]
    )
    await service_api.wait(project_id, (await service_api("delete_branch", project_id, branch_id))["operations"])
    await execute(await uri_of(service_api, project_id, root_id), "DELETE FROM items WHERE id >= 100")


async def test_restore_to_a_point_in_time_preserves_the_old_state(
    service_api: ServiceAPI, project: dict[str, Any]
) -> None:
    project_id, _ = ids(project)
    created = await new_branch(service_api, project_id, name="travel")
    branch_id = created["branch"]["id"]
    uri = created["connection_uris"][0]["connection_uri"]
    await execute(uri, "INSERT INTO items VALUES (200, 'precious')")
    await asyncio.sleep(0.02)
    moment = datetime.now(UTC)
    await asyncio.sleep(0.02)
    await execute(uri, "DELETE FROM items WHERE id = 200; CREATE TABLE mistakes (id int)")

    body = {"source_branch_id": branch_id, "source_timestamp": moment.isoformat()}
    assert "preserve_under_name" in await service_api.refused(400, "restore_branch", project_id, branch_id, body)
    no_point = {"source_branch_id": branch_id, "preserve_under_name": "x"}
    await service_api.refused(400, "restore_branch", project_id, branch_id, no_point)
    restored = await service_api(
        "restore_branch", project_id, branch_id, {**body, "preserve_under_name": "travel-before"}
    )
    await service_api.wait(project_id, restored["operations"])

    assert [r["id"] for r in await fetch(uri, "SELECT id FROM items WHERE id = 200")] == [200]
    assert not await fetch(uri, "SELECT 1 FROM pg_class WHERE relname = 'mistakes'")
    branch = (await service_api("get_branch", project_id, branch_id))["branch"]
    kept = next(b for b in (await service_api("list_branches", project_id))["branches"] if b["name"] == "travel-before")
    assert branch["restored_as"] == kept["id"] and kept["current_state"] == "ready"
    assert branch["parent_id"] == kept["id"] and kept["parent_id"] == created["branch"]["parent_id"]
    assert [r["name"] for r in (await service_api("list_roles", project_id, kept["id"]))["roles"]] == ["neondb_owner"]

    endpoint = await service_api(
        "create_endpoint", project_id, {"endpoint": {"branch_id": kept["id"], "type": "read_write"}}
    )
    await service_api.wait(project_id, endpoint["operations"])
    kept_uri = await uri_of(service_api, project_id, kept["id"])
    assert not await fetch(kept_uri, "SELECT 1 FROM items WHERE id = 200")
    assert await fetch(kept_uri, "SELECT 1 FROM pg_class WHERE relname = 'mistakes'")

    for doomed in (branch_id, kept["id"]):  # the kept state is the restored branch's parent now
        await service_api.wait(project_id, (await service_api("delete_branch", project_id, doomed))["operations"])
