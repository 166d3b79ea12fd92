"""create_role on Neon (local Neon over real HTTP): the privileges hold at the database (a read role cannot INSERT
and sees tables made later), protection per access mode, the password revealed once or never, never logged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest
from mcp_types import CallToolResult

from server.settings import Settings
from tests.helpers import Human, data_of, mcp_client, script, sql, text_of
from tests.neon.conftest import NeonTestProject

pytestmark = pytest.mark.anyio


def _as(uri: str, role: str, password: str) -> str:
    """``uri`` with another role and password."""
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"))


async def _create(settings: Settings, human: Human | None, **arguments: Any) -> CallToolResult:
    options: dict[str, Any] = {"elicitation_callback": human} if human is not None else {}
    async with mcp_client(settings, **options) as client:
        return await client.call_tool("create_role", arguments)


async def test_a_read_role_reads_tables_made_later_and_cannot_write(
    neon_settings: Callable[..., Settings], project: NeonTestProject, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    branch = project.create_branch("rl-read")
    owner = project.uri_of(branch["id"])
    human = Human()
    settings = neon_settings(reveal_role_passwords=True)
    result = await _create(settings, human, name="reporter", privileges="read", schemas=["auslex"], branch="rl-read")
    data = data_of(result)
    assert data["status"] == "ok" and data["password_revealed"] is True
    password = data["password"]
    assert len(human.asked) == 1 and "Show that password to the agent" in human.asked[0]
    assert f"password (shown once): {password}" in text_of(result)

    reporter = _as(owner, "reporter", password)
    assert (await sql(reporter, "SELECT count(*) FROM auslex.users"))[0][0] == 3
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await sql(reporter, "INSERT INTO auslex.users VALUES (80, 'not allowed')")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await sql(reporter, "CREATE TABLE auslex.mine (id int)")
    await script(owner, "CREATE TABLE auslex.later (id int); INSERT INTO auslex.later VALUES (1), (2)")
    assert (await sql(reporter, "SELECT count(*) FROM auslex.later"))[0][0] == 2
    facts = await sql(
        reporter,
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, pg_has_role('reporter', 'neon_superuser', "
        "'MEMBER') FROM pg_roles WHERE rolname = 'reporter'",
    )
    assert tuple(facts[0]) == (False, False, False, False, False)

    audit = (settings.home / "audit.jsonl").read_text()
    assert "CREATE ROLE" in audit and password not in audit and "SCRAM-SHA-256$" not in audit
    assert password not in caplog.text


async def test_a_write_role_changes_rows_but_not_the_schema(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("rl-write")
    owner = project.uri_of(branch["id"])
    data = data_of(
        await _create(
            neon_settings(reveal_role_passwords=True),
            Human(),
            name="app",
            privileges="write",
            schemas=["auslex"],
            branch="rl-write",
        )
    )
    app = _as(owner, "app", data["password"])
    await script(
        app,
        "INSERT INTO auslex.users VALUES (81, 'eighty-one'); UPDATE auslex.users SET name = 'x' "
        "WHERE id = 81; DELETE FROM auslex.users WHERE id = 1",
    )
    assert (await sql(owner, "SELECT count(*) FROM auslex.users"))[0][0] == 3
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await sql(app, "CREATE TABLE auslex.mine (id int)")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await sql(app, "TRUNCATE auslex.users")


async def test_an_owner_role_can_run_migrations_in_its_schemas(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    branch = project.create_branch("rl-owner")
    owner = project.uri_of(branch["id"])
    data = data_of(
        await _create(
            neon_settings(reveal_role_passwords=True),
            Human(),
            name="migrator",
            privileges="owner",
            schemas=["auslex"],
            branch="rl-owner",
        )
    )
    migrator = _as(owner, "migrator", data["password"])
    await script(migrator, "CREATE TABLE auslex.orders (id int PRIMARY KEY); CREATE INDEX ON auslex.orders (id)")
    assert (await sql(migrator, "SELECT count(*) FROM auslex.users"))[0][0] == 3
    await script(migrator, "TRUNCATE auslex.orders")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await sql(migrator, "CREATE TABLE public.elsewhere (id int)")


async def test_without_the_setting_the_password_is_never_returned(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("rl-quiet")
    human = Human()
    data = data_of(await _create(neon_settings(), human, name="quiet", privileges="read", branch="rl-quiet"))
    declined = Human(yes=False)
    refused = data_of(
        await _create(
            neon_settings(reveal_role_passwords=True), declined, name="quiet2", privileges="read", branch="rl-quiet"
        )
    )
    assert human.asked == [] and "password" not in data and data["password_revealed"] is False
    assert "NEON_MCP_REVEAL_ROLE_PASSWORDS" in data["note"] and data["schemas"] == ["public"]
    assert len(declined.asked) == 1 and "password" not in refused


async def test_a_protected_branch_goes_through_migrate_in_branches_mode_and_is_confirmed_in_full(
    neon_settings: Callable[..., Settings],
    project: NeonTestProject,
    protected_branch: Callable[[str], dict[str, Any]],
) -> None:
    branch = protected_branch("rl-guarded")
    refused = await _create(neon_settings(), None, name="guest", privileges="read", branch="rl-guarded")
    assert refused.is_error and "migrate" in text_of(refused) and "is protected" in text_of(refused)
    async with mcp_client(neon_settings(access_mode="full")) as client:
        asked = data_of(
            await client.call_tool("create_role", {"name": "guest", "privileges": "read", "branch": "rl-guarded"})
        )
        assert asked["status"] == "confirmation_required" and "Create login role guest" in asked["summary"]
        assert not await sql(project.uri_of(branch["id"]), "SELECT 1 FROM pg_roles WHERE rolname = 'guest'")
        done = data_of(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
    assert done["status"] == "ok" and done["role"] == "guest"
    assert await sql(project.uri_of(branch["id"]), "SELECT 1 FROM pg_roles WHERE rolname = 'guest'")


async def test_bad_names_existing_roles_and_unknown_schemas_are_refused_before_anything_runs(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    project.create_branch("rl-bad")
    async with mcp_client(neon_settings()) as client:
        reserved = await client.call_tool("create_role", {"name": "pg_evil", "privileges": "read", "branch": "rl-bad"})
        taken = await client.call_tool(
            "create_role", {"name": "neondb_owner", "privileges": "read", "branch": "rl-bad"}
        )
        schema = await client.call_tool(
            "create_role", {"name": "lost", "privileges": "read", "schemas": ["nowhere"], "branch": "rl-bad"}
        )
        quoted = await client.call_tool(
            "create_role", {"name": 'odd"; DROP TABLE auslex.users; --', "privileges": "read", "branch": "rl-bad"}
        )
    assert reserved.is_error and "reserved" in text_of(reserved)
    assert taken.is_error and "exists already" in text_of(taken)
    assert schema.is_error and "'nowhere' not found" in text_of(schema) and "auslex" in text_of(schema)
    assert not quoted.is_error, text_of(quoted)
    assert (await sql(project.uri_of(project.branch("rl-bad")["id"]), "SELECT count(*) FROM auslex.users"))[0][0] == 3  # type: ignore[index]
