"""Facts about SQL text, read from PostgreSQL's own parser (pglast): what each statement is, calls, reads and changes.

This module states facts and judges nothing; ``server.sql.policy`` turns the facts into a verdict. Nothing here is found
by matching strings: every fact comes from the syntax tree, walked with pglast's ``Visitor`` machinery, which descends
into every attribute of every node (FROM-clause functions, CTEs, subqueries, EXPLAIN targets, column defaults, CHECK
constraints, function arguments, ...), not only into lists of nodes.

Names are given as PostgreSQL resolves them: pglast decodes ``"Quoted"`` and ``U&"\\0064..."`` identifiers and the
parser lower-cases unquoted ones; nothing is folded further (``"DBLINK_EXEC"`` stays upper case, as it is a different
function from ``dblink_exec``).

``analyze`` is cached (the facts are immutable), so the policy and the executor may both call it on the same text.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, CmdType, OnConflictAction
from pglast.parser import ParseError, parse_sql
from pglast.visitors import Continue, Visitor

from ..errors import InvalidInput, SQLParseError

__all__ = [
    "FunctionCall",
    "Modification",
    "Relation",
    "StatementFacts",
    "analyze",
    "facts_of",
    "option_enabled",
    "qualified_name",
]

_CACHED_MAX_CHARS = 4096
"""Longer SQL is neither cached (its tree may weigh megabytes) nor parsed on the caller's stack (see ``_parse``)."""

_STACK_BYTES_PER_CHAR = 512
"""pglast builds its tree recursively in C: a left-deep chain (``1-1-1-…``, ``… UNION …``) costs about 200 bytes of C
stack per character of SQL and overflows an 8 MiB stack near 80 kB of text, killing the process. Long SQL is parsed
on a thread whose stack is sized from the text, with this margin."""

_MIN_STACK_BYTES = 32 * 1024 * 1024
_MAX_STACK_BYTES = 1024 * 1024 * 1024

_T = TypeVar("_T")

_ERROR_POSITION = re.compile(r",? at (?:index|position) (\d+)$")

_MODIFYING: dict[type, Literal["insert", "update", "delete", "merge"]] = {
    ast.InsertStmt: "insert",
    ast.UpdateStmt: "update",
    ast.DeleteStmt: "delete",
    ast.MergeStmt: "merge",
}


@dataclass(frozen=True, slots=True)
class Relation:
    """A named object (mostly a table); ``schema`` is None when the SQL leaves it to the search path."""

    schema: str | None
    name: str

    def __str__(self) -> str:
        return self.name if self.schema is None else f"{self.schema}.{self.name}"


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A function called somewhere in a statement.

    ``first_arg`` is the value of the first argument when it is a string constant (possibly cast, as in
    ``'x'::text``) given by position, else None; the policy needs it for ``set_config``.
    """

    schema: str | None
    name: str
    first_arg: str | None

    def __str__(self) -> str:
        return f"{self.name}()" if self.schema is None else f"{self.schema}.{self.name}()"


@dataclass(frozen=True, slots=True)
class Modification:
    """An INSERT, UPDATE, DELETE or MERGE: the statement itself or one nested in it (a WITH query, a rule, a body)."""

    kind: Literal["insert", "update", "delete", "merge"]
    target: Relation | None
    has_where: bool | None
    """For UPDATE and DELETE: whether a WHERE clause restricts the rows; None for INSERT and MERGE."""
    nested: bool
    """Inside another statement (a WITH query, a rule, a function body), rather than the statement that runs (the
    statement itself, or the target of EXPLAIN)."""
    constant_condition: bool = False
    """Its WHERE (UPDATE, DELETE) or ON (MERGE) does not depend on the row: it names no column (``WHERE true``,
    ``WHERE $1``, ``ON 1 = 1``) or is true whatever the columns hold (``WHERE true OR id = 1``). For MERGE, only when
    an action updates or deletes matched rows."""
    actions: tuple[Literal["insert", "update", "delete"], ...] = ()
    """What it does to rows of ``target`` besides its kind: ``("update",)`` for INSERT … ON CONFLICT DO UPDATE; the
    actions of a MERGE's WHEN clauses."""

    @property
    def every_row(self) -> bool:
        """It may change every row of its target: an UPDATE or DELETE without WHERE, or with a constant condition."""
        return self.has_where is False or self.constant_condition

    @property
    def accesses(self) -> frozenset[Literal["insert", "update", "delete"]]:
        """The kinds of row changes it makes to ``target`` (what fires that table's triggers, rules and checks)."""
        if self.kind == "merge":
            return frozenset(self.actions or ("insert", "update", "delete"))
        return frozenset((self.kind, *self.actions))


@dataclass(frozen=True, slots=True)
class StatementFacts:
    """What one statement of a script is and what it touches."""

    index: int
    """0-based position in the script."""
    sql: str
    """The exact source text of this statement, without surrounding blanks and without the ``;`` ending it."""
    tag: str
    """The pglast node class name, e.g. ``"SelectStmt"``, ``"DropStmt"``."""
    node: Any = field(compare=False, repr=False)
    """The pglast syntax tree of the statement; shared by cached results, so never modify it."""
    functions: tuple[FunctionCall, ...]
    """Every function called anywhere in the tree, each once, in source order."""
    relations: tuple[Relation, ...]
    """Every relation named anywhere in the tree, each once, except names of the statement's WITH queries."""
    targets: tuple[Relation, ...]
    """Best effort: the objects the statement creates, changes or removes (tables, views, schemas, roles, ...)."""
    has_where: bool | None
    """For a top-level UPDATE or DELETE: whether it has a WHERE clause; None for other statements."""
    modifications: tuple[Modification, ...]
    """Every INSERT/UPDATE/DELETE/MERGE in the tree, the statement itself included."""
    locks_rows: bool
    """A SELECT somewhere in the tree has a FOR UPDATE / FOR SHARE clause."""
    select_into: bool
    """A SELECT somewhere in the tree has an INTO clause (it creates a table)."""
    nested_tags: tuple[str, ...]
    """Tags of the statements nested inside this one (EXPLAIN targets, WITH queries, rule actions, ...), each once."""
    operators: tuple[Relation, ...] = ()
    """Every operator written anywhere in the tree (``a + b``, ``x IN (…)`` as ``=``, ``LIKE`` as ``~~``,
    ``OPERATOR(s.+)``, ``ORDER BY … USING <``), each once; BETWEEN counts as its comparisons."""
    types: tuple[Relation, ...] = ()
    """Every type named anywhere in the tree (casts, column definitions, ...) except PostgreSQL's own
    ``pg_catalog`` names, each once."""
    fields: tuple[str, ...] = ()
    """Every name in a column reference or field selection (``t.fn``, ``(t).fn``), each once: where PostgreSQL may
    read attribute notation as a call of a one-argument function."""


def analyze(sql: str) -> tuple[StatementFacts, ...]:
    """Parse a script and return the facts of each statement, in order.

    Raises ``InvalidInput`` for text without any statement (empty, blanks, comments, lone semicolons), with NUL
    characters or with lone surrogates, and ``SQLParseError`` (with a 1-based character position when PostgreSQL
    gives one) when it does not parse. Results for short texts are cached: the same text returns the same object.
    """
    if len(sql) <= _CACHED_MAX_CHARS:
        return _analyze_cached(sql)
    return _analyze(sql)


@functools.lru_cache(maxsize=1024)
def _analyze_cached(sql: str) -> tuple[StatementFacts, ...]:
    return _analyze(sql)


def _analyze(sql: str) -> tuple[StatementFacts, ...]:
    if "\x00" in sql:
        raise InvalidInput("the SQL contains a NUL character, which PostgreSQL does not accept")
    raw_statements = _parse(sql)
    if not raw_statements:
        raise InvalidInput("no SQL statement found (the text is empty or holds only comments)")
    return tuple(_statement_facts(index, sql, raw) for index, raw in enumerate(raw_statements))


def _parse(sql: str) -> tuple[Any, ...]:
    try:
        if len(sql) <= _CACHED_MAX_CHARS:
            return parse_sql(sql)
        return _parse_on_large_stack(sql)
    except ParseError as exc:
        message, position = _parse_error_details(exc)
        raise SQLParseError(message, position) from exc
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"the SQL is not valid Unicode text (a lone surrogate at character {exc.start + 1})"
        ) from exc


_stack_size_lock = threading.Lock()


def _parse_on_large_stack(sql: str) -> tuple[Any, ...]:
    """Parse on a fresh thread with a stack large enough for any tree this text can produce (see the constant)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(parse_sql(sql))
        except BaseException as exc:  # handed back to the calling thread below
            outcome.append(exc)

    size = min(max(len(sql) * _STACK_BYTES_PER_CHAR, _MIN_STACK_BYTES), _MAX_STACK_BYTES)
    with _stack_size_lock:
        previous = threading.stack_size(size)
        try:
            thread = threading.Thread(target=run, name="sql-parse", daemon=True)
            thread.start()
        except RuntimeError as exc:
            raise InvalidInput("the SQL is too large to analyze on this machine; send shorter statements") from exc
        finally:
            threading.stack_size(previous)
    thread.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return tuple(result)


def _parse_error_details(exc: ParseError) -> tuple[str, int | None]:
    """Message and 1-based character position of a pglast parse error, whichever way this pglast version gives them.

    pglast 6 and later pass ``(message, 0-based character index or None)`` as the exception arguments and append
    ", at index N" to ``str()``; some versions set a ``location`` attribute instead.
    """
    index = getattr(exc, "location", None)
    if not isinstance(index, int) and len(exc.args) > 1 and isinstance(exc.args[1], int):
        index = exc.args[1]
    message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    found = _ERROR_POSITION.search(message)
    if found is not None:
        message = message[: found.start()]
        if not isinstance(index, int):
            index = int(found.group(1))
    return message, (index + 1 if isinstance(index, int) and index >= 0 else None)


def _statement_facts(index: int, sql: str, raw: Any) -> StatementFacts:
    # pglast reports stmt_location and stmt_len in characters (it maps libpg_query's UTF-8 byte offsets back to
    # string indexes); a length of 0 means "up to the end of the text".
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(sql)
    return facts_of(raw.stmt, sql[start:end].strip(), index)


def facts_of(node: Any, sql: str, index: int = 0) -> StatementFacts:
    """The facts of one statement's syntax tree ``node`` whose source text is ``sql`` (for statements found inside
    others: function bodies, rule actions)."""
    collected = _Collector(node)
    modifications = tuple(collected.modifications)
    has_where = None
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
        has_where = node.whereClause is not None
    return StatementFacts(
        index=index,
        sql=sql,
        tag=type(node).__name__,
        node=node,
        functions=_in_source_order(collected.functions),
        relations=_in_source_order(
            (at, r) for at, r in collected.relations if r.schema is not None or r.name not in collected.cte_names
        ),
        targets=tuple(dict.fromkeys(_targets(node) + [m.target for m in modifications if m.target is not None])),
        has_where=has_where,
        modifications=modifications,
        locks_rows=collected.locks_rows,
        select_into=collected.select_into,
        nested_tags=tuple(dict.fromkeys(collected.nested_tags)),
        operators=tuple(dict.fromkeys(collected.operators)),
        types=tuple(dict.fromkeys(collected.types)),
        fields=tuple(dict.fromkeys(collected.fields)),
    )


def _in_source_order(found: Iterable[tuple[int, _T]]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(item for _, item in sorted(found, key=lambda pair: pair[0])))


class _Collector(Visitor):
    """One breadth-first pass over a statement's tree, collecting every fact at once.

    It drives ``Visitor.iterate`` itself instead of calling the visitor, which would look up its ``visit_*`` methods
    by introspection on every call (the dispatch table below is built once).
    """

    def __init__(self, root: Any) -> None:
        super().__init__()
        self.functions: list[tuple[int, FunctionCall]] = []
        self.relations: list[tuple[int, Relation]] = []
        self.cte_names: set[str] = set()
        self.modifications: list[Modification] = []
        self.nested_tags: list[str] = []
        self.operators: list[Relation] = []
        self.types: list[Relation] = []
        self.fields: list[str] = []
        self.locks_rows = False
        self.select_into = False
        self._root = root
        self._run(root)

    def _run(self, root: Any) -> None:
        steps = self.iterate(root)
        try:
            _, node = steps.send(None)
            while True:
                kind = type(node)
                handler = _HANDLERS.get(kind)
                if handler is not None:
                    handler(self, node)
                if kind.__name__.endswith("Stmt") and node is not self._root and kind is not ast.RawStmt:
                    self.nested_tags.append(kind.__name__)
                _, node = steps.send(Continue)
        except StopIteration:
            return

    def _func_call(self, node: Any) -> None:
        names = _names(node.funcname)
        if names:
            schema = names[-2] if len(names) > 1 else None
            call = FunctionCall(schema, names[-1], _string_constant(node.args))
            self.functions.append((node.location or 0, call))

    def _range_var(self, node: Any) -> None:
        if node.relname is not None:
            self.relations.append((node.location or 0, Relation(node.schemaname, node.relname)))

    def _cte(self, node: Any) -> None:
        if node.ctename is not None:
            self.cte_names.add(node.ctename)

    def _select(self, node: Any) -> None:
        if node.lockingClause:
            self.locks_rows = True
        if node.intoClause is not None:
            self.select_into = True

    def _modification(self, node: Any) -> None:
        has_where = node.whereClause is not None if isinstance(node, ast.UpdateStmt | ast.DeleteStmt) else None
        actions: tuple[Literal["insert", "update", "delete"], ...] = ()
        constant = False
        if isinstance(node, ast.UpdateStmt | ast.DeleteStmt) and node.whereClause is not None:
            constant = _constant_condition(node.whereClause)
        elif isinstance(node, ast.MergeStmt):
            actions = tuple(
                dict.fromkeys(
                    _MERGE_ACTIONS[clause.commandType]
                    for clause in node.mergeWhenClauses or ()
                    if clause.commandType in _MERGE_ACTIONS
                )
            )
            constant = bool({"update", "delete"} & set(actions)) and _constant_condition(node.joinCondition)
        elif isinstance(node, ast.InsertStmt):
            conflict = node.onConflictClause
            if conflict is not None and conflict.action == OnConflictAction.ONCONFLICT_UPDATE:
                actions = ("update",)
        self.modifications.append(
            Modification(
                kind=_MODIFYING[type(node)],
                target=_relation(node.relation),
                has_where=has_where,
                nested=node is not self._root
                and not (isinstance(self._root, ast.ExplainStmt) and node is self._root.query),
                constant_condition=constant,
                actions=actions,
            )
        )

    def _operator(self, node: Any) -> None:
        name = qualified_name(node.name)
        if name is None:
            return
        if name.name in _BETWEEN:
            self.operators.extend(Relation(name.schema, op) for op in _BETWEEN[name.name])
        else:
            self.operators.append(name)

    def _sublink(self, node: Any) -> None:
        name = qualified_name(node.operName) if node.operName else None
        if name is not None:
            self.operators.append(name)

    def _sort_by(self, node: Any) -> None:
        name = qualified_name(node.useOp) if node.useOp else None
        if name is not None:
            self.operators.append(name)

    def _type_name(self, node: Any) -> None:
        name = qualified_name(node.names)
        if name is not None and name.schema != "pg_catalog":
            self.types.append(name)

    def _column_ref(self, node: Any) -> None:
        self.fields.extend(str(part.sval) for part in node.fields or () if isinstance(part, ast.String))

    def _indirection(self, node: Any) -> None:
        self.fields.extend(str(part.sval) for part in node.indirection or () if isinstance(part, ast.String))


_HANDLERS: dict[type, Any] = {
    ast.FuncCall: _Collector._func_call,
    ast.RangeVar: _Collector._range_var,
    ast.CommonTableExpr: _Collector._cte,
    ast.SelectStmt: _Collector._select,
    ast.A_Expr: _Collector._operator,
    ast.SubLink: _Collector._sublink,
    ast.SortBy: _Collector._sort_by,
    ast.TypeName: _Collector._type_name,
    ast.ColumnRef: _Collector._column_ref,
    ast.A_Indirection: _Collector._indirection,
    **dict.fromkeys(_MODIFYING, _Collector._modification),
}

_BETWEEN = {
    "BETWEEN": (">=", "<="),
    "NOT BETWEEN": ("<", ">"),
    "BETWEEN SYMMETRIC": (">=", "<="),
    "NOT BETWEEN SYMMETRIC": ("<", ">"),
}
_MERGE_ACTIONS: dict[Any, Literal["insert", "update", "delete"]] = {
    CmdType.CMD_INSERT: "insert",
    CmdType.CMD_UPDATE: "update",
    CmdType.CMD_DELETE: "delete",
}
_MAX_CONDITION_DEPTH = 32


def _constant_condition(condition: Any) -> bool:
    """Whether a WHERE or ON condition keeps every row or none whatever the row holds.

    True when it names no column at all (only constants, parameters, functions of those) and is not plainly false,
    or when a short evaluation over constants proves it true (``true OR a = 1``, ``NOT false``, ``1 = 1``). Anything
    subtler (``id = id``, ``id IS NOT NULL``) is left to PostgreSQL's row counts.
    """
    if condition is None:
        return True
    if _truth(condition, 0) is True:
        return True
    return not _names_a_column(condition) and _truth(condition, 0) is not False


def _names_a_column(root: Any) -> bool:
    steps = Visitor().iterate(root)
    try:
        _, node = steps.send(None)
        while True:
            if isinstance(node, ast.ColumnRef):
                return True
            _, node = steps.send(Continue)
    except StopIteration:
        return False


def _truth(node: Any, depth: int) -> bool | None:
    """The constant truth value of a boolean expression when evident from its constants, else None."""
    if depth > _MAX_CONDITION_DEPTH:
        return None
    match node:
        case ast.A_Const(isnull=False, val=ast.Boolean(boolval=value)):
            return bool(value)
        case ast.TypeCast(arg=ast.A_Const(isnull=False, val=ast.String(sval=text)), typeName=type_name) if (
            qualified_name(type_name)
            in (Relation("pg_catalog", "bool"), Relation(None, "boolean"), Relation(None, "bool"))
        ):
            lowered = str(text).strip().lower()
            return True if lowered in _TRUE_WORDS else False if lowered in _FALSE_WORDS else None
        case ast.BoolExpr(boolop=BoolExprType.OR_EXPR, args=args):
            values = [_truth(arg, depth + 1) for arg in args or ()]
            return True if True in values else False if values and all(v is False for v in values) else None
        case ast.BoolExpr(boolop=BoolExprType.AND_EXPR, args=args):
            values = [_truth(arg, depth + 1) for arg in args or ()]
            return False if False in values else True if values and all(v is True for v in values) else None
        case ast.BoolExpr(boolop=BoolExprType.NOT_EXPR, args=(arg,)):
            value = _truth(arg, depth + 1)
            return None if value is None else not value
        case ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval=op),), lexpr=left, rexpr=right):
            return _compare(str(op), _constant(left), _constant(right))
    return None


_TRUE_WORDS = frozenset({"t", "true", "y", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"f", "false", "n", "no", "off", "0"})


def _constant(node: Any) -> int | float | str | None:
    match node:
        case ast.A_Const(isnull=False, val=ast.Integer(ival=int() as number)):
            return number
        case ast.A_Const(isnull=False, val=ast.Float(fval=str() as text)):
            return float(text)
        case ast.A_Const(isnull=False, val=ast.String(sval=str() as text)):
            return text
    return None


def _compare(op: str, left: int | float | str | None, right: int | float | str | None) -> bool | None:
    if left is None or right is None or isinstance(left, str) != isinstance(right, str):
        return None
    match op:
        case "=":
            return left == right
        case "<>" | "!=":
            return left != right
        case "<":
            return left < right  # type: ignore[operator]
        case "<=":
            return left <= right  # type: ignore[operator]
        case ">":
            return left > right  # type: ignore[operator]
        case ">=":
            return left >= right  # type: ignore[operator]
    return None


def option_enabled(options: Any, name: str) -> bool:
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


def _string_constant(args: Any) -> str | None:
    """The value of the first positional argument when it is a string literal, maybe with a cast."""
    if not args:
        return None
    arg = args[0]
    while isinstance(arg, ast.TypeCast):
        arg = arg.arg
    if isinstance(arg, ast.A_Const) and not arg.isnull and isinstance(arg.val, ast.String):
        return str(arg.val.sval)
    return None


def _relation(node: Any) -> Relation | None:
    if isinstance(node, ast.RangeVar) and node.relname is not None:
        return Relation(node.schemaname, node.relname)
    return None


def qualified_name(parts: Any) -> Relation | None:
    """A name given as String nodes (``schema.name`` or ``name``; a catalog part is ignored), a ``TypeName`` or an
    ``ObjectWithArgs``; None for anything else."""
    if isinstance(parts, ast.String):
        parts = (parts,)
    elif isinstance(parts, ast.ObjectWithArgs):
        parts = parts.objname
    elif isinstance(parts, ast.TypeName):
        parts = parts.names
    names = _names(parts)
    if not names:
        return None
    return Relation(names[-2] if len(names) > 1 else None, names[-1])


def _names(parts: Any) -> list[str]:
    """The strings of a dotted name given as String nodes; empty when it holds anything else."""
    if not isinstance(parts, tuple):
        return []
    names = [part.sval for part in parts if isinstance(part, ast.String) and isinstance(part.sval, str)]
    return names if len(names) == len(parts) else []


def _named(*names: Any) -> list[Relation]:
    return [Relation(None, name) for name in names if isinstance(name, str)]


def _roles(roles: Any) -> list[Relation]:
    return _named(*(role.rolename for role in roles or () if isinstance(role, ast.RoleSpec)))


def _targets(node: Any) -> list[Relation]:
    """Best effort: the objects a top-level statement creates, changes or removes."""
    found: list[Relation | None]
    match node:
        case ast.DropStmt():
            found = [qualified_name(obj) for obj in node.objects or ()]
        case ast.TruncateStmt() | ast.LockStmt():
            found = [_relation(rel) for rel in node.relations or ()]
        case ast.VacuumStmt():
            found = [_relation(rel.relation) for rel in node.rels or () if isinstance(rel, ast.VacuumRelation)]
        case ast.SelectStmt() if node.intoClause is not None:
            found = [_relation(node.intoClause.rel)]
        case ast.CreateTableAsStmt():
            found = [_relation(node.into.rel) if node.into is not None else None]
        case ast.ViewStmt():
            found = [_relation(node.view)]
        case ast.CreateSeqStmt() | ast.AlterSeqStmt():
            found = [_relation(node.sequence)]
        case ast.CreatePolicyStmt() | ast.AlterPolicyStmt():
            found = [_relation(node.table)]
        case ast.GrantStmt():
            found = [
                _relation(obj) if isinstance(obj, ast.RangeVar) else qualified_name(obj) for obj in node.objects or ()
            ]
        case ast.CreatedbStmt() | ast.DropdbStmt() | ast.AlterDatabaseStmt() | ast.AlterDatabaseSetStmt():
            return _named(node.dbname)
        case ast.DropRoleStmt() | ast.DropOwnedStmt() | ast.ReassignOwnedStmt():
            return _roles(node.roles)
        case ast.CreateRoleStmt():
            return _named(node.role)
        case ast.AlterRoleStmt() | ast.AlterRoleSetStmt():
            return _roles((node.role,))
        case ast.CreateSchemaStmt():
            return _named(node.schemaname)
        case ast.CreateExtensionStmt():
            return _named(node.extname)
        case ast.CreateFunctionStmt():
            found = [qualified_name(node.funcname)]
        case _:
            found = [_relation(getattr(node, "relation", None))]
    return [relation for relation in found if relation is not None]
