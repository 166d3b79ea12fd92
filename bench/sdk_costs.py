"""What only the MCP SDK can remove, each cost measured against a baseline in the same run (``docs/sdk-upstream.md``).

1. Per stdio call: a no-op tool on a bare ``MCPServer`` (``bench/noop_server.py``) served through the SDK's
   ``stdio_server`` (worker-thread hops), through neon-mcp's native pipes (on asyncio's loop and on uvloop), and
   through the native pipes with the SDK's OpenTelemetry middleware off, its opening-request replay relay replaced by
   a relay-free stream, or both. Latency through the SDK's Python client, interleaved; the server's CPU per call in
   blocks (the least of 3 blocks each).
2. In process, per call: the Python client's validation of ``run_sql``'s structured content against its output
   schema (the client keeps a compiled validator), and the streamable HTTP server's walk of the tool's input schema
   for ``Mcp-Param`` headers, which it repeats on every ``tools/call`` with arguments.
3. Where a call's time goes inside neon-mcp's server: a no-op, ``run_sql('select 1')`` and a 100-row ``run_sql``,
   interleaved with a pause after each call, with a clock at each phase (``bench/phased_server.py``).
4. The SDK's registration of one tool (``Tool.from_function``: the arguments model, its JSON schema, the output
   model's adapter and JSON schema), for each of neon-mcp's tools: every tool at a start without a catalog, one tool
   at its first call otherwise.

Run: ``.venv/bin/python bench/sdk_costs.py`` (its own PostgreSQL cluster unless ``BENCH_DATABASE_URL`` is set).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from _common import PAUSE, ROOT, SAMPLE_QUERY, Stats, bench_database, log, ms, ratio, section, server_env
from mcp import Client, StdioServerParameters

CALLS = int(os.environ.get("BENCH_CALLS", "500"))
MODES = {
    "sdk": "the SDK's `stdio_server` (a worker-thread hop per line read and per answer written)",
    "native-asyncio": "native pipes (neon-mcp's transport), asyncio's event loop",
    "native": "native pipes, uvloop (what `neon-mcp serve` runs with a tracer configured)",
    "native-no-otel": "… without the SDK's OpenTelemetry middleware (what `neon-mcp serve` runs with no tracer)",
    "native-no-relay": "… without the opening request's replay relay (a task and memory stream per message)",
    "native-bare": "… without both",
}


async def _stdio(calls: int) -> tuple[dict[str, Stats], dict[str, float]]:
    async with AsyncExitStack() as stack:
        clients: dict[str, Client] = {}
        for mode in MODES:
            args = [str(ROOT / "bench" / "noop_server.py"), mode]
            params = StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ))
            clients[mode] = await stack.enter_async_context(Client(params))
        samples: dict[str, list[float]] = {mode: [] for mode in clients}
        log(f"stdio: {len(clients)} servers × {calls} no-op calls, interleaved…")
        order, shuffle = list(clients.items()), random.Random(0).shuffle
        for round_ in range(calls + 50):
            shuffle(order)  # no server always follows the same other one
            for mode, client in order:
                started = time.perf_counter()
                await client.call_tool("noop", {})
                if round_ >= 50:  # warm-up rounds are not counted
                    samples[mode].append(time.perf_counter() - started)
        log("server CPU per call…")
        cpu: dict[str, float] = {}
        for _ in range(3):  # blocks alternate between servers; the least block of each counts (noise only adds)
            for mode, client in clients.items():
                before = float((await client.call_tool("cpu", {})).structured_content["result"])  # type: ignore[index]
                for _ in range(calls):
                    await client.call_tool("noop", {})
                after = float((await client.call_tool("cpu", {})).structured_content["result"])  # type: ignore[index]
                cpu[mode] = min(cpu.get(mode, float("inf")), (after - before) / (calls + 1))
    return {mode: Stats.of(values) for mode, values in samples.items()}, cpu


PHASED = {"no-op": ("noop", {}), "`run_sql('select 1')`": ("run_sql", {"sql": "select 1"}),
          "`run_sql`, 100 rows": ("run_sql", {"sql": SAMPLE_QUERY})}  # fmt: skip
"""The calls whose time inside the server is split into phases (``bench/phased_server.py``)."""


async def _phases(url: str, calls: int) -> tuple[dict[str, Stats], dict[str, dict[str, float]]]:
    """Client-side latency per call of ``PHASED``, interleaved with ``PAUSE`` after each call, and the server's
    medians per phase (keyed by ``phased_server.call_key``)."""
    with tempfile.TemporaryDirectory(prefix="neon-mcp-bench-home-") as home:
        env = server_env(url, Path(home))
        params = StdioServerParameters(command=sys.executable, args=[str(ROOT / "bench" / "phased_server.py")], env=env)
        async with Client(params) as client:
            await client.list_tools()  # as real clients do: the client validates structured content
            samples: dict[str, list[float]] = {label: [] for label in PHASED}
            order, shuffle = list(PHASED.items()), random.Random(0).shuffle
            log(f"phases: {len(PHASED)} calls × {calls}, interleaved…")
            for round_ in range(calls + 50):
                shuffle(order)
                for label, (tool, arguments) in order:
                    started = time.perf_counter()
                    await client.call_tool(tool, arguments)
                    if round_ >= 50:
                        samples[label].append(time.perf_counter() - started)
                    await asyncio.sleep(PAUSE)
                if round_ == 49:
                    await client.call_tool("phases", {})  # forget the warm-up
            phases = (await client.call_tool("phases", {})).structured_content
    assert phases is not None
    return {label: Stats.of(values) for label, values in samples.items()}, phases


def _per_call(fn: Callable[[], object], repeat: int = 2000) -> float:
    """Least CPU seconds per call of ``fn`` over 5 runs of ``repeat`` calls."""
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(repeat):
            fn()
        best = min(best, (time.process_time() - started) / repeat)
    return best


async def _in_process(url: str) -> dict[str, Any]:
    """Client validation and the header walk per call; the SDK's registration per tool."""
    from mcp.shared.inbound import validate_mcp_param_headers

    import tools as families
    from server.mcp import Offer
    from server.mcp.assembly import build_server
    from server.settings import Settings

    with tempfile.TemporaryDirectory(prefix="neon-mcp-bench-home-") as home:
        settings = Settings(database_url=url, home=Path(home), cache_dir=Path(home) / "cache", access_mode="full")
        server = build_server(settings)
        async with Client(server) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            select_1 = (await client.call_tool("run_sql", {"sql": "select 1"})).structured_content
            rows = (await client.call_tool("run_sql", {"sql": SAMPLE_QUERY})).structured_content
            session = client.session
            validator = session._output_schema_validator("run_sql", tools["run_sql"].output_schema or {})
    schema = tools["run_sql"].input_schema
    registered = {spec.name: spec for spec in families.registered(Offer.of(settings))}
    registration = {
        name: _per_call(lambda spec=spec: spec.build(), repeat=5) for name, spec in sorted(registered.items())
    }
    return {
        "validate select 1": _per_call(lambda: list(validator.iter_errors(select_1))),
        "validate 100 rows": _per_call(lambda: list(validator.iter_errors(rows)), repeat=200),
        "header walk": _per_call(lambda: validate_mcp_param_headers(schema, {"sql": "select 1"}, {})),
        "registration": registration,
    }


def main() -> None:
    stats, cpu = asyncio.run(_stdio(CALLS))
    with bench_database() as url:
        costs = asyncio.run(_in_process(url))
        latency, phases = asyncio.run(_phases(url, CALLS))
    sdk, native = stats["sdk"], stats["native"]
    rows = []
    for mode, label in MODES.items():
        against = "sdk" if mode in ("native", "native-asyncio") else "native"
        rows.append(
            [label, ms(stats[mode].median, 3), ms(stats[mode].p99, 3), ms(cpu[mode], 3),
             f"{ratio(cpu[mode], cpu[against])} of {'the SDK' if against == 'sdk' else 'native'}'s "
             f"({ms(cpu[mode] - cpu[against], 3)})",
             ratio(stats[mode].median, (sdk if against == "sdk" else native).median)]
        )  # fmt: skip
    rows[0][4] = rows[0][5] = "—"
    section(
        "What only the SDK can remove: per stdio call",
        f"A no-op tool on a bare `MCPServer` (`bench/noop_server.py`), {CALLS} calls per server interleaved (one "
        "call each per round, in an order shuffled every round) through the SDK's Python client, then the server's "
        f"CPU time per call in blocks of {CALLS} calls (the least of 3 blocks each). The last three rows switch SDK "
        "internals off to size upstream proposals (`docs/sdk-upstream.md`); neon-mcp itself runs the fourth row "
        "when no tracer is configured (it leaves the OpenTelemetry middleware out then), else the third.",
        ["server", "median", "p99", "server CPU per call", "CPU against its baseline (difference)",
         "latency against its baseline"],
        rows,
    )  # fmt: skip
    from phased_server import PHASES, call_key

    by_call = {label: phases[call_key(*call)] for label, call in PHASED.items()}
    noop, select_1 = by_call["no-op"], by_call["`run_sql('select 1')`"]
    phase_rows = [
        [name, *(ms(by_call[label][name], 3) for label in PHASED), f"{(select_1[name] - noop[name]) * 1000:+.3f} ms"]
        for name in PHASES
    ]
    seen = [latency[label].median for label in PHASED]
    phase_rows.append(
        ["the client's time per call (median; Python SDK `Client`)", *(ms(value, 3) for value in seen),
         f"{(seen[1] - seen[0]) * 1000:+.3f} ms"]
    )  # fmt: skip
    section(
        "Where a call's time goes in the server",
        f"neon-mcp's server over stdio with a clock at each phase of a `tools/call` (`bench/phased_server.py`: the "
        f"SDK's internals and the transport wrapped, the clocks add about a microsecond each), {CALLS} calls of each "
        f"interleaved through the SDK's Python client, a pause of {PAUSE * 1000:.0f} ms after each call (as in the "
        "overhead table: each call finds the server idle); medians per phase. What `run_sql` adds to a no-op in the "
        "SDK's phases (validation of its arguments, its resolver's machinery, the conversion and serialization of a "
        "larger answer) only the SDK can make cheaper; the resolver and the function are neon-mcp's (the function "
        "includes the round trip to PostgreSQL).",
        ["phase", *PHASED, "`select 1` − no-op"],
        phase_rows,
    )
    registration: dict[str, float] = costs["registration"]
    total = sum(registration.values())
    heaviest = sorted(registration, key=registration.__getitem__, reverse=True)[:3]
    section(
        "What only the SDK can remove: in process",
        "CPU time per call, the least of 5 runs. Client validation: the SDK's Python client validating `run_sql`'s "
        "structured content against its output schema (compiled once per tool; the TypeScript client does the same "
        "with Ajv). Header walk: the streamable HTTP server's check of `Mcp-Param` headers against the called tool's "
        "input schema, repeated on every `tools/call` with arguments. Registration: the SDK's `Tool.from_function` "
        "for each of neon-mcp's tools (access mode full, a database URL), paid for every tool at a start without a "
        "catalog (the first after installing or changing neon-mcp), else for one tool at its first call.",
        ["cost", "CPU", "per", "note"],
        [
            ["client validation, `run_sql('select 1')`", ms(costs["validate select 1"], 3), "call", "in the client"],
            ["client validation, `run_sql`, 100 rows", ms(costs["validate 100 rows"], 3), "call", "in the client"],
            ["`Mcp-Param` header walk, `run_sql`", ms(costs["header walk"], 3), "HTTP call", "in the server"],
            [f"tool registration, {len(registration)} tools", ms(total, 1), "start without a catalog",
             "heaviest: " + ", ".join(f"`{name}` {ms(registration[name], 1)}" for name in heaviest)],
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
