"""Effects measured, then confirmed (server/sql/effects.py): whole-table changes are decided by what they do.

Through the real MCP client in full mode: a write that touches every row of a table, or most of a large one, is
rolled back and asked about with its measured effect, whatever its WHERE says; the confirmed run measures again and
runs only if the effect is materially the one confirmed. Routine writes run at once, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.settings import Settings
from server.sql.database import Caps, Databases, Guards, Statement
from server.sql.effects import Effect, about
from server.state.audit import AuditFile
from tests.helpers import Human, data_of, mcp_client, script, sql, text_of

pytestmark = pytest.mark.anyio

SETUP = """
CREATE SCHEMA app;
CREATE TABLE app.items (id int PRIMARY KEY, flag bool NOT NULL DEFAULT false, note text);
INSERT INTO app.items (id, flag) SELECT g, g % 2 = 0 FROM generate_series(1, 1000) g;
CREATE TABLE app.singleton (id int PRIMARY KEY, value text);
INSERT INTO app.singleton VALUES (1, 'a');
CREATE TABLE app.large (id int PRIMARY KEY, v int);
INSERT INTO app.large SELECT g, 0 FROM generate_series(1, 12000) g;
ANALYZE app.large;
"""


async def _count(url: str, where: str = "true") -> int:
    return int((await sql(url, f"SELECT count(*) FROM app.items WHERE {where}"))[0][0])


@pytest.fixture
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    made = make_settings(access_mode="full")
    await script(made.database_url.get_secret_value(), SETUP)  # type: ignore[union-attr]
    return made


def _url(settings: Settings) -> str:
    return settings.database_url.get_secret_value()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM app.items WHERE true",
        "DELETE FROM app.items WHERE 1 = 1",
        "MERGE INTO app.items i USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE",
    ],
)
async def test_a_condition_that_holds_for_every_row_is_asked_about_before_anything_runs(
    settings: Settings, statement: str
) -> None:
    """The policy sees these from the text alone (``server.sql.policy``): nothing runs, not even to measure."""
    async with mcp_client(settings) as client:
        result = await client.call_tool("run_sql", {"sql": statement})
    data = data_of(result)
    assert data["status"] == "confirmation_required", text_of(result)
    assert "measured by running it" not in data["summary"]
    assert await _count(_url(settings)) == 1000
    assert AuditFile(settings.audit_log_path).read() == []


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM app.items WHERE id > 0",
        "UPDATE app.items SET note = 'gone' WHERE id IS NOT NULL",
        "DELETE FROM app.items i USING (SELECT 1) s WHERE i.id = i.id",
    ],
)
async def test_a_change_of_every_row_is_rolled_back_and_asked_about(settings: Settings, statement: str) -> None:
    async with mcp_client(settings) as client:
        result = await client.call_tool("run_sql", {"sql": statement})
    data = data_of(result)
    assert data["status"] == "confirmation_required", text_of(result)
    assert "touches every row of app.items (about 1,000 rows)" in data["summary"]
    assert "measured by running it" in data["summary"]
    assert await _count(_url(settings)) == 1000 and await _count(_url(settings), "note IS NOT NULL") == 0
    (record,) = AuditFile(settings.audit_log_path).read()
    assert record["outcome"] == "rolled-back" and record["rows_affected"] == 1000


async def test_a_transaction_whose_statements_together_touch_every_row_is_asked_about(settings: Settings) -> None:
    statements = ["UPDATE app.items SET note = 'x' WHERE flag", "UPDATE app.items SET note = 'y' WHERE NOT flag"]
    async with mcp_client(settings) as client:
        result = await client.call_tool("run_sql_transaction", {"statements": statements})
    data = data_of(result)
    assert data["status"] == "confirmation_required", text_of(result)
    assert "2. [write] UPDATE app.items SET note = 'y' WHERE NOT flag" in data["summary"]
    assert "measured: UPDATE touches every row of app.items" in data["summary"]
    assert await _count(_url(settings), "note IS NOT NULL") == 0


async def test_the_confirmed_run_measures_again_and_applies_a_change_that_is_materially_the_same(
    settings: Settings,
) -> None:
    async with mcp_client(settings) as client:
        asked = data_of(await client.call_tool("run_sql", {"sql": "DELETE FROM app.items WHERE id > 0"}))
        await sql(_url(settings), "INSERT INTO app.items (id) VALUES (1001), (1002), (1003)")
        done = await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]})
    assert data_of(done)["rows_affected"] == 1003
    assert await _count(_url(settings)) == 0
    last = AuditFile(settings.audit_log_path).read()[-1]
    assert last["confirmation"] == "confirm_operation" and last["outcome"] == "ok" and last["rows_affected"] == 1003


async def test_the_confirmed_run_refuses_a_change_that_grew_materially(settings: Settings) -> None:
    async with mcp_client(settings) as client:
        asked = data_of(await client.call_tool("run_sql", {"sql": "DELETE FROM app.items WHERE id > 0"}))
        await sql(_url(settings), "INSERT INTO app.items (id) SELECT g FROM generate_series(1001, 6000) g")
        refused = await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]})
    assert refused.is_error
    # The table it is bound to grew (server.state.binding) before the run could measure it again: nothing ran.
    assert "changed" in text_of(refused) and "6,000" in text_of(refused) and "Nothing ran" in text_of(refused)
    assert await _count(_url(settings)) == 6000


async def test_a_clients_human_is_asked_through_confirm_operation_even_with_elicitation(settings: Settings) -> None:
    human = Human()
    async with mcp_client(settings, elicitation_callback=human) as client:
        asked = data_of(await client.call_tool("run_sql", {"sql": "UPDATE app.items SET note = 'n' WHERE id > 0"}))
        assert asked["status"] == "confirmation_required" and not human.asked
        done = data_of(await client.call_tool("confirm_operation", {"operation_id": asked["operation_id"]}))
    assert done["rows_affected"] == 1000
    assert await _count(_url(settings), "note = 'n'") == 1000


async def test_most_of_a_large_table_is_asked_about_and_a_small_share_is_not(settings: Settings) -> None:
    async with mcp_client(settings) as client:
        most = data_of(await client.call_tool("run_sql", {"sql": "UPDATE app.large SET v = 1 WHERE id <= 7000"}))
        few = data_of(await client.call_tool("run_sql", {"sql": "UPDATE app.large SET v = 2 WHERE id <= 4000"}))
    assert most["status"] == "confirmation_required"
    assert "UPDATE touches about 7,000 of about 12,000 rows (about 60%) of app.large" in most["summary"]
    assert few["status"] == "ok" and few["rows_affected"] == 4000


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE app.items SET note = 'one' WHERE id = 7",
        "UPDATE app.items SET note = 'some' WHERE id BETWEEN 10 AND 500",
        "DELETE FROM app.items WHERE flag",
        "UPDATE app.singleton SET value = 'b' WHERE id = 1",
        "INSERT INTO app.items (id) SELECT g FROM generate_series(2001, 3000) g",
    ],
)
async def test_routine_writes_run_at_once(settings: Settings, statement: str) -> None:
    async with mcp_client(settings) as client:
        result = await client.call_tool("run_sql", {"sql": statement})
    assert data_of(result)["status"] == "ok", text_of(result)


async def test_the_executor_hands_the_check_every_whole_table_effect_and_rolls_back_on_its_refusal(
    settings: Settings,
) -> None:
    dbs = Databases(_url(settings), Guards(5.0, 1.0, 10.0), pool_size=1)
    seen: list[Effect] = []

    def refuse(effects: Any) -> None:
        seen.extend(effects)
        if effects:
            raise RuntimeError("asked")

    try:
        statements = [
            Statement("UPDATE app.items SET note = 'a' WHERE id < 10", verb="UPDATE", target="app.items"),
            Statement("DELETE FROM app.singleton", verb="DELETE", target="app.singleton"),
            Statement("DELETE FROM app.items WHERE id > 0", verb="DELETE", target="app.items"),
        ]
        with pytest.raises(RuntimeError, match="asked"):
            await dbs.run(statements, read_only=False, caps=Caps(10, 10_000), check=refuse)
        assert [(e.statement, e.verb, e.affected, e.every_row) for e in seen] == [(2, "DELETE", 1000, True)]
        assert await _count(_url(settings)) == 1000, "rolled back: nothing applied"
        assert await dbs.run([Statement("SELECT 1")], read_only=True, caps=Caps(10, 10_000))
    finally:
        await dbs.close()


def test_counts_are_shown_to_two_significant_digits() -> None:
    assert [about(n) for n in (3, 99, 100, 1_003, 1_049, 12_345, 987_654)] == [
        "3",
        "99",
        "about 100",
        "about 1,000",
        "about 1,000",
        "about 12,000",
        "about 990,000",
    ]
