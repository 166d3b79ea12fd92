"""50 concurrent MCP clients over streamable HTTP against one neon-mcp server, each figure beside a baseline in the
same run.

Every client (the SDK's ``Client``, its own session) calls ``run_sql('select 1')`` in a loop for 30 s, all through
one server process. Figures: calls per second, median and p99 latency, errors (must be 0), the server's memory (RSS
and PSS, sampled twice a second) and its CPU time per call. Baselines: the same 50 clients calling the no-op tool
(the SDK's floor under the same load), and 50 asyncio tasks running ``select 1`` on raw asyncpg through a pool of the
server's size (the database's limit). The load generator runs on the same machine and takes its share of the cores.

With ``BENCH_BASELINE=/path/to/another/checkout`` (with its own ``.venv``), that checkout's server is measured too,
alternating with this one (two turns each, ``run_sql`` only), for a ratio against an earlier version in the same run.

Run: ``.venv/bin/python bench/concurrency.py`` (its own PostgreSQL cluster unless ``BENCH_DATABASE_URL`` is set).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from _common import (
    BENCH_SERVER,
    ROOT,
    Stats,
    bench_database,
    cpu_seconds,
    http_client,
    http_server,
    http_transport_missing,
    log,
    mb,
    ms,
    process_memory,
    ratio,
    section,
    server_env,
)

from server.settings import Settings

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
POOL_SIZE = Settings.model_fields["pool_size"].default
BASELINE = os.environ.get("BENCH_BASELINE")
"""Another checkout to compare with, alternating (its ``.venv/bin/python bench/bench_server.py``)."""


@dataclass
class Load:
    """What one load run measured."""

    stats: Stats
    calls: int
    errors: int
    elapsed: float
    server_cpu: float
    generator_cpu: float
    memory_before: dict[str, int]
    memory_max: dict[str, int]
    memory_after: dict[str, int]

    @property
    def throughput(self) -> float:
        return self.calls / self.elapsed


async def _watch_memory(pid: int, into: dict[str, int], stop: anyio.Event) -> None:
    while not stop.is_set():
        for key, value in process_memory(pid).items():
            into[key] = max(into.get(key, 0), value)
        with anyio.move_on_after(0.5):
            await stop.wait()


async def load(url: str, pid: int, tool: str, arguments: dict[str, Any], seconds: float) -> Load:
    """``CLIENTS`` clients calling ``tool`` for ``seconds``, all starting together once every one is connected."""
    samples: list[float] = []
    errors = 0
    go, stop, all_connected, all_finished = anyio.Event(), anyio.Event(), anyio.Event(), anyio.Event()
    connected = finished = 0
    deadline = 0.0

    async def client() -> None:
        nonlocal errors, connected, finished
        async with http_client(url) as mcp:
            await mcp.call_tool(tool, arguments)
            connected += 1
            if connected == CLIENTS:
                all_connected.set()
            await go.wait()
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    result = await mcp.call_tool(tool, arguments)
                    errors += bool(result.is_error)
                    if result.is_error and errors < 4:
                        log(f"error result: {result.content}")
                except Exception as exc:  # an error is a finding to count and show, not a crash
                    errors += 1
                    log(f"error: {exc!r}")
                samples.append(time.perf_counter() - started)
            finished += 1
            if finished == CLIENTS:
                all_finished.set()
            await stop.wait()  # sessions close after the measurement

    memory_max: dict[str, int] = {}
    async with anyio.create_task_group() as tasks:
        for _ in range(CLIENTS):
            tasks.start_soon(client)
        await all_connected.wait()
        memory_before = process_memory(pid)
        tasks.start_soon(_watch_memory, pid, memory_max, stop)
        server_before, generator_before = cpu_seconds(pid), time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        go.set()
        await all_finished.wait()
        elapsed = time.perf_counter() - started
        server_cpu, generator_cpu = cpu_seconds(pid) - server_before, time.process_time() - generator_before
        memory_after = process_memory(pid)
        stop.set()
    stats = Stats.of(samples)
    return Load(
        stats, len(samples), errors, elapsed, server_cpu, generator_cpu, memory_before, memory_max, memory_after
    )


async def raw_limit(url: str, seconds: float) -> tuple[Stats, float]:
    """``CLIENTS`` tasks running ``select 1`` through an asyncpg pool of ``POOL_SIZE``: latencies and calls/s."""
    samples: list[float] = []
    async with asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE) as pool:
        deadline = time.perf_counter() + seconds

        async def task() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await pool.fetchval("select 1")
                samples.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(task() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - started
    return Stats.of(samples), len(samples) / elapsed


def _row(label: str, run: Load, baseline: Load | None) -> list[object]:
    return [
        label,
        f"{run.throughput:.0f}",
        ms(run.stats.median, 1),
        ms(run.stats.p99, 1),
        str(run.errors),
        ms(run.server_cpu / run.calls, 2),
        f"{run.server_cpu / run.elapsed:.0%} / {run.generator_cpu / run.elapsed:.0%}",
        " → ".join(mb(memory["rss"]) for memory in (run.memory_before, run.memory_max, run.memory_after)),
        " → ".join(mb(memory["pss"]) for memory in (run.memory_before, run.memory_max, run.memory_after)),
        "—" if baseline is None else f"{ratio(run.throughput, baseline.throughput)} the throughput",
    ]


def _against_baseline(env: dict[str, str], baseline: Path) -> tuple[list[Load], list[Load]]:
    """``run_sql`` loads on this server and on ``baseline``'s, alternating, two turns each."""
    servers = {
        "this": BENCH_SERVER,
        "baseline": [str(baseline / ".venv/bin/python"), str(baseline / "bench/bench_server.py")],
    }
    loads: dict[str, list[Load]] = {"this": [], "baseline": []}
    for turn in range(4):
        name = ("this", "baseline", "baseline", "this")[turn]
        with http_server(servers[name], env) as served:
            log(f"{CLIENTS} clients on {name}'s server: run_sql('select 1') for {SECONDS / 2:.0f} s…")
            loads[name].append(asyncio.run(load(served.url, served.pid, "run_sql", {"sql": "select 1"}, SECONDS / 2)))
    return loads["this"], loads["baseline"]


def _commit(checkout: Path) -> str:
    import subprocess

    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or str(checkout)


def main() -> None:
    missing = http_transport_missing()
    header = ["load", "calls/s", "median", "p99", "errors", "server CPU per call", "CPU: server / load generator",
              "server RSS: before → most → after", "server PSS: before → most → after", "ratio"]  # fmt: skip
    about = (
        f"{CLIENTS} MCP clients (the SDK's `Client` over streamable HTTP, one session each) in one load-generator "
        f"process, all through one `neon-mcp serve --transport http`, calling in a loop for {SECONDS:.0f} s (the "
        f"no-op baseline for {SECONDS / 3:.0f} s). The server's pool holds {POOL_SIZE} connections "
        "(`NEON_MCP_POOL_SIZE`). CPU shares are of one core; the machine has "
        f"{os.cpu_count()}, shared by server, load generator and PostgreSQL."
    )
    if missing is not None:
        section("Concurrency over streamable HTTP", about, header, [["50 clients", missing, *[""] * 8]])
        return
    with bench_database() as url, tempfile.TemporaryDirectory(prefix="neon-mcp-bench-home-") as home:
        env = server_env(url, Path(home))
        with http_server(BENCH_SERVER, env) as served:
            log(f"{CLIENTS} clients: no-op for {SECONDS / 3:.0f} s…")
            noop = asyncio.run(load(served.url, served.pid, "noop", {}, SECONDS / 3))
            log(f"{CLIENTS} clients: run_sql('select 1') for {SECONDS:.0f} s…")
            run_sql = asyncio.run(load(served.url, served.pid, "run_sql", {"sql": "select 1"}, SECONDS))
        log(f"raw asyncpg, {CLIENTS} tasks, pool of {POOL_SIZE}…")
        raw, raw_throughput = asyncio.run(raw_limit(url, 5))
        compared = _against_baseline(env, Path(BASELINE)) if BASELINE else None

    rows = [
        _row(f"{CLIENTS} clients, `run_sql('select 1')`", run_sql, noop),
        _row(f"{CLIENTS} clients, no-op tool (the SDK's floor)", noop, None),
        [f"{CLIENTS} asyncio tasks, raw asyncpg `select 1`, pool of {POOL_SIZE} (the limit)", f"{raw_throughput:.0f}",
         ms(raw.median, 1), ms(raw.p99, 1), "0", "—", "—", "—", "—",
         f"run_sql has {ratio(run_sql.throughput, raw_throughput)} its throughput"],
    ]  # fmt: skip
    if compared is not None and BASELINE:
        ours, theirs = compared
        for label, runs in (
            (f"this server ({_commit(ROOT)})", ours),
            (f"baseline ({_commit(Path(BASELINE))})", theirs),
        ):
            for i, run in enumerate(runs):
                rows.append(_row(f"{CLIENTS} clients, `run_sql('select 1')`, {label}, turn {i + 1}", run, None))
        mine, before = (
            sum(r.calls for r in ours) / sum(r.elapsed for r in ours),
            sum(r.calls for r in theirs) / sum(r.elapsed for r in theirs),
        )
        cpu_mine = sum(r.server_cpu for r in ours) / sum(r.calls for r in ours)
        cpu_before = sum(r.server_cpu for r in theirs) / sum(r.calls for r in theirs)
        rows.append(
            ["… this server against the baseline, alternating", f"{ratio(mine, before)} the throughput", "—", "—",
             str(sum(r.errors for r in ours)), f"{ratio(cpu_mine, cpu_before)} the CPU per call", "—", "—", "—",
             f"target ≥ 1.5×: {'met' if mine >= 1.5 * before else 'NOT met'}"]
        )  # fmt: skip
    section("Concurrency over streamable HTTP", about, header, rows)
    if run_sql.errors or noop.errors:
        log(f"ERRORS under load: run_sql {run_sql.errors}, noop {noop.errors}")


if __name__ == "__main__":
    main()
