"""The closure's catalog reading: the queries of one round of the walk, and the rows they give.

``FUNCTIONS_SQL``, ``RELATIONS_SQL``, ``TYPES_SQL`` and ``OPERATORS_SQL`` each resolve names as PostgreSQL could
(unqualified ones in every schema of the search path, every overload) and describe what they found and the OIDs they
are given: for a function its language, volatility, definition and the code it shares with others; for a relation the
code attached to it (triggers, rules, policies, defaults, generated columns, checks, index expressions, foreign keys'
actions, partitions, its view query, its foreign wrapper); for a type its domain checks, casts and operator classes.
What an object's stored expressions use comes from ``pg_depend``, where PostgreSQL itself recorded the functions,
operators, types and relations it resolved. A round sends only the queries it needs: PostgreSQL plans each one on
every call (a generic plan of these catalog joins is hundreds of times slower), so smaller is cheaper. The text is
constant: every value is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .reached import Function

__all__ = [
    "FIRST_USER_OID",
    "FUNCTIONS_SQL",
    "GLOBALS_SQL",
    "OPERATORS_SQL",
    "RELATIONS_SQL",
    "TYPES_SQL",
    "WRITES",
    "Access",
    "Attached",
    "Deps",
    "FunctionRow",
    "OperatorRow",
    "TableRow",
    "TypeRow",
    "function_of",
    "table_of",
    "type_of",
]

Access = Literal["read", "insert", "update", "delete", "truncate", "maintain", "refresh"]

FIRST_USER_OID = 16384
"""PostgreSQL's FirstNormalObjectId: objects below it were made by initdb."""


@dataclass(frozen=True, slots=True)
class Deps:
    """What PostgreSQL recorded that an object's expressions use (``pg_depend``, normal dependencies)."""

    functions: tuple[int, ...] = ()
    operators: tuple[int, ...] = ()
    types: tuple[int, ...] = ()
    relations: tuple[int, ...] = ()

    @classmethod
    def of(cls, value: Any) -> Deps:
        if not isinstance(value, dict):
            return cls()
        return cls(*(tuple(value.get(key) or ()) for key in ("f", "o", "t", "r")))


@dataclass(frozen=True, slots=True)
class FunctionRow:
    """A function, with what running it runs: its definition (SQL, PL/pgSQL), an aggregate's support functions."""

    function: Function
    label: str
    definition: str | None
    schemas: tuple[str, ...]
    """The schemas of its own ``SET search_path``, where the names in its body resolve too."""
    support: tuple[int, ...]
    deps: Deps


@dataclass(frozen=True, slots=True)
class Attached:
    """Code attached to a relation (trigger, rule, policy, default, check, index) and the accesses that run it."""

    label: str
    fires: frozenset[Access]
    deps: Deps
    function: int | None = None
    text: str | None = None
    """A rule's definition (``CREATE RULE …``), read for the statements it runs."""
    planned: bool = True
    """The planner evaluates it too (views, rules, policies, defaults); triggers, checks and indexes only run."""


@dataclass(frozen=True, slots=True)
class TableRow:
    """A relation and the code attached to it."""

    oid: int
    name: str
    label: str
    kind: str
    types: tuple[int, ...]
    query: Deps | None
    """What its view query uses (views and materialized views)."""
    attached: tuple[Attached, ...]
    cascades: tuple[tuple[str, int, str, Access, Access], ...]
    """Foreign keys acting on other tables: (label, table oid, table name, on this access, that access there)."""
    children: tuple[int, ...]
    foreign: tuple[str, tuple[str, ...]] | None
    """A foreign table's wrapper and the names of its options."""


@dataclass(frozen=True, slots=True)
class TypeRow:
    """A type made by users, with what using it may run: I/O, casts, operator classes, domain checks."""

    label: str
    types: tuple[int, ...]
    functions: tuple[tuple[str, int], ...]
    constraints: tuple[tuple[str, Deps], ...]
    operators: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class OperatorRow:
    label: str
    functions: tuple[int, ...]


WRITES: frozenset[Access] = frozenset({"insert", "update", "delete"})
_EVERY: frozenset[Access] = frozenset({"read", "insert", "update", "delete", "refresh", "maintain"})
_CHANGED: frozenset[Access] = frozenset({"insert", "update", "maintain"})
_TRIGGER_EVENTS: dict[Access, int] = {"insert": 1 << 2, "delete": 1 << 3, "update": 1 << 4, "truncate": 1 << 5}
_RULE_EVENTS: dict[str, Access] = {"2": "update", "3": "insert", "4": "delete"}
_RELKINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}
_FK_ACTIONS: dict[str, tuple[str, Access]] = {
    "c": ("CASCADE", "delete"),
    "n": ("SET NULL", "update"),
    "d": ("SET DEFAULT", "update"),
}
_KIND_WORDS = {"p": "procedure", "a": "aggregate", "w": "window function"}


def table_of(row: dict[str, Any]) -> TableRow:
    """A relation row of ``RELATIONS_SQL``'s rows."""
    name = row["label"]
    attached: list[Attached] = []
    for trigger, bits, function, deps in row.get("triggers") or ():
        fires = frozenset(access for access, bit in _TRIGGER_EVENTS.items() if bits & bit)
        label = f"trigger {trigger} on {name}"
        attached.append(Attached(label, fires, Deps.of(deps), function, planned=False))
    for rule, event, text, deps in row.get("rules") or ():
        on = _RULE_EVENTS.get(event)
        attached.append(Attached(f"rule {rule} on {name}", frozenset({on} if on else ()), Deps.of(deps), text=text))
    for policy, deps in row.get("policies") or ():
        attached.append(Attached(f"policy {policy} on {name}", _EVERY, Deps.of(deps)))
    for column, generated, deps in row.get("defaults") or ():
        if generated:
            attached.append(Attached(f"generated column {name}.{column}", _CHANGED, Deps.of(deps)))
        else:
            attached.append(Attached(f"default of {name}.{column}", frozenset({"insert", "update"}), Deps.of(deps)))
    for check, deps in row.get("checks") or ():
        attached.append(Attached(f"check constraint {check} on {name}", _CHANGED, Deps.of(deps), planned=False))
    for index, deps in row.get("indexes") or ():
        attached.append(Attached(f"index {index}", _CHANGED, Deps.of(deps), planned=False))
    cascades: list[tuple[str, int, str, Access, Access]] = []
    for key, table, table_name, on_delete, on_update in row.get("references") or ():
        for event, action in (("delete", on_delete), ("update", on_update)):
            if action in _FK_ACTIONS:
                words, effect = _FK_ACTIONS[action]
                effect = "update" if event == "update" else effect  # ON UPDATE CASCADE updates the referencing rows
                label = f"foreign key {key} of {table_name} (ON {event.upper()} {words})"
                cascades.append((label, int(table), str(table_name), event, effect))  # type: ignore[arg-type]
    foreign = row.get("foreign")
    return TableRow(
        oid=row["oid"],
        name=name,
        label=f"{_RELKINDS.get(row['kind'], 'relation')} {name}",
        kind=row["kind"],
        types=tuple(row.get("types") or ()),
        query=Deps.of(row["query"]) if row.get("query") is not None else None,
        attached=tuple(attached),
        cascades=tuple(cascades),
        children=tuple(row.get("children") or ()),
        foreign=(foreign[0], tuple(foreign[1] or ())) if foreign else None,
    )


def function_of(row: dict[str, Any]) -> FunctionRow:
    """A function row of ``FUNCTIONS_SQL``'s rows."""
    library = row.get("library")
    function = Function(
        schema=row["schema"],
        name=row["name"],
        language=row["language"],
        volatility=row["volatility"],
        builtin=row["oid"] < FIRST_USER_OID,
        kind=row["kind"],
        extension=row.get("extension"),
        aliases=tuple(row.get("aliases") or ()),
        library=library.rsplit("/", 1)[-1].removesuffix(".so") if isinstance(library, str) else None,
        display=row.get("display") or "",
    )
    return FunctionRow(
        function=function,
        label=f"{_KIND_WORDS.get(function.kind, 'function')} {function}",
        definition=row.get("definition"),
        schemas=_search_path_setting(row.get("config")),
        support=tuple(row.get("support") or ()),
        deps=Deps.of(row.get("deps")),
    )


def _search_path_setting(config: Sequence[str] | None) -> tuple[str, ...]:
    """The schemas of ``search_path`` in a ``pg_proc.proconfig`` array."""
    for entry in config or ():
        name, _, value = entry.partition("=")
        if name.lower() == "search_path":
            return tuple(part.strip().strip('"') for part in value.split(",") if part.strip())
    return ()


def type_of(row: dict[str, Any]) -> TypeRow:
    """A type row of ``TYPES_SQL``'s rows."""
    label = row["label"]
    functions = [(f"type {label}", oid) for oid in row.get("functions") or ()]
    functions += [(f"cast {source} → {target}", oid) for source, target, oid in row.get("casts") or ()]
    functions += [(f"operator class of type {label}", oid) for oid in row.get("opclass") or ()]
    checks = row.get("checks") or ()
    constraints = tuple((f"domain {label} (constraint {name})", Deps.of(deps)) for name, deps in checks)
    return TypeRow(
        label, tuple(row.get("types") or ()), tuple(functions), constraints, tuple(row.get("operators") or ())
    )


# --- the catalog query -----------------------------------------------------------------------------------------------

_DEPS = """(SELECT jsonb_build_object(
    'f', coalesce(jsonb_agg(DISTINCT dep.refobjid::int8)
                  FILTER (WHERE dep.refclassid = 'pg_catalog.pg_proc'::regclass), '[]'),
    'o', coalesce(jsonb_agg(DISTINCT dep.refobjid::int8)
                  FILTER (WHERE dep.refclassid = 'pg_catalog.pg_operator'::regclass AND dep.refobjid >= 16384), '[]'),
    't', coalesce(jsonb_agg(DISTINCT dep.refobjid::int8)
                  FILTER (WHERE dep.refclassid = 'pg_catalog.pg_type'::regclass AND dep.refobjid >= 16384), '[]'),
    'r', coalesce(jsonb_agg(DISTINCT dep.refobjid::int8)
                  FILTER (WHERE dep.refclassid = 'pg_catalog.pg_class'::regclass AND dep.refobjid >= 16384), '[]'))
  FROM pg_catalog.pg_depend dep
  WHERE dep.classid = '{catalog}'::regclass AND dep.objid = {oid} AND dep.deptype = 'n')"""


def _deps(catalog: str, oid: str) -> str:
    return _DEPS.format(catalog=catalog, oid=oid)


_IN_PATH = """(CASE WHEN w.schema = '' THEN n.nspname = ANY(pg_catalog.current_schemas(true)::text[]
                    || ARRAY(SELECT pg_catalog.jsonb_array_elements_text(w.extra::jsonb)))
          ELSE n.nspname = w.schema END)"""
_ASKED = "unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::bool[]) AS w(id, schema, name, extra, one_arg)"


def _describe(named: str, rows: str) -> str:
    """A query resolving names (``named``: id and oid of each match) and describing them and the OIDs in ``$6``."""
    return f"""
WITH named AS ({named}), wanted AS (SELECT oid FROM named UNION SELECT unnest($6::oid[]))
SELECT jsonb_build_object(
  'names', (SELECT coalesce(jsonb_agg(jsonb_build_array(id, oid::int8)), '[]') FROM named),
  'rows', ({rows}))::text
"""  # noqa: S608 - only the constant fragments of this module are interpolated


FUNCTIONS_SQL = _describe(
    f"""SELECT w.id, p.oid FROM {_ASKED}
  JOIN pg_catalog.pg_proc p ON p.proname = w.name
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE {_IN_PATH} AND (NOT w.one_arg OR p.pronargs = 1)""",  # noqa: S608 - constant fragments
    f"""SELECT coalesce(jsonb_agg(jsonb_build_object(
      'oid', p.oid::int8, 'schema', n.nspname, 'name', p.proname, 'kind', p.prokind, 'language', l.lanname,
      'display', CASE WHEN p.oid < 16384 THEN pg_catalog.quote_ident(p.proname)
                      ELSE pg_catalog.format('%I.%I', n.nspname, p.proname) END,
      'volatility', p.provolatile,
      'extension', (SELECT e.extname FROM pg_catalog.pg_depend d
                    JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
                    WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid
                      AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e' LIMIT 1),
      'aliases', CASE WHEN p.oid >= 16384 AND l.lanname IN ('c', 'internal') THEN
        ARRAY(SELECT DISTINCT q.proname::text FROM pg_catalog.pg_proc q
              WHERE q.prolang = p.prolang AND q.prosrc = p.prosrc AND q.probin IS NOT DISTINCT FROM p.probin
                AND q.oid <> p.oid) END,
      'library', CASE WHEN l.lanname = 'c' THEN p.probin END,
      'definition', CASE WHEN p.oid >= 16384 AND l.lanname IN ('sql', 'plpgsql') AND p.prokind IN ('f', 'p')
        THEN pg_catalog.pg_get_functiondef(p.oid) END,
      'config', p.proconfig,
      'support', CASE WHEN p.oid >= 16384 AND p.prokind IN ('a', 'w') THEN
        (SELECT ARRAY(SELECT f::int8 FROM unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                                                 a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn,
                                                 a.aggmfinalfn]::oid[]) AS f WHERE f <> 0)
         FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = p.oid) END,
      'deps', CASE WHEN p.oid >= 16384 THEN {_deps("pg_catalog.pg_proc", "p.oid")} END)), '[]')
    FROM wanted JOIN pg_catalog.pg_proc p ON p.oid = wanted.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_catalog.pg_language l ON l.oid = p.prolang""",  # noqa: S608 - constant fragments
)
"""Functions by name (every overload in reach) and by OID: language, volatility, definition, support functions."""

RELATIONS_SQL = _describe(
    f"""SELECT w.id, c.oid FROM {_ASKED}
  JOIN pg_catalog.pg_class c ON c.relname = w.name
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE {_IN_PATH} AND c.relkind IN ('r', 'p', 'v', 'm', 'f')""",  # noqa: S608 - constant fragments
    f"""SELECT coalesce(jsonb_agg(jsonb_build_object(
      'oid', c.oid::int8, 'label', pg_catalog.format('%I.%I', n.nspname, c.relname), 'kind', c.relkind,
      'types', ARRAY(SELECT DISTINCT a.atttypid::int8 FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid >= 16384),
      'query', (SELECT {_deps("pg_catalog.pg_rewrite", "r.oid")} FROM pg_catalog.pg_rewrite r
                WHERE r.ev_class = c.oid AND r.rulename = '_RETURN'),
      'rules', (SELECT jsonb_agg(jsonb_build_array(r.rulename, r.ev_type, pg_catalog.pg_get_ruledef(r.oid),
                                                   {_deps("pg_catalog.pg_rewrite", "r.oid")}))
                FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN'),
      'policies', (SELECT jsonb_agg(jsonb_build_array(pg_catalog.quote_ident(p.polname),
                                                      {_deps("pg_catalog.pg_policy", "p.oid")}))
                   FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid),
      'triggers', (SELECT jsonb_agg(jsonb_build_array(pg_catalog.quote_ident(t.tgname), t.tgtype, t.tgfoid::int8,
                                                      {_deps("pg_catalog.pg_trigger", "t.oid")}))
                   FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
      'defaults', (SELECT jsonb_agg(jsonb_build_array(pg_catalog.quote_ident(a.attname), a.attgenerated <> '',
                                                      {_deps("pg_catalog.pg_attrdef", "d.oid")}))
                   FROM pg_catalog.pg_attrdef d
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                   WHERE d.adrelid = c.oid),
      'checks', (SELECT jsonb_agg(jsonb_build_array(pg_catalog.quote_ident(k.conname),
                                                    {_deps("pg_catalog.pg_constraint", "k.oid")}))
                 FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'c'),
      'indexes', (SELECT jsonb_agg(jsonb_build_array(pg_catalog.format('%I.%I', n.nspname, ic.relname),
                                                     {_deps("pg_catalog.pg_class", "i.indexrelid")}))
                  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                  WHERE i.indrelid = c.oid AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)),
      'references', (SELECT jsonb_agg(jsonb_build_array(pg_catalog.quote_ident(f.conname), f.conrelid::int8,
                                                        pg_catalog.format('%I.%I', fn.nspname, fc.relname),
                                                        f.confdeltype, f.confupdtype))
                     FROM pg_catalog.pg_depend fd
                     JOIN pg_catalog.pg_constraint f ON f.oid = fd.objid
                     JOIN pg_catalog.pg_class fc ON fc.oid = f.conrelid
                     JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
                     WHERE fd.refclassid = 'pg_catalog.pg_class'::regclass AND fd.refobjid = c.oid
                       AND fd.classid = 'pg_catalog.pg_constraint'::regclass
                       AND f.contype = 'f' AND f.confrelid = c.oid
                       AND (f.confdeltype IN ('c', 'n', 'd') OR f.confupdtype IN ('c', 'n', 'd'))),
      'children', ARRAY(SELECT i.inhrelid::int8 FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid),
      'foreign', (SELECT jsonb_build_array(w.fdwname,
                    ARRAY(SELECT DISTINCT split_part(o, '=', 1)
                          FROM unnest(coalesce(ft.ftoptions, '{{}}') || coalesce(s.srvoptions, '{{}}')) AS o))
                  FROM pg_catalog.pg_foreign_table ft
                  JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
                  JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
                  WHERE ft.ftrelid = c.oid))), '[]')
    FROM wanted JOIN pg_catalog.pg_class c ON c.oid = wanted.oid AND c.oid >= 16384
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace""",  # noqa: S608 - constant fragments
)
"""Relations by name (in reach) and by OID, with the code attached to each (PostgreSQL's own are not described)."""

TYPES_SQL = _describe(
    f"""SELECT w.id, t.oid FROM {_ASKED}
  JOIN pg_catalog.pg_type t ON t.typname = w.name
  JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
  WHERE {_IN_PATH} AND t.oid >= 16384""",  # noqa: S608 - constant fragments
    f"""SELECT coalesce(jsonb_agg(jsonb_build_object(
      'oid', t.oid::int8, 'label', pg_catalog.format('%I.%I', n.nspname, t.typname),
      'types', ARRAY(SELECT x::int8 FROM unnest(ARRAY[t.typbasetype, t.typelem, r.rngsubtype]::oid[]) AS x
                     WHERE x >= 16384
                     UNION SELECT a.atttypid::int8 FROM pg_catalog.pg_attribute a
                           JOIN pg_catalog.pg_class tc ON tc.oid = a.attrelid AND tc.relkind = 'c'
                           WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND a.atttypid >= 16384),
      'functions', ARRAY(SELECT x::int8 FROM unnest(ARRAY[t.typinput, t.typoutput, t.typreceive, t.typsend,
                                                    t.typmodin, t.typmodout, t.typanalyze, t.typsubscript,
                                                    r.rngcanonical, r.rngsubdiff]::oid[]) AS x WHERE x >= 16384),
      'checks', (SELECT jsonb_agg(jsonb_build_array(pg_catalog.quote_ident(k.conname),
                                                    {_deps("pg_catalog.pg_constraint", "k.oid")}))
                 FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid),
      'casts', (SELECT jsonb_agg(jsonb_build_array(pg_catalog.format_type(k.castsource, NULL),
                                                   pg_catalog.format_type(k.casttarget, NULL), k.castfunc::int8))
                FROM pg_catalog.pg_cast k WHERE (k.castsource = t.oid OR k.casttarget = t.oid) AND k.castfunc <> 0),
      'opclass', ARRAY(SELECT ap.amproc::int8 FROM pg_catalog.pg_opclass oc
                       JOIN pg_catalog.pg_amproc ap ON ap.amprocfamily = oc.opcfamily
                       WHERE oc.opcintype = t.oid AND oc.opcdefault),
      'operators', ARRAY(SELECT ao.amopopr::int8 FROM pg_catalog.pg_opclass oc
                         JOIN pg_catalog.pg_amop ao ON ao.amopfamily = oc.opcfamily
                         WHERE oc.opcintype = t.oid AND oc.opcdefault AND ao.amopopr >= 16384))), '[]')
    FROM wanted JOIN pg_catalog.pg_type t ON t.oid = wanted.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
    LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid""",  # noqa: S608 - constant fragments
)
"""Types made by users, by name (in reach) and by OID: what using one may run (I/O, casts, operator classes, checks)."""

OPERATORS_SQL = _describe(
    f"""SELECT w.id, o.oid FROM {_ASKED}
  JOIN pg_catalog.pg_operator o ON o.oprname = w.name
  JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
  WHERE {_IN_PATH} AND o.oid >= 16384""",  # noqa: S608 - constant fragments
    """SELECT coalesce(jsonb_agg(jsonb_build_object(
      'oid', o.oid::int8, 'label', pg_catalog.format('%I.%s', n.nspname, o.oprname),
      'functions', ARRAY(SELECT x::int8 FROM unnest(ARRAY[o.oprcode, o.oprrest, o.oprjoin]::oid[]) AS x
                         WHERE x <> 0))), '[]')
    FROM wanted JOIN pg_catalog.pg_operator o ON o.oid = wanted.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace""",
)
"""Operators made by users, by name (in reach) and by OID: the functions behind them."""

GLOBALS_SQL = """
SELECT jsonb_build_object(
  'event_triggers', CASE WHEN $1 THEN (SELECT coalesce(jsonb_agg(jsonb_build_array(
      pg_catalog.quote_ident(e.evtname), e.evtfoid::int8)), '[]') FROM pg_catalog.pg_event_trigger e
      WHERE e.evtenabled <> 'D') END,
  'casts', CASE WHEN $2 THEN (SELECT coalesce(jsonb_agg(jsonb_build_array(
      pg_catalog.format_type(k.castsource, NULL), pg_catalog.format_type(k.casttarget, NULL),
      k.castfunc::int8)), '[]')
      FROM pg_catalog.pg_cast k WHERE k.castfunc >= 16384 AND k.castsource < 16384 AND k.casttarget < 16384) END
)::text
"""
"""Code every DDL statement may fire (event triggers), and users' casts between PostgreSQL's own types."""
