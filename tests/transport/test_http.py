"""``neon-mcp serve --transport http|sse``: real servers in subprocesses on loopback, driven by the SDK's own HTTP and
SSE clients — the bearer token, /healthz, refusals, tenants (one per Neon API key), progress over HTTP, graceful
stops, and local Neon stopped at exit only when this server started it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from server.mcp.tenants import KEY_HEADER, tenant_id
from tests.helpers import script, sql, text_of
from tests.local_neon.helpers import API
from tests.neon import conftest as neon_fixtures
from tests.neon.conftest import NeonTestProject

pytestmark = pytest.mark.anyio

EXE = str(Path(sys.executable).parent / "neon-mcp")
TOKEN = "test-token-0123456789abcdef"


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NEON_MCP_", "NEON_API", "NEON_PROJECT")) and k != "DATABASE_URL"
    }
    env["NEON_MCP_HOME"] = str(home)
    env.update(extra)
    return env


@dataclass
class Served:
    """A running ``neon-mcp serve`` over HTTP or SSE."""

    process: subprocess.Popen[bytes]
    url: str
    token: str
    stderr_path: Path
    stdout_path: Path

    @property
    def base(self) -> str:
        return self.url.rsplit("/", 1)[0]

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM, then the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextmanager
def serving(
    tmp_path: Path, transport: str, *args: str, env: dict[str, str], ready_timeout: float = 120
) -> Iterator[Served]:
    """Start ``neon-mcp serve --transport TRANSPORT --port 0 ARGS`` and wait until it says where it listens."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    stderr_path, stdout_path = tmp_path / f"serve-{transport}.err", tmp_path / f"serve-{transport}.out"
    with stderr_path.open("wb") as err, stdout_path.open("wb") as out:
        process = subprocess.Popen(
            [EXE, "serve", "--transport", transport, "--port", "0", "--log-level", "debug", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + ready_timeout
        found = None
        while found is None:
            text = stderr_path.read_text(errors="replace")
            found = re.search(r"serving MCP over .* at (http://\S+)", text)
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not start (exit {process.poll()}):\n{text[-3000:]}")
            time.sleep(0.05)
        generated = re.search(r"bearer token for this run \(.*\): (\S+)", text)
        token = generated.group(1) if generated else env.get("NEON_MCP_HTTP_TOKEN", "")
        yield Served(process, found.group(1), token, stderr_path, stdout_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@asynccontextmanager
async def mcp_over(served: Served, client_kind: str, **headers: str) -> AsyncIterator[Client]:
    """A real MCP client of ``served`` sending ``headers`` (the bearer token unless ``Authorization`` is given).

    ``client_kind``: ``sse``; ``http`` (the SDK's default, protocol 2026-07-28: one POST per request); ``http-legacy``
    (the initialize handshake: a session, answers as event streams, a standalone GET stream)."""
    sent = {"Authorization": f"Bearer {served.token}", **{k.replace("_", "-"): v for k, v in headers.items()}}
    if client_kind == "sse":
        async with Client(sse_client(served.url, headers=sent)) as client:
            yield client
        return
    mode = "legacy" if client_kind == "http-legacy" else "auto"
    async with (
        create_mcp_http_client(headers=sent) as http,
        Client(streamable_http_client(served.url, http_client=http), mode=mode) as client,
    ):
        yield client


CLIENTS = ["http", "http-legacy", "sse"]


def _transport(client_kind: str) -> str:
    return client_kind.removesuffix("-legacy")


def _data(result: Any) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    return dict(result.structured_content)


# --- a plain database, over both transports --------------------------------------------------------------------------


@pytest.mark.parametrize("client_kind", CLIENTS)
async def test_a_real_client_works_end_to_end_and_the_token_stays_on_stderr(
    fresh_db: str, tmp_path: Path, client_kind: str
) -> None:
    await script(fresh_db, "CREATE SCHEMA app; CREATE TABLE app.items (id int); INSERT INTO app.items VALUES (1), (2)")
    env = _env(tmp_path / "home", DATABASE_URL=fresh_db)
    transport = _transport(client_kind)
    with serving(tmp_path, transport, "--access-mode", "full", env=env) as served:
        async with mcp_over(served, client_kind) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            read = await client.call_tool("run_sql", {"sql": "SELECT id FROM app.items ORDER BY id"})
            schema = await client.call_tool("describe_schema", {"schema": "app"})
            drop = _data(await client.call_tool("run_sql", {"sql": "DROP TABLE app.items"}))
            confirmed = await client.call_tool("confirm_operation", {"operation_id": drop["operation_id"]})
        async with mcp_over(served, client_kind, X_Neon_Api_Key="napi_unwanted") as client:
            unwanted = await client.call_tool("run_sql", {"sql": "SELECT 1"})
        assert served.stop() == 0
    assert {"run_sql", "describe_schema", "confirm_operation"} <= tools
    assert _data(read)["rows"] == [[1], [2]]
    assert "items" in text_of(schema)
    assert drop["status"] == "confirmation_required" and not confirmed.is_error, text_of(confirmed)
    assert [tuple(r) for r in await sql(fresh_db, "SELECT to_regclass('app.items')")] == [(None,)]
    assert unwanted.is_error and "does not take Neon API keys from requests" in text_of(unwanted)
    assert served.stdout_path.read_text() == "", "the token and the logs go to stderr only"
    assert served.url.endswith("/mcp" if transport == "http" else "/sse")
    assert served.token and served.token in served.stderr


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_without_the_token_every_request_but_healthz_gets_401(
    fresh_db: str, tmp_path: Path, transport: str
) -> None:
    env = _env(tmp_path / "home", DATABASE_URL=fresh_db, NEON_MCP_HTTP_TOKEN=TOKEN)
    with serving(tmp_path, transport, env=env) as served:
        async with httpx.AsyncClient(timeout=10) as http:
            health = await http.get(served.base + "/healthz")
            answers = {
                name: await http.request(
                    "GET" if transport == "sse" else "POST",
                    served.url,
                    headers=headers,
                    json=None if transport == "sse" else {"jsonrpc": "2.0", "id": 1, "method": "ping"},
                )
                for name, headers in {
                    "none": {},
                    "wrong": {"Authorization": "Bearer " + TOKEN[:-1] + "X"},
                    "longer": {"Authorization": "Bearer " + TOKEN + "X"},
                    "basic": {"Authorization": "Basic " + TOKEN},
                    "bare": {"Authorization": TOKEN},
                }.items()
            }
            messages = await http.post(served.base + "/messages/?session_id=00", json={})
        with pytest.raises(Exception):  # noqa: B017 (the SDK's clients fail in their own ways on a 401)
            async with mcp_over(served, transport, Authorization="Bearer wrong-token-0123456789") as client:
                await client.list_tools()
        async with mcp_over(served, transport) as client:
            ok = await client.call_tool("run_sql", {"sql": "SELECT 1 AS one"})
        assert served.stop() == 0
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    for name, answer in answers.items():
        assert answer.status_code == 401, name
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert messages.status_code == 401
    assert _data(ok)["rows"] == [[1]]
    assert TOKEN not in served.stderr, "a token the operator chose is never printed"


def test_refusals_are_clear_and_exit_2(tmp_path: Path) -> None:
    url = "postgresql://u@127.0.0.1:1/db"
    cases = {
        "non-loopback": (["--transport", "http", "--host", "0.0.0.0"], {}, "not a loopback address"),
        "non-loopback sse": (["--transport", "sse", "--host", "10.1.2.3"], {}, "NEON_MCP_HTTP_TOKEN"),
        "short token": (["--transport", "http"], {"NEON_MCP_HTTP_TOKEN": "tiny-secret"}, "at least 16 characters"),
        "header on stdio": (["--neon-key-from-header"], {}, "needs --transport http or sse"),
        "header and url": (["--transport", "http", "--neon-key-from-header"], {}, "cannot be combined"),
    }
    for name, (args, extra, expected) in cases.items():
        env = _env(tmp_path / "home", DATABASE_URL=url, **extra)
        completed = subprocess.run(
            [EXE, "serve", *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert completed.returncode == 2, (name, completed.stderr)
        assert expected in completed.stderr, (name, completed.stderr)
        assert completed.stdout == "", name
        assert "tiny-secret" not in completed.stderr, "the token is never echoed"


def test_a_port_in_use_is_refused_clearly(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        completed = subprocess.run(
            [EXE, "serve", "--transport", "http", "--port", str(port), "--database-url", "postgresql://u@h/db"],
            env=_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert completed.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in completed.stderr


# --- graceful stop ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client_kind", CLIENTS)
async def test_a_stop_lets_calls_in_flight_finish_then_closes_streams_and_pools(
    fresh_db: str, tmp_path: Path, client_kind: str
) -> None:
    env = _env(tmp_path / "home", DATABASE_URL=fresh_db)
    with serving(tmp_path, _transport(client_kind), env=env) as served:
        async with mcp_over(served, client_kind) as client, anyio.create_task_group() as tasks:
            await client.list_tools()  # the client checks results against output schemas: it must not ask later
            answers: list[Any] = []

            async def slow() -> None:
                answers.append(await client.call_tool("run_sql", {"sql": "SELECT pg_sleep(1.5)::text AS slept"}))

            tasks.start_soon(slow)
            await anyio.sleep(0.5)
            stopped_at = time.monotonic()
            served.process.send_signal(signal.SIGTERM)
        code = served.process.wait(timeout=60)
        took = time.monotonic() - stopped_at
    assert _data(answers[0])["rows"] == [[""]], "the call in flight was answered"
    assert code == 0
    assert took < 30, "idle streams did not hold the stop up"
    log = served.stderr
    assert "stopping: 1 call(s) in flight" in log
    assert "stopped: sessions ended, pools closed" in log
    assert "Traceback" not in log and "ASGI callable" not in log
    left = await sql(fresh_db, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
    assert [tuple(r) for r in left] == [(1,)], "the server's pool is closed (only this query's connection is left)"


# --- Neon: progress over HTTP, tenants ---------------------------------------------------------------------------

# The Neon-mode tests' project (tests/neon/conftest.py), for the tests here.
neon_test_project = neon_fixtures.neon_test_project
project = neon_fixtures.project


@pytest.fixture
def neon_env(neon_api: API, neon_test_project: NeonTestProject, tmp_path: Path) -> Callable[..., dict[str, str]]:
    def make(*, key: bool = True, **extra: str) -> dict[str, str]:
        values = {"NEON_API_HOST": neon_api.host, "NEON_PROJECT_ID": neon_test_project.id, **extra}
        if key:
            values["NEON_API_KEY"] = neon_api.key
        return _env(tmp_path / "home", **values)

    return make


@pytest.mark.parametrize("client_kind", CLIENTS)
async def test_progress_notifications_reach_an_http_client(
    neon_env: Callable[..., dict[str, str]], project: NeonTestProject, tmp_path: Path, client_kind: str
) -> None:
    progress: list[str] = []

    async def listen(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    name = f"tr-progress-{client_kind}"
    with serving(tmp_path, _transport(client_kind), env=neon_env()) as served:
        async with mcp_over(served, client_kind) as client:
            created = await client.call_tool("create_branch", {"name": name}, progress_callback=listen)
        assert served.stop() == 0
    assert _data(created)["connectable"] is True
    assert any(f"creating branch {name}" in m for m in progress), progress
    assert any(f"{name} is ready" in m for m in progress), progress


async def test_each_neon_key_is_a_tenant_of_its_own(
    neon_env: Callable[..., dict[str, str]], neon_api: API, project: NeonTestProject, tmp_path: Path
) -> None:
    project.create_branch("tr-tenants")
    good, bad = neon_api.key, "napi_not_a_key_of_local_neon_0123"
    home = tmp_path / "home"
    with serving(tmp_path, "http", "--neon-key-from-header", env=neon_env(key=False)) as served:
        async with (
            mcp_over(served, "http", X_Neon_Api_Key=good) as a,
            mcp_over(served, "http", X_Neon_Api_Key=bad) as b,
            mcp_over(served, "http") as nobody,
        ):
            tools = {tool.name for tool in (await nobody.list_tools()).tools}
            refused = await nobody.call_tool("run_sql", {"sql": "SELECT 1"})
            read = await a.call_tool("run_sql", {"sql": "SELECT count(*) FROM auslex.users", "branch": "tr-tenants"})
            denied = await b.call_tool("run_sql", {"sql": "SELECT 1", "branch": "tr-tenants"})
            pending = _data(await a.call_tool("run_sql", {"sql": "DROP TABLE auslex.users", "branch": "tr-tenants"}))
            stolen = await b.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
            also_stolen = await nobody.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
            confirmed = await a.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
            gone = await a.call_tool("run_sql", {"sql": "SELECT to_regclass('auslex.users')", "branch": "tr-tenants"})
        assert served.stop() == 0
    assert {"run_sql", "create_branch", "list_branches"} <= tools
    assert refused.is_error and f"send yours in the {KEY_HEADER} header" in text_of(refused)
    assert _data(read)["rows"] == [[3]]
    assert denied.is_error and "authentication required" in text_of(denied), text_of(denied)
    assert pending["status"] == "confirmation_required"
    assert stolen.is_error and also_stolen.is_error, "a confirmation belongs to the key that asked for it"
    assert not confirmed.is_error, text_of(confirmed)
    assert _data(gone)["rows"] == [[None]]
    # Each key has its own data directory (audit log); the server's own stays empty; no key is ever written out.
    audit = home / "tenants" / tenant_id(good) / "audit.jsonl"
    assert audit.exists() and "DROP TABLE auslex.users" in audit.read_text()
    assert not (home / "audit.jsonl").exists()
    assert not (home / "tenants" / tenant_id(bad)).exists()
    log = served.stderr
    assert f"tenant {tenant_id(good)}: opened" in log and f"tenant {tenant_id(bad)}: opened" in log
    for key in (good, bad):
        assert key not in log
        assert key not in text_of(denied) + json.dumps(pending) + audit.read_text()


# --- local Neon: stopped at exit only when this server started it ----------------------------------------------


def _local_neon_status(env: dict[str, str]) -> int:
    return subprocess.run([EXE, "local", "status"], env=env, capture_output=True, check=False).returncode


async def _one_call(served: Served) -> Any:
    async with mcp_over(served, "http") as client:
        return await client.call_tool("run_sql", {"sql": "SELECT current_database()"})


def test_local_neon_this_server_started_is_stopped_at_exit() -> None:
    home = Path(tempfile.mkdtemp(prefix="neon-mcp-serve-http-"))
    if os.geteuid() == 0:
        home.chmod(0o711)  # local Neon's PostgreSQL runs as nobody
    env = _env(home)
    try:
        with serving(home / "run", "http", env=env) as served:
            answer = anyio.run(_one_call, served)
            assert _local_neon_status(env) == 0
            assert served.stop() == 0
        assert _data(answer)["rows"] == [["neondb"]]
        assert _local_neon_status(env) == 3, "the server started local Neon, so it stopped it"
    finally:
        subprocess.run([EXE, "local", "stop"], env=env, capture_output=True, timeout=120, check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_a_local_neon_that_was_running_keeps_running(neon_api: API, local_home: Path, tmp_path: Path) -> None:
    env = _env(local_home)  # the session's local Neon runs there
    with serving(tmp_path, "http", env=env) as served:
        answer = anyio.run(_one_call, served)
        assert served.stop() == 0
    assert not answer.is_error, text_of(answer)
    assert _local_neon_status(env) == 0, "local Neon was running before the server: it keeps running"
