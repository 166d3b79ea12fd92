"""The SQL policy: pure functions from statement facts (``server.sql.analysis``) to a verdict. No I/O, deny by default.

Each statement gets a category, from mildest to strictest::

    read         SELECT, VALUES, TABLE, SHOW, EXPLAIN, SET of a harmless planner or format setting
    write        INSERT, UPDATE/DELETE with WHERE, MERGE, SELECT … FOR UPDATE, nextval(), VACUUM, ANALYZE, LOCK, ...
    ddl          CREATE/ALTER (non-destructive forms), COMMENT, GRANT, SELECT … INTO, CREATE TABLE AS, ...
    destructive  DROP, TRUNCATE, UPDATE/DELETE without WHERE or with a condition that does not depend on the row
                 (``WHERE true``, ``MERGE … ON true``), dropping columns or constraints, changing a column's type,
                 REVOKE, VACUUM FULL, CLUSTER, DO, CALL; settings and powers that outlive the call (ALTER ROLE/DATABASE
                 … SET, roles given SUPERUSER, BYPASSRLS, REPLICATION, CREATEROLE or CREATEDB, GRANT … WITH ADMIN
                 OPTION, ALTER DEFAULT PRIVILEGES); ways out of the database (CREATE EXTENSION, SERVER, FOREIGN TABLE,
                 USER MAPPING, EVENT TRIGGER); and whatever the statement sets off that writes beyond its own target or
                 that the policy cannot see into
    forbidden    in every mode: transaction control, SET of the server's guards (or of anything not allow-listed),
                 role changes, COPY, LOAD, ALTER SYSTEM, LISTEN/NOTIFY, DISCARD, PREPARE/EXECUTE, cursors,
                 CHECKPOINT, subscriptions, and functions acting outside the transaction or on the host
                 (dblink, file access, advisory locks, signalling backends, ...), wherever they are called or reached

A statement type the policy does not know is forbidden. ``decide`` rejects a script holding anything forbidden; in
read-only mode it allows only scripts of reads; in full mode it asks for confirmation when anything is destructive.

A statement's text shows only part of what runs. Its executable closure (``server.sql.closure``: views, triggers,
rules, policies, defaults, operators, casts, function bodies, … resolved from the catalog) is given to ``classify``
and ``decide`` as facts; each item reached counts as if the statement did it, and a refusal names the path to it
(``view app.v → function app.f() → dblink_exec() works through its own connection …``). Without a closure the policy
judges the text alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pglast import ast
from pglast.enums import AlterTableType, ObjectType, ReindexObjectType, TransactionStmtKind, VariableSetKind

from ..errors import InvalidInput
from ..settings import AccessMode
from .analysis import FunctionCall, Modification, StatementFacts, option_enabled
from .reached import EMPTY, Call, Closure, Foreign, Function, Reached, Runs, Unseen, Write

__all__ = ["Category", "Classification", "Verdict", "classify", "decide"]

Category = Literal["read", "write", "ddl", "destructive", "forbidden"]

_RANK: dict[Category, int] = {"read": 0, "write": 1, "ddl": 2, "destructive": 3, "forbidden": 4}
_AS_COMPLEMENT: dict[Category, str] = {
    "read": "a read",
    "write": "a write",
    "ddl": "a DDL change",
    "destructive": "destructive",
    "forbidden": "forbidden",
}


@dataclass(frozen=True, slots=True)
class Classification:
    """The category of one statement, why, and whether it must run outside a transaction block."""

    index: int
    category: Category
    reason: str
    needs_autocommit: bool = False
    reached: bool = False
    """The reason names objects reached through the catalog (their names come from the database, not the caller)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a whole script: run it, ask for confirmation first, or refuse it (``reason`` says why)."""

    action: Literal["allow", "confirm", "reject"]
    category: Category
    """The strictest category among the statements."""
    reason: str
    statements: tuple[Classification, ...]
    reached: bool = False
    """The reason names objects reached through the catalog: text from the database, shown fenced."""

    @property
    def read_only(self) -> bool:
        """Every statement is a read: the executor runs the script in a READ ONLY transaction."""
        return all(statement.category == "read" for statement in self.statements)


class _Judgement(NamedTuple):
    category: Category
    reason: str
    needs_autocommit: bool = False
    executes: bool = True
    """False when the statement only plans its contents (EXPLAIN without ANALYZE): calls in it do not run."""
    reached: bool = False
    """The reason names a path through the catalog."""


# --- settings ---------------------------------------------------------------------------------------------------

_HARMLESS_SETTINGS = frozenset(
    {
        "work_mem",
        "maintenance_work_mem",
        "hash_mem_multiplier",
        "random_page_cost",
        "seq_page_cost",
        "cpu_tuple_cost",
        "cpu_index_tuple_cost",
        "cpu_operator_cost",
        "effective_cache_size",
        "effective_io_concurrency",
        "default_statistics_target",
        "join_collapse_limit",
        "from_collapse_limit",
        "geqo",
        "jit",
        "jit_above_cost",
        "jit_inline_above_cost",
        "jit_optimize_above_cost",
        "plan_cache_mode",
        "max_parallel_workers_per_gather",
        "parallel_setup_cost",
        "parallel_tuple_cost",
        "constraint_exclusion",
        "cursor_tuple_fraction",
        "timezone",
        "datestyle",
        "intervalstyle",
        "extra_float_digits",
        "client_min_messages",
        "application_name",
        "bytea_output",
    }
)
_HARMLESS_SETTING_PREFIXES = ("enable_", "geqo_")

_TRANSACTION_SETTINGS = "the server sets each call's access mode and isolation itself"
_GUARD_SETTINGS = "it is one of the guards the server sets for every call"
_ROLE_SETTINGS = "changing the role would step outside the configured role's privileges; connect as that role instead"
_SETTING_REFUSALS = {
    "transaction_read_only": _TRANSACTION_SETTINGS,
    "default_transaction_read_only": _TRANSACTION_SETTINGS,
    "transaction_isolation": _TRANSACTION_SETTINGS,
    "default_transaction_isolation": _TRANSACTION_SETTINGS,
    "transaction_deferrable": _TRANSACTION_SETTINGS,
    "default_transaction_deferrable": _TRANSACTION_SETTINGS,
    "statement_timeout": _GUARD_SETTINGS,
    "lock_timeout": _GUARD_SETTINGS,
    "idle_in_transaction_session_timeout": _GUARD_SETTINGS,
    "idle_session_timeout": _GUARD_SETTINGS,
    "transaction_timeout": _GUARD_SETTINGS,
    "role": _ROLE_SETTINGS,
    "session_authorization": _ROLE_SETTINGS,
    "session_replication_role": "it switches off triggers and foreign-key enforcement",
    "row_security": "it changes how row-level security is enforced",
    "search_path": "it changes what unqualified names resolve to; qualify names with their schema instead",
    "seed": "it fixes the session's random sequence, which outlives the call in a pooled connection",
}
_NOT_ALLOW_LISTED = (
    "it is not on the allow list of harmless planner and format settings "
    "(work_mem, enable_*, random_page_cost, timezone, datestyle, …)"
)


def _setting_refusal(name: str) -> str | None:
    """Why a setting may not be changed, or None when it is a harmless one. Setting names ignore case in PostgreSQL."""
    name = name.lower()
    if name in _HARMLESS_SETTINGS or name.startswith(_HARMLESS_SETTING_PREFIXES):
        return None
    return _SETTING_REFUSALS.get(name, _NOT_ALLOW_LISTED)


# --- functions --------------------------------------------------------------------------------------------------

_OUTSIDE_CONNECTION = (
    "{fn} works through its own connection or worker, so its effects escape this transaction and its read-only "
    "guard; query this database directly"
)
_HOST_FILES = "{fn} reads or writes files on the database host; it is not available through this tool"
_SERVER_CONTROL = "{fn} acts on the server outside this transaction; ask the operator"
_REPLICATION = "{fn} changes replication state, which survives rollback; ask the operator"
_ADVISORY_LOCKS = (
    "{fn} takes or releases an advisory lock: session-level ones survive rollback and leak into pooled "
    "connections; use SELECT … FOR UPDATE or LOCK TABLE inside run_sql_transaction"
)
_SQL_TEXT = "{fn} runs SQL given as text, which the policy cannot inspect; run that query directly"

_FORBIDDEN_FUNCTIONS = {
    "pg_read_file": _HOST_FILES,
    "pg_read_binary_file": _HOST_FILES,
    "pg_stat_file": _HOST_FILES,
    "pg_logdir_ls": _HOST_FILES,
    "lo_import": _HOST_FILES,
    "lo_export": _HOST_FILES,
    "pg_terminate_backend": _SERVER_CONTROL,
    "pg_cancel_backend": _SERVER_CONTROL,
    "pg_reload_conf": _SERVER_CONTROL,
    "pg_rotate_logfile": _SERVER_CONTROL,
    "pg_rotate_logfile_old": _SERVER_CONTROL,
    "pg_promote": _SERVER_CONTROL,
    "pg_switch_wal": _SERVER_CONTROL,
    "pg_create_restore_point": _SERVER_CONTROL,
    "pg_backup_start": _SERVER_CONTROL,
    "pg_backup_stop": _SERVER_CONTROL,
    "pg_start_backup": _SERVER_CONTROL,
    "pg_stop_backup": _SERVER_CONTROL,
    "pg_wal_replay_pause": _SERVER_CONTROL,
    "pg_wal_replay_resume": _SERVER_CONTROL,
    "pg_log_backend_memory_contexts": _SERVER_CONTROL,
    "pg_import_system_collations": "{fn} writes catalog rows even inside a read-only transaction; ask the operator",
    "pg_notify": "{fn} sends a notification to other sessions; LISTEN/NOTIFY are not supported through this tool",
    "setseed": (
        "{fn} fixes the session's random sequence, which outlives the call in a pooled connection; "
        "use random() unseeded"
    ),
    "pg_create_physical_replication_slot": _REPLICATION,
    "pg_create_logical_replication_slot": _REPLICATION,
    "pg_drop_replication_slot": _REPLICATION,
    "pg_copy_physical_replication_slot": _REPLICATION,
    "pg_copy_logical_replication_slot": _REPLICATION,
    "pg_replication_slot_advance": _REPLICATION,
    "pg_logical_emit_message": _REPLICATION,
    "query_to_xml": _SQL_TEXT,
    "query_to_xmlschema": _SQL_TEXT,
    "query_to_xml_and_xmlschema": _SQL_TEXT,
    "cursor_to_xml": _SQL_TEXT,
    "cursor_to_xmlschema": _SQL_TEXT,
    "ts_stat": _SQL_TEXT,
}
_FORBIDDEN_PREFIXES = (
    ("pg_ls_", _HOST_FILES),
    ("pg_file_", _HOST_FILES),
    ("pg_advisory_", _ADVISORY_LOCKS),
    ("pg_try_advisory_", _ADVISORY_LOCKS),
    ("pg_logical_slot_", _REPLICATION),
    ("pg_replication_origin_", _REPLICATION),
)
_FORBIDDEN_IN_ANY_SCHEMA = ("dblink", "pg_background")
"""Extensions install these wherever they are told (usually public), so the schema does not clear them."""

_SAFE_VOLATILE = frozenset(
    {
        "random",
        "random_normal",
        "gen_random_uuid",
        "uuidv4",
        "uuidv7",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "clock_timestamp",
        "timeofday",
        "now",
        "statement_timestamp",
        "transaction_timestamp",
        "pg_sleep",
        "pg_sleep_for",
        "pg_sleep_until",
        "txid_current",
        "txid_current_if_assigned",
        "pg_current_xact_id",
        "pg_current_xact_id_if_assigned",
        "pg_backend_pid",
        "pg_current_wal_lsn",
        "pg_current_wal_insert_lsn",
        "pg_current_wal_flush_lsn",
        "pg_last_wal_replay_lsn",
        "pg_last_wal_receive_lsn",
        "pg_last_xact_replay_timestamp",
        "pg_is_in_recovery",
        "currval",
        "lastval",
        # Sizes, locks and the server's state: marked volatile because they read outside the snapshot, but they
        # only read, and every size or lock diagnosis needs them.
        "pg_relation_size",
        "pg_total_relation_size",
        "pg_table_size",
        "pg_indexes_size",
        "pg_database_size",
        "pg_tablespace_size",
        "pg_blocking_pids",
        "pg_safe_snapshot_blocking_pids",
        "pg_isolation_test_session_is_blocked",
        "pg_lock_status",
        "pg_stat_clear_snapshot",
        "pg_current_logfile",
        "pg_xact_status",
        "txid_status",
        "pg_last_committed_xact",
        "pg_get_wal_replay_pause_state",
        "pg_is_wal_replay_paused",
        "pg_prepared_xact",
        "pg_cursor",
        "pg_prepared_statement",
        "pg_get_backend_memory_contexts",
        "pg_notification_queue_usage",
        "pg_control_checkpoint",
        "pg_control_system",
        "pg_control_init",
        "pg_control_recovery",
        "pg_backend_memory_contexts",
        "set_config",  # its setting is checked where it is called (``_forbidden_call``)
    }
)
"""Built-ins marked volatile in pg_proc that neither write nor act outside the transaction. Matched without schema
or in pg_catalog only, so that ``public.random()`` is not mistaken for one (the uuid-ossp names are trusted
unqualified, as the extension is usually installed in a schema of the search path)."""
_SAFE_VOLATILE_PREFIXES = ("pg_stat_get_",)
_SAFE_EXTENSION_FUNCTIONS = frozenset(
    {
        ("uuid-ossp", "uuid_generate_v1"),
        ("uuid-ossp", "uuid_generate_v1mc"),
        ("uuid-ossp", "uuid_generate_v4"),
        ("pgcrypto", "gen_random_bytes"),
        ("pgcrypto", "gen_random_uuid"),
        ("pgcrypto", "gen_salt"),
        ("pg_stat_statements", "pg_stat_statements"),
        ("pg_stat_statements", "pg_stat_statements_info"),
        ("hypopg", "hypopg"),
        ("hypopg", "hypopg_relation_size"),
        ("hypopg", "hypopg_get_indexdef"),
        ("hypopg", "hypopg_hidden_indexes"),
    }
)
"""Volatile functions of extensions that only read or make random values (matched by extension and name: a
function the catalog records as a member of that extension)."""
_OUTSIDE_LIBRARIES = frozenset({"dblink", "pg_background", "adminpack", "postgres_fdw", "file_fdw"})
"""Shared libraries whose C functions act through another connection or on the host's files, whatever their name."""
_SEQUENCE_WRITERS = frozenset({"nextval", "setval"})
_BUILTIN_SCHEMAS = (None, "pg_catalog")


def _forbidden_call(fn: FunctionCall) -> str | None:
    """Why calling this function is forbidden, or None."""
    name = fn.name
    if name.startswith(_FORBIDDEN_IN_ANY_SCHEMA):
        return _OUTSIDE_CONNECTION.format(fn=fn)
    if fn.schema not in _BUILTIN_SCHEMAS:
        return None
    if name == "set_config":
        if fn.first_arg is None:
            return f"{fn} is allowed only with a setting name written as a constant, so the policy can check it"
        refusal = _setting_refusal(fn.first_arg)
        return None if refusal is None else f"{fn} of {fn.first_arg} is not allowed: {refusal}"
    template = _denied_builtin(name)
    return None if template is None else template.format(fn=fn)


def _denied_builtin(name: str) -> str | None:
    """The refusal template for a built-in function of this name, or None."""
    template = _FORBIDDEN_FUNCTIONS.get(name)
    if template is None:
        template = next((reason for prefix, reason in _FORBIDDEN_PREFIXES if name.startswith(prefix)), None)
    return template


def _function_effect(fn: FunctionCall) -> _Judgement | None:
    """What calling a function that is not forbidden adds to a statement's category, judged by its name alone."""
    if fn.schema in _BUILTIN_SCHEMAS and fn.name in _SEQUENCE_WRITERS:
        return _Judgement("write", f"{fn} changes a sequence (even if the transaction rolls back)")
    return None


def _resolved_call(fn: Function) -> _Judgement | None:
    """What calling a function the catalog resolved adds: by its name and code for PostgreSQL's own and C functions,
    by its extension for allow-listed readers; SQL and PL/pgSQL functions by their bodies (judged as ``Runs``)."""
    # Functions written in SQL or PL/pgSQL are judged by their bodies, whatever their names; C code by its names.
    names = (fn.name, *fn.aliases) if fn.builtin or fn.language in ("c", "internal") else ()
    if fn.library in _OUTSIDE_LIBRARIES or any(name.startswith(_FORBIDDEN_IN_ANY_SCHEMA) for name in names):
        return _Judgement("forbidden", _OUTSIDE_CONNECTION.format(fn=fn))
    for name in ((fn.name,) if fn.builtin else ()) + fn.aliases:
        if name == "set_config" and name != fn.name:
            return _Judgement("forbidden", f"{fn} runs set_config under another name, so its setting cannot be checked")
        template = _denied_builtin(name)
        if template is not None:
            return _Judgement("forbidden", template.format(fn=fn))
    if fn.builtin:
        if fn.name in _SAFE_VOLATILE or fn.name.startswith(_SAFE_VOLATILE_PREFIXES):
            return None
        if fn.name in _SEQUENCE_WRITERS:
            return _Judgement("write", f"{fn} changes a sequence (even if the transaction rolls back)")
        if fn.volatility == "v":
            return _Judgement("destructive", f"calls volatile function {fn}, which may write")
        return None
    if (fn.extension, fn.name) in _SAFE_EXTENSION_FUNCTIONS or fn.language in ("sql", "plpgsql"):
        return None
    if fn.language in ("c", "internal"):
        if fn.volatility == "v":
            return _Judgement(
                "destructive",
                f"calls volatile function {fn}, written in C, which may write; the policy cannot see inside it",
            )
        return None
    return _Judgement("destructive", f"calls {fn}, written in {fn.language}, which the policy cannot read")


_WRITE_VERBS = {"insert": "adds rows to", "update": "changes rows of", "delete": "deletes rows of"}


def _reached_judgement(item: Reached) -> _Judgement | None:
    match item:
        case Call(function=function):
            return _resolved_call(function)
        case Runs(statement=statement):
            judgement = _classify(statement, EMPTY)
            return None if judgement.category == "read" else _Judgement(judgement.category, judgement.reason)
        case Write(own=False, relation=relation, kind=kind):
            verb = _WRITE_VERBS.get(kind, "changes")
            return _Judgement("destructive", f"{verb} {relation}, beyond what the statement itself changes")
        case Foreign(table=table, wrapper=wrapper):
            if wrapper == "file_fdw":
                return _Judgement(
                    "forbidden",
                    f"foreign table {table} uses file_fdw, which reads files or runs programs on the database host",
                )
            return _Judgement(
                "destructive",
                f"foreign table {table} is reached through {wrapper}, another connection the policy cannot see into",
            )
        case Unseen(what=what):
            return _Judgement("destructive", f"{what}; the policy cannot see what that runs")
    return None


def _reached_effect(item: Reached) -> _Judgement | None:
    """An item of the closure as a judgement whose reason names the path to it."""
    judgement = _reached_judgement(item)
    if judgement is None or not item.path:
        return judgement
    return judgement._replace(reason=" → ".join((*item.path, judgement.reason)), reached=True)


# --- statements -------------------------------------------------------------------------------------------------

_TRANSACTION_KEYWORDS = {
    TransactionStmtKind.TRANS_STMT_BEGIN: "BEGIN",
    TransactionStmtKind.TRANS_STMT_START: "START TRANSACTION",
    TransactionStmtKind.TRANS_STMT_COMMIT: "COMMIT",
    TransactionStmtKind.TRANS_STMT_ROLLBACK: "ROLLBACK",
    TransactionStmtKind.TRANS_STMT_SAVEPOINT: "SAVEPOINT",
    TransactionStmtKind.TRANS_STMT_RELEASE: "RELEASE SAVEPOINT",
    TransactionStmtKind.TRANS_STMT_ROLLBACK_TO: "ROLLBACK TO SAVEPOINT",
    TransactionStmtKind.TRANS_STMT_PREPARE: "PREPARE TRANSACTION",
    TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED: "COMMIT PREPARED",
    TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED: "ROLLBACK PREPARED",
}
_TRANSACTION_CONTROL = (
    "transaction control is not allowed: the server runs each call in its own transaction; "
    "use run_sql_transaction for several statements"
)
_PREPARED = "session-level prepared statements leak across pooled connections; pass params instead"
_CURSORS = "cursors are not supported: each call is its own transaction; page with LIMIT and a WHERE on the last key"
_NOTIFICATIONS = "LISTEN/NOTIFY are session-level and leak into pooled connections; they are not supported here"
_SUBSCRIPTIONS = (
    "subscriptions connect from the database host to another server, outside the transaction; "
    "manage them outside this tool"
)

_FORBIDDEN_STATEMENTS: dict[type, str] = {
    ast.TransactionStmt: _TRANSACTION_CONTROL,
    ast.CopyStmt: "COPY is not supported through this tool; use INSERT … SELECT or SELECT",
    ast.LoadStmt: "LOAD loads a shared library into the server process; ask the operator to install extensions",
    ast.AlterSystemStmt: "ALTER SYSTEM rewrites the server's configuration; ask the operator",
    ast.ListenStmt: f"LISTEN: {_NOTIFICATIONS}",
    ast.UnlistenStmt: f"UNLISTEN: {_NOTIFICATIONS}",
    ast.NotifyStmt: f"NOTIFY: {_NOTIFICATIONS}",
    ast.DiscardStmt: "DISCARD resets session state the server manages for its pooled connections",
    ast.PrepareStmt: f"PREPARE: {_PREPARED}",
    ast.ExecuteStmt: f"EXECUTE: {_PREPARED}",
    ast.DeallocateStmt: f"DEALLOCATE: {_PREPARED}",
    ast.DeclareCursorStmt: f"DECLARE CURSOR: {_CURSORS}",
    ast.FetchStmt: f"FETCH/MOVE: {_CURSORS}",
    ast.ClosePortalStmt: f"CLOSE: {_CURSORS}",
    ast.CheckPointStmt: "CHECKPOINT forces a server-wide checkpoint; ask the operator",
    ast.CreateSubscriptionStmt: _SUBSCRIPTIONS,
    ast.AlterSubscriptionStmt: _SUBSCRIPTIONS,
    ast.DropSubscriptionStmt: _SUBSCRIPTIONS,
}
"""Statements refused whatever their details, also when nested in another statement (EXPLAIN EXECUTE, a rule, ...)."""
_FORBIDDEN_BY_TAG = {kind.__name__: reason for kind, reason in _FORBIDDEN_STATEMENTS.items()}

_DDL: dict[type, str] = {
    ast.AlterCollationStmt: "ALTER COLLATION",
    ast.AlterDatabaseRefreshCollStmt: "ALTER DATABASE … REFRESH COLLATION VERSION",
    ast.AlterDatabaseSetStmt: "ALTER DATABASE … SET",
    ast.AlterDefaultPrivilegesStmt: "ALTER DEFAULT PRIVILEGES",
    ast.AlterDomainStmt: "ALTER DOMAIN",
    ast.AlterEnumStmt: "ALTER TYPE",
    ast.AlterEventTrigStmt: "ALTER EVENT TRIGGER",
    ast.AlterExtensionContentsStmt: "ALTER EXTENSION",
    ast.AlterExtensionStmt: "ALTER EXTENSION",
    ast.AlterFdwStmt: "ALTER FOREIGN DATA WRAPPER",
    ast.AlterForeignServerStmt: "ALTER SERVER",
    ast.AlterFunctionStmt: "ALTER FUNCTION",
    ast.AlterObjectDependsStmt: "ALTER … DEPENDS ON EXTENSION",
    ast.AlterObjectSchemaStmt: "ALTER … SET SCHEMA",
    ast.AlterOpFamilyStmt: "ALTER OPERATOR FAMILY",
    ast.AlterOperatorStmt: "ALTER OPERATOR",
    ast.AlterOwnerStmt: "ALTER … OWNER TO",
    ast.AlterPolicyStmt: "ALTER POLICY",
    ast.AlterPublicationStmt: "ALTER PUBLICATION",
    ast.AlterRoleSetStmt: "ALTER ROLE … SET",
    ast.AlterRoleStmt: "ALTER ROLE",
    ast.AlterSeqStmt: "ALTER SEQUENCE",
    ast.AlterStatsStmt: "ALTER STATISTICS",
    ast.AlterTSConfigurationStmt: "ALTER TEXT SEARCH CONFIGURATION",
    ast.AlterTSDictionaryStmt: "ALTER TEXT SEARCH DICTIONARY",
    ast.AlterTableMoveAllStmt: "ALTER … ALL IN TABLESPACE",
    ast.AlterTableSpaceOptionsStmt: "ALTER TABLESPACE",
    ast.AlterTypeStmt: "ALTER TYPE",
    ast.AlterUserMappingStmt: "ALTER USER MAPPING",
    ast.CommentStmt: "COMMENT",
    ast.CompositeTypeStmt: "CREATE TYPE",
    ast.CreateAmStmt: "CREATE ACCESS METHOD",
    ast.CreateCastStmt: "CREATE CAST",
    ast.CreateConversionStmt: "CREATE CONVERSION",
    ast.CreateDomainStmt: "CREATE DOMAIN",
    ast.CreateEnumStmt: "CREATE TYPE … AS ENUM",
    ast.CreateEventTrigStmt: "CREATE EVENT TRIGGER",
    ast.CreateExtensionStmt: "CREATE EXTENSION",
    ast.CreateFdwStmt: "CREATE FOREIGN DATA WRAPPER",
    ast.CreateForeignServerStmt: "CREATE SERVER",
    ast.CreateForeignTableStmt: "CREATE FOREIGN TABLE",
    ast.CreateFunctionStmt: "CREATE FUNCTION",
    ast.CreateOpClassStmt: "CREATE OPERATOR CLASS",
    ast.CreateOpFamilyStmt: "CREATE OPERATOR FAMILY",
    ast.CreatePLangStmt: "CREATE LANGUAGE",
    ast.CreatePolicyStmt: "CREATE POLICY",
    ast.CreatePublicationStmt: "CREATE PUBLICATION",
    ast.CreateRangeStmt: "CREATE TYPE … AS RANGE",
    ast.CreateRoleStmt: "CREATE ROLE",
    ast.CreateSchemaStmt: "CREATE SCHEMA",
    ast.CreateSeqStmt: "CREATE SEQUENCE",
    ast.CreateStatsStmt: "CREATE STATISTICS",
    ast.CreateStmt: "CREATE TABLE",
    ast.CreateTransformStmt: "CREATE TRANSFORM",
    ast.CreateTrigStmt: "CREATE TRIGGER",
    ast.CreateUserMappingStmt: "CREATE USER MAPPING",
    ast.DefineStmt: "CREATE",
    ast.ImportForeignSchemaStmt: "IMPORT FOREIGN SCHEMA",
    ast.RenameStmt: "ALTER … RENAME",
    ast.RuleStmt: "CREATE RULE",
    ast.SecLabelStmt: "SECURITY LABEL",
    ast.ViewStmt: "CREATE VIEW",
}
"""Statements that only define or change definitions (the special cases have their own judge below)."""

_DESTRUCTIVE_ALTER_TABLE = {
    AlterTableType.AT_DropColumn: "ALTER TABLE … DROP COLUMN deletes the column and its data",
    AlterTableType.AT_DropConstraint: "ALTER TABLE … DROP CONSTRAINT removes a rule that protects the data",
    AlterTableType.AT_AlterColumnType: "ALTER TABLE … ALTER COLUMN … TYPE rewrites the column's values",
}
_OBJECT_WORDS = {
    ObjectType.OBJECT_MATVIEW: "MATERIALIZED VIEW",
    ObjectType.OBJECT_FOREIGN_TABLE: "FOREIGN TABLE",
    ObjectType.OBJECT_FDW: "FOREIGN DATA WRAPPER",
    ObjectType.OBJECT_FOREIGN_SERVER: "SERVER",
    ObjectType.OBJECT_STATISTIC_EXT: "STATISTICS",
    ObjectType.OBJECT_TABCONSTRAINT: "CONSTRAINT",
}


def _names(facts: StatementFacts) -> str:
    return ", ".join(str(target) for target in facts.targets) or "the named objects"


def _modification_effect(change: Modification) -> _Judgement:
    target = str(change.target) if change.target is not None else "the table"
    verb = change.kind.upper()
    action = "removes" if change.kind == "delete" else "changes"
    if change.has_where is False:
        judgement = _Judgement("destructive", f"{verb} without WHERE {action} every row of {target}")
    elif change.constant_condition:
        where = "ON" if change.kind == "merge" else "WHERE"
        judgement = _Judgement(
            "destructive", f"{verb} whose {where} condition does not depend on the row {action} every row of {target}"
        )
    else:
        action = {"insert": "adds rows to", "update": "changes rows of", "delete": "removes rows of"}.get(
            change.kind, "changes rows of"
        )
        judgement = _Judgement("write", f"{verb} {action} {target}")
    if change.nested:
        return judgement._replace(reason=f"a nested {judgement.reason}")
    return judgement


def _select(node: Any, facts: StatementFacts) -> _Judgement:
    return _Judgement("read", "VALUES only reads" if node.valuesLists else "SELECT only reads")


def _modify(node: Any, facts: StatementFacts) -> _Judgement:
    top = next((change for change in facts.modifications if not change.nested), None)
    if top is None:  # not expected: the analysis records the statement itself as a modification
        return _Judgement("write", f"{facts.tag.removesuffix('Stmt').upper()} changes rows")
    return _modification_effect(top)


def _explain(node: Any, facts: StatementFacts) -> _Judgement:
    if not option_enabled(node.options, "analyze"):
        return _Judgement("read", "EXPLAIN without ANALYZE only plans the statement", executes=False)
    inner = _judge(node.query, facts)
    if inner.category == "read":
        return inner._replace(reason="EXPLAIN ANALYZE runs the statement, which only reads")
    return inner._replace(reason=f"EXPLAIN ANALYZE runs the statement: {inner.reason}")


def _variable_set(node: Any, facts: StatementFacts) -> _Judgement:
    kind = node.kind
    if kind == VariableSetKind.VAR_SET_MULTI:
        return _Judgement("forbidden", f"SET {node.name} is not allowed: {_TRANSACTION_SETTINGS}")
    if kind == VariableSetKind.VAR_RESET_ALL:
        return _Judgement("forbidden", "RESET ALL is not allowed: it would clear the guards the server sets per call")
    verb = "RESET" if kind == VariableSetKind.VAR_RESET else "SET"
    name = str(node.name or "").lower()
    refusal = _setting_refusal(name)
    if refusal is not None:
        return _Judgement("forbidden", f"{verb} {name} is not allowed: {refusal}")
    return _Judgement("read", f"{verb} {name} only tunes planning or output format")


def _transaction(node: Any, facts: StatementFacts) -> _Judgement:
    keyword = _TRANSACTION_KEYWORDS.get(node.kind, "transaction control")
    return _Judgement("forbidden", f"{keyword}: {_TRANSACTION_CONTROL}")


def _copy(node: Any, facts: StatementFacts) -> _Judgement:
    if node.is_program:
        return _Judgement("forbidden", "COPY … PROGRAM runs a shell command on the database host; it is never allowed")
    if node.filename:
        return _Judgement(
            "forbidden", "COPY to or from a server file reads or writes files on the database host; it is never allowed"
        )
    return _Judgement("forbidden", _FORBIDDEN_STATEMENTS[ast.CopyStmt])


def _drop(node: Any, facts: StatementFacts) -> _Judgement:
    kind = node.removeType
    word = _OBJECT_WORDS.get(kind, kind.name.removeprefix("OBJECT_").replace("_", " "))
    return _Judgement(
        "destructive", f"DROP {word} deletes {_names(facts)} and everything stored in it", bool(node.concurrent)
    )


def _alter_table(node: Any, facts: StatementFacts) -> _Judgement:
    if node.objtype == ObjectType.OBJECT_FOREIGN_TABLE:
        return _Judgement("destructive", "ALTER FOREIGN TABLE can change what its wrapper reads (a file, a program)")
    autocommit = False
    for command in node.cmds or ():
        reason = _DESTRUCTIVE_ALTER_TABLE.get(command.subtype)
        if reason is not None:
            return _Judgement("destructive", reason)
        if isinstance(command.def_, ast.PartitionCmd) and command.def_.concurrent:
            autocommit = True
    return _Judgement("ddl", "ALTER TABLE changes a table's definition", autocommit)


def _grant(node: Any, facts: StatementFacts) -> _Judgement:
    if not node.is_grant:
        return _Judgement("destructive", "REVOKE takes privileges away, which can break the roles that use them")
    if isinstance(node, ast.GrantRoleStmt):
        if node.admin_opt if hasattr(node, "admin_opt") else option_enabled(node.opt, "admin"):
            return _Judgement(
                "destructive", "GRANT … WITH ADMIN OPTION lets the grantee hand the role on to others, for good"
            )
        powerful = sorted(
            {str(p.priv_name) for p in node.granted_roles or () if isinstance(p, ast.AccessPriv)} & _POWERFUL_ROLES
        )
        if powerful:
            return _Judgement("destructive", f"GRANT {', '.join(powerful)} gives powers over the server or all data")
    return _Judgement("ddl", "GRANT gives privileges")


_POWERFUL_ROLES = frozenset(
    {
        "pg_execute_server_program",
        "pg_read_server_files",
        "pg_write_server_files",
        "pg_read_all_data",
        "pg_write_all_data",
        "pg_signal_backend",
        "pg_checkpoint",
        "pg_create_subscription",
        "neon_superuser",
    }
)
"""Predefined roles whose membership reaches beyond the database's own data and privileges (and Neon's admin role)."""
_ROLE_POWERS = {
    "superuser": "SUPERUSER",
    "bypassrls": "BYPASSRLS",
    "isreplication": "REPLICATION",
    "createrole": "CREATEROLE",
    "createdb": "CREATEDB",
}


def _role(node: Any, facts: StatementFacts) -> _Judgement:
    verb = "CREATE ROLE" if isinstance(node, ast.CreateRoleStmt) else "ALTER ROLE"
    powers = [word for name, word in _ROLE_POWERS.items() if option_enabled(node.options, name)]
    if powers:
        return _Judgement(
            "destructive", f"{verb} … {' '.join(powers)} gives the role powers beyond its own objects, for good"
        )
    for option in node.options or ():
        if not isinstance(option, ast.DefElem):
            continue
        if option.defname == "adminmembers" and option.arg:
            return _Judgement("destructive", f"{verb} … ADMIN gives other roles the power to hand this one on")
        if option.defname == "addroleto":
            roles = {str(r.rolename) for r in option.arg or () if isinstance(r, ast.RoleSpec)}
            powerful = sorted(roles & _POWERFUL_ROLES)
            if powerful:
                return _Judgement(
                    "destructive", f"{verb} … IN ROLE {', '.join(powerful)} gives powers over the server or all data"
                )
    return _Judgement("ddl", f"{verb} changes the database's roles")


_LASTING_SETTINGS = (
    "changes a setting of every future session {who}: it can switch off triggers and foreign keys "
    "(session_replication_role) or change what names resolve to (search_path)"
)
_WAYS_OUT = {
    ast.CreateExtensionStmt: "CREATE EXTENSION runs the extension's install script and adds its functions, some of "
    "which act outside the transaction or on the host (dblink, file_fdw, …)",
    ast.AlterExtensionStmt: "ALTER EXTENSION … UPDATE runs the extension's update scripts",
    ast.CreateFdwStmt: "CREATE FOREIGN DATA WRAPPER adds a way to reach other servers or the host",
    ast.AlterFdwStmt: "ALTER FOREIGN DATA WRAPPER changes how other servers or the host are reached",
    ast.CreateForeignServerStmt: "CREATE SERVER lets foreign tables reach another server, or files and programs on "
    "the database host",
    ast.AlterForeignServerStmt: "ALTER SERVER changes where its foreign tables reach",
    ast.CreateForeignTableStmt: "CREATE FOREIGN TABLE makes another server, or files and programs on the database "
    "host, readable as a table",
    ast.ImportForeignSchemaStmt: "IMPORT FOREIGN SCHEMA makes another server's tables readable here",
    ast.CreateUserMappingStmt: "CREATE USER MAPPING stores credentials for another server",
    ast.AlterUserMappingStmt: "ALTER USER MAPPING changes credentials for another server",
    ast.CreateEventTrigStmt: "CREATE EVENT TRIGGER runs its function on every DDL statement of every session",
    ast.AlterEventTrigStmt: "ALTER EVENT TRIGGER changes when its function runs on DDL of every session",
    ast.AlterDefaultPrivilegesStmt: "ALTER DEFAULT PRIVILEGES changes the privileges of every object created from "
    "now on",
}
"""Definitions that reach beyond the database, or outlive the call in every session: destructive, so confirmed."""


def _vacuum(node: Any, facts: StatementFacts) -> _Judgement:
    if not node.is_vacuumcmd:
        return _Judgement("write", "ANALYZE updates planner statistics")
    if option_enabled(node.options, "full"):
        return _Judgement("destructive", "VACUUM FULL rewrites tables under an exclusive lock", True)
    return _Judgement("write", "VACUUM cleans up tables", True)


def _reindex(node: Any, facts: StatementFacts) -> _Judgement:
    whole = node.kind in (
        ReindexObjectType.REINDEX_OBJECT_SCHEMA,
        ReindexObjectType.REINDEX_OBJECT_SYSTEM,
        ReindexObjectType.REINDEX_OBJECT_DATABASE,
    )
    return _Judgement("write", "REINDEX rebuilds indexes", whole or option_enabled(node.params, "concurrently"))


def _cluster(node: Any, facts: StatementFacts) -> _Judgement:
    return _Judgement("destructive", "CLUSTER rewrites tables under an exclusive lock", node.relation is None)


def _index(node: Any, facts: StatementFacts) -> _Judgement:
    return _Judgement("ddl", "CREATE INDEX adds an index", bool(node.concurrent))


def _create_table_as(node: Any, facts: StatementFacts) -> _Judgement:
    if node.objtype == ObjectType.OBJECT_MATVIEW:
        return _Judgement("ddl", "CREATE MATERIALIZED VIEW creates a materialized view")
    return _Judgement("ddl", "CREATE TABLE AS creates a table")


def _alter_database(node: Any, facts: StatementFacts) -> _Judgement:
    # Moving a database to another tablespace cannot run inside a transaction block.
    return _Judgement("ddl", "ALTER DATABASE changes a database", option_enabled(node.options, "tablespace"))


def _fixed(
    category: Category, reason: str, needs_autocommit: bool = False
) -> Callable[[Any, StatementFacts], _Judgement]:
    judgement = _Judgement(category, reason, needs_autocommit)
    return lambda node, facts: judgement


_JUDGES: dict[type, Callable[[Any, StatementFacts], _Judgement]] = {
    **{kind: _fixed("ddl", f"{label} changes the database's definitions") for kind, label in _DDL.items()},
    **{kind: _fixed("forbidden", reason) for kind, reason in _FORBIDDEN_STATEMENTS.items()},
    ast.SelectStmt: _select,
    ast.VariableShowStmt: _fixed("read", "SHOW only reads a setting"),
    ast.ExplainStmt: _explain,
    ast.VariableSetStmt: _variable_set,
    ast.InsertStmt: _modify,
    ast.UpdateStmt: _modify,
    ast.DeleteStmt: _modify,
    ast.MergeStmt: _modify,
    ast.RefreshMatViewStmt: _fixed("write", "REFRESH MATERIALIZED VIEW recomputes its rows"),
    ast.LockStmt: _fixed("write", "LOCK TABLE holds locks until the end of the transaction"),
    ast.VacuumStmt: _vacuum,
    ast.ReindexStmt: _reindex,
    ast.IndexStmt: _index,
    ast.CreateTableAsStmt: _create_table_as,
    ast.AlterTableStmt: _alter_table,
    ast.AlterDatabaseStmt: _alter_database,
    ast.GrantStmt: _grant,
    ast.GrantRoleStmt: _grant,
    ast.CreateRoleStmt: _role,
    ast.AlterRoleStmt: _role,
    ast.AlterRoleSetStmt: _fixed("destructive", "ALTER ROLE … SET " + _LASTING_SETTINGS.format(who="of the role")),
    ast.AlterDatabaseSetStmt: _fixed(
        "destructive", "ALTER DATABASE … SET " + _LASTING_SETTINGS.format(who="in the database")
    ),
    **{kind: _fixed("destructive", reason) for kind, reason in _WAYS_OUT.items()},
    ast.CreatedbStmt: _fixed("ddl", "CREATE DATABASE creates a database", True),
    ast.CreateTableSpaceStmt: _fixed("ddl", "CREATE TABLESPACE creates a tablespace", True),
    ast.TransactionStmt: _transaction,
    ast.CopyStmt: _copy,
    ast.DropStmt: _drop,
    ast.DropdbStmt: lambda node, facts: _Judgement(
        "destructive", f"DROP DATABASE deletes {_names(facts)} and all its data", True
    ),
    ast.DropTableSpaceStmt: _fixed("destructive", "DROP TABLESPACE deletes a tablespace", True),
    ast.DropRoleStmt: lambda node, facts: _Judgement("destructive", f"DROP ROLE deletes {_names(facts)}"),
    ast.DropUserMappingStmt: _fixed("destructive", "DROP USER MAPPING deletes stored credentials"),
    ast.DropOwnedStmt: _fixed("destructive", "DROP OWNED deletes every object the roles own"),
    ast.ReassignOwnedStmt: _fixed("destructive", "REASSIGN OWNED hands every object of the roles to another role"),
    ast.TruncateStmt: lambda node, facts: _Judgement("destructive", f"TRUNCATE removes every row of {_names(facts)}"),
    ast.ClusterStmt: _cluster,
    ast.DoStmt: _fixed("destructive", "DO runs procedural code the policy cannot see inside"),
    ast.CallStmt: _fixed("destructive", "CALL runs a procedure the policy cannot see inside"),
}


def _judge(node: Any, facts: StatementFacts) -> _Judgement:
    judge = _JUDGES.get(type(node))
    if judge is None:
        return _Judgement("forbidden", f"statement type {type(node).__name__} is not supported by the policy")
    return judge(node, facts)


def _classify(facts: StatementFacts, closure: Closure) -> _Judgement:
    for fn in facts.functions:
        refusal = _forbidden_call(fn)
        if refusal is not None:
            return _Judgement("forbidden", refusal)
    nested_refusal = next((_FORBIDDEN_BY_TAG[tag] for tag in facts.nested_tags if tag in _FORBIDDEN_BY_TAG), None)
    if nested_refusal is not None:
        return _Judgement("forbidden", f"it contains a statement that is not allowed: {nested_refusal}")
    worst = _judge(facts.node, facts)
    if worst.category == "forbidden":
        return worst
    effects: list[_Judgement | None] = []
    if worst.executes:
        effects.extend(_modification_effect(change) for change in facts.modifications)
        if facts.locks_rows:
            effects.append(_Judgement("write", "SELECT … FOR UPDATE/SHARE locks rows"))
        if facts.select_into:
            effects.append(_Judgement("ddl", "SELECT … INTO creates a table"))
        effects.extend(_function_effect(fn) for fn in facts.functions)
    # What the statement sets off counts even when it only plans: the closure then holds what planning runs.
    effects.extend(_reached_effect(item) for item in closure.reached)
    for effect in effects:
        if effect is not None and _RANK[effect.category] > _RANK[worst.category]:
            worst = effect._replace(needs_autocommit=worst.needs_autocommit, executes=worst.executes)
    return worst


def classify(facts: StatementFacts, closure: Closure = EMPTY) -> Classification:
    """The category of one statement, with what its executable ``closure`` reaches (its text alone without one)."""
    judgement = _classify(facts, closure)
    return Classification(
        facts.index, judgement.category, judgement.reason, judgement.needs_autocommit, judgement.reached
    )


def decide(facts: Sequence[StatementFacts], mode: AccessMode, closures: Sequence[Closure] | None = None) -> Verdict:
    """The verdict on a script in an access mode, with each statement's executable closure when given.

    Anything forbidden is rejected. In read-only mode a script runs only when every statement is a read; in full mode
    it runs, after confirmation when a statement is destructive. Any mode other than ``"full"`` counts as read-only.
    Raises ``InvalidInput`` when there is no statement, or when ``closures`` does not match the statements.
    """
    if not facts:
        raise InvalidInput("no SQL statement found")
    if closures is not None and len(closures) != len(facts):
        raise InvalidInput(f"{len(closures)} closures for {len(facts)} statements")
    statements = tuple(
        classify(statement, closures[i] if closures is not None else EMPTY) for i, statement in enumerate(facts)
    )
    worst = max(statements, key=lambda statement: _RANK[statement.category])
    where = f"statement {worst.index + 1}: " if len(statements) > 1 else ""
    reached = worst.reached
    if worst.category == "forbidden":
        return Verdict("reject", worst.category, f"{where}{worst.reason}.", statements, reached)
    if mode != "full" and worst.category != "read":
        return Verdict(
            "reject",
            worst.category,
            f"the server is in read-only mode: only reads run (statement {worst.index + 1} is "
            f"{_AS_COMPLEMENT[worst.category]}: {worst.reason}). The operator can start it with --access-mode full.",
            statements,
            reached,
        )
    if worst.category == "destructive":
        return Verdict(
            "confirm", worst.category, f"{where}{worst.reason} — it runs only after confirmation.", statements, reached
        )
    if worst.category == "read" and len(statements) > 1:
        return Verdict("allow", worst.category, "every statement only reads.", statements)
    return Verdict("allow", worst.category, f"{where}{worst.reason}.", statements)
