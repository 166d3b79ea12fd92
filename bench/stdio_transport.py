"""The stdio transport alone: a no-op tool on a bare ``MCPServer`` served through the SDK's ``stdio_server`` and
through neon-mcp's native pipes (on uvloop, and on asyncio's own loop), interleaved in one run.

Latency is end to end through the SDK's Python client; the server's CPU per call is measured in blocks of calls (the
process's CPU time before and after), which says more than wall time on a shared machine.

Run: ``.venv/bin/python bench/stdio_transport.py`` (no database needed).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from contextlib import AsyncExitStack

from _common import ROOT, Stats, log, ms, ratio, section
from mcp import Client, StdioServerParameters

CALLS = int(os.environ.get("BENCH_CALLS", "500"))
TRANSPORTS = {
    "sdk": "the SDK's `stdio_server` (a worker thread per read and write)",
    "native-asyncio": "native pipes, asyncio's event loop",
    "native": "native pipes, uvloop",
}


async def measure() -> tuple[dict[str, Stats], dict[str, float]]:
    async with AsyncExitStack() as stack:
        clients: dict[str, Client] = {}
        for name in TRANSPORTS:
            params = StdioServerParameters(
                command=sys.executable, args=[str(ROOT / "bench" / "noop_server.py"), name], env=dict(os.environ)
            )
            clients[name] = await stack.enter_async_context(Client(params))
        samples: dict[str, list[float]] = {name: [] for name in clients}
        log(f"stdio transports: {len(clients)} servers × {CALLS} no-op calls, interleaved…")
        for round_ in range(CALLS + 50):
            for name, client in clients.items():
                started = time.perf_counter()
                await client.call_tool("noop", {})
                if round_ >= 50:  # warm-up rounds are not counted
                    samples[name].append(time.perf_counter() - started)
        log("server CPU per call…")
        cpu: dict[str, float] = {}
        for _ in range(3):  # blocks alternate between servers; the least block of each counts (noise only adds)
            for name, client in clients.items():
                before = float((await client.call_tool("cpu", {})).structured_content["result"])  # type: ignore[index]
                for _ in range(CALLS):
                    await client.call_tool("noop", {})
                after = float((await client.call_tool("cpu", {})).structured_content["result"])  # type: ignore[index]
                per_call = (after - before) / (CALLS + 1)
                cpu[name] = min(cpu.get(name, per_call), per_call)
    return {name: Stats.of(values) for name, values in samples.items()}, cpu


def main() -> None:
    stats, cpu = asyncio.run(measure())
    sdk = stats["sdk"]
    section(
        "stdio transport",
        f"A no-op tool on a bare `MCPServer` (`bench/noop_server.py`), {CALLS} calls per server interleaved round "
        "robin through the SDK's Python client, then the server's CPU time per call in blocks of "
        f"{CALLS} calls (the least of 3 blocks each).",
        ["transport", "median", "p99", "ratio to the SDK's (median)", "server CPU per call", "ratio (CPU)"],
        [
            [
                label,
                ms(stats[name].median, 3),
                ms(stats[name].p99, 3),
                ratio(stats[name].median, sdk.median),
                ms(cpu[name], 3),
                ratio(cpu[name], cpu["sdk"]),
            ]
            for name, label in TRANSPORTS.items()
        ],
    )


if __name__ == "__main__":
    main()
