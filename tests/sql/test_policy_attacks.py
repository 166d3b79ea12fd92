"""Every policy rule, attacked through a real MCP client on real PostgreSQL: refused with its reason, nothing changed.

The same attacks run against the executor with the policy switched off live in test_database.py (what the database
layer holds by itself); the rule-by-rule classification table lives in test_sql_policy.py. Every attack runs twice:
with reads in one round trip (one implicit transaction on a session holding the guards, the default on a direct
connection) and with each read in a transaction of its own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from server.settings import Settings
from server.sql import Databases
from tests.helpers import mcp_client, script, sql, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True, params=["one-round-trip reads", "reads in transactions"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Databases, "implicit_reads", request.param == "one-round-trip reads")


SETUP = """
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE SCHEMA app;
CREATE TABLE app.secrets (id int, value text);
INSERT INTO app.secrets VALUES (1, 'keep me');
CREATE SEQUENCE app.seq;
"""

# (attack, what the refusal must say)
FORBIDDEN = [
    ("SELECT 1; COMMIT; DROP TABLE app.secrets", "holds 3 statements"),
    ("COMMIT", "own transaction"),
    ("BEGIN READ WRITE", "own transaction"),
    ("ROLLBACK", "own transaction"),
    ("SAVEPOINT s", "own transaction"),
    ("SET TRANSACTION READ WRITE", "transaction"),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "access mode"),
    ("SET statement_timeout = 0", "statement_timeout"),
    ("SET LOCAL lock_timeout = 0", "lock_timeout"),
    ("RESET ALL", "RESET ALL"),
    ("SELECT set_config('transaction_read_only', 'off', true)", "transaction_read_only"),
    ("SELECT set_config(current_user, 'x', false)", "set_config"),
    ("SET ROLE postgres", "role"),
    ("SET SESSION AUTHORIZATION postgres", "session_authorization"),
    ("SET session_replication_role = replica", "session_replication_role"),
    ("SET row_security = off", "row_security"),
    ("SET search_path = app", "search_path"),
    ("COPY app.secrets TO PROGRAM 'id'", "COPY"),
    ("COPY app.secrets FROM '/etc/passwd'", "COPY"),
    ("LOAD 'auto_explain'", "LOAD"),
    ("SELECT * FROM dblink('dbname=postgres', 'select 1') AS t(a int)", "dblink"),
    ("SELECT dblink_exec('dbname=postgres', 'drop table app.secrets')", "dblink"),
    ("SELECT U&\"\\0064blink_exec\"('dbname=postgres', 'drop table app.secrets')", "dblink"),
    ("SELECT lo_import('/etc/passwd')", "lo_import"),
    ("SELECT lo_export(1, '/tmp/x')", "lo_export"),
    ("SELECT pg_catalog.pg_read_file('/etc/passwd')", "pg_read_file"),
    ("SELECT * FROM pg_read_binary_file('/etc/passwd')", "pg_read_binary_file"),
    ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
    ("SELECT pg_stat_file('postgresql.conf')", "pg_stat_file"),
    ("SELECT pg_terminate_backend(pg_backend_pid())", "pg_terminate_backend"),
    ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
    ("SELECT pg_reload_conf()", "pg_reload_conf"),
    ("SELECT pg_rotate_logfile()", "pg_rotate_logfile"),
    ("SELECT pg_advisory_lock(1)", "advisory"),
    ("SELECT pg_try_advisory_lock(1)", "advisory"),
    ("SELECT pg_notify('c', 'p')", "pg_notify"),
    ("NOTIFY c", "NOTIFY"),
    ("LISTEN c", "LISTEN"),
    ("SELECT pg_import_system_collations('pg_catalog')", "pg_import_system_collations"),
    ("WITH x AS (SELECT pg_read_file('/etc/passwd')) SELECT * FROM x", "pg_read_file"),
    ("SELECT (SELECT pg_read_file('/etc/passwd'))", "pg_read_file"),
    ("EXPLAIN ANALYZE SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
    ("CREATE TABLE app.t (a text DEFAULT pg_read_file('/etc/passwd'))", "pg_read_file"),
    ("PREPARE p AS SELECT 1", "prepared"),
    ("DEALLOCATE ALL", "prepared"),
    ("DECLARE c CURSOR FOR SELECT 1", "cursor"),
    ("DISCARD ALL", "DISCARD"),
    ("ALTER SYSTEM SET fsync = off", "ALTER SYSTEM"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("SELECT query_to_xml('select dblink_exec(''x'', ''y'')', true, true, '')", "query_to_xml"),
]


@pytest.fixture
async def attacked(make_settings: Callable[..., Settings]) -> Settings:
    settings = make_settings(access_mode="full")
    await script(settings.database_url.get_secret_value(), SETUP)  # type: ignore[union-attr]
    return settings


@pytest.mark.parametrize(("attack", "reason"), FORBIDDEN, ids=[a for a, _ in FORBIDDEN])
async def test_forbidden_everywhere_with_the_reason(attacked: Settings, attack: str, reason: str) -> None:
    url = attacked.database_url.get_secret_value()  # type: ignore[union-attr]
    async with mcp_client(attacked) as client:
        result = await client.call_tool("run_sql", {"sql": attack})
        in_transaction = await client.call_tool("run_sql_transaction", {"statements": ["SELECT 1", attack]})
    assert result.is_error, text_of(result)
    assert reason.lower() in text_of(result).lower()
    assert in_transaction.is_error
    assert (await sql(url, "SELECT value FROM app.secrets"))[0][0] == "keep me"


READ_ONLY_REFUSED = [
    "INSERT INTO app.secrets VALUES (2, 'x')",
    "UPDATE app.secrets SET value = 'gone' WHERE id = 1",
    "DELETE FROM app.secrets WHERE id = 1",
    "WITH d AS (DELETE FROM app.secrets RETURNING *) SELECT * FROM d",
    "SELECT * FROM app.secrets FOR UPDATE",
    "SELECT nextval('app.seq')",
    "SELECT * INTO app.copy FROM app.secrets",
    "CREATE TABLE app.x (a int)",
    "DROP TABLE app.secrets",
    "TRUNCATE app.secrets",
    "GRANT SELECT ON app.secrets TO PUBLIC",
    "DO $$ BEGIN DELETE FROM app.secrets; END $$",
    "EXPLAIN ANALYZE DELETE FROM app.secrets WHERE id = 1",
]


@pytest.mark.parametrize("attack", READ_ONLY_REFUSED)
async def test_read_only_mode_refuses_everything_but_reads(make_settings: Callable[..., Settings], attack: str) -> None:
    settings = make_settings(access_mode="read-only")
    url = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    await script(url, SETUP)
    async with mcp_client(settings) as client:
        result = await client.call_tool("run_sql", {"sql": attack})
    assert result.is_error and "read-only mode" in text_of(result)
    assert (await sql(url, "SELECT value FROM app.secrets"))[0][0] == "keep me"
    assert (await sql(url, "SELECT last_value, is_called FROM app.seq"))[0][1] is False


DESTRUCTIVE = [
    "DROP TABLE app.secrets",
    "DROP SCHEMA app CASCADE",
    "TRUNCATE app.secrets",
    "DELETE FROM app.secrets",
    "UPDATE app.secrets SET value = 'gone'",
    "ALTER TABLE app.secrets DROP COLUMN value",
    "ALTER TABLE app.secrets ALTER COLUMN value TYPE int USING 0",
    "REVOKE SELECT ON app.secrets FROM PUBLIC",
    "DO $$ BEGIN DELETE FROM app.secrets; END $$",
    "VACUUM FULL app.secrets",
]


@pytest.mark.parametrize("attack", DESTRUCTIVE)
async def test_destructive_statements_wait_for_confirmation(attacked: Settings, attack: str) -> None:
    url = attacked.database_url.get_secret_value()  # type: ignore[union-attr]
    async with mcp_client(attacked) as client:
        result = await client.call_tool("run_sql", {"sql": attack})
    assert not result.is_error, text_of(result)
    assert result.structured_content["status"] == "confirmation_required"  # type: ignore[index]
    assert (await sql(url, "SELECT value FROM app.secrets"))[0][0] == "keep me"
