"""Local Neon through the Neon client over real HTTP, as a user meets it, each figure beside a baseline in the same run.

- branch create until connectable, for parents of ~10 MB, ~100 MB and ~1 GB (target: < 2 s at 100 MB), against a
  plain ``cp -a`` of the parent's data directory (what copying the bytes alone costs);
- restore to a point in time (a branch's own past, after its table was dropped), against branch create at 100 MB;
- endpoint start from suspended until connectable (target: < 1 s), against a bare PostgreSQL cluster started until
  connectable (``pg_ctl start`` of the same binaries);
- from suspended to the first query answered through the front door (connecting wakes the compute, as on Neon),
  against the same bare start;
- the front door's cost per query round trip (TLS, routing, relay; target: < 0.1 ms median), against a direct
  connection to the same server, interleaved in one loop;
- memory of an idle endpoint (PSS of its PostgreSQL processes);
- ``compare_schemas`` (the MCP tool, in process) of two branches of a database of 500 tables, against the two
  ``pg_dump --schema-only`` runs it stands on.

Run: ``.venv/bin/python bench/local_neon.py`` (starts its own local Neon in a temporary data directory).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
from _common import Stats, bench_cluster, create_tables, log, mb, ms, of_target, ratio, section
from _local_neon import with_local_neon
from mcp import Client

from server.local_neon.clusters import find_pg_bindir
from server.mcp.assembly import build_server
from server.neon.client import CreatedBranch, NeonClient
from server.settings import Settings

SIZES = [int(size) for size in os.environ.get("BENCH_BRANCH_MB", "10,100,1000").split(",")]
SCHEMA_TABLES = 500
ROLE, DATABASE = "neondb_owner", "neondb"


def postgres_pss_kb(data_directory: Path) -> int:
    """Total proportional set size, in kB, of the PostgreSQL processes serving ``data_directory`` (their working
    directory: the postmaster enters its data directory, its children inherit it)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                continue
            if Path(os.readlink(f"/proc/{pid}/cwd")) != data_directory:
                continue
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


async def server_port(uri: str) -> int:
    """The port of the server a connection through ``uri`` reaches (behind the front door)."""
    conn = await asyncpg.connect(uri)
    try:
        return int(await conn.fetchval("SELECT inet_server_port()"))
    finally:
        await conn.close()


def data_directory(root: Path, port: int) -> Path | None:
    """The data directory under ``root`` of the running server on ``port`` (by the port in postmaster.pid)."""
    for pid_file in root.rglob("postmaster.pid"):
        lines = pid_file.read_text().splitlines()
        if len(lines) > 3 and lines[3].strip() == str(port):
            return pid_file.parent
    return None


def copy_seconds(source: Path) -> float:
    """Seconds ``cp -a`` takes to copy ``source`` (a data directory) to a scratch place, removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="neon-mcp-bench-copy-"))
    try:
        started = time.perf_counter()
        subprocess.run(["cp", "-a", str(source), str(scratch / "copy")], check=True)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


async def connectable(client: NeonClient, project: str, branch: str) -> str:
    """The branch's direct URI, once a connection through it answers."""
    uri = (await client.connection_uri(project, branch, DATABASE, ROLE, pooled=False)).get_secret_value()
    conn = await asyncpg.connect(uri)
    await conn.fetchval("SELECT 1")
    await conn.close()
    return uri


async def fill(uri: str, megabytes: int) -> int:
    """Make the database at ``uri`` about ``megabytes`` large (one table, ``filler``); its size in MB."""
    conn = await asyncpg.connect(uri)
    try:
        await conn.execute("DROP TABLE IF EXISTS filler")
        await conn.execute(
            "CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 8) AS payload "
            f"FROM generate_series(1, {max(0, megabytes - 8) * 3430}) g"  # ~8 MB of catalogs; ~3,430 rows a MB
        )
        return int(await conn.fetchval("SELECT pg_database_size(current_database()) / 1048576"))
    finally:
        await conn.close()


async def create_branch(client: NeonClient, project: str, name: str, parent: str) -> tuple[CreatedBranch, float]:
    """A new branch with a compute, and the seconds until it was connectable."""
    started = time.perf_counter()
    created = await client.create_branch(project, name=name, parent_id=parent, with_compute=True)
    await client.wait_for_operations(project, created.operations, poll_interval=0.02)
    await connectable(client, project, created.branch.id)
    return created, time.perf_counter() - started


async def restore_to_past(client: NeonClient, project: str, branch: str) -> float:
    """Drop ``filler`` on ``branch``, restore the branch to just before, check it is back: seconds to connectable."""
    uri = await connectable(client, project, branch)
    await asyncio.sleep(1.0)
    moment = datetime.now(UTC)
    await asyncio.sleep(1.0)
    conn = await asyncpg.connect(uri)
    await conn.execute("DROP TABLE filler")
    await conn.close()
    started = time.perf_counter()
    _, operations = await client.restore_branch(
        project, branch, source_branch_id=branch, source_timestamp=moment, preserve_under_name="before-restore"
    )
    await client.wait_for_operations(project, operations, poll_interval=0.02)
    uri = await connectable(client, project, branch)
    elapsed = time.perf_counter() - started
    conn = await asyncpg.connect(uri)
    try:
        assert await conn.fetchval("SELECT count(*) > 0 FROM filler"), "the restore did not bring the table back"
    finally:
        await conn.close()
    return elapsed


async def endpoint_starts(client: NeonClient, project: str, created: CreatedBranch, runs: int) -> list[float]:
    endpoint = created.endpoints[0].id
    starts = []
    for _ in range(runs):
        _, operations = await client.suspend_endpoint(project, endpoint)
        await client.wait_for_operations(project, operations, poll_interval=0.02)
        started = time.perf_counter()
        _, operations = await client.start_endpoint(project, endpoint)
        await client.wait_for_operations(project, operations, poll_interval=0.02)
        await connectable(client, project, created.branch.id)
        starts.append(time.perf_counter() - started)
    return starts


async def wakes_on_connect(client: NeonClient, project: str, created: CreatedBranch, runs: int) -> list[float]:
    """Suspend the endpoint, then time a connection through the front door until its first query answers."""
    endpoint = created.endpoints[0].id
    uri = await connectable(client, project, created.branch.id)
    wakes = []
    for _ in range(runs):
        _, operations = await client.suspend_endpoint(project, endpoint)
        await client.wait_for_operations(project, operations, poll_interval=0.02)
        started = time.perf_counter()
        conn = await asyncpg.connect(uri)
        await conn.fetchval("SELECT 1")
        wakes.append(time.perf_counter() - started)
        await conn.close()
    return wakes


async def round_trips(uri: str, rounds: int) -> tuple[Stats, Stats]:
    """``SELECT 1`` round trips through the front door and directly to the same server, interleaved."""
    port = await server_port(uri)
    parts = urlsplit(uri)
    direct_uri = f"postgresql://{parts.username}:{parts.password}@127.0.0.1:{port}{parts.path}"
    door = await asyncpg.connect(uri)
    direct = await asyncpg.connect(direct_uri, ssl=False)
    through, straight = [], []
    try:
        for _ in range(rounds):
            for conn, times in ((door, through), (direct, straight)):
                started = time.perf_counter()
                await conn.fetchval("SELECT 1")
                times.append(time.perf_counter() - started)
    finally:
        await door.close()
        await direct.close()
    return Stats.of(through), Stats.of(straight)


async def bare_starts(runs: int) -> list[float]:
    """A bare PostgreSQL cluster (the same binaries, default settings) stopped, then started until connectable."""
    with bench_cluster(prefix="neon-mcp-bench-start-", settings={}) as cluster:
        starts = []
        for _ in range(runs):
            await asyncio.to_thread(cluster.stop)
            started = time.perf_counter()
            await asyncio.to_thread(cluster.start)
            conn = await asyncpg.connect(cluster.dsn())
            await conn.fetchval("SELECT 1")
            await conn.close()
            starts.append(time.perf_counter() - started)
        return starts


async def compare_schemas(host: str, key: str, home: Path, project: str, base: CreatedBranch) -> dict[str, object]:
    """500 tables on ``base``, a child branch with ten of them altered: compare_schemas against two pg_dumps."""
    client_uri = ""
    async with NeonClient(key, base_url=host) as client:
        client_uri = await connectable(client, project, base.branch.id)
        conn = await asyncpg.connect(client_uri)
        try:
            await create_tables(conn, "app", SCHEMA_TABLES)
        finally:
            await conn.close()
        child, _ = await create_branch(client, project, "compare", base.branch.id)
        child_uri = await connectable(client, project, child.branch.id)
        conn = await asyncpg.connect(child_uri)
        try:
            await conn.execute(
                " ".join(f"ALTER TABLE app.table_{i:04d} ADD COLUMN note text;" for i in range(0, 500, 50))
            )
        finally:
            await conn.close()

    pg_dump = find_pg_bindir() / "pg_dump"

    def dumps() -> float:
        started = time.perf_counter()
        for uri in (client_uri, child_uri):
            subprocess.run([str(pg_dump), "--schema-only", "--dbname", uri], capture_output=True, check=True)
        return time.perf_counter() - started

    settings = Settings(neon_api_key=key, neon_api_host=host, neon_project_id=project, home=home, log_level="WARNING")
    ours, raw = [], []
    async with Client(build_server(settings)) as mcp:
        result = await mcp.call_tool("compare_schemas", {"branch": "compare"})
        assert not result.is_error, result.content
        for _ in range(5):
            started = time.perf_counter()
            result = await mcp.call_tool("compare_schemas", {"branch": "compare"})
            ours.append(time.perf_counter() - started)
            raw.append(await asyncio.to_thread(dumps))
    content = result.structured_content or {}
    return {
        "ours": Stats.of(ours),
        "raw": Stats.of(raw),
        "added": content.get("added"),
        "removed": content.get("removed"),
    }


async def branch_creates(
    client: NeonClient, project: str, parent: str, parent_uri: str, root: Path, megabytes: int
) -> tuple[list[object], CreatedBranch, float]:
    """Fill the parent to ``megabytes``, then branch it (3 times up to 100 MB, keeping the first branch), each beside
    a plain copy of the same data directory: the table row, the branch, and the median seconds."""
    runs = 3 if megabytes <= 100 else 1
    log(f"branch of a {megabytes} MB parent, {runs} × …")
    size = await fill(parent_uri, megabytes)
    source = data_directory(root, await server_port(parent_uri))
    times, copies = [], []
    kept: CreatedBranch | None = None
    for run in range(runs):
        os.sync()  # the fill's (or the last copy's) writeback must not land inside the next figure
        created, seconds = await create_branch(client, project, f"b{megabytes}-{run}", parent)
        times.append(seconds)
        if source is not None:
            os.sync()
            copies.append(copy_seconds(source))
        if kept is None:
            kept = created
        else:
            await client.wait_for_operations(
                project, await client.delete_branch(project, created.branch.id), poll_interval=0.02
            )
    assert kept is not None
    median = Stats.of(times).median
    copy = Stats.of(copies).median if copies else None
    row: list[object] = [
        f"branch create until connectable, {size} MB parent" + (f" (median of {runs})" if runs > 1 else ""),
        ms(median, 0),
        f"`cp -a` of the parent's data directory {ms(copy, 0)}" if copy else "—",
        ratio(median, copy) if copy else "—",
        of_target(median, 2.0) if megabytes == 100 else "—",
    ]
    return row, kept, median


async def run(host: str, key: str, home: Path) -> None:
    root = home.parent
    creating: list[list[object]] = []  # branch create, by parent size
    rows: list[list[object]] = []  # the rest
    async with NeonClient(key, base_url=host) as client:
        body = await client.post("/projects", json={"project": {"name": "bench"}})
        project = body["project"]["id"]
        await client.wait_for_operations(project, body["operations"], poll_interval=0.02)
        parent = body["branch"]["id"]
        parent_uri = body["connection_uris"][0]["connection_uri"]

        branches: dict[int, CreatedBranch] = {}
        creates: dict[int, float] = {}
        # Up to 100 MB first; the large parents last, so their gigabytes of writeback do not land in other figures.
        for megabytes in sorted(size for size in SIZES if size <= 100):
            row, branches[megabytes], creates[megabytes] = await branch_creates(
                client, project, parent, parent_uri, root, megabytes
            )
            creating.append(row)
        middle = branches[100] if 100 in branches else branches[min(branches)]

        log("restore to a point in time…")
        os.sync()
        restore = await restore_to_past(client, project, middle.branch.id)
        rows.append(
            [
                "restore a ~100 MB branch to a point in time (its own past, a table dropped since)",
                ms(restore, 0),
                f"branch create at the same size {ms(creates[100], 0)}" if 100 in creates else "—",
                ratio(restore, creates[100]) if 100 in creates else "—",
                "—",
            ]
        )

        log("endpoint starts…")
        starts = Stats.of(await endpoint_starts(client, project, middle, 5))
        bare = Stats.of(await bare_starts(5))
        rows.append(
            [
                "endpoint start from suspended until connectable (median of 5)",
                ms(starts.median, 0),
                f"bare `pg_ctl start` until connectable {ms(bare.median, 0)}",
                ratio(starts.median, bare.median),
                of_target(starts.median, 1.0),
            ]
        )

        log("waking on connect…")
        wakes = Stats.of(await wakes_on_connect(client, project, middle, 5))
        rows.append(
            [
                "from suspended to the first query answered through the front door (median of 5)",
                ms(wakes.median, 0),
                f"bare `pg_ctl start` until connectable {ms(bare.median, 0)}",
                ratio(wakes.median, bare.median),
                of_target(wakes.median, 1.0),
            ]
        )

        log("front door round trips…")
        through, straight = await round_trips(await connectable(client, project, middle.branch.id), 5000)
        overhead = through.median - straight.median
        rows.append(
            [
                "`SELECT 1` round trip through the front door (TLS, asyncpg; median of 5,000, interleaved)",
                ms(through.median, 3),
                f"direct to the same server {ms(straight.median, 3)}; the door adds {ms(overhead, 3)}",
                ratio(through.median, straight.median),
                of_target(overhead, 0.0001),
            ]
        )

        log("memory of idle endpoints…")
        small = branches[min(branches)]
        idle = []
        for index in range(3):
            created, _ = await create_branch(client, project, f"idle{index}", small.branch.id)
            idle.append(await connectable(client, project, created.branch.id))
        await asyncio.sleep(2)
        directories = [data_directory(root, await server_port(uri)) for uri in idle]
        pss = [postgres_pss_kb(directory) for directory in directories if directory is not None]
        rows.append(
            [
                f"memory per idle endpoint (PSS of its PostgreSQL processes, mean of {len(pss)})",
                mb(sum(pss) / len(pss)) if pss else "not found",
                "—",
                "—",
                "—",
            ]
        )

    log(f"compare_schemas on {SCHEMA_TABLES} tables…")
    compared = await compare_schemas(host, key, home, project, small)
    ours, raw = compared["ours"], compared["raw"]
    assert isinstance(ours, Stats) and isinstance(raw, Stats)
    rows.append(
        [
            f"`compare_schemas`, {SCHEMA_TABLES} tables, 10 altered (+{compared['added']} −{compared['removed']} "
            "lines), median of 5",
            ms(ours.median, 0),
            f"two `pg_dump --schema-only` {ms(raw.median, 0)}",
            ratio(ours.median, raw.median),
            "—",
        ]
    )

    async with NeonClient(key, base_url=host) as client:
        for megabytes in sorted(size for size in SIZES if size > 100):
            row, _, _ = await branch_creates(client, project, parent, parent_uri, root, megabytes)
            creating.append(row)

    section(
        "Local Neon",
        "Through the Neon client over real HTTP (local Neon on loopback), each branch with a read-write compute, "
        "timed until a connection answers. Parents are filled with one table of md5 text; dirty pages are synced to "
        "disk before each timed copy, and the largest parent is measured last so that its writeback lands in no other "
        "figure.",
        ["figure", "value", "baseline in the same run", "ratio", "target"],
        creating + rows,
    )


def main() -> None:
    with_local_neon(run, prefix="neon-mcp-bench-local-")


if __name__ == "__main__":
    main()
