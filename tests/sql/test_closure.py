"""The executable closure read from a real catalog (``server.sql.closure``): what each statement sets off, and how.

Each object below hides a write or a way out of the database behind something the statement's text does not show;
the tests check that the closure reaches it, through the path a refusal would name. How the policy judges the items
is tested without a database in test_sql_policy.py; the attacks, judged by their effect, in test_closure_attacks.py.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from server.local_neon.clusters import Cluster
from server.sql.analysis import analyze
from server.sql.closure import Call, Closure, Closures, Foreign, Runs, Unseen, Write
from server.sql.database import Databases, Guards
from server.sql.places import Place
from tests.helpers import script

pytestmark = pytest.mark.anyio

SETUP = """
CREATE EXTENSION dblink;
CREATE EXTENSION file_fdw;
CREATE SCHEMA app;
CREATE TABLE app.t (id int PRIMARY KEY, v text, n int);
CREATE TABLE app.other (id int);
CREATE FUNCTION app.reads(int) RETURNS int LANGUAGE sql STABLE AS 'SELECT count(*)::int FROM app.other';
CREATE FUNCTION app.positive(int) RETURNS bool LANGUAGE sql IMMUTABLE AS 'SELECT $1 > 0';
CREATE FUNCTION app.lying(int) RETURNS int LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN PERFORM dblink_exec('dbname=x', 'DELETE FROM app.other'); RETURN $1; END $$;
CREATE FUNCTION app.deletes() RETURNS int LANGUAGE plpgsql AS $$ BEGIN DELETE FROM app.other; RETURN 1; END $$;
CREATE FUNCTION app.atomic(int) RETURNS int LANGUAGE sql BEGIN ATOMIC; SELECT app.lying($1); END;
CREATE FUNCTION app.scoped() RETURNS int LANGUAGE sql SET search_path = app AS 'SELECT lying(1)';
CREATE VIEW app.v AS SELECT id, app.lying(id) AS x FROM app.t;
CREATE VIEW app.vv AS SELECT * FROM app.v;

CREATE FUNCTION app.op_fn(int, int) RETURNS bool LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN DELETE FROM app.other; RETURN true; END $$;
CREATE OPERATOR app.=== (leftarg = int, rightarg = int, function = app.op_fn);
CREATE TYPE app.money2 AS (amount int);
CREATE FUNCTION app.to_money2(int) RETURNS app.money2 LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN DELETE FROM app.other; RETURN ROW($1); END $$;
CREATE CAST (int AS app.money2) WITH FUNCTION app.to_money2(int);
CREATE FUNCTION app.check_fn(int) RETURNS bool LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN DELETE FROM app.other; RETURN true; END $$;
CREATE DOMAIN app.checked AS int CONSTRAINT checked_ok CHECK (app.check_fn(VALUE));
CREATE TABLE app.d (c app.checked);
CREATE FUNCTION app.agg_step(int, int) RETURNS int LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN DELETE FROM app.other; RETURN $1 + $2; END $$;
CREATE AGGREGATE app.total(int) (sfunc = app.agg_step, stype = int, initcond = '0');
CREATE FUNCTION public.label(app.t) RETURNS text LANGUAGE plpgsql STABLE
  AS $$ BEGIN DELETE FROM app.other; RETURN 'x'; END $$;
CREATE FUNCTION app.allowed(int) RETURNS bool LANGUAGE plpgsql STABLE
  AS $$ BEGIN DELETE FROM app.other; RETURN true; END $$;
CREATE TABLE app.r (id int);
ALTER TABLE app.r ENABLE ROW LEVEL SECURITY;
CREATE POLICY visible ON app.r USING (app.allowed(id));

CREATE FUNCTION app.wipe() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM app.other; RETURN NEW; END $$;
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.n := 1; RETURN NEW; END $$;
CREATE TABLE app.w (
  id int PRIMARY KEY,
  v text,
  d int DEFAULT app.reads(1),
  g int GENERATED ALWAYS AS (id * 2) STORED,
  n int,
  CONSTRAINT w_checked CHECK (app.positive(id))
);
CREATE INDEX w_expr ON app.w ((app.lying(id)));
CREATE TRIGGER on_insert AFTER INSERT ON app.w FOR EACH ROW EXECUTE FUNCTION app.wipe();
CREATE TRIGGER on_update BEFORE UPDATE ON app.w FOR EACH ROW EXECUTE FUNCTION app.touch();
CREATE RULE log_delete AS ON DELETE TO app.w DO ALSO DELETE FROM app.other;
CREATE TABLE app.child (id int, w_id int REFERENCES app.w ON DELETE CASCADE);
CREATE TRIGGER child_deleted AFTER DELETE ON app.child FOR EACH ROW EXECUTE FUNCTION app.wipe();
CREATE TABLE app.p (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE app.p1 PARTITION OF app.p FOR VALUES FROM ('2000-01-01') TO ('2100-01-01');
CREATE TRIGGER p1_inserted AFTER INSERT ON app.p1 FOR EACH ROW EXECUTE FUNCTION app.wipe();
CREATE VIEW app.simple AS SELECT id, v FROM app.w;

CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE app.passwd (line text) SERVER files OPTIONS (filename '/etc/passwd');
CREATE FUNCTION app.innocent(text) RETURNS text LANGUAGE internal STABLE AS 'pg_read_file_all';
CREATE FUNCTION app.dynamic() RETURNS int LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('SELECT %s', 1); RETURN 1; END $$;
"""


class CountingDatabases(Databases):
    """The real executor, counting the catalog queries the closure sends."""

    catalog_queries = 0

    async def read_catalog(self, database: str | None, queries: Sequence[tuple[str, Sequence[Any]]]) -> Any:
        self.catalog_queries += 1
        return await super().read_catalog(database, queries)


@pytest.fixture(scope="module")
async def closure_db(pg_cluster: Cluster) -> AsyncIterator[str]:
    """One database with the objects above for the module (the closure only reads it)."""
    name = f"closure_{secrets.token_hex(4)}"
    await script(pg_cluster.dsn(), f'CREATE DATABASE "{name}"')
    await script(pg_cluster.dsn(name), SETUP)
    yield pg_cluster.dsn(name)
    await script(pg_cluster.dsn(), f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def place(closure_db: str) -> AsyncIterator[Place]:
    databases = CountingDatabases(closure_db, Guards(10, 5, 10))
    try:
        yield Place(databases, databases.default_database)
    finally:
        await databases.close()


async def _closure(place: Place, sql: str, closures: Closures | None = None) -> Closure:
    return (await (closures or Closures()).of(place, analyze(sql)))[-1]


def _paths(closure: Closure) -> list[str]:
    """Each item as ``step → step → what``: a function called, a statement run, a write, a foreign table."""
    out = []
    for item in closure.reached:
        match item:
            case Call(function=function):
                what = str(function)
            case Runs(statement=statement):
                what = statement.sql
            case Write(relation=relation, kind=kind, own=own):
                what = f"{kind} {relation}{' (own)' if own else ''}"
            case Foreign(table=table, wrapper=wrapper):
                what = f"{table} via {wrapper}"
            case Unseen(what=what):
                pass
        out.append(" → ".join((*item.path, what)))
    return out


REACHED = [
    pytest.param(
        "SELECT * FROM app.v",
        "view app.v → function app.lying() → public.dblink_exec()",
        id="view-calls-a-lying-immutable-function",
    ),
    pytest.param("SELECT * FROM app.vv", "view app.vv → view app.v → function app.lying()", id="view-on-a-view"),
    pytest.param("SELECT app.atomic(1)", "function app.atomic() → function app.lying()", id="begin-atomic-body"),
    pytest.param("SELECT app.scoped()", "function app.scoped() → function app.lying()", id="function-search-path"),
    pytest.param(
        "SELECT 1 OPERATOR(app.===) 2",
        "operator app.=== → function app.op_fn() → DELETE FROM app.other",
        id="operator",
    ),
    pytest.param(
        "SELECT 1::app.money2",
        "cast integer → app.money2 → function app.to_money2() → DELETE FROM app.other",
        id="cast",
    ),
    pytest.param(
        "INSERT INTO app.d VALUES (1)",
        "domain app.checked (constraint checked_ok) → function app.check_fn() → DELETE FROM app.other",
        id="domain-check",
    ),
    pytest.param(
        "SELECT app.total(id) FROM app.t",
        "aggregate app.total() → function app.agg_step() → DELETE FROM app.other",
        id="aggregate-transition-function",
    ),
    pytest.param(
        "SELECT t.label FROM app.t AS t", "function public.label() → DELETE FROM app.other", id="attribute-notation"
    ),
    pytest.param(
        "SELECT * FROM app.r",
        "policy visible on app.r → function app.allowed() → DELETE FROM app.other",
        id="row-level-security-policy",
    ),
    pytest.param(
        "INSERT INTO app.w (id) VALUES (1)",
        "trigger on_insert on app.w → function app.wipe() → delete app.other",
        id="insert-trigger-writes-beyond-the-target",
    ),
    pytest.param("INSERT INTO app.w (id) VALUES (1)", "default of app.w.d → function app.reads()", id="column-default"),
    pytest.param(
        "INSERT INTO app.w (id) VALUES (1)", "check constraint w_checked on app.w → function app.positive()", id="check"
    ),
    pytest.param(
        "INSERT INTO app.w (id) VALUES (1)",
        "index app.w_expr → function app.lying() → public.dblink_exec()",
        id="index-expression",
    ),
    pytest.param(
        "UPDATE app.w SET v = 'x' WHERE id = 1",
        "trigger on_update on app.w → function app.touch() → SELECT NEW.n ,  1",
        id="update-trigger",
    ),
    pytest.param(
        "DELETE FROM app.w WHERE id = 1", "rule log_delete on app.w → DELETE FROM app.other", id="rule-action"
    ),
    pytest.param(
        "DELETE FROM app.w WHERE id = 1",
        "foreign key child_w_id_fkey of app.child (ON DELETE CASCADE) → delete app.child",
        id="foreign-key-cascade",
    ),
    pytest.param(
        "DELETE FROM app.w WHERE id = 1",
        "foreign key child_w_id_fkey of app.child (ON DELETE CASCADE) → trigger child_deleted on app.child → "
        "function app.wipe() → DELETE FROM app.other",
        id="cascade-fires-the-child-table-triggers",
    ),
    pytest.param(
        "INSERT INTO app.p VALUES (1, '2020-01-01')",
        "trigger p1_inserted on app.p1 → function app.wipe() → delete app.other",
        id="partition-trigger",
    ),
    pytest.param(
        "INSERT INTO app.simple (id) VALUES (1)",
        "view app.simple → trigger on_insert on app.w → function app.wipe()",
        id="write-through-a-view",
    ),
    pytest.param("SELECT * FROM app.passwd", "app.passwd via file_fdw", id="foreign-table"),
    pytest.param("SELECT app.innocent('/etc/passwd')", "app.innocent()", id="renamed-internal-function"),
    pytest.param(
        "SELECT app.dynamic()",
        "function app.dynamic() → it runs dynamic SQL (EXECUTE of a computed string)",
        id="dynamic-sql",
    ),
    pytest.param(
        "EXPLAIN SELECT app.lying(1)",
        "function app.lying() → public.dblink_exec()",
        id="plain-explain-folds-immutable-functions",
    ),
    pytest.param(
        "EXPLAIN ANALYZE INSERT INTO app.w (id) VALUES (1)",
        "trigger on_insert on app.w → function app.wipe()",
        id="explain-analyze-runs-triggers",
    ),
]


@pytest.mark.parametrize(("sql", "path"), REACHED)
async def test_the_closure_reaches_what_the_statement_sets_off(place: Place, sql: str, path: str) -> None:
    paths = _paths(await _closure(place, sql))
    assert any(found.startswith(path) for found in paths), "\n".join(paths)


NOT_REACHED = [
    pytest.param("SELECT * FROM app.w", "trigger", id="a-read-fires-no-trigger"),
    pytest.param("INSERT INTO app.w (id) VALUES (1)", "on_update", id="insert-fires-no-update-trigger"),
    pytest.param("UPDATE app.w SET v = 'x' WHERE id = 1", "on_insert", id="update-fires-no-insert-trigger"),
    pytest.param("UPDATE app.w SET v = 'x' WHERE id = 1", "foreign key", id="no-action-on-update"),
    pytest.param("SELECT * FROM app.t", "label", id="plain-columns-are-no-call"),
    pytest.param("EXPLAIN SELECT app.deletes()", "app.deletes", id="planning-never-calls-a-volatile-function"),
    pytest.param("EXPLAIN INSERT INTO app.w (id) VALUES (1)", "trigger", id="planning-fires-no-trigger"),
    pytest.param("CREATE VIEW app.later AS SELECT app.deletes()", "app.deletes", id="a-definition-runs-nothing"),
]


@pytest.mark.parametrize(("sql", "absent"), NOT_REACHED)
async def test_the_closure_leaves_out_what_does_not_run(place: Place, sql: str, absent: str) -> None:
    paths = _paths(await _closure(place, sql))
    assert not any(absent in found for found in paths), "\n".join(paths)


async def test_writes_to_the_statements_own_target_are_its_own(place: Place) -> None:
    closure = await _closure(place, "INSERT INTO app.p VALUES (1, '2020-01-01')")
    writes = {(w.relation, w.own) for w in closure.reached if isinstance(w, Write)}
    assert writes == {("app.other", False)}
    trigger_on_target = await _closure(place, "UPDATE app.other SET id = 2 WHERE id = 1")
    assert not [w for w in trigger_on_target.reached if isinstance(w, Write)]


async def test_objects_defined_earlier_in_the_call_count_for_later_statements(place: Place) -> None:
    facts = analyze(
        "CREATE FUNCTION app.fresh() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM app.other; RETURN NEW; "
        "END $$; CREATE TRIGGER fresh AFTER INSERT ON app.t FOR EACH ROW EXECUTE FUNCTION app.fresh(); "
        "INSERT INTO app.t VALUES (9)"
    )
    definition, trigger, insert = await Closures().of(place, facts)
    assert not definition.reached and not trigger.reached
    paths = _paths(insert)
    assert "what statement 1 defines (CREATE FUNCTION app.fresh() RETURNS …) → DELETE FROM app.other" in paths, paths
    # A trigger defined in the call on a function of the catalog: that function's body counts too.
    facts = analyze(
        "CREATE TRIGGER again AFTER UPDATE ON app.t FOR EACH ROW EXECUTE FUNCTION app.wipe(); "
        "UPDATE app.t SET v = 'x' WHERE id = 1"
    )
    paths = _paths((await Closures().of(place, facts))[1])
    expected = "what statement 1 defines (CREATE TRIGGER again AFTER …) → function app.wipe() → DELETE FROM app.other"
    assert expected in paths, paths


async def test_renamed_objects_count_for_later_statements(place: Place) -> None:
    facts = analyze("ALTER FUNCTION app.deletes() RENAME TO harmless; SELECT app.harmless()")
    _, call = await Closures().of(place, facts)
    assert any("DELETE FROM app.other" in p for p in _paths(call)), _paths(call)


async def test_a_statement_naming_nothing_costs_no_query(place: Place) -> None:
    closures = Closures()
    assert await closures.of(place, analyze("SELECT 1")) == (Closure(),)
    assert await closures.of(place, analyze("SELECT 1 + 2, 'x' || 'y'")) != ()
    assert place.databases.catalog_queries <= 1  # type: ignore[attr-defined]


async def test_closures_are_cached_until_ddl_or_their_time_is_up(place: Place) -> None:
    now = [0.0]
    closures = Closures(ttl=5.0, clock=lambda: now[0])
    databases: CountingDatabases = place.databases  # type: ignore[assignment]
    first = await _closure(place, "SELECT * FROM app.v", closures)
    asked = databases.catalog_queries
    assert asked >= 1
    assert await _closure(place, "SELECT * FROM app.v", closures) == first
    assert await _closure(place, "SELECT id FROM app.vv", closures) != first
    again = databases.catalog_queries
    assert again <= asked + 1  # app.vv's own row only: app.v and what it reaches are known
    closures.forget(place.key)
    await _closure(place, "SELECT * FROM app.v", closures)
    assert databases.catalog_queries > again
    now[0] = 10.0
    before = databases.catalog_queries
    await _closure(place, "SELECT * FROM app.v", closures)
    assert databases.catalog_queries > before


async def test_a_function_defined_in_a_language_it_cannot_read_is_unseen(place: Place) -> None:
    facts = analyze("CREATE FUNCTION app.shell() RETURNS int LANGUAGE plpython3u AS 'return 1'; SELECT app.shell()")
    _, call = await Closures().of(place, facts)
    assert any(isinstance(item, Unseen) and "written in plpython3u" in item.what for item in call.reached), call.reached
