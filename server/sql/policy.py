"""The SQL policy: pure functions from statement facts (``server.sql.analysis``) to a verdict. No I/O, deny by default.

Each statement gets a category, from mildest to strictest::

    read         SELECT, VALUES, TABLE, SHOW, EXPLAIN, SET of a harmless planner or format setting
    write        INSERT, UPDATE/DELETE with WHERE, MERGE, SELECT … FOR UPDATE, nextval(), VACUUM, ANALYZE, LOCK, ...
    ddl          CREATE/ALTER (non-destructive forms), COMMENT, GRANT, SELECT … INTO, CREATE TABLE AS, ...
    destructive  DROP, TRUNCATE, UPDATE/DELETE without WHERE, dropping columns or constraints, changing a column's
                 type, REVOKE, VACUUM FULL, CLUSTER, DO, CALL, calls to volatile functions the policy cannot see into
    forbidden    in every mode: transaction control, SET of the server's guards (or of anything not allow-listed),
                 role changes, COPY, LOAD, ALTER SYSTEM, LISTEN/NOTIFY, DISCARD, PREPARE/EXECUTE, cursors,
                 CHECKPOINT, subscriptions, and functions acting outside the transaction or on the host
                 (dblink, file access, advisory locks, signalling backends, ...), wherever they are called

A statement type the policy does not know is forbidden. ``decide`` rejects a script holding anything forbidden; in
read-only mode it allows only scripts of reads; in full mode it asks for confirmation when anything is destructive.

The policy sees function names, not their bodies. ``functions_needing_volatility`` lists the calls whose effect only
the database can tell; the caller looks up their ``pg_proc.provolatile`` and passes it to ``classify``/``decide``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from pglast import ast
from pglast.enums import AlterTableType, ObjectType, ReindexObjectType, TransactionStmtKind, VariableSetKind

from ..errors import InvalidInput
from ..settings import AccessMode
from .analysis import FunctionCall, Modification, StatementFacts

__all__ = ["Category", "Classification", "Verdict", "classify", "decide", "functions_needing_volatility"]

Category = Literal["read", "write", "ddl", "destructive", "forbidden"]

_RANK: dict[Category, int] = {"read": 0, "write": 1, "ddl": 2, "destructive": 3, "forbidden": 4}
_AS_COMPLEMENT: dict[Category, str] = {
    "read": "a read",
    "write": "a write",
    "ddl": "a DDL change",
    "destructive": "destructive",
    "forbidden": "forbidden",
}
_NO_VOLATILITY: Mapping[tuple[str | None, str], str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Classification:
    """The category of one statement, why, and whether it must run outside a transaction block."""

    index: int
    category: Category
    reason: str
    needs_autocommit: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a whole script: run it, ask for confirmation first, or refuse it (``reason`` says why)."""

    action: Literal["allow", "confirm", "reject"]
    category: Category
    """The strictest category among the statements."""
    reason: str
    statements: tuple[Classification, ...]

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
    }
)
"""Built-ins marked volatile in pg_proc that neither write nor act outside the transaction. Matched without schema
or in pg_catalog only, so that ``public.random()`` is not mistaken for one (the uuid-ossp names are trusted
unqualified, as the extension is usually installed in a schema of the search path)."""
_SAFE_VOLATILE_PREFIXES = ("pg_stat_get_",)
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
    template = _FORBIDDEN_FUNCTIONS.get(name)
    if template is None:
        template = next((reason for prefix, reason in _FORBIDDEN_PREFIXES if name.startswith(prefix)), None)
    return None if template is None else template.format(fn=fn)


def _safe_builtin(fn: FunctionCall) -> bool:
    return fn.schema in _BUILTIN_SCHEMAS and (fn.name in _SAFE_VOLATILE or fn.name.startswith(_SAFE_VOLATILE_PREFIXES))


def _known_builtin(fn: FunctionCall) -> bool:
    """The policy knows what this call does without asking the database for its volatility."""
    if _safe_builtin(fn) or _forbidden_call(fn) is not None:
        return True
    return fn.schema in _BUILTIN_SCHEMAS and (fn.name in _SEQUENCE_WRITERS or fn.name == "set_config")


def _function_effect(fn: FunctionCall, volatility: Mapping[tuple[str | None, str], str]) -> _Judgement | None:
    """What calling a function that is not forbidden adds to a statement's category, if anything."""
    if _safe_builtin(fn) or (fn.schema in _BUILTIN_SCHEMAS and fn.name == "set_config"):
        return None
    if fn.schema in _BUILTIN_SCHEMAS and fn.name in _SEQUENCE_WRITERS:
        return _Judgement("write", f"{fn} changes a sequence (even if the transaction rolls back)")
    if volatility.get((fn.schema, fn.name)) == "v":
        return _Judgement(
            "destructive", f"calls volatile function {fn}, which may write; the policy cannot see inside it"
        )
    return None


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


def _option_enabled(options: Any, name: str) -> bool:
    """Whether a generic option such as EXPLAIN's ``analyze`` or VACUUM's ``full`` is on (no value means on).

    Anything but a clear "off" counts as on, the stricter reading; PostgreSQL rejects values it does not know.
    """
    for option in options or ():
        if not isinstance(option, ast.DefElem) or option.defname != name:
            continue
        value = option.arg
        if isinstance(value, ast.Integer):
            return value.ival != 0
        if isinstance(value, ast.Boolean):
            return bool(value.boolval)
        if isinstance(value, ast.String) and isinstance(value.sval, str):
            return value.sval.lower() not in ("false", "off")
        return True
    return False


def _modification_effect(change: Modification) -> _Judgement:
    target = str(change.target) if change.target is not None else "the table"
    verb = change.kind.upper()
    if change.has_where is False:
        action = "removes" if change.kind == "delete" else "changes"
        judgement = _Judgement("destructive", f"{verb} without WHERE {action} every row of {target}")
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
    if not _option_enabled(node.options, "analyze"):
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
    autocommit = False
    for command in node.cmds or ():
        reason = _DESTRUCTIVE_ALTER_TABLE.get(command.subtype)
        if reason is not None:
            return _Judgement("destructive", reason)
        if isinstance(command.def_, ast.PartitionCmd) and command.def_.concurrent:
            autocommit = True
    return _Judgement("ddl", "ALTER TABLE changes a table's definition", autocommit)


def _grant(node: Any, facts: StatementFacts) -> _Judgement:
    if node.is_grant:
        return _Judgement("ddl", "GRANT gives privileges")
    return _Judgement("destructive", "REVOKE takes privileges away, which can break the roles that use them")


def _vacuum(node: Any, facts: StatementFacts) -> _Judgement:
    if not node.is_vacuumcmd:
        return _Judgement("write", "ANALYZE updates planner statistics")
    if _option_enabled(node.options, "full"):
        return _Judgement("destructive", "VACUUM FULL rewrites tables under an exclusive lock", True)
    return _Judgement("write", "VACUUM cleans up tables", True)


def _reindex(node: Any, facts: StatementFacts) -> _Judgement:
    whole = node.kind in (
        ReindexObjectType.REINDEX_OBJECT_SCHEMA,
        ReindexObjectType.REINDEX_OBJECT_SYSTEM,
        ReindexObjectType.REINDEX_OBJECT_DATABASE,
    )
    return _Judgement("write", "REINDEX rebuilds indexes", whole or _option_enabled(node.params, "concurrently"))


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
    return _Judgement("ddl", "ALTER DATABASE changes a database", _option_enabled(node.options, "tablespace"))


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


def _classify(facts: StatementFacts, volatility: Mapping[tuple[str | None, str], str]) -> _Judgement:
    for fn in facts.functions:
        refusal = _forbidden_call(fn)
        if refusal is not None:
            return _Judgement("forbidden", refusal)
    nested_refusal = next((_FORBIDDEN_BY_TAG[tag] for tag in facts.nested_tags if tag in _FORBIDDEN_BY_TAG), None)
    if nested_refusal is not None:
        return _Judgement("forbidden", f"it contains a statement that is not allowed: {nested_refusal}")
    worst = _judge(facts.node, facts)
    if worst.category == "forbidden" or not worst.executes:
        return worst
    effects: list[_Judgement | None] = [_modification_effect(change) for change in facts.modifications]
    if facts.locks_rows:
        effects.append(_Judgement("write", "SELECT … FOR UPDATE/SHARE locks rows"))
    if facts.select_into:
        effects.append(_Judgement("ddl", "SELECT … INTO creates a table"))
    effects.extend(_function_effect(fn, volatility) for fn in facts.functions)
    for effect in effects:
        if effect is not None and _RANK[effect.category] > _RANK[worst.category]:
            worst = effect._replace(needs_autocommit=worst.needs_autocommit)
    return worst


def classify(facts: StatementFacts, volatility: Mapping[tuple[str | None, str], str]) -> Classification:
    """The category of one statement.

    ``volatility`` maps ``(schema, name)`` of called functions to their ``pg_proc.provolatile`` code (``'i'``,
    ``'s'``, ``'v'``), as looked up for ``functions_needing_volatility``; a function missing from it counts as not
    volatile (the database reports an unknown function itself).
    """
    judgement = _classify(facts, volatility)
    return Classification(facts.index, judgement.category, judgement.reason, judgement.needs_autocommit)


def functions_needing_volatility(facts: Sequence[StatementFacts]) -> frozenset[tuple[str | None, str]]:
    """``(schema, name)`` of the calls whose volatility decides a statement's category.

    Leaves out the built-ins the policy knows and the statements whose verdict no volatility can change (forbidden or
    destructive already, or only planned by EXPLAIN). For a name without schema, report the strictest volatility of
    the functions of that name the search path reaches.
    """
    needed: set[tuple[str | None, str]] = set()
    for statement in facts:
        judgement = _classify(statement, _NO_VOLATILITY)
        if judgement.category in ("forbidden", "destructive") or not _executes(statement):
            continue
        needed.update((fn.schema, fn.name) for fn in statement.functions if not _known_builtin(fn))
    return frozenset(needed)


def _executes(facts: StatementFacts) -> bool:
    return _judge(facts.node, facts).executes


def decide(
    facts: Sequence[StatementFacts],
    mode: AccessMode,
    volatility: Mapping[tuple[str | None, str], str] = _NO_VOLATILITY,
) -> Verdict:
    """The verdict on a script in an access mode.

    Anything forbidden is rejected. In read-only mode a script runs only when every statement is a read; in full mode
    it runs, after confirmation when a statement is destructive. Any mode other than ``"full"`` counts as read-only.
    Raises ``InvalidInput`` when there is no statement.
    """
    if not facts:
        raise InvalidInput("no SQL statement found")
    statements = tuple(classify(statement, volatility) for statement in facts)
    worst = max(statements, key=lambda statement: _RANK[statement.category])
    where = f"statement {worst.index + 1}: " if len(statements) > 1 else ""
    if worst.category == "forbidden":
        return Verdict("reject", worst.category, f"{where}{worst.reason}.", statements)
    if mode != "full" and worst.category != "read":
        return Verdict(
            "reject",
            worst.category,
            f"the server is in read-only mode: only reads run (statement {worst.index + 1} is "
            f"{_AS_COMPLEMENT[worst.category]}: {worst.reason}). The operator can start it with --access-mode full.",
            statements,
        )
    if worst.category == "destructive":
        return Verdict(
            "confirm", worst.category, f"{where}{worst.reason} — it runs only after confirmation.", statements
        )
    if worst.category == "read" and len(statements) > 1:
        return Verdict("allow", worst.category, "every statement only reads.", statements)
    return Verdict("allow", worst.category, f"{where}{worst.reason}.", statements)
