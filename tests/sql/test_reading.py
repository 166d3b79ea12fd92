"""Bounded memory per call (server/sql/reading.py), judged by its effect: the peak resident memory of this process.

Large values are cut in the database and rows past the byte budget arrive without their values, so no call grows
the process by more than ``4 × max_bytes + 16 MB`` whatever the rows and values are. Before, a single 500 MB value
grew the server by about 1.4 GB to return 100 kB, and 500 MB of rows by about 490 MB.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from server.settings import Settings
from server.sql import reading
from server.sql.database import Caps, Databases, Guards, Statement
from server.sql.reading import source_position
from tests.helpers import data_of, mcp_client, script, text_of

pytestmark = pytest.mark.anyio

GUARDS = Guards(statement_timeout=60.0, lock_timeout=1.0, idle_in_transaction_timeout=60.0)
CAPS = Caps(max_rows=500, max_bytes=100_000)
BOUND = 4 * CAPS.max_bytes + 16 * 1024 * 1024
_STATUS = Path("/proc/self/status")


def _kilobytes(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in {_STATUS}")


def _reset_peak() -> bool:
    """Reset this process's peak resident size (VmHWM); False where the kernel does not offer it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _refuse_wrappers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every wrapper one PostgreSQL refuses, for this test only (the kept ones are forgotten before and after)."""
    reading._kept_wrapper.cache_clear()
    monkeypatch.setattr(reading, "_wrapper", lambda sql, *_: f"SELECT FROM ({sql}) q WHERE nonsense")
    monkeypatch.setattr(reading, "_kept_wrapper", reading._wrapper)  # restored, with its empty cache, afterwards


@pytest.fixture
async def executor(fresh_db: str) -> AsyncIterator[Databases]:
    dbs = Databases(fresh_db, GUARDS, pool_size=1)
    await dbs.run([Statement("SELECT 1", query=True)], read_only=True, caps=CAPS)  # pool, codecs: not the call's
    yield dbs
    await dbs.close()


HUGE = {
    "one 200 MB text value": "SELECT repeat('x', 200000000) AS v",
    "500 MB of rows, 5 MB each": "SELECT g, repeat('y', 5000000) AS v FROM generate_series(1, 100) g",
    "100,000 rows of 5 kB": "SELECT g, repeat('z', 5000) AS v FROM generate_series(1, 100000) g",
    "a 100 MB bytea": "SELECT decode(repeat('ab', 100000000), 'hex') AS v",
    "an array of 20 million numbers": "SELECT array_agg(g) AS v FROM generate_series(1, 20000000) g",
    "a 5 million element jsonb": "SELECT jsonb_agg(g) AS v FROM generate_series(1, 5000000) g",
    "a composite holding 100 MB": "SELECT ROW(1, repeat('w', 100000000)) AS v",
}


@pytest.mark.parametrize("query", HUGE.values(), ids=HUGE.keys())
async def test_a_call_grows_the_process_by_the_bound_whatever_it_reads(executor: Databases, query: str) -> None:
    if sys.platform != "linux" or not _reset_peak():
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak resident size")
    gc.collect()
    before = _kilobytes("VmRSS")
    _reset_peak()
    (outcome,) = await executor.run([Statement(query, query=True)], read_only=True, caps=CAPS)
    answer = json.dumps(outcome.rows, ensure_ascii=False)
    growth = _kilobytes("VmHWM") - before
    assert growth < BOUND, f"the call grew the process by {growth / 2**20:.0f} MB"
    assert outcome.rows and (outcome.truncated or "…" in answer)
    assert len(answer) < 2 * CAPS.max_bytes


async def test_a_value_over_the_whole_budget_arrives_cut_with_its_length(executor: Databases) -> None:
    (outcome,) = await executor.run(
        [Statement("SELECT 7 AS n, repeat('x', 3000000) AS v, 'short' AS s", query=True)], read_only=True, caps=CAPS
    )
    (row,) = outcome.rows
    share = CAPS.max_bytes // 3
    assert row[0] == 7 and row[2] == "short"
    assert row[1] == "x" * share + "… (3000000 chars)"
    assert outcome.truncated


async def test_rows_within_the_budget_are_whole_and_the_first_beyond_it_stops_the_answer(executor: Databases) -> None:
    (outcome,) = await executor.run(
        [Statement("SELECT g, repeat('a', 30000) AS v FROM generate_series(1, 10) g", query=True)],
        read_only=True,
        caps=CAPS,
    )
    assert [row[0] for row in outcome.rows] == [1, 2, 3] and all(len(row[1]) == 30000 for row in outcome.rows)
    assert outcome.truncated


async def test_bytea_is_cut_in_the_database_to_its_preview(executor: Databases) -> None:
    (outcome,) = await executor.run(
        [Statement("SELECT decode(repeat('ab', 1000), 'hex'), '\\xdead'::bytea, NULL::bytea", query=True)],
        read_only=True,
        caps=CAPS,
    )
    assert outcome.rows == [["\\x" + "ab" * 64 + "… (1000 bytes)", "\\xdead", None]]


async def test_a_query_the_wrapper_cannot_take_is_read_unwrapped_without_spoiling_the_transaction(
    executor: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refuse_wrappers(monkeypatch)
    outcomes = await executor.run(
        [
            Statement("SELECT 'a' || g AS v FROM generate_series(1, 3) g", query=True),
            Statement("SELECT 'b'", query=True),
        ],
        read_only=True,
        caps=CAPS,
    )
    assert [o.rows for o in outcomes] == [[["a1"], ["a2"], ["a3"]], [["b"]]]


@pytest.mark.parametrize("refused", [False, True], ids=["wrapped", "wrapper refused"])
async def test_a_statement_too_long_for_asyncpgs_cache_is_read_too(
    executor: Databases, monkeypatch: pytest.MonkeyPatch, refused: bool
) -> None:
    # asyncpg prepares such a text as the unnamed statement, which any simple query (a savepoint) ends.
    if refused:
        _refuse_wrappers(monkeypatch)
    long = "SELECT '" + "x" * 40_000 + "' AS v, 1 AS n"
    for one_round_trip in (True, False):
        executor.implicit_reads = one_round_trip
        outcomes = await executor.run(
            [Statement(long, query=True), Statement("SELECT 'b'", query=True)], read_only=True, caps=CAPS
        )
        (alone,) = await executor.run([Statement(long, query=True)], read_only=True, caps=CAPS)
        assert [o.rows for o in outcomes] == [[["x" * 40_000, 1]], [["b"]]] and alone.rows == [["x" * 40_000, 1]]


async def test_the_planner_knows_only_max_rows_plus_one_rows_are_wanted(executor: Databases, fresh_db: str) -> None:
    await script(fresh_db, "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS payload FROM generate_series(1, 3e5) g")
    started = time.perf_counter()
    (outcome,) = await executor.run(
        [Statement("SELECT payload FROM big ORDER BY id DESC", query=True)], read_only=True, caps=Caps(5, 100_000)
    )
    assert len(outcome.rows) == 5 and outcome.truncated
    assert time.perf_counter() - started < 5


def test_error_positions_point_into_the_callers_text() -> None:
    sql = "SELECT 1 +"
    wrapped = reading._wrapper(sql, ("text",), 11, 400, 16)
    start = wrapped.index("\n" + sql) + 2
    assert source_position(wrapped, sql, start + 7) == 8
    assert source_position(wrapped, sql, 3) is None


async def test_the_sql_limit_holds_per_call_across_statements(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(max_sql_bytes=10_000)
    half = "SELECT '" + "x" * 6_000 + "'"
    async with mcp_client(settings) as client:
        one = await client.call_tool("run_sql_transaction", {"statements": [half]})
        two = await client.call_tool("run_sql_transaction", {"statements": [half, half]})
    data_of(one)
    assert two.is_error and "per call" in text_of(two) and "NEON_MCP_MAX_SQL_BYTES" in text_of(two)


async def test_a_statement_too_complex_to_analyse_in_time_is_refused(make_settings: Callable[..., Settings]) -> None:
    # A budget far below what 50,000 terms take to parse on any machine (seconds here): the refusal does not depend on
    # how fast this machine happens to be.
    async with mcp_client(make_settings(max_analysis_seconds=0.05)) as client:
        started = time.perf_counter()
        result = await client.call_tool("run_sql", {"sql": "SELECT " + "+".join(["1"] * 50_000)})
        elapsed = time.perf_counter() - started
        after = await client.call_tool("run_sql", {"sql": "SELECT 1"})
    assert result.is_error and "too complex to analyse" in text_of(result)
    assert elapsed < 3, "it took the whole analysis (eight seconds here) before"
    data_of(after)
