"""The audit log records who asked (tenant, session, client, tool) with what ran; the table version is written before
the call answers, in the background otherwise, and a record the database cannot take is kept, then logged in full —
never raised (the statement already ran)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import anyio
import asyncpg
import pytest

from server.settings import Settings
from server.state.audit import AuditFile, AuditRecord, AuditTable, Caller, current_caller, statement_fingerprint
from server.state.database import StateDatabase
from tests.helpers import mcp_client, script, text_of

pytestmark = pytest.mark.anyio

RECORD = AuditRecord(
    target="database=shop", sql="DELETE FROM shop.orders", classification="destructive",
    confirmation="confirm_operation", outcome="ok", rows_affected=3, operation_id="op_1",
)  # fmt: skip


async def _rows(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch("SELECT * FROM neon_mcp_state.audit_log ORDER BY id"))
    finally:
        await conn.close()


async def test_a_calls_records_carry_who_and_are_written_when_it_settles(state_url: str) -> None:
    state = StateDatabase(state_url)
    await state.open()
    try:
        log = AuditTable(state, tenant="tenant-a", replica="host:1")
        caller = Caller("run_sql", session="http:abc", client="claude-code")
        token = current_caller.set(caller)
        try:
            log.append(RECORD)
            failed = AuditRecord("database=shop", "DROP TABLE x", "destructive", "elicitation", "error", error="no")
            log.append(failed)
        finally:
            current_caller.reset(token)
        assert await _rows(state_url) == []  # queued until the call settles
        await caller.settle()
        first, second = await _rows(state_url)
    finally:
        await state.close()
    assert dict(first) | {"id": 0, "at": None} == {
        "id": 0, "at": None, "tenant": "tenant-a", "session": "http:abc", "client": "claude-code",
        "replica": "host:1", "tool": "run_sql", "target": "database=shop",
        "statement_fingerprint": statement_fingerprint("DELETE FROM shop.orders"), "sql": "DELETE FROM shop.orders",
        "classification": "destructive", "confirmation": "confirm_operation", "operation_id": "op_1",
        "outcome": "ok", "rows_affected": 3, "error": None,
    }  # fmt: skip
    assert (second["outcome"], second["error"], second["confirmation"]) == ("error", "no", "elicitation")
    assert first["at"] <= second["at"]


async def test_a_record_outside_any_call_is_written_by_itself(state_url: str) -> None:
    state = StateDatabase(state_url)
    await state.open()
    try:
        AuditTable(state, tenant="t", replica="r").append(RECORD)
        with anyio.fail_after(5):
            while not await _rows(state_url):
                await anyio.sleep(0.02)
        (row,) = await _rows(state_url)
        assert row["tool"] is None and row["session"] is None and row["sql"] == RECORD.sql
    finally:
        await state.close()


async def test_a_record_the_database_cannot_take_is_kept_then_logged_never_raised(
    state_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = StateDatabase(state_url)
    await state.open()
    log = AuditTable(state, tenant="t", replica="r")
    await state.close()  # the database is gone from under the log
    caller = Caller("run_sql")
    token = current_caller.set(caller)
    log.append(RECORD)
    current_caller.reset(token)
    with caplog.at_level(logging.ERROR):
        await caller.settle()  # does not raise
        assert "1 record(s) not written yet" in caplog.text
        await log.aclose()
    lost = [r.getMessage() for r in caplog.records if "audit record not written" in r.getMessage()]
    assert len(lost) == 1 and '"sql": "DELETE FROM shop.orders"' in lost[0] and '"rows_affected": 3' in lost[0]


async def test_the_file_carries_who_too(tmp_path: Path) -> None:
    log = AuditFile(tmp_path / "audit.jsonl", tenant="tenant-a")
    token = current_caller.set(Caller("run_sql", session="sse:1", client="inspector"))
    try:
        log.append(RECORD)
    finally:
        current_caller.reset(token)
    (entry,) = log.read()
    assert {k: entry[k] for k in ("tenant", "session", "client", "tool", "statement_fingerprint", "sql")} == {
        "tenant": "tenant-a", "session": "sse:1", "client": "inspector", "tool": "run_sql",
        "statement_fingerprint": statement_fingerprint(RECORD.sql), "sql": RECORD.sql,
    }  # fmt: skip


async def test_through_the_server_a_write_is_in_the_table_when_the_call_answers(
    make_settings: Callable[..., Settings], state_url: str
) -> None:
    settings = make_settings(state_url=state_url)
    target = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    await script(target, "CREATE TABLE t (n int)")
    async with mcp_client(settings) as client:
        result = await client.call_tool("run_sql", {"sql": "INSERT INTO t VALUES (1), (2)"})
        assert not result.is_error, text_of(result)
        (row,) = await _rows(state_url)  # before the session ends: written before the answer
    assert (row["tool"], row["client"], row["sql"], row["rows_affected"], row["outcome"]) == (
        "run_sql", "mcp", "INSERT INTO t VALUES (1), (2)", 2, "ok",
    )  # fmt: skip
    assert not settings.audit_log_path.exists()  # the table replaces the file
