"""A confirmation is bound to objects, not to words: the human's yes runs only on the objects the human was shown.

Each attack is judged by its effect: the table the human did not agree to drop is still there, with its rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from mcp_types import ElicitRequestParams, ElicitResult

from server.settings import Settings
from server.state.binding import Bound, describe, differences, from_json, to_json
from tests.helpers import mcp_client, script, sql, text_of

pytestmark = pytest.mark.anyio

SETUP = """
CREATE SCHEMA app;
CREATE TABLE app.scratch (id int);
INSERT INTO app.scratch SELECT generate_series(1, 3);
CREATE TABLE app.ledger (id int, note text);
INSERT INTO app.ledger SELECT g, 'entry ' || g FROM generate_series(1, 100) g;
ANALYZE app.scratch;
ANALYZE app.ledger;
"""

SMALL = re.compile(r"app\.scratch: table, oid \d+, ≈3 rows")


def _url(settings: Settings) -> str:
    return settings.database_url.get_secret_value()  # type: ignore[union-attr]


async def _scratch_rows(url: str) -> int | None:
    rows = await sql(url, "SELECT CASE WHEN to_regclass('app.scratch') IS NOT NULL THEN 1 END")
    if rows[0][0] is None:
        return None
    return int((await sql(url, "SELECT count(*) FROM app.scratch"))[0][0])


async def _swap(url: str) -> None:
    """What the agent (or anyone) does after the human agreed: another, larger table takes the confirmed name."""
    await script(url, "ALTER TABLE app.scratch RENAME TO scratch_old; ALTER TABLE app.ledger RENAME TO scratch")


@pytest.mark.parametrize("who", ["the agent", "another session"])
async def test_a_table_renamed_into_the_confirmed_name_is_not_dropped(
    make_settings: Callable[..., Settings], who: str
) -> None:
    settings = make_settings()
    url = _url(settings)
    await script(url, SETUP)
    async with mcp_client(settings) as client:
        pending = await client.call_tool("run_sql", {"sql": "DROP TABLE app.scratch"})
        data = pending.structured_content
        assert data is not None and data["status"] == "confirmation_required", text_of(pending)
        assert SMALL.search(data["summary"]), data["summary"]
        if who == "the agent":
            for step in ("ALTER TABLE app.scratch RENAME TO scratch_old", "ALTER TABLE app.ledger RENAME TO scratch"):
                renamed = await client.call_tool("run_sql", {"sql": step})
                assert renamed.structured_content["status"] == "ok", text_of(renamed)  # type: ignore[index]
        else:
            await _swap(url)
        confirmed = await client.call_tool("confirm_operation", {"operation_id": data["operation_id"]})
        again = await client.call_tool("run_sql", {"sql": "DROP TABLE app.scratch"})
    assert confirmed.is_error
    assert re.search(r"app\.scratch is table, oid \d+ now, not table, oid \d+", text_of(confirmed)), text_of(confirmed)
    assert "Nothing ran" in text_of(confirmed)
    assert await _scratch_rows(url) == 100, "the table the human never agreed to drop is intact"
    asked_again = again.structured_content["summary"]  # type: ignore[index]
    assert re.search(r"app\.scratch: table, oid \d+, ≈100 rows", asked_again), "asked again, about the table as it is"


async def test_a_table_that_grew_since_the_question_is_not_dropped(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    url = _url(settings)
    await script(url, SETUP)
    async with mcp_client(settings) as client:
        small = (await client.call_tool("run_sql", {"sql": "TRUNCATE app.scratch"})).structured_content
        assert small is not None and SMALL.search(small["summary"])
        # Ordinary traffic meanwhile (two rows) does not invalidate the yes; ten thousand rows do.
        await script(url, "INSERT INTO app.scratch VALUES (4), (5); SELECT pg_stat_force_next_flush()")
        ordinary = await client.call_tool("confirm_operation", {"operation_id": small["operation_id"]})
        assert not ordinary.is_error, text_of(ordinary)
        await script(url, "INSERT INTO app.scratch SELECT generate_series(1, 3); ANALYZE app.scratch")
        pending = (await client.call_tool("run_sql", {"sql": "TRUNCATE app.scratch"})).structured_content
        assert pending is not None
        await script(url, "INSERT INTO app.scratch SELECT generate_series(1, 10000); SELECT pg_stat_force_next_flush()")
        grown = await client.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
    assert grown.is_error and re.search(r"app\.scratch grew from ≈3 to ≈10,00\d rows", text_of(grown)), text_of(grown)
    assert await _scratch_rows(url) == 10_003


async def test_a_table_created_under_a_name_confirmed_absent_is_not_dropped(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    url = _url(settings)
    await script(url, "CREATE SCHEMA app")
    async with mcp_client(settings) as client:
        pending = (await client.call_tool("run_sql", {"sql": "DROP TABLE IF EXISTS app.scratch"})).structured_content
        assert pending is not None and "app.scratch: does not exist now" in pending["summary"]
        await script(url, "CREATE TABLE app.scratch AS SELECT generate_series(1, 50) AS id")
        confirmed = await client.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
    assert confirmed.is_error and "not absent" in text_of(confirmed)
    assert await _scratch_rows(url) == 50


async def test_a_schema_that_gained_data_is_not_dropped(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    url = _url(settings)
    await script(url, SETUP)
    async with mcp_client(settings) as client:
        pending = (await client.call_tool("run_sql", {"sql": "DROP SCHEMA app CASCADE"})).structured_content
        assert pending is not None and re.search(r"app: schema, oid \d+, ≈100 rows", pending["summary"])
        await script(url, "CREATE TABLE app.big AS SELECT generate_series(1, 5000) AS id; ANALYZE app.big")
        confirmed = await client.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
    assert confirmed.is_error and "app grew from ≈103 to ≈5,103 rows" in text_of(confirmed), text_of(confirmed)
    assert [tuple(r) for r in await sql(url, "SELECT count(*) FROM app.big")] == [(5000,)]


class SwappingHuman:
    """A human who agrees to drop a three-row table, and only that; while they read the question, the tables swap."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        if len(self.asked) == 1:
            await _swap(self.url)
        return ElicitResult(action="accept", content={"confirm": bool(SMALL.search(params.message))})


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_objects_swapped_while_the_human_reads_the_question_are_not_dropped(
    make_settings: Callable[..., Settings], mode: str
) -> None:
    settings = make_settings()
    url = _url(settings)
    await script(url, SETUP)
    human = SwappingHuman(url)
    async with mcp_client(settings, elicitation_callback=human, mode=mode) as client:
        result = await client.call_tool("run_sql", {"sql": "DROP TABLE app.scratch"})
    assert await _scratch_rows(url) == 100
    assert SMALL.search(human.asked[0])
    if mode == "legacy":
        # One call: the objects read when asking are compared with the objects before the drop.
        assert result.is_error and "While the user was asked" in text_of(result), text_of(result)
    else:
        # 2026-07-28: the retried call asks a new question, about the table now under that name; the human says no.
        assert len(human.asked) == 2 and re.search(r"≈100 rows", human.asked[1]), human.asked
        assert result.structured_content["status"] == "declined"  # type: ignore[index]


def test_differences_name_what_changed_materially() -> None:
    before = (Bound("relation", "app.t", "table, oid 1", rows=1_000, bytes=100_000),)
    assert differences(before, from_json(to_json(before))) == []
    assert differences(before, (Bound("relation", "app.t", "table, oid 1", rows=1_100, bytes=150_000),)) == []
    assert differences(before, (Bound("relation", "app.t", "table, oid 1", rows=10, bytes=8_192),)) == [], "shrank"
    assert differences(before, (Bound("relation", "app.t", "table, oid 1", rows=1_200),)) == [
        "app.t grew from ≈1,000 to ≈1,200 rows"
    ]
    assert differences(before, (Bound("relation", "app.t", "table, oid 1", rows=1_000, bytes=5_000_000),)) == [
        "app.t grew from 98 kB to 4.8 MB"
    ]
    assert differences(before, (Bound("relation", "app.t", "view, oid 2"),)) == [
        "app.t is view, oid 2 now, not table, oid 1"
    ]
    assert differences(before, (Bound("relation", "app.t", ""),)) == ["app.t is absent now, not table, oid 1"]
    assert differences(before, ()) == ["app.t is absent now, not table, oid 1"]


def test_the_description_is_stable_under_small_changes() -> None:
    """Asking again about an unchanged object gives the same text (the 2026-07-28 protocol matches answers by it)."""
    one = describe((Bound("relation", "app.t", "table, oid 1", rows=123_456, bytes=10_000_000),))
    two = describe((Bound("relation", "app.t", "table, oid 1", rows=123_499, bytes=10_010_000),))
    assert one == two and "≈120,000 rows, 9.5 MB" in one
