"""Benchmarks of the query performance tools on a database of 2,000 tables, each against a baseline in the same run.

- ``explain_query`` (plan only, and ANALYZE of a read) over stdio, against raw asyncpg running the same EXPLAIN on one
  open connection (the database's own cost) and a no-op tool on the same server (the MCP SDK's floor);
- ``health_check`` over stdio, against raw asyncpg running the same eleven catalog queries in one read-only
  transaction.

Each call is interleaved with its baselines, so that noise from other work on the machine hits them alike.

Run: ``.venv/bin/python bench/performance.py`` (it starts and removes its own PostgreSQL cluster).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.local_neon.clusters import Cluster  # noqa: E402
from server.performance import health  # noqa: E402
from server.performance.explain import EXPLAIN_OPTIONS  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "200"))
TABLES = 2_000
QUERY = (
    "SELECT o.id, o.total, t.name FROM shop.orders o JOIN many.table_0042 t ON t.id = o.customer_id "
    "WHERE o.status = 'open' ORDER BY o.created DESC LIMIT 20"
)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def prepare_data(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """
            CREATE SCHEMA shop;
            CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
                                      total numeric, created timestamptz NOT NULL);
            INSERT INTO shop.orders SELECT g, g % 2000, CASE WHEN g % 100 = 0 THEN 'open' ELSE 'done' END, g % 1000,
                                           now() - g * interval '1 minute' FROM generate_series(1, 200000) g;
            CREATE SCHEMA many;
            """
        )
        for start in range(0, TABLES, 200):
            await conn.execute(
                " ".join(
                    f"CREATE TABLE many.table_{i:04d} (id bigint PRIMARY KEY, name text, created timestamptz, "
                    f"amount numeric); INSERT INTO many.table_{i:04d} VALUES (1, 'one', now(), 1);"
                    for i in range(start, start + 200)
                )
            )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def timed(client: Client, name: str, args: dict[str, Any]) -> float:
    started = time.perf_counter()
    result = await client.call_tool(name, args)
    elapsed = time.perf_counter() - started
    if result.is_error:
        raise RuntimeError(f"{name} failed: {result.content}")
    return elapsed


async def raw_explain(conn: asyncpg.Connection, sql: str) -> float:
    started = time.perf_counter()
    await conn.fetchval(sql)
    return time.perf_counter() - started


async def raw_health(conn: asyncpg.Connection) -> float:
    """The same catalog queries in one read-only transaction, statements cached by asyncpg."""
    started = time.perf_counter()
    async with conn.transaction(readonly=True):
        for sql, args in health.queries():
            await conn.fetch(sql, *args)
    return time.perf_counter() - started


async def measure(url: str, home: Path) -> dict[str, Any]:
    """Each tool call interleaved with its baseline on one open asyncpg connection (the database's own cost) and a
    no-op tool call (the SDK's floor), so that machine noise hits all three alike."""
    env = {**os.environ, "DATABASE_URL": url, "NEON_MCP_HOME": str(home), "NEON_MCP_LOG_LEVEL": "WARNING"}
    params = StdioServerParameters(command=sys.executable, args=[str(ROOT / "bench" / "bench_server.py")], env=env)
    plain = f"EXPLAIN ({', '.join(EXPLAIN_OPTIONS)}) {QUERY}"
    analysed = f"EXPLAIN ({', '.join([*EXPLAIN_OPTIONS, 'ANALYZE'])}) {QUERY}"
    keys = ("noop", "explain", "raw_explain", "analyze", "raw_analyze", "health", "raw_health")
    out: dict[str, Any] = {key: [] for key in keys}
    conn = await asyncpg.connect(url)
    try:
        async with Client(params) as client:
            for _ in range(20):  # warm both sides
                await timed(client, "explain_query", {"sql": QUERY})
                await timed(client, "noop", {})
                await raw_explain(conn, plain)
            await timed(client, "health_check", {})
            await raw_health(conn)
            for _ in range(CALLS):
                out["noop"].append(await timed(client, "noop", {}))
                out["explain"].append(await timed(client, "explain_query", {"sql": QUERY}))
                out["raw_explain"].append(await raw_explain(conn, plain))
                out["analyze"].append(await timed(client, "explain_query", {"sql": QUERY, "analyze": True}))
                out["raw_analyze"].append(await raw_explain(conn, analysed))
            for _ in range(max(10, CALLS // 4)):
                out["health"].append(await timed(client, "health_check", {}))
                out["raw_health"].append(await raw_health(conn))
            result = await client.call_tool("health_check", {})
            out["health_text"] = len(result.content[0].text.encode())
            out["health_findings"] = len(result.structured_content["findings"])
    finally:
        await conn.close()
    return out


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="neon-mcp-bench-"))
    if os.geteuid() == 0:
        base.chmod(0o711)
    cluster = Cluster(base / "pg")
    try:
        cluster.init(settings={"fsync": "off", "synchronous_commit": "off", "shared_buffers": "256MB"})
        cluster.start()
        url = cluster.dsn()
        print(f"preparing data ({TABLES:,} tables, 200,000 orders)…", file=sys.stderr)
        asyncio.run(prepare_data(url))
        ours = asyncio.run(measure(url, base / "home"))
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)

    noop_med, noop_p99 = summary(ours["noop"])
    print(
        f"machine: {os.cpu_count()} cores; {TABLES:,} tables; calls per figure: {CALLS} (health: {len(ours['health'])})"
    )
    print("| figure | median | p99 | baseline in the same run | ratio |")
    print("|---|---|---|---|---|")
    print(f"| no-op tool over stdio (the SDK's floor) | {ms(noop_med)} | {ms(noop_p99)} | — | — |")
    rows = [
        ("`explain_query` (plan only)", "explain", "raw asyncpg EXPLAIN"),
        ("`explain_query` (ANALYZE of a read)", "analyze", "raw asyncpg EXPLAIN ANALYZE"),
        (f"`health_check`, {ours['health_findings']} findings", "health", "raw asyncpg, the same 11 catalog queries"),
    ]
    for label, key, against in rows:
        med, p99 = summary(ours[key])
        raw_med, _ = summary(ours[f"raw_{key}"])
        floor = noop_med + raw_med
        print(f"| {label} | {ms(med)} | {ms(p99)} | {against} {ms(raw_med)} | {med / raw_med:.2f}× |")
        print(
            f"| … against no-op + baseline (our own work: {ms(med - floor)}) | {ms(med)} | — | {ms(floor)} | "
            f"{med / floor:.2f}× |"
        )
    print(f"| `health_check` text | {ours['health_text'] / 1000:.1f} kB | — | — | — |")


if __name__ == "__main__":
    main()
