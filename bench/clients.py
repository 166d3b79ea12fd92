"""neon-mcp against the reference Node server as real clients see them: the TypeScript SDK's client (what Claude Code
and most IDEs use) beside the Python SDK's, in one run.

Each client holds its own pair of servers over stdio (neon-mcp with its benchmark tools, and
``@modelcontextprotocol/server-postgres`` 0.6.2) and lists their tools first, as real clients do (so both validate
structured content against the output schemas). Within a client the calls are interleaved (neon-mcp
``select 1``, Node ``select 1``, neon-mcp 100 rows, Node 100 rows, each once per round, in an order shuffled every
round, so that no call always follows the same other one, and ``PAUSE`` after each call, so that a server's work
after its answer is not billed to the next call); the two clients take turns in blocks of ``BLOCK`` rounds, so the
machine's noise hits every path alike. Targets (issue 16): ``select 1`` ≤ 1.4× the Node server with the Python client
and ≤ 1.2× with the TypeScript one; 100 rows ≤ 1.5× and ≤ 1.3×.

Run: ``.venv/bin/python bench/clients.py`` after ``bench/run`` has installed the Node packages (its own PostgreSQL
cluster unless ``BENCH_DATABASE_URL`` is set). Without npm's packages its rows say "not measured".
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from _common import (
    BENCH_SERVER,
    NODE_SERVER,
    PAUSE,
    ROOT,
    SAMPLE_QUERY,
    Stats,
    bench_database,
    call,
    log,
    ms,
    of_target,
    ratio,
    section,
    server_env,
    stdio_server,
)
from mcp import Client

TS_SDK = ROOT / ".venv" / "bench-ts"
"""Where ``bench/run`` installs the TypeScript SDK (``@modelcontextprotocol/sdk``); the driver is copied there, since
an ES module finds its packages from its own directory."""
CALLS = int(os.environ.get("BENCH_CALLS", "500"))
BLOCK = 50
WARMUP = 20
QUERIES = {"select 1": "select 1", "100 rows": SAMPLE_QUERY}
TARGETS = {("python", "select 1"): 1.4, ("typescript", "select 1"): 1.2, ("python", "100 rows"): 1.5,
           ("typescript", "100 rows"): 1.3}  # fmt: skip
TOOLS = {"ours": ("run_sql", "sql"), "node": ("query", "sql")}
FLOOR = "no-op"
"""neon-mcp's ``noop`` tool (``bench/bench_server.py``): the MCP SDK's floor on the same server and client, which
no tool answers under; the targets leave ``target × Node − floor`` for all of ``run_sql``'s own work."""
CALL_ORDER = [(server, query) for query in QUERIES for server in TOOLS] + [("ours", FLOOR)]


_SHUFFLE = random.Random(0).shuffle
"""Each round calls every entry once in a new order: no call always follows the same other one."""


def _calls() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (server, "noop", {}) if query == FLOOR else (server, TOOLS[server][0], {TOOLS[server][1]: QUERIES[query]})
        for server, query in CALL_ORDER
    ]


def missing() -> str | None:
    """Why this cannot be measured here, or None."""
    if not NODE_SERVER.exists():
        return "not measured: the reference Node server is not installed (bench/run installs it with npm)"
    if not (TS_SDK / "node_modules" / "@modelcontextprotocol" / "sdk").exists() or shutil.which("node") is None:
        return "not measured: the TypeScript SDK is not installed (bench/run installs it with npm)"
    return None


class TypeScriptClient:
    """The Node driver (``bench/ts_client.mjs``) holding the TypeScript SDK's clients of both servers."""

    def __init__(self, servers: dict[str, dict[str, Any]]) -> None:
        script = TS_SDK / "ts_client.mjs"
        shutil.copyfile(ROOT / "bench" / "ts_client.mjs", script)
        self._process = subprocess.Popen(
            ["node", str(script), json.dumps(servers)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def block(self, rounds: int) -> list[list[float]]:
        """``rounds`` interleaved rounds; seconds per call, by entry of ``CALL_ORDER``."""
        assert self._process.stdin is not None and self._process.stdout is not None
        calls = [[server, tool, arguments] for server, tool, arguments in _calls()]
        self._process.stdin.write(json.dumps({"calls": calls, "rounds": rounds, "pause_ms": PAUSE * 1000}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the TypeScript client stopped (exit {self._process.wait()})")
        return [[sample / 1000 for sample in samples] for samples in json.loads(line)["samples"]]

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=60)


async def _python_block(clients: dict[str, Client], rounds: int) -> list[list[float]]:
    samples: list[list[float]] = [[] for _ in CALL_ORDER]
    order = list(enumerate(_calls()))
    for _ in range(rounds):
        _SHUFFLE(order)
        for i, (server, tool, arguments) in order:
            samples[i].append((await call(clients[server], tool, arguments))[0])
            await asyncio.sleep(PAUSE)
    return samples


async def measure(url: str, env: dict[str, str]) -> dict[tuple[str, str, str], Stats]:
    """Per (client, server, query): the statistics of ``CALLS`` calls."""
    ours, node = stdio_server(BENCH_SERVER, env), stdio_server([str(NODE_SERVER), url], env)
    servers = {
        name: {"command": p.command, "args": p.args, "env": p.env} for name, p in (("ours", ours), ("node", node))
    }
    samples: dict[tuple[str, str, str], list[float]] = {}
    typescript = TypeScriptClient(servers)
    try:
        async with AsyncExitStack() as stack:
            python = {"ours": await stack.enter_async_context(Client(ours)),
                      "node": await stack.enter_async_context(Client(node))}  # fmt: skip
            for client in python.values():
                await client.list_tools()
            typescript.block(WARMUP)
            await _python_block(python, WARMUP)
            log(f"clients: {len(CALL_ORDER)} paths × {CALLS} calls per client, blocks of {BLOCK} taking turns…")
            for _ in range(CALLS // BLOCK):
                for kind, block in (
                    ("typescript", typescript.block(BLOCK)),
                    ("python", await _python_block(python, BLOCK)),
                ):
                    for (server, query), values in zip(CALL_ORDER, block, strict=True):
                        samples.setdefault((kind, server, query), []).extend(values)
    finally:
        typescript.close()
    return {key: Stats.of(values) for key, values in samples.items()}


def main() -> None:
    why_not = missing()
    stats: dict[tuple[str, str, str], Stats] = {}
    if why_not is None:
        with bench_database() as url, tempfile.TemporaryDirectory(prefix="neon-mcp-bench-home-") as home:
            stats = asyncio.run(measure(url, server_env(url, Path(home))))
    rows: list[list[object]] = []
    for kind, label in (("python", "Python SDK `Client`"), ("typescript", "TypeScript SDK `Client`")):
        for query, text in (("select 1", "`select 1`"), ("100 rows", "100 rows")):
            target = TARGETS[(kind, query)]
            if why_not is not None:
                rows.append([label, text, why_not, "", "", "", ""])
                continue
            o, n, floor = stats[(kind, "ours", query)], stats[(kind, "node", query)], stats[(kind, "ours", FLOOR)]
            budget = target * n.median - floor.median
            verdict = (
                f"≤ {target}×: {of_target(o.median / n.median, target)}; leaves {ms(budget, 3)} over the no-op for "
                f"run_sql's own work, which takes {ms(o.median - floor.median, 3)}"
            )
            rows.append(
                [label, text, f"{ms(o.median, 3)} / {ms(o.p99, 3)}", f"{ms(n.median, 3)} / {ms(n.p99, 3)}",
                 ratio(o.median, n.median), ratio(o.p99, n.p99), verdict]
            )  # fmt: skip
        if why_not is None:
            floor, n = stats[(kind, "ours", FLOOR)], stats[(kind, "node", "select 1")]
            rows.append(
                [label, "no-op tool on neon-mcp (the SDK's floor: no tool answers faster)",
                 f"{ms(floor.median, 3)} / {ms(floor.p99, 3)}", f"`select 1`: {ms(n.median, 3)} / {ms(n.p99, 3)}",
                 ratio(floor.median, n.median), ratio(floor.p99, n.p99), "—"]
            )  # fmt: skip
    section(
        "Real clients: the TypeScript and Python SDKs, neon-mcp against the reference Node server",
        f"Over stdio, {CALLS} warm calls per path and client: `run_sql` on neon-mcp, `query` on "
        "`@modelcontextprotocol/server-postgres` 0.6.2 (`BEGIN TRANSACTION READ ONLY`, no parsing, policy, caps or "
        "fencing), interleaved within each client (one call per path and round, in an order shuffled every round, "
        f"a pause of {PAUSE * 1000:.0f} ms after each call); "
        f"the two clients take turns in blocks of {BLOCK} rounds. In the same rounds, neon-mcp's no-op tool (the MCP "
        "SDK's floor on the same server and client): a target leaves target × Node − floor for all of `run_sql`'s "
        "own work (parsing, policy, the round trip to PostgreSQL, the answer). Each client listed the tools first, so "
        "it validates structured content against the output schemas, as Claude Code does. The 100 rows are "
        f"`{SAMPLE_QUERY}`.",
        ["client", "query", "neon-mcp median / p99", "Node server median / p99", "ratio (median)", "ratio (p99)",
         "target"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
