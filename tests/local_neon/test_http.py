"""Local Neon over real HTTP: started with ``neon-mcp local start``, driven with httpx2, answers checked against
Neon's OpenAPI spec (when ../shared is present) and against the clusters behind them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx2 as httpx
import pytest

from server.local_neon.pooler import find_pgbouncer
from tests.local_neon.helpers import API, EXE, env_for, fetch, start_local_neon, stop_local_neon

pytestmark = pytest.mark.anyio


def test_start_is_idempotent_and_status_reports(local_home: Path, neon_api: API) -> None:
    assert start_local_neon(local_home) == (neon_api.host, neon_api.key)
    status = subprocess.run(
        [EXE, "local", "status"], env=env_for(local_home), capture_output=True, text=True, check=False
    )
    assert status.returncode == 0 and neon_api.host in status.stdout
    assert "pooled connections: " + ("PgBouncer" if find_pgbouncer() else "no pgbouncer") in status.stdout
    assert f"MiB (data directory {local_home / 'local-neon'})" in status.stdout, status.stdout


def test_clusters_whose_data_directory_is_gone_are_swept(local_home: Path, neon_api: API) -> None:
    from server.local_neon.clusters import HOME_MARKER

    gone_home, kept_home = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    orphan, kept = (Path(tempfile.mkdtemp(prefix="neon-mcp-clusters-", dir="/var/tmp")) for _ in range(2))
    try:
        for root, home in ((orphan, gone_home), (kept, kept_home)):
            (root / HOME_MARKER).write_text(f"{home}\n")
            (root / "tl-0123" / "data").mkdir(parents=True)
        gone_home.rmdir()
        status = subprocess.run([EXE, "local", "status"], env=env_for(local_home), capture_output=True, check=False)
        assert status.returncode == 0
        assert not orphan.exists(), "the clusters of a data directory that is gone are removed"
        assert kept.exists(), "the clusters of a data directory that exists are kept"
    finally:
        for path in (orphan, kept, kept_home):
            shutil.rmtree(path, ignore_errors=True)


def test_a_data_directory_closed_by_its_own_mode_keeps_its_clusters_inside() -> None:
    from server.local_neon.daemon import default_clusters_root

    home = Path(tempfile.mkdtemp())  # 0700: closed to the servers' user only by its own mode
    try:
        assert default_clusters_root(home / "local-neon") is None
        if os.geteuid() == 0:
            assert home.stat().st_mode & 0o777 == 0o701, "opened for search, not for listing"
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_a_bearer_token_is_required(neon_api: API) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {neon_api.key}"}):
        response = httpx.get(neon_api.host + "/users/me", headers=headers)
        assert response.status_code == 401
        assert set(response.json()) == {"code", "message", "request_id"}


def test_users_me(neon_api: API) -> None:
    neon_api.call("GET", "/users/me", "/users/me")


def test_project_comes_with_production_neondb_and_its_owner(neon_api: API, neon_project: dict[str, Any]) -> None:
    assert neon_project["branch"]["name"] == "production" and neon_project["branch"]["default"] is True
    assert [d["name"] for d in neon_project["databases"]] == ["neondb"]
    assert [r["name"] for r in neon_project["roles"]] == ["neondb_owner"]
    assert neon_project["databases"][0]["owner_name"] == "neondb_owner"
    assert neon_project["connection_uris"]


async def test_connection_uri_reaches_the_branch_with_a_password(neon_api: API, neon_project: dict[str, Any]) -> None:
    pid = neon_project["project"]["id"]
    uri = neon_api.call(
        "GET",
        f"/projects/{pid}/connection_uri",
        "/projects/{project_id}/connection_uri",
        params={"database_name": "neondb", "role_name": "neondb_owner"},
    )["uri"]
    conn = await asyncpg.connect(uri)
    try:
        assert await conn.fetchval("SELECT current_user") == "neondb_owner"
    finally:
        await conn.close()
    wrong = uri.replace(uri.split(":")[2].split("@")[0], "not-the-password")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_branches_copy_the_parent_and_stay_apart(neon_api: API, neon_project: dict[str, Any]) -> None:
    pid = neon_project["project"]["id"]
    parent_uri = neon_project["connection_uris"][0]["connection_uri"]
    conn = await asyncpg.connect(parent_uri)
    try:
        await conn.execute("CREATE TABLE items (id int); INSERT INTO items VALUES (1), (2)")
    finally:
        await conn.close()
    created = neon_api.call(
        "POST",
        f"/projects/{pid}/branches",
        "/projects/{project_id}/branches",
        expect=201,
        json={"branch": {"name": "dev"}, "endpoints": [{"type": "read_write"}]},
    )
    neon_api.wait(pid, created["operations"])
    branch = neon_api.call(
        "GET",
        f"/projects/{pid}/branches/{created['branch']['id']}",
        "/projects/{project_id}/branches/{branch_id}",
    )["branch"]
    assert branch["id"].startswith("br-") and branch["parent_id"] == neon_project["branch"]["id"]
    assert branch["parent_lsn"], "the real LSN the branch was copied at"
    child_uri = neon_api.call(
        "GET",
        f"/projects/{pid}/connection_uri",
        "/projects/{project_id}/connection_uri",
        params={"database_name": "neondb", "role_name": "neondb_owner", "branch_id": branch["id"]},
    )["uri"]
    child = await asyncpg.connect(child_uri)
    try:
        assert await child.fetchval("SELECT count(*) FROM items") == 2
        await child.execute("INSERT INTO items VALUES (3)")
    finally:
        await child.close()
    parent = await asyncpg.connect(parent_uri)
    try:
        assert await parent.fetchval("SELECT count(*) FROM items") == 2, "a write on a child never shows on its parent"
    finally:
        await parent.close()

    listed = neon_api.call("GET", f"/projects/{pid}/branches", "/projects/{project_id}/branches")
    assert {b["name"] for b in listed["branches"]} >= {"production", "dev"}
    got = neon_api.call(
        "GET", f"/projects/{pid}/branches/{branch['id']}", "/projects/{project_id}/branches/{branch_id}"
    )
    assert got["branch"]["name"] == "dev"


def test_errors_have_neons_shape(neon_api: API, neon_project: dict[str, Any]) -> None:
    pid = neon_project["project"]["id"]
    neon_api.call("GET", "/projects/no-such-project", expect=404)
    neon_api.call("GET", f"/projects/{pid}/branches/br-none-such-00000000", expect=404)
    response = neon_api.http.post(
        f"/projects/{pid}/branches", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and "malformed JSON" in response.json()["message"]
    neon_api.call("DELETE", f"/projects/{pid}/branches/{neon_project['branch']['id']}", expect=422)
    neon_api.call("GET", "/no/such/path", expect=404)


def test_fault_injection_answers_429_with_retry_after(neon_api: API) -> None:
    response = neon_api.http.post(
        neon_api.host.replace("/api/v2", "") + "/admin/faults", json={"429": 1, "retry_after": 2}
    )
    assert response.status_code == 200, response.text
    try:
        injected = neon_api.http.get("/users/me")
        assert injected.status_code == 429 and injected.headers["Retry-After"] == "2"
    finally:
        neon_api.http.post(neon_api.host.replace("/api/v2", "") + "/admin/faults", json={"429": 0, "423": 0, "503": 0})
    assert neon_api.http.get("/users/me").status_code == 200


def test_a_restart_keeps_everything(local_home: Path, neon_api: API, neon_project: dict[str, Any]) -> None:
    pid = neon_project["project"]["id"]
    before = neon_api.call("GET", f"/projects/{pid}/branches")
    details = neon_project["connection_uris"][0]
    stop_local_neon(local_home)
    for address in {details["connection_parameters"]["host"], details["connection_parameters"]["pooler_host"]}:
        parts = urlsplit("postgresql://" + address)
        assert parts.hostname and parts.port
        with pytest.raises(ConnectionRefusedError):  # stopping stops the front door (and every server behind it)
            socket.create_connection((parse_qs(parts.query)["hostaddr"][0], parts.port), timeout=5).close()
    host, key = start_local_neon(local_home)
    assert key == neon_api.key, "the API key survives a restart"
    neon_api.http.base_url = httpx.URL(host + "/")
    neon_api.host = host
    after = neon_api.call("GET", f"/projects/{pid}/branches")
    assert {b["id"] for b in after["branches"]} == {b["id"] for b in before["branches"]}
    # The front door keeps its port, so a connection string handed out before the restart still works.
    rows = asyncio.run(fetch(details["connection_uri"], "SELECT current_user"))
    assert rows[0][0] == "neondb_owner"


def test_shared_projects_is_an_empty_list(neon_api: API) -> None:
    body = neon_api.call("GET", "/projects/shared", "/projects/shared")
    assert body["projects"] == []


def test_secrets_on_disk_are_readable_by_their_owner_only(local_home: Path, neon_api: API) -> None:
    data = local_home / "local-neon"
    secret_files = [data / "api-key", *data.glob("*.sqlite*"), *data.glob("*.db*")]
    assert len(secret_files) >= 2, secret_files
    for path in secret_files:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


def test_every_route_is_neons() -> None:
    from server.local_neon import LocalNeon
    from tests.local_neon.spec import SPEC_PATH

    if not SPEC_PATH.exists():
        pytest.skip(f"Neon's OpenAPI spec is not at {SPEC_PATH} (../shared is absent)")
    spec = json.loads(SPEC_PATH.read_text())
    for route in LocalNeon.routes():
        responses = spec["paths"][route.path][route.method.lower()]["responses"]
        assert str(route.status) in responses, route
