"""No password literal leaves the server: an administrator's ``ALTER ROLE … PASSWORD '…'``, read back from
pg_stat_statements and pg_stat_activity, and an agent's own, reach no tool answer and not the audit log.

The server's log output is checked over a real server process in ``tests/transport/test_boundary.py``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from server.redaction import redact, redact_text, redact_value
from server.settings import Settings
from tests.helpers import data_of, mcp_client, script, text_of

pytestmark = pytest.mark.anyio

R = "'[redacted]'"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ALTER ROLE x PASSWORD 'se''cret'", f"ALTER ROLE x PASSWORD {R}"),
        ("alter user x with encrypted password 'secret' valid until 'infinity'", None),
        ("CREATE ROLE x LOGIN PASSWORD E'sec\\'ret'", f"CREATE ROLE x LOGIN PASSWORD {R}"),
        ("create role x password $q$secret$q$", f"create role x password {R}"),
        ("ALTER ROLE x PASSWORD 'secret", f"ALTER ROLE x PASSWORD {R}"),  # cut short by the statistics view
        ("select dblink_connect('c', 'host=h password=secret dbname=d')", None),
        ("select * from dblink('postgresql://bob:secret@db/x', 'select 1') as t(a int)", None),
        ("CREATE SERVER s FOREIGN DATA WRAPPER w OPTIONS (host 'h', password 'secret')", None),
        ("CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'a', password 'secret')", None),
        ("ALTER USER MAPPING FOR u SERVER s OPTIONS (SET password 'secret')", None),
        ("CREATE SUBSCRIPTION s CONNECTION 'host=h sslpassword=secret' PUBLICATION p", None),
        ("SELECT * FROM users WHERE password = 'secret'", None),
        ("-- password 'secret'\nSELECT 1", None),
    ],
)
def test_password_literals_are_redacted(sql: str, expected: str | None) -> None:
    redacted = redact(sql)
    assert "secret" not in redacted and "[redacted]" in redacted, redacted
    if expected is not None:
        assert redacted == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT password FROM users",
        "ALTER ROLE x PASSWORD $1",  # normalised by pg_stat_statements
        "SELECT 'it''s fine', 'https://example.com/x'",
        "ALTER ROLE x PASSWORD NULL",
    ],
)
def test_text_without_a_password_literal_is_unchanged(sql: str) -> None:
    assert redact(sql) == sql
    assert redact_text(sql) == sql


def test_prose_and_values_are_redacted_by_pattern() -> None:
    assert "secret" not in redact_text("role x can't use password 'secret' here: see password=secret")
    assert redact_value([["a", "mysql://u:secret@h/db", 1], {"k": "password=secret"}]) == [
        ["a", "mysql://u:[redacted]@h/db", 1],
        {"k": "password=[redacted]"},
    ]


async def _keep_idle_in_transaction(url: str, statement: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await conn.execute("BEGIN")
    await conn.execute(statement)
    return conn


async def test_an_administrators_password_is_not_read_back(
    make_settings: Callable[..., Settings], fresh_db: str
) -> None:
    secret = "s3cr3t-" + secrets.token_hex(6)
    role = "r_" + secrets.token_hex(4)
    await script(
        fresh_db, f"CREATE EXTENSION pg_stat_statements; CREATE ROLE {role}; SELECT pg_stat_statements_reset()"
    )
    # The administrator, in a session of their own: once done, once left open (pg_stat_activity shows it).
    await script(fresh_db, f"ALTER ROLE {role} PASSWORD '{secret}'")
    idle = await _keep_idle_in_transaction(fresh_db, f"ALTER ROLE {role} ENCRYPTED PASSWORD '{secret}'")
    try:
        await asyncio.sleep(5.5)  # health_check reports sessions idle in a transaction for 5 s or more
        settings = make_settings(access_mode="read-only")
        answers: list[Any] = []
        async with mcp_client(settings) as client:
            slow = await client.call_tool("list_slow_queries", {"limit": 100})
            health = await client.call_tool("health_check", {})
            statements = await client.call_tool(
                "run_sql", {"sql": "SELECT query FROM pg_stat_statements WHERE query ILIKE 'alter role%'"}
            )
            activity = await client.call_tool(
                "run_sql", {"sql": "SELECT query FROM pg_stat_activity WHERE query ILIKE 'alter role%'"}
            )
            answers += [slow, health, statements, activity]
    finally:
        await idle.close()
    for answer in answers:
        assert not answer.is_error, text_of(answer)
        everything = text_of(answer) + json.dumps(answer.structured_content)
        assert secret not in everything, everything
    assert "ALTER ROLE" in text_of(slow) and "[redacted]" in text_of(slow), "the statement is listed, redacted"
    assert "[redacted]" in text_of(health), text_of(health)
    assert data_of(statements)["rows"] and data_of(activity)["rows"], "the rows are there, redacted"


async def test_an_agents_password_stays_out_of_the_audit_log_and_errors(
    make_settings: Callable[..., Settings],
) -> None:
    secret = "s3cr3t-" + secrets.token_hex(6)
    role = "r_" + secrets.token_hex(4)
    settings = make_settings()
    await script(
        settings.database_url.get_secret_value(),  # type: ignore[union-attr]
        "CREATE SCHEMA app; CREATE FUNCTION app.connect(text) RETURNS int LANGUAGE plpgsql STABLE AS "
        "$$ BEGIN RAISE EXCEPTION 'could not connect with %', $1 USING HINT = 'check ' || $1; END $$",
    )
    async with mcp_client(settings) as client:
        made = await client.call_tool("run_sql", {"sql": f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'"})
        failed = await client.call_tool("run_sql", {"sql": f"ALTER ROLE {role}_missing PASSWORD '{secret}'"})
        raised = await client.call_tool("run_sql", {"sql": f"SELECT app.connect('host=h password={secret}')"})
    assert not made.is_error, text_of(made)
    assert failed.is_error and raised.is_error
    for answer in (made, failed, raised):
        assert secret not in text_of(answer) + json.dumps(answer.structured_content)
    log = settings.audit_log_path.read_text()
    assert f"CREATE ROLE {role} LOGIN PASSWORD '[redacted]'" in log
    assert secret not in log
