"""What the benchmark scripts share: statistics and Markdown, the benchmark database, servers over stdio and HTTP,
and the memory and CPU time of a process.

Each script prints one Markdown section (a heading, a line on what was measured, a table) on stdout and its progress
on stderr; ``bench/report.py`` runs them all and writes ``docs/benchmarks.md``. A script finds the prepared
benchmark database in ``BENCH_DATABASE_URL`` (set by the report, which builds it once), or starts its own.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from mcp import Client, StdioServerParameters

if TYPE_CHECKING:
    from server.local_neon.clusters import Cluster

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).parent / "neon-mcp")
BENCH_SERVER = [sys.executable, str(ROOT / "bench" / "bench_server.py")]
"""neon-mcp's own command line, with the benchmark tools ``noop`` and ``memory`` added (``bench/bench_server.py``)."""
NODE_SERVER = ROOT / ".venv" / "bench-node" / "node_modules" / ".bin" / "mcp-server-postgres"
"""The reference Node PostgreSQL MCP server (``@modelcontextprotocol/server-postgres``), installed by ``bench/run``."""
PEER_SERVER = ROOT / ".venv" / "bench-peer" / "bin" / "postgres-mcp"
"""A PostgreSQL MCP server written in Python, for comparison: ``postgres-mcp`` (crystaldba), installed by
``bench/run`` where a Python 3.12 or newer is found (it needs one)."""
TOKEN = "bench-" + secrets.token_hex(16)
"""Bearer token of the HTTP servers a benchmark starts."""

BIG_ROWS = int(os.environ.get("BENCH_BIG_ROWS", "10000000"))
TABLES = 2_000
SAMPLE_QUERY = "SELECT * FROM sample"
"""The 100-row query: an int, text, numeric, timestamptz and boolean per row."""
PAUSE = 0.003
"""Seconds between two timed calls of an interleaved round: a server's work after its answer (neon-mcp checks the
connection's session state after a read; HTTP servers close their streams) is done before the next call is timed, as
between an agent's calls, instead of being billed to whichever path comes next. It still counts in CPU per call."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- statistics and Markdown ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Median, 99th percentile and sequential calls per second of a list of durations in seconds."""

    median: float
    p99: float
    per_second: float
    count: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Stats:
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return cls(statistics.median(ordered), p99, len(ordered) / sum(ordered), len(ordered))


def ms(seconds: float, digits: int = 2) -> str:
    return f"{seconds * 1000:.{digits}f} ms"


def ratio(value: float, baseline: float) -> str:
    """``value / baseline`` as ``3.1×`` (two decimals under 10)."""
    quotient = value / baseline
    return f"{quotient:.2f}×" if quotient < 10 else f"{quotient:.0f}×"


def of_target(value: float, target: float) -> str:
    """``0.42 of the target``, with ``(met)`` or ``(NOT met)``."""
    return f"{value / target:.2f} of the target ({'met' if value <= target else 'NOT met'})"


def section(title: str, about: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a Markdown section: ``## title``, a paragraph, and a table."""
    print(f"## {title}\n\n{about}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print(flush=True)


# --- the benchmark database ---------------------------------------------------------------------------------------


FAST = {"fsync": "off", "synchronous_commit": "off", "shared_buffers": "256MB", "max_wal_size": "4GB"}
"""Settings of the benchmark database: durability off (nothing here needs to survive a crash), room in memory."""


@contextmanager
def bench_cluster(prefix: str = "neon-mcp-bench-", settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A fresh, running PostgreSQL cluster (``FAST`` settings unless others are given), removed afterwards."""
    from server.local_neon.clusters import Cluster

    base = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        base.chmod(0o711)  # PostgreSQL runs as nobody, which must reach its data directory
    cluster = Cluster(base / "pg")
    try:
        cluster.init(settings=FAST if settings is None else settings)
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def bench_database() -> Iterator[str]:
    """The URL of the prepared benchmark database: ``BENCH_DATABASE_URL``, or a cluster of its own."""
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return
    with bench_cluster() as cluster:
        import asyncio

        asyncio.run(prepare_database(cluster.dsn()))
        yield cluster.dsn()


async def prepare_database(url: str) -> None:
    """Create, unless already there: ``big`` (``BIG_ROWS`` rows), ``sample`` (100 rows) and 2,000 tables in ``many``."""
    conn = await asyncpg.connect(url)
    try:
        if await conn.fetchval("SELECT to_regclass('public.bench_ready') IS NOT NULL"):
            return
        started = time.perf_counter()
        log(f"preparing the benchmark database ({BIG_ROWS:,} rows, {TABLES:,} tables)…")
        await conn.execute(
            "CREATE UNLOGGED TABLE big AS SELECT g AS id, md5(g::text) AS payload, now() AS at, g % 100 AS bucket "
            f"FROM generate_series(1, {BIG_ROWS}) g"
        )
        await conn.execute(
            "CREATE TABLE sample AS SELECT g AS id, 'name ' || g AS name, (g * 1.25)::numeric(12, 2) AS amount, "
            "now() - g * interval '1 hour' AS created, g % 2 = 0 AS active FROM generate_series(1, 100) g"
        )
        await create_tables(conn, "many", TABLES)
        await conn.execute("ANALYZE")
        await conn.execute("CREATE TABLE bench_ready ()")
        log(f"prepared in {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()


async def create_tables(conn: asyncpg.Connection, schema: str, count: int) -> None:
    """Schema ``schema`` with ``count`` tables ``table_0000``…, each with a primary key, an index, a check, a default
    and a comment."""
    await conn.execute(f"CREATE SCHEMA {schema}")
    for start in range(0, count, 200):
        await conn.execute(
            " ".join(
                f"CREATE TABLE {schema}.table_{i:04d} (id bigint PRIMARY KEY, name text NOT NULL, created timestamptz "
                f"DEFAULT now(), amount numeric CHECK (amount >= 0)); CREATE INDEX ON {schema}.table_{i:04d} (name); "
                f"COMMENT ON TABLE {schema}.table_{i:04d} IS 'table number {i}';"
                for i in range(start, min(count, start + 200))
            )
        )


# --- processes -----------------------------------------------------------------------------------------------


def process_memory(pid: int | str = "self") -> dict[str, int]:
    """Memory of a process in kB: ``rss`` and ``peak`` (VmHWM) from its status, ``pss`` from its smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":")
            fields["rss" if key == "VmRSS" else "peak"] = int(value.split()[0])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            fields["pss"] = int(line.split()[1])
    return fields


def cpu_seconds(pid: int | str = "self") -> float:
    """User and system CPU time a process has used."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def mb(kilobytes: float) -> str:
    return f"{kilobytes / 1024:.1f} MB"


def server_env(url: str, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a server under test: this one without ``NEON_*`` settings, serving ``url``, its data and
    its tool catalog under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEON_", "BENCH_")) and k != "DATABASE_URL"}
    env.update(DATABASE_URL=url, NEON_MCP_HOME=str(home), NEON_MCP_LOG_LEVEL="WARNING", NEON_MCP_HTTP_TOKEN=TOKEN)
    env.update(NEON_MCP_CACHE_DIR=str(home / "cache"))
    env.update(extra)
    return env


def stdio_server(command: Sequence[str], env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=command[0], args=list(command[1:]), env=env)


@dataclass(frozen=True)
class HTTPServer:
    url: str
    pid: int


@contextmanager
def http_server(command: Sequence[str], env: dict[str, str], *, timeout: float = 60) -> Iterator[HTTPServer]:
    """Run ``command serve --transport http --port 0`` until the block ends; raises ``RuntimeError`` if it cannot."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [*command, "serve", "--transport", "http", "--port", "0"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                stderr.seek(0)
                text = stderr.read().decode(errors="replace")
                found = re.search(r"serving MCP over streamable HTTP at (http://\S+)", text)
                if found:
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the HTTP server did not start: {text[-2000:]}")
                time.sleep(0.05)
            yield HTTPServer(found.group(1), process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def http_transport_missing() -> str | None:
    """Why neon-mcp cannot serve streamable HTTP here, or None."""
    usage = subprocess.run([EXE, "serve", "--help"], capture_output=True, text=True, check=False).stdout
    return None if re.search(r"--transport \{[^}]*\bhttp\b", usage) else "not measured: HTTP transport missing"


@asynccontextmanager
async def http_client(url: str, *, mode: str = "auto") -> AsyncIterator[Client]:
    """An MCP client (the SDK's) of the streamable HTTP server at ``url``, sending the bearer token.

    ``mode``: ``auto`` (the SDK's default: protocol 2026-07-28, one POST per request) or ``legacy`` (the
    ``initialize`` handshake: a session, answers as event streams)."""
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


async def call(client: Client, name: str, arguments: dict[str, Any]) -> tuple[float, Any]:
    """Call a tool; its duration and result. Raises ``RuntimeError`` if the result is an error."""
    started = time.perf_counter()
    result = await client.call_tool(name, arguments)
    elapsed = time.perf_counter() - started
    if result.is_error:
        raise RuntimeError(f"{name} failed: {result.content}")
    return elapsed, result
