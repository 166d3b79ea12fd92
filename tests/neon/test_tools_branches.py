"""The branch tools on Neon (local Neon over real HTTP): create, delete, reset and restore; the protection rules in
each access mode, backups, confirmations by confirm_operation and by elicitation, bad input, API faults, progress.

Cases that need "the production branch" make a branch of their own and name it with ``production_branch=``: the
shared project's real production branch is never changed here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mcp import Client

from server.settings import Settings
from tests.helpers import Human, data_of, mcp_client, sql, text_of
from tests.neon.conftest import NeonTestProject, injected_faults

pytestmark = pytest.mark.anyio

TOOLS = ("create_branch", "delete_branch", "reset_branch", "restore_branch")


async def _confirmed(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a confirmed tool, check that nothing ran yet, and confirm it with confirm_operation."""
    asked = data_of(await client.call_tool(tool, arguments))
    assert asked["status"] == "confirmation_required", asked
    assert asked["operation_id"].startswith("op_") and asked["summary"]
    done = data_of(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
    assert done["status"] == "ok", done
    return done


async def _count(uri: str, where: str = "true") -> int:
    return int((await sql(uri, f"SELECT count(*) FROM auslex.users WHERE {where}"))[0][0])


def _days_left(expires_at: str) -> float:
    moment = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    return (moment - datetime.now(UTC)).total_seconds() / 86_400


def _names(project: NeonTestProject) -> set[str]:
    return {b["name"] for b in project.branches()}


def _give_compute(project: NeonTestProject, branch_id: str) -> str:
    """A read-write compute for a branch made without one (a backup); its direct URI."""
    body = project.api.call(
        "POST",
        f"/projects/{project.id}/endpoints",
        expect=201,
        json={"endpoint": {"branch_id": branch_id, "type": "read_write"}},
    )
    project.api.wait(project.id, body["operations"])
    return project.uri_of(branch_id)


@pytest.fixture
async def moment_before_delete(project: NeonTestProject) -> AsyncIterator[tuple[dict[str, Any], str]]:
    """A branch ``bt-history`` where row 2 was deleted after the returned moment."""
    branch = project.create_branch("bt-history")
    await asyncio.sleep(1.1)
    moment = datetime.now(UTC).isoformat()
    await asyncio.sleep(1.1)
    await sql(project.uri_of(branch["id"]), "DELETE FROM auslex.users WHERE id = 2")
    yield branch, moment


# --- registration ----------------------------------------------------------------------------------------------------


async def test_read_only_mode_offers_no_branch_tool(neon_settings: Callable[..., Settings]) -> None:
    async with mcp_client(neon_settings(access_mode="read-only")) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert not names & set(TOOLS)


async def test_the_tools_declare_truthful_annotations(neon_settings: Callable[..., Settings]) -> None:
    async with mcp_client(neon_settings()) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in TOOLS:
        annotations = tools[name].annotations
        assert annotations is not None and annotations.read_only_hint is False
        assert annotations.destructive_hint is (name != "create_branch")
        assert tools[name].output_schema is not None
        assert "confirmation" not in (tools[name].input_schema.get("properties") or {})


# --- create_branch ---------------------------------------------------------------------------------------------------


async def test_create_branch_waits_until_connectable_and_reports_progress(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    progress: list[str] = []

    async def listen(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with mcp_client(neon_settings()) as client:
        created = await client.call_tool("create_branch", {"name": "bt-fresh"}, progress_callback=listen)
        data = data_of(created)
        read = await client.call_tool("run_sql", {"sql": "SELECT count(*) FROM auslex.users", "branch": "bt-fresh"})
    assert data["connectable"] is True and data["database"] == "neondb"
    assert data["parent"] == "production" and data["parent_lsn"]
    assert data["compute"].startswith("ep-") and data["expires_at"] is None
    assert "created branch bt-fresh" in text_of(created) and "SELECT 1" in text_of(created)
    assert data_of(read)["rows"] == [[3]]
    assert any("creating branch bt-fresh" in m for m in progress)
    assert any("create_timeline" in m for m in progress), progress  # the operations were polled
    assert any("bt-fresh is ready" in m for m in progress)


async def test_create_branch_from_a_parent_at_a_past_time_with_an_expiry(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    moment_before_delete: tuple[dict[str, Any], str],
) -> None:
    _, moment = moment_before_delete
    async with mcp_client(neon_settings()) as client:
        data = data_of(
            await client.call_tool(
                "create_branch", {"name": "bt-past", "parent": "bt-history", "at_time": moment, "expires_in": "2h"}
            )
        )
        bare = data_of(
            await client.call_tool("create_branch", {"name": "bt-bare", "parent": "bt-history", "with_compute": False})
        )
    past = project.branch("bt-past")
    assert past is not None and past["parent_id"] == moment_before_delete[0]["id"]
    assert await _count(project.uri_of(past["id"])) == 3  # row 2 is there: the branch starts before the delete
    assert data["parent_timestamp"] is not None and data["parent"] == "bt-history"
    assert 1.9 / 24 < _days_left(data["expires_at"]) <= 2 / 24
    assert bare["connectable"] is False and bare["compute"] is None


async def test_create_branch_refuses_bad_input_and_leaves_nothing(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("bt-taken")
    before = _names(project)
    long_ago = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    async with mcp_client(neon_settings()) as client:
        taken = await client.call_tool("create_branch", {"name": "bt-taken"})
        orphan = await client.call_tool("create_branch", {"name": "bt-x", "parent": "nope"})
        too_old = await client.call_tool("create_branch", {"name": "bt-old", "at_time": long_ago})
        both = await client.call_tool("create_branch", {"name": "bt-y", "at_time": long_ago, "at_lsn": "0/1"})
        future = await client.call_tool("create_branch", {"name": "bt-z", "at_time": "2999-01-01T00:00:00Z"})
        duration = await client.call_tool("create_branch", {"name": "bt-w", "expires_in": "soon"})
    assert taken.is_error and "a branch named 'bt-taken' already exists" in text_of(taken)
    assert orphan.is_error and "branch 'nope' not found" in text_of(orphan)
    assert too_old.is_error and "history" in text_of(too_old) and "cannot branch production" in text_of(too_old)
    assert both.is_error and "not both" in text_of(both)
    assert future.is_error and "in the future" in text_of(future)
    assert duration.is_error and "30m, 2h, 7d" in text_of(duration)
    assert _names(project) == before


async def test_a_name_taken_since_the_directory_was_read_gets_neons_409_clearly(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    async with mcp_client(neon_settings()) as client:
        warm = await client.call_tool("run_sql", {"sql": "SELECT 1"})  # the branch list is cached now
        assert not warm.is_error
        project.create_branch("bt-race")
        raced = await client.call_tool("create_branch", {"name": "bt-race"})
    assert raced.is_error
    assert "a branch named 'bt-race' already exists" in text_of(raced) and "already exists" in text_of(raced)


async def test_a_branch_that_cannot_be_made_ready_is_deleted_again(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    before = _names(project)
    # The server looks for database 'nodb' on the new branch to check it: that fails after Neon made the branch.
    async with mcp_client(neon_settings(neon_database="nodb")) as client:
        result = await client.call_tool("create_branch", {"name": "bt-doomed"})
    assert result.is_error
    text = text_of(result)
    assert "branch bt-doomed was created but did not become ready" in text and "database 'nodb' not found" in text
    assert "deleted again" in text
    assert _names(project) == before


# --- delete_branch ---------------------------------------------------------------------------------------------------


async def test_delete_branch_runs_after_confirm_operation(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("bt-doomed")
    settings = neon_settings()
    async with mcp_client(settings) as client:
        asked = data_of(await client.call_tool("delete_branch", {"branch": "bt-doomed"}))
        assert asked["status"] == "confirmation_required" and asked["branch"] == "bt-doomed"
        assert "Delete branch bt-doomed" in asked["summary"] and "Nothing of it is kept" in asked["summary"]
        assert project.branch("bt-doomed") is not None  # nothing ran yet
        done = data_of(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
        again = await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]})
        gone = await client.call_tool("run_sql", {"sql": "SELECT 1", "branch": "bt-doomed"})
    assert done["status"] == "ok" and done["action"] == "delete" and "backup_branch" not in done
    assert project.branch("bt-doomed") is None
    assert again.is_error and "already confirmed" in text_of(again)
    assert gone.is_error and "not found" in text_of(gone)
    audit = [json.loads(line) for line in settings.audit_log_path.read_text().splitlines()]
    assert [(r["sql"], r["confirmation"], r["outcome"]) for r in audit] == [
        ("delete_branch bt-doomed", "confirm_operation", "ok")
    ]


@pytest.mark.parametrize(
    ("human", "how", "mode"),
    [
        (Human(), None, "auto"),
        (Human(), None, "legacy"),
        (Human("decline"), "declined", "auto"),
        (Human("cancel"), "cancelled", "auto"),
        (Human(yes=False), "declined", "legacy"),
    ],
)
async def test_delete_branch_by_elicitation(
    neon_settings: Callable[..., Settings], project: NeonTestProject, human: Human, how: str | None, mode: str
) -> None:
    branch = project.create_branch("bt-asked")
    async with mcp_client(neon_settings(), elicitation_callback=human, mode=mode) as client:
        result = await client.call_tool("delete_branch", {"branch": "bt-asked"})
    data = data_of(result)
    (question,) = human.asked
    assert f"Delete branch bt-asked ({branch['id']})" in question
    if how is None:
        assert data["status"] == "ok" and project.branch("bt-asked") is None
    else:
        assert data["status"] == "declined" and f"The user {how}" in text_of(result)
        assert project.branch("bt-asked") is not None


async def test_delete_refuses_what_neon_would_refuse_before_asking(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    parent = project.create_branch("bt-parent")
    project.create_branch("bt-child", parent=parent["id"])
    before = _names(project)
    human = Human()
    async with mcp_client(neon_settings(access_mode="full"), elicitation_callback=human) as client:
        default = await client.call_tool("delete_branch", {"branch": "production"})
        parent_of = await client.call_tool("delete_branch", {"branch": "bt-parent"})
        unknown = await client.call_tool("delete_branch", {"branch": "bt-nope"})
    assert default.is_error and "default branch: Neon does not delete it" in text_of(default)
    assert parent_of.is_error and "has child branches (bt-child)" in text_of(parent_of)
    assert unknown.is_error and "branch 'bt-nope' not found" in text_of(unknown)
    assert human.asked == []
    assert _names(project) == before


async def test_branches_mode_refuses_changes_to_protected_branches(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    protected_branch: Callable[[str], dict[str, Any]],
) -> None:
    project.create_branch("bt-prod")
    marked = protected_branch("bt-marked")
    moment = datetime.now(UTC).isoformat()
    settings = neon_settings(production_branch="bt-prod")
    async with mcp_client(settings) as client:
        results = {
            (tool, branch): await client.call_tool(tool, {"branch": branch, **extra})
            for tool, extra in (("delete_branch", {}), ("reset_branch", {}), ("restore_branch", {"to_time": moment}))
            for branch in ("bt-prod", "bt-marked", "production")
        }
    for (tool, branch), result in results.items():
        text = text_of(result)
        assert result.is_error, (tool, branch)
        if tool == "delete_branch" and branch == "production":
            assert "default branch: Neon does not delete it" in text
            continue
        if tool == "reset_branch" and branch == "production":
            assert "has no parent" in text
            continue
        reason = {
            "bt-prod": "it is the production branch",
            "bt-marked": "Neon marks it protected",
            "production": "it is the project's default branch",
        }[branch]
        assert f"branch {branch} is protected ({reason}): in access mode branches, {tool} runs on unprotected" in text
        assert "create_branch parent=" in text and "access mode full" in text
    assert project.branch("bt-prod") is not None and project.branch("bt-marked") is not None
    assert not [name for name in _names(project) if name.startswith(("backup/", "bt-prod_old", "production_old"))]
    assert project.branch("bt-marked")["id"] == marked["id"]  # type: ignore[index]


async def test_full_mode_deletes_a_protected_branch_by_keeping_it_as_its_backup(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("bt-prod")
    async with mcp_client(neon_settings(access_mode="full", production_branch="bt-prod")) as client:
        asked = data_of(await client.call_tool("delete_branch", {"branch": "bt-prod"}))
        assert "protected (it is the production branch)" in asked["summary"]
        assert "renamed to backup/bt-prod/<UTC time>" in asked["summary"]
        done = data_of(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
    backup = done["backup_branch"]
    assert backup.startswith("backup/bt-prod/") and done["protected_because"] == "it is the production branch"
    assert project.branch("bt-prod") is None
    kept = project.branch(backup)
    assert kept is not None and kept["id"] == branch["id"] and not kept["protected"]
    assert 6.9 < _days_left(kept["expires_at"]) <= 7.0
    assert await _count(project.uri_of(kept["id"])) == 3


async def test_full_mode_deletes_a_protected_branch_branch_without_backup_when_backups_are_off(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    protected_branch: Callable[[str], dict[str, Any]],
) -> None:
    protected_branch("bt-marked")
    before = _names(project)
    async with mcp_client(neon_settings(access_mode="full", backups=False)) as client:
        done = await _confirmed(client, "delete_branch", {"branch": "bt-marked"})
    assert "backup_branch" not in done
    assert _names(project) == before - {"bt-marked"}


async def test_a_stored_operation_does_not_run_when_the_branch_changed_since(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("bt-moving")
    async with mcp_client(neon_settings()) as client:
        asked = data_of(await client.call_tool("delete_branch", {"branch": "bt-moving"}))
        project.create_branch("bt-newborn", parent=branch["id"])
        late = await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]})
    assert late.is_error and "has child branches (bt-newborn)" in text_of(late)
    assert project.branch("bt-moving") is not None


# --- reset_branch ----------------------------------------------------------------------------------------------------


async def test_reset_brings_the_parents_state_back(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("bt-work")
    await sql(project.uri_of(branch["id"]), "DELETE FROM auslex.users")
    async with mcp_client(neon_settings()) as client:
        before = data_of(await client.call_tool("run_sql", {"sql": "SELECT 1", "branch": "bt-work"}))
        done = await _confirmed(client, "reset_branch", {"branch": "bt-work"})
        after = data_of(
            await client.call_tool("run_sql", {"sql": "SELECT count(*) FROM auslex.users", "branch": "bt-work"})
        )
    assert before["rows"] == [[1]]
    assert done["source_branch"] == "production" and "preserved_as" not in done
    assert "previous state not kept" in done["notes"]
    assert after["rows"] == [[3]]  # the pools were replaced: the restarted compute is reached
    assert await _count(project.uri_of(branch["id"])) == 3


async def test_reset_of_a_branch_with_children_keeps_its_state_under_an_old_name(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("bt-work")
    await sql(project.uri_of(branch["id"]), "DELETE FROM auslex.users WHERE id = 1")
    project.create_branch("bt-kid", parent=branch["id"])
    async with mcp_client(neon_settings()) as client:
        asked = data_of(await client.call_tool("reset_branch", {"branch": "bt-work"}))
        assert "kept as branch bt-work_old_<UTC time> (it has child branches (bt-kid)" in asked["summary"]
        done = data_of(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
        assert await _count(project.uri_of(branch["id"])) == 3
        # As on Neon, the kept state became bt-work's parent: resetting from the parent now undoes the first reset.
        named = await _confirmed(client, "reset_branch", {"branch": "bt-work", "preserve_under_name": "bt-kept"})
    old = done["preserved_as"]
    assert old.startswith("bt-work_old_") and any(old in note and "bt-kid" in note for note in done["notes"])
    kept = project.branch(old)
    kid = project.branch("bt-kid")
    assert kept is not None and kid is not None and kid["parent_id"] == kept["id"]
    assert named["preserved_as"] == "bt-kept" and project.branch("bt-kept") is not None
    assert await _count(project.uri_of(branch["id"])) == 2


async def test_full_mode_resets_a_neon_protected_branch_and_keeps_it_protected(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    protected_branch: Callable[[str], dict[str, Any]],
) -> None:
    """Neon refuses to reset a protected branch: the server lifts the protection for the reset and puts it back."""
    branch = protected_branch("bt-guarded")
    await sql(project.uri_of(branch["id"]), "INSERT INTO auslex.users VALUES (5, 'five')")
    refused = project.api.call(
        "POST",
        f"/projects/{project.id}/branches/{branch['id']}/restore",
        json={"source_branch_id": branch["parent_id"]},
        expect=422,
    )
    assert "cannot be reset" in refused["message"]
    async with mcp_client(neon_settings(access_mode="full")) as client:
        done = await _confirmed(client, "reset_branch", {"branch": "bt-guarded"})
    assert done["backup_branch"].startswith("backup/bt-guarded/")
    assert await _count(project.uri_of(branch["id"])) == 3
    after = project.branch("bt-guarded")
    assert after is not None and after["protected"], "Neon's protection is back"


async def test_full_mode_resets_a_protected_branch_after_a_backup(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("bt-prod")
    await sql(project.uri_of(branch["id"]), "INSERT INTO auslex.users VALUES (4, 'four')")
    async with mcp_client(neon_settings(access_mode="full", production_branch="bt-prod")) as client:
        asked = data_of(await client.call_tool("reset_branch", {"branch": "bt-prod"}))
        assert "kept as backup branch backup/bt-prod/<UTC time>, which Neon deletes in 7 days" in asked["summary"]
        done = data_of(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
    backup = done["backup_branch"]
    assert backup.startswith("backup/bt-prod/") and done["preserved_as"] == backup
    kept = project.branch(backup)
    assert kept is not None and 6.9 < _days_left(kept["expires_at"]) <= 7.0
    assert await _count(_give_compute(project, kept["id"])) == 4  # the backup holds the state before the reset
    assert await _count(project.uri_of(branch["id"])) == 3
    assert not [n for n in _names(project) if n.startswith("bt-prod_old_")]


async def test_with_backups_off_nothing_is_kept(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("bt-prod")
    before = _names(project)
    settings = neon_settings(access_mode="full", production_branch="bt-prod", backups=False)
    async with mcp_client(settings) as client:
        done = await _confirmed(client, "reset_branch", {"branch": "bt-prod"})
    assert "backup_branch" not in done and "preserved_as" not in done
    assert _names(project) == before


async def test_a_root_branch_cannot_be_reset(neon_settings: Callable[..., Settings], project: NeonTestProject) -> None:
    async with mcp_client(neon_settings(access_mode="full")) as client:
        result = await client.call_tool("reset_branch", {"branch": "production"})
    assert result.is_error and "has no parent (it is a root branch)" in text_of(result)


# --- restore_branch --------------------------------------------------------------------------------------------------


async def test_restore_to_a_time_before_a_delete_brings_the_row_back(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    moment_before_delete: tuple[dict[str, Any], str],
) -> None:
    branch, moment = moment_before_delete
    async with mcp_client(neon_settings()) as client:
        asked = data_of(await client.call_tool("restore_branch", {"branch": "bt-history", "to_time": moment}))
        assert "from its own history as of" in asked["summary"]
        assert "bt-history_old_<UTC time> (Neon requires" in asked["summary"]
        done = data_of(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
        rows = data_of(
            await client.call_tool(
                "run_sql", {"sql": "SELECT id FROM auslex.users ORDER BY id", "branch": "bt-history"}
            )
        )
    assert rows["rows"] == [[1], [2], [3]]
    old = done["preserved_as"]
    assert old.startswith("bt-history_old_") and done["source_branch_id"] == branch["id"]
    kept = project.branch(old)
    assert kept is not None
    assert await _count(_give_compute(project, kept["id"])) == 2  # the state before the restore


async def test_restore_from_another_branch(neon_settings: Callable[..., Settings], project: NeonTestProject) -> None:
    source = project.create_branch("bt-source")
    await sql(project.uri_of(source["id"]), "INSERT INTO auslex.users VALUES (5, 'five')")
    target = project.create_branch("bt-target")
    async with mcp_client(neon_settings()) as client:
        done = await _confirmed(client, "restore_branch", {"branch": "bt-target", "from_branch": "bt-source"})
    assert done["source_branch"] == "bt-source" and "preserved_as" not in done
    assert await _count(project.uri_of(target["id"])) == 4


async def test_full_mode_restores_a_protected_branch_branch_after_a_backup(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    protected_branch: Callable[[str], dict[str, Any]],
) -> None:
    marked = protected_branch("bt-marked")
    await sql(project.uri_of(marked["id"]), "DELETE FROM auslex.users WHERE id > 1")
    async with mcp_client(neon_settings(access_mode="full")) as client:
        done = await _confirmed(client, "restore_branch", {"branch": "bt-marked", "from_branch": "production"})
    assert done["protected_because"] == "Neon marks it protected"
    backup = project.branch(done["backup_branch"])
    assert backup is not None and done["backup_branch"].startswith("backup/bt-marked/")
    assert 6.9 < _days_left(backup["expires_at"]) <= 7.0
    assert await _count(project.uri_of(marked["id"])) == 3
    assert await _count(_give_compute(project, backup["id"])) == 1
    assert project.branch("bt-marked")["protected"]  # type: ignore[index]


async def test_restore_refuses_bad_input_before_asking(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    moment_before_delete: tuple[dict[str, Any], str],
) -> None:
    before = _names(project)
    long_ago = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    human = Human()
    async with mcp_client(neon_settings(), elicitation_callback=human) as client:
        nothing = await client.call_tool("restore_branch", {"branch": "bt-history"})
        both = await client.call_tool("restore_branch", {"branch": "bt-history", "to_time": long_ago, "to_lsn": "0/1"})
        itself = await client.call_tool("restore_branch", {"branch": "bt-history", "from_branch": "bt-history"})
        lsn = await client.call_tool("restore_branch", {"branch": "bt-history", "to_lsn": "yesterday"})
        unknown = await client.call_tool("restore_branch", {"branch": "bt-history", "from_branch": "bt-nope"})
        too_old = await client.call_tool("restore_branch", {"branch": "bt-history", "to_time": long_ago})
    assert nothing.is_error and "say what to restore from" in text_of(nothing)
    assert both.is_error and "not both" in text_of(both)
    assert itself.is_error and "needs to_time or to_lsn" in text_of(itself)
    assert lsn.is_error and "is not an LSN" in text_of(lsn)
    assert unknown.is_error and "branch 'bt-nope' not found" in text_of(unknown)
    # A time outside the history window is Neon's to judge: asked, accepted, then refused with Neon's reason.
    assert too_old.is_error and "cannot restore branch bt-history" in text_of(too_old)
    assert "history retention window" in text_of(too_old)
    assert len(human.asked) == 1
    assert _names(project) == before
    assert await _count(project.uri_of(moment_before_delete[0]["id"])) == 2


# --- faults ----------------------------------------------------------------------------------------------------------


async def test_every_branch_tool_succeeds_under_injected_api_faults(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    with injected_faults(project.api):
        async with mcp_client(neon_settings()) as client:
            created = data_of(await client.call_tool("create_branch", {"name": "bt-stormy"}))
            reset = await _confirmed(client, "reset_branch", {"branch": "bt-stormy"})
            await asyncio.sleep(1.1)
            moment = datetime.now(UTC).isoformat()
            await asyncio.sleep(1.1)
            deleted_row = await client.call_tool(
                "run_sql", {"sql": "DELETE FROM auslex.users WHERE id = 3", "branch": "bt-stormy"}
            )
            restored = await _confirmed(client, "restore_branch", {"branch": "bt-stormy", "to_time": moment})
            count = data_of(
                await client.call_tool("run_sql", {"sql": "SELECT count(*) FROM auslex.users", "branch": "bt-stormy"})
            )
            old = restored["preserved_as"]  # bt-stormy's parent now, as on Neon: deleted after it
            deleted = await _confirmed(client, "delete_branch", {"branch": "bt-stormy"})
            removed_old = await _confirmed(client, "delete_branch", {"branch": old})
    assert created["connectable"] and reset["action"] == "reset" and removed_old["action"] == "delete"
    assert not deleted_row.is_error and count["rows"] == [[3]]
    assert deleted["branch_id"] == created["branch_id"]
    assert not [n for n in _names(project) if n.startswith("bt-stormy")]
