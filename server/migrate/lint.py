"""Lint of a migration script: the lock each statement takes, and the rules that keep a running application up.

Our rules read pglast's syntax trees (the facts of ``sql_analysis``) together with table sizes taken from the target;
the lock levels follow PostgreSQL's documentation ("Explicit Locking", and the notes of ``ALTER TABLE``,
``CREATE INDEX``): which forms take ``ACCESS EXCLUSIVE`` (blocking reads and writes), which rewrite the table (time
grows with its size) and which scan it to validate. ``squawk`` (``squawk-cli``) adds its own rules; the ones the
server makes moot (it sets ``lock_timeout`` and ``statement_timeout`` itself and runs the script in a transaction) are
left out.

Severity: ``error`` would fail or break the application, ``warning`` blocks or rewrites a table that holds data,
``info`` is worth knowing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pglast.enums import AlterTableType, ConstrType, ObjectType

from ..sql.analysis import Relation, StatementFacts
from ..sql.quoting import qualified

__all__ = ["Finding", "LockInfo", "lint", "lock_of", "squawk_findings"]

logger = logging.getLogger(__name__)

Severity = Literal["error", "warning", "info"]

ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"
_SQUAWK_MOOT = frozenset(
    {
        "require-lock-timeout",  # the server sets lock_timeout for every migration
        "require-statement-timeout",  # and statement_timeout
        "prefer-robust-stmts",  # the script runs in one transaction: it applies whole or not at all
        "transaction-nesting",  # the server opens the transaction
        "require-concurrent-index-creation",  # ours decides by the table's size
        "require-concurrent-index-deletion",
        "adding-not-nullable-field",  # ours knows the PostgreSQL version and the table
        "adding-field-with-default",
        "renaming-column",  # ours: breaking-rename-or-drop
        "renaming-table",
        "ban-drop-column",
        "ban-drop-table",
    }
)


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    statement: int | None
    """1-based statement number, ``None`` for the script as a whole."""
    message: str
    advice: str | None = None
    source: Literal["neon-mcp", "squawk"] = "neon-mcp"


@dataclass(frozen=True, slots=True)
class LockInfo:
    """The strongest table lock a statement takes, and whether it rewrites or scans the table while holding it."""

    level: str | None
    """``None`` when it locks no existing table in a way that matters (e.g. CREATE FUNCTION)."""
    rewrites: bool = False
    scans: bool = False

    @property
    def blocks_reads(self) -> bool:
        return self.level == ACCESS_EXCLUSIVE


_LEVELS = [
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    ACCESS_EXCLUSIVE,
]
_AT = AlterTableType
_SHARE_UPDATE_EXCLUSIVE_CMDS = {
    _AT.AT_SetStatistics,
    _AT.AT_ValidateConstraint,
    _AT.AT_SetRelOptions,
    _AT.AT_ResetRelOptions,
    _AT.AT_ClusterOn,
    _AT.AT_DropCluster,
    _AT.AT_AttachPartition,
}
_SHARE_ROW_EXCLUSIVE_CMDS = {
    _AT.AT_EnableTrig,
    _AT.AT_EnableAlwaysTrig,
    _AT.AT_EnableReplicaTrig,
    _AT.AT_DisableTrig,
    _AT.AT_EnableTrigAll,
    _AT.AT_DisableTrigAll,
    _AT.AT_EnableTrigUser,
    _AT.AT_DisableTrigUser,
}
_REWRITING_CMDS = {
    _AT.AT_AlterColumnType,
    _AT.AT_SetTableSpace,
    _AT.AT_SetAccessMethod,
    _AT.AT_SetLogged,
    _AT.AT_SetUnLogged,
}
_VOLATILE_DEFAULTS = frozenset(
    {"random", "clock_timestamp", "gen_random_uuid", "uuid_generate_v4", "nextval", "timeofday", "txid_current"}
)


def _stronger(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if _LEVELS.index(a) >= _LEVELS.index(b) else b


def _name(node: Any) -> str:
    return type(node).__name__


def _constraints(column_def: Any) -> list[Any]:
    return list(getattr(column_def, "constraints", None) or [])


def _volatile_default(column_def: Any) -> bool:
    for constraint in _constraints(column_def):
        if constraint.contype == ConstrType.CONSTR_DEFAULT and _calls_volatile(constraint.raw_expr):
            return True
    return False


def _calls_volatile(node: Any) -> bool:
    from pglast.visitors import Visitor

    found = False

    class _Finder(Visitor):
        def visit_FuncCall(self, ancestors: Any, call: Any) -> None:
            nonlocal found
            name = call.funcname[-1].sval.lower() if call.funcname else ""
            if name in _VOLATILE_DEFAULTS:
                found = True

    if node is not None:
        _Finder()(node)
    return found


def lock_of(fact: StatementFacts) -> LockInfo:
    """The lock ``fact`` takes on the table it changes (PostgreSQL 15's rules)."""
    node = fact.node
    kind = fact.tag
    if kind == "AlterTableStmt":
        level: str | None = None
        rewrites = scans = False
        for cmd in node.cmds or ():
            sub = cmd.subtype
            if sub in _SHARE_UPDATE_EXCLUSIVE_CMDS:
                cmd_level = "SHARE UPDATE EXCLUSIVE"
                scans = scans or sub == _AT.AT_ValidateConstraint
            elif sub in _SHARE_ROW_EXCLUSIVE_CMDS:
                cmd_level = "SHARE ROW EXCLUSIVE"
            elif sub == _AT.AT_AddConstraint and _name(cmd.def_) == "Constraint":
                constraint = cmd.def_
                validated = not constraint.skip_validation
                if constraint.contype == ConstrType.CONSTR_FOREIGN:
                    cmd_level = "SHARE ROW EXCLUSIVE"
                else:
                    cmd_level = ACCESS_EXCLUSIVE
                scans = scans or (
                    validated
                    and constraint.contype
                    in (
                        ConstrType.CONSTR_FOREIGN,
                        ConstrType.CONSTR_CHECK,
                        ConstrType.CONSTR_PRIMARY,
                        ConstrType.CONSTR_UNIQUE,
                    )
                )
            else:
                cmd_level = ACCESS_EXCLUSIVE
                if sub in _REWRITING_CMDS or (sub == _AT.AT_AddColumn and _volatile_default(cmd.def_)):
                    rewrites = True
                elif sub == _AT.AT_SetNotNull:
                    scans = True
            level = _stronger(level, cmd_level)
        return LockInfo(level, rewrites, scans)
    if kind == "IndexStmt":
        return LockInfo("SHARE UPDATE EXCLUSIVE" if node.concurrent else "SHARE", scans=True)
    if kind == "DropStmt":
        if node.removeType == ObjectType.OBJECT_INDEX and node.concurrent:
            return LockInfo("SHARE UPDATE EXCLUSIVE")
        if node.removeType in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_INDEX, ObjectType.OBJECT_MATVIEW):
            return LockInfo(ACCESS_EXCLUSIVE)
        return LockInfo(None)
    if kind in ("RenameStmt", "TruncateStmt"):
        return LockInfo(ACCESS_EXCLUSIVE)
    if kind == "ClusterStmt" or (kind == "VacuumStmt" and "full" in fact.sql.lower()):
        return LockInfo(ACCESS_EXCLUSIVE, rewrites=True)
    if kind == "RefreshMatViewStmt":
        return LockInfo("EXCLUSIVE" if node.concurrent else ACCESS_EXCLUSIVE, rewrites=True)
    if kind == "CreateTrigStmt":
        return LockInfo("SHARE ROW EXCLUSIVE")
    if kind in ("InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"):
        return LockInfo("ROW EXCLUSIVE", scans=kind != "InsertStmt")
    if kind == "CommentStmt":
        return LockInfo("SHARE UPDATE EXCLUSIVE")
    return LockInfo(None)


def _key(relation: Relation, default_schema: str | None) -> tuple[str, str]:
    return (relation.schema or default_schema or "public", relation.name)


def _size_text(size: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size = size // 1024 if unit == "bytes" else size / 1024  # type: ignore[assignment]
    return f"{size} bytes"


def lint(
    facts: Sequence[StatementFacts],
    *,
    sizes: Mapping[tuple[str, str], int],
    default_schema: str | None,
    index_threshold: int,
    server_lock_timeout: float,
) -> list[Finding]:
    """Our rules over a whole script. ``sizes``: bytes of each existing table the script names (schema, name)."""
    findings: list[Finding] = []
    created: set[tuple[str, str]] = set()
    checked_not_null: set[tuple[tuple[str, str], str]] = set()
    sets_lock_timeout = False
    for fact in facts:
        number = fact.index + 1
        node = fact.node
        if fact.tag == "VariableSetStmt" and (node.name or "").lower() == "lock_timeout":
            sets_lock_timeout = True
        if fact.tag == "CreateStmt":
            created.add(_key(Relation(node.relation.schemaname, node.relation.relname), default_schema))
        lock = lock_of(fact)
        table = _changed_table(fact)
        key = _key(table, default_schema) if table is not None else None
        existing = key is not None and key not in created and key in sizes
        size = sizes.get(key, 0) if key is not None and existing else 0
        where = f"{key[0]}.{key[1]}" if key is not None else "the table"
        if existing and lock.blocks_reads:
            what = "rewrites" if lock.rewrites else ("scans" if lock.scans else "changes")
            findings.append(
                Finding(
                    "lock-level",
                    "warning" if (lock.rewrites or lock.scans) else "info",
                    number,
                    f"takes an ACCESS EXCLUSIVE lock on {where} ({_size_text(size)}) and {what} it: reads and "
                    "writes wait until the transaction ends",
                    "keep the migration short; split rewrites out, or use the expand–contract pattern"
                    if lock.rewrites
                    else None,
                )
            )
            if not sets_lock_timeout:
                sets_lock_timeout = True  # said once, at the first statement it concerns
                findings.append(
                    Finding(
                        "missing-lock-timeout",
                        "info",
                        number,
                        "the script sets no lock_timeout before an ACCESS EXCLUSIVE lock: queued behind a long "
                        "query, it would block every other session while it waits",
                        f"the server applies with lock_timeout = {server_lock_timeout:g} s; add "
                        "SET LOCAL lock_timeout = '…' at the top to choose your own",
                    )
                )
        findings.extend(_statement_rules(fact, number, where, existing, size, index_threshold, checked_not_null, key))
        if default_schema:
            for relation in fact.relations:
                if relation.schema is None and not relation.name.startswith("pg_"):
                    findings.append(
                        Finding(
                            "unqualified-table",
                            "warning",
                            number,
                            f"table {relation.name} is not schema-qualified",
                            f"write {qualified(default_schema, relation.name)}",
                        )
                    )
    return findings


def _changed_table(fact: StatementFacts) -> Relation | None:
    node = fact.node
    relation = getattr(node, "relation", None)
    if relation is not None and _name(relation) == "RangeVar":
        return Relation(relation.schemaname, relation.relname)
    return fact.targets[0] if fact.targets else None


def _statement_rules(
    fact: StatementFacts,
    number: int,
    where: str,
    existing: bool,
    size: int,
    index_threshold: int,
    checked_not_null: set[tuple[tuple[str, str], str]],
    key: tuple[str, str] | None,
) -> list[Finding]:
    node = fact.node
    out: list[Finding] = []
    if fact.tag == "IndexStmt" and not node.concurrent and existing and size >= index_threshold:
        out.append(
            Finding(
                "index-without-concurrently",
                "warning",
                number,
                f"CREATE INDEX without CONCURRENTLY on {where} ({_size_text(size)}) blocks its writes while it builds",
                "use CREATE INDEX CONCURRENTLY (migrate runs it outside the transaction, in order)",
            )
        )
    if fact.tag == "RenameStmt" and existing:
        out.append(
            Finding(
                "breaking-rename-or-drop",
                "warning",
                number,
                f"renaming on {where} breaks running application code that uses the old name",
                "expand–contract: add the new name (a view or column), move the application, then drop the old",
            )
        )
    if fact.tag == "DropStmt" and node.removeType in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW):
        out.append(
            Finding(
                "breaking-rename-or-drop",
                "warning",
                number,
                "dropping a table or view breaks running application code that still uses it (and loses its data)",
                "make sure no deployed code reads it; the backup branch taken at apply keeps the data",
            )
        )
    if fact.tag != "AlterTableStmt":
        return out
    for cmd in node.cmds or ():
        sub = cmd.subtype
        if sub == _AT.AT_AddConstraint and _name(cmd.def_) == "Constraint":
            constraint = cmd.def_
            if constraint.contype == ConstrType.CONSTR_CHECK and constraint.skip_validation is False and key:
                # A validated CHECK (col IS NOT NULL) is the safe path to SET NOT NULL (PostgreSQL 12+).
                checked_not_null.update((key, name) for name in _not_null_columns(constraint))
            if (
                existing
                and not constraint.skip_validation
                and constraint.contype in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK)
            ):
                out.append(
                    Finding(
                        "validate-separately",
                        "warning",
                        number,
                        f"adding a {'foreign key' if constraint.contype == ConstrType.CONSTR_FOREIGN else 'check'} "
                        f"constraint on {where} ({_size_text(size)}) scans it while holding its lock",
                        "add it NOT VALID, then VALIDATE CONSTRAINT in a later statement (a weaker lock)",
                    )
                )
        elif sub == _AT.AT_ValidateConstraint and key:
            checked_not_null.add((key, "*validated*"))
        elif sub == _AT.AT_SetNotNull and existing and key:
            if (key, cmd.name) not in checked_not_null:
                out.append(
                    Finding(
                        "not-null-without-safe-path",
                        "warning",
                        number,
                        f"SET NOT NULL on {where}.{cmd.name} scans the whole table under ACCESS EXCLUSIVE",
                        f"first ADD CONSTRAINT … CHECK ({cmd.name} IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT "
                        "NULL (PostgreSQL then skips the scan) and drop the check",
                    )
                )
        elif sub == _AT.AT_AddColumn and existing:
            column = cmd.def_
            constraints = _constraints(column)
            not_null = any(c.contype == ConstrType.CONSTR_NOTNULL for c in constraints) or column.is_not_null
            has_default = any(c.contype == ConstrType.CONSTR_DEFAULT for c in constraints)
            if not_null and not has_default:
                out.append(
                    Finding(
                        "not-null-without-safe-path",
                        "error",
                        number,
                        f"adding NOT NULL column {column.colname} without a DEFAULT fails as soon as {where} has rows",
                        "give it a constant DEFAULT, or add it nullable, backfill, then add the constraint",
                    )
                )
            if _volatile_default(column):
                out.append(
                    Finding(
                        "volatile-default",
                        "warning",
                        number,
                        f"column {column.colname}'s default is volatile: every row of {where} "
                        f"({_size_text(size)}) is rewritten under ACCESS EXCLUSIVE",
                        "add the column without a default (or a constant one), then backfill in batches",
                    )
                )
        elif sub == _AT.AT_DropColumn and existing:
            out.append(
                Finding(
                    "breaking-rename-or-drop",
                    "warning",
                    number,
                    f"dropping column {cmd.name} of {where} breaks running application code that still uses it",
                    "stop using the column in deployed code first; the backup branch taken at apply keeps the data",
                )
            )
        elif sub == _AT.AT_AlterColumnType and existing:
            out.append(
                Finding(
                    "type-change-rewrite",
                    "warning",
                    number,
                    f"changing the type of {where}.{cmd.name} rewrites the table ({_size_text(size)}) and its "
                    "indexes under ACCESS EXCLUSIVE",
                    "add a new column, backfill in batches, switch the application, drop the old column",
                )
            )
    return out


def _not_null_columns(constraint: Any) -> list[str]:
    """Columns a CHECK constraint of the form ``col IS NOT NULL`` covers."""
    expr = constraint.raw_expr
    if _name(expr) == "NullTest" and expr.nulltesttype == 1 and _name(expr.arg) == "ColumnRef":
        return [expr.arg.fields[-1].sval]
    return []


# --- squawk -----------------------------------------------------------------------------------------------------------


def _squawk_binary() -> str | None:
    beside = Path(sys.executable).parent / "squawk"
    if beside.exists():
        return str(beside)
    return shutil.which("squawk")


async def squawk_findings(script: str, facts: Sequence[StatementFacts], *, pg_version: str) -> list[Finding]:
    """squawk's findings on ``script``, each attached to its statement; an info finding when squawk is missing."""
    binary = _squawk_binary()
    if binary is None:
        return [Finding("squawk", "info", None, "squawk is not installed: only neon-mcp's own rules ran", None)]
    fd, name = tempfile.mkstemp(suffix=".sql")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(script)
        process = await asyncio.create_subprocess_exec(
            binary,
            "--reporter",
            "json",
            "--pg-version",
            pg_version,
            name,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    except (OSError, TimeoutError) as exc:
        logger.warning("squawk failed: %s", exc)
        return [Finding("squawk", "info", None, f"squawk could not run ({exc}): only neon-mcp's rules ran", None)]
    finally:
        os.unlink(name)
    try:
        reports = json.loads(out.decode() or "[]")
    except ValueError:
        logger.warning("squawk answered something else than JSON: %s", err.decode()[:300])
        return []
    starts = _line_starts(script)
    offsets = _statement_offsets(script, facts)
    findings = []
    for report in reports:
        rule = str(report.get("rule_name") or "")
        if rule in _SQUAWK_MOOT:
            continue
        line, column = int(report.get("line") or 0), int(report.get("column") or 0)
        offset = starts[min(line, len(starts) - 1)] + column
        statement = next((i + 1 for i, (lo, hi) in enumerate(offsets) if lo <= offset < hi), None)
        level = str(report.get("level") or "Warning").lower()
        findings.append(
            Finding(
                rule,
                "error" if level == "error" else "warning" if level == "warning" else "info",
                statement,
                str(report.get("message") or ""),
                str(report["help"]) if report.get("help") else None,
                source="squawk",
            )
        )
    return findings


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
    return starts


def _statement_offsets(script: str, facts: Sequence[StatementFacts]) -> list[tuple[int, int]]:
    """Where each statement's text starts and ends in the script (the next one's start bounds it)."""
    starts = []
    position = 0
    for fact in facts:
        found = script.find(fact.sql, position)
        start = found if found >= 0 else position
        starts.append(start)
        position = start + len(fact.sql)
    ends = [*starts[1:], len(script) + 1]
    return list(zip(starts, ends, strict=True))
