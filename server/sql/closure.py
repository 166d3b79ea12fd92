"""The executable closure of a statement: everything PostgreSQL may run for it, resolved from the catalog.

A statement's text shows little of what it runs. ``SELECT * FROM app.v`` runs the view's query, which may call
functions, whose bodies call others; a one-row ``INSERT`` fires triggers and rules, computes defaults and generated
columns, checks constraints and domains, evaluates index expressions, and a ``DELETE`` cascades through foreign keys.
Operators and casts are functions too, ``t.fn`` is ``fn(t)``, aggregates have transition functions, row-level
security policies run their expressions for every table read or written, and a foreign table reads through its
wrapper. ``Closures.of`` walks all of that from the names a statement uses:

- names (functions, relations, operators, types, fields usable as attribute notation; ``server.sql.closure_needs``
  says which, and how each relation is touched) are resolved in the catalog (``server.sql.closure_catalog``) as
  PostgreSQL could resolve them: unqualified ones in every schema of the search path (and of a function's own
  ``SET search_path``), every overload, so the closure over-approximates what one call picks;
- objects are then followed through ``pg_depend`` (what PostgreSQL itself recorded for views, rules, policies,
  defaults, constraints, index expressions, trigger conditions, ``BEGIN ATOMIC`` bodies) and through the catalogs
  that attach code to tables and types (triggers, rules, policies, foreign keys, domains, casts, operator classes);
- function bodies in SQL and PL/pgSQL, and rule actions, are read as statements (``server.sql.bodies``) and their
  names followed in turn, so a ``STABLE`` label that lies is found out by what the body calls.

The result is facts (``server.sql.reached``), judged elsewhere (``server.sql.policy``): each item carries the path
from the statement to it (``view app.v → function app.f() → …``). Plain ``EXPLAIN`` only plans: there the walk keeps
what the planner itself may execute (non-volatile functions it folds, and everything they run), not triggers or
volatile calls.

Objects defined or changed earlier in the same call (``run_sql_transaction``, a migration) are not in the catalog yet:
every executable definition of an earlier statement is taken as reached by each later statement that runs anything,
and judged by its text.

PostgreSQL's own objects (OIDs below 16384) are trusted as what their names say: the policy judges built-in functions
by name and volatility; built-in views, operators and types are not followed.

Closures, and the catalog rows they were built from, are cached per place. The cache is dropped after DDL run through
this server and expires after ``ttl`` seconds, which bounds how long DDL made by others (another client, another
server process) can go unseen: the catalog has no cheap version to key on (a checksum of the relevant catalogs' row
versions costs about 30 ms on 2,000 tables, more than most closures it would save).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .analysis import Relation, StatementFacts
from .bodies import Body, function_body, rule_actions
from .closure_catalog import (
    FIRST_USER_OID,
    FUNCTIONS_SQL,
    GLOBALS_SQL,
    OPERATORS_SQL,
    RELATIONS_SQL,
    TYPES_SQL,
    WRITES,
    Access,
    Deps,
    FunctionRow,
    OperatorRow,
    TableRow,
    TypeRow,
    function_of,
    table_of,
    type_of,
)
from .closure_needs import Need, Phase, definitions_before, needs_of, plans, with_
from .reached import EMPTY, Call, Closure, Foreign, Function, Path, Reached, Runs, Unseen, Write

if TYPE_CHECKING:
    from .places import Place

__all__ = [
    "EMPTY",
    "Call",
    "Closure",
    "Closures",
    "Foreign",
    "Function",
    "Reached",
    "Runs",
    "Unseen",
    "Write",
]

_MAX_VISITS = 20_000
_MAX_ROUNDS = 64


# --- the walk --------------------------------------------------------------------------------------------------------

_NameKey = tuple[str, str, bool, tuple[str, ...]]
_TABLES = {"fn": "fns", "rel": "rels", "type": "tys", "op": "ops"}


@dataclass(slots=True)
class _Known:
    """What one place's catalog said, for ``ttl`` seconds (or until DDL through this server)."""

    expires: float
    functions: dict[_NameKey, tuple[int, ...]] = field(default_factory=dict)
    relations: dict[_NameKey, tuple[int, ...]] = field(default_factory=dict)
    operators: dict[_NameKey, tuple[int, ...]] = field(default_factory=dict)
    types: dict[_NameKey, tuple[int, ...]] = field(default_factory=dict)
    fns: dict[int, FunctionRow | None] = field(default_factory=dict)
    rels: dict[int, TableRow | None] = field(default_factory=dict)
    tys: dict[int, TypeRow | None] = field(default_factory=dict)
    ops: dict[int, OperatorRow | None] = field(default_factory=dict)
    event_triggers: tuple[tuple[str, int], ...] | None = None
    casts: tuple[tuple[str, int], ...] | None = None
    closures: dict[tuple[str, ...], Closure] = field(default_factory=dict)


Fetch = Callable[[list[tuple[str, Sequence[Any]]]], Awaitable[list[str]]]
"""Runs the server's own catalog queries in one read-only transaction; each returns one text document."""


@dataclass(slots=True)
class _Round:
    """Names and objects one catalog query must look up."""

    functions: dict[_NameKey, int] = field(default_factory=dict)
    relations: dict[_NameKey, int] = field(default_factory=dict)
    operators: dict[_NameKey, int] = field(default_factory=dict)
    types: dict[_NameKey, int] = field(default_factory=dict)
    fns: set[int] = field(default_factory=set)
    rels: set[int] = field(default_factory=set)
    tys: set[int] = field(default_factory=set)
    ops: set[int] = field(default_factory=set)
    event_triggers: bool = False
    casts: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.functions
            or self.relations
            or self.operators
            or self.types
            or self.fns
            or self.rels
            or self.tys
            or self.ops
            or self.event_triggers
            or self.casts
        )


def _arguments(names: dict[_NameKey, int], oids: set[int]) -> list[Any]:
    """The parameters of a describing query: the names asked (id, schema, name, extra schemas, one argument only)
    and the OIDs."""
    keys = list(names)
    return [
        [names[k] for k in keys],
        [k[0] for k in keys],
        [k[1] for k in keys],
        [json.dumps(list(k[3])) for k in keys],
        [k[2] for k in keys],
        sorted(oids),
    ]


_Row = TypeVar("_Row")


def _store(
    document: dict[str, Any],
    asked: dict[_NameKey, int],
    oids: set[int],
    names: dict[_NameKey, tuple[int, ...]],
    rows: dict[int, _Row | None],
    read: Callable[[dict[str, Any]], _Row],
) -> None:
    """Keep what a describing query answered: the OIDs each asked name resolved to, and the rows."""
    by_id: dict[int, list[int]] = {}
    for ident, oid in document["names"]:
        by_id.setdefault(ident, []).append(oid)
    for key, ident in asked.items():
        names[key] = tuple(sorted(by_id.get(ident, ())))
    for row in document["rows"]:
        rows[row["oid"]] = read(row)
    for oid in oids:  # gone meanwhile, or of a kind not followed (PostgreSQL's own): known as nothing
        rows.setdefault(oid, None)


def _operator_of(row: dict[str, Any]) -> OperatorRow:
    return OperatorRow(f"operator {row['label']}", tuple(row["functions"]))


def _key(name: Relation, schemas: tuple[str, ...], one_arg: bool = False) -> _NameKey:
    return (name.schema or "", name.name, one_arg, () if name.schema else schemas)


class _Walk:
    """One statement's closure: a breadth-first walk, looking up in batches what the cache does not know."""

    def __init__(self, known: _Known, fetch: Fetch) -> None:
        self.known = known
        self.fetch = fetch
        self.items: list[Reached] = []
        self.needs: list[Need] = []
        self.nodes: list[tuple[str, int, Path, Phase, Access, bool, bool]] = []
        self.seen: set[tuple[Any, ...]] = set()
        self.own: set[int] = set()
        self.writes: list[tuple[Path, int, str, str]] = []
        self.visits = 0

    async def run(self) -> Closure:
        rounds = 0
        while self.needs or self.nodes:
            missing = self._missing()
            if not missing.empty:
                rounds += 1
                if rounds > _MAX_ROUNDS or self.visits > _MAX_VISITS:
                    self.items.append(Unseen((), f"what it runs is too large to analyse ({self.visits} objects)"))
                    break
                await self._look_up(missing)
            needs, self.needs = self.needs, []
            for need in needs:
                self._resolve(need)
            nodes, self.nodes = self.nodes, []
            for node in nodes:
                if node[1] in getattr(self.known, _TABLES[node[0]]):
                    self._visit(*node)
                else:  # reached through a name resolved just now: described in the next round
                    self.nodes.append(node)
        for path, oid, label, kind in self.writes:
            self.items.append(Write(path, label, kind, oid in self.own))
        return Closure(tuple(dict.fromkeys(self.items)))

    # names -> objects

    def _missing(self) -> _Round:
        known, missing = self.known, _Round()
        for need in self.needs:
            for name in need.functions:
                if (key := _key(name, need.schemas)) not in known.functions:
                    missing.functions.setdefault(key, len(missing.functions))
            for field_name in need.fields:
                if (key := _key(Relation(None, field_name), need.schemas, True)) not in known.functions:
                    missing.functions.setdefault(key, len(missing.functions))
            for rel in need.relations:
                if (key := _key(rel.name, need.schemas)) not in known.relations:
                    missing.relations.setdefault(key, len(missing.relations))
            for name in need.operators:
                if (key := _key(name, need.schemas)) not in known.operators:
                    missing.operators.setdefault(key, len(missing.operators))
            for name in need.types:
                if (key := _key(name, need.schemas)) not in known.types:
                    missing.types.setdefault(key, len(missing.types))
            if need.event_triggers and known.event_triggers is None:
                missing.event_triggers = True
            if not need.empty and known.casts is None:
                missing.casts = True
        for kind, oid, *_ in self.nodes:
            if oid not in getattr(known, _TABLES[kind]):
                getattr(missing, _TABLES[kind]).add(oid)
        return missing

    async def _look_up(self, missing: _Round) -> None:
        known = self.known
        queries: list[tuple[str, Sequence[Any]]] = []
        kinds = (
            (FUNCTIONS_SQL, missing.functions, missing.fns),
            (RELATIONS_SQL, missing.relations, missing.rels),
            (TYPES_SQL, missing.types, missing.tys),
            (OPERATORS_SQL, missing.operators, missing.ops),
        )
        for sql, names, oids in kinds:
            if names or oids:
                queries.append((sql, _arguments(names, oids)))
        if missing.event_triggers or missing.casts:
            queries.append((GLOBALS_SQL, [missing.event_triggers, missing.casts]))
        documents = iter([json.loads(text) for text in await self.fetch(queries)])
        if missing.functions or missing.fns:
            _store(next(documents), missing.functions, missing.fns, known.functions, known.fns, function_of)
        if missing.relations or missing.rels:
            _store(next(documents), missing.relations, missing.rels, known.relations, known.rels, table_of)
        if missing.types or missing.tys:
            _store(next(documents), missing.types, missing.tys, known.types, known.tys, type_of)
        if missing.operators or missing.ops:
            _store(next(documents), missing.operators, missing.ops, known.operators, known.ops, _operator_of)
        if missing.event_triggers or missing.casts:
            extra = next(documents)
            if extra.get("event_triggers") is not None:
                known.event_triggers = tuple((f"event trigger {name}", oid) for name, oid in extra["event_triggers"])
            if extra.get("casts") is not None:
                known.casts = tuple((f"cast {source} → {target}", oid) for source, target, oid in extra["casts"])

    def _resolve(self, need: Need) -> None:
        known, path, phase = self.known, need.path, need.phase
        for name in need.functions:
            for oid in known.functions[_key(name, need.schemas)]:
                self._push("fn", oid, path, phase)
        for field_name in need.fields:
            for oid in known.functions[_key(Relation(None, field_name), need.schemas, True)]:
                self._push("fn", oid, path, phase)
        for name in need.operators:
            for oid in known.operators[_key(name, need.schemas)]:
                self._push("op", oid, path, phase)
        if phase == "run":
            for name in need.types:
                for oid in known.types[_key(name, need.schemas)]:
                    self._push("type", oid, path, phase)
        for rel in need.relations:
            for oid in known.relations[_key(rel.name, need.schemas)]:
                for access in sorted(rel.accesses):
                    self._push("rel", oid, path, phase, access, rel.own, rel.writes and access in WRITES)
        if need.event_triggers and phase == "run" and known.event_triggers:
            for label, oid in known.event_triggers:
                self._push("fn", oid, (*path, label), phase)
        if not need.empty and known.casts:
            for label, oid in known.casts:
                self._push("fn", oid, (*path, label), phase)

    def _push(
        self,
        kind: str,
        oid: int,
        path: Path,
        phase: Phase,
        access: Access = "read",
        own: bool = False,
        writes: bool = False,
    ) -> None:
        self.nodes.append((kind, oid, path, phase, access, own, writes))

    # objects -> what they run

    def _visit(self, kind: str, oid: int, path: Path, phase: Phase, access: Access, own: bool, writes: bool) -> None:
        if kind == "rel":
            rel = self.known.rels.get(oid)
            if rel is not None and writes:
                self.writes.append((path, oid, rel.name, access))
            if own:
                self.own.add(oid)
        key = (kind, oid, phase, access, own) if kind == "rel" else (kind, oid, phase)
        if key in self.seen or (kind != "rel" and phase == "plan" and (kind, oid, "run") in self.seen):
            return
        self.seen.add(key)
        self.visits += 1
        if kind == "fn":
            self._function(oid, path, phase)
        elif kind == "rel":
            self._relation(oid, path, phase, access, own)
        elif kind == "type":
            self._type(oid, path)
        else:
            op = self.known.ops.get(oid)
            if op is not None:
                for function in op.functions:
                    self._push("fn", function, (*path, op.label), phase)

    def _function(self, oid: int, path: Path, phase: Phase) -> None:
        fn = self.known.fns.get(oid)
        if fn is None:
            return
        if phase == "plan" and fn.function.volatility == "v":
            return  # the planner never calls a volatile function
        self.items.append(Call(path, fn.function))
        if fn.function.builtin:
            return
        inner = (*path, fn.label)
        if fn.definition is not None:
            self._body(function_body(fn.definition), inner, fn.schemas)
        for support in fn.support:
            self._push("fn", support, inner, "run")
        self._deps(fn.deps, inner, "run")

    def _body(self, body: Body, path: Path, schemas: tuple[str, ...], phase: Phase = "run") -> None:
        for what in body.unseen:
            self.items.append(Unseen(path, what))
        for statement in body.statements:
            if phase == "run":
                self.items.append(Runs(path, statement))
            need = needs_of(statement, path, own=False, writes=True, schemas=schemas)
            self.needs.append(need if phase == "run" else with_(need, phase="plan"))

    def _deps(self, deps: Deps, path: Path, phase: Phase) -> None:
        for function in deps.functions:
            self._push("fn", function, path, phase)
        for op in deps.operators:
            self._push("op", op, path, phase)
        if phase == "run":
            for typ in deps.types:
                self._push("type", typ, path, phase)
        for relation in deps.relations:
            self._push("rel", relation, path, phase)

    def _relation(self, oid: int, path: Path, phase: Phase, access: Access, own: bool) -> None:
        rel = self.known.rels.get(oid)
        if rel is None or oid < FIRST_USER_OID:
            return
        # A table's attached code names the table; views, materialized views and foreign tables are steps of their own.
        inner = path if rel.kind in ("r", "p") else (*path, rel.label)
        if rel.foreign is not None:
            wrapper, options = rel.foreign
            self.items.append(Foreign(path, rel.name, wrapper, options))
        if rel.query is not None and (rel.kind == "v" or access == "refresh"):
            self._deps(Deps(rel.query.functions, rel.query.operators, rel.query.types, ()), inner, phase)
            through = access if rel.kind == "v" and access in WRITES else "read"
            for base in rel.query.relations:
                self._push("rel", base, inner, phase, through, own and through != "read")
        for child in rel.children:
            self._push("rel", child, inner, phase, access, own)
        for attached in rel.attached:
            if access not in attached.fires or (phase == "plan" and not attached.planned):
                continue
            step = (*inner, attached.label)
            if attached.function is not None:
                self._push("fn", attached.function, step, phase)
            if attached.text is not None:
                self._body(rule_actions(attached.text), step, (), phase)
            self._deps(attached.deps, step, phase)
        if phase == "run":
            for typ in rel.types:
                self._push("type", typ, inner, phase)
            for label, table, table_label, event, effect in rel.cascades:
                if event == access:
                    step = (*inner, label)
                    self.writes.append((step, table, table_label, effect))
                    self._push("rel", table, step, phase, effect)

    def _type(self, oid: int, path: Path) -> None:
        typ = self.known.tys.get(oid)
        if typ is None:
            return
        for label, function in typ.functions:
            self._push("fn", function, (*path, label), "run")
        for label, deps in typ.constraints:
            self._deps(deps, (*path, label), "run")
        for other in typ.types:
            self._push("type", other, path, "run")
        for op in typ.operators:
            self._push("op", op, (*path, f"operator class of type {typ.label}"), "run")


# --- the service -----------------------------------------------------------------------------------------------------


class Closures:
    """Resolves and caches the executable closures of statements, per place (see the module docstring)."""

    def __init__(self, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._known: dict[str, _Known] = {}

    async def of(self, place: Place, facts: Sequence[StatementFacts]) -> tuple[Closure, ...]:
        """The closure of each statement of a call, in order (objects defined by earlier ones included).

        Raises the database errors of the catalog queries (``NeonMCPError``).
        """
        starts = plans(facts)
        if all(not needs and not items for needs, items in starts):
            return tuple(EMPTY for _ in facts)
        known = self._place(place.key)
        out: list[Closure] = []
        for statement, (needs, items) in zip(facts, starts, strict=True):
            if not needs and not items:
                out.append(EMPTY)
                continue
            key = (*(f.sql for f in definitions_before(facts, statement.index)), statement.sql)
            cached = known.closures.get(key)
            if cached is None:
                cached = await self._walk(place, known, needs, items)
                known.closures[key] = cached
            out.append(cached)
        return tuple(out)

    def forget(self, place_key: str | None = None) -> None:
        """Drop what was learned of one place's catalog (all places without ``place_key``): after DDL."""
        if place_key is None:
            self._known.clear()
        else:
            self._known.pop(place_key, None)

    def _place(self, key: str) -> _Known:
        now = self._clock()
        known = self._known.get(key)
        if known is None or known.expires <= now:
            known = _Known(expires=now + self.ttl)
            self._known[key] = known
        return known

    @staticmethod
    async def _walk(place: Place, known: _Known, needs: list[Need], items: list[Runs | Unseen]) -> Closure:
        async def fetch(queries: list[tuple[str, Sequence[Any]]]) -> list[str]:
            results = await place.databases.read_catalog(place.database, queries)
            return [rows[0][0] for rows in results]

        walk = _Walk(known, fetch)
        walk.items.extend(items)
        walk.needs.extend(needs)
        return await walk.run()
