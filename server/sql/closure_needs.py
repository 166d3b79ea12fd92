"""What a statement names, and how: the starting points of its executable closure (``server.sql.closure``).

``plans`` turns each statement of a call into the names to resolve (functions, relations with how they are touched,
operators, types, fields usable as attribute notation) and the phase they run in: ``run``, or ``plan`` for a plain
EXPLAIN (the planner executes only non-volatile functions it can fold, and what their bodies run); definitions run
nothing. Objects an earlier statement of the call defines or changes are not in the catalog yet: each later statement
that runs anything is taken to reach all of them, and they are judged by their text (a function's body is read from
the statement). Pure: nothing here reads the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pglast import ast

from .analysis import Relation, StatementFacts, option_enabled, qualified_name
from .bodies import statement_body
from .closure_catalog import Access
from .reached import Path, Runs, Unseen

__all__ = ["Need", "Phase", "RelationNeed", "definitions_before", "needs_of", "plans", "with_"]

Phase = Literal["run", "plan"]


@dataclass(frozen=True, slots=True)
class RelationNeed:
    name: Relation
    accesses: frozenset[Access]
    own: bool = False
    writes: bool = False
    """Emit ``Write`` items for the relations this name resolves to (a statement run by stored code writes it)."""


@dataclass(frozen=True, slots=True)
class Need:
    """Names one piece of code uses, to be resolved and followed with ``path`` and ``phase``."""

    path: Path
    phase: Phase
    functions: tuple[Relation, ...] = ()
    fields: tuple[str, ...] = ()
    operators: tuple[Relation, ...] = ()
    types: tuple[Relation, ...] = ()
    relations: tuple[RelationNeed, ...] = ()
    schemas: tuple[str, ...] = ()
    """Schemas searched besides the session's search path (a function's ``SET search_path``)."""
    event_triggers: bool = False

    @property
    def empty(self) -> bool:
        return not (self.functions or self.fields or self.operators or self.types or self.relations)


_COMPARISONS = tuple(Relation(None, op) for op in ("=", "<>", "<", ">", "<=", ">="))
"""Operators PostgreSQL applies without their being written: IN, CASE, ORDER BY, GROUP BY, DISTINCT, joins, ..."""

_RUNS: dict[str, Access | None] = {
    "SelectStmt": None,
    "InsertStmt": None,
    "UpdateStmt": None,
    "DeleteStmt": None,
    "MergeStmt": None,
    "CreateTableAsStmt": None,
    "CallStmt": None,
    "DoStmt": None,
    "AlterDomainStmt": None,
    "TruncateStmt": "truncate",
    "RefreshMatViewStmt": "refresh",
    "IndexStmt": "maintain",
    "ReindexStmt": "maintain",
    "ClusterStmt": "maintain",
    "VacuumStmt": "maintain",
    "AlterTableStmt": "maintain",
}
"""Statements that run what they name, and what they do to the relations they name besides reading them."""

_NOT_DDL = frozenset(
    {
        "SelectStmt",
        "InsertStmt",
        "UpdateStmt",
        "DeleteStmt",
        "MergeStmt",
        "ExplainStmt",
        "VariableSetStmt",
        "VariableShowStmt",
        "TransactionStmt",
        "LockStmt",
        "CallStmt",
        "DoStmt",
        "CopyStmt",
        "VacuumStmt",
        "ReindexStmt",
        "ClusterStmt",
        "CheckPointStmt",
        "DiscardStmt",
        "ListenStmt",
        "UnlistenStmt",
        "NotifyStmt",
        "LoadStmt",
        "PrepareStmt",
        "ExecuteStmt",
        "DeallocateStmt",
        "DeclareCursorStmt",
        "FetchStmt",
        "ClosePortalStmt",
    }
)
"""Statements that fire no event trigger (every other one may)."""

_DEFINES = frozenset(
    {
        "CreateFunctionStmt",
        "CreateTrigStmt",
        "RuleStmt",
        "CreatePolicyStmt",
        "AlterPolicyStmt",
        "ViewStmt",
        "DefineStmt",
        "CreateCastStmt",
        "CreateStmt",
        "AlterTableStmt",
        "CreateDomainStmt",
        "AlterDomainStmt",
        "CreateForeignTableStmt",
        "CreateForeignServerStmt",
        "AlterForeignServerStmt",
        "ImportForeignSchemaStmt",
        "CreateUserMappingStmt",
        "AlterUserMappingStmt",
        "CreateEventTrigStmt",
        "AlterEventTrigStmt",
        "RenameStmt",
        "AlterObjectSchemaStmt",
        "AlterFunctionStmt",
        "AlterOperatorStmt",
        "CreateOpClassStmt",
        "AlterOpFamilyStmt",
        "CreateRangeStmt",
        "CreateTransformStmt",
        "CreateExtensionStmt",
        "AlterExtensionStmt",
        "AlterExtensionContentsStmt",
        "IndexStmt",
        "CreateStatsStmt",
        "CreatePLangStmt",
        "CreateConversionStmt",
        "AlterTypeStmt",
    }
)
"""Statements that define or change code PostgreSQL may run later (for objects defined in the same call)."""


def _phase(facts: StatementFacts) -> Phase | None:
    """How the statement's names execute: ``run``, only planned (plain EXPLAIN), or not at all (definitions)."""
    if facts.tag == "ExplainStmt":
        node = facts.node
        inner = type(node.query).__name__
        if inner not in _RUNS:
            return None
        return "run" if option_enabled(node.options, "analyze") else "plan"
    if facts.tag == "SelectStmt" or facts.tag in _RUNS:
        return "run"
    return None


def needs_of(facts: StatementFacts, path: Path, *, own: bool, writes: bool, schemas: tuple[str, ...] = ()) -> Need:
    """What a statement (the caller's, or one run by stored code) names, and how it touches each relation."""
    phase = _phase(facts)
    ddl = facts.tag not in _NOT_DDL
    if phase is None:
        return Need(path, "run", event_triggers=ddl)
    node = facts.node.query if facts.tag == "ExplainStmt" else facts.node
    extra = _RUNS.get(type(node).__name__)
    accesses: dict[Relation, set[Access]] = {}
    for relation in facts.relations:
        accesses.setdefault(relation, set()).add("read")
    targets = set()
    for change in facts.modifications:
        if change.target is not None:
            accesses.setdefault(change.target, set()).update(change.accesses)
            targets.add(change.target)
    if extra is not None:
        for target in facts.targets:
            accesses.setdefault(target, set()).add(extra)
            targets.add(target)
    relations = tuple(
        RelationNeed(name, frozenset(kinds), own=own and name in targets, writes=writes and name in targets)
        for name, kinds in accesses.items()
    )
    need = Need(
        path,
        phase,
        functions=tuple(Relation(f.schema, f.name) for f in facts.functions),
        fields=facts.fields,
        operators=facts.operators,
        types=facts.types,
        relations=relations,
        schemas=schemas,
        event_triggers=ddl,
    )
    if need.empty:
        return need
    return with_(need, operators=tuple(dict.fromkeys((*need.operators, *_COMPARISONS))))


def with_(need: Need, **changes: Any) -> Need:
    values = {name: getattr(need, name) for name in Need.__dataclass_fields__}
    values.update(changes)
    return Need(**values)


def _definition_needs(facts: StatementFacts) -> tuple[Need, tuple[Runs | Unseen, ...]]:
    """What an earlier statement of the same call defines or changes, as code every later statement may set off.

    Everything the definition names is followed (the functions a trigger, operator, cast or aggregate names; the
    expressions of defaults, checks, policies and views; the objects a rename or ALTER moves); a function's body is
    read from the statement's text.
    """
    node = facts.node
    label = f"what statement {facts.index + 1} defines ({_verb(facts)})"
    path: Path = (label,)
    functions = [Relation(f.schema, f.name) for f in facts.functions]
    functions += _named_functions(node)
    relations = [RelationNeed(r, frozenset({"read", "insert", "update", "delete"})) for r in facts.relations]
    items: list[Runs | Unseen] = []
    schemas: tuple[str, ...] = ()
    if isinstance(node, ast.CreateFunctionStmt):
        language = _language(node)
        if language not in ("sql", "plpgsql"):
            items.append(Unseen(path, f"it defines a function written in {language}, which the policy cannot read"))
        body = statement_body(node, facts.sql)
        items.extend(Unseen(path, what) for what in body.unseen)
        for statement in body.statements:
            items.append(Runs(path, statement))
        inner = [needs_of(s, path, own=False, writes=True) for s in body.statements]
        for need in inner:
            functions += need.functions
            relations += need.relations
        schemas = _search_path_option(node.options)
        body_fields = [f for need in inner for f in need.fields]
        body_ops = [o for need in inner for o in need.operators]
        body_types = [t for need in inner for t in need.types]
    else:
        body_fields, body_ops, body_types = [], [], []
    need = Need(
        path,
        "run",
        functions=tuple(dict.fromkeys(functions)),
        fields=tuple(dict.fromkeys((*facts.fields, *body_fields))),
        operators=tuple(dict.fromkeys((*facts.operators, *body_ops, *_COMPARISONS))),
        types=tuple(dict.fromkeys((*facts.types, *body_types))),
        relations=tuple(relations),
        schemas=schemas,
    )
    return need, tuple(items)


def _verb(facts: StatementFacts) -> str:
    words = facts.sql.split()
    return " ".join(words[:4]) + (" …" if len(words) > 4 else "")


def _named_functions(node: Any) -> list[Relation]:
    """Functions a definition names without calling them (trigger, operator, cast, aggregate, range, event trigger,
    and the function an ALTER FUNCTION renames or moves)."""
    match node:
        case ast.CreateTrigStmt() | ast.CreateEventTrigStmt():
            named = [qualified_name(node.funcname)]
        case ast.CreateCastStmt():
            named = [qualified_name(node.func)]
        case ast.DefineStmt():
            named = [qualified_name(option.arg) for option in node.definition or () if isinstance(option, ast.DefElem)]
        case ast.CreateRangeStmt():
            named = [
                qualified_name(option.arg)
                for option in node.params or ()
                if isinstance(option, ast.DefElem) and option.defname in ("canonical", "subtype_diff")
            ]
        case ast.RenameStmt() | ast.AlterObjectSchemaStmt() if isinstance(node.object, ast.ObjectWithArgs):
            named = [qualified_name(node.object)]
        case ast.AlterFunctionStmt():
            named = [qualified_name(node.func)]
        case _:
            named = []
    return [name for name in named if name is not None]


def _language(node: Any) -> str:
    """The language of a CREATE FUNCTION statement (SQL when it has a ``BEGIN ATOMIC`` or ``RETURN`` body)."""
    for option in node.options or ():
        if isinstance(option, ast.DefElem) and option.defname == "language" and isinstance(option.arg, ast.String):
            return str(option.arg.sval).lower()
    return "sql"


def _search_path_option(options: Any) -> tuple[str, ...]:
    """The schemas of a ``SET search_path = …`` in CREATE FUNCTION options."""
    for option in options or ():
        if isinstance(option, ast.DefElem) and option.defname == "set":
            setting = option.arg
            if isinstance(setting, ast.VariableSetStmt) and str(setting.name).lower() == "search_path":
                return tuple(
                    str(arg.val.sval)
                    for arg in setting.args or ()
                    if isinstance(arg, ast.A_Const) and isinstance(arg.val, ast.String)
                )
    return ()


def definitions_before(facts: Sequence[StatementFacts], index: int) -> list[StatementFacts]:
    return [f for f in facts[:index] if f.tag in _DEFINES]


def plans(facts: Sequence[StatementFacts]) -> list[tuple[list[Need], list[Runs | Unseen]]]:
    """For each statement: the names to follow and the items known from text alone."""
    out: list[tuple[list[Need], list[Runs | Unseen]]] = []
    for statement in facts:
        top = needs_of(statement, (), own=True, writes=False)
        needs = [] if top.empty and not top.event_triggers else [top]
        items: list[Runs | Unseen] = []
        if _phase(statement) is not None:
            for earlier in definitions_before(facts, statement.index):
                need, found = _definition_needs(earlier)
                needs.append(need)
                items.extend(found)
        out.append((needs, items))
    return out
