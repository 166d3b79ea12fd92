"""LocalNeon on real clusters: projects, branches (head and past points), restore, deletion rules, 423, expiry.

One LocalNeon and one project serve the whole session (every cluster start costs time); tests that need their own
data directory make one. Every answer is checked against Neon's OpenAPI spec when ../shared holds it. The fixtures
here (``neon``, ``project``, ``api``) are imported by the other ``test_service_*`` modules.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.local_neon import LocalNeon, NeonAPIError
from tests.local_neon.spec import SPEC_PATH, response_validator

pytestmark = pytest.mark.anyio

P = "/projects/{project_id}"
B = P + "/branches/{branch_id}"
E = P + "/endpoints/{endpoint_id}"

ROUTES: dict[str, tuple[str, str, int]] = {
    "me": ("GET", "/users/me", 200),
    "list_projects": ("GET", "/projects", 200),
    "create_project": ("POST", "/projects", 201),
    "get_project": ("GET", P, 200),
    "update_project": ("PATCH", P, 200),
    "delete_project": ("DELETE", P, 200),
    "list_operations": ("GET", P + "/operations", 200),
    "get_operation": ("GET", P + "/operations/{operation_id}", 200),
    "connection_uri": ("GET", P + "/connection_uri", 200),
    "list_branches": ("GET", P + "/branches", 200),
    "create_branch": ("POST", P + "/branches", 201),
    "get_branch": ("GET", B, 200),
    "update_branch": ("PATCH", B, 200),
    "delete_branch": ("DELETE", B, 200),
    "restore_branch": ("POST", B + "/restore", 200),
    "set_default_branch": ("POST", B + "/set_as_default", 200),
    "branch_schema": ("GET", B + "/schema", 200),
    "compare_schema": ("GET", B + "/compare_schema", 200),
    "list_databases": ("GET", B + "/databases", 200),
    "create_database": ("POST", B + "/databases", 201),
    "get_database": ("GET", B + "/databases/{database_name}", 200),
    "delete_database": ("DELETE", B + "/databases/{database_name}", 200),
    "list_roles": ("GET", B + "/roles", 200),
    "create_role": ("POST", B + "/roles", 201),
    "get_role": ("GET", B + "/roles/{role_name}", 200),
    "delete_role": ("DELETE", B + "/roles/{role_name}", 200),
    "reveal_password": ("GET", B + "/roles/{role_name}/reveal_password", 200),
    "reset_password": ("POST", B + "/roles/{role_name}/reset_password", 200),
    "create_endpoint": ("POST", P + "/endpoints", 201),
    "get_endpoint": ("GET", E, 200),
    "update_endpoint": ("PATCH", E, 200),
    "delete_endpoint": ("DELETE", E, 200),
    "start_endpoint": ("POST", E + "/start", 200),
    "suspend_endpoint": ("POST", E + "/suspend", 200),
    "restart_endpoint": ("POST", E + "/restart", 200),
}


@dataclass
class API:
    """Calls LocalNeon as the HTTP layer does and checks every answer against the spec's schema for its route."""

    neon: LocalNeon

    async def __call__(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result = getattr(self.neon, method)(*args, **kwargs)
        body: dict[str, Any] = await result if asyncio.iscoroutine(result) else result
        if SPEC_PATH.exists():
            http_method, path, status = ROUTES[method]
            response_validator(http_method, path, status)(body)
        return body

    async def list_endpoints(self, project_id: str, branch_id: str | None = None) -> dict[str, Any]:
        body = await self.neon.list_endpoints(project_id, branch_id)
        if SPEC_PATH.exists():
            path = B + "/endpoints" if branch_id else P + "/endpoints"
            response_validator("GET", path, 200)(body)
        return body

    async def refused(self, status: int, method: str, *args: Any, **kwargs: Any) -> str:
        """Call and expect a refusal with ``status``; returns its message."""
        with pytest.raises(NeonAPIError) as info:
            await self(method, *args, **kwargs)
        assert info.value.status == status, info.value
        return info.value.message

    async def wait(self, project_id: str, operations: list[dict[str, Any]], within: float = 60) -> None:
        """Poll the operations until they are finished, as a Neon client does."""
        deadline = time.monotonic() + within
        for operation in operations:
            while True:
                current = (await self("get_operation", project_id, operation["id"]))["operation"]
                if current["status"] == "finished":
                    break
                assert current["status"] not in ("failed", "error", "cancelled"), current
                assert time.monotonic() < deadline, f"{current['action']} still {current['status']}"
                await asyncio.sleep(0.02)

    async def settle(self, project_id: str, operations: list[dict[str, Any]], within: float = 60) -> list[str]:
        """Wait until the operations end however they end; their final statuses."""
        deadline = time.monotonic() + within
        statuses = []
        for operation in operations:
            while True:
                current = (await self("get_operation", project_id, operation["id"]))["operation"]
                if current["status"] not in ("scheduling", "running"):
                    statuses.append(current["status"])
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
        return statuses


def scratch_dir(prefix: str) -> Path:
    """A temporary directory the servers' user can traverse (pytest's tmp_path is 0700, closed to nobody)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        base.chmod(0o711)
    return base


async def fetch(uri: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(uri)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def execute(uri: str, script: str) -> None:
    conn = await asyncpg.connect(uri)
    try:
        await conn.execute(script)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def neon_home() -> Iterator[Path]:
    base = scratch_dir("neon-mcp-service-")
    yield base / "home"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
async def neon(neon_home: Path) -> AsyncIterator[LocalNeon]:
    service = LocalNeon(neon_home)
    await service.open()
    yield service
    await service.close()


@pytest.fixture(scope="session")
def api(neon: LocalNeon) -> API:
    return API(neon)


@pytest.fixture(scope="session")
async def project(api: API) -> dict[str, Any]:
    """The shared project, its creation body as answered (with ``connection_uris``), once its operations finished."""
    body = await api("create_project", {"project": {"name": "shop"}})
    await api.wait(body["project"]["id"], body["operations"])
    seed = "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a'), (2, 'b')"
    await execute(body["connection_uris"][0]["connection_uri"], seed)
    return body


def ids(project: dict[str, Any]) -> tuple[str, str]:
    return project["project"]["id"], project["branch"]["id"]


async def uri_of(api: API, project_id: str, branch_id: str, *, role: str = "neondb_owner", db: str = "neondb") -> str:
    body = await api("connection_uri", project_id, database_name=db, role_name=role, branch_id=branch_id)
    uri: str = body["uri"]
    return uri


async def new_branch(api: API, project_id: str, **branch: Any) -> dict[str, Any]:
    """Create a branch with a read-write endpoint and wait until it is ready."""
    body = await api("create_branch", project_id, {"branch": branch, "endpoints": [{"type": "read_write"}]})
    await api.wait(project_id, body["operations"])
    return body


def test_answers_are_checked_against_neons_spec() -> None:
    """``API`` validates every answer when the spec is present; a body missing required fields is caught."""
    if not SPEC_PATH.exists():
        pytest.skip(f"Neon's OpenAPI spec is not at {SPEC_PATH} (../shared is absent): answers are not checked")
    from jsonschema import ValidationError

    with pytest.raises(ValidationError):
        response_validator("GET", P, 200)({"project": {"id": "x"}})


# --- projects ----------------------------------------------------------------------------------------------------


async def test_a_project_comes_with_production_neondb_and_its_owner(api: API, project: dict[str, Any]) -> None:
    project_id, branch_id = ids(project)
    assert project["branch"]["name"] == "production" and project["branch"]["default"]
    assert [(d["name"], d["owner_name"]) for d in project["databases"]] == [("neondb", "neondb_owner")]
    assert project["roles"][0]["name"] == "neondb_owner" and project["roles"][0]["password"]
    assert [op["action"] for op in project["operations"]] == ["create_timeline", "start_compute"]

    uri = project["connection_uris"][0]["connection_uri"]
    await execute(uri, "CREATE TABLE owner_made (id int); INSERT INTO owner_made VALUES (1)")
    assert [r["n"] for r in await fetch(uri, "SELECT count(*) AS n FROM items")] == [2]
    assert [r["current_user"] for r in await fetch(uri, "SELECT current_user")] == ["neondb_owner"]
    assert uri == await uri_of(api, project_id, branch_id)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(uri.replace(project["roles"][0]["password"], "wrong"))

    got = await api("get_project", project_id)
    assert got["project"]["name"] == "shop" and got["project"]["pg_version"] >= 14
    branch = (await api("get_branch", project_id, branch_id))["branch"]
    assert branch["current_state"] == "ready" and "parent_id" not in branch
    endpoint = (await api.list_endpoints(project_id, branch_id))["endpoints"][0]
    assert endpoint["current_state"] == "active" and endpoint["id"].startswith("ep-")


async def test_projects_list_update_and_validation(api: API, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    listed = await api("list_projects", limit=400, search="sho")
    assert project_id in [p["id"] for p in listed["projects"]]
    assert listed["pagination"]["cursor"] == listed["projects"][-1]["id"]
    after = await api("list_projects", cursor=listed["pagination"]["cursor"])
    assert project_id not in [p["id"] for p in after["projects"]]

    updated = await api("update_project", project_id, {"project": {"history_retention_seconds": 3600}})
    assert updated["project"]["history_retention_seconds"] == 3600 and updated["operations"] == []
    await api("update_project", project_id, {"project": {"history_retention_seconds": 86400}})

    assert "pg_version" in await api.refused(400, "create_project", {"project": {"pg_version": 14}})
    await api.refused(400, "create_project", {})
    await api.refused(400, "create_project", {"project": {"name": ""}})
    await api.refused(400, "list_projects", limit=0)
    await api.refused(404, "get_project", "no-such-project")
    me = await api("me")
    assert me["id"]


# --- branches ----------------------------------------------------------------------------------------------------


async def test_a_branch_copies_its_parent_and_the_two_stay_apart(api: API, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    parent_uri = await uri_of(api, project_id, root_id)
    started = time.monotonic()
    created = await new_branch(api, project_id, name="dev")
    elapsed = time.monotonic() - started
    branch = created["branch"]
    assert branch["id"].startswith("br-") and branch["parent_id"] == root_id and branch["current_state"] == "init"
    assert [op["action"] for op in created["operations"]] == ["create_timeline", "start_compute"]
    assert [r["name"] for r in created["roles"]] == ["neondb_owner"] and "password" not in created["roles"][0]
    child_uri = created["connection_uris"][0]["connection_uri"]
    assert child_uri == await uri_of(api, project_id, branch["id"])

    assert [r["id"] for r in await fetch(child_uri, "SELECT id FROM items ORDER BY id")] == [1, 2]
    await execute(child_uri, "INSERT INTO items VALUES (3, 'child only')")
    assert len(await fetch(parent_uri, "SELECT 1 FROM items")) == 2, "a write on the child never shows on the parent"
    await execute(parent_uri, "INSERT INTO items VALUES (4, 'parent only')")
    assert [r["id"] for r in await fetch(child_uri, "SELECT id FROM items ORDER BY id")] == [1, 2, 3]

    ready = (await api("get_branch", project_id, branch["id"]))["branch"]
    assert ready["current_state"] == "ready" and ready["parent_lsn"].count("/") == 1 and ready["parent_timestamp"]
    assert elapsed < 5, f"branch with endpoint took {elapsed:.2f} s"
    await api.refused(409, "create_branch", project_id, {"branch": {"name": "dev"}})
    await execute(parent_uri, "DELETE FROM items WHERE id = 4")


async def test_a_branch_at_a_past_timestamp_or_lsn_sees_the_data_of_then(api: API, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    parent_uri = await uri_of(api, project_id, root_id)
    await execute(parent_uri, "INSERT INTO items VALUES (10, 'deleted later')")
    await asyncio.sleep(0.02)
    moment = datetime.now(UTC)
    await asyncio.sleep(0.02)
    await execute(parent_uri, "DELETE FROM items WHERE id = 10; INSERT INTO items VALUES (11, 'after the moment')")
    lsn = (await fetch(parent_uri, "SELECT pg_current_wal_lsn()::text AS lsn"))[0]["lsn"]
    await execute(parent_uri, "DELETE FROM items WHERE id = 11")

    at_time = await new_branch(api, project_id, name="then", parent_timestamp=moment.isoformat())
    then_uri = at_time["connection_uris"][0]["connection_uri"]
    assert [r["id"] for r in await fetch(then_uri, "SELECT id FROM items WHERE id >= 10")] == [10]
    branch = (await api("get_branch", project_id, at_time["branch"]["id"]))["branch"]
    assert datetime.fromisoformat(branch["parent_timestamp"]) == moment
    await execute(then_uri, "INSERT INTO items VALUES (12, 'written on the past branch')")
    assert [r["id"] for r in await fetch(then_uri, "SELECT id FROM items WHERE id >= 10 ORDER BY id")] == [10, 12]

    at_lsn = await new_branch(api, project_id, name="at-lsn", parent_lsn=lsn)
    lsn_uri = at_lsn["connection_uris"][0]["connection_uri"]
    assert [r["id"] for r in await fetch(lsn_uri, "SELECT id FROM items WHERE id >= 10")] == [11]
    assert [r["id"] for r in await fetch(parent_uri, "SELECT id FROM items WHERE id >= 10")] == []

    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert "future" in await api.refused(400, "create_branch", project_id, {"branch": {"parent_timestamp": future}})
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    message = await api.refused(400, "create_branch", project_id, {"branch": {"parent_timestamp": old}})
    assert "retention" in message
    await api.refused(400, "create_branch", project_id, {"branch": {"parent_timestamp": "yesterday"}})
    await api.refused(400, "create_branch", project_id, {"branch": {"parent_lsn": "nonsense"}})
    both = {"parent_lsn": lsn, "parent_timestamp": moment.isoformat()}
    await api.refused(400, "create_branch", project_id, {"branch": both})
    await api.refused(404, "create_branch", project_id, {"branch": {"parent_id": "br-none-such-00000000"}})
    names = {b["name"] for b in (await api("list_branches", project_id))["branches"]}
    assert names >= {"production", "dev", "then", "at-lsn"}

    for created in (at_time, at_lsn):
        await api.wait(project_id, (await api("delete_branch", project_id, created["branch"]["id"]))["operations"])


async def test_an_lsn_past_the_head_fails_the_operation_and_leaves_no_branch(
    api: API, project: dict[str, Any], neon_home: Path
) -> None:
    project_id, _ = ids(project)
    before = set(os.listdir(neon_home / "clusters"))
    body = await api("create_branch", project_id, {"branch": {"name": "too-far", "parent_lsn": "FF/0"}})
    assert await api.settle(project_id, body["operations"]) == ["failed"]
    failed = (await api("get_operation", project_id, body["operations"][0]["id"]))["operation"]
    assert "past the head" in failed["error"]
    await api.refused(404, "get_branch", project_id, body["branch"]["id"])
    assert set(os.listdir(neon_home / "clusters")) == before


async def test_branch_listing_sorts_searches_and_pages(api: API, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    everything = (await api("list_branches", project_id, sort_by="name", sort_order="asc"))["branches"]
    names = [b["name"] for b in everything]
    assert names == sorted(names)
    first = await api("list_branches", project_id, sort_by="name", sort_order="asc", limit=1)
    assert [b["name"] for b in first["branches"]] == names[:1] and first["pagination"]["next"]
    rest = await api("list_branches", project_id, sort_by="name", sort_order="asc", cursor=first["pagination"]["next"])
    assert [b["name"] for b in rest["branches"]] == names[1:]
    assert [b["name"] for b in (await api("list_branches", project_id, search="prod"))["branches"]] == ["production"]
    await api.refused(400, "list_branches", project_id, sort_by="size")


async def test_update_rename_protect_and_set_default(api: API, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    created = await api("create_branch", project_id, {"branch": {"name": "renamer"}})
    branch_id = created["branch"]["id"]
    assert created["endpoints"] == [] and "connection_uris" not in created
    await api.wait(project_id, created["operations"])
    renamed = await api("update_branch", project_id, branch_id, {"branch": {"name": "renamed", "protected": True}})
    assert renamed["branch"]["name"] == "renamed" and renamed["branch"]["protected"] and renamed["operations"] == []
    assert "protected" in await api.refused(422, "delete_branch", project_id, branch_id)
    await api("update_branch", project_id, branch_id, {"branch": {"protected": False}})
    await api.refused(409, "update_branch", project_id, branch_id, {"branch": {"name": "production"}})
    await api.refused(400, "update_branch", project_id, branch_id, {"branch": {"expires_at": "2000-01-01T00:00:00Z"}})

    made_default = await api("set_default_branch", project_id, branch_id)
    assert made_default["branch"]["default"]
    assert not (await api("get_branch", project_id, root_id))["branch"]["default"]
    assert "root" in await api.refused(422, "delete_branch", project_id, root_id)
    assert "default" in await api.refused(422, "delete_branch", project_id, branch_id)
    await api("set_default_branch", project_id, root_id)
    await api.wait(project_id, (await api("delete_branch", project_id, branch_id))["operations"])
    await api.refused(404, "get_branch", project_id, branch_id)


async def test_deleting_refuses_a_branch_with_children(api: API, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    parent = await api("create_branch", project_id, {"branch": {"name": "parent"}})
    await api.wait(project_id, parent["operations"])
    child = await api("create_branch", project_id, {"branch": {"name": "child", "parent_id": parent["branch"]["id"]}})
    await api.wait(project_id, child["operations"])
    assert "child" in await api.refused(422, "delete_branch", project_id, parent["branch"]["id"])
    assert "default" in await api.refused(422, "delete_branch", project_id, root_id)
    deleted = await api("delete_branch", project_id, child["branch"]["id"])
    assert [op["action"] for op in deleted["operations"]] == ["delete_timeline"]
    await api.wait(project_id, deleted["operations"])
    await api.wait(project_id, (await api("delete_branch", project_id, parent["branch"]["id"]))["operations"])


async def test_a_conflicting_mutation_while_an_operation_runs_gets_423(api: API, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    created = await api(
        "create_branch", project_id, {"branch": {"name": "busy"}, "endpoints": [{"type": "read_write"}]}
    )
    branch_id = created["branch"]["id"]
    message = await api.refused(423, "create_role", project_id, branch_id, {"role": {"name": "early"}})
    assert "running conflicting operations" in message
    await api.refused(423, "delete_branch", project_id, branch_id)
    back = {"source_branch_id": root_id, "source_timestamp": datetime.now(UTC).isoformat(), "preserve_under_name": "x"}
    await api.refused(423, "restore_branch", project_id, root_id, back)  # the parent is being copied
    await api.wait(project_id, created["operations"])
    await api.wait(project_id, (await api("delete_branch", project_id, branch_id))["operations"])


async def test_a_branch_past_expires_at_is_deleted(api: API, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    created = await api("create_branch", project_id, {"branch": {"name": "ephemeral", "expires_at": soon}})
    assert created["branch"]["expires_at"] and created["branch"]["ttl_interval_seconds"] >= 1
    await api.wait(project_id, created["operations"])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            await api("get_branch", project_id, created["branch"]["id"])
        except NeonAPIError as exc:
            assert exc.status == 404
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the expired branch was not deleted")
    actions = [op["action"] for op in (await api("list_operations", project_id))["operations"]]
    assert "delete_timeline" in actions


# --- restore -----------------------------------------------------------------------------------------------------


async def test_restore_from_the_parent_resets_the_branch(api: API, project: dict[str, Any]) -> None:
    project_id, root_id = ids(project)
    created = await new_branch(api, project_id, name="to-reset")
    branch_id = created["branch"]["id"]
    uri = created["connection_uris"][0]["connection_uri"]
    await execute(uri, "INSERT INTO items VALUES (100, 'child change')")
    await execute(await uri_of(api, project_id, root_id), "INSERT INTO items VALUES (101, 'newer on parent')")

    restored = await api("restore_branch", project_id, branch_id, {"source_branch_id": root_id})
    assert restored["branch"]["current_state"] == "resetting"
    assert [op["action"] for op in restored["operations"]] == ["create_timeline", "start_compute"]
    await api.wait(project_id, restored["operations"])
    assert uri == await uri_of(api, project_id, branch_id), "the endpoint keeps its address"
    assert [r["id"] for r in await fetch(uri, "SELECT id FROM items WHERE id >= 100")] == [101]
    branch = (await api("get_branch", project_id, branch_id))["branch"]
    assert branch["last_reset_at"] and branch["current_state"] == "ready" and branch["parent_id"] == root_id

    child = await api("create_branch", project_id, {"branch": {"parent_id": branch_id}})
    await api.wait(project_id, child["operations"])
    message = await api.refused(400, "restore_branch", project_id, branch_id, {"source_branch_id": root_id})
    assert "preserve_under_name" in message
    await api.wait(project_id, (await api("delete_branch", project_id, child["branch"]["id"]))["operations"])
    await api.wait(project_id, (await api("delete_branch", project_id, branch_id))["operations"])
    await execute(await uri_of(api, project_id, root_id), "DELETE FROM items WHERE id >= 100")


async def test_restore_to_a_point_in_time_preserves_the_old_state(api: API, project: dict[str, Any]) -> None:
    project_id, _ = ids(project)
    created = await new_branch(api, project_id, name="travel")
    branch_id = created["branch"]["id"]
    uri = created["connection_uris"][0]["connection_uri"]
    await execute(uri, "INSERT INTO items VALUES (200, 'precious')")
    await asyncio.sleep(0.02)
    moment = datetime.now(UTC)
    await asyncio.sleep(0.02)
    await execute(uri, "DELETE FROM items WHERE id = 200; CREATE TABLE mistakes (id int)")

    body = {"source_branch_id": branch_id, "source_timestamp": moment.isoformat()}
    assert "preserve_under_name" in await api.refused(400, "restore_branch", project_id, branch_id, body)
    no_point = {"source_branch_id": branch_id, "preserve_under_name": "x"}
    await api.refused(400, "restore_branch", project_id, branch_id, no_point)
    restored = await api("restore_branch", project_id, branch_id, {**body, "preserve_under_name": "travel-before"})
    await api.wait(project_id, restored["operations"])

    assert [r["id"] for r in await fetch(uri, "SELECT id FROM items WHERE id = 200")] == [200]
    assert not await fetch(uri, "SELECT 1 FROM pg_class WHERE relname = 'mistakes'")
    branch = (await api("get_branch", project_id, branch_id))["branch"]
    kept = next(b for b in (await api("list_branches", project_id))["branches"] if b["name"] == "travel-before")
    assert branch["restored_as"] == kept["id"] and kept["current_state"] == "ready"
    assert [r["name"] for r in (await api("list_roles", project_id, kept["id"]))["roles"]] == ["neondb_owner"]

    endpoint = await api("create_endpoint", project_id, {"endpoint": {"branch_id": kept["id"], "type": "read_write"}})
    await api.wait(project_id, endpoint["operations"])
    kept_uri = await uri_of(api, project_id, kept["id"])
    assert not await fetch(kept_uri, "SELECT 1 FROM items WHERE id = 200")
    assert await fetch(kept_uri, "SELECT 1 FROM pg_class WHERE relname = 'mistakes'")

    for doomed in (kept["id"], branch_id):
        await api.wait(project_id, (await api("delete_branch", project_id, doomed))["operations"])
