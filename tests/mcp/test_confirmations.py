"""Destructive statements are confirmed by elicitation or by confirm_operation; no other path runs them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from mcp_types import ElicitRequestParams, ElicitResult

from server.settings import Settings
from server.state.audit import AuditFile
from tests.helpers import mcp_client, script, sql, text_of

pytestmark = pytest.mark.anyio

SETUP = """
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id int PRIMARY KEY, total numeric);
INSERT INTO shop.orders SELECT g, g FROM generate_series(1, 1000) g;
ANALYZE shop.orders;
CREATE FUNCTION shop.purge() RETURNS int LANGUAGE sql VOLATILE AS 'DELETE FROM shop.orders RETURNING 1';
"""


class Human:
    """An elicitation callback that answers like a person would, and remembers what it was asked."""

    def __init__(self, action: str = "accept", confirm: bool = True) -> None:
        self.action = action
        self.confirm = confirm
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        if self.action == "accept":
            return ElicitResult(action="accept", content={"confirm": self.confirm})
        return ElicitResult(action=self.action)  # type: ignore[arg-type]


async def _count(url: str) -> int:
    rows = await sql(url, "SELECT count(*) FROM shop.orders")
    return int(rows[0][0])


async def _exists(url: str) -> bool:
    return bool((await sql(url, "SELECT to_regclass('shop.orders') IS NOT NULL"))[0][0])


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_elicitation_accept_runs_the_statement(make_settings: Callable[..., Settings], mode: str) -> None:
    settings = make_settings()
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    await script(url, SETUP)
    human = Human()
    async with mcp_client(settings, elicitation_callback=human, mode=mode) as client:
        result = await client.call_tool("run_sql", {"sql": "DELETE FROM shop.orders"})
    assert not result.is_error, text_of(result)
    assert result.structured_content["status"] == "ok"  # type: ignore[index]
    assert result.structured_content["rows_affected"] == 1000  # type: ignore[index]
    assert await _count(url) == 0
    (question,) = human.asked
    assert "DELETE FROM shop.orders" in question
    assert "affects: shop.orders" in question
    assert re.search(r"shop\.orders: table, oid \d+, ≈1,000 rows, \d+ kB", question), question
    assert "operation " in question and "database" in question
    (record,) = AuditFile(settings.audit_log_path).read()
    assert record["confirmation"] == "elicitation" and record["rows_affected"] == 1000
    assert record["classification"] == "destructive" and record["outcome"] == "ok"


@pytest.mark.parametrize(
    ("human", "how"),
    [(Human("decline"), "declined"), (Human("cancel"), "cancelled"), (Human("accept", confirm=False), "declined")],
)
async def test_elicitation_refusal_runs_nothing(make_settings: Callable[..., Settings], human: Human, how: str) -> None:
    settings = make_settings()
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    await script(url, SETUP)
    async with mcp_client(settings, elicitation_callback=human) as client:
        result = await client.call_tool("run_sql", {"sql": "DROP TABLE shop.orders"})
    assert not result.is_error
    assert result.structured_content["status"] == "declined"  # type: ignore[index]
    assert f"The user {how} the confirmation: nothing ran" in text_of(result)
    assert await _exists(url)
    assert AuditFile(settings.audit_log_path).read() == []


async def test_without_elicitation_confirm_operation_runs_the_stored_operation_once(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    await script(url, SETUP)
    async with mcp_client(settings) as client:
        pending = await client.call_tool("run_sql", {"sql": "TRUNCATE shop.orders"})
        data = pending.structured_content
        assert data is not None and data["status"] == "confirmation_required", text_of(pending)
        assert "TRUNCATE shop.orders" in data["summary"]
        assert "confirm_operation" in text_of(pending)
        assert await _count(url) == 1000, "nothing runs before the confirmation"

        confirmed = await client.call_tool("confirm_operation", {"operation_id": data["operation_id"]})
        assert not confirmed.is_error, text_of(confirmed)
        assert confirmed.structured_content["command"] == "TRUNCATE TABLE"  # type: ignore[index]
        assert await _count(url) == 0

        again = await client.call_tool("confirm_operation", {"operation_id": data["operation_id"]})
        unknown = await client.call_tool("confirm_operation", {"operation_id": "op_made_up"})
    assert again.is_error and "already confirmed and ran" in text_of(again)
    assert unknown.is_error and "unknown operation id" in text_of(unknown)
    (record,) = AuditFile(settings.audit_log_path).read()
    assert record["confirmation"] == "confirm_operation" and record["operation_id"] == data["operation_id"]


async def test_confirmation_expires(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(confirmation_ttl=0.3)
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    await script(url, SETUP)
    async with mcp_client(settings) as client:
        pending = await client.call_tool("run_sql", {"sql": "DROP SCHEMA shop CASCADE"})
        await asyncio.sleep(0.5)
        late = await client.call_tool("confirm_operation", {"operation_id": pending.structured_content["operation_id"]})  # type: ignore[index]
    assert late.is_error and "expired" in text_of(late)
    assert await _exists(url)


async def test_confirmed_operation_is_the_stored_sql_not_new_sql(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    await script(url, SETUP + "CREATE TABLE shop.keep (id int);")
    async with mcp_client(settings) as client:
        pending = await client.call_tool("run_sql", {"sql": "DELETE FROM shop.orders"})
        other = await client.call_tool("run_sql", {"sql": "DROP TABLE shop.keep"})
        await client.call_tool("confirm_operation", {"operation_id": pending.structured_content["operation_id"]})  # type: ignore[index]
    assert other.structured_content["status"] == "confirmation_required"  # type: ignore[index]
    assert bool((await sql(url, "SELECT to_regclass('shop.keep') IS NOT NULL"))[0][0])


async def test_volatile_function_call_needs_confirmation(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    await script(url, SETUP)
    human = Human("decline")
    async with mcp_client(settings, elicitation_callback=human) as client:
        result = await client.call_tool("run_sql", {"sql": "SELECT shop.purge()"})
        harmless = await client.call_tool("run_sql", {"sql": "SELECT random() < 2, now() IS NOT NULL"})
    assert result.structured_content["status"] == "declined"  # type: ignore[index]
    assert "purge" in human.asked[0]
    assert await _count(url) == 1000
    assert harmless.structured_content["rows"] == [[True, True]]  # type: ignore[index]
    assert len(human.asked) == 1, "built-in volatile functions such as random() are not asked about"


async def test_transaction_with_a_destructive_statement_is_confirmed_as_a_whole(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    await script(url, SETUP)
    async with mcp_client(settings) as client:
        pending = await client.call_tool(
            "run_sql_transaction",
            {
                "statements": ["INSERT INTO shop.orders VALUES (5000, 1)", "DELETE FROM shop.orders WHERE id < $1"],
                "params": [[], [10]],
            },
        )
        assert pending.structured_content["status"] == "ok"  # type: ignore[index]  # DELETE with WHERE is a write
        pending = await client.call_tool(
            "run_sql_transaction",
            {"statements": ["INSERT INTO shop.orders VALUES (6000, 1)", "ALTER TABLE shop.orders DROP COLUMN total"]},
        )
        data = pending.structured_content
        assert data is not None and data["status"] == "confirmation_required"
        assert await _count(url) == 992
        done = await client.call_tool("confirm_operation", {"operation_id": data["operation_id"]})
    assert not done.is_error, text_of(done)
    assert await _count(url) == 993
    columns = await sql(url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'orders'")
    assert columns[0][0] == 1
