"""A confirmation is bound to objects, not to words: the human's yes runs only on the objects the human was shown.

Each attack is judged by its effect: the table the human did not agree to drop is still there, with its rows.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
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


async def _waiting_on_a_lock(url: str, other_than: int) -> bool:
    rows = await sql(
        url, f"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> {int(other_than)}"
    )
    return int(rows[0][0]) > 0


@pytest.mark.parametrize("statement", ["DROP TABLE app.scratch", "TRUNCATE app.scratch"])
async def test_a_swap_racing_the_confirmed_run_is_caught_inside_its_transaction(
    make_settings: Callable[..., Settings], statement: str
) -> None:
    """The names change hands after the objects were checked again and before the statement takes its lock: another
    session swaps the tables in a transaction it holds open while the confirmed run starts, then commits. PostgreSQL
    then resolves the name again, to the other table; the run holds the confirmed name in its own transaction and
    finds it is another object now."""
    settings = make_settings()
    url = _url(settings)
    await script(url, SETUP)
    async with mcp_client(settings) as client:
        pending = (await client.call_tool("run_sql", {"sql": statement})).structured_content
        assert pending is not None and SMALL.search(pending["summary"]), pending
        swapper = await asyncpg.connect(url)
        try:
            swap = swapper.transaction()
            await swap.start()
            await swapper.execute("ALTER TABLE app.scratch RENAME TO scratch_old")
            await swapper.execute("ALTER TABLE app.ledger RENAME TO scratch")
            confirming = asyncio.create_task(
                client.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
            )
            for _ in range(200):
                if await _waiting_on_a_lock(url, swapper.get_server_pid()):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the confirmed run never waited for the swapping transaction")
            await swap.commit()
            confirmed = await asyncio.wait_for(confirming, 30)
        finally:
            await swapper.close()
    assert await _scratch_rows(url) == 100, "the table the human never agreed to touch is intact"
    assert confirmed.is_error and "another object now" in text_of(confirmed), text_of(confirmed)


KINDS = """
CREATE SCHEMA app;
CREATE TABLE app.t (id int PRIMARY KEY, part int) ;
INSERT INTO app.t SELECT g, g % 3 FROM generate_series(1, 20) g;
CREATE INDEX t_part ON app.t (part);
CREATE VIEW app.v AS SELECT * FROM app.t;
CREATE MATERIALIZED VIEW app.mv AS SELECT * FROM app.t;
CREATE SEQUENCE app.s;
CREATE TABLE app.p (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE app.p_2026 PARTITION OF app.p FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO app.p SELECT g, date '2026-01-01' + g FROM generate_series(1, 20) g;
ANALYZE;
"""


@pytest.mark.parametrize(
    ("statement", "gone"),
    [
        ("DROP VIEW app.v", "SELECT to_regclass('app.v') IS NULL"),
        ("DROP MATERIALIZED VIEW app.mv", "SELECT to_regclass('app.mv') IS NULL"),
        ("DROP SEQUENCE app.s", "SELECT to_regclass('app.s') IS NULL"),
        ("DROP INDEX app.t_part", "SELECT to_regclass('app.t_part') IS NULL"),
        ("DROP INDEX CONCURRENTLY app.t_part", "SELECT to_regclass('app.t_part') IS NULL"),
        ("TRUNCATE app.p", "SELECT count(*) = 0 FROM app.p"),
        ("ALTER TABLE app.t DROP COLUMN part CASCADE", "SELECT count(*) = 0 FROM pg_attribute WHERE attname = 'part' "
         "AND attrelid = 'app.t'::regclass AND NOT attisdropped"),
        ("DROP SCHEMA app CASCADE", "SELECT to_regnamespace('app') IS NULL"),
    ],
)  # fmt: skip
async def test_every_kind_of_bound_object_runs_once_confirmed(
    make_settings: Callable[..., Settings], statement: str, gone: str
) -> None:
    """Holding the confirmed objects (locks where PostgreSQL takes them, OIDs everywhere) refuses no legitimate run."""
    settings = make_settings()
    url = _url(settings)
    await script(url, KINDS)
    async with mcp_client(settings) as client:
        pending = (await client.call_tool("run_sql", {"sql": statement})).structured_content
        assert pending is not None and pending["status"] == "confirmation_required", pending
        confirmed = await client.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
    assert not confirmed.is_error, text_of(confirmed)
    assert (await sql(url, gone))[0][0] is True


async def test_a_role_that_may_only_delete_runs_its_confirmed_delete(
    make_settings: Callable[..., Settings], fresh_db: str
) -> None:
    """The run locks what it holds in ROW EXCLUSIVE mode, which DELETE privilege alone allows."""
    role, password = f"deleter_{secrets.token_hex(4)}", secrets.token_hex(12)
    await script(
        fresh_db,
        SETUP + f"CREATE ROLE {role} LOGIN PASSWORD '{password}'; GRANT USAGE ON SCHEMA app TO {role}; "
        f"GRANT DELETE ON app.ledger TO {role};",
    )
    parts = urlsplit(fresh_db)
    own_url = urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}"))
    try:
        async with mcp_client(make_settings(database_url=own_url)) as client:
            pending = (await client.call_tool("run_sql", {"sql": "DELETE FROM app.ledger"})).structured_content
            assert pending is not None and pending["status"] == "confirmation_required", pending
            confirmed = await client.call_tool("confirm_operation", {"operation_id": pending["operation_id"]})
        assert not confirmed.is_error, text_of(confirmed)
        assert (await sql(fresh_db, "SELECT count(*) FROM app.ledger"))[0][0] == 0
    finally:
        await script(fresh_db, f"DROP OWNED BY {role}; DROP ROLE {role}")


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
