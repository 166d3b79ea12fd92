"""Benchmarks of local Neon (issue 3's targets), through the Neon client over real HTTP, as a user meets them.

- branch create until connectable, for a parent holding ~10 MB and ~100 MB (target: < 2 s at 100 MB);
- endpoint start from suspended until connectable (target: < 1 s);
- memory of an idle endpoint (PSS of its PostgreSQL processes), against the first endpoint as baseline.

Run: ``.venv/bin/python bench/local_neon.py`` (starts its own local Neon in a temporary data directory).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _local_neon import with_local_neon  # noqa: E402

from server.neon_client import NeonClient  # noqa: E402


def postgres_pss_kb() -> int:
    """Total proportional set size of every PostgreSQL server process on the machine, in kB."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                continue
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


async def connectable(client: NeonClient, project: str, branch: str) -> float:
    started = time.perf_counter()
    uri = await client.connection_uri(project, branch, "neondb", "neondb_owner", pooled=False)
    conn = await asyncpg.connect(uri.get_secret_value())
    await conn.fetchval("SELECT 1")
    await conn.close()
    return time.perf_counter() - started


async def fill(uri: str, megabytes: int) -> None:
    conn = await asyncpg.connect(uri)
    try:
        await conn.execute("DROP TABLE IF EXISTS filler")
        await conn.execute(
            "CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 8) AS payload "
            f"FROM generate_series(1, {megabytes * 3000}) g"
        )
        size = await conn.fetchval("SELECT pg_database_size(current_database()) / 1048576")
        print(f"parent database: {size} MB", file=sys.stderr)
    finally:
        await conn.close()


async def run(host: str, key: str) -> None:
    async with NeonClient(key, base_url=host) as client:
        body = await client.post("/projects", json={"project": {"name": "bench"}})
        project = body["project"]["id"]
        await client.wait_for_operations(project, body["operations"], poll_interval=0.02)
        parent = body["branch"]["id"]
        parent_uri = body["connection_uris"][0]["connection_uri"]

        rows = []
        for megabytes in (10, 100):
            await fill(parent_uri, megabytes)
            started = time.perf_counter()
            created = await client.create_branch(project, name=f"b{megabytes}", parent_id=parent, with_compute=True)
            await client.wait_for_operations(project, created.operations, poll_interval=0.02)
            await connectable(client, project, created.branch.id)
            rows.append((f"branch create until connectable, {megabytes} MB parent", time.perf_counter() - started, 2.0))

        endpoint = created.endpoints[0]
        starts = []
        for _ in range(5):
            suspended = await client.request("POST", f"/projects/{project}/endpoints/{endpoint.id}/suspend")
            await client.wait_for_operations(project, suspended["operations"], poll_interval=0.02)
            started = time.perf_counter()
            answer = await client.request("POST", f"/projects/{project}/endpoints/{endpoint.id}/start")
            await client.wait_for_operations(project, answer["operations"], poll_interval=0.02)
            await connectable(client, project, created.branch.id)
            starts.append(time.perf_counter() - started)
        starts.sort()
        rows.append(("endpoint start from suspended until connectable (median of 5)", starts[2], 1.0))

        before = postgres_pss_kb()
        extra = []
        for index in range(3):
            branch = await client.create_branch(project, name=f"idle{index}", parent_id=parent, with_compute=True)
            await client.wait_for_operations(project, branch.operations, poll_interval=0.02)
            extra.append(branch)
        await asyncio.sleep(2)
        per_endpoint = (postgres_pss_kb() - before) / len(extra) / 1024

    print("| figure | value | target | ratio |")
    print("|---|---|---|---|")
    for name, seconds, target in rows:
        print(f"| {name} | {seconds * 1000:.0f} ms | {target * 1000:.0f} ms | {seconds / target:.2f} of target |")
    print(f"| memory per idle endpoint (PSS of its PostgreSQL processes) | {per_endpoint:.1f} MB | — | — |")


def main() -> None:
    async def bench(host: str, key: str, home: Path) -> None:
        await run(host, key)

    with_local_neon(bench, prefix="neon-mcp-bench-local-")


if __name__ == "__main__":
    main()
