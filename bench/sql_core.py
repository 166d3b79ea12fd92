"""Benchmarks of the SQL core (issue 2's targets), each against a baseline measured in the same run.

- warm ``run_sql('select 1')`` over stdio, against raw asyncpg (the limit) and a no-op tool on the same server
  (the MCP SDK's own floor); our own work per call = run_sql median − noop median (target < 0.5 ms);
- ``describe_schema`` overview on 2,000 tables (target < 300 ms and < 100 KB of text);
- ``SELECT *`` on 1,000,000 rows: time to the capped answer (target < 100 ms) and the server's peak memory;
- cold start: process start to the ``initialize`` answer, against a bare MCPServer (target ≤ 1.2×).

Run: ``.venv/bin/python bench/sql_core.py`` (it starts and removes its own PostgreSQL cluster).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.clusters import Cluster  # noqa: E402

CALLS = int(os.environ.get("BENCH_CALLS", "1000"))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def prepare_data(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS payload, now() AS at, g % 100 AS bucket "
            "FROM generate_series(1, 1000000) g"
        )
        await conn.execute("CREATE SCHEMA many")
        for start in range(0, 2000, 200):
            await conn.execute(
                " ".join(
                    f"CREATE TABLE many.table_{i:04d} (id bigint PRIMARY KEY, name text, created timestamptz, "
                    f"amount numeric); COMMENT ON TABLE many.table_{i:04d} IS 'table number {i}';"
                    for i in range(start, start + 200)
                )
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def raw_asyncpg(url: str) -> list[float]:
    conn = await asyncpg.connect(url)
    try:
        for _ in range(200):
            await conn.fetchval("select 1")
        samples = []
        for _ in range(CALLS):
            started = time.perf_counter()
            await conn.fetchval("select 1")
            samples.append(time.perf_counter() - started)
        return samples
    finally:
        await conn.close()


async def timed(client: Client, name: str, args: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await client.call_tool(name, args)
    elapsed = time.perf_counter() - started
    if result.is_error:
        raise RuntimeError(f"{name} failed: {result.content}")
    return elapsed, result


async def over_stdio(url: str, home: Path) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": url, "NEON_MCP_HOME": str(home), "NEON_MCP_LOG_LEVEL": "WARNING"}
    params = StdioServerParameters(command=sys.executable, args=[str(ROOT / "bench" / "bench_server.py")], env=env)
    figures: dict[str, Any] = {}
    async with Client(params) as client:
        for _ in range(200):
            await client.call_tool("run_sql", {"sql": "select 1"})
            await client.call_tool("noop", {})
        run_sql, noop = [], []
        for _ in range(CALLS):  # interleaved, so machine noise hits both alike
            run_sql.append((await timed(client, "run_sql", {"sql": "select 1"}))[0])
            noop.append((await timed(client, "noop", {}))[0])
        figures["run_sql"], figures["noop"] = run_sql, noop
        for name, args in (("noop", {}), ("run_sql", {"sql": "select 1"})):  # server CPU per call, in blocks
            before_cpu = (await client.call_tool("memory", {})).structured_content["cpu"]
            for _ in range(CALLS):
                await client.call_tool(name, args)
            after_cpu = (await client.call_tool("memory", {})).structured_content["cpu"]
            figures[f"cpu_{name}"] = (after_cpu - before_cpu) / CALLS

        overview = []
        for _ in range(20):
            elapsed, result = await timed(client, "describe_schema", {})
            overview.append(elapsed)
        figures["overview"] = overview
        figures["overview_text_bytes"] = len(result.content[0].text.encode())
        figures["overview_relations"] = len(result.structured_content["overview"]["relations"])

        before = (await client.call_tool("memory", {})).structured_content
        big = []
        for _ in range(10):
            elapsed, result = await timed(client, "run_sql", {"sql": "SELECT * FROM big"})
            big.append(elapsed)
        after = (await client.call_tool("memory", {})).structured_content
        figures["big"] = big
        figures["big_rows"] = result.structured_content["row_count"]
        figures["big_truncated"] = result.structured_content["truncated"]
        figures["memory_before"], figures["memory_after"] = before, after
    return figures


def cold_start(command: list[str], env: dict[str, str], runs: int = 20) -> list[float]:
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "0"},
        },
    }
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(request) + "\n").encode())
        proc.stdin.flush()
        line = proc.stdout.readline()
        samples.append(time.perf_counter() - started)
        assert b'"result"' in line, line
        proc.stdin.close()
        proc.wait(timeout=30)
    return samples


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="neon-mcp-bench-"))
    if os.geteuid() == 0:
        base.chmod(0o711)
    cluster = Cluster(base / "pg")
    try:
        cluster.init(settings={"fsync": "off", "synchronous_commit": "off", "shared_buffers": "256MB"})
        cluster.start()
        url = cluster.dsn()
        print("preparing data (1,000,000 rows, 2,000 tables)…", file=sys.stderr)
        asyncio.run(prepare_data(url))

        raw = asyncio.run(raw_asyncpg(url))
        stdio = asyncio.run(over_stdio(url, base / "home"))

        env = {**os.environ, "DATABASE_URL": url, "NEON_MCP_HOME": str(base / "home")}
        exe = str(Path(sys.executable).parent / "neon-mcp")
        bare = cold_start([sys.executable, str(ROOT / "bench" / "bare_server.py")], env)
        ours = cold_start([exe, "serve"], env)
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)

    raw_med, raw_p99 = summary(raw)
    run_med, run_p99 = summary(stdio["run_sql"])
    noop_med, noop_p99 = summary(stdio["noop"])
    over_med, over_p99 = summary(stdio["overview"])
    big_med, big_p99 = summary(stdio["big"])
    bare_med, _ = summary(bare)
    ours_med, _ = summary(ours)
    own = run_med - noop_med
    before, after = stdio["memory_before"], stdio["memory_after"]
    print(f"machine: {os.cpu_count()} cores; calls per figure: {CALLS}")
    print("| figure | median | p99 | baseline (same run) | ratio |")
    print("|---|---|---|---|---|")
    print(f"| raw asyncpg `select 1` (the limit) | {ms(raw_med)} | {ms(raw_p99)} | — | 1.00 |")
    print(
        f"| no-op tool over stdio (SDK floor) | {ms(noop_med)} | {ms(noop_p99)} | raw asyncpg | "
        f"{noop_med / raw_med:.1f}× |"
    )
    print(
        f"| `run_sql('select 1')` over stdio | {ms(run_med)} | {ms(run_p99)} | no-op tool | {run_med / noop_med:.2f}× |"
    )
    print(
        f"| our own work per run_sql (run_sql − noop) | {ms(own)} | — | target 0.5 ms | {own / 0.0005:.2f} of target |"
    )
    cpu_own = stdio["cpu_run_sql"] - stdio["cpu_noop"]
    print(
        f"| server CPU per call: run_sql / noop | {ms(stdio['cpu_run_sql'])} / {ms(stdio['cpu_noop'])} | — | noop | "
        f"our CPU {ms(cpu_own)} |"
    )
    print(
        f"| describe_schema overview, {stdio['overview_relations']} tables | {ms(over_med)} | {ms(over_p99)} | "
        f"target 300 ms | {over_med / 0.3:.2f} of target |"
    )
    print(
        f"| overview text | {stdio['overview_text_bytes'] / 1000:.1f} kB | — | target 100 kB | "
        f"{stdio['overview_text_bytes'] / 100_000:.2f} of target |"
    )
    print(
        f"| `SELECT *` on 1,000,000 rows → {stdio['big_rows']} rows, truncated={stdio['big_truncated']} | "
        f"{ms(big_med)} | {ms(big_p99)} | target 100 ms | {big_med / 0.1:.2f} of target |"
    )
    print(
        f"| server memory (VmRSS) before / after 10 × `SELECT *` | {before['VmRSS'] / 1024:.1f} MB / "
        f"{after['VmRSS'] / 1024:.1f} MB | peak {after['VmHWM'] / 1024:.1f} MB | before | "
        f"{after['VmRSS'] / before['VmRSS']:.2f}× |"
    )
    print(
        f"| cold start to `initialize` answered: neon-mcp serve | {ms(ours_med)} | — | bare MCPServer "
        f"{ms(bare_med)} | {ours_med / bare_med:.2f}× |"
    )


if __name__ == "__main__":
    main()
