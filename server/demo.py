"""``neon-mcp demo``: the whole job of the neon-db-expert agent, on local Neon, the way an agent meets it.

Starts local Neon in a throwaway data directory, runs ``neon-mcp serve`` as a subprocess over stdio with local Neon's
API host and key (as a user points it at Neon, with no project yet), and drives it with a real MCP client whose
"human" answers the confirmation questions: the application's project is created (create_project: its production
branch protected, no password in the answer) and becomes the one served; the schema and its sample data arrive by a
migration; a branch is made to experiment; a query is explained and an index suggested; a second migration is
planned (lint, diff) and applied with confirmation and a backup; the history, a schema comparison, a time-travel
read; clean-up, where deleting the served project is refused. Each step is printed; exits 0 when every step behaved
as expected.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["run_demo"]

_SCHEMA = """
CREATE SCHEMA auslex;
CREATE TABLE auslex.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    country text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE auslex.users IS 'People who signed up';
CREATE TABLE auslex.orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES auslex.users (id),
    total numeric(10, 2) NOT NULL,
    placed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO auslex.users (email, country)
SELECT 'user' || g || '@example.com', (ARRAY['AU', 'NZ', 'DE'])[1 + g % 3] FROM generate_series(1, 2000) g;
INSERT INTO auslex.orders (user_id, total, placed_at)
SELECT 1 + g % 2000, (g % 97) + 0.99, now() - (g % 365) * interval '1 day' FROM generate_series(1, 50000) g;
ANALYZE auslex.users;
ANALYZE auslex.orders;
"""

_REPORT = (
    "SELECT u.country, count(*) AS orders, sum(o.total) AS revenue FROM auslex.orders o "
    "JOIN auslex.users u ON u.id = o.user_id WHERE o.user_id = $1 GROUP BY 1"
)


class _Demo:
    def __init__(self) -> None:
        self.steps = 0
        self.failures: list[str] = []

    def step(self, title: str) -> None:
        self.steps += 1
        print(f"\n── {self.steps}. {title}")

    def show(self, result: Any, *, lines: int = 14) -> None:
        text = "\n".join(block.text for block in result.content if block.type == "text")
        body = [line for line in text.splitlines() if not line.startswith("The text between the untrusted-data")]
        shown = body[:lines] + ([f"… ({len(body) - lines} more lines)"] if len(body) > lines else [])
        print(textwrap.indent("\n".join(shown), "   │ "))

    def expect(self, condition: bool, what: str) -> None:
        print(f"   {'✓' if condition else '✗'} {what}")
        if not condition:
            self.failures.append(what)


def _data(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = result.structured_content or {}
    return data


async def _walk(demo: _Demo, params: Any) -> None:
    from mcp import Client
    from mcp_types import ElicitResult, ErrorData

    asked: list[str] = []

    async def human(context: Any, params: Any) -> ElicitResult | ErrorData:
        asked.append(params.message)
        first = params.message.splitlines()[0]
        print(textwrap.indent(f"the human is asked: {first}\n… and answers: yes", "   ? "))
        return ElicitResult(action="accept", content={"confirm": True})

    async with Client(params, elicitation_callback=human) as client:
        demo.step("Create the application's project (create_project)")
        result = await client.call_tool("create_project", {"name": "shop"})
        demo.show(result, lines=8)
        created = _data(result)
        branches = created.get("branches") or [{}]
        demo.expect(
            not result.is_error and branches[0].get("name") == "production" and bool(branches[0].get("protected")),
            "made and ready; its default branch is named production and Neon protects it",
        )
        demo.expect(
            ":****@" in str(created.get("connection_uri")) and created.get("served") is True,
            "no password in the answer; the server now works on it (its only project)",
        )

        demo.step("The server's tools (local Neon, access mode branches)")
        tools = {tool.name for tool in (await client.list_tools()).tools}
        print(textwrap.fill(", ".join(sorted(tools)), 110, initial_indent="   ", subsequent_indent="   "))
        demo.expect({"run_sql", "migrate", "create_branch", "explain_query"} <= tools, "the Neon tools are offered")

        demo.step("The branches: production is protected")
        result = await client.call_tool("list_branches", {})
        demo.show(result, lines=6)
        demo.expect(not result.is_error and "production" in str(result.content), "production listed, protected")

        demo.step("Writing on production directly is refused in access mode branches")
        result = await client.call_tool("run_sql", {"sql": "CREATE TABLE auslex.scratch (id int)"})
        demo.show(result, lines=3)
        demo.expect(result.is_error and "protected" in str(result.content), "refused, with the safe path named")

        demo.step("So the schema and its sample data arrive by migration: plan (tested on a branch)")
        result = await client.call_tool(
            "migrate", {"action": "plan", "sql": _SCHEMA, "version": "001", "description": "users and orders"}
        )
        demo.show(result, lines=16)
        first = _data(result).get("migration_id", "")
        demo.expect(not result.is_error and bool(first), "planned; the schema diff shows the new tables")

        demo.step("Apply it to production: the human confirms, a backup branch is taken first")
        result = await client.call_tool("migrate", {"action": "apply", "migration_id": first})
        demo.show(result, lines=6)
        demo.expect(not result.is_error and len(asked) == 1, "asked once, applied and recorded")

        demo.step("Branch off production to experiment (create_branch)")
        result = await client.call_tool(
            "create_branch", {"name": "feature/orders-report", "parent": "production", "expires_in": "2h"}
        )
        demo.show(result, lines=4)
        demo.expect(not result.is_error, "a full copy, connectable, expiring in 2 hours")

        demo.step("Query the branch (run_sql branch=…)")
        result = await client.call_tool("run_sql", {"sql": _REPORT, "params": [42], "branch": "feature/orders-report"})
        demo.show(result, lines=6)
        demo.expect(not result.is_error, "rows returned, fenced as untrusted data")

        demo.step("Why is it slow? explain_query")
        result = await client.call_tool(
            "explain_query", {"sql": _REPORT, "params": [42], "branch": "feature/orders-report"}
        )
        demo.show(result, lines=14)
        demo.expect(not result.is_error, "plan summarised: costliest nodes, sequential scans")

        demo.step("suggest_indexes")
        result = await client.call_tool("suggest_indexes", {"sql": _REPORT, "branch": "feature/orders-report"})
        demo.show(result, lines=10)
        demo.expect(not result.is_error and "CREATE INDEX CONCURRENTLY" in str(result.content), "an index proposed")

        demo.step("Plan migration 002: the index, and a new column (lint and schema diff)")
        change = (
            "CREATE INDEX CONCURRENTLY orders_user_id ON auslex.orders (user_id);\n"
            "ALTER TABLE auslex.orders ADD COLUMN status text NOT NULL DEFAULT 'new';"
        )
        result = await client.call_tool(
            "migrate", {"action": "plan", "sql": change, "version": "002", "description": "index and order status"}
        )
        demo.show(result, lines=24)
        second = _data(result).get("migration_id", "")
        demo.expect(not result.is_error and bool(second), "planned with findings and the diff")

        demo.step("Apply 002 with confirmation")
        before_apply = datetime.now(UTC).isoformat()
        result = await client.call_tool("migrate", {"action": "apply", "migration_id": second})
        demo.show(result, lines=6)
        demo.expect(not result.is_error and len(asked) == 2, "confirmed, backed up, applied")

        demo.step("The migration history of production")
        result = await client.call_tool("migrate", {"action": "history"})
        demo.show(result, lines=6)
        versions = [row["version"] for row in _data(result).get("history", [])]
        demo.expect(versions == ["002", "001"], "both migrations recorded, newest first")

        demo.step("compare_schemas: production against the experiment branch")
        result = await client.call_tool(
            "compare_schemas", {"branch": "production", "base_branch": "feature/orders-report"}
        )
        demo.show(result, lines=10)
        demo.expect(not result.is_error and "status" in str(result.content), "the new column and index show")

        demo.step("Time travel: read production as it was before migration 002")
        result = await client.call_tool(
            "run_sql",
            {
                "sql": "SELECT count(*) AS status_columns FROM information_schema.columns "
                "WHERE table_schema = 'auslex' AND column_name = 'status'",
                "as_of": before_apply,
            },
        )
        demo.show(result, lines=6)
        rows = _data(result).get("rows")
        demo.expect(not result.is_error and rows == [[0]], "the column did not exist yet")

        demo.step("An attack: leave the transaction and drop a table")
        result = await client.call_tool(
            "run_sql_transaction",
            {"statements": ["COMMIT", "DROP TABLE auslex.orders"], "branch": "feature/orders-report"},
        )
        demo.show(result, lines=3)
        demo.expect(result.is_error, "refused with the reason")

        demo.step("Clean up: delete the experiment branch (confirmed by the human)")
        result = await client.call_tool("delete_branch", {"branch": "feature/orders-report"})
        demo.show(result, lines=4)
        demo.expect(not result.is_error and len(asked) == 3, "asked, then deleted")

        demo.step("Delete the whole project? Refused: the server serves it (and Neon protects its production branch)")
        result = await client.call_tool("delete_project", {"project": "shop"})
        demo.show(result, lines=3)
        demo.expect(result.is_error and len(asked) == 3, "refused before anyone is asked")


def run_demo() -> int:
    """Run the demo; returns the process exit code."""
    import anyio
    from mcp import StdioServerParameters

    started = time.perf_counter()
    base = Path(tempfile.mkdtemp(prefix="neon-mcp-demo-"))
    if os.geteuid() == 0:
        base.chmod(0o711)  # PostgreSQL runs as nobody, which must reach the data directories
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEON_MCP_", "NEON_API_", "NEON_PROJECT"))}
    env.pop("DATABASE_URL", None)
    env.update({"NEON_MCP_HOME": str(base / "home"), "NEON_MCP_LOG_LEVEL": "WARNING"})
    demo = _Demo()
    command = [sys.executable, "-m", "server"]
    try:
        print("Starting local Neon (Neon's API over PostgreSQL clusters on this machine)…")
        started_local = subprocess.run(
            [*command, "local", "start"], env=env, check=True, capture_output=True, text=True
        )
        api = dict(line.split("=", 1) for line in started_local.stdout.strip().splitlines() if "=" in line)
        serving = {**env, "NEON_API_HOST": api["NEON_API_HOST"], "NEON_API_KEY": api["NEON_API_KEY"]}
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "server", "serve", "--default-schema", "auslex"], env=serving
        )
        print("neon-mcp serve over stdio, pointed at its API (no project yet); production branch: production")
        anyio.run(_walk, demo, params)
    except subprocess.CalledProcessError as exc:
        demo.failures.append(f"local Neon did not start: {exc.stderr.strip()[-500:]}")
    finally:
        subprocess.run([*command, "local", "stop"], env=env, capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
    elapsed = time.perf_counter() - started
    if demo.failures:
        print(f"\nDEMO FAILED: {len(demo.failures)} of {demo.steps} steps misbehaved: {'; '.join(demo.failures)}")
        return 1
    print(f"\nDemo finished: {demo.steps} steps, all as expected, in {elapsed:.1f} s.")
    return 0
