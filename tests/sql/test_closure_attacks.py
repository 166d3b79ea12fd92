"""Attacks hidden behind the statement, through a real MCP client on a real cluster, judged by their effect.

Each attack reaches something the statement's text does not show: a view, operator, cast, domain, aggregate,
attribute notation, row-level security policy, trigger, rule, default, a function whose STABLE or IMMUTABLE label
lies, a foreign table, a function defined in the same call. They run through a server connected as a superuser and
through one connected as a non-superuser that owns the schema (what a user pointing the server at their own database
has); the effects (rows deleted through dblink's own connection, a file written by ``COPY … TO PROGRAM`` or
``lo_export``, a host file read, another session terminated, a table wiped, a role or setting changed) are checked in
the database and on disk, not in the server's answer.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg
import pytest

from server.local_neon.clusters import Cluster
from server.settings import Settings
from tests.helpers import mcp_client, script, sql, text_of

pytestmark = pytest.mark.anyio

SECRET = "s3cret-" + secrets.token_hex(8)


@dataclass(frozen=True)
class Attacked:
    """The module's database: its superuser and owner URLs, the owner's name, and a directory the server can write."""

    superuser: str
    owner: str
    owner_name: str
    drop: Path


def _setup(owner: str, password: str, conninfo: str, drop: Path) -> tuple[str, str]:
    """SQL run as the superuser, then as the owner: the objects each attack goes through."""
    admin = f"""
    CREATE EXTENSION dblink;
    CREATE EXTENSION file_fdw;
    CREATE ROLE {owner} LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEROLE;
    CREATE SCHEMA app AUTHORIZATION {owner};
    GRANT CREATE ON SCHEMA public TO {owner};
    CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
    CREATE FOREIGN TABLE app.host_file (line text) SERVER files OPTIONS (filename '{drop}/secret');
    CREATE FOREIGN TABLE app.host_program (line text) SERVER files OPTIONS (program 'touch {drop}/from-fdw');
    GRANT SELECT ON app.host_file, app.host_program TO {owner};
    CREATE FUNCTION app.innocent(text) RETURNS text LANGUAGE internal STABLE AS 'pg_read_file_all';
    """
    wipe = f"PERFORM dblink_exec('{conninfo}', 'DELETE FROM app.canary')"
    owned = f"""
    CREATE TABLE app.canary (id int PRIMARY KEY, v text);
    CREATE FUNCTION app.lying(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN {wipe}; RETURN $1; END $$;
    CREATE FUNCTION app.lying_bool(int) RETURNS bool LANGUAGE plpgsql STABLE AS $$ BEGIN {wipe}; RETURN true; END $$;
    CREATE FUNCTION app.lying_pair(int, int) RETURNS bool LANGUAGE plpgsql IMMUTABLE
      AS $$ BEGIN {wipe}; RETURN true; END $$;
    CREATE FUNCTION app.volatile_wipe() RETURNS int LANGUAGE plpgsql
      AS $$ BEGIN DELETE FROM app.canary; RETURN 1; END $$;
    CREATE FUNCTION app.calls_volatile() RETURNS int LANGUAGE plpgsql STABLE
      AS $$ BEGIN RETURN app.volatile_wipe(); END $$;
    CREATE FUNCTION app.wipe_bool() RETURNS bool LANGUAGE plpgsql
      AS $$ BEGIN DELETE FROM app.canary; RETURN true; END $$;
    CREATE FUNCTION app.wipe_pair(int, int) RETURNS bool LANGUAGE plpgsql
      AS $$ BEGIN DELETE FROM app.canary; RETURN true; END $$;
    CREATE FUNCTION app.wipe_trigger() RETURNS trigger LANGUAGE plpgsql
      AS $$ BEGIN DELETE FROM app.canary; RETURN NEW; END $$;
    CREATE FUNCTION app.run_program() RETURNS int LANGUAGE plpgsql VOLATILE
      AS $$ BEGIN COPY (SELECT 1) TO PROGRAM 'touch {drop}/from-copy'; RETURN 1; END $$;
    CREATE FUNCTION app.export() RETURNS int LANGUAGE plpgsql VOLATILE
      AS $$ DECLARE o oid; BEGIN o := lo_from_bytea(0, 'x'); PERFORM lo_export(o, '{drop}/from-lo-export');
      RETURN 1; END $$;
    CREATE FUNCTION app.kill(int) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT pg_terminate_backend($1)';
    CREATE FUNCTION app.reads_file() RETURNS text LANGUAGE sql STABLE AS $$ SELECT pg_read_file('{drop}/secret') $$;

    CREATE VIEW app.v AS SELECT id, app.lying(id) AS x FROM app.canary;
    CREATE OPERATOR app.=== (leftarg = int, rightarg = int, function = app.lying_pair);
    CREATE OPERATOR app.=!= (leftarg = int, rightarg = int, function = app.wipe_pair);
    CREATE TYPE app.wrapped AS (n int);
    CREATE FUNCTION app.wrap(int) RETURNS app.wrapped LANGUAGE plpgsql IMMUTABLE
      AS $$ BEGIN {wipe}; RETURN ROW($1); END $$;
    CREATE CAST (int AS app.wrapped) WITH FUNCTION app.wrap(int);
    CREATE DOMAIN app.guarded AS int CHECK (app.lying_bool(VALUE));
    CREATE FUNCTION app.step(int, int) RETURNS int LANGUAGE plpgsql IMMUTABLE
      AS $$ BEGIN {wipe}; RETURN $1 + $2; END $$;
    CREATE AGGREGATE app.sum_all(int) (sfunc = app.step, stype = int, initcond = '0');
    CREATE FUNCTION public.peek(app.canary) RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN {wipe}; RETURN 1; END $$;
    CREATE TABLE app.secured (id int);
    INSERT INTO app.secured VALUES (1);
    ALTER TABLE app.secured ENABLE ROW LEVEL SECURITY;
    ALTER TABLE app.secured FORCE ROW LEVEL SECURITY;
    CREATE POLICY peek ON app.secured USING (app.lying_bool(id));

    CREATE TABLE app.orders (id int);
    CREATE TRIGGER wipe AFTER INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.wipe_trigger();
    CREATE TABLE app.ruled (id int);
    CREATE RULE wipe AS ON INSERT TO app.ruled DO ALSO DELETE FROM app.canary;
    CREATE TABLE app.defaulted (id int, w int DEFAULT app.volatile_wipe());
    CREATE TABLE app.checked (id int);
    ALTER TABLE app.checked ENABLE ROW LEVEL SECURITY;
    ALTER TABLE app.checked FORCE ROW LEVEL SECURITY;
    CREATE POLICY everything ON app.checked USING (true) WITH CHECK (app.wipe_bool());
    CREATE VIEW app.wiping AS SELECT app.volatile_wipe() AS w;
    CREATE TYPE app.wiped AS (n int);
    CREATE FUNCTION app.wipe_cast(int) RETURNS app.wiped LANGUAGE plpgsql
      AS $$ BEGIN DELETE FROM app.canary; RETURN ROW($1); END $$;
    CREATE CAST (int AS app.wiped) WITH FUNCTION app.wipe_cast(int);
    CREATE TABLE app.log_ops (ok bool);
    CREATE TABLE app.log_casts (w app.wiped);
    CREATE TABLE app.victim (id int);
    CREATE TABLE app.ext_orders (id int);
    CREATE TRIGGER through_dblink AFTER INSERT ON app.ext_orders FOR EACH ROW EXECUTE FUNCTION app.wipe_trigger();
    CREATE FUNCTION app.dblink_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {wipe}; RETURN NEW; END $$;
    CREATE TRIGGER far AFTER INSERT ON app.ext_orders FOR EACH ROW EXECUTE FUNCTION app.dblink_trigger();
    """
    return admin, owned


@pytest.fixture(scope="module")
def drop_dir() -> Iterator[Path]:
    """A directory the database server (running as another user) may write to; what it holds is the evidence."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="neon-mcp-drop-"))
    path.chmod(0o777)
    (path / "secret").write_text(SECRET + "\n")
    (path / "secret").chmod(0o644)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
async def attacked(pg_cluster: Cluster, drop_dir: Path) -> AsyncIterator[Attacked]:
    name = f"attacked_{secrets.token_hex(4)}"
    owner, password = f"owner_{secrets.token_hex(4)}", secrets.token_hex(12)
    await script(pg_cluster.dsn(), f'CREATE DATABASE "{name}"')
    superuser = pg_cluster.dsn(name)
    owner_url = pg_cluster.dsn(name, user=owner, password=password)
    conninfo = f"host={pg_cluster.host} port={pg_cluster.port} dbname={name} user={owner} password={password}"
    admin, owned = _setup(owner, password, conninfo, drop_dir)
    await script(superuser, admin)
    await script(owner_url, owned)
    try:
        yield Attacked(superuser, owner_url, owner, drop_dir)
    finally:
        await script(pg_cluster.dsn(), f'DROP DATABASE "{name}" WITH (FORCE)')
        await script(pg_cluster.dsn(), f"DROP ROLE IF EXISTS {owner}")


Role = Literal["superuser", "owner"]
ROLES: list[Role] = ["superuser", "owner"]


@pytest.fixture
async def fresh(attacked: Attacked) -> Attacked:
    """The canary rows back, and no evidence left from an earlier test."""
    await script(attacked.superuser, "TRUNCATE app.canary; INSERT INTO app.canary VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    for evidence in attacked.drop.glob("from-*"):
        evidence.unlink()
    return attacked


def _settings(attacked: Attacked, role: Role, mode: str, home: Path) -> Settings:
    url = attacked.superuser if role == "superuser" else attacked.owner
    return Settings(database_url=url, home=home, access_mode=mode)  # type: ignore[arg-type]


async def _call(settings: Settings, tool: str, arguments: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
    async with mcp_client(settings) as client:
        result = await client.call_tool(tool, arguments)
    return result.is_error, text_of(result), dict(result.structured_content or {})


async def _untouched(attacked: Attacked) -> None:
    """Nothing happened: the canary keeps its rows and no file was written."""
    assert (await sql(attacked.superuser, "SELECT count(*) FROM app.canary"))[0][0] == 3
    assert sorted(p.name for p in attacked.drop.glob("from-*")) == []


READS = [
    pytest.param("SELECT * FROM app.v", "view app.v → function app.lying()", id="view"),
    pytest.param("SELECT 1 OPERATOR(app.===) 1", "operator app.===", id="operator"),
    pytest.param("SELECT 1::app.wrapped", "cast integer → app.wrapped", id="cast"),
    pytest.param("SELECT 1::app.guarded", "domain app.guarded", id="domain"),
    pytest.param("SELECT app.sum_all(id) FROM app.canary", "aggregate app.sum_all()", id="aggregate"),
    pytest.param("SELECT c.peek FROM app.canary AS c", "function public.peek()", id="attribute-notation"),
    pytest.param("SELECT * FROM app.secured", "policy peek on app.secured", id="row-level-security"),
    pytest.param("SELECT app.lying(1)", "function app.lying() → dblink_exec() works through", id="lying-immutable"),
    pytest.param("SELECT app.calls_volatile()", "function app.volatile_wipe()", id="stable-calls-volatile"),
    pytest.param("SELECT app.run_program()", "COPY", id="copy-to-program"),
    pytest.param("SELECT app.export()", "lo_export", id="lo-export"),
    pytest.param("SELECT app.reads_file()", "pg_read_file", id="pg-read-file"),
    pytest.param("SELECT app.innocent('/etc/hostname')", "files on the database host", id="renamed-pg-read-file"),
    pytest.param("SELECT * FROM app.host_file", "file_fdw", id="file-fdw-file"),
    pytest.param("SELECT * FROM app.host_program", "file_fdw", id="file-fdw-program"),
    pytest.param("EXPLAIN SELECT app.lying(1)", "function app.lying()", id="plain-explain-folds"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("attack", "reason"), READS)
async def test_reads_that_reach_further_are_refused_in_read_only_mode(
    fresh: Attacked, tmp_path: Path, role: Role, attack: str, reason: str
) -> None:
    failed, text, _ = await _call(_settings(fresh, role, "read-only", tmp_path), "run_sql", {"sql": attack})
    assert failed, text
    assert reason in text, text
    assert SECRET not in text
    await _untouched(fresh)


@pytest.mark.parametrize("role", ROLES)
async def test_another_session_survives_a_function_that_would_terminate_it(
    fresh: Attacked, tmp_path: Path, role: Role
) -> None:
    victim = await asyncpg.connect(fresh.owner)
    try:
        pid = await victim.fetchval("SELECT pg_backend_pid()")
        for mode in ("read-only", "full"):
            failed, text, _ = await _call(
                _settings(fresh, role, mode, tmp_path), "run_sql", {"sql": f"SELECT app.kill({pid})"}
            )
            assert failed and "pg_terminate_backend" in text, text
        assert await sql(fresh.superuser, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == [(1,)]
    finally:
        await victim.close()


WRITES = [
    pytest.param("INSERT INTO app.orders VALUES (1)", "trigger wipe on app.orders", id="trigger"),
    pytest.param("INSERT INTO app.ruled VALUES (1)", "rule wipe on app.ruled", id="rule"),
    pytest.param("INSERT INTO app.defaulted (id) VALUES (1)", "default of app.defaulted.w", id="default"),
    pytest.param("INSERT INTO app.checked VALUES (1)", "policy everything on app.checked", id="rls-with-check"),
    pytest.param("SELECT * FROM app.wiping", "view app.wiping → function app.volatile_wipe()", id="view"),
    pytest.param("INSERT INTO app.log_ops VALUES (1 OPERATOR(app.=!=) 1)", "operator app.=!=", id="operator"),
    pytest.param("INSERT INTO app.log_casts VALUES (1::app.wiped)", "cast integer → app.wiped", id="cast"),
    pytest.param("DELETE FROM app.canary WHERE true", "does not depend on the row", id="delete-where-true"),
    pytest.param("UPDATE app.canary SET v = 'x' WHERE 1 = 1", "does not depend on the row", id="update-where-1-1"),
    pytest.param(
        "MERGE INTO app.canary AS c USING (SELECT 1 AS id) AS s ON true WHEN MATCHED THEN DELETE",
        "does not depend on the row",
        id="merge-on-true",
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("attack", "reason"), WRITES)
async def test_a_change_that_reaches_further_waits_for_confirmation(
    fresh: Attacked, tmp_path: Path, role: Role, attack: str, reason: str
) -> None:
    failed, text, data = await _call(_settings(fresh, role, "full", tmp_path), "run_sql", {"sql": attack})
    assert not failed, text
    assert data["status"] == "confirmation_required", data
    assert reason in text, text
    await _untouched(fresh)


@pytest.mark.parametrize("role", ROLES)
async def test_a_change_that_reaches_dblink_is_refused(fresh: Attacked, tmp_path: Path, role: Role) -> None:
    settings = _settings(fresh, role, "full", tmp_path)
    failed, text, _ = await _call(settings, "run_sql", {"sql": "INSERT INTO app.ext_orders VALUES (1)"})
    assert failed and "trigger far on app.ext_orders → function app.dblink_trigger() → dblink_exec()" in text
    await _untouched(fresh)


@pytest.mark.parametrize("role", ROLES)
async def test_defining_then_firing_in_one_call_is_judged_with_the_definition(
    fresh: Attacked, tmp_path: Path, role: Role
) -> None:
    name = f"app.sneaky_{role}"
    statements = [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN DELETE FROM app.canary; RETURN NEW; END $$",
        f"CREATE TRIGGER sneaky BEFORE INSERT ON app.victim FOR EACH ROW EXECUTE FUNCTION {name}()",
        "INSERT INTO app.victim VALUES (1)",
    ]
    settings = _settings(fresh, role, "full", tmp_path)
    try:
        failed, text, data = await _call(settings, "run_sql_transaction", {"statements": statements})
        assert not failed and data["status"] == "confirmation_required", text
        assert "statement 3: what statement 1 defines" in text and "DELETE" in text
        await _untouched(fresh)
        assert (await sql(fresh.superuser, f"SELECT to_regproc('{name}')::oid"))[0][0] is None  # nothing ran
        # The same function and trigger with a body that only stamps the row need no confirmation.
        harmless = [statements[0].replace("DELETE FROM app.canary", "NEW.id := NEW.id + 1"), *statements[1:]]
        failed, text, data = await _call(settings, "run_sql_transaction", {"statements": harmless})
        assert not failed and data["status"] == "ok", text
        assert (await sql(fresh.superuser, "SELECT id FROM app.victim"))[0][0] == 2
    finally:
        await script(fresh.superuser, f"DROP FUNCTION IF EXISTS {name}() CASCADE; TRUNCATE app.victim")


ROLE_AND_SETTING = [
    pytest.param("ALTER ROLE {owner} SET session_replication_role = replica", "session_replication_role", id="srr"),
    pytest.param("ALTER ROLE {owner} SET search_path = evil, public", "future session", id="search-path"),
    pytest.param("ALTER DATABASE {database} SET work_mem = '1GB'", "ALTER DATABASE", id="database-set"),
    pytest.param("CREATE ROLE {fresh_role} SUPERUSER", "SUPERUSER", id="create-superuser"),
    pytest.param("ALTER ROLE {owner} BYPASSRLS", "BYPASSRLS", id="bypassrls"),
    pytest.param("ALTER ROLE {owner} CREATEROLE", "CREATEROLE", id="createrole"),
    pytest.param("CREATE ROLE {fresh_role} REPLICATION", "REPLICATION", id="replication"),
    pytest.param("GRANT pg_read_server_files TO {owner}", "pg_read_server_files", id="server-files"),
    pytest.param("ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC", "DEFAULT PRIVILEGES", id="defaults"),
    pytest.param("CREATE EXTENSION postgres_fdw", "CREATE EXTENSION", id="extension"),
    pytest.param("CREATE SERVER more_files FOREIGN DATA WRAPPER file_fdw", "CREATE SERVER", id="server"),
    pytest.param(
        "CREATE FOREIGN TABLE app.more (line text) SERVER files OPTIONS (program 'touch {drop}/from-fdw')",
        "FOREIGN TABLE",
        id="foreign-table",
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("attack", "reason"), ROLE_AND_SETTING)
async def test_roles_and_settings_that_outlive_the_call_wait_for_confirmation(
    fresh: Attacked, tmp_path: Path, role: Role, attack: str, reason: str
) -> None:
    before = await _powers(fresh)
    statement = attack.format(
        owner=fresh.owner_name,
        database=fresh.superuser.rsplit("/", 1)[1],
        fresh_role=f"r_{secrets.token_hex(4)}",
        drop=fresh.drop,
    )
    failed, text, data = await _call(_settings(fresh, role, "full", tmp_path), "run_sql", {"sql": statement})
    assert not failed and data["status"] == "confirmation_required", text
    assert reason in text
    assert await _powers(fresh) == before
    await _untouched(fresh)


async def _powers(attacked: Attacked) -> list[Any]:
    """Roles, their powers and lasting settings, extensions, foreign servers and tables, default privileges."""
    rows = await sql(
        attacked.superuser,
        """
        SELECT (SELECT array_agg(row(rolname, rolsuper, rolbypassrls, rolcreaterole, rolreplication) ORDER BY rolname)
                FROM pg_roles)::text,
               (SELECT array_agg(setconfig::text ORDER BY setconfig::text) FROM pg_db_role_setting)::text,
               (SELECT array_agg(extname ORDER BY extname) FROM pg_extension)::text,
               (SELECT array_agg(srvname ORDER BY srvname) FROM pg_foreign_server)::text,
               (SELECT count(*) FROM pg_foreign_table), (SELECT count(*) FROM pg_default_acl),
               (SELECT array_agg(roleid::regrole::text ORDER BY 1) FROM pg_auth_members)::text
        """,
    )
    return list(rows[0])


@pytest.mark.parametrize("role", ROLES)
async def test_explain_query_and_suggest_indexes_fall_under_the_same_rules(
    fresh: Attacked, tmp_path: Path, role: Role
) -> None:
    for mode in ("read-only", "full"):
        settings = _settings(fresh, role, mode, tmp_path)
        failed, text, _ = await _call(settings, "explain_query", {"sql": "SELECT * FROM app.v WHERE id = 1"})
        assert failed and "function app.lying()" in text, text
        failed, text, _ = await _call(settings, "suggest_indexes", {"sql": "SELECT * FROM app.v WHERE id = 1"})
        assert failed and "function app.lying()" in text, text
        await _untouched(fresh)
    full = _settings(fresh, role, "full", tmp_path)
    failed, text, _ = await _call(full, "explain_query", {"sql": "SELECT app.calls_volatile()"})
    assert failed and "do not ask for one" in text, text
    failed, text, _ = await _call(
        full, "explain_query", {"sql": "INSERT INTO app.ext_orders VALUES (1)", "analyze": True}
    )
    assert failed and "dblink" in text, text
    await _untouched(fresh)
    assert not await sql(fresh.superuser, "SELECT 1 FROM app.ext_orders")


async def test_each_attack_works_when_nothing_stops_it(fresh: Attacked) -> None:
    """The controls: run directly, even in a read-only transaction, the attacks have the effects the tests look for."""
    assert os.stat(fresh.drop).st_mode & 0o777 == 0o777
    admin = await asyncpg.connect(fresh.superuser)
    owner = await asyncpg.connect(fresh.owner)
    victim = await asyncpg.connect(fresh.owner)
    try:
        async with owner.transaction(readonly=True):
            await owner.fetchval("SELECT app.lying(1)")
        assert await admin.fetchval("SELECT count(*) FROM app.canary") == 0
        async with admin.transaction(readonly=True):
            await admin.fetchval("SELECT app.run_program()")
            assert SECRET in await admin.fetchval("SELECT app.innocent($1)", str(fresh.drop / "secret"))
            assert SECRET in await admin.fetchval("SELECT line FROM app.host_file")
            await admin.fetch("SELECT * FROM app.host_program")
        await admin.fetchval("SELECT app.export()")
        assert sorted(p.name for p in fresh.drop.glob("from-*")) == ["from-copy", "from-fdw", "from-lo-export"]
        pid = await victim.fetchval("SELECT pg_backend_pid()")
        async with owner.transaction(readonly=True):
            await owner.fetchval("SELECT app.kill($1)", pid)
        await asyncio.sleep(0.2)
        assert await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid) == 0
    finally:
        for conn in (admin, owner, victim):
            conn.terminate()


@pytest.mark.parametrize("role", ROLES)
async def test_a_function_replaced_through_the_server_is_judged_anew(
    fresh: Attacked, tmp_path: Path, role: Role
) -> None:
    """The closure is cached, but DDL run through the server drops it: a harmless function turned harmful between
    two calls is judged by its new body."""
    name = f"app.turncoat_{role}"
    harmless = f"CREATE OR REPLACE FUNCTION {name}() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1'"
    harmful = harmless.replace("'SELECT 1'", "$$ SELECT app.lying(1) $$")
    await script(fresh.superuser if role == "superuser" else fresh.owner, harmless)
    try:
        async with mcp_client(_settings(fresh, role, "full", tmp_path)) as client:
            first = await client.call_tool("run_sql", {"sql": f"SELECT {name}()"})
            assert not first.is_error, text_of(first)
            replaced = await client.call_tool("run_sql", {"sql": harmful})
            assert not replaced.is_error, text_of(replaced)
            again = await client.call_tool("run_sql", {"sql": f"SELECT {name}()"})
        assert again.is_error and "dblink_exec()" in text_of(again), text_of(again)
        await _untouched(fresh)
    finally:
        await script(fresh.superuser, f"DROP FUNCTION IF EXISTS {name}()")
