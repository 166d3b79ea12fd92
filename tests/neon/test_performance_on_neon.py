"""The query performance tools on Neon (local Neon over real HTTP, pooled connections through PgBouncer in
transaction mode where it is installed): ANALYZE of a write on a scratch branch, never on the branch itself;
hypothetical indexes and generic plans within one pooled transaction; Neon's notes on statistics."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from server.settings import Settings
from tests.helpers import mcp_client, script, sql, text_of
from tests.neon.conftest import NeonTestProject

pytestmark = pytest.mark.anyio


async def call(settings: Settings, tool: str, args: dict[str, Any]) -> tuple[Any, str]:
    async with mcp_client(settings) as client:
        result = await client.call_tool(tool, args)
    assert not result.is_error, text_of(result)
    return result.structured_content, text_of(result)


def superuser_uri(local_home: Path, project: NeonTestProject, uri: str) -> str:
    """``uri``'s endpoint's server, directly, as local Neon's superuser. On Neon, roles in neon_superuser may CREATE
    EXTENSION hypopg; local Neon's owner role may not (hypopg is not a trusted extension), so the fixture creates it
    as the superuser, whose password and the server's port local Neon keeps in its state file (its front door lets
    no one in as the superuser)."""
    parts = urlsplit(uri)
    endpoint_id = parse_qs(parts.query)["options"][0].removeprefix("endpoint=").removesuffix("-pooler")
    with sqlite3.connect(local_home / "local-neon" / "state.db") as db:
        (data,) = db.execute("SELECT data FROM records WHERE kind = 'project' AND key = ?", (project.id,)).fetchone()
        (endpoint,) = db.execute(
            "SELECT data FROM records WHERE kind = 'endpoint' AND key = ?", (endpoint_id,)
        ).fetchone()
    password = json.loads(data)["superuser_password"]
    port = json.loads(endpoint)["port"]
    return f"postgresql://cloud_admin:{quote(password, safe='')}@{parts.hostname}:{port}{parts.path}?sslmode=disable"


def scratch_branches(project: NeonTestProject) -> list[str]:
    return [b["name"] for b in project.branches() if b["name"].startswith("explain/")]


async def test_analyze_of_a_delete_runs_on_a_scratch_branch_and_production_is_untouched(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    settings = neon_settings()  # access mode branches: production takes reads only
    data, text = await call(
        settings, "explain_query", {"sql": "DELETE FROM auslex.users WHERE id = 1", "analyze": True}
    )
    assert data["ran"] == "scratch-branch" and data["branch"] == "production" and data["kind"] == "write"
    assert data["scratch_branch"].startswith("explain/production/")
    assert data["summary"]["execution_ms"] is not None
    scan = next(
        n for n in data["summary"]["costliest_nodes"] if "auslex.users" in n["node"] and "ModifyTable" not in n["node"]
    )
    assert scan["rows_actual"] == 1  # it found the row there
    assert f"ran on scratch branch {data['scratch_branch']}, deleted afterwards" in text
    assert (await sql(project.uri, "SELECT count(*) FROM auslex.users"))[0][0] == 3
    assert scratch_branches(project) == [], "no scratch branch left behind"
    audit = (settings.home / "audit.jsonl").read_text().splitlines()
    assert '"outcome":"rolled-back"' in audit[-1] and "DELETE FROM auslex.users" in audit[-1]


async def test_analyze_of_a_delete_without_where_leaves_production_whole(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    data, _ = await call(
        neon_settings(access_mode="full"), "explain_query", {"sql": "DELETE FROM auslex.users", "analyze": True}
    )
    assert data["ran"] == "scratch-branch" and data["kind"] == "destructive"
    assert (await sql(project.uri, "SELECT count(*) FROM auslex.users"))[0][0] == 3
    assert scratch_branches(project) == []


async def test_plans_and_reads_run_on_the_branch_itself(
    neon_settings: Callable[..., Settings], project: NeonTestProject
) -> None:
    before = len(project.branches())
    async with mcp_client(neon_settings()) as client:
        plan = await client.call_tool("explain_query", {"sql": "DELETE FROM auslex.users WHERE id = $1"})
        read = await client.call_tool(
            "explain_query", {"sql": "SELECT * FROM auslex.users WHERE id = $1", "params": [2], "analyze": True}
        )
    assert not plan.is_error and plan.structured_content is not None, text_of(plan)
    assert plan.structured_content["ran"] == "not-run" and plan.structured_content["generic_plan"] is True
    assert not read.is_error and read.structured_content is not None, text_of(read)
    assert read.structured_content["ran"] == "read-only" and read.structured_content["summary"]["rows_actual"] == 1
    assert len(project.branches()) == before


async def test_read_only_mode_refuses_the_analyze_of_a_write(neon_settings: Callable[..., Settings]) -> None:
    async with mcp_client(neon_settings(access_mode="read-only")) as client:
        result = await client.call_tool(
            "explain_query", {"sql": "DELETE FROM auslex.users WHERE id = 1", "analyze": True}
        )
    assert result.is_error and "read-only mode" in text_of(result)


async def test_hypothetical_indexes_and_suggestions_through_the_pooler(
    neon_settings: Callable[..., Settings], project: NeonTestProject, local_home: Path
) -> None:
    branch = project.create_branch("perf")
    uri = project.uri_of(branch["id"])
    if not (await sql(uri, "SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'")):
        pytest.skip("hypopg is not installed on this machine (Debian: postgresql-<major>-hypopg; .ci/run installs it)")
    await script(superuser_uri(local_home, project, uri), "CREATE EXTENSION hypopg")
    await script(
        uri,
        """
        CREATE TABLE auslex.visits (id bigint PRIMARY KEY, user_id int NOT NULL, at timestamptz NOT NULL);
        INSERT INTO auslex.visits SELECT g, g % 3000, now() - g * interval '1 second' FROM generate_series(1, 60000) g;
        ANALYZE auslex.visits;
        """,
    )
    query = "SELECT * FROM auslex.visits WHERE user_id = $1"
    settings = neon_settings()
    async with mcp_client(settings) as client:
        advice = await client.call_tool("suggest_indexes", {"sql": query, "branch": "perf"})
        compared = await client.call_tool(
            "explain_query",
            {"sql": query, "branch": "perf", "hypothetical_indexes": ["CREATE INDEX ON auslex.visits (user_id)"]},
        )
        # Hypothetical indexes and prepared statements live on a server backend that PgBouncer hands to others:
        # later plans on any pooled connection see neither.
        later = [await client.call_tool("explain_query", {"sql": query, "branch": "perf"}) for _ in range(4)]
    assert not advice.is_error and advice.structured_content is not None, text_of(advice)
    (suggestion,) = advice.structured_content["suggestions"]
    assert (
        suggestion["statement"] == "CREATE INDEX CONCURRENTLY ON auslex.visits (user_id)" and suggestion["gain"] > 0.5
    )
    assert not compared.is_error and compared.structured_content is not None, text_of(compared)
    hypothetical = compared.structured_content["hypothetical"]
    assert hypothetical["indexes"][0]["used"] is True and hypothetical["gain"] > 0.5
    for result in later:
        assert result.structured_content is not None and result.structured_content["summary"]["seq_scans"]
    assert (await sql(uri, "SELECT count(*) FROM pg_indexes WHERE tablename = 'visits'"))[0][0] == 1


async def test_statistics_on_neon_come_with_their_caveat(neon_settings: Callable[..., Settings]) -> None:
    async with mcp_client(neon_settings()) as client:
        slow = await client.call_tool("list_slow_queries", {})
        health = await client.call_tool("health_check", {})
    assert not slow.is_error and slow.structured_content is not None, text_of(slow)
    assert any("lost when the compute suspends or restarts" in n for n in slow.structured_content["notes"])
    if not slow.structured_content["available"]:  # local Neon does not preload pg_stat_statements; Neon does
        assert "pg_stat_statements" in slow.structured_content["message"]
    assert not health.is_error and health.structured_content is not None, text_of(health)
    data = health.structured_content
    assert data["branch"] == "production" and data["database"] == "neondb"
    assert any("restart with the compute" in n for n in data["notes"]) and "note: On Neon" in text_of(health)
