"""Facts read from SQL by ``server.sql.analysis``: pure, no database."""

from __future__ import annotations

import dataclasses

import pytest

from server.errors import InvalidInput, SQLParseError
from server.sql.analysis import FunctionCall, Modification, Relation, StatementFacts, analyze


def _only(sql: str) -> StatementFacts:
    (facts,) = analyze(sql)
    return facts


def _calls(sql: str) -> set[tuple[str | None, str]]:
    return {(fn.schema, fn.name) for facts in analyze(sql) for fn in facts.functions}


# --- splitting and source text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "texts"),
    [
        ("select 1", ["select 1"]),
        ("  select 1 ;  ", ["select 1"]),
        ("select 1; select 2;", ["select 1", "select 2"]),
        ("select 1;;select 2", ["select 1", "select 2"]),
        ("-- leading comment\nselect 1; /* between */ select 2", ["select 1", "select 2"]),
        ("select 'a;b'; select \"x;y\" from t", ["select 'a;b'", 'select "x;y" from t']),
        ("select $$a;b$$; select 2", ["select $$a;b$$", "select 2"]),
        (
            "create function f() returns int language plpgsql as $f$ begin perform 1; return 1; end $f$; select f()",
            [
                "create function f() returns int language plpgsql as $f$ begin perform 1; return 1; end $f$",
                "select f()",
            ],
        ),
        (
            "do $$ begin execute 'select 1; select 2'; end $$; select 3",
            ["do $$ begin execute 'select 1; select 2'; end $$", "select 3"],
        ),
        ("create function g() returns int begin atomic; select 1; end; select 2", None),
        # Locations are character positions: multibyte characters before a statement must not shift the slices.
        ("select 'ééé€😀'; select 'ü' ; select 3", ["select 'ééé€😀'", "select 'ü'", "select 3"]),
        ('select \'日本語\'\n;\nselect "ß" from "Ä"', ["select '日本語'", 'select "ß" from "Ä"']),
    ],
)
def test_statements_are_split_with_their_exact_text(sql: str, texts: list[str] | None) -> None:
    facts = analyze(sql)
    if texts is None:  # a BEGIN ATOMIC body keeps its inner semicolons
        assert [f.sql for f in facts] == ["create function g() returns int begin atomic; select 1; end", "select 2"]
    else:
        assert [f.sql for f in facts] == texts
    assert [f.index for f in facts] == list(range(len(facts)))


@pytest.mark.parametrize(
    ("sql", "tag"),
    [
        ("select 1", "SelectStmt"),
        ("values (1)", "SelectStmt"),
        ("table t", "SelectStmt"),
        ("delete from t", "DeleteStmt"),
        ("drop table t", "DropStmt"),
        ("explain select 1", "ExplainStmt"),
        ("set work_mem = '1MB'", "VariableSetStmt"),
        ("begin", "TransactionStmt"),
    ],
)
def test_tag_is_the_pglast_node_name(sql: str, tag: str) -> None:
    facts = _only(sql)
    assert facts.tag == tag
    assert type(facts.node).__name__ == tag


# --- functions ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select f()", {(None, "f")}),
        ("select * from pg_read_file('x')", {(None, "pg_read_file")}),
        ("select * from rows from (generate_series(1, 2), g()) as r(a, b)", {(None, "generate_series"), (None, "g")}),
        ("select * from t, lateral f(t.a)", {(None, "f")}),
        ("with x as (select f()) select * from x", {(None, "f")}),
        ("with recursive x as (select 1 union all select f() from x) select 1", {(None, "f")}),
        ("select * from t where exists (select f())", {(None, "f")}),
        ("select (select max(g()) from u) from t", {(None, "max"), (None, "g")}),
        ("select * from (select f()) as s", {(None, "f")}),
        ("select lower(pg_read_file('x'))", {(None, "lower"), (None, "pg_read_file")}),
        ("select 1 from t join u on f(t.a) = u.b", {(None, "f")}),
        ("select a from t order by f(a)", {(None, "f")}),
        ("select a from t group by a having f(a) > 1", {(None, "f")}),
        ("select row_number() over (order by f(a)) from t", {(None, "row_number"), (None, "f")}),
        ("values (f())", {(None, "f")}),
        ("explain select f()", {(None, "f")}),
        ("explain analyze select pg_terminate_backend(1)", {(None, "pg_terminate_backend")}),
        ("insert into t select f()", {(None, "f")}),
        ("insert into t values (1) returning f()", {(None, "f")}),
        ("update t set a = f() where b = g()", {(None, "f"), (None, "g")}),
        ("delete from t where a = f() returning g()", {(None, "f"), (None, "g")}),
        ("create table t (a text default pg_read_file('/x'))", {(None, "pg_read_file")}),
        ("create table t (a int check (f(a) > 0))", {(None, "f")}),
        ("alter table t add column b int default f()", {(None, "f")}),
        ("create index i on t (f(a))", {(None, "f")}),
        ("create view v as select f()", {(None, "f")}),
        ("create table t2 as select f()", {(None, "f")}),
        ("call p(f())", {(None, "p"), (None, "f")}),
        ("select pg_catalog.pg_read_file('x')", {("pg_catalog", "pg_read_file")}),
        ("select extensions.dblink('x', 'y')", {("extensions", "dblink")}),
        ("select db.pg_catalog.now()", {("pg_catalog", "now")}),
        ("select 1 + 1, coalesce(a, 2), current_user from t", set()),
    ],
)
def test_functions_are_found_anywhere_in_the_tree(sql: str, expected: set[tuple[str | None, str]]) -> None:
    assert _calls(sql) == expected


@pytest.mark.parametrize(
    ("sql", "call"),
    [
        # PostgreSQL folds unquoted names to lower case and keeps quoted ones as written.
        ("select PG_CATALOG.Pg_Read_File('x')", ("pg_catalog", "pg_read_file")),
        ("select \"DBLINK_EXEC\"('x')", (None, "DBLINK_EXEC")),
        ('select "Public"."F"()', ("Public", "F")),
        ("select U&\"\\0064blink_exec\"('x', 'y')", (None, "dblink_exec")),
        ("select U&\"!0064blink\"  UESCAPE '!' ('x', 'y')", (None, "dblink")),
        ("select \"pg_read_file\"('x')", (None, "pg_read_file")),
    ],
)
def test_function_names_are_decoded_never_over_folded(sql: str, call: tuple[str | None, str]) -> None:
    assert _calls(sql) == {call}


@pytest.mark.parametrize(
    ("sql", "first_arg"),
    [
        ("select set_config('work_mem', '1MB', true)", "work_mem"),
        ("select set_config('work_mem'::text, '1MB', true)", "work_mem"),
        ("select set_config(E'WORK\\u005fMEM', '1MB', true)", "WORK_MEM"),
        ("select set_config(current_user, 'x', false)", None),
        ("select set_config(s.n, 'x', false) from s", None),
        ("select set_config(1, 'x', false)", None),
        ("select set_config(null, 'x', false)", None),
        ("select set_config(new_value => 'off', setting_name => 'work_mem', is_local => true)", None),
        ("select set_config()", None),
    ],
)
def test_first_argument_is_kept_only_when_it_is_a_string_constant(sql: str, first_arg: str | None) -> None:
    (call,) = _only(sql).functions
    assert call == FunctionCall(None, "set_config", first_arg)


def test_functions_are_listed_once_in_source_order() -> None:
    facts = _only("select b(), a(), b(), (select c()) from d()")
    assert [fn.name for fn in facts.functions] == ["b", "a", "c", "d"]


# --- relations and targets ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "relations"),
    [
        ("select * from t", [Relation(None, "t")]),
        ('select * from "My"."T", s.u', [Relation("My", "T"), Relation("s", "u")]),
        ("select * from U&\"d!0061t!+000061\" UESCAPE '!'", [Relation(None, "data")]),
        ("with t as (select 1) select * from t, s.t, u", [Relation("s", "t"), Relation(None, "u")]),
        ("with recursive r as (select 1 union all select * from r) select * from r", []),
        ("select * from a where b in (select x from c)", [Relation(None, "a"), Relation(None, "c")]),
        ("select * from t, t", [Relation(None, "t")]),
        ("insert into t select * from u", [Relation(None, "t"), Relation(None, "u")]),
    ],
)
def test_relations_exclude_cte_names(sql: str, relations: list[Relation]) -> None:
    assert list(_only(sql).relations) == relations


@pytest.mark.parametrize(
    ("sql", "targets"),
    [
        ("drop table a, b.c", [Relation(None, "a"), Relation("b", "c")]),
        ("drop index concurrently s.i", [Relation("s", "i")]),
        ("drop schema s cascade", [Relation(None, "s")]),
        ("drop function a.f(int), g", [Relation("a", "f"), Relation(None, "g")]),
        ("drop type a.t", [Relation("a", "t")]),
        ("drop database d", [Relation(None, "d")]),
        ("drop role r1, r2", [Relation(None, "r1"), Relation(None, "r2")]),
        ("truncate a, b.c", [Relation(None, "a"), Relation("b", "c")]),
        ("delete from s.t where a = 1", [Relation("s", "t")]),
        ("update t set a = 1", [Relation(None, "t")]),
        ("insert into t values (1)", [Relation(None, "t")]),
        ("merge into t using s on t.a = s.a when matched then delete", [Relation(None, "t")]),
        ("with d as (delete from t returning *) select * from d", [Relation(None, "t")]),
        ("alter table t drop column a", [Relation(None, "t")]),
        ("create table s.t (a int)", [Relation("s", "t")]),
        ("create index i on t (a)", [Relation(None, "t")]),
        ("create view v as select 1", [Relation(None, "v")]),
        ("create table t2 as select 1", [Relation(None, "t2")]),
        ("select * into t2 from t", [Relation(None, "t2")]),
        ("vacuum full a, b", [Relation(None, "a"), Relation(None, "b")]),
        ("cluster t using i", [Relation(None, "t")]),
        ("grant select on t to r", [Relation(None, "t")]),
        ("create schema s", [Relation(None, "s")]),
        ("drop owned by r", [Relation(None, "r")]),
        ("select * from t", []),
    ],
)
def test_targets(sql: str, targets: list[Relation]) -> None:
    assert list(_only(sql).targets) == targets


# --- modifications, locks, INTO, nesting --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "has_where"),
    [
        ("delete from t", False),
        ("delete from t where a = 1", True),
        ("update t set a = 1", False),
        ("update t set a = 1 where true", True),
        ("insert into t values (1)", None),
        ("select 1", None),
        ("with d as (delete from t) select 1", None),
    ],
)
def test_has_where_only_for_top_level_update_and_delete(sql: str, has_where: bool | None) -> None:
    assert _only(sql).has_where is has_where


@pytest.mark.parametrize(
    ("sql", "modifications"),
    [
        ("select 1", []),
        ("delete from t", [Modification("delete", Relation(None, "t"), False, nested=False)]),
        ("explain analyze delete from t", [Modification("delete", Relation(None, "t"), False, nested=False)]),
        (
            "with d as (delete from t where a = 1 returning *) insert into u select * from d",
            [
                Modification("insert", Relation(None, "u"), None, nested=False),
                Modification("delete", Relation(None, "t"), True, nested=True),
            ],
        ),
        (
            "with x as (update t set a = 1 returning *) select * from x",
            [Modification("update", Relation(None, "t"), False, nested=True)],
        ),
        (
            "create rule r as on insert to t do instead delete from u",
            [Modification("delete", Relation(None, "u"), False, nested=True)],
        ),
    ],
)
def test_modifications_include_nested_ones(sql: str, modifications: list[Modification]) -> None:
    assert sorted(_only(sql).modifications, key=repr) == sorted(modifications, key=repr)


@pytest.mark.parametrize(
    ("sql", "locks_rows", "select_into"),
    [
        ("select * from t", False, False),
        ("select * from t for update", True, False),
        ("select * from t for key share skip locked", True, False),
        ("select * from (select * from t for update) x", True, False),
        ("with x as (select * from t for share) select * from x", True, False),
        ("select * into t2 from t", False, True),
        ("create table t2 as select 1", False, False),
    ],
)
def test_row_locks_and_select_into_anywhere(sql: str, locks_rows: bool, select_into: bool) -> None:
    facts = _only(sql)
    assert (facts.locks_rows, facts.select_into) == (locks_rows, select_into)


@pytest.mark.parametrize(
    ("sql", "nested_tags"),
    [
        ("select 1", ()),
        ("explain execute p", ("ExecuteStmt",)),
        ("create table x as execute p", ("ExecuteStmt",)),
        ("explain analyze delete from t", ("DeleteStmt",)),
        ("with a as (select 1), b as (select 2) select 1", ("SelectStmt",)),
        ("alter role r set work_mem = '1MB'", ("VariableSetStmt",)),
        ("create rule r as on insert to t do also notify c", ("NotifyStmt",)),
    ],
)
def test_nested_statements(sql: str, nested_tags: tuple[str, ...]) -> None:
    assert _only(sql).nested_tags == nested_tags


# --- errors -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql", ["", "   \n\t", "-- only a comment", "/* a comment */", ";", " ; ; ", "/* a */ -- b\n;"]
)
def test_no_statement_is_invalid_input(sql: str) -> None:
    with pytest.raises(InvalidInput, match="no SQL statement found"):
        analyze(sql)


@pytest.mark.parametrize("sql", ["select 1\x00", "\x00", "select '\x00'"])
def test_nul_character_is_invalid_input(sql: str) -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        analyze(sql)


def test_lone_surrogate_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="surrogate"):
        analyze("select '\ud800'")


@pytest.mark.parametrize(
    ("sql", "position", "message"),
    [
        ("select from where", 13, 'syntax error at or near "where"'),
        ("selec 1", 1, 'syntax error at or near "selec"'),
        ("select 1; selec 2", 11, 'syntax error at or near "selec"'),
        # A character position, not a byte offset: é and € take 2 and 3 bytes in UTF-8.
        ("select 'é€'; selec x", 14, 'syntax error at or near "selec"'),
        ("select 1 +", None, "syntax error at end of input"),
        ("select 'unterminated", 8, "unterminated quoted string"),
    ],
)
def test_parse_error_has_message_and_one_based_position(sql: str, position: int | None, message: str) -> None:
    with pytest.raises(SQLParseError) as caught:
        analyze(sql)
    assert caught.value.position == position
    assert message in str(caught.value)
    assert "at index" not in str(caught.value)
    if position is not None:
        assert f"at character {position}" in str(caught.value)


def test_deep_left_chain_does_not_crash_the_process() -> None:
    # About 80 kB: pglast builds its tree recursively in C and overflows an 8 MiB stack on this shape.
    (facts,) = analyze("select " + "1-" * 40_000 + "1")
    assert facts.tag == "SelectStmt"


def test_parse_errors_of_long_sql_are_reported() -> None:
    with pytest.raises(SQLParseError) as caught:
        analyze("select 1;" * 1_000 + " selec 2")
    assert caught.value.position == 9_002


# --- values and cache ---------------------------------------------------------------------------------------------


def test_facts_are_immutable_values_that_ignore_the_node() -> None:
    first, second = _only("select f() from t"), _only("select f() from t ")
    assert first == second
    assert hash(first) == hash(second)
    assert "node" not in repr(first)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.sql = "drop table t"  # type: ignore[misc]


def test_analysis_is_cached() -> None:
    sql = "select a, b from cached_table where c = 1"
    assert analyze(sql) is analyze(sql)


def test_long_sql_is_analyzed_without_being_cached() -> None:
    sql = "select " + ", ".join(f"f{i}()" for i in range(1_000))
    first = analyze(sql)
    assert len(first[0].functions) == 1_000
    assert analyze(sql) == first
    assert analyze(sql) is not first
