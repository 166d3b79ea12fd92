"""Candidate indexes for a set of queries, read from PostgreSQL's own parser (pglast), and whether one exists.

``column_uses`` finds, in every SELECT, UPDATE and DELETE of every query (subqueries and CTEs included), the columns
that an index could serve: equality and range filters (``=``, ``IN``, ``<``, ``BETWEEN``; a value, a parameter or a
column of an outer query on the other side), join conditions, ``ORDER BY`` and ``GROUP BY`` on one table's plain
columns. ``candidates`` resolves them against the catalog (which table an unqualified column belongs to, which
tables are tiny) and proposes B-tree indexes: one per filtered or joined column, equality columns together, then a
range or ordering column after them. ``covering_index`` says which existing index already serves a candidate.

Pure functions; expressions on columns (``lower(email) = …``), ``OR``, ``LIKE`` and ``IS NULL`` are left alone.
Statements are built as pglast syntax trees and printed by pglast, so every identifier is quoted properly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, SetOperation, SortByDir, SortByNulls, SubLinkType
from pglast.stream import RawStream
from pglast.visitors import Continue, Visitor

from ..sql.analysis import Relation

__all__ = [
    "MIN_TABLE_ROWS",
    "Candidate",
    "ColumnUse",
    "ExistingIndex",
    "TableInfo",
    "candidates",
    "column_uses",
    "covering_index",
    "index_statement",
]

Role = Literal["equality", "range", "join", "order", "group"]

MIN_TABLE_ROWS = 1_000
"""Tables the planner believes smaller than this are read whole anyway; no index is proposed for them."""
_MAX_COLUMNS = 4
_RANGE_OPERATORS = frozenset({"<", ">", "<=", ">="})


@dataclass(frozen=True, slots=True)
class ColumnUse:
    """One column an index could serve, as the query names it.

    ``owner`` is the table the column's qualifier names; ``None`` for an unqualified column, which belongs to
    whichever of ``scope`` (the tables of its FROM clause) has it.
    """

    query: int
    scope: int
    owner: Relation | None
    tables: tuple[Relation, ...]
    column: str
    role: Role
    position: int = 0
    """Order within ORDER BY / GROUP BY."""


@dataclass(frozen=True, slots=True)
class TableInfo:
    """What the catalog says about a table a query names."""

    schema: str
    name: str
    columns: frozenset[str]
    rows: int
    """The planner's estimate; negative when never analysed."""


@dataclass(frozen=True, slots=True)
class ExistingIndex:
    name: str
    schema: str
    table: str
    columns: tuple[str | None, ...]
    """Key columns in order; None for an expression."""
    method: str = "btree"
    partial: bool = False
    valid: bool = True
    definition: str = ""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A proposed B-tree index: the first ``equality`` columns in any order, the rest in this order."""

    schema: str
    table: str
    columns: tuple[str, ...]
    equality: int
    reasons: tuple[str, ...] = ()
    queries: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table} ({', '.join(self.columns)})"

    def statement(self, *, concurrently: bool = True) -> str:
        return index_statement(self.schema, self.table, self.columns, concurrently=concurrently)


def index_statement(schema: str, table: str, columns: Sequence[str], *, concurrently: bool) -> str:
    """``CREATE INDEX [CONCURRENTLY] ON schema.table (columns)``, every name quoted as PostgreSQL needs."""
    stmt = ast.IndexStmt(
        relation=ast.RangeVar(schemaname=schema, relname=table, inh=True, relpersistence="p"),
        accessMethod="btree",
        indexParams=[
            ast.IndexElem(name=c, ordering=SortByDir.SORTBY_DEFAULT, nulls_ordering=SortByNulls.SORTBY_NULLS_DEFAULT)
            for c in columns
        ],
        concurrent=concurrently,
    )
    return str(RawStream()(stmt))


# --- reading the queries ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Scope:
    """The tables one SELECT/UPDATE/DELETE reads, by the names its clauses may use for them."""

    names: dict[str, Relation | None] = field(default_factory=dict)
    """alias (or table name) → table; None for a subquery or function in FROM."""
    tables: list[Relation] = field(default_factory=list)
    predicates: list[Any] = field(default_factory=list)
    opaque: bool = False
    """FROM holds something other than tables (a subquery, a function): unqualified columns may come from it."""


class _Statements(Visitor):
    """Every SELECT, UPDATE and DELETE in a tree, and the names of its WITH queries."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[Any] = []
        self.ctes: set[str] = set()

    def collect(self, root: Any) -> None:
        steps = self.iterate(root)
        try:
            _, node = steps.send(None)
            while True:
                if isinstance(node, ast.SelectStmt | ast.UpdateStmt | ast.DeleteStmt):
                    self.found.append(node)
                elif isinstance(node, ast.CommonTableExpr) and node.ctename:
                    self.ctes.add(node.ctename)
                _, node = steps.send(Continue)
        except StopIteration:
            return


def _add_from(scope: _Scope, item: Any, ctes: set[str]) -> None:
    if isinstance(item, ast.RangeVar):
        schema, name = item.schemaname, str(item.relname)
        alias = str(item.alias.aliasname) if item.alias is not None else name
        if schema is None and name in ctes:
            scope.names[alias] = None
            scope.opaque = True
            return
        table = Relation(schema, name)
        scope.names[alias] = table
        if schema is not None and item.alias is None:
            scope.names[f"{schema}.{name}"] = table
        scope.tables.append(table)
    elif isinstance(item, ast.JoinExpr):
        _add_from(scope, item.larg, ctes)
        _add_from(scope, item.rarg, ctes)
        if item.quals is not None:
            scope.predicates.append(item.quals)
    else:  # RangeSubselect, RangeFunction, …
        other = getattr(item, "alias", None)
        if other is not None and other.aliasname:
            scope.names[str(other.aliasname)] = None
        scope.opaque = True


def _scope_of(node: Any, ctes: set[str]) -> _Scope:
    scope = _Scope()
    if isinstance(node, ast.SelectStmt):
        items: Iterable[Any] = node.fromClause or ()
    else:
        items = (node.relation, *((node.fromClause if isinstance(node, ast.UpdateStmt) else node.usingClause) or ()))
    for item in items:
        _add_from(scope, item, ctes)
    if node.whereClause is not None:
        scope.predicates.append(node.whereClause)
    return scope


def _conjuncts(expr: Any) -> Iterable[Any]:
    if isinstance(expr, ast.BoolExpr) and expr.boolop == BoolExprType.AND_EXPR:
        for arg in expr.args or ():
            yield from _conjuncts(arg)
    else:
        yield expr


_Ref = tuple[Literal["here", "outer"], Relation | None, str]
"""Where a column comes from: this scope (its table, None if unqualified) or an outer query; and its name."""


def _column(expr: Any, scope: _Scope) -> _Ref | None:
    while isinstance(expr, ast.TypeCast):
        expr = expr.arg
    if not isinstance(expr, ast.ColumnRef):
        return None
    parts = [str(f.sval) for f in expr.fields or () if isinstance(f, ast.String)]
    if len(parts) != len(expr.fields or ()) or not parts:
        return None  # t.* and the like
    if len(parts) == 1:
        return ("here", None, parts[0])
    qualifier = ".".join(parts[:-1])
    if qualifier in scope.names:
        table = scope.names[qualifier]
        return None if table is None else ("here", table, parts[-1])
    return ("outer", None, parts[-1])


class _ColumnFinder(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def visit_ColumnRef(self, ancestors: Any, node: Any) -> None:
        self.found = True


def _is_value(expr: Any, scope: _Scope) -> bool:
    """A constant, a parameter, or an expression over those and outer-query columns only."""
    ref = _column(expr, scope)
    if ref is not None:
        return ref[0] == "outer"
    if isinstance(expr, ast.SubLink):
        return False
    finder = _ColumnFinder()
    finder(expr)
    return not finder.found


def _operator(expr: Any) -> str | None:
    names = [n.sval for n in expr.name or () if isinstance(n, ast.String)]
    return names[-1] if names else None


def _predicate_uses(expr: Any, scope: _Scope) -> Iterable[tuple[Relation | None, str, Role]]:
    if isinstance(expr, ast.A_Expr):
        op = _operator(expr)
        if expr.kind == A_Expr_Kind.AEXPR_OP and (op == "=" or op in _RANGE_OPERATORS):
            role: Role = "equality" if op == "=" else "range"
            left, right = _column(expr.lexpr, scope), _column(expr.rexpr, scope)
            if left and left[0] == "here" and right and right[0] == "here":
                if op == "=":
                    yield (left[1], left[2], "join")
                    yield (right[1], right[2], "join")
                return
            if left and left[0] == "here" and _is_value(expr.rexpr, scope):
                yield (left[1], left[2], role)
            elif right and right[0] == "here" and _is_value(expr.lexpr, scope):
                yield (right[1], right[2], role)
        elif expr.kind == A_Expr_Kind.AEXPR_IN and op == "=":
            left = _column(expr.lexpr, scope)
            if left and left[0] == "here" and all(_is_value(v, scope) for v in expr.rexpr or ()):
                yield (left[1], left[2], "equality")
        elif expr.kind in (A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_BETWEEN_SYM):
            left = _column(expr.lexpr, scope)
            if left and left[0] == "here" and all(_is_value(v, scope) for v in expr.rexpr or ()):
                yield (left[1], left[2], "range")
    elif isinstance(expr, ast.SubLink) and expr.subLinkType == SubLinkType.ANY_SUBLINK:
        left = _column(expr.testexpr, scope)
        if left and left[0] == "here":
            yield (left[1], left[2], "join")


def _listed(node: Any, items: Sequence[Any], scope: _Scope) -> list[tuple[Relation | None, str]] | None:
    """The plain columns of an ORDER BY or GROUP BY list (positions resolved), or None if any item is not one."""
    targets = node.targetList or ()
    aliases = {t.name for t in targets if isinstance(t, ast.ResTarget) and t.name}
    out = []
    for item in items:
        expr = item.node if isinstance(item, ast.SortBy) else item
        position = expr.val.ival or 0 if isinstance(expr, ast.A_Const) and isinstance(expr.val, ast.Integer) else 0
        if 0 < position <= len(targets):
            expr = targets[position - 1].val
        ref = _column(expr, scope)
        if ref is None or ref[0] != "here" or (ref[1] is None and ref[2] in aliases):
            return None
        out.append((ref[1], ref[2]))
    return out


def column_uses(queries: Sequence[Any]) -> list[ColumnUse]:
    """The column uses of every statement in ``queries`` (pglast statement nodes), in the order met."""
    uses: list[ColumnUse] = []
    scope_id = 0
    for number, root in enumerate(queries):
        statements = _Statements()
        statements.collect(root)
        for node in statements.found:
            if isinstance(node, ast.SelectStmt) and node.op != SetOperation.SETOP_NONE:
                continue  # a UNION's arms are statements of their own
            scope = _scope_of(node, statements.ctes)
            if not scope.tables:
                continue
            scope_id += 1
            found: list[tuple[Relation | None, str, Role, int]] = [
                (owner, column, role, 0)
                for predicate in scope.predicates
                for conjunct in _conjuncts(predicate)
                for owner, column, role in _predicate_uses(conjunct, scope)
            ]
            if isinstance(node, ast.SelectStmt):
                clauses: tuple[tuple[Any, Role], ...] = ((node.sortClause, "order"), (node.groupClause, "group"))
                for clause, listed_role in clauses:
                    listed = _listed(node, clause, scope) if clause else None
                    found += [(owner, column, listed_role, at) for at, (owner, column) in enumerate(listed or ())]
            tables = () if scope.opaque else tuple(scope.tables)
            # An unqualified column in a scope whose FROM holds more than tables cannot be placed: left out.
            uses += [
                ColumnUse(number, scope_id, owner, tables, column, role, at)
                for owner, column, role, at in found
                if owner is not None or tables
            ]
    return uses


# --- proposing -------------------------------------------------------------------------------------------------


def _resolve(use: ColumnUse, tables: Mapping[tuple[str | None, str], TableInfo]) -> TableInfo | None:
    if use.owner is not None:
        info = tables.get((use.owner.schema, use.owner.name))
        return info if info is not None and use.column in info.columns else None
    owners = [
        info
        for table in use.tables
        if (info := tables.get((table.schema, table.name))) is not None and use.column in info.columns
    ]
    return owners[0] if len(owners) == 1 else None


@dataclass(slots=True)
class _TableUse:
    info: TableInfo
    query: int
    roles: dict[str, list[str]] = field(default_factory=dict)

    def add(self, role: str, column: str) -> None:
        columns = self.roles.setdefault(role, [])
        if column not in columns:
            columns.append(column)


def _proposals(use: _TableUse) -> Iterable[tuple[tuple[str, ...], int, str]]:
    equal = use.roles.get("equality", [])[:_MAX_COLUMNS]
    ranged = [c for c in use.roles.get("range", []) if c not in equal]
    for column in equal:
        yield (column,), 1, f"filter on {column}"
    if len(equal) > 1:
        yield tuple(equal), len(equal), f"filters on {', '.join(equal)} together"
    lead = equal[: _MAX_COLUMNS - 1]
    for column in ranged:
        if lead:
            yield (*lead, column), len(lead), f"filters on {', '.join(lead)} with a range on {column}"
        else:
            yield (column,), 0, f"range filter on {column}"
    for column in use.roles.get("join", []):
        yield (column,), 1, f"join on {column}"
    order = [c for c in use.roles.get("order", []) if c not in lead][: _MAX_COLUMNS - len(lead)]
    if order:
        reason = f"ORDER BY {', '.join(order)}" + (f" after filters on {', '.join(lead)}" if lead else "")
        yield (*lead, *order), len(lead), reason
    group = use.roles.get("group", [])[:_MAX_COLUMNS]
    if group:
        yield tuple(group), len(group), f"GROUP BY {', '.join(group)}"


def candidates(
    uses: Sequence[ColumnUse], tables: Mapping[tuple[str | None, str], TableInfo]
) -> tuple[list[Candidate], list[TableInfo]]:
    """Candidate indexes for ``uses``, one per index (with every reason and query that asked for it), and the
    tables left out for being small. ``tables`` maps a table as the queries name it — ``(schema or None, name)`` —
    to what the catalog says about it; a table missing from it (a view, a CTE, a typo) gets no candidate."""
    by_scope: dict[tuple[int, str, str], _TableUse] = {}
    small: dict[tuple[str, str], TableInfo] = {}
    for use in uses:
        info = _resolve(use, tables)
        if info is None:
            continue
        if 0 <= info.rows < MIN_TABLE_ROWS:
            small[(info.schema, info.name)] = info
            continue
        role = use.role
        by_scope.setdefault((use.scope, info.schema, info.name), _TableUse(info, use.query)).add(role, use.column)
    merged: dict[tuple[str, str, tuple[str, ...]], Candidate] = {}
    for table_use in by_scope.values():
        info = table_use.info
        for columns, equality, reason in _proposals(table_use):
            key = (info.schema, info.name, columns)
            known = merged.get(key)
            if known is None:
                merged[key] = Candidate(info.schema, info.name, columns, equality, (reason,), (table_use.query,))
            else:  # the same index for another reason: it must serve the strictest column order asked for
                merged[key] = Candidate(
                    info.schema,
                    info.name,
                    columns,
                    min(known.equality, equality),
                    tuple(dict.fromkeys((*known.reasons, reason))),
                    tuple(sorted({*known.queries, table_use.query})),
                )
    return list(merged.values()), list(small.values())


def covering_index(candidate: Candidate, indexes: Iterable[ExistingIndex]) -> ExistingIndex | None:
    """A valid, complete B-tree index on the candidate's table that serves everything the candidate would."""
    size = len(candidate.columns)
    lead = set(candidate.columns[: candidate.equality])
    for index in indexes:
        if (index.schema, index.table) != (candidate.schema, candidate.table):
            continue
        if not index.valid or index.partial or index.method != "btree" or len(index.columns) < size:
            continue
        columns = index.columns
        if (
            set(columns[: candidate.equality]) == lead
            and columns[candidate.equality : size] == candidate.columns[candidate.equality :]
        ):
            return index
    return None
