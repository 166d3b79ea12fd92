"""JSON-safe values out of PostgreSQL, and JSON arguments coerced into parameters, on real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal

import asyncpg
import pytest

from server.errors import InvalidInput
from server.settings import Settings
from server.sql import Databases
from server.sql.reading import shape_of
from server.sql.values import BYTEA_PREVIEW_BYTES, coerce_param, estimate_size, json_lines, to_json
from tests.helpers import mcp_client, script, text_of

pytestmark = pytest.mark.anyio

TYPES = """
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE DOMAIN ratio AS float8;
CREATE TYPE pair AS (a int, b text);
"""

CASES = [
    ("1::int2, 2::int8", [1, 2]),
    ("1.50::numeric(5,2)", ["1.50"]),
    ("'NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric", ["NaN", "Infinity", "-Infinity"]),
    ("'NaN'::float8, 'Infinity'::float4, 0.5::float8", ["NaN", "Infinity", 0.5]),
    ("true, NULL::text", [True, None]),
    ("'2024-05-01'::date, '13:45:00'::time", ["2024-05-01", "13:45:00"]),
    ("'2024-05-01 10:00:00+00'::timestamptz", ["2024-05-01T10:00:00+00:00"]),
    ("'2024-05-01 10:00:00'::timestamp", ["2024-05-01T10:00:00"]),
    ("interval '1 day 2 hours 3.5 seconds', interval '-90 minutes', interval '0'", ["P1DT2H3.5S", "-PT1H30M", "PT0S"]),
    ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
    ("'\\xdeadbeef'::bytea", ["\\xdeadbeef"]),
    ("ARRAY[1, 2, NULL]::int[], ARRAY[['a', 'b'], ['c', 'd']]", [[1, 2, None], [["a", "b"], ["c", "d"]]]),
    ("ARRAY['2024-01-01'::date]", [["2024-01-01"]]),
    ("'{\"a\": [1, 2.5, null]}'::jsonb, '[true]'::json", [{"a": [1, 2.5, None]}, [True]]),
    (
        "int4range(1, 5), '[2024-01-01,2024-02-01)'::daterange, 'empty'::int4range",
        ["[1,5)", "[2024-01-01,2024-02-01)", "empty"],
    ),
    ("'happy'::mood, 5::positive", ["happy", 5]),
    ("ROW(1, 'x')::pair", [{"a": 1, "b": "x"}]),
    ("'192.168.0.1/24'::inet, '10.0.0.0/8'::cidr", ["192.168.0.1/24", "10.0.0.0/8"]),
    ("'(1,2)'::point", [[1.0, 2.0]]),
    ("B'101'::bit(3)", ["BitString(101)"]),
    ("12345678901234567890::numeric", ["12345678901234567890"]),
]


@pytest.mark.parametrize(("expression", "expected"), CASES, ids=[c[0][:40] for c in CASES])
async def test_values_come_back_json_safe(
    make_settings: Callable[..., Settings], expression: str, expected: list[object]
) -> None:
    settings = make_settings()
    await script(settings.database_url.get_secret_value(), TYPES)  # type: ignore[union-attr]
    async with mcp_client(settings) as client:
        result = await client.call_tool("run_sql", {"sql": f"SELECT {expression}"})
    assert not result.is_error, text_of(result)
    row = result.structured_content["rows"][0]  # type: ignore[index]
    if expected == ["BitString(101)"]:
        assert "101" in row[0]
        return
    assert row == expected
    json.dumps(row, allow_nan=False)  # strictly valid JSON: no NaN or Infinity literals


async def test_long_bytea_is_cut(make_settings: Callable[..., Settings]) -> None:
    async with mcp_client(make_settings()) as client:
        result = await client.call_tool("run_sql", {"sql": "SELECT decode(repeat('ab', 1000), 'hex')"})
    value = result.structured_content["rows"][0][0]  # type: ignore[index]
    assert value.startswith("\\x" + "ab" * BYTEA_PREVIEW_BYTES)
    assert value.endswith("(1000 bytes)")


async def test_parameters_are_coerced_to_their_types(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    await script(settings.database_url.get_secret_value(), TYPES)  # type: ignore[union-attr]
    async with mcp_client(settings) as client:
        result = await client.call_tool(
            "run_sql",
            {
                "sql": "SELECT $1::date + 1, $2::timestamptz, $3::numeric * 2, $4::uuid, $5::jsonb -> 'k', "
                "$6::int[], $7::bool, $8::text, $9::mood, $10::bytea",
                "params": [
                    "2024-02-28",
                    "2024-05-01T10:00:00Z",
                    0.1,
                    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                    {"k": [1]},
                    ["1", 2],
                    "yes",
                    42,
                    "sad",
                    "\\xff00",
                ],
            },
        )
    assert not result.is_error, text_of(result)
    assert result.structured_content["rows"][0] == [  # type: ignore[index]
        "2024-02-29",
        "2024-05-01T10:00:00+00:00",
        "0.2",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        [1],
        [1, 2],
        True,
        "42",
        "sad",
        "\\xff00",
    ]


@pytest.mark.parametrize(
    ("value", "type_name", "message"),
    [("seven", "int4", r"parameter \$1 expects int4"), ("maybe", "bool", "not a boolean"), ("x", "date", "date")],
)
def test_bad_parameters_name_the_parameter(value: str, type_name: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        coerce_param(value, index=1, type_name=type_name)


def test_to_json_of_python_values() -> None:
    assert to_json(Decimal("1.10")) == "1.10"
    assert to_json(dt.timedelta(days=-1)) == "-P1D"
    assert to_json(b"\x00\x01") == "\\x0001"
    assert to_json(float("-inf")) == "-Infinity"
    assert to_json((1, [2, {"a": Decimal(3)}])) == [1, [2, {"a": "3"}]]


EVERY_TYPE = ", ".join(expression for expression, _ in CASES)
NULLS = (
    "NULL::int2, NULL::int8, NULL::numeric, NULL::float8, NULL::bool, NULL::text, NULL::date, NULL::timestamptz, "
    "NULL::interval, NULL::uuid, NULL::bytea, NULL::int[], NULL::jsonb, NULL::int4range, NULL::mood, NULL::pair, "
    "NULL::inet, NULL::point"
)


async def test_rows_are_made_per_column_exactly_as_to_json_and_estimate_size_make_them(fresh_db: str) -> None:
    """The converters and sizes chosen once per column give what ``to_json`` and ``estimate_size`` give per cell."""
    await script(fresh_db, TYPES)
    conn = await asyncpg.connect(fresh_db)
    try:
        statement = await conn.prepare(f"SELECT {EVERY_TYPE}, {NULLS}, 'x' || g, g FROM generate_series(1, 3) g")
        attributes = statement.get_attributes()
        records = await statement.fetch()
    finally:
        await conn.close()
    shape = shape_of(attributes)
    json_columns = {i for i, attr in enumerate(attributes) if attr.type.name in ("json", "jsonb")}
    befores = []
    for record in records:
        # As rows were made before: json and jsonb parsed, every other value through to_json.
        before = [
            (json.loads(value) if value is not None else None) if i in json_columns else to_json(value)
            for i, value in enumerate(record)
        ]
        assert shape.plain.row(record) == before
        assert json.dumps(shape.plain.row(record)) == json.dumps(before)
        assert shape.plain.size(shape.plain.row(record)) == estimate_size(before)
        befores.append(before)
    # A batch made in one pass (column by column) is the same rows, counted the same.
    assert shape.plain.rows(records) == befores
    assert shape.plain.total(befores) == sum(map(estimate_size, befores))


def _stdlib_lines(rows: list[list[object]]) -> str:
    return "\n".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in rows)


FLOAT_FREE = [
    ("1::int2, 2::int4, 3::int8, 4::oid, true", True),
    ("'x'::text, 'y'::varchar, 'z'::char(2), 'n'::name, 1.5::numeric, now(), now()::timestamp", True),
    ("current_date, current_time, localtime, interval '1 day', gen_random_uuid(), '1.2.3.4'::inet", True),
    ("'\\x00'::bytea, ARRAY[1, 2], ARRAY['a'], ARRAY[1.5::numeric], ARRAY[now()]", True),
    # Each with a float the two encoders write differently (1e-07 and 1e-7), so that calling it float-free would fail.
    ("1e-7::float8", False),
    ("1e-7::float4", False),
    ("ARRAY[1e-7::float8]", False),
    ("'{\"a\": 1e-7}'::jsonb", False),
    ("'[1e-7]'::json", False),
    ("int4range(1, 2)", False),
    ("'(1,2)'::point", False),
    ("'happy'::mood", False),  # a type of the database's own: not PostgreSQL's, so not known to be float-free
    ("5::positive", True),  # a domain's values come described as its base type's (here int4)
    ("1e-7::ratio", False),
    ("1, 1e-7::float8", False),  # one such column is enough
]


@pytest.mark.parametrize(("expression", "float_free"), FLOAT_FREE, ids=[c[0][:40] for c in FLOAT_FREE])
async def test_only_columns_that_cannot_hold_a_float_are_float_free(
    fresh_db: str, expression: str, float_free: bool
) -> None:
    await script(fresh_db, TYPES)
    conn = await asyncpg.connect(fresh_db)
    try:
        statement = await conn.prepare(f"SELECT {expression}")
        shape = shape_of(statement.get_attributes())
        rows = shape.plain.rows(await statement.fetch())
    finally:
        await conn.close()
    assert shape.plain.float_free is float_free
    assert json_lines(rows, float_free=shape.plain.float_free) == _stdlib_lines(rows)


def test_the_fast_encoder_writes_float_free_rows_as_the_standard_library_does() -> None:
    """Every code point outside the surrogates (escapes, control characters, U+2028, astral planes), integers past
    64 bits, booleans, NULLs and nested lists: the same bytes from both encoders."""
    characters = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    rows: list[list[object]] = [["".join(characters[i : i + 4096])] for i in range(0, len(characters), 4096)]
    rows += [[0, -1, 2**63, -(2**100), True, False, None, [[1, None], ['a"b\\c\n']], "", "é\u2028\x7f\x00"]]
    assert json_lines(rows, float_free=True) == _stdlib_lines(rows)
    # A float is written differently (1e-07 by the standard library): which is why float columns are not float-free.
    assert json_lines([[1e-07]], float_free=False) == "[1e-07]"
    # A lone surrogate, which no PostgreSQL text holds, still comes out as the standard library writes it.
    assert json_lines([["\ud800"]], float_free=True) == _stdlib_lines([["\ud800"]])


async def _answers(settings: Settings, calls: list[tuple[str, dict[str, object]]]) -> list[tuple[str, str]]:
    """Each call's text and structured content, to compare byte for byte (elapsed times and each answer's own
    untrusted-data fence marker left out)."""
    out = []
    async with mcp_client(settings) as client:
        for tool, arguments in calls:
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, text_of(result)
            text = re.sub(r"\d+\.\d ms", "_ ms", text_of(result))
            text = re.sub(r"untrusted-data-[0-9a-f]+", "untrusted-data", text)
            structured = json.dumps(result.structured_content, sort_keys=True, ensure_ascii=False)
            out.append((text, re.sub(r'"elapsed_ms": [\d.]+', "", structured)))
    return out


async def test_both_read_paths_answer_byte_for_byte_alike(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every value type, NULLs, many rows and a result cut by the byte budget, answered by a read in one round trip
    and by a read in a transaction of its own: the same text and the same structured content, byte for byte."""
    settings = make_settings(max_bytes=1_000, access_mode="read-only")
    await script(settings.database_url.get_secret_value(), TYPES)  # type: ignore[union-attr]
    calls: list[tuple[str, dict[str, object]]] = [
        ("run_sql", {"sql": f"SELECT {EVERY_TYPE}"}),
        ("run_sql", {"sql": f"SELECT {NULLS}"}),
        ("run_sql", {"sql": "SELECT g, 'row ' || g AS name, g * 1.5 AS amount FROM generate_series(1, 40) g"}),
        ("run_sql", {"sql": "SELECT g, repeat('y', 30 * g) AS text FROM generate_series(1, 20) g"}),
        ("run_sql", {"sql": "SELECT repeat('z', 5000) AS alone"}),
        ("run_sql", {"sql": "SELECT g FROM generate_series(1, 600) g", "max_rows": 7}),
        ("run_sql", {"sql": "SELECT $1::int + 1 AS n, $2::text AS t", "params": [41, "hello"]}),
    ]
    answers = {}
    for path in (True, False):
        monkeypatch.setattr(Databases, "implicit_reads", path)
        answers[path] = await _answers(settings, calls)
    for one_round_trip, in_transactions in zip(answers[True], answers[False], strict=True):
        assert one_round_trip == in_transactions
