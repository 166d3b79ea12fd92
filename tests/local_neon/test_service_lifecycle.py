"""LocalNeon's life cycle: restarts keep everything, one process per data directory, failed copies leave nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from server.errors import ClusterError
from server.local_neon import LocalNeon, NeonAPIError
from server.local_neon.clusters import find_pg_bindir
from tests.local_neon.helpers import (
    ServiceAPI,
    connect,
    execute,
    fetch,
    fetch_pooled,
    new_branch,
    pooled_uri,
    running,
    scratch_dir,
    uri_of,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def closed_dir(tmp_path: Path) -> Path:
    """A directory the servers' user cannot traverse."""
    tmp_path.chmod(0o700)
    return tmp_path


@pytest.fixture
def base() -> Iterator[Path]:
    path = scratch_dir("neon-mcp-lifecycle-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_a_second_local_neon_on_the_same_home_is_refused(neon: LocalNeon, neon_home: Path) -> None:
    with pytest.raises(NeonAPIError) as info:
        await LocalNeon(neon_home).open()
    assert info.value.status == 409 and "in use by another local Neon" in info.value.message
    assert str(os.getpid()) in info.value.message


async def test_a_restart_brings_back_every_branch_endpoint_and_role(base: Path) -> None:
    home = base / "home"
    first = ServiceAPI(LocalNeon(home))
    await first.neon.open()
    try:
        created = await first("create_project", {"project": {"name": "durable", "branch": {"name": "main"}}})
        project_id = created["project"]["id"]
        assert created["branch"]["name"] == "main"
        await first.wait(project_id, created["operations"])
        root_uri = created["connection_uris"][0]["connection_uri"]
        pooled_root = await pooled_uri(first, project_id, created["branch"]["id"])
        await execute(root_uri, "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('before')")
        moment = datetime.now(UTC)
        await execute(root_uri, "UPDATE notes SET body = 'after'")
        dev = await new_branch(first, project_id, name="dev")
        dev_uri = dev["connection_uris"][0]["connection_uri"]
        await execute(dev_uri, "INSERT INTO notes VALUES ('dev')")
        idle = await new_branch(first, project_id, name="idle")
        idle_endpoint = idle["endpoints"][0]["id"]
        await first.wait(project_id, (await first("suspend_endpoint", project_id, idle_endpoint))["operations"])
        role = await first("create_role", project_id, dev["branch"]["id"], {"role": {"name": "app"}})
        await first.wait(project_id, role["operations"])
        operations = (await first("list_operations", project_id))["operations"]
    finally:
        await first.neon.close()
    with pytest.raises(OSError):
        await asyncpg.connect(root_uri)
    with pytest.raises(OSError):
        await connect(pooled_root)

    second = ServiceAPI(LocalNeon(home))
    await second.neon.open()
    try:
        assert (await second("list_operations", project_id))["operations"] == operations
        assert [b["name"] for b in (await second("list_branches", project_id, sort_by="created_at"))["branches"]] == [
            "idle",
            "dev",
            "main",
        ]
        assert [r["body"] for r in await fetch(root_uri, "SELECT body FROM notes")] == ["after"]
        assert [r["body"] for r in await fetch_pooled(pooled_root, "SELECT body FROM notes")] == ["after"]
        assert sorted(r["body"] for r in await fetch(dev_uri, "SELECT body FROM notes")) == ["after", "dev"]
        idle_state = (await second("get_endpoint", project_id, idle_endpoint))["endpoint"]["current_state"]
        assert idle_state == "idle", "a suspended endpoint stays suspended"
        app_uri = await uri_of(second, project_id, dev["branch"]["id"], role="app")
        assert [r["u"] for r in await fetch(app_uri, "SELECT current_user AS u")] == ["app"]
        pooled_app = await pooled_uri(second, project_id, dev["branch"]["id"], role="app")
        assert [r["u"] for r in await fetch_pooled(pooled_app, "SELECT current_user AS u")] == ["app"]

        past = await new_branch(second, project_id, name="past", parent_timestamp=moment.isoformat())
        past_uri = past["connection_uris"][0]["connection_uri"]
        assert [r["body"] for r in await fetch(past_uri, "SELECT body FROM notes")] == ["before"]
        root_port = (await fetch(root_uri, "SELECT inet_server_port()"))[0][0]
    finally:
        await second.neon.close(stop_endpoints=False)
    with pytest.raises(OSError):  # the front door closes with local Neon...
        await asyncpg.connect(root_uri)
    behind = urlsplit(root_uri)._replace(netloc=f"{urlsplit(root_uri).netloc.rsplit(':', 1)[0]}:{root_port}", query="")
    conn = await asyncpg.connect(behind.geturl(), ssl=False)  # ... and close(stop_endpoints=False) leaves the servers
    await conn.close()
    pooler_pids = sorted(p.read_text() for p in (home / "clusters").glob("pooler-*/pgbouncer.pid"))
    assert all(running(int(pid)) for pid in pooler_pids), "... and their poolers running"

    third = ServiceAPI(LocalNeon(home))
    await third.neon.open()  # adopts the running servers
    try:
        assert [r["body"] for r in await fetch(past_uri, "SELECT body FROM notes")] == ["before"]
        assert len(await fetch_pooled(pooled_root, "SELECT 1")) == 1
        assert sorted(p.read_text() for p in (home / "clusters").glob("pooler-*/pgbouncer.pid")) == pooler_pids
        deleted = await third("delete_project", project_id)
        assert deleted["project"]["id"] == project_id
        await third.refused(404, "get_project", project_id)
        assert [p.name for p in (home / "clusters").iterdir() if p.is_dir()] == []
        with pytest.raises(asyncpg.PostgresError, match="could not be found"):
            await asyncpg.connect(root_uri)
    finally:
        await third.neon.close()


async def test_a_failed_copy_leaves_no_branch_behind(base: Path) -> None:
    real = find_pg_bindir()
    fake = base / "bin"
    fake.mkdir(mode=0o755)
    for program in real.iterdir():
        (fake / program.name).symlink_to(program)
    (fake / "pg_basebackup").unlink()
    (fake / "pg_basebackup").write_text("#!/bin/sh\necho 'pg_basebackup: injected failure' >&2\nexit 1\n")
    (fake / "pg_basebackup").chmod(0o755)
    home = base / "home"
    service_api = ServiceAPI(LocalNeon(home, bindir=fake))
    await service_api.neon.open()
    try:
        created = await service_api("create_project", {"project": {}})
        project_id, root_id = created["project"]["id"], created["branch"]["id"]
        await service_api.wait(project_id, created["operations"])
        timelines = sorted(p.name for p in (home / "clusters").iterdir())

        body = {"branch": {"name": "doomed"}, "endpoints": [{"type": "read_write"}]}
        branch = await service_api("create_branch", project_id, body)
        assert await service_api.settle(project_id, branch["operations"]) == ["failed", "cancelled"]
        failed = (await service_api("get_operation", project_id, branch["operations"][0]["id"]))["operation"]
        assert "injected failure" in failed["error"] and failed["failures_count"] == 1
        await service_api.refused(404, "get_branch", project_id, branch["branch"]["id"])
        assert [b["id"] for b in (await service_api("list_branches", project_id))["branches"]] == [root_id]
        endpoints = (await service_api.list_endpoints(project_id))["endpoints"]
        assert [e["id"] for e in endpoints] == [created["endpoints"][0]["id"]]
        assert sorted(p.name for p in (home / "clusters").iterdir()) == timelines
        assert (await service_api("get_branch", project_id, root_id))["branch"]["current_state"] == "ready"

        restore = await service_api(
            "restore_branch",
            project_id,
            root_id,
            {
                "source_branch_id": root_id,
                "source_timestamp": datetime.now(UTC).isoformat(),
                "preserve_under_name": "old",
            },
        )
        assert (await service_api.settle(project_id, restore["operations"]))[0] == "failed"
        assert (await service_api("get_branch", project_id, root_id))["branch"]["current_state"] == "ready"
        assert sorted(p.name for p in (home / "clusters").iterdir()) == timelines
        uri = created["connection_uris"][0]["connection_uri"]
        assert len(await fetch(uri, "SELECT 1")) == 1
    finally:
        await service_api.neon.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the clusters to another user")
async def test_a_clusters_root_the_server_user_cannot_reach_is_refused(base: Path, closed_dir: Path) -> None:
    refused = LocalNeon(base / "home", clusters_root=closed_dir / "clusters")
    with pytest.raises(ClusterError, match="cannot traverse"):
        await refused.open()
    again = LocalNeon(base / "home", clusters_root=base / "clusters")
    await again.open()  # the failed open released its lock
    await again.close()
    other = LocalNeon(base / "other", clusters_root=base / "clusters")
    with pytest.raises(NeonAPIError, match="belongs to the local Neon data directory"):
        await other.open()  # its sweep of unused timelines would delete the first home's branches


async def test_history_older_than_the_window_is_pruned(base: Path) -> None:
    home = base / "home"
    service_api = ServiceAPI(LocalNeon(home, history_seconds=2))
    await service_api.neon.open()
    try:
        created = await service_api("create_project", {"project": {}})
        project_id, root_id = created["project"]["id"], created["branch"]["id"]
        assert created["project"]["history_retention_seconds"] == 2
        await service_api.wait(project_id, created["operations"])
        uri = created["connection_uris"][0]["connection_uri"]
        (timeline,) = (home / "clusters").glob("tl-*")
        (first_base,) = os.listdir(timeline / "bases")
        # more than a WAL segment of changes, so that segments are archived after the first base
        await execute(uri, "CREATE TABLE t AS SELECT g AS x, repeat('x', 200) AS pad FROM generate_series(1, 20000) g")
        archived = sorted(os.listdir(timeline / "wal"))
        assert archived

        deadline = time.monotonic() + 20
        while first_base in os.listdir(timeline / "bases"):
            assert time.monotonic() < deadline, "the first base was never pruned"
            await asyncio.sleep(0.2)
        assert len(os.listdir(timeline / "bases")) == 1
        while archived[0] in os.listdir(timeline / "wal"):  # the WAL goes right after the base (same round)
            assert time.monotonic() < deadline, "WAL older than the kept base is gone"
            await asyncio.sleep(0.2)

        old = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
        await service_api.refused(400, "create_branch", project_id, {"branch": {"parent_timestamp": old}})
        # With a 2-second window the housekeeping loop keeps taking fresh bases; on a loaded machine one can land
        # after a timestamp half a second old. A moment inside the window must work within a few tries.
        for attempt in range(5):
            recent = (datetime.now(UTC) - timedelta(seconds=0.3)).isoformat()
            try:
                branch = await new_branch(service_api, project_id, name=f"recent{attempt}", parent_timestamp=recent)
                break
            except NeonAPIError as exc:
                assert exc.status == 400 and attempt < 4, exc
                await asyncio.sleep(0.2)
        branch_uri = branch["connection_uris"][0]["connection_uri"]
        assert [r["n"] for r in await fetch(branch_uri, "SELECT count(*) AS n FROM t")] == [20000]
        assert (await service_api("get_branch", project_id, root_id))["branch"]["current_state"] == "ready"
    finally:
        await service_api.neon.close()
