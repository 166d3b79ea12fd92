"""The relations and schemas a plan changes or drops, read from the catalog as they are now (a confirmation's binding).

Each target of each statement (``StatementFacts.targets``) is looked up by name the way PostgreSQL will resolve it
(a schema-qualified name in its schema, an unqualified one on the search path): its OID, kind, rows and size (a
partitioned table's are its partitions'; a schema's, its tables'). Rows are the larger of the planner's estimate and
the statistics' live tuples, which follow inserts and deletes without an ANALYZE. The look-up reads the catalog and
size functions only: it runs no code of the tables (no count through a view or a row-level-security policy).

Targets that are not relations or schemas (roles, databases, functions, extensions) are not bound here.

``held`` turns a binding back into what a confirmed run holds in its own transaction (``server.state.binding.Held``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pglast import ast
from pglast.enums import ObjectType

from ..state.binding import Binding, Bound, Held
from .quoting import qualified, quote_ident

if TYPE_CHECKING:
    from .analysis import StatementFacts
    from .places import Place

__all__ = ["held", "touched"]

_RELATION_DROPS = {
    ObjectType.OBJECT_TABLE,
    ObjectType.OBJECT_VIEW,
    ObjectType.OBJECT_MATVIEW,
    ObjectType.OBJECT_INDEX,
    ObjectType.OBJECT_SEQUENCE,
    ObjectType.OBJECT_FOREIGN_TABLE,
}
_NOT_RELATIONS = {
    "CreateRoleStmt",
    "AlterRoleStmt",
    "AlterRoleSetStmt",
    "DropRoleStmt",
    "DropOwnedStmt",
    "ReassignOwnedStmt",
    "CreatedbStmt",
    "DropdbStmt",
    "AlterDatabaseStmt",
    "AlterDatabaseSetStmt",
    "CreateExtensionStmt",
    "CreateFunctionStmt",
    "CreateSchemaStmt",
}
_KINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "f": "foreign table",
    "S": "sequence",
    "i": "index",
    "I": "partitioned index",
    "c": "composite type",
    "t": "TOAST table",
}


def _wanted(facts: Sequence[StatementFacts]) -> list[tuple[str, str | None, str]]:
    """(``relation`` or ``schema``, schema, name) for each target, each once, in order."""
    found: dict[tuple[str, str | None, str], None] = {}
    for fact in facts:
        if fact.tag in _NOT_RELATIONS:
            continue
        what = "relation"
        if isinstance(fact.node, ast.DropStmt):
            if fact.node.removeType == ObjectType.OBJECT_SCHEMA:
                what = "schema"
            elif fact.node.removeType not in _RELATION_DROPS:
                continue
        for target in fact.targets:
            if what == "schema" and target.schema is not None:
                continue
            found[(what, target.schema, target.name)] = None
    return list(found)


async def touched(place: Place, facts: Sequence[StatementFacts]) -> Binding:
    """The relations and schemas ``facts`` change or drop, as they are now in ``place`` (absent ones included, with an
    empty identity). Raises ``DatabaseError`` / ``ConnectionFailed`` when the catalog cannot be read."""
    wanted = _wanted(facts)
    if not wanted:
        return ()
    async with place.databases.connection(place.database) as conn:
        rows = await conn.fetch(
            _TOUCHED_SQL, [w for w, _, _ in wanted], [s or "" for _, s, _ in wanted], [n for _, _, n in wanted]
        )
    by_index = {int(row["i"]): row for row in rows}
    out: list[Bound] = []
    for index, (what, schema, name) in enumerate(wanted, start=1):
        row = by_index.get(index)
        shown = f"{schema}.{name}" if schema else name
        if row is None or row["oid"] is None:
            out.append(Bound("schema" if what == "schema" else "relation", shown, ""))
            continue
        kind = "schema" if what == "schema" else _KINDS.get(row["relkind"], "relation")
        rows_held = row["rows"]
        out.append(
            Bound(
                "schema" if what == "schema" else "relation",
                shown,
                f"{kind}, oid {row['oid']}",
                int(rows_held) if rows_held is not None else None,
                int(row["bytes"]) if row["bytes"] is not None else None,
            )
        )
    return tuple(out)


def held(facts: Sequence[StatementFacts], binding: Binding) -> tuple[Held, ...]:
    """What a confirmed run of ``facts`` holds: each target ``binding`` gave an OID (absent ones hold nothing: a
    table that did not exist when asked, the run may create)."""
    by_name = {(bound.kind, bound.name): bound for bound in binding}
    out: list[Held] = []
    for what, schema, name in _wanted(facts):
        shown = f"{schema}.{name}" if schema else name
        if what == "schema":
            bound = by_name.get(("schema", shown))
            if bound is not None and bound.identity:
                out.append(Held("schema", quote_ident(name), _oid(bound), lockable=False))
            continue
        bound = by_name.get(("relation", shown))
        if bound is not None and bound.identity:
            lockable = bound.identity.rpartition(", oid ")[0] in _LOCKABLE
            out.append(Held("relation", qualified(schema, name), _oid(bound), lockable))
    return tuple(out)


def _oid(bound: Bound) -> int:
    """The OID in an identity ``touched`` wrote (``table, oid 16384``)."""
    return int(bound.identity.rpartition(", oid ")[2])


_LOCKABLE = {"table", "partitioned table", "view"}
"""Kinds of relation ``LOCK TABLE`` takes (``_KINDS``' words)."""


_TOUCHED_SQL = """
WITH wanted AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS w(what, schema, name, i)
), relations AS (
    SELECT w.i, c.oid, c.relkind::text AS relkind
    FROM wanted w
    CROSS JOIN LATERAL (
        SELECT c.oid, c.relkind
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE w.what = 'relation' AND c.relname = w.name
          AND (n.nspname = w.schema OR (w.schema = '' AND pg_catalog.pg_table_is_visible(c.oid)))
        LIMIT 1
    ) c
), parts AS (
    SELECT r.i, r.oid FROM relations r WHERE r.relkind NOT IN ('p', 'I')
    UNION ALL
    SELECT r.i, t.relid FROM relations r CROSS JOIN LATERAL pg_catalog.pg_partition_tree(r.oid) t
    WHERE r.relkind IN ('p', 'I')
), leaves AS (
    SELECT p.i, k.oid, k.relkind, k.reltuples
    FROM parts p JOIN pg_catalog.pg_class k ON k.oid = p.oid
    WHERE k.relkind NOT IN ('v', 'c')
)
SELECT r.i, r.oid::bigint AS oid, r.relkind,
       (SELECT sum(GREATEST(l.reltuples::bigint, pg_catalog.pg_stat_get_live_tuples(l.oid), 0))::bigint
        FROM leaves l WHERE l.i = r.i AND l.relkind IN ('r', 'm', 't')) AS rows,
       (SELECT sum(pg_catalog.pg_total_relation_size(l.oid))::bigint FROM leaves l WHERE l.i = r.i) AS bytes
FROM relations r
UNION ALL
SELECT w.i, n.oid::bigint, NULL,
       (SELECT sum(GREATEST(c.reltuples::bigint, pg_catalog.pg_stat_get_live_tuples(c.oid), 0))::bigint
        FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'm')),
       (SELECT sum(pg_catalog.pg_total_relation_size(c.oid))::bigint
        FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'm', 'f', 't'))
FROM wanted w JOIN pg_catalog.pg_namespace n ON n.nspname = w.name
WHERE w.what = 'schema'
"""
