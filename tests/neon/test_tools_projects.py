"""The project and organisation tools on local Neon (real HTTP, real PostgreSQL, a real MCP client): organisations,
projects across organisations and shared ones, create_project (protected production branch, no password by default,
the password only with the operator's setting and the user's yes), delete_project (what goes, whether it can be
undone, refused for the served project, for a project with a protected branch and in access mode branches; a
declined confirmation deletes nothing), and a project named by name or id.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from server.neon.models import Project
from server.neon.projects import undo_of_deletion
from server.settings import Settings
from tests.helpers import Human, data_of, mcp_client, sql, text_of
from tests.local_neon.helpers import API, scratch_dir, start_local_neon, stop_local_neon
from tests.local_neon.node import node_packages
from tests.neon.conftest import NeonTestProject

pytestmark = pytest.mark.anyio

LISTS = ("list_organizations", "list_projects", "list_shared_projects")
CHANGES = ("create_project", "delete_project")


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _project(api: API, project_id: str) -> dict[str, Any] | None:
    response = api.http.get(f"/projects/{project_id}")
    return dict(response.json()["project"]) if response.status_code == 200 else None


def _branches(api: API, project_id: str) -> list[dict[str, Any]]:
    return list(api.call("GET", f"/projects/{project_id}/branches")["branches"])


def _remove(api: API, project_id: str) -> None:
    """Delete a project the test made, its branches unprotected first (Neon refuses otherwise)."""
    if _project(api, project_id) is None:
        return
    for branch in _branches(api, project_id):
        if branch.get("protected"):
            body = api.call(
                "PATCH", f"/projects/{project_id}/branches/{branch['id']}", json={"branch": {"protected": False}}
            )
            api.wait(project_id, body["operations"])
    api.http.delete(f"/projects/{project_id}")


@pytest.fixture
def made(neon_api: API) -> Iterator[list[str]]:
    """Ids of projects the test made (through a tool or the API); each is deleted afterwards."""
    ids: list[str] = []
    yield ids
    for project_id in ids:
        _remove(neon_api, project_id)


@pytest.fixture
def spare(neon_api: API, made: list[str]) -> Callable[[str], dict[str, Any]]:
    """Makes a project through the API (no protected branch), ready; deleted after the test if it is still there."""

    def make(name: str) -> dict[str, Any]:
        body = neon_api.call("POST", "/projects", expect=201, json={"project": {"name": name}})
        made.append(body["project"]["id"])
        neon_api.wait(body["project"]["id"], body["operations"])
        return dict(body["project"])

    return make


def _password(api: API, project_id: str, branch_id: str, role: str) -> str:
    path = f"/projects/{project_id}/branches/{branch_id}/roles/{role}/reveal_password"
    return str(api.call("GET", path)["password"])


# --- registration ----------------------------------------------------------------------------------------------------


async def test_the_tools_and_their_annotations(neon_settings: Callable[..., Settings]) -> None:
    async with mcp_client(neon_settings()) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    async with mcp_client(neon_settings(access_mode="read-only")) as client:
        read_only = {tool.name for tool in (await client.list_tools()).tools}
    for name in LISTS:
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint and annotations.idempotent_hint, name
        assert tools[name].output_schema is not None and name in read_only
    assert tools["create_project"].annotations.destructive_hint is False  # type: ignore[union-attr]
    assert tools["delete_project"].annotations.destructive_hint is True  # type: ignore[union-attr]
    for name in CHANGES:
        assert name not in read_only and tools[name].output_schema is not None
        assert not {"confirmation", "reveal"} & set(tools[name].input_schema.get("properties") or {})


# --- lists -----------------------------------------------------------------------------------------------------------


async def test_organizations_and_projects_across_them(
    neon_settings: Callable[..., Settings], project: NeonTestProject, api_requests: Callable[[], int]
) -> None:
    async with mcp_client(neon_settings()) as client:
        orgs = data_of(await client.call_tool("list_organizations", {}))
        before = api_requests()
        listed = await client.call_tool("list_projects", {})
        every_org = api_requests() - before
        by_name = data_of(await client.call_tool("list_projects", {"org": orgs["organizations"][0]["name"]}))
        searched = data_of(await client.call_tool("list_projects", {"search": "agen"}))
        unknown = await client.call_tool("list_projects", {"org": "no-such-org"})
        shared = data_of(await client.call_tool("list_shared_projects", {}))
    [org] = orgs["organizations"]
    assert org["name"] == "Local" and org["id"].startswith("org-")
    data = data_of(listed)
    assert every_org == 2, every_org  # the organisations, then one listing for all of them
    ours = next(p for p in data["projects"] if p["id"] == project.id)
    assert ours["served"] and ours["org_id"] == org["id"] and ours["org"] == "Local" and data["served"] == project.id
    assert f"* agents ({project.id}) · Local ({org['id']})" in text_of(listed)
    assert {p["id"] for p in by_name["projects"]} == {p["id"] for p in data["projects"]}
    assert by_name["organizations"] == [org["id"]]
    assert project.id in {p["id"] for p in searched["projects"]} and searched["search"] == "agen"
    assert all("agen" in p["name"] or "agen" in p["id"] for p in searched["projects"])
    assert (
        unknown.is_error and "organisation 'no-such-org' not found" in text_of(unknown) and "Local" in text_of(unknown)
    )
    assert shared == {"projects": []}


# --- create_project --------------------------------------------------------------------------------------------------


async def test_create_project_protects_its_production_branch_and_shows_no_password(
    neon_settings: Callable[..., Settings], neon_api: API, made: list[str], api_requests: Callable[[], int]
) -> None:
    name = _unique("app")
    human = Human()  # would say yes to anything: not asked, as the operator does not allow revealing passwords
    async with mcp_client(neon_settings(production_branch="live"), elicitation_callback=human) as client:
        before = api_requests()
        result = await client.call_tool("create_project", {"name": name})
        used = api_requests() - before
        data = data_of(result)
        made.append(data["id"])
        refused = await client.call_tool("delete_project", {"project": name})
        described = data_of(await client.call_tool("describe_project", {"project": name}))
    [branch] = data["branches"]
    assert branch["name"] == "live" and branch["default"] and branch["protected"]
    assert branch["protected_because"] == "it is the production branch"
    stored = _branches(neon_api, data["id"])
    assert [(b["name"], b["protected"], b["current_state"]) for b in stored] == [("live", True, "ready")]
    secret = _password(neon_api, data["id"], branch["id"], data["role"])
    assert secret not in text_of(result) and secret not in str(result.structured_content)
    assert human.asked == [] and data["password_redacted"] is True and ":****@" in data["connection_uri"]
    assert "-pooler" in data["pooled_connection_uri"] and ":****@" in data["pooled_connection_uri"]
    assert data["database"] == "neondb" and data["role"] == "neondb_owner" and data["compute"].startswith("ep-")
    assert data["served"] is False and "NEON_PROJECT_ID=" in text_of(result)  # the server stays on its project
    # The answer's URI reaches the new database once the password is put in.
    parts = urlsplit(data["connection_uri"])
    uri = parts._replace(netloc=parts.netloc.replace(":****@", f":{secret}@")).geturl()
    assert (await sql(uri, "SELECT current_database()"))[0][0] == "neondb"
    assert described["default_branch"] == "live" and described["id"] == data["id"]
    # Neon's rule: a project holding a protected branch is not deleted; the way out is said.
    assert refused.is_error and "protected" in text_of(refused) and "unprotect" in text_of(refused)
    assert _project(neon_api, data["id"]) is not None
    print(f"create_project: {used} API requests")


@pytest.mark.parametrize("yes", [True, False], ids=["accepted", "declined"])
async def test_create_project_reveals_the_password_only_with_the_setting_and_a_yes(
    neon_settings: Callable[..., Settings], neon_api: API, made: list[str], yes: bool
) -> None:
    human = Human(yes=yes)
    async with mcp_client(neon_settings(reveal_passwords=True), elicitation_callback=human) as client:
        result = await client.call_tool("create_project", {"name": _unique("shown")})
    data = data_of(result)
    made.append(data["id"])
    secret = _password(neon_api, data["id"], data["branches"][0]["id"], data["role"])
    assert len(human.asked) == 1 and "password" in human.asked[0]
    assert data["password_redacted"] is not yes
    assert (f":{secret}@" in data["connection_uri"]) is yes and (f":{secret}@" in data["pooled_connection_uri"]) is yes
    assert (secret in text_of(result)) is yes


async def test_create_project_refuses_bad_arguments_before_making_anything(
    neon_settings: Callable[..., Settings], neon_api: API
) -> None:
    before = {p["id"] for p in neon_api.call("GET", "/projects", params={"limit": 400})["projects"]}
    async with mcp_client(neon_settings()) as client:
        region = await client.call_tool("create_project", {"name": "nowhere", "region": "aws-mars-1"})
        org = await client.call_tool("create_project", {"name": "nowhere", "org_id": "org-missing-1"})
        blank = await client.call_tool("create_project", {"name": "   "})
    async with mcp_client(neon_settings(access_mode="read-only")) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert region.is_error and "region 'aws-mars-1' is not available" in text_of(region)
    assert org.is_error and "organisation 'org-missing-1' not found" in text_of(org)
    assert blank.is_error and "name is empty" in text_of(blank)
    assert "create_project" not in names
    after = {p["id"] for p in neon_api.call("GET", "/projects", params={"limit": 400})["projects"]}
    assert after == before


async def test_an_unpinned_server_serves_its_first_project_and_keeps_serving_it(tmp_path: Path) -> None:
    """On an account with no project (a local Neon of its own), the first project create_project makes becomes the
    served one (the only one); a second one does not take its place."""
    base = scratch_dir("neon-mcp-first-")
    try:
        host, key = await asyncio.to_thread(start_local_neon, base)
        settings = Settings(neon_api_key=key, neon_api_host=host, home=tmp_path / "home")
        async with mcp_client(settings) as client:
            none = await client.call_tool("list_branches", {})
            first = data_of(await client.call_tool("create_project", {"name": "first"}))
            second = data_of(await client.call_tool("create_project", {"name": "second"}))
            branches = data_of(await client.call_tool("list_branches", {}))
            listed = data_of(await client.call_tool("list_projects", {}))
    finally:
        await asyncio.to_thread(stop_local_neon, base)
        shutil.rmtree(base, ignore_errors=True)
    assert none.is_error and "sees no project" in text_of(none) and "create_project" in text_of(none)
    assert first["served"] is True and second["served"] is False
    assert "NEON_PROJECT_ID=" + second["id"] in " ".join(second["notes"])
    assert branches["project_id"] == first["id"] and listed["served"] == first["id"]


# --- delete_project --------------------------------------------------------------------------------------------------


def test_the_question_says_whether_a_deletion_can_be_undone() -> None:
    """Neon keeps a deleted project recoverable for 7 days (its API reference of deleteProject and recoverProject);
    local Neon removes it at once."""
    on_neon = Project(id="bold-cloud-468218", name="shop", platform_id="aws", region_id="aws-us-east-2")
    on_local = Project(id="odd-bird-12345678", name="shop", platform_id="local", region_id="local")
    recoverable, how = undo_of_deletion(on_neon)
    assert recoverable and "7 days" in how and "neonctl projects recover bold-cloud-468218" in how
    assert "POST /projects/bold-cloud-468218/recover" in how
    assert undo_of_deletion(on_local) == (
        False,
        "Local Neon removes the project and its data at once: this cannot be undone.",
    )


async def test_a_declined_confirmation_deletes_nothing_and_a_yes_deletes_all(
    neon_settings: Callable[..., Settings], neon_api: API, spare: Callable[[str], dict[str, Any]]
) -> None:
    doomed = spare(_unique("doomed"))
    body = neon_api.call(
        "POST",
        f"/projects/{doomed['id']}/branches",
        expect=201,
        json={"branch": {"name": "side"}, "endpoints": [{"type": "read_write"}]},
    )
    neon_api.wait(doomed["id"], body["operations"])
    no, yes = Human(yes=False), Human()
    async with mcp_client(neon_settings(access_mode="full"), elicitation_callback=no) as client:
        declined = data_of(await client.call_tool("delete_project", {"project": doomed["name"]}))
    assert declined["status"] == "declined" and _project(neon_api, doomed["id"]) is not None
    [question] = no.asked
    assert f"Delete project {doomed['name']} ({doomed['id']})" in question
    assert "2 branch(es): production" in question and "side" in question and "2 compute(s)" in question
    assert "cannot be undone" in question and "Bound to these objects" in question
    async with mcp_client(neon_settings(access_mode="full"), elicitation_callback=yes) as client:
        done = await client.call_tool("delete_project", {"project": doomed["id"]})
    data = data_of(done)
    assert data["status"] == "ok" and sorted(data["branches"]) == ["production", "side"] and data["computes"] == 2
    assert data["recoverable"] is False and "cannot be undone" in text_of(done)
    assert _project(neon_api, doomed["id"]) is None


async def test_delete_project_through_confirm_operation(
    neon_settings: Callable[..., Settings], neon_api: API, spare: Callable[[str], dict[str, Any]]
) -> None:
    doomed = spare(_unique("stored"))
    settings = neon_settings(access_mode="full")
    async with mcp_client(settings) as client:
        asked = data_of(await client.call_tool("delete_project", {"project": doomed["name"]}))
        assert asked["status"] == "confirmation_required" and _project(neon_api, doomed["id"]) is not None
        assert "cannot be undone" in asked["summary"] and asked["undo"].startswith("Local Neon")
        done = data_of(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
        again = await client.call_tool("delete_project", {"project": doomed["id"]})
    assert done["status"] == "ok" and _project(neon_api, doomed["id"]) is None
    assert again.is_error and "not found" in text_of(again)
    audit = (settings.home / "audit.jsonl").read_text()
    assert f"project={doomed['id']}" in audit and "confirm_operation" in audit


async def test_delete_project_refusals(
    neon_settings: Callable[..., Settings],
    neon_api: API,
    project: NeonTestProject,
    spare: Callable[[str], dict[str, Any]],
) -> None:
    other = spare(_unique("kept"))
    declining = Human(yes=False)
    async with mcp_client(neon_settings()) as client:  # access mode branches, serving agents
        in_branches = await client.call_tool("delete_project", {"project": other["id"]})
    async with mcp_client(neon_settings(neon_project_id=other["id"], access_mode="full")) as client:
        served = await client.call_tool("delete_project", {"project": other["name"]})
    allowing = neon_settings(neon_project_id=other["id"], access_mode="full", allow_deleting_served_project=True)
    async with mcp_client(allowing, elicitation_callback=declining) as client:
        allowed = data_of(await client.call_tool("delete_project", {"project": other["name"]}))
    assert in_branches.is_error and "access mode branches" in text_of(in_branches)
    assert "every branch" in text_of(in_branches)
    assert served.is_error and "this server serves" in text_of(served)
    assert "NEON_MCP_ALLOW_DELETING_SERVED_PROJECT" in text_of(served)
    assert allowed["status"] == "declined" and len(declining.asked) == 1  # allowed, so asked (and declined)
    assert _project(neon_api, other["id"]) is not None and _project(neon_api, project.id) is not None
    async with mcp_client(allowing, elicitation_callback=Human()) as client:
        gone = data_of(await client.call_tool("delete_project", {"project": other["name"]}))
        after = await client.call_tool("list_branches", {})
    assert gone["status"] == "ok" and "this server served it (NEON_PROJECT_ID)" in " ".join(gone["notes"])
    assert after.is_error and "not found" in text_of(after) and _project(neon_api, other["id"]) is None


async def test_a_project_is_named_by_name_or_id_and_unknown_ones_list_what_exists(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    async with mcp_client(neon_settings()) as client:
        by_id = data_of(await client.call_tool("list_branches", {"project": project.id}))
        by_name = data_of(await client.call_tool("list_branches", {"project": "agents"}))
        fetched = data_of(await client.call_tool("fetch", {"id": f"project:{project.id}"}))
        unknown = await client.call_tool("describe_project", {"project": "no-such-project"})
        gone = await client.call_tool("delete_project", {"project": "no-such-project"})
    assert by_id == by_name and by_id["project_id"] == project.id
    assert fetched["title"] == "agents"
    for result in (unknown, gone):
        assert result.is_error and "not found" in text_of(result) and f"agents ({project.id})" in text_of(result)


# --- Neon's own CLI agrees -------------------------------------------------------------------------------------------


def _neonctl(api: API, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """neonctl 5 (Neon's CLI, on Neon's TypeScript API client) against local Neon, answering JSON."""
    root = node_packages(["neonctl@5.0.1"])
    env = {**os.environ, "HOME": str(home), "CI": "true"}
    command = [str(root / "node_modules" / ".bin" / "neonctl"), "--api-host", api.host, "--api-key", api.key]
    return subprocess.run(
        [*command, "--output", "json", "--no-analytics", *args], env=env, capture_output=True, text=True, timeout=120
    )


async def test_neonctl_sees_what_the_tools_made_and_refuses_what_they_refuse(
    neon_settings: Callable[..., Settings], neon_api: API, made: list[str], tmp_path: Path
) -> None:
    async with mcp_client(neon_settings()) as client:
        orgs = data_of(await client.call_tool("list_organizations", {}))
        created = data_of(await client.call_tool("create_project", {"name": _unique("ctl")}))
        made.append(created["id"])
        listed = data_of(await client.call_tool("list_projects", {}))

    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return _neonctl(neon_api, tmp_path, *args)

    their_orgs = await asyncio.to_thread(ctl, "orgs", "list")
    their_projects = await asyncio.to_thread(ctl, "projects", "list")
    their_branches = await asyncio.to_thread(ctl, "branches", "list", "--project-id", created["id"])
    their_delete = await asyncio.to_thread(ctl, "projects", "delete", created["id"])
    assert their_orgs.returncode == 0, their_orgs.stderr
    assert [o["id"] for o in json.loads(their_orgs.stdout)] == [o["id"] for o in orgs["organizations"]]
    assert their_projects.returncode == 0, their_projects.stderr
    theirs = {p["id"]: p for p in json.loads(their_projects.stdout)["projects"]}
    assert set(theirs) == {p["id"] for p in listed["projects"]}
    assert theirs[created["id"]]["org_id"] == created["org_id"] == orgs["organizations"][0]["id"]
    assert their_branches.returncode == 0, their_branches.stderr
    [branch] = json.loads(their_branches.stdout)
    assert (branch["name"], branch["id"], branch["protected"]) == ("production", created["branches"][0]["id"], True)
    assert their_delete.returncode != 0 and "protected" in their_delete.stderr  # Neon's rule, as the tool said
    assert _project(neon_api, created["id"]) is not None
