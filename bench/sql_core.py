"""The SQL core against its peers and the limit, each figure beside a baseline measured in the same run.

- MCP overhead: warm ``run_sql('select 1')`` and a 100-row query over stdio and over streamable HTTP (the SDK's
  default protocol, and a legacy ``initialize`` session), against raw asyncpg on one held connection (the limit), a
  no-op tool on the same server and transport (the MCP SDK's floor), and the reference Node PostgreSQL MCP server
  (``@modelcontextprotocol/server-postgres``, its ``query`` tool) over stdio. Calls are interleaved across every path,
  so the machine's noise hits each alike. Our own work per call = run_sql − noop (target < 0.5 ms); the server's CPU
  time per call is measured in blocks (less noisy than wall time on a shared machine), and so is PostgreSQL's: the
  CPU time of the backends serving each client, from ``/proc`` (a local database only).
- Big results: ``SELECT *`` on the 10,000,000-row table: time to the capped answer (target < 100 ms) against raw
  asyncpg reading the same first rows through a cursor, and the server's memory (peak included) before and after.
- Schema: ``describe_schema`` overview of 2,000 tables (target < 300 ms and < 100 kB of text) and one table, against
  raw asyncpg running the same catalog queries in one read-only transaction.
- The executable closure (what a statement sets off, resolved from the catalog before the policy decides): cold (a
  fresh cache) and warm, on a database of 2,000 tables, 500 functions and 200 views, against raw asyncpg running the
  statement itself.

Run: ``.venv/bin/python bench/sql_core.py`` (its own PostgreSQL cluster unless ``BENCH_DATABASE_URL`` is set). With
``BENCH_COMPARE=<a checkout of another commit>`` (e.g. ``git worktree add /tmp/base main``), that commit's server is
interleaved over stdio with this one's, and the overhead table gives this one's calls as a ratio of its.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
from _common import (
    BENCH_SERVER,
    BIG_ROWS,
    NODE_SERVER,
    PAUSE,
    PEER_SERVER,
    SAMPLE_QUERY,
    TABLES,
    HTTPServer,
    Stats,
    bench_database,
    call,
    cpu_seconds,
    create_tables,
    http_client,
    http_server,
    http_transport_missing,
    log,
    mb,
    ms,
    of_target,
    ratio,
    section,
    server_env,
    stdio_server,
)
from mcp import Client

from server.sql import Closures, Databases, Guards, Place, analyze
from server.sql import catalog as schema_catalog

CALLS = int(os.environ.get("BENCH_CALLS", "500"))
PEER_VERSION = "0.3.0"
"""The postgres-mcp release ``bench/run`` installs."""
COMPARE = os.environ.get("BENCH_COMPARE")
"""A checkout of another commit whose server is measured beside this one's (see the module docstring)."""
SELECT_1 = "select 1"
TABLE = "many.table_0042"

Timed = Callable[[], Awaitable[float]]


def _tool(client: Client, name: str, arguments: dict[str, Any]) -> Timed:
    async def once() -> float:
        return (await call(client, name, arguments))[0]

    return once


def _backends(probe: asyncpg.Connection, application_name: str) -> Callable[[], Awaitable[set[int]]]:
    """The pids of the client backends of clients that call themselves ``application_name``."""

    async def pids() -> set[int]:
        rows = await probe.fetch(
            "SELECT pid FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend' "
            "AND application_name = $1 AND pid <> pg_catalog.pg_backend_pid()",
            application_name,
        )
        return {row[0] for row in rows}

    return pids


async def _pg_cpu_per_call(pids: Callable[[], Awaitable[set[int]]], once: Timed, calls: int) -> float | None:
    """PostgreSQL's CPU time per call of ``once``: the CPU its backends (``pids``) used over ``calls`` calls."""

    def used(found: set[int]) -> dict[int, float]:
        out = {}
        for pid in found:
            try:
                out[pid] = cpu_seconds(pid)
            except OSError:
                continue
        return out

    await once()  # a pool may have closed its idle connections meanwhile (node-postgres does after 10 s)
    before = used(await pids())
    if not before:
        return None
    for _ in range(calls):
        await once()
    await asyncio.sleep(0.05)  # a read's rollback runs after its answer
    after = used(await pids() | set(before))
    return sum(after[pid] - before.get(pid, 0.0) for pid in after) / calls


def _raw(conn: asyncpg.Connection, sql: str) -> Timed:
    async def once() -> float:
        started = time.perf_counter()
        await conn.fetch(sql)
        return time.perf_counter() - started

    return once


async def _interleaved(paths: dict[str, Timed], calls: int, warmup: int = 50) -> dict[str, Stats]:
    """Each path called ``calls`` times, one call per path in each round, in an order shuffled every round (so no
    path always follows the same other one), ``PAUSE`` after each call, after ``warmup`` rounds."""
    order = list(paths.items())
    shuffle = random.Random(0).shuffle
    for _ in range(warmup):
        for _, once in order:
            await once()
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(calls):
        shuffle(order)
        for name, once in order:
            samples[name].append(await once())
            await asyncio.sleep(PAUSE)
    return {name: Stats.of(values) for name, values in samples.items()}


async def _cpu_per_call(client: Client, cpu: Callable[[], Awaitable[float]], name: str, args: dict[str, Any]) -> float:
    before = await cpu()
    for _ in range(CALLS):
        await client.call_tool(name, args)
    return (await cpu() - before) / CALLS


async def overhead(url: str, env: dict[str, str], http: HTTPServer | None) -> dict[str, Any]:
    """The interleaved latency table, and the server's CPU time per call over each transport."""
    out: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        conn = await asyncpg.connect(url)
        stack.push_async_callback(conn.close)
        paths: dict[str, Timed] = {"raw select 1": _raw(conn, SELECT_1), "raw 100 rows": _raw(conn, SAMPLE_QUERY)}
        clients: dict[str, Client] = {
            "stdio": await stack.enter_async_context(Client(stdio_server(BENCH_SERVER, env))),
        }
        if http is not None:
            clients["http"] = await stack.enter_async_context(http_client(http.url))
            clients["http-legacy"] = await stack.enter_async_context(http_client(http.url, mode="legacy"))
        if COMPARE:
            command = [sys.executable, str(Path(COMPARE) / "bench" / "bench_server.py")]
            compare_env = {**env, "PYTHONPATH": COMPARE}
            clients["compare"] = await stack.enter_async_context(Client(stdio_server(command, compare_env)))
        for transport, client in clients.items():
            if transport != "compare":  # its own-work figure would compare two noisy floors; its calls suffice
                paths[f"{transport} noop"] = _tool(client, "noop", {})
            paths[f"{transport} select 1"] = _tool(client, "run_sql", {"sql": SELECT_1})
            paths[f"{transport} 100 rows"] = _tool(client, "run_sql", {"sql": SAMPLE_QUERY})
        if PEER_SERVER.exists():
            # Its log of every request goes nowhere (it writes one to stderr per call); its connections carry an
            # application name, so that PostgreSQL's CPU is not counted as the Node server's (which sends none).
            quiet = ["sh", "-c", 'exec "$0" "$@" 2>/dev/null', str(PEER_SERVER), "--access-mode=restricted", url]
            peer_env = {**env, "PGAPPNAME": "postgres-mcp-bench"}
            peer = await stack.enter_async_context(Client(stdio_server(quiet, peer_env)))
            paths["peer select 1"] = _tool(peer, "execute_sql", {"sql": SELECT_1})
            paths["peer 100 rows"] = _tool(peer, "execute_sql", {"sql": SAMPLE_QUERY})
        if NODE_SERVER.exists():
            node = await stack.enter_async_context(Client(stdio_server([str(NODE_SERVER), url], env)))
            paths["node select 1"] = _tool(node, "query", {"sql": SELECT_1})
            paths["node 100 rows"] = _tool(node, "query", {"sql": SAMPLE_QUERY})
        log(f"MCP overhead: {len(paths)} paths × {CALLS} calls, interleaved…")
        out["stats"] = await _interleaved(paths, CALLS)
        out["stats"]["raw back to back"] = (await _interleaved({"raw": paths["raw select 1"]}, CALLS))["raw"]

        log("server CPU per call…")

        async def stdio_cpu() -> float:
            return float((await clients["stdio"].call_tool("memory", {})).structured_content["cpu"])

        out["cpu"] = {
            ("stdio", "noop"): await _cpu_per_call(clients["stdio"], stdio_cpu, "noop", {}),
            ("stdio", "run_sql"): await _cpu_per_call(clients["stdio"], stdio_cpu, "run_sql", {"sql": SELECT_1}),
        }
        log("PostgreSQL CPU per call…")
        probe = await asyncpg.connect(url, server_settings={"application_name": "neon-mcp-bench-probe"})
        stack.push_async_callback(probe.close)
        raw_pid = conn.get_server_pid()

        async def raw_pids() -> set[int]:
            return {raw_pid}

        node_pids = _backends(probe, "")  # node-postgres names no application

        async def node_only() -> set[int]:
            return await node_pids() - {raw_pid}

        owners = {"raw": raw_pids, "stdio": _backends(probe, "neon-mcp"), "node": node_only}
        out["pg_cpu"] = {
            (owner, query): await _pg_cpu_per_call(pids, paths[f"{owner} {query}"], CALLS)
            for owner, pids in owners.items()
            for query in ("select 1", "100 rows")
            if f"{owner} {query}" in paths
        }
        if http is not None:
            pid = http.pid

            async def http_cpu() -> float:
                return cpu_seconds(pid)

            for name, args in (("noop", {}), ("run_sql", {"sql": SELECT_1})):
                out["cpu"][("http", name)] = await _cpu_per_call(clients["http"], http_cpu, name, args)
    return out


async def big_and_schema(url: str, env: dict[str, str]) -> dict[str, Any]:
    """``SELECT *`` on ``big`` and ``describe_schema`` over stdio, each interleaved with its raw asyncpg baseline."""
    out: dict[str, Any] = {}
    conn = await asyncpg.connect(url)
    try:
        async with Client(stdio_server(BENCH_SERVER, env)) as client:

            async def memory() -> dict[str, float]:
                return dict((await client.call_tool("memory", {})).structured_content)

            _, first = await call(client, "run_sql", {"sql": "SELECT * FROM big"})
            limit = first.structured_content["row_count"] + 1

            async def raw_capped() -> float:
                started = time.perf_counter()
                async with conn.transaction(readonly=True):
                    cursor = await conn.cursor("SELECT * FROM big")
                    await cursor.fetch(limit)
                return time.perf_counter() - started

            log("SELECT * on the big table…")
            before = await memory()
            stats = await _interleaved(
                {"ours": _tool(client, "run_sql", {"sql": "SELECT * FROM big"}), "raw": raw_capped}, 20, warmup=2
            )
            out["big"] = {**stats, "before": before, "after": await memory(), "answer": first.structured_content}

            log("describe_schema…")
            overview_sql = [(schema_catalog._SCHEMAS_SQL, (None,)), (schema_catalog._OVERVIEW_SQL, (None,))]
            oid = await conn.fetchval("SELECT $1::regclass::oid", TABLE)
            table_sql = [(schema_catalog._FIND_SQL, ("table_0042", "many"))] + [
                (sql, (oid,))
                for sql in (
                    schema_catalog._COLUMNS_SQL,
                    schema_catalog._CONSTRAINTS_SQL,
                    schema_catalog._REFERENCED_BY_SQL,
                    schema_catalog._INDEXES_SQL,
                    schema_catalog._TRIGGERS_SQL,
                    schema_catalog._POLICIES_SQL,
                )
            ]

            def raw_catalog(queries: list[tuple[str, tuple[Any, ...]]]) -> Timed:
                async def once() -> float:
                    started = time.perf_counter()
                    async with conn.transaction(readonly=True):
                        for sql, args in queries:
                            await conn.fetch(sql, *args)
                    return time.perf_counter() - started

                return once

            out["schema"] = await _interleaved(
                {
                    "overview": _tool(client, "describe_schema", {}),
                    "raw overview": raw_catalog(overview_sql),
                    "table": _tool(client, "describe_schema", {"table": TABLE}),
                    "raw table": raw_catalog(table_sql),
                },
                20,
                warmup=3,
            )
            _, overview = await call(client, "describe_schema", {})
            out["overview_bytes"] = len(overview.content[0].text.encode())
            out["overview_relations"] = len(overview.structured_content["overview"]["relations"])
            _, table = await call(client, "describe_schema", {"table": TABLE})
            out["table_bytes"] = len(table.content[0].text.encode())
    finally:
        await conn.close()
    return out


def _line(label: str, s: Stats, against: str, vs_node: str = "—") -> list[object]:
    return [label, ms(s.median, 3), ms(s.p99, 3), f"{s.per_second:.0f}", against, vs_node]


def _against(label: str, ours: Stats, baseline_label: str, baseline: Stats) -> list[object]:
    """A row: median and p99 of ``ours``, the baseline's median, and the ratio of the medians."""
    return [
        label,
        ms(ours.median),
        ms(ours.p99),
        f"{baseline_label} {ms(baseline.median)}",
        ratio(ours.median, baseline.median),
    ]


_TRANSPORTS = {"stdio": "stdio", "http": "streamable HTTP", "http-legacy": "streamable HTTP, legacy session"}


def _overhead_rows(figures: dict[str, Any], http_missing: str | None) -> list[list[object]]:
    stats: dict[str, Stats] = figures["stats"]
    raw = {"select 1": stats["raw select 1"], "100 rows": stats["raw 100 rows"]}
    node = {query: stats.get(f"node {query}") for query in raw}
    rows = [
        _line("raw asyncpg `select 1`, held connection (the limit)", raw["select 1"], "—"),
        _line("raw asyncpg, 100 rows, held connection (the limit)", raw["100 rows"], "—"),
        _line("… raw asyncpg `select 1` back to back, not interleaved", stats["raw back to back"], "—"),
    ]
    for transport, name in _TRANSPORTS.items():
        if f"{transport} noop" not in stats:
            rows.append([f"neon-mcp over {name}", http_missing or "not measured", "", "", "", ""])
            continue
        noop = stats[f"{transport} noop"]
        rows.append(
            _line(
                f"no-op tool over {name} (the SDK's floor)", noop, f"raw {ratio(noop.median, raw['select 1'].median)}"
            )
        )
        for query, label in (("select 1", "`run_sql('select 1')`"), ("100 rows", "`run_sql`, 100 rows,")):
            s = stats[f"{transport} {query}"]
            peer = node[query]
            vs_node = ratio(s.median, peer.median) if peer else "—"
            rows.append(_line(f"{label} over {name}", s, f"raw {ratio(s.median, raw[query].median)}", vs_node))
        own = stats[f"{transport} select 1"].median - noop.median
        rows.append(
            [
                f"… our own work per `run_sql('select 1')` over {name} (run_sql − no-op)",
                ms(own, 3),
                "—",
                "—",
                f"target 0.5 ms: {of_target(own, 0.0005)}",
                "—",
            ]
        )
    if "compare select 1" in stats:
        commit = _commit(COMPARE)
        for query, label in (("select 1", "`run_sql('select 1')`"), ("100 rows", "`run_sql`, 100 rows,")):
            theirs, ours = stats[f"compare {query}"], stats[f"stdio {query}"]
            rows.append(
                _line(
                    f"{label} over stdio at {commit} (before)",
                    theirs,
                    f"this commit {ratio(ours.median, theirs.median)}",
                )
            )
    for query, label in (("select 1", "`query('select 1')`"), ("100 rows", "`query`, 100 rows,")):
        peer = node[query]
        if peer is None:
            rows.append([f"reference Node server, {label}", "not measured: npm missing", "", "", "", ""])
        else:
            against = f"raw {ratio(peer.median, raw[query].median)}"
            rows.append(_line(f"reference Node server, {label} over stdio", peer, against, "1.00×"))
    for query, label in (("select 1", "`execute_sql('select 1')`"), ("100 rows", "`execute_sql`, 100 rows,")):
        theirs = stats.get(f"peer {query}")
        if theirs is None:
            missing = "not measured: no Python 3.12 or newer to install it with"
            rows.append([f"postgres-mcp {PEER_VERSION} (Python), {label}", missing, "", "", "", ""])
            continue
        ours, node_stats = stats[f"stdio {query}"], node[query]
        rows.append(
            _line(
                f"postgres-mcp {PEER_VERSION} (Python, restricted mode), {label} over stdio",
                theirs,
                f"neon-mcp {ratio(ours.median, theirs.median)} its latency",
                ratio(theirs.median, node_stats.median) if node_stats else "—",
            )
        )
    pg_cpu: dict[tuple[str, str], float | None] = figures.get("pg_cpu", {})
    for query in ("select 1", "100 rows"):
        found = {owner: pg_cpu.get((owner, query)) for owner in ("raw", "stdio", "node")}
        if found["stdio"] is None:
            missing = "not measured: the database is not local"
            rows.append([f"PostgreSQL CPU per call, {query}", missing, "", "", "", ""])
            continue
        ours, raw_cpu, node_cpu = found["stdio"], found["raw"], found["node"]
        rows.append(
            [
                f"PostgreSQL CPU per call, {query}: neon-mcp over stdio / raw asyncpg / Node server",
                " / ".join("—" if v is None else ms(v, 3) for v in (ours, raw_cpu, node_cpu)),
                "—",
                "—",
                f"raw {ratio(ours, raw_cpu)}" if raw_cpu else "—",
                ratio(ours, node_cpu) if node_cpu else "—",
            ]
        )
    for (transport, tool), seconds in figures["cpu"].items():
        if tool == "run_sql":
            noop_cpu = figures["cpu"][(transport, "noop")]
            rows.append(
                [
                    f"server CPU per call over {_TRANSPORTS[transport]}: `run_sql('select 1')` / no-op",
                    f"{ms(seconds, 3)} / {ms(noop_cpu, 3)}",
                    "—",
                    "—",
                    f"our CPU per call {ms(seconds - noop_cpu, 3)}",
                    "—",
                ]
            )
    return rows


def _commit(root: str | None) -> str:
    import subprocess

    done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or str(root)


# --- the executable closure ----------------------------------------------------------------------------------------

CLOSURE_DATABASE = "bench_closure"
FUNCTIONS, VIEWS, TRIGGERS = 500, 200, 100
CLOSURE_STATEMENTS = {
    "a table": "SELECT * FROM many.table_0042 WHERE id = 1",
    "a view on 4 views, each calling a chain of functions": "SELECT * FROM app.view_0199 WHERE id = 1",
    "a function calling a chain of 9": "SELECT app.fn_0499(1)",
    "an INSERT firing a trigger, a default, a check": "INSERT INTO many.table_0007 (id, name) VALUES (1, 'x')",
}


async def prepare_closure_database(server_url: str) -> str:
    """A database of 2,000 tables (as in ``many``), 500 functions (SQL and PL/pgSQL, in chains of 10), 200 views (each
    calling a function, in chains of 5) and an ``updated_at``-style trigger on 100 tables; built once."""
    url = server_url.rsplit("/", 1)[0] + "/" + CLOSURE_DATABASE
    admin = await asyncpg.connect(server_url)
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", CLOSURE_DATABASE):
            await admin.execute(f"CREATE DATABASE {CLOSURE_DATABASE}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(url)
    try:
        if await conn.fetchval("SELECT to_regclass('public.closure_ready') IS NOT NULL"):
            return url
        started = time.perf_counter()
        log(f"preparing the closure database ({TABLES:,} tables, {FUNCTIONS} functions, {VIEWS} views)…")
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = 'many'"):
            await create_tables(conn, "many", TABLES)
        statements = ["CREATE SCHEMA app"]
        for i in range(FUNCTIONS):
            inner = f"app.fn_{i - 1:04d}(x)" if i % 10 else "x"
            table = f"many.table_{i % TABLES:04d}"
            if i % 2:
                statements.append(
                    f"CREATE FUNCTION app.fn_{i:04d}(x bigint) RETURNS bigint LANGUAGE plpgsql STABLE AS $$ "
                    f"DECLARE r bigint := {inner}; BEGIN IF r > 0 THEN r := r + (SELECT count(*) FROM {table}); "
                    f"END IF; RETURN r; END $$"
                )
            else:
                statements.append(
                    f"CREATE FUNCTION app.fn_{i:04d}(x bigint) RETURNS bigint LANGUAGE sql STABLE "
                    f"AS $$ SELECT {inner} + (SELECT count(*) FROM {table} WHERE id = x) $$"
                )
        for j in range(VIEWS):
            join = f" JOIN app.view_{j - 1:04d} AS v ON v.id = t.id" if j % 5 else ""
            statements.append(
                f"CREATE VIEW app.view_{j:04d} AS SELECT t.id, t.name, app.fn_{(j * 5 + 9) % FUNCTIONS:04d}(t.id) AS f "
                f"FROM many.table_{j:04d} AS t{join}"
            )
        statements.append(
            "CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN NEW.created := now(); RETURN NEW; END $$"
        )
        statements += [
            f"CREATE TRIGGER touch BEFORE INSERT OR UPDATE ON many.table_{k:04d} "
            "FOR EACH ROW EXECUTE FUNCTION app.touch()"
            for k in range(TRIGGERS)
        ]
        await conn.execute("; ".join(statements))
        await conn.execute("ANALYZE; CREATE TABLE closure_ready ()")
        log(f"prepared in {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()
    return url


async def closure(server_url: str) -> dict[str, Any]:
    """Cold and warm closures of each statement, interleaved with raw asyncpg running the statement itself."""
    url = await prepare_closure_database(server_url)
    databases = Databases(url, Guards(30, 10, 30))
    place = Place(databases, databases.default_database)
    conn = await asyncpg.connect(url)
    warm = Closures()
    out: dict[str, Any] = {}
    try:

        def cold(sql: str) -> Timed:
            facts = analyze(sql)

            async def once() -> float:
                started = time.perf_counter()
                await Closures().of(place, facts)
                return time.perf_counter() - started

            return once

        def cached(sql: str) -> Timed:
            facts = analyze(sql)

            async def once() -> float:
                started = time.perf_counter()
                await warm.of(place, facts)
                return time.perf_counter() - started

            return once

        def raw(sql: str) -> Timed:
            async def once() -> float:
                started = time.perf_counter()
                transaction = conn.transaction()
                await transaction.start()
                try:
                    await conn.fetch(sql)
                finally:
                    await transaction.rollback()
                return time.perf_counter() - started

            return once

        log("the executable closure…")
        for label, sql in CLOSURE_STATEMENTS.items():
            closure_of = (await Closures().of(place, analyze(sql)))[0]
            stats = await _interleaved({"cold": cold(sql), "warm": cached(sql), "raw": raw(sql)}, 30, warmup=3)
            out[label] = {**stats, "sql": sql, "items": len(closure_of.reached)}
    finally:
        await conn.close()
        await databases.close()
    return out


def main() -> None:
    http_missing = http_transport_missing()
    with bench_database() as url, tempfile.TemporaryDirectory(prefix="neon-mcp-bench-home-") as home:
        env = server_env(url, Path(home))
        if http_missing is None:
            with http_server(BENCH_SERVER, env) as served:
                figures = asyncio.run(overhead(url, env, served))
        else:
            figures = asyncio.run(overhead(url, env, None))
        big = asyncio.run(big_and_schema(url, env))
        closures = asyncio.run(closure(url))

    section(
        "MCP overhead: neon-mcp, the reference Node server, a Python peer and raw asyncpg",
        f"{CALLS} warm calls per path, interleaved across every path, one call each per round in an order shuffled "
        f"every round, with a pause of {PAUSE * 1000:.0f} ms after each call (so noise hits each alike, and work a "
        "server does after its answer, such as neon-mcp's check of the connection after a read, is done before the "
        "next call is timed, as between an agent's calls; it counts in CPU per call; each call also finds its "
        "server, and PostgreSQL's backend, idle since its last turn), one client at a time (the SDK's `Client`, "
        f"which also validates structured content). The 100-row query is `{SAMPLE_QUERY}` (int, text, numeric, "
        "timestamptz, boolean). calls/s = sequential calls per second of one client. The Node server "
        "(`@modelcontextprotocol/server-postgres` 0.6.2, its `query` tool) runs the SQL as sent inside `BEGIN "
        "TRANSACTION READ ONLY` and answers pretty-printed JSON: no parsing, policy, caps or fencing. The Python peer, "
        f"postgres-mcp {PEER_VERSION} (crystaldba's; MCP SDK 1.x on Python 3.12 or newer, its `execute_sql` tool), "
        "runs with `--access-mode=restricted`: statements checked with pglast, read-only transactions, a time limit; "
        "it answers rows as Python reprs, no structured content. Server CPU per call: "
        f"{CALLS} calls in a block, the server process's CPU time divided by the calls.",
        ["path", "median", "p99", "calls/s", "ratio (median)", "ratio to the Node server"],
        _overhead_rows(figures, http_missing),
    )

    b = big["big"]
    answer = b["answer"]
    before, after = b["before"], b["after"]
    section(
        "Big results",
        f"`SELECT * FROM big` ({answer['row_count']} rows returned of {BIG_ROWS:,}"
        f", truncated={answer['truncated']}) through `run_sql` over stdio, 20 calls interleaved with the baseline: raw "
        f"asyncpg fetching the same {answer['row_count'] + 1} rows through a cursor in a read-only transaction. "
        "Server memory from `/proc` (VmRSS, Pss, VmHWM = peak) before and after.",
        ["figure", "value", "p99", "baseline in the same run", "ratio"],
        [
            _against(f"`SELECT *` on {BIG_ROWS:,} rows → capped answer", b["ours"], "raw asyncpg cursor", b["raw"]),
            ["… against the target", ms(b["ours"].median), "—", "target 100 ms", of_target(b["ours"].median, 0.1)],
            [
                "server RSS / PSS before → after 20 × `SELECT *`",
                f"{mb(before['rss'])} / {mb(before['pss'])} → {mb(after['rss'])} / {mb(after['pss'])}",
                "—",
                "before",
                ratio(after["rss"], before["rss"]),
            ],
            [
                "server peak RSS (VmHWM) before → after",
                f"{mb(before['peak'])} → {mb(after['peak'])}",
                "—",
                "before",
                f"{ratio(after['peak'], before['peak'])} (flat)"
                if after["peak"] <= before["peak"] * 1.05
                else ratio(after["peak"], before["peak"]),
            ],
        ],
    )

    s = big["schema"]
    section(
        "Schema",
        f"`describe_schema` over stdio on a database of {TABLES:,} tables (each with a primary key, an index, a "
        "check, a default and a comment), 20 calls interleaved with the baseline: raw asyncpg running the same "
        "catalog queries (2 for the overview, 7 for a table) in one read-only transaction. `compare_schemas` is "
        "measured on local Neon (below).",
        ["figure", "median", "p99", "baseline in the same run", "ratio"],
        [
            _against(
                f"`describe_schema` overview, {big['overview_relations']:,} relations",
                s["overview"],
                "catalog queries",
                s["raw overview"],
            ),
            [
                "… against the target",
                ms(s["overview"].median),
                "—",
                "target 300 ms",
                of_target(s["overview"].median, 0.3),
            ],
            [
                "overview text",
                f"{big['overview_bytes'] / 1000:.1f} kB",
                "—",
                "target 100 kB",
                of_target(big["overview_bytes"], 100_000),
            ],
            _against(f"`describe_schema(table='{TABLE}')`", s["table"], "catalog queries", s["raw table"]),
            ["table text", f"{big['table_bytes'] / 1000:.1f} kB", "—", "—", "—"],
        ],
    )

    section(
        "The executable closure",
        "What each statement sets off (views, triggers, defaults, checks, policies, function bodies …), resolved from "
        f"the catalog before the policy decides (`server.sql.closure`), on a database of {TABLES:,} tables, "
        f"{FUNCTIONS} "
        f"functions (SQL and PL/pgSQL, in chains of 10) and {VIEWS} views (each calling a function, in chains of 5), "
        f"with a trigger on {TRIGGERS} tables. Cold: a fresh cache, so every object is looked up (one catalog query "
        "per level of the walk); warm: the cache of a running server (it lasts 5 s, and DDL through the server clears "
        "it). 30 rounds interleaved with the baseline: raw asyncpg running the statement itself on a held connection "
        "(in a transaction rolled back).",
        [
            "statement",
            "objects reached",
            "cold closure (median)",
            "p99",
            "warm closure",
            "the statement itself",
            "ratio",
        ],
        [
            [
                f"{label}: `{figures_['sql']}`",
                figures_["items"],
                ms(figures_["cold"].median),
                ms(figures_["cold"].p99),
                ms(figures_["warm"].median, 3),
                ms(figures_["raw"].median),
                f"cold {ratio(figures_['cold'].median, figures_['raw'].median)} the statement",
            ]
            for label, figures_ in closures.items()
        ],
    )


if __name__ == "__main__":
    main()
