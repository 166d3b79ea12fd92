"""``neon-mcp demo``: the SQL core end to end, the way an agent meets it.

Starts a throwaway PostgreSQL cluster, runs ``neon-mcp serve`` as a subprocess over stdio, and drives it with a real
MCP client: schema with sample data, an overview and a table, reads with parameters, a warning, a refusal, and a
destructive statement confirmed by the human (elicitation) and by ``confirm_operation``. Each step is printed.
Exits 0 when every step behaved as expected. The Neon workflow (branches, migrations) joins it in later issues.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

__all__ = ["run_demo"]

_SAMPLE = [
    "CREATE SCHEMA auslex",
    "CREATE TABLE auslex.users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL UNIQUE, "
    "country text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())",
    "COMMENT ON TABLE auslex.users IS 'People who signed up'",
    "CREATE TABLE auslex.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "user_id bigint NOT NULL REFERENCES auslex.users (id), total numeric(10, 2) NOT NULL, "
    "placed_at timestamptz NOT NULL DEFAULT now())",
    "INSERT INTO auslex.users (email, country) SELECT 'user' || g || '@example.com', "
    "(ARRAY['AU', 'NZ', 'DE'])[1 + g % 3] FROM generate_series(1, 500) g",
    "INSERT INTO auslex.orders (user_id, total) SELECT 1 + g % 500, (g % 97) + 0.99 FROM generate_series(1, 5000) g",
]


class _Demo:
    def __init__(self) -> None:
        self.steps = 0
        self.failures: list[str] = []

    def step(self, title: str) -> None:
        self.steps += 1
        print(f"\n── {self.steps}. {title}")

    def show(self, result: Any, *, lines: int = 14) -> None:
        text = "\n".join(block.text for block in result.content if block.type == "text")
        body = text.splitlines()
        shown = body[:lines] + ([f"… ({len(body) - lines} more lines)"] if len(body) > lines else [])
        print(textwrap.indent("\n".join(shown), "   │ "))

    def expect(self, condition: bool, what: str) -> None:
        print(f"   {'✓' if condition else '✗'} {what}")
        if not condition:
            self.failures.append(what)


def _read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def _walk(demo: _Demo, params: Any, audit_log: Path) -> None:
    from mcp import Client
    from mcp_types import ElicitResult, ErrorData

    asked: list[str] = []

    async def human(context: Any, params: Any) -> ElicitResult | ErrorData:
        asked.append(params.message)
        print(textwrap.indent("the human is asked:\n" + params.message, "   ? "))
        print("   ? … and answers: yes")
        return ElicitResult(action="accept", content={"confirm": True})

    async with Client(params, elicitation_callback=human) as client:
        demo.step("The server's tools")
        tools = (await client.list_tools()).tools
        for tool in tools:
            hints = tool.annotations
            flags = "read-only" if hints and hints.read_only_hint else "may write"
            print(f"   • {tool.name} ({flags})")
        demo.expect({t.name for t in tools} >= {"run_sql", "describe_schema"}, "run_sql and describe_schema offered")

        demo.step("Create schema auslex with sample data in one transaction (run_sql_transaction)")
        result = await client.call_tool("run_sql_transaction", {"statements": _SAMPLE})
        demo.show(result, lines=6)
        demo.expect(not result.is_error, "committed all statements together")

        demo.step("Overview of the schema (describe_schema)")
        result = await client.call_tool("describe_schema", {"schema": "auslex"})
        demo.show(result)
        demo.expect(not result.is_error, "tables listed with estimated rows and sizes")

        demo.step("One table in detail (describe_schema table=auslex.orders)")
        result = await client.call_tool("describe_schema", {"table": "auslex.orders"})
        demo.show(result, lines=20)
        demo.expect("foreign key" in str(result.structured_content), "constraints and indexes described")

        demo.step("A read with parameters; rows arrive fenced as untrusted data")
        result = await client.call_tool(
            "run_sql",
            {
                "sql": "SELECT u.country, count(*) AS orders, sum(o.total) AS revenue FROM auslex.orders o "
                "JOIN auslex.users u ON u.id = o.user_id WHERE o.total > $1 GROUP BY 1 ORDER BY 3 DESC",
                "params": [50],
            },
        )
        demo.show(result)
        demo.expect(not result.is_error and "untrusted-data-" in str(result.content), "aggregates returned, fenced")

        demo.step("A capped result: SELECT * without LIMIT")
        result = await client.call_tool("run_sql", {"sql": "SELECT * FROM auslex.orders", "max_rows": 3})
        demo.show(result, lines=10)
        demo.expect(bool(result.structured_content and result.structured_content["truncated"]), "truncated, hint")

        demo.step("An unqualified table name gets a warning (default schema auslex)")
        result = await client.call_tool("run_sql", {"sql": "SELECT count(*) FROM pg_tables, users LIMIT 1"})
        demo.show(result, lines=4)
        demo.expect("auslex" in str(result.content), "the qualified form is named")

        demo.step("An attack: leave the transaction and drop a table")
        result = await client.call_tool("run_sql", {"sql": "COMMIT; DROP TABLE auslex.orders"})
        demo.show(result, lines=4)
        demo.expect(result.is_error, "refused with the reason")

        demo.step("A write with a WHERE clause runs directly; a destructive one waits for the human (elicitation)")
        result = await client.call_tool(
            "run_sql", {"sql": "DELETE FROM auslex.orders WHERE placed_at < now() - interval '1 year'"}
        )
        demo.show(result, lines=3)
        result = await client.call_tool("run_sql", {"sql": "TRUNCATE auslex.orders"})
        demo.show(result, lines=3)
        demo.expect(len(asked) == 1 and not result.is_error, "asked once, then it ran")

    async with Client(params) as client:
        demo.step("A client without elicitation: confirmation_required, then confirm_operation")
        result = await client.call_tool("run_sql", {"sql": "DROP TABLE auslex.orders"})
        demo.show(result, lines=12)
        data = result.structured_content or {}
        demo.expect(data.get("status") == "confirmation_required", "nothing ran; an operation id came back")
        confirmed = await client.call_tool("confirm_operation", {"operation_id": data.get("operation_id", "")})
        demo.show(confirmed, lines=3)
        again = await client.call_tool("confirm_operation", {"operation_id": data.get("operation_id", "")})
        demo.show(again, lines=2)
        demo.expect(not confirmed.is_error and again.is_error, "ran exactly once")

    demo.step("The audit log")
    lines = _read_lines(audit_log)
    for line in lines[-3:]:
        print(f"   │ {line[:160]}")
    demo.expect(len(lines) >= 3, "every write and destructive statement recorded")


def run_demo() -> int:
    """Run the demo; returns the process exit code."""
    import anyio
    from mcp import StdioServerParameters

    from .clusters import Cluster
    from .settings import Settings

    started = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="neon-mcp-demo-"))
    if os.geteuid() == 0:
        base.chmod(0o711)  # PostgreSQL runs as nobody, which must reach the data directory
    cluster = Cluster(base / "pg", bindir=Settings().pg_bindir)
    demo = _Demo()
    try:
        print("Starting a throwaway PostgreSQL cluster…")
        cluster.init(settings={"fsync": "off"})
        cluster.start()
        env = {
            **os.environ,
            "DATABASE_URL": cluster.dsn(),
            "NEON_MCP_HOME": str(base / "home"),
            "NEON_MCP_LOG_LEVEL": "WARNING",
        }
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "server", "serve", "--access-mode", "full", "--default-schema", "auslex"],
            env=env,
        )
        print(f"PostgreSQL {cluster.version} on port {cluster.port}; neon-mcp serve over stdio")
        anyio.run(_walk, demo, params, base / "home" / "audit.jsonl")
    finally:
        cluster.remove()
        shutil.rmtree(base, ignore_errors=True)
    elapsed = time.perf_counter() - started
    if demo.failures:
        print(f"\nDEMO FAILED: {len(demo.failures)} of {demo.steps} steps misbehaved: {'; '.join(demo.failures)}")
        return 1
    print(f"\nDemo finished: {demo.steps} steps, all as expected, in {elapsed:.1f} s.")
    return 0
