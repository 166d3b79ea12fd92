"""The server says plainly when its database role can reach the database host (superuser, server files, server
programs), and with ``--require-least-privilege`` refuses to work as such a role.

Refusing to start is tested over the real command line in ``tests/transport/test_boundary.py``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from server.local_neon.clusters import Cluster
from server.settings import Settings
from tests.helpers import data_of, mcp_client, script, text_of

pytestmark = pytest.mark.anyio


async def _role_url(pg_cluster: Cluster, fresh_db: str, grants: str) -> str:
    """A login role of the fresh database, owner of it, with ``grants`` (SQL after ``CREATE ROLE … LOGIN``)."""
    role, password = "r_" + secrets.token_hex(4), secrets.token_hex(8)
    database = urlsplit(fresh_db).path.lstrip("/")
    await script(
        fresh_db, f"CREATE ROLE {role} LOGIN PASSWORD '{password}' {grants}; ALTER DATABASE {database} OWNER TO {role}"
    )
    return pg_cluster.dsn(database, user=role, password=password)


async def test_a_superuser_is_reported_by_health_check_and_logged_once(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(access_mode="read-only")
    with caplog.at_level(logging.WARNING, logger="neon_mcp.role"):
        async with mcp_client(settings) as client:
            health = await client.call_tool("health_check", {})
            read = await client.call_tool("run_sql", {"sql": "SELECT 1"})
    data = data_of(health)
    assert data["role_powers"] == ["superuser"] and "role_powers" in data["checks"]
    (finding,) = [f for f in data["findings"] if f["check"] == "role_powers"]
    assert finding["severity"] == "warning" and "not a permission PostgreSQL enforces" in finding["detail"]
    assert "CREATE ROLE" in finding["action"] and "--require-least-privilege" in finding["action"]
    assert "This server runs in read-only mode" in finding["detail"]
    assert "superuser" in text_of(health) and not data["healthy"]
    assert not read.is_error
    (logged,) = [r for r in caplog.records if r.name == "neon_mcp.role"]
    assert "is a superuser" in logged.getMessage()


async def test_a_least_privilege_owner_is_not_flagged_and_may_be_required(
    make_settings: Callable[..., Settings], pg_cluster: Cluster, fresh_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = await _role_url(pg_cluster, fresh_db, "")
    with caplog.at_level(logging.WARNING, logger="neon_mcp.role"):
        async with mcp_client(make_settings(database_url=url, require_least_privilege=True)) as client:
            health = await client.call_tool("health_check", {})
            read = await client.call_tool("run_sql", {"sql": "SELECT current_user"})
    data = data_of(health)
    assert data["role_powers"] == [] and not [f for f in data["findings"] if f["check"] == "role_powers"]
    assert data_of(read)["rows"][0][0] == data["role"]
    assert not [r for r in caplog.records if r.name == "neon_mcp.role"]


@pytest.mark.parametrize("member_of", ["pg_read_server_files", "pg_execute_server_program"])
async def test_a_member_of_a_server_role_is_flagged_and_refused_when_required(
    make_settings: Callable[..., Settings], pg_cluster: Cluster, fresh_db: str, member_of: str
) -> None:
    url = await _role_url(pg_cluster, fresh_db, f"IN ROLE {member_of}")
    async with mcp_client(make_settings(database_url=url)) as client:
        health = await client.call_tool("health_check", {})
    assert data_of(health)["role_powers"] == [member_of]
    async with mcp_client(make_settings(database_url=url, require_least_privilege=True)) as client:
        refused = await client.call_tool("run_sql", {"sql": "SELECT 1"})
        schema = await client.call_tool("describe_schema", {})
    for answer in (refused, schema):
        assert answer.is_error and "--require-least-privilege" in text_of(answer) and member_of in text_of(answer)
