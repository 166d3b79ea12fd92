"""50 concurrent MCP clients over streamable HTTP against neon-mcp, each figure beside a baseline in the same run.

One server: every client (the SDK's ``Client``, its own session) calls ``run_sql('select 1')`` in a loop for 30 s,
all through one server process. Figures: calls per second, median and p99 latency, errors (must be 0), the server's
memory (RSS and PSS, sampled twice a second) and its CPU time per call. Baselines: the same 50 clients calling the
no-op tool (the SDK's floor under the same load), and 50 asyncio tasks running ``select 1`` on raw asyncpg through a
pool of the server's size (the database's limit).

Replicas: the same 50-client load on 1, 2 and 3 servers sharing one state database (``NEON_MCP_STATE_URL``), each
call of each client going to the next replica in turn (a load balancer without affinity, at no cost of its own),
beside one server without a state database; then what the state database costs: one client's plain read and
confirmed call (``run_sql`` of a destructive statement, then ``confirm_operation``), interleaved on a server with and a
server without it, and the store's own work per confirmed call (store, take, audit: three round trips) beside a raw
``select 1``. The load generator runs on the same machine and takes its share of the cores.

With ``BENCH_BASELINE=/path/to/another/checkout`` (with its own ``.venv``), that checkout's server is measured too,
alternating with this one (two turns each, ``run_sql`` only), for a ratio against an earlier version in the same run.

Run: ``.venv/bin/python bench/concurrency.py`` (its own PostgreSQL cluster unless ``BENCH_DATABASE_URL`` is set).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from _common import (
    BENCH_SERVER,
    ROOT,
    HTTPServer,
    Stats,
    bench_database,
    cpu_seconds,
    http_client,
    http_server,
    http_transport_missing,
    log,
    mb,
    ms,
    of_target,
    process_memory,
    ratio,
    section,
    server_env,
)

from server.settings import Settings
from server.state import AuditRecord, AuditTable, Caller, PendingTable, current_caller
from server.state.database import StateDatabase

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
POOL_SIZE = Settings.model_fields["pool_size"].default
REPLICAS = (1, 2, 3)
SEQUENTIAL = int(os.environ.get("BENCH_SEQUENTIAL", "300"))
"""Calls per path in the one-client comparisons (plain reads; confirmed calls are a third of it)."""
BUMP = "UPDATE bench_counter SET n = n + 1"
"""A destructive statement (UPDATE without WHERE): it waits for confirm_operation."""
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


def _memory(pids: Sequence[int]) -> dict[str, int]:
    """The servers' memory, summed."""
    total: dict[str, int] = {}
    for pid in pids:
        for key, value in process_memory(pid).items():
            total[key] = total.get(key, 0) + value
    return total


async def _watch_memory(pids: Sequence[int], into: dict[str, int], stop: anyio.Event) -> None:
    while not stop.is_set():
        for key, value in _memory(pids).items():
            into[key] = max(into.get(key, 0), value)
        with anyio.move_on_after(0.5):
            await stop.wait()


async def load(urls: Sequence[str], pids: Sequence[int], tool: str, arguments: dict[str, Any], seconds: float) -> Load:
    """``CLIENTS`` clients calling ``tool`` for ``seconds``, all starting together once every one is connected; with
    several servers each client sends each call to the next one in turn (client ``i`` starting at server ``i``)."""
    samples: list[float] = []
    errors = 0
    go, stop, all_connected, all_finished = anyio.Event(), anyio.Event(), anyio.Event(), anyio.Event()
    connected = finished = 0
    deadline = 0.0

    async def client(index: int) -> None:
        nonlocal errors, connected, finished
        stage = "connecting"

        def reached(next_stage: str) -> None:
            nonlocal connected, finished, stage
            if stage == "connecting":
                connected += 1
                if connected == CLIENTS:
                    all_connected.set()
            if next_stage == "closing":
                finished += 1
                if finished == CLIENTS:
                    all_finished.set()
            stage = next_stage

        try:
            async with AsyncExitStack() as stack:
                clients = [await stack.enter_async_context(http_client(url)) for url in urls]
                for mcp in clients:
                    await mcp.call_tool(tool, arguments)
                turn = index
                reached("calling")
                await go.wait()
                while time.perf_counter() < deadline:
                    mcp = clients[turn % len(clients)]
                    turn += 1
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
                reached("closing")
                await stop.wait()  # sessions close after the measurement
        except Exception as exc:  # the client's own transport failed (connecting, or closing): counted and shown
            errors += 1
            log(f"client {index} failed while {stage}: {exc!r}")
            if stage != "closing":
                reached("closing")

    memory_max: dict[str, int] = {}
    async with anyio.create_task_group() as tasks:
        for index in range(CLIENTS):
            tasks.start_soon(client, index)
        await all_connected.wait()
        memory_before = _memory(pids)
        tasks.start_soon(_watch_memory, pids, memory_max, stop)
        server_before, generator_before = sum(map(cpu_seconds, pids)), time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        go.set()
        await all_finished.wait()
        elapsed = time.perf_counter() - started
        server_cpu = sum(map(cpu_seconds, pids)) - server_before
        generator_cpu = time.process_time() - generator_before
        memory_after = _memory(pids)
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
            loads[name].append(
                asyncio.run(load([served.url], [served.pid], "run_sql", {"sql": "select 1"}, SECONDS / 2))
            )
    return loads["this"], loads["baseline"]


def _commit(checkout: Path) -> str:
    import subprocess

    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or str(checkout)


def main() -> None:
    missing = http_transport_missing()
    if missing is not None:
        section("Concurrency over streamable HTTP", missing, ["load"], [])
        return
    with bench_database() as url:
        one_server(url)
        replicas(url)


def one_server(url: str) -> None:
    header = ["load", "calls/s", "median", "p99", "errors", "server CPU per call", "CPU: server / load generator",
              "server RSS: before → most → after", "server PSS: before → most → after", "ratio"]  # fmt: skip
    about = (
        f"{CLIENTS} MCP clients (the SDK's `Client` over streamable HTTP, one session each) in one load-generator "
        f"process, all through one `neon-mcp serve --transport http`, calling in a loop for {SECONDS:.0f} s (the "
        f"no-op baseline for {SECONDS / 3:.0f} s). The server's pool holds {POOL_SIZE} connections "
        "(`NEON_MCP_POOL_SIZE`). CPU shares are of one core; the machine has "
        f"{os.cpu_count()}, shared by server, load generator and PostgreSQL."
    )
    with tempfile.TemporaryDirectory(prefix="neon-mcp-bench-home-") as home:
        env = server_env(url, Path(home))
        with http_server(BENCH_SERVER, env) as served:
            log(f"{CLIENTS} clients: no-op for {SECONDS / 3:.0f} s…")
            noop = asyncio.run(load([served.url], [served.pid], "noop", {}, SECONDS / 3))
            log(f"{CLIENTS} clients: run_sql('select 1') for {SECONDS:.0f} s…")
            run_sql = asyncio.run(load([served.url], [served.pid], "run_sql", {"sql": "select 1"}, SECONDS))
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
        rows.append(
            ["… the SDK's floor (the no-op above) against the baseline's `run_sql`", f"{ratio(noop.throughput, before)}"
             " the throughput", "—", "—", str(noop.errors), f"{ratio(noop.server_cpu / noop.calls, cpu_before)} the "
             "CPU per call", "—", "—", "—", "a tool doing nothing under this load on this machine: "
             f"{'above' if noop.throughput >= 1.5 * before else 'below'} 1.5× the baseline"]
        )  # fmt: skip
    section("Concurrency over streamable HTTP", about, header, rows)
    if run_sql.errors or noop.errors:
        log(f"ERRORS under load: run_sql {run_sql.errors}, noop {noop.errors}")


# --- replicas on one state database -----------------------------------------------------------------------------


@contextmanager
def scratch_database(url: str, prefix: str) -> Iterator[str]:
    """The URL of a new database on the server of ``url``, dropped when the block ends."""
    from urllib.parse import urlsplit, urlunsplit

    name = f"{prefix}_{secrets.token_hex(4)}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Costs:
    """One client's calls, interleaved on a server without and a server with a state database, and the store's own
    work per confirmed call beside one round trip."""

    read_local: Stats
    read_shared: Stats
    confirmed_local: Stats
    confirmed_shared: Stats
    store: Stats
    round_trip: Stats
    read_transactions: float
    """Transactions in the state database per plain read."""
    confirmed_transactions: float
    """Transactions in the state database per confirmed call."""
    read_cpu: tuple[float, ...]
    """Server CPU seconds per plain read: without, with a state database."""
    confirmed_cpu: tuple[float, ...]
    """Server CPU seconds per confirmed call: without, with a state database."""


async def _confirmed(client: Any) -> float:
    started = time.perf_counter()
    asked = await client.call_tool("run_sql", {"sql": BUMP})
    operation_id = (asked.structured_content or {}).get("operation_id")
    if asked.is_error or operation_id is None:
        raise RuntimeError(f"no confirmation was asked: {asked.content}")
    done = await client.call_tool("confirm_operation", {"operation_id": operation_id})
    if done.is_error:
        raise RuntimeError(f"confirm_operation failed: {done.content}")
    return time.perf_counter() - started


async def _read(client: Any) -> float:
    started = time.perf_counter()
    result = await client.call_tool("run_sql", {"sql": "select 1"})
    if result.is_error:
        raise RuntimeError(f"run_sql failed: {result.content}")
    return time.perf_counter() - started


async def sequential_costs(local: HTTPServer, shared: HTTPServer, target: str, state_url: str) -> Costs:
    """Reads, then confirmed calls, alternating between the two servers (each pair in turn order), counting the state
    database's transactions and each server's CPU time over each phase; then the store's own work in this process."""
    samples: dict[str, list[float]] = {key: [] for key in ("rl", "rs", "cl", "cs")}
    state_name = state_url.rsplit("/", 1)[1]
    confirmed = SEQUENTIAL // 3
    async with http_client(local.url) as local_client, http_client(shared.url) as shared_client:
        for client in (local_client, shared_client):  # warm: pools, plans, the state database's statements
            for _ in range(5):
                await _read(client)
                await _confirmed(client)
        before = await _transactions(target, state_name)
        cpu_before = cpu_seconds(local.pid), cpu_seconds(shared.pid)
        for index in range(SEQUENTIAL):
            pairs = [(local_client, "rl"), (shared_client, "rs")]
            for client, key in pairs if index % 2 else pairs[::-1]:
                samples[key].append(await _read(client))
        cpu_middle = cpu_seconds(local.pid), cpu_seconds(shared.pid)
        middle = await _transactions(target, state_name)
        for index in range(confirmed):
            pairs = [(local_client, "cl"), (shared_client, "cs")]
            for client, key in pairs if index % 2 else pairs[::-1]:
                samples[key].append(await _confirmed(client))
        cpu_after = cpu_seconds(local.pid), cpu_seconds(shared.pid)
        after = await _transactions(target, state_name)
    store, round_trip = await store_cost(state_url)
    return Costs(
        *(Stats.of(samples[key]) for key in ("rl", "rs", "cl", "cs")),
        store,
        round_trip,
        read_transactions=(middle - before) / SEQUENTIAL,
        confirmed_transactions=(after - middle) / confirmed,
        read_cpu=tuple((m - b) / SEQUENTIAL for b, m in zip(cpu_before, cpu_middle, strict=True)),
        confirmed_cpu=tuple((a - m) / confirmed for m, a in zip(cpu_middle, cpu_after, strict=True)),
    )


async def _transactions(url: str, database: str) -> int:
    """Transactions committed and rolled back in ``database`` so far, as PostgreSQL's statistics say once every
    backend has reported (a backend that went idle reports within 10 s); read from another database, so that reading
    adds none."""
    await asyncio.sleep(11)
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", database)
        )
    finally:
        await conn.close()


async def store_cost(state_url: str) -> tuple[Stats, Stats]:
    """What the state database does for one confirmed call — store the operation, take it, write its audit row — and
    one ``SELECT 1`` round trip on the same pool, alternating."""
    database = StateDatabase(state_url)
    await database.open()
    try:
        pending = PendingTable(database, tenant="bench", ttl=300, replica="bench")
        audit = AuditTable(database, tenant="bench", replica="bench")
        record = AuditRecord("database=bench", BUMP, "destructive", "confirm_operation", "ok", rows_affected=1)
        store, round_trip = [], []
        for index in range(SEQUENTIAL + 20):
            started = time.perf_counter()
            operation = await pending.add(tool="run_sql", arguments={"sql": BUMP}, summary="bench")
            await pending.take(operation.id)
            caller = Caller("confirm_operation")
            token = current_caller.set(caller)
            audit.append(record)
            current_caller.reset(token)
            await caller.settle()
            middle = time.perf_counter()
            await database.fetchrow("a round trip", "SELECT 1")
            if index >= 20:  # the first ones warm the pool and the statement caches
                store.append(middle - started)
                round_trip.append(time.perf_counter() - middle)
    finally:
        await database.close()
    return Stats.of(store), Stats.of(round_trip)


def replicas(url: str) -> None:
    header = ["servers", "calls/s", "median", "p99", "errors", "server CPU per call (all servers)",
              "CPU: servers / load generator", "servers' RSS, most (sum)", "ratio"]  # fmt: skip
    about = (
        f"The same {CLIENTS} clients calling `run_sql('select 1')` for {SECONDS:.0f} s, on 1, 2 and 3 "
        "`neon-mcp serve --transport http` processes sharing one state database (`NEON_MCP_STATE_URL`: HTTP "
        "stateless), each client sending each call to the next server in turn (a round-robin load balancer without "
        "affinity and at no cost: the clients do it), beside one server without a state database. Every process "
        f"(servers, load generator, PostgreSQL) shares the machine's {os.cpu_count()} cores: more servers cannot "
        "add cores, so this shows what replicas cost on one machine, not what they add on several."
    )
    with (
        scratch_database(url, "bench_target") as target,
        scratch_database(url, "bench_state") as state_url,
        tempfile.TemporaryDirectory(prefix="neon-mcp-bench-home-") as home,
    ):
        asyncio.run(_counter(target))

        def env(name: str, **extra: str) -> dict[str, str]:
            return server_env(target, Path(home) / name, NEON_MCP_ACCESS_MODE="full", **extra)

        runs: dict[str, Load] = {}
        with http_server(BENCH_SERVER, env("local")) as local:
            log(f"{CLIENTS} clients, 1 server without a state database, for {SECONDS:.0f} s…")
            runs["local"] = asyncio.run(load([local.url], [local.pid], "run_sql", {"sql": "select 1"}, SECONDS))
        for count in REPLICAS:
            with ExitStack() as stack:
                servers = [
                    stack.enter_context(http_server(BENCH_SERVER, env(f"r{i}", NEON_MCP_STATE_URL=state_url)))
                    for i in range(count)
                ]
                log(f"{CLIENTS} clients, {count} server(s) on one state database, for {SECONDS:.0f} s…")
                runs[str(count)] = asyncio.run(
                    load([s.url for s in servers], [s.pid for s in servers], "run_sql", {"sql": "select 1"}, SECONDS)
                )
        log(f"one client: {SEQUENTIAL} reads and {SEQUENTIAL // 3} confirmed calls on each server, interleaved…")
        with (
            http_server(BENCH_SERVER, env("local")) as local,
            http_server(BENCH_SERVER, env("r0", NEON_MCP_STATE_URL=state_url)) as shared,
        ):
            costs = asyncio.run(sequential_costs(local, shared, target, state_url))

    def row(label: str, run: Load, baseline: Load | None, what: str) -> list[object]:
        shares = f"{run.server_cpu / run.elapsed:.0%} / {run.generator_cpu / run.elapsed:.0%}"
        compared = "—" if baseline is None else f"{ratio(run.throughput, baseline.throughput)} {what}"
        return [
            label, f"{run.throughput:.0f}", ms(run.stats.median, 1), ms(run.stats.p99, 1), str(run.errors),
            ms(run.server_cpu / run.calls, 2), shares, mb(run.memory_max["rss"]), compared,
        ]  # fmt: skip

    one = runs["1"]
    rows = [row("1 server, no state database (memory and files)", runs["local"], None, "")]
    rows.append(row("1 server, state database", one, runs["local"], "the throughput without a state database"))
    for count in REPLICAS[1:]:
        rows.append(row(f"{count} servers, one state database", runs[str(count)], one, "the throughput of 1 server"))
    section(f"Replicas on one state database, {CLIENTS} clients", about, header, rows)
    errors = sum(run.errors for run in runs.values())
    if errors:
        log(f"ERRORS under load with replicas: {errors}")

    added_read = costs.read_shared.median - costs.read_local.median
    added_confirmed = costs.confirmed_shared.median - costs.confirmed_local.median
    cost_about = (
        f"One client over streamable HTTP, {SEQUENTIAL} plain reads (`run_sql('select 1')`), then {SEQUENTIAL // 3} "
        "confirmed calls (`run_sql` of a destructive `UPDATE` without `WHERE`, answered `confirmation_required`, "
        "then `confirm_operation`) on each of two servers, alternating: one without a state database (memory and "
        "files), one with it; the state database's transactions over each phase are counted from PostgreSQL's "
        "statistics (`pg_stat_database`). A plain read never touches the state database (no audit record, no pending "
        "operation); a confirmed call stores the operation, takes it (a conditional `UPDATE … RETURNING`) and writes "
        "its audit row before answering. The store's own work is also timed in process, beside one `SELECT 1` on "
        "its pool."
    )
    cost_header = ["figure", "median", "p99", "baseline in the same run", "ratio", "the state database adds"]
    cost_rows = [
        ["plain read, `run_sql('select 1')`", ms(costs.read_shared.median), ms(costs.read_shared.p99),
         f"without a state database {ms(costs.read_local.median)}",
         ratio(costs.read_shared.median, costs.read_local.median),
         f"{added_read * 1000:+.3f} ms; {costs.read_transactions:.2f} transactions in it per call (target: nothing)"],
        ["confirmed call, `run_sql` + `confirm_operation`", ms(costs.confirmed_shared.median),
         ms(costs.confirmed_shared.p99), f"without a state database {ms(costs.confirmed_local.median)}",
         ratio(costs.confirmed_shared.median, costs.confirmed_local.median),
         f"{added_confirmed * 1000:+.3f} ms: {of_target(added_confirmed, 0.001)} (1 ms); "
         f"{costs.confirmed_transactions:.2f} transactions in it per call"],
        ["server CPU per plain read", ms(costs.read_cpu[1]), "—", f"without a state database {ms(costs.read_cpu[0])}",
         ratio(costs.read_cpu[1], costs.read_cpu[0]), f"{(costs.read_cpu[1] - costs.read_cpu[0]) * 1000:+.3f} ms"],
        ["server CPU per confirmed call", ms(costs.confirmed_cpu[1]), "—",
         f"without a state database {ms(costs.confirmed_cpu[0])}",
         ratio(costs.confirmed_cpu[1], costs.confirmed_cpu[0]),
         f"{(costs.confirmed_cpu[1] - costs.confirmed_cpu[0]) * 1000:+.3f} ms"],
        ["the store's work per confirmed call (store, take, audit row), in process", ms(costs.store.median),
         ms(costs.store.p99), f"one `SELECT 1` on its pool {ms(costs.round_trip.median)}",
         ratio(costs.store.median, costs.round_trip.median), of_target(costs.store.median, 0.001) + " (1 ms)"],
    ]  # fmt: skip
    section("What the state database costs per call", cost_about, cost_header, cost_rows)


async def _counter(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE bench_counter (n bigint NOT NULL); INSERT INTO bench_counter VALUES (0)")
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
