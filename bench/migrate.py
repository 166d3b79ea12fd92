"""migrate on a 100 MB table, on local Neon: time to plan and to apply, against the bare work in the same run.

The migration adds a column, builds an index CONCURRENTLY and rewrites the table (a type change). The baseline is the
same three statements run by raw asyncpg on a fresh branch of the same parent (what the database itself needs); plan
adds the branch, the lint (ours and squawk's) and the schema diff; apply adds the checks, the backup branch and the
record.

Run: ``.venv/bin/python bench/migrate.py`` (starts its own local Neon in a temporary data directory).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _local_neon import with_local_neon  # noqa: E402
from mcp import Client  # noqa: E402

from server.mcp.assembly import build_server  # noqa: E402
from server.neon.client import NeonClient  # noqa: E402
from server.settings import Settings  # noqa: E402

MEGABYTES = 100
STATEMENTS = [
    "ALTER TABLE auslex.users ADD COLUMN email text",
    "CREATE INDEX CONCURRENTLY users_email ON auslex.users (email)",
    "ALTER TABLE auslex.users ALTER COLUMN name TYPE varchar(200)",
]


async def run(host: str, key: str, home: Path) -> None:
    async with NeonClient(key, base_url=host) as neon:
        body = await neon.post("/projects", json={"project": {"name": "bench-migrate"}})
        project = body["project"]["id"]
        await neon.wait_for_operations(project, body["operations"], poll_interval=0.05)
        uri = body["connection_uris"][0]["connection_uri"]
        conn = await asyncpg.connect(uri)
        await conn.execute("CREATE SCHEMA auslex; CREATE TABLE auslex.users (id int PRIMARY KEY, name text, pad text)")
        await conn.execute(
            "INSERT INTO auslex.users SELECT g, 'u' || g, repeat(md5(g::text), 8) "
            f"FROM generate_series(1, {MEGABYTES * 3000}) g"
        )
        size = await conn.fetchval("SELECT pg_database_size(current_database()) / 1048576")
        await conn.close()

        branch = await neon.create_branch(project, name="baseline", parent_id=body["branch"]["id"])
        await neon.wait_for_operations(project, branch.operations, poll_interval=0.05)
        branch_uri = await neon.connection_uri(project, branch.branch.id, "neondb", "neondb_owner", pooled=False)
        conn = await asyncpg.connect(branch_uri.get_secret_value())
        started = time.perf_counter()
        await conn.execute("BEGIN; " + STATEMENTS[0] + "; COMMIT")
        await conn.execute(STATEMENTS[1])
        await conn.execute("BEGIN; " + STATEMENTS[2] + "; COMMIT")
        baseline = time.perf_counter() - started
        await conn.close()

    settings = Settings(neon_api_key=key, neon_api_host=host, neon_project_id=project, home=home, log_level="WARNING")
    async with Client(build_server(settings)) as client:
        started = time.perf_counter()
        planned = await client.call_tool("migrate", {"action": "plan", "sql": ";\n".join(STATEMENTS)})
        plan_seconds = time.perf_counter() - started
        assert not planned.is_error, planned
        migration = planned.structured_content["migration_id"]  # type: ignore[index]
        started = time.perf_counter()
        asked = await client.call_tool("migrate", {"action": "apply", "migration_id": migration})
        operation = asked.structured_content["operation_id"]  # type: ignore[index]
        applied = await client.call_tool("confirm_operation", {"operation_id": operation})
        apply_seconds = time.perf_counter() - started
        assert not applied.is_error, applied

    print(f"## migrate on a {size} MB table\n")
    print(
        "Adding a column, building an index CONCURRENTLY and changing a column's type, on local Neon, against the "
        "same three statements run by raw asyncpg on a fresh branch of the same parent.\n"
    )
    print("| migrate (add column, index CONCURRENTLY, type change) | time | ratio to the bare statements |")
    print("|---|---|---|")
    print(f"| bare statements through asyncpg on a branch (baseline) | {baseline * 1000:.0f} ms | 1.0 |")
    for name, seconds in (
        ("plan: branch, lint, apply on the branch, diff", plan_seconds),
        ("apply: checks, backup branch, apply, record", apply_seconds),
    ):
        print(f"| {name} | {seconds * 1000:.0f} ms | {seconds / baseline:.1f} |")


def main() -> None:
    with_local_neon(run, prefix="neon-mcp-bench-migrate-")


if __name__ == "__main__":
    main()
