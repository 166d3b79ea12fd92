"""Reading the schema from PostgreSQL's catalogs: an overview of relations, one table in detail, or relations whose
name contains a text.

A constant number of catalog queries whatever the number of tables (one for the overview or a search, six for a
table), every identifier bound as a parameter, all inside a read-only guarded transaction.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .places import Place

__all__ = ["Found", "Relation", "SchemaCatalog", "TableDetail", "split_name"]

_KINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}


@dataclass(frozen=True, slots=True)
class Relation:
    schema: str
    name: str
    kind: str
    rows: int | None
    bytes: int
    columns: int
    comment: str | None


@dataclass(frozen=True, slots=True)
class Found:
    """A relation a search found: its OID (stable while it exists, the same on branches copied from its own), schema,
    name, kind, estimated rows and comment."""

    oid: int
    schema: str
    name: str
    kind: str
    rows: int | None
    comment: str | None


class TableDetail(BaseModel):
    """One relation in detail, as describe_schema returns it (catalog rows as dicts)."""

    schema_: str = Field(alias="schema")
    name: str
    kind: str
    rows: int | None = Field(description="planner estimate; null when never analysed")
    bytes: int
    comment: str | None
    row_level_security: bool
    force_row_level_security: bool
    columns: list[dict[str, Any]]
    constraints: list[dict[str, Any]]
    referenced_by: list[dict[str, Any]]
    indexes: list[dict[str, Any]]
    triggers: list[dict[str, Any]]
    policies: list[dict[str, Any]]

    @property
    def schema_name(self) -> str:
        return self.schema_


def split_name(table: str, schema: str | None) -> tuple[str | None, str]:
    """``"auslex.users"`` → ``("auslex", "users")``; quoted parts keep their case; ``schema`` wins if given."""
    text = table.strip()
    if not text:
        raise InvalidInput("table is empty")
    parts: list[str] = []
    current, quoted, i = "", False, 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if quoted and i + 1 < len(text) and text[i + 1] == '"':
                current += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch if quoted else ch.lower()
        i += 1
    parts.append(current)
    if quoted or len(parts) > 2 or not all(parts):
        raise InvalidInput(f"cannot read table name {table!r}; use name or schema.name")
    if len(parts) == 2:
        if schema is not None and schema != parts[0]:
            raise InvalidInput(f"table {table!r} names schema {parts[0]!r} but schema={schema!r} was given")
        return parts[0], parts[1]
    return schema, parts[0]


def _close_matches(name: str, relations: list[tuple[str, str]], limit: int = 8) -> list[str]:
    """Relations whose name contains, is contained in, or looks like ``name`` (difflib ratio), best first."""
    lowered = name.lower()
    names = sorted({rel for _, rel in relations})
    similar = difflib.get_close_matches(lowered, names, n=limit, cutoff=0.6)
    contained = [rel for rel in names if lowered in rel.lower() or rel.lower() in lowered]
    ranked = list(dict.fromkeys(similar + sorted(contained, key=len)))[:limit]
    return [f"{schema}.{rel}" for rel in ranked for schema, other in relations if other == rel][:limit]


class SchemaCatalog:
    """Schema facts for ``describe_schema``."""

    async def overview(self, place: Place, *, schema: str | None) -> tuple[list[str], list[Relation]]:
        """Schemas (user schemas, or just ``schema``) and their relations, ordered by schema and name."""
        databases, database = place.databases, place.database
        schemas, rows = await databases.read_catalog(database, [(_SCHEMAS_SQL, (schema,)), (_OVERVIEW_SQL, (schema,))])
        if schema is not None and not schemas:
            known = await databases.read_catalog(database, [(_SCHEMAS_SQL, (None,))])
            names = ", ".join(r["name"] for r in known[0]) or "(none)"
            raise InvalidInput(f"schema {schema!r} does not exist; schemas: {names}")
        relations = [
            Relation(
                schema=r["schema"],
                name=r["name"],
                kind=_KINDS.get(r["kind"], r["kind"]),
                rows=None if r["rows"] < 0 else int(r["rows"]),
                bytes=int(r["bytes"]),
                columns=int(r["columns"]),
                comment=r["comment"],
            )
            for r in rows
        ]
        return [r["name"] for r in schemas], relations

    async def table(self, place: Place, *, table: str, schema: str | None) -> TableDetail:
        """One table, view or materialized view in detail; the error lists close matches when it is not found."""
        databases, database = place.databases, place.database
        schema_name, name = split_name(table, schema)
        (found,) = await databases.read_catalog(database, [(_FIND_SQL, (name, schema_name))])
        if not found:
            (every,) = await databases.read_catalog(database, [(_NAMES_SQL, ())])
            hint = ", ".join(_close_matches(name, [(r["schema"], r["name"]) for r in every]))
            where = f"{schema_name}.{name}" if schema_name else name
            raise InvalidInput(
                f"relation {where!r} not found" + (f"; close matches: {hint}" if hint else "; none with a close name")
            )
        if len(found) > 1:
            names = ", ".join(f"{r['schema']}.{r['name']}" for r in found)
            raise InvalidInput(f"{name!r} is ambiguous ({names}); pass it schema-qualified")
        return await self._detail(place, found[0])

    async def table_by_oid(self, place: Place, oid: int) -> TableDetail:
        """The table, view or materialized view with this OID in detail; ``InvalidInput`` when there is none."""
        (found,) = await place.databases.read_catalog(place.database, [(_BY_OID_SQL, (oid,))])
        if not found:
            raise InvalidInput(f"no table, view or materialized view has OID {oid} in database {place.database} now")
        return await self._detail(place, found[0])

    async def search(self, place: Place, text: str, *, limit: int = 20) -> list[Found]:
        """User relations whose ``schema.name`` contains ``text`` (case-insensitive), exact names first, at most
        ``limit``."""
        (rows,) = await place.databases.read_catalog(place.database, [(_SEARCH_SQL, (text, limit))])
        return [
            Found(
                oid=int(r["oid"]),
                schema=r["schema"],
                name=r["name"],
                kind=_KINDS.get(r["kind"], r["kind"]),
                rows=None if r["rows"] < 0 else int(r["rows"]),
                comment=r["comment"],
            )
            for r in rows
        ]

    async def _detail(self, place: Place, info: Any) -> TableDetail:
        databases, database = place.databases, place.database
        oid = info["oid"]
        columns, constraints, referenced, indexes, triggers, policies = await databases.read_catalog(
            database,
            [
                (_COLUMNS_SQL, (oid,)),
                (_CONSTRAINTS_SQL, (oid,)),
                (_REFERENCED_BY_SQL, (oid,)),
                (_INDEXES_SQL, (oid,)),
                (_TRIGGERS_SQL, (oid,)),
                (_POLICIES_SQL, (oid,)),
            ],
        )
        return TableDetail(
            schema=info["schema"],
            name=info["name"],
            kind=_KINDS.get(info["kind"], info["kind"]),
            rows=None if info["rows"] < 0 else int(info["rows"]),
            bytes=int(info["bytes"]),
            comment=info["comment"],
            row_level_security=info["rls"],
            force_row_level_security=info["force_rls"],
            columns=[dict(r) for r in columns],
            constraints=[dict(r) for r in constraints],
            referenced_by=[dict(r) for r in referenced],
            indexes=[dict(r) for r in indexes],
            triggers=[dict(r) for r in triggers],
            policies=[dict(r) for r in policies],
        )


_SCHEMAS_SQL = """
SELECT n.nspname AS name FROM pg_catalog.pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND ($1::text IS NULL OR n.nspname = $1)
ORDER BY 1
"""

_OVERVIEW_SQL = """
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.reltuples::bigint AS rows,
       CASE WHEN c.relkind IN ('r', 'm', 'p') THEN pg_catalog.pg_total_relation_size(c.oid) ELSE 0 END AS bytes,
       (SELECT count(*) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
       d.description AS comment
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_description d
       ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)' AND ($1::text IS NULL OR n.nspname = $1)
ORDER BY 1, 2
"""

_FIND_SQL = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.reltuples::bigint AS rows,
       pg_catalog.pg_total_relation_size(c.oid) AS bytes, c.relrowsecurity AS rls,
       c.relforcerowsecurity AS force_rls, pg_catalog.obj_description(c.oid, 'pg_class') AS comment
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND (($2::text IS NULL AND pg_catalog.pg_table_is_visible(c.oid)) OR n.nspname = $2)
"""

_BY_OID_SQL = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.reltuples::bigint AS rows,
       pg_catalog.pg_total_relation_size(c.oid) AS bytes, c.relrowsecurity AS rls,
       c.relforcerowsecurity AS force_rls, pg_catalog.obj_description(c.oid, 'pg_class') AS comment
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1::bigint::oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
"""

_SEARCH_SQL = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.reltuples::bigint AS rows,
       pg_catalog.obj_description(c.oid, 'pg_class') AS comment
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND pg_catalog.strpos(pg_catalog.lower(n.nspname || '.' || c.relname), pg_catalog.lower($1::text)) > 0
ORDER BY pg_catalog.lower(c.relname) = pg_catalog.lower($1::text) DESC, pg_catalog.length(c.relname), 2, 3
LIMIT $2::int
"""

_NAMES_SQL = """
SELECT n.nspname AS schema, c.relname AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
ORDER BY 1, 2 LIMIT 20000
"""

_COLUMNS_SQL = """
SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable,
       pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) AS default,
       CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END AS identity,
       CASE a.attgenerated WHEN 's' THEN 'stored' END AS generated,
       pg_catalog.col_description(a.attrelid, a.attnum) AS comment
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_CONSTRAINTS_SQL = """
SELECT con.conname AS name,
       CASE con.contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key' WHEN 'u' THEN 'unique'
            WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' ELSE con.contype::text END AS type,
       pg_catalog.pg_get_constraintdef(con.oid, true) AS definition, con.convalidated AS validated
FROM pg_catalog.pg_constraint con
WHERE con.conrelid = $1
ORDER BY CASE con.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'f' THEN 2 ELSE 3 END, con.conname
"""

_REFERENCED_BY_SQL = """
SELECT con.conrelid::regclass::text AS "table", con.conname AS name,
       pg_catalog.pg_get_constraintdef(con.oid, true) AS definition
FROM pg_catalog.pg_constraint con
WHERE con.confrelid = $1 AND con.contype = 'f'
ORDER BY 1, 2
"""

_INDEXES_SQL = """
SELECT ic.relname AS name, pg_catalog.pg_get_indexdef(i.indexrelid) AS definition,
       pg_catalog.pg_relation_size(i.indexrelid) AS bytes, i.indisvalid AS valid, i.indisprimary AS "primary",
       i.indisunique AS "unique", s.idx_scan AS scans
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_catalog.pg_stat_all_indexes s ON s.indexrelid = i.indexrelid
WHERE i.indrelid = $1
ORDER BY i.indisprimary DESC, ic.relname
"""

_TRIGGERS_SQL = """
SELECT t.tgname AS name, pg_catalog.pg_get_triggerdef(t.oid, true) AS definition,
       CASE t.tgenabled WHEN 'D' THEN false ELSE true END AS enabled
FROM pg_catalog.pg_trigger t
WHERE t.tgrelid = $1 AND NOT t.tgisinternal
ORDER BY t.tgname
"""

_POLICIES_SQL = """
SELECT p.polname AS name,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE'
            ELSE 'ALL' END AS command,
       p.polpermissive AS permissive,
       CASE WHEN p.polroles = '{0}' THEN ARRAY['public']
            ELSE ARRAY(SELECT rolname FROM pg_catalog.pg_roles WHERE oid = ANY(p.polroles) ORDER BY 1) END AS roles,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using,
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
FROM pg_catalog.pg_policy p
WHERE p.polrelid = $1
ORDER BY p.polname
"""
