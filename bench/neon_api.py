"""Neon API economy and connection warm-up, measured on local Neon over real HTTP.

- API requests per tool call, cold (a fresh server's first call) and warm (the same call again), counted by local
  Neon itself (``/admin/requests``). Neon's own MCP server makes 2–4 API requests per SQL call (it looks up the
  connection string each time); our target for a warm ``run_sql`` is 0.
- ``run_sql`` latency with a cold connection (fresh server: resolve the target, fetch the URI, open the pool) against
  a warm one (median of 50), and the baseline of the same query through raw asyncpg on a held connection.
- ``run_sql`` on a suspended compute (woken through the API) against the warm figure.

Run: ``.venv/bin/python bench/neon_api.py`` (starts its own local Neon in a temporary data directory).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _local_neon import with_local_neon  # noqa: E402
from mcp import Client  # noqa: E402

from server.mcp.assembly import build_server  # noqa: E402
from server.neon.client import NeonClient  # noqa: E402
from server.settings import Settings  # noqa: E402

SEED = """
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id int PRIMARY KEY, total numeric);
INSERT INTO shop.orders SELECT g, g * 1.5 FROM generate_series(1, 100) g;
"""

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("run_sql", {"sql": "SELECT count(*) FROM shop.orders"}),
    ("run_sql", {"sql": "SELECT count(*) FROM shop.orders", "branch": "feature"}),
    ("run_sql_transaction", {"statements": ["SELECT 1", "SELECT 2"], "branch": "feature"}),
    ("describe_schema", {"table": "shop.orders"}),
    ("list_branches", {}),
    ("describe_branch", {"branch": "feature"}),
    ("get_connection_string", {"branch": "feature"}),
    ("compare_schemas", {"branch": "feature"}),
]


class Counter:
    def __init__(self, admin: str, key: str) -> None:
        self.http = httpx2.Client(headers={"Authorization": f"Bearer {key}"})
        self.admin = admin

    def total(self) -> int:
        return int(self.http.get(self.admin).json()["total"])


async def run(host: str, key: str, home: Path) -> None:
    counter = Counter(host.replace("/api/v2", "") + "/admin/requests", key)
    async with NeonClient(key, base_url=host) as neon:
        body = await neon.post("/projects", json={"project": {"name": "bench"}})
        project = body["project"]["id"]
        await neon.wait_for_operations(project, body["operations"], poll_interval=0.02)
        uri = body["connection_uris"][0]["connection_uri"]
        conn = await asyncpg.connect(uri)
        await conn.execute(SEED)
        await conn.close()
        feature = await neon.create_branch(project, name="feature", parent_id=body["branch"]["id"])
        await neon.wait_for_operations(project, feature.operations, poll_interval=0.02)
        settings = Settings(
            neon_api_key=key,
            neon_api_host=host,
            neon_project_id=project,
            home=home,
            access_mode="branches",
            log_level="WARNING",
        )

        print("## Neon API efficiency\n")
        print(
            "Neon API requests per tool call, counted by local Neon itself: cold (a fresh server's first call) and "
            "warm (the same call again). Neon's own MCP server makes 2–4 API requests per SQL call (it looks the "
            "connection string up each time); the target for a warm `run_sql` is 0.\n"
        )
        print("| tool call | API requests, cold | API requests, warm |")
        print("|---|---|---|")
        for name, arguments in CALLS:
            async with Client(build_server(settings)) as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
                if name not in tools:
                    print(f"| {name} | (not offered) | |")
                    continue
                before = counter.total()
                first = await client.call_tool(name, arguments)
                cold = counter.total() - before
                before = counter.total()
                await client.call_tool(name, arguments)
                warm = counter.total() - before
            shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items() if k != "sql" and k != "statements")
            status = " (error)" if first.is_error else ""
            print(f"| {name}({shown}){status} | {cold} | {warm} |")

        query = {"sql": "SELECT count(*) FROM shop.orders"}
        colds = []
        for _ in range(5):
            async with Client(build_server(settings)) as client:
                started = time.perf_counter()
                await client.call_tool("run_sql", query)
                colds.append(time.perf_counter() - started)
        async with Client(build_server(settings)) as client:
            await client.call_tool("run_sql", query)
            warms = []
            for _ in range(50):
                started = time.perf_counter()
                await client.call_tool("run_sql", query)
                warms.append(time.perf_counter() - started)
            warm = statistics.median(warms)

            endpoints = await neon.list_endpoints(project, body["branch"]["id"])
            woken = []
            for _ in range(3):
                suspended = await neon.request("POST", f"/projects/{project}/endpoints/{endpoints[0].id}/suspend")
                await neon.wait_for_operations(project, suspended["operations"], poll_interval=0.02)
                started = time.perf_counter()
                result = await client.call_tool("run_sql", query)
                assert not result.is_error, result
                woken.append(time.perf_counter() - started)

        raw = await asyncpg.connect(uri)
        raws = []
        for _ in range(200):
            started = time.perf_counter()
            await raw.fetchval("SELECT count(*) FROM shop.orders")
            raws.append(time.perf_counter() - started)
        await raw.close()
        baseline = statistics.median(raws)

    cold = statistics.median(colds)
    wake = statistics.median(woken)
    print()
    print("| run_sql latency | median | ratio to warm | ratio to raw asyncpg |")
    print("|---|---|---|---|")
    print(f"| raw asyncpg, held connection (baseline) | {baseline * 1000:.2f} ms | — | 1.0 |")
    print(f"| warm (URI cached, pool open) | {warm * 1000:.2f} ms | 1.0 | {warm / baseline:.1f} |")
    print(f"| cold (fresh server: resolve, URI, pool) | {cold * 1000:.1f} ms | {cold / warm:.1f} | — |")
    print(f"| compute suspended (woken through the API) | {wake * 1000:.0f} ms | {wake / warm:.0f} | — |")


def main() -> None:
    with_local_neon(run, prefix="neon-mcp-bench-api-")


if __name__ == "__main__":
    main()
