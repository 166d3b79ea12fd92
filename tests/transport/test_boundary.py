"""The server's boundary over real HTTP, as a client sees it: pending operations belong to their MCP session, Host
and Origin are checked, no password reaches the server's log, and a powerful database role stops the server when
least privilege is required. Each server is a real ``neon-mcp serve`` process (``tests.transport.test_http``)."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx2 as httpx
import pytest

from server.local_neon.clusters import Cluster
from tests.helpers import script, sql, text_of
from tests.transport.test_http import EXE, TOKEN, Served, _env, mcp_over, serving

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


def _data(result: Any) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    return dict(result.structured_content)


async def _exists(url: str, table: str) -> bool:
    return bool((await sql(url, f"SELECT to_regclass('{table}') IS NOT NULL"))[0][0])


# --- a pending operation belongs to its MCP session ------------------------------------------------------------------


@pytest.mark.parametrize("client_kind", ["http-legacy", "sse"])
async def test_another_session_of_the_same_key_cannot_confirm_an_operation(
    fresh_db: str, tmp_path: Path, client_kind: str
) -> None:
    await script(fresh_db, "CREATE SCHEMA app; CREATE TABLE app.items AS SELECT generate_series(1, 10) AS id")
    env = _env(tmp_path / "home", DATABASE_URL=fresh_db)
    with serving(tmp_path, client_kind.removesuffix("-legacy"), "--access-mode", "full", env=env) as served:
        async with mcp_over(served, client_kind) as mine, mcp_over(served, client_kind) as other:
            pending = _data(await mine.call_tool("run_sql", {"sql": "DROP TABLE app.items"}))
            stolen = await other.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
            survived = await _exists(fresh_db, "app.items")
            confirmed = await mine.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
        assert served.stop() == 0
    assert stolen.is_error and "another MCP session" in text_of(stolen), text_of(stolen)
    assert survived, "the other session's confirmation ran nothing"
    assert not confirmed.is_error, text_of(confirmed)
    assert not await _exists(fresh_db, "app.items"), "its own session confirms it"


async def test_on_the_2026_protocol_an_operation_belongs_to_the_tenant(fresh_db: str, tmp_path: Path) -> None:
    """The documented limit (server/mcp/confirmations.py): without sessions, the id is the capability."""
    await script(fresh_db, "CREATE SCHEMA app; CREATE TABLE app.items (id int)")
    env = _env(tmp_path / "home", DATABASE_URL=fresh_db)
    with serving(tmp_path, "http", "--access-mode", "full", env=env) as served:
        async with mcp_over(served, "http") as mine, mcp_over(served, "http") as other:
            pending = _data(await mine.call_tool("run_sql", {"sql": "DROP TABLE app.items"}))
            confirmed = await other.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
        assert served.stop() == 0
    assert not confirmed.is_error, text_of(confirmed)


# --- Host and Origin -----------------------------------------------------------------------------------------------


async def _ask(served: Served, transport: str, **headers: str) -> int:
    """The status of a bare MCP request (initialize over streamable HTTP, opening the stream over SSE)."""
    sent = {"Authorization": f"Bearer {served.token}", "Accept": "application/json, text/event-stream", **headers}
    url = served.url.replace("0.0.0.0", "127.0.0.1")
    async with httpx.AsyncClient(timeout=10) as http:
        if transport == "http":
            return (await http.post(url, json=INITIALIZE, headers=sent)).status_code
        async with http.stream("GET", url, headers=sent) as response:
            return response.status_code


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_beyond_loopback_only_the_allowed_host_and_origin_get_in(
    fresh_db: str, tmp_path: Path, transport: str
) -> None:
    env = _env(tmp_path / "home", DATABASE_URL=fresh_db, NEON_MCP_HTTP_TOKEN=TOKEN)
    args = [
        "--host",
        "0.0.0.0",
        "--allowed-hosts",
        "mcp.example.test:*",
        "--allowed-origins",
        "https://app.example.test",
    ]
    with serving(tmp_path, transport, *args, env=env) as served:
        port = urlsplit(served.url).port
        good = f"mcp.example.test:{port}"
        statuses = {
            "allowed host": await _ask(served, transport, Host=good),
            "allowed origin": await _ask(served, transport, Host=good, Origin="https://app.example.test"),
            "wrong host": await _ask(served, transport, Host=f"evil.example:{port}"),
            "loopback host (not listed)": await _ask(served, transport, Host=f"127.0.0.1:{port}"),
            "wrong origin": await _ask(served, transport, Host=good, Origin="https://evil.example"),
        }
        async with mcp_over(
            Served(served.process, served.url.replace("0.0.0.0", "127.0.0.1"), served.token, *_paths(served)),
            transport,
            Host=good,
        ) as client:
            tools = await client.list_tools()
        assert served.stop() == 0
    assert statuses == {
        "allowed host": 200,
        "allowed origin": 200,
        "wrong host": 421,
        "loopback host (not listed)": 421,
        "wrong origin": 403,
    }
    assert tools.tools


def _paths(served: Served) -> tuple[Path, Path]:
    return served.stderr_path, served.stdout_path


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_on_loopback_a_foreign_host_or_origin_is_refused(fresh_db: str, tmp_path: Path, transport: str) -> None:
    env = _env(tmp_path / "home", DATABASE_URL=fresh_db)
    with serving(tmp_path, transport, env=env) as served:
        port = urlsplit(served.url).port
        statuses = [
            await _ask(served, transport, Host=f"127.0.0.1:{port}"),
            await _ask(served, transport, Host=f"evil.example:{port}"),
            await _ask(served, transport, Origin="http://evil.example"),
        ]
        assert served.stop() == 0
    assert statuses == [200, 421, 403]


def test_listening_beyond_loopback_needs_allowed_hosts(tmp_path: Path) -> None:
    env = _env(tmp_path / "home", DATABASE_URL="postgresql://u@127.0.0.1:1/db", NEON_MCP_HTTP_TOKEN=TOKEN)
    completed = subprocess.run(
        [EXE, "serve", "--transport", "http", "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2 and "--allowed-hosts" in completed.stderr, completed.stderr


# --- no password in the server's log -------------------------------------------------------------------------------


async def test_no_password_reaches_answers_the_audit_log_or_the_servers_log(fresh_db: str, tmp_path: Path) -> None:
    secret = "s3cr3t-" + secrets.token_hex(6)
    role = "r_" + secrets.token_hex(4)
    await script(fresh_db, f"CREATE EXTENSION pg_stat_statements; CREATE ROLE {role}")
    await script(fresh_db, f"ALTER ROLE {role} PASSWORD '{secret}'")  # an administrator, in another session
    admin = await asyncpg.connect(fresh_db)
    await admin.execute("BEGIN")
    await admin.execute(f"ALTER ROLE {role} ENCRYPTED PASSWORD '{secret}'")
    home = tmp_path / "home"
    env = _env(home, DATABASE_URL=fresh_db)
    answers = []
    try:
        await asyncio.sleep(5.5)
        with serving(tmp_path, "http", "--access-mode", "full", env=env) as served:
            async with mcp_over(served, "http-legacy") as client:
                answers.append(await client.call_tool("list_slow_queries", {"limit": 100}))
                answers.append(await client.call_tool("health_check", {}))
                answers.append(await client.call_tool("run_sql", {"sql": "SELECT query FROM pg_stat_activity"}))
                answers.append(await client.call_tool("run_sql", {"sql": f"ALTER ROLE {role} PASSWORD '{secret}'"}))
                answers.append(
                    await client.call_tool("run_sql", {"sql": f"ALTER ROLE nobody_{role} PASSWORD '{secret}'"})
                )
            assert served.stop() == 0
    finally:
        await admin.close()
    log = served.stderr
    assert "ALTER ROLE" in log, "the debug log shows the requests, redacted"
    assert secret not in log
    audit = (home / "audit.jsonl").read_text()
    assert f"ALTER ROLE {role} PASSWORD '[redacted]'" in audit and secret not in audit
    for answer in answers:
        assert secret not in text_of(answer) + json.dumps(answer.structured_content)


# --- a powerful database role, with least privilege required -------------------------------------------------------


async def test_a_superuser_role_stops_the_server_when_least_privilege_is_required(
    fresh_db: str, tmp_path: Path
) -> None:
    completed = subprocess.run(
        [EXE, "serve", "--transport", "http", "--require-least-privilege"],
        env=_env(tmp_path / "home", DATABASE_URL=fresh_db),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert "--require-least-privilege" in completed.stderr and "superuser" in completed.stderr
    assert "serving MCP" not in completed.stderr


async def test_a_least_privilege_role_serves_and_the_superuser_is_named_at_first_use(
    fresh_db: str, pg_cluster: Cluster, tmp_path: Path
) -> None:
    role, password = "r_" + secrets.token_hex(4), secrets.token_hex(8)
    await script(fresh_db, f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
    plain = pg_cluster.dsn(urlsplit(fresh_db).path.lstrip("/"), user=role, password=password)
    with serving(
        tmp_path / "least", "http", "--require-least-privilege", env=_env(tmp_path / "h1", DATABASE_URL=plain)
    ) as served:
        async with mcp_over(served, "http") as client:
            read = await client.call_tool("run_sql", {"sql": "SELECT current_user"})
        assert served.stop() == 0
    assert _data(read)["rows"] == [[role]]
    assert "neon_mcp.role" not in served.stderr
    with serving(tmp_path / "super", "http", env=_env(tmp_path / "h2", DATABASE_URL=fresh_db)) as served:
        assert "neon_mcp.role" not in served.stderr, "connections are lazy: nothing is said before the first call"
        async with mcp_over(served, "http") as client:
            await client.call_tool("run_sql", {"sql": "SELECT 1"})
            await client.call_tool("run_sql", {"sql": "SELECT 2"})
        assert served.stop() == 0
    warnings = [line for line in served.stderr.splitlines() if "WARNING neon_mcp.role" in line]
    assert len(warnings) == 1 and "is a superuser" in warnings[0], served.stderr
