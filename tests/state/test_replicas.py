"""Several ``neon-mcp serve --transport http`` processes on one state database, behind a round-robin load balancer
(``tests.state.proxy``: no session affinity), act as one service: a confirmation asked through one replica is
confirmed through another, an elicitation round trip crosses replicas, concurrent confirmations of one id run it
once, a migration planned on one is applied once through another, a replica killed or stopped loses nothing, and the
audit table has every call from every replica."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.helpers import Human, script, sql, text_of
from tests.local_neon.helpers import API
from tests.neon import conftest as neon_fixtures
from tests.neon.conftest import NeonTestProject
from tests.state.proxy import RoundRobin
from tests.transport.test_http import EXE, TOKEN, Served, _env, serving

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# The Neon-mode tests' project (tests/neon/conftest.py), for the migration tests here.
neon_test_project = neon_fixtures.neon_test_project
project = neon_fixtures.project

COUNTER = "CREATE TABLE counter (n int NOT NULL); INSERT INTO counter VALUES (0);"
BUMP = "UPDATE counter SET n = n + 1"  # no WHERE: destructive, so it waits for confirmation


@contextmanager
def replicas(tmp_path: Path, count: int, env: Callable[[Path], dict[str, str]]) -> Iterator[list[Served]]:
    """``count`` replicas started together, each with its own data directory (``env(home)``), stopped afterwards."""
    managers = [serving(tmp_path / f"replica-{i}", "http", env=env(tmp_path / f"home-{i}")) for i in range(count)]
    with ExitStack() as stack, ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(manager.__enter__) for manager in managers]
        started, failure = [], None
        for manager, future in zip(managers, futures, strict=True):
            try:
                started.append(future.result())
                stack.push(manager.__exit__)
            except Exception as exc:
                failure = exc
        if failure is not None:
            raise failure
        yield started


@asynccontextmanager
async def client_of(balancer: RoundRobin, *, mode: str = "auto", **options: Any) -> AsyncIterator[Client]:
    """An MCP client of the service, through the balancer."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        Client(streamable_http_client(balancer.url + "/mcp", http_client=http), mode=mode, **options) as client,
    ):
        yield client


def steer_away_from(balancer: RoundRobin, replica: int) -> None:
    """Make the balancer's next request go to another replica than ``replica`` (by sending it a health check)."""
    while balancer.next_replica() == replica:
        assert httpx.get(balancer.url + "/healthz").status_code == 200


def _data(result: Any) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    return dict(result.structured_content)


async def _counter(url: str) -> int:
    return int((await sql(url, "SELECT n FROM counter"))[0][0])


async def _audit(state_url: str) -> list[asyncpg.Record]:
    return await sql(state_url, "SELECT * FROM neon_mcp_state.audit_log ORDER BY id")


@pytest.fixture
def sql_env(fresh_db: str, state_url: str) -> Callable[..., dict[str, str]]:
    """Replicas serving the test's database in access mode full, on the test's state database."""

    def make(home: Path, **extra: str) -> dict[str, str]:
        return _env(
            home,
            DATABASE_URL=fresh_db,
            NEON_MCP_ACCESS_MODE="full",
            NEON_MCP_STATE_URL=state_url,
            NEON_MCP_HTTP_TOKEN=TOKEN,
            **extra,
        )

    return make


# --- confirmations -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_confirmation_asked_through_one_replica_is_confirmed_through_another(
    tmp_path: Path, fresh_db: str, state_url: str, sql_env: Callable[[Path], dict[str, str]], mode: str
) -> None:
    await script(fresh_db, COUNTER)
    with replicas(tmp_path, 2, sql_env) as servers, RoundRobin([s.base for s in servers]) as balancer:
        async with client_of(balancer, mode=mode) as client:
            asked = _data(await client.call_tool("run_sql", {"sql": BUMP}))
            assert asked["status"] == "confirmation_required"
            (asker,) = balancer.calls("run_sql")
            steer_away_from(balancer, asker)
            done = _data(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
            again = await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]})
        confirmer = balancer.calls("confirm_operation")[0]
    assert confirmer != asker, balancer.served
    assert done["status"] == "ok" and await _counter(fresh_db) == 1
    assert again.is_error and "was already confirmed and ran; it cannot run again" in text_of(again)
    (record,) = await _audit(state_url)
    assert (record["sql"], record["operation_id"], record["confirmation"]) == (
        BUMP,
        asked["operation_id"],
        "confirm_operation",
    )


@pytest.mark.parametrize("keys", ["kept in the state database", "NEON_MCP_STATE_KEY", "a key per replica"])
async def test_an_elicitation_round_trip_crosses_replicas(
    tmp_path: Path, fresh_db: str, sql_env: Callable[..., dict[str, str]], keys: str
) -> None:
    """On the 2026-07-28 protocol the question comes back sealed in the result and the answer rides the client's retry:
    the retry reaches the other replica, which unseals it with the key they share (and only with that key)."""
    await script(fresh_db, COUNTER)

    def env(home: Path) -> dict[str, str]:
        if keys == "kept in the state database":
            return sql_env(home)
        key = "shared-" if keys == "NEON_MCP_STATE_KEY" else f"own-{home.name}-"
        return sql_env(home, NEON_MCP_STATE_KEY=key.ljust(40, "k"))

    human = Human()
    with replicas(tmp_path, 2, env) as servers, RoundRobin([s.base for s in servers]) as balancer:
        async with client_of(balancer, elicitation_callback=human) as client:
            try:
                result = await client.call_tool("run_sql", {"sql": BUMP})
            except Exception as exc:  # the SDK's client raises the protocol error of a refused retry
                result = exc
    rounds = balancer.calls("run_sql")
    assert len(rounds) == 2 and rounds[0] != rounds[1], balancer.served
    assert len(human.asked) == 1 and BUMP in human.asked[0]
    if keys == "a key per replica":
        assert "Invalid or expired requestState" in str(result) and await _counter(fresh_db) == 0
        return
    assert _data(result)["status"] == "ok" and await _counter(fresh_db) == 1


async def test_concurrent_confirmations_of_one_id_on_three_replicas_run_it_once(
    tmp_path: Path, fresh_db: str, sql_env: Callable[[Path], dict[str, str]]
) -> None:
    await script(fresh_db, COUNTER)
    rounds = 5
    with replicas(tmp_path, 3, sql_env) as servers, RoundRobin([s.base for s in servers]) as balancer:
        async with client_of(balancer) as asker, client_of(balancer) as first, client_of(balancer) as second:
            for _ in range(rounds):
                operation_id = _data(await asker.call_tool("run_sql", {"sql": BUMP}))["operation_id"]
                outcomes: list[Any] = []

                async def confirm(client: Client, operation: str = operation_id, into: list[Any] = outcomes) -> None:
                    into.append(await client.call_tool("confirm_operation", {"operation_id": operation}))

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(confirm, first)
                    tasks.start_soon(confirm, second)
                ran = [o for o in outcomes if not o.is_error]
                refused = [text_of(o) for o in outcomes if o.is_error]
                assert len(ran) == 1 and len(refused) == 1, refused
                assert "was already confirmed and ran" in refused[0]
        pairs = balancer.calls("confirm_operation")
    assert await _counter(fresh_db) == rounds  # by effect: each operation ran exactly once
    assert any(pairs[i] != pairs[i + 1] for i in range(0, len(pairs), 2)), "the confirmations raced on two replicas"


async def test_the_audit_table_has_every_call_from_every_replica(
    tmp_path: Path, fresh_db: str, state_url: str, sql_env: Callable[[Path], dict[str, str]]
) -> None:
    await script(fresh_db, "CREATE TABLE t (n int)")
    with replicas(tmp_path, 3, sql_env) as servers, RoundRobin([s.base for s in servers]) as balancer:
        async with client_of(balancer) as client:
            for n in range(12):
                _data(await client.call_tool("run_sql", {"sql": f"INSERT INTO t VALUES ({n})"}))
        pids = {server.process.pid for server in servers}
    rows = await _audit(state_url)
    assert [row["sql"] for row in rows] == [f"INSERT INTO t VALUES ({n})" for n in range(12)]
    assert {int(row["replica"].rsplit(":", 1)[1]) for row in rows} == pids
    assert {(row["tool"], row["client"], row["outcome"], row["rows_affected"]) for row in rows} == {
        ("run_sql", "mcp", "ok", 1)
    }
    assert len({row["tenant"] for row in rows}) == 1
    for index in range(len(servers)):  # nothing went to the replicas' own files
        assert not (tmp_path / f"home-{index}" / "audit.jsonl").exists()


# --- replicas stopping -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
async def test_a_confirmation_pending_on_a_replica_that_went_away_is_confirmed_on_another(
    tmp_path: Path, fresh_db: str, sql_env: Callable[[Path], dict[str, str]], how: signal.Signals
) -> None:
    await script(fresh_db, COUNTER)
    with replicas(tmp_path, 2, sql_env) as servers, RoundRobin([s.base for s in servers]) as balancer:
        async with client_of(balancer) as client:
            operation_id = _data(await client.call_tool("run_sql", {"sql": BUMP}))["operation_id"]
            (asker,) = balancer.calls("run_sql")
            servers[asker].process.send_signal(how)
            assert servers[asker].process.wait(timeout=90) in (0, -signal.SIGKILL)
            done = _data(await client.call_tool("confirm_operation", {"operation_id": operation_id}))
        assert balancer.calls("confirm_operation") == [1 - asker]
    assert done["status"] == "ok" and await _counter(fresh_db) == 1


async def test_healthz_reports_the_state_database(
    tmp_path: Path, fresh_db: str, state_url: str, pg_cluster: Any, sql_env: Callable[[Path], dict[str, str]]
) -> None:
    with replicas(tmp_path, 1, sql_env) as (server,):
        healthy = httpx.get(server.base + "/healthz")
        assert healthy.status_code == 200
        body = healthy.json()
        assert body["status"] == "ok" and body["state"]["store"] == "postgres" and body["state"]["ok"] is True
        admin = await asyncpg.connect(pg_cluster.dsn())
        try:  # the state database goes away under the running replica
            await admin.execute(f'DROP DATABASE "{state_url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await admin.close()
        sick = httpx.get(server.base + "/healthz", timeout=10)
        assert sick.status_code == 503 and sick.json()["state"]["ok"] is False
        assert state_url.rsplit("/", 1)[1] not in sick.text


def test_a_state_database_that_does_not_answer_stops_the_start_clearly(tmp_path: Path) -> None:
    import subprocess

    env = _env(
        tmp_path / "home",
        DATABASE_URL="postgresql://u@127.0.0.1:1/db",
        NEON_MCP_STATE_URL="postgresql://someone:hunter2-password@127.0.0.1:1/state",
        NEON_MCP_HTTP_TOKEN=TOKEN,
    )
    done = subprocess.run(
        [EXE, "serve", "--transport", "http", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "neon-mcp: the state database did not answer, so opening the state store did not happen" in done.stderr
    assert "hunter2-password" not in done.stderr


# --- migrations ------------------------------------------------------------------------------------------------------


@pytest.fixture
def neon_env(neon_api: API, neon_test_project: NeonTestProject, state_url: str) -> Callable[[Path], dict[str, str]]:
    def make(home: Path) -> dict[str, str]:
        return _env(
            home,
            NEON_API_HOST=neon_api.host,
            NEON_API_KEY=neon_api.key,
            NEON_PROJECT_ID=neon_test_project.id,
            NEON_MCP_STATE_URL=state_url,
            NEON_MCP_HTTP_TOKEN=TOKEN,
        )

    return make


async def test_a_plan_made_on_one_replica_is_applied_on_another_once_even_after_a_kill(
    tmp_path: Path, project: NeonTestProject, state_url: str, neon_env: Callable[[Path], dict[str, str]]
) -> None:
    branch = project.create_branch("st-replicas")
    uri = project.uri_of(branch["id"])
    migration = {"action": "plan", "branch": "st-replicas", "sql": "ALTER TABLE auslex.users ADD COLUMN email text;"}
    with replicas(tmp_path, 3, neon_env) as servers, RoundRobin([s.base for s in servers]) as balancer:
        async with client_of(balancer) as client:
            planned = _data(await client.call_tool("migrate", migration))
            (planner,) = balancer.calls("migrate")
            servers[planner].process.kill()  # between plan and apply: the plan is in the state database
            servers[planner].process.wait(timeout=30)

            async def apply(into: list[Any]) -> None:
                arguments = {"action": "apply", "migration_id": planned["migration_id"]}
                into.append(await client.call_tool("migrate", arguments))

            outcomes: list[Any] = []
            async with anyio.create_task_group() as tasks:  # two applies at once, on the two replicas left
                tasks.start_soon(apply, outcomes)
                tasks.start_soon(apply, outcomes)
            late = await client.call_tool("migrate", {"action": "apply", "migration_id": planned["migration_id"]})
        appliers = balancer.calls("migrate")[1:3]
    assert planner not in appliers and set(appliers) == {0, 1, 2} - {planner}, balancer.served
    applied = [_data(o) for o in outcomes if not o.is_error]
    refused = [text_of(o) for o in outcomes if o.is_error] + [text_of(late)]
    assert len(applied) == 1 and applied[0]["applied"]["applied"] is True, refused
    assert late.is_error and all(("already applied" in r or "being applied" in r) for r in refused), refused
    rows = await sql(uri, "SELECT version, migration_id FROM neon_mcp.schema_migrations")
    assert [r["migration_id"] for r in rows] == [planned["migration_id"]]
    columns = await sql(uri, "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")
    assert "email" in {c["column_name"] for c in columns}
    (state,) = await sql(state_url, "SELECT state, created_by, finished_by FROM neon_mcp_state.migration_plans")
    assert state["state"] == "applied" and state["created_by"] != state["finished_by"]
    assert str(servers[planner].process.pid) in state["created_by"]
