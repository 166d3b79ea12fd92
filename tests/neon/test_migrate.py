"""migrate on local Neon: plan on a branch, lint, confirm, apply exactly once, record; every refusal tried."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.settings import Settings
from tests.helpers import mcp_client, sql, text_of
from tests.neon.conftest import NeonTestProject

pytestmark = pytest.mark.anyio

ADD_EMAIL = """
ALTER TABLE auslex.members ADD COLUMN email text;
CREATE FUNCTION auslex.normalise(t text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    t := lower(t); RETURN trim(t);
END;
$$;
UPDATE auslex.members SET email = auslex.normalise(' M' || id || '@EXAMPLE.com ') WHERE email IS NULL;
CREATE INDEX CONCURRENTLY members_email ON auslex.members (email);
"""


@pytest.fixture
def target(project: NeonTestProject) -> dict[str, Any]:
    """A branch of its own for each test, named as the production branch of the server under test (protected)."""
    branch = project.create_branch("mig-prod")
    return {"branch": branch, "uri": project.uri_of(branch["id"])}


async def _seed(uri: str) -> None:
    await sql(uri, "CREATE TABLE auslex.members (id int PRIMARY KEY, name text NOT NULL)")
    await sql(uri, "INSERT INTO auslex.members SELECT g, 'member ' || g FROM generate_series(1, 50) g")


def _data(result: Any) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    data: dict[str, Any] = result.structured_content
    return data


async def test_plan_then_apply_on_the_production_branch(
    neon_settings: Callable[..., Settings], project: NeonTestProject, target: dict[str, Any]
) -> None:
    await _seed(target["uri"])
    async with mcp_client(neon_settings(production_branch="mig-prod", neon_branch="mig-prod")) as client:
        planned = _data(
            await client.call_tool(
                "migrate", {"action": "plan", "sql": ADD_EMAIL, "version": "001", "description": "members get email"}
            )
        )
        report = planned["plan"]
        assert [s["number"] for s in report["statements"]] == [1, 2, 3, 4], "the function body stayed whole"
        assert report["statements"][0]["lock"] == "ACCESS EXCLUSIVE"
        assert report["statements"][3]["outside_transaction"] is True
        assert report["statements"][2]["rows_affected"] == 50
        assert all(s["elapsed_ms"] is not None for s in report["statements"])
        assert "+column auslex.members.email text" in report["schema_diff"]
        assert "+index auslex.members_email" in report["schema_diff"]
        assert report["needs_confirmation"] is True and report["protected_because"] == "it is the production branch"
        plan_branch = report["plan_branch"]
        assert project.branch(plan_branch) is not None
        columns = await sql(target["uri"], "SELECT count(*) FROM information_schema.columns WHERE column_name='email'")
        assert columns[0][0] == 0, "planning leaves the target untouched"

        asked = _data(await client.call_tool("migrate", {"action": "apply", "migration_id": planned["migration_id"]}))
        assert asked["status"] == "confirmation_required"
        assert "backup branch backup/mig-prod/" in asked["summary"] and "Checksum sha256:" in asked["summary"]
        done = _data(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
        applied = done["applied"]
        assert applied["applied"] is True and applied["backup_branch"].startswith("backup/mig-prod/")
        again = await client.call_tool("migrate", {"action": "apply", "migration_id": planned["migration_id"]})
        history = _data(await client.call_tool("migrate", {"action": "history"}))
    assert again.is_error and "already applied" in text_of(again)
    rows = await sql(target["uri"], "SELECT email FROM auslex.members WHERE id = 7")
    assert rows[0][0] == "m7@example.com"
    recorded = await sql(
        target["uri"], "SELECT version, description, checksum, plan_branch FROM neon_mcp.schema_migrations"
    )
    assert [(r[0], r[1], r[3]) for r in recorded] == [("001", "members get email", plan_branch)]
    assert recorded[0][2] == report["checksum"]
    assert [h["version"] for h in history["history"]] == ["001"]
    assert project.branch(plan_branch) is None, "the plan branch is deleted after apply"


async def test_a_failing_migration_reports_where_and_leaves_nothing(
    neon_settings: Callable[..., Settings], project: NeonTestProject, target: dict[str, Any]
) -> None:
    await _seed(target["uri"])
    script = "ALTER TABLE auslex.members ADD COLUMN age int;\nUPDATE auslex.members SET age = 1 / 0 WHERE id = 1;"
    before = {b["name"] for b in project.branches()}
    async with mcp_client(neon_settings(neon_branch="mig-prod")) as client:
        result = await client.call_tool("migrate", {"action": "plan", "sql": script})
    assert result.is_error
    text = text_of(result)
    assert "statement 2" in text and "division by zero" in text and "untouched" in text
    assert {b["name"] for b in project.branches()} == before, "no branch left behind"
    columns = await sql(target["uri"], "SELECT count(*) FROM information_schema.columns WHERE column_name = 'age'")
    assert columns[0][0] == 0


async def test_an_unprotected_branch_applies_without_confirmation_and_history_is_newest_first(
    neon_settings: Callable[..., Settings], target: dict[str, Any]
) -> None:
    await _seed(target["uri"])
    async with mcp_client(neon_settings(neon_branch="mig-prod")) as client:
        for number, statement in enumerate(
            ["CREATE TABLE auslex.a (id int)", "CREATE TABLE auslex.b (id int)", "CREATE TABLE auslex.c (id int)"],
            start=1,
        ):
            planned = _data(
                await client.call_tool("migrate", {"action": "plan", "sql": statement, "version": f"v{number}"})
            )
            assert planned["plan"]["needs_confirmation"] is False
            applied = _data(
                await client.call_tool("migrate", {"action": "apply", "migration_id": planned["migration_id"]})
            )
            assert applied["applied"]["applied"] is True and "backup_branch" not in applied["applied"]
        history = _data(await client.call_tool("migrate", {"action": "history", "branch": "mig-prod"}))
    assert [h["version"] for h in history["history"]] == ["v3", "v2", "v1"]


async def test_tampering_is_refused(
    neon_settings: Callable[..., Settings], target: dict[str, Any], tmp_path: Path
) -> None:
    await _seed(target["uri"])
    settings = neon_settings(neon_branch="mig-prod")
    async with mcp_client(settings) as client:
        first = _data(
            await client.call_tool(
                "migrate", {"action": "plan", "sql": "CREATE TABLE auslex.t1 (id int)", "version": "7"}
            )
        )
        stored = settings.home / "migrations" / f"{first['migration_id']}.json"
        body = json.loads(stored.read_text())
        body["sql"] = "DROP TABLE auslex.members"
        stored.write_text(json.dumps(body))
        changed = await client.call_tool("migrate", {"action": "apply", "migration_id": first["migration_id"]})
        assert changed.is_error and "does not match its checksum" in text_of(changed)

        second = _data(
            await client.call_tool(
                "migrate", {"action": "plan", "sql": "CREATE TABLE auslex.t2 (id int)", "version": "8"}
            )
        )
        await sql(target["uri"], "CREATE TABLE auslex.sneaky (id int)")
        drifted = await client.call_tool("migrate", {"action": "apply", "migration_id": second["migration_id"]})
        assert drifted.is_error and "changed since" in text_of(drifted)

        third = _data(
            await client.call_tool(
                "migrate", {"action": "plan", "sql": "CREATE TABLE auslex.t3 (id int)", "version": "9"}
            )
        )
        applied = _data(await client.call_tool("migrate", {"action": "apply", "migration_id": third["migration_id"]}))
        assert applied["applied"]["applied"] is True
        reused = await client.call_tool(
            "migrate", {"action": "plan", "sql": "CREATE TABLE auslex.t4 (id int)", "version": "9"}
        )
        assert reused.is_error and "another checksum" in text_of(reused)

        fourth = _data(await client.call_tool("migrate", {"action": "plan", "sql": "CREATE TABLE auslex.t5 (id int)"}))
        stored = settings.home / "migrations" / f"{fourth['migration_id']}.json"
        body = json.loads(stored.read_text())
        body["expires_at"] = "2020-01-01T00:00:00Z"
        stored.write_text(json.dumps(body))
        expired = await client.call_tool("migrate", {"action": "apply", "migration_id": fourth["migration_id"]})
        assert expired.is_error and "expired" in text_of(expired)
        unknown = await client.call_tool("migrate", {"action": "apply", "migration_id": "mig_doesnotexist"})
        assert unknown.is_error and "unknown migration id" in text_of(unknown)
        discarded = _data(
            await client.call_tool("migrate", {"action": "discard", "migration_id": second["migration_id"]})
        )
        assert "discarded" in discarded["message"]


async def test_a_declined_confirmation_leaves_the_target_untouched(
    neon_settings: Callable[..., Settings], target: dict[str, Any]
) -> None:
    from mcp.client.context import ClientRequestContext
    from mcp_types import ElicitRequestParams, ElicitResult

    await _seed(target["uri"])

    async def decline(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="accept", content={"confirm": False})

    settings = neon_settings(production_branch="mig-prod", neon_branch="mig-prod")
    async with mcp_client(settings, elicitation_callback=decline) as client:
        planned = _data(await client.call_tool("migrate", {"action": "plan", "sql": "DROP TABLE auslex.members"}))
        result = _data(await client.call_tool("migrate", {"action": "apply", "migration_id": planned["migration_id"]}))
    assert result["status"] == "declined"
    assert (await sql(target["uri"], "SELECT count(*) FROM auslex.members"))[0][0] == 50


async def test_a_lock_timeout_names_who_holds_the_lock_and_the_plan_stays_valid(
    neon_settings: Callable[..., Settings], target: dict[str, Any]
) -> None:
    await _seed(target["uri"])
    async with mcp_client(neon_settings(neon_branch="mig-prod", lock_timeout=1)) as client:
        planned = _data(
            await client.call_tool("migrate", {"action": "plan", "sql": "ALTER TABLE auslex.members ADD COLUMN x int"})
        )
        holder = await asyncpg.connect(target["uri"])
        try:
            await holder.execute("BEGIN; LOCK TABLE auslex.members IN ACCESS SHARE MODE")
            await holder.execute("SET application_name = 'long-report'")
            blocked = await client.call_tool("migrate", {"action": "apply", "migration_id": planned["migration_id"]})
        finally:
            await holder.close()
        retried = _data(await client.call_tool("migrate", {"action": "apply", "migration_id": planned["migration_id"]}))
    assert blocked.is_error
    text = text_of(blocked)
    assert "Lock timeout" in text and "held by pid" in text and "call migrate(action='apply'" in text
    assert retried["applied"]["applied"] is True


@pytest.mark.parametrize(
    ("rule", "unsafe", "safe"),
    [
        (
            "not-null-without-safe-path",
            "ALTER TABLE auslex.members ADD COLUMN code text NOT NULL",
            "ALTER TABLE auslex.members ADD COLUMN code text NOT NULL DEFAULT 'x'",
        ),
        (
            "volatile-default",
            "ALTER TABLE auslex.members ADD COLUMN r float DEFAULT random()",
            "ALTER TABLE auslex.members ADD COLUMN r float DEFAULT 0.5",
        ),
        (
            "breaking-rename-or-drop",
            "ALTER TABLE auslex.members RENAME COLUMN name TO full_name",
            "ALTER TABLE auslex.members ADD COLUMN full_name text",
        ),
        (
            "type-change-rewrite",
            "ALTER TABLE auslex.members ALTER COLUMN id TYPE bigint",
            "ALTER TABLE auslex.members ADD COLUMN id_big bigint",
        ),
        (
            "validate-separately",
            "ALTER TABLE auslex.members ADD CONSTRAINT positive CHECK (id > 0)",
            "ALTER TABLE auslex.members ADD CONSTRAINT positive CHECK (id > 0) NOT VALID",
        ),
        (
            "missing-lock-timeout",
            "ALTER TABLE auslex.members ADD COLUMN y int",
            "SET LOCAL lock_timeout = '2s'; ALTER TABLE auslex.members ADD COLUMN y int",
        ),
        (
            "not-null-without-safe-path",
            "ALTER TABLE auslex.members ALTER COLUMN name SET NOT NULL",
            "ALTER TABLE auslex.members ADD CONSTRAINT name_nn CHECK (name IS NOT NULL); "
            "ALTER TABLE auslex.members ALTER COLUMN name SET NOT NULL",
        ),
        (
            "unqualified-table",
            "CREATE TABLE notes (id int)",
            "CREATE TABLE auslex.notes (id int)",
        ),
    ],
)
async def test_each_lint_rule_fires_on_the_unsafe_form_only(
    neon_settings: Callable[..., Settings], target: dict[str, Any], rule: str, unsafe: str, safe: str
) -> None:
    await _seed(target["uri"])
    async with mcp_client(neon_settings(neon_branch="mig-prod", default_schema="auslex")) as client:
        unsafe_result = await client.call_tool("migrate", {"action": "plan", "sql": unsafe})
        safe_result = await client.call_tool("migrate", {"action": "plan", "sql": safe})
    unsafe_rules = _rules(unsafe_result)
    assert rule in unsafe_rules, text_of(unsafe_result)
    assert rule not in _rules(safe_result), text_of(safe_result)


def _rules(result: Any) -> set[str]:
    if result.is_error:  # a plan that failed on its branch still reports its lint errors
        return {part.split(":")[0].strip() for part in text_of(result).split("Lint errors:")[-1].split(";")}
    return {f["rule"] for f in result.structured_content["plan"]["findings"]}


async def test_index_without_concurrently_is_judged_by_the_table_size(
    neon_settings: Callable[..., Settings], target: dict[str, Any]
) -> None:
    await sql(
        target["uri"],
        "CREATE TABLE auslex.big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 60000) g",
    )
    await sql(target["uri"], "CREATE TABLE auslex.small (id int)")
    async with mcp_client(neon_settings(neon_branch="mig-prod")) as client:
        big = _data(
            await client.call_tool("migrate", {"action": "plan", "sql": "CREATE INDEX big_id ON auslex.big (id)"})
        )
        small = _data(
            await client.call_tool("migrate", {"action": "plan", "sql": "CREATE INDEX small_id ON auslex.small (id)"})
        )
        concurrent = _data(
            await client.call_tool(
                "migrate", {"action": "plan", "sql": "CREATE INDEX CONCURRENTLY big_id ON auslex.big (id)"}
            )
        )
    assert "index-without-concurrently" in {f["rule"] for f in big["plan"]["findings"]}
    assert "index-without-concurrently" not in {f["rule"] for f in small["plan"]["findings"]}
    assert "index-without-concurrently" not in {f["rule"] for f in concurrent["plan"]["findings"]}
    assert concurrent["plan"]["statements"][0]["lock"] == "SHARE UPDATE EXCLUSIVE"


async def test_forbidden_statements_are_refused_before_any_branch_is_made(
    neon_settings: Callable[..., Settings], project: NeonTestProject, target: dict[str, Any]
) -> None:
    before = {b["name"] for b in project.branches()}
    async with mcp_client(neon_settings(neon_branch="mig-prod")) as client:
        begin = await client.call_tool(
            "migrate", {"action": "plan", "sql": "BEGIN; CREATE TABLE auslex.q (id int); COMMIT;"}
        )
        copy = await client.call_tool("migrate", {"action": "plan", "sql": "COPY auslex.members TO PROGRAM 'id'"})
    assert begin.is_error and "leave out BEGIN and COMMIT" in text_of(begin)
    assert copy.is_error
    await asyncio.sleep(0)
    assert {b["name"] for b in project.branches()} == before


async def test_migrate_is_not_offered_with_a_database_url(make_settings: Callable[..., Settings]) -> None:
    async with mcp_client(make_settings()) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
    assert "migrate" not in tools


async def test_read_only_mode_neither_plans_nor_applies_but_shows_history(
    neon_settings: Callable[..., Settings], project: NeonTestProject, target: dict[str, Any]
) -> None:
    before = {b["name"] for b in project.branches()}
    async with mcp_client(neon_settings(neon_branch="mig-prod", access_mode="read-only")) as client:
        plan = await client.call_tool("migrate", {"action": "plan", "sql": "CREATE TABLE auslex.ro (id int)"})
        apply = await client.call_tool("migrate", {"action": "apply", "migration_id": "mig_whatever"})
        history = await client.call_tool("migrate", {"action": "history"})
    assert plan.is_error and "read-only mode" in text_of(plan)
    assert apply.is_error
    assert not history.is_error, text_of(history)
    assert {b["name"] for b in project.branches()} == before


async def test_a_script_that_defines_code_and_then_fires_it_is_judged_with_it(
    neon_settings: Callable[..., Settings], target: dict[str, Any]
) -> None:
    """A trigger defined in the script and fired by a later statement wipes a table: the migration is destructive (a
    human confirms it even on an unprotected branch), and its reason names what the script defined."""
    await _seed(target["uri"])
    wiping = """
    CREATE TABLE auslex.visits (id int);
    CREATE FUNCTION auslex.forget() RETURNS trigger LANGUAGE plpgsql
      AS $$ BEGIN DELETE FROM auslex.members; RETURN NEW; END $$;
    CREATE TRIGGER forget AFTER INSERT ON auslex.visits FOR EACH ROW EXECUTE FUNCTION auslex.forget();
    INSERT INTO auslex.visits VALUES (1);
    """
    stamping = wiping.replace("DELETE FROM auslex.members; ", "").replace("forget", "stamp")
    async with mcp_client(neon_settings(neon_branch="mig-prod")) as client:
        planned = _data(await client.call_tool("migrate", {"action": "plan", "sql": wiping, "version": "w1"}))
        harmless = _data(await client.call_tool("migrate", {"action": "plan", "sql": stamping, "version": "w2"}))
    assert planned["plan"]["needs_confirmation"] is True
    kinds = [s["kind"] for s in planned["plan"]["statements"]]
    assert kinds[-1] == "destructive", kinds
    assert harmless["plan"]["needs_confirmation"] is False
    assert (await sql(target["uri"], "SELECT count(*) FROM auslex.members"))[0][0] == 50
