"""describe_schema: what the database holds, as an overview or one table in detail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field, WithJsonSchema

from server.mcp import Ctx, Offer, ToolSpec, add_tool, fence, services
from server.sql import TableDetail

from ._params import Branch, Database

if TYPE_CHECKING:
    from server.sql import Relation

__all__ = ["register", "table_text"]


_ARRAY_OF_ARRAYS = {"type": "array", "description": "arrays of values"}
"""Declared without per-item schemas: validating thousands of items costs a client more than it tells it."""

RELATION_FIELDS = ["schema", "name", "kind", "rows", "bytes", "columns", "comment"]


class SchemaOverview(BaseModel):
    database: str
    branch: str | None = None
    schemas: list[str]
    fields: list[str] = Field(
        default=RELATION_FIELDS,
        description="the order of values in each relation: rows is the planner's estimate (null if never analysed), "
        "bytes the total size with indexes and TOAST",
    )
    relations: Annotated[list[list[Any]], WithJsonSchema(_ARRAY_OF_ARRAYS)] = Field(
        description="one array per relation, values in `fields` order"
    )
    truncated: bool = False


class TableDescription(TableDetail):
    database: str


class SchemaResult(BaseModel):
    overview: SchemaOverview | None = None
    table: TableDescription | None = None


def _size(num: int) -> str:
    value = float(num)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _one_line(text: str | None) -> str:
    return " ".join(text.split()) if text else ""


def _overview_text(database: str, schemas: list[str], relations: list[Relation], budget: int) -> tuple[str, int]:
    lines: list[str] = []
    used = 0
    shown = 0
    by_schema: dict[str, list[Relation]] = {name: [] for name in schemas}
    for relation in relations:
        by_schema.setdefault(relation.schema, []).append(relation)
    for schema, items in by_schema.items():
        header = f"schema {schema}" + ("" if items else " (empty)")
        lines.append(header)
        if items:
            lines.append("  name\tkind\trows≈\tsize\tcols\tcomment")
        for r in items:
            rows = "?" if r.rows is None else str(r.rows)
            line = f"  {r.name}\t{r.kind}\t{rows}\t{_size(r.bytes)}\t{r.columns}\t{_one_line(r.comment)}".rstrip()
            used += len(line) + 1
            if used > budget:
                return "\n".join(lines), shown
            lines.append(line)
            shown += 1
    return "\n".join(lines), shown


def table_text(t: TableDetail) -> str:
    rows = "?" if t.rows is None else f"≈{t.rows}"
    lines = [f"{t.kind} {t.schema_name}.{t.name}: {rows} rows, {_size(t.bytes)}"]
    if t.comment:
        lines.append(f"comment: {_one_line(t.comment)}")
    lines.append("columns:")
    for c in t.columns:
        parts = [f"  {c['name']} {c['type']}", "" if c["nullable"] else "NOT NULL"]
        if c["default"]:
            parts.append(f"DEFAULT {c['default']}")
        if c["identity"]:
            parts.append(f"GENERATED {c['identity'].upper()} AS IDENTITY")
        if c["generated"]:
            parts.append("GENERATED (stored)")
        if c["comment"]:
            parts.append(f"-- {_one_line(c['comment'])}")
        lines.append(" ".join(p for p in parts if p))
    if t.constraints:
        lines.append("constraints:")
        lines += [
            f"  {c['name']}: {c['definition']}" + ("" if c["validated"] else " (NOT VALID)") for c in t.constraints
        ]
    if t.referenced_by:
        lines.append("referenced by:")
        lines += [f"  {r['table']}.{r['name']}: {r['definition']}" for r in t.referenced_by]
    if t.indexes:
        lines.append("indexes:")
        for i in t.indexes:
            flags = "" if i["valid"] else " INVALID"
            scans = "?" if i["scans"] is None else i["scans"]
            lines.append(f"  {i['definition']} — {_size(i['bytes'])}, {scans} scans{flags}")
    if t.triggers:
        lines.append("triggers:")
        lines += [f"  {g['definition']}" + ("" if g["enabled"] else " (disabled)") for g in t.triggers]
    rls = "on" if t.row_level_security else "off"
    if t.force_row_level_security:
        rls += " (forced for the owner too)"
    lines.append(f"row-level security: {rls}")
    for p in t.policies:
        kind = "permissive" if p["permissive"] else "restrictive"
        lines.append(
            f"  policy {p['name']} ({kind}) FOR {p['command']} TO {', '.join(p['roles'])}"
            + (f" USING ({p['using']})" if p["using"] else "")
            + (f" WITH CHECK ({p['with_check']})" if p["with_check"] else "")
        )
    return "\n".join(lines)


async def describe_schema(
    ctx: Ctx,
    schema: Annotated[str | None, Field(description="Only this schema (overview), or the table's schema.")] = None,
    table: Annotated[
        str | None, Field(description="A table, view or materialized view to describe in detail (name or schema.name).")
    ] = None,
    database: Database = None,
    branch: Branch = None,
) -> Annotated[CallToolResult, SchemaResult]:
    """Describe the database schema.

    Without `table`: every user schema with its tables, views and materialized views (estimated rows, total size,
    column count, comment). With `table`: its columns (type, nullability, default, identity/generated), primary,
    foreign, unique and check constraints, foreign keys pointing at it, indexes (definition, size, validity, scans),
    triggers, row-level security and policies, comment.
    """
    found = services(ctx)
    place = await found.places.place(branch, database)
    name = place.database
    where = {"database": name} | ({"branch": place.branch_name} if place.branch_name else {})
    if table is not None:
        detail = await found.schema.table(place, table=table, schema=schema)
        structured = {"table": {**where, **detail.model_dump(mode="json", by_alias=True)}}
        text = f"{place.label}\n" + fence(table_text(detail))
    else:
        schemas, relations = await found.schema.overview(place, schema=schema)
        body, shown = _overview_text(name, schemas, relations, found.settings.max_bytes)
        truncated = shown < len(relations)
        overview = {
            **where,
            "schemas": schemas,
            "fields": RELATION_FIELDS,
            "relations": [[r.schema, r.name, r.kind, r.rows, r.bytes, r.columns, r.comment] for r in relations[:shown]],
            "truncated": truncated,
        }
        text = (
            f"{place.label}: {len(schemas)} schema(s), {len(relations)} relation(s); "
            "rows are planner estimates, sizes include indexes and TOAST\n" + fence(body)
        )
        if truncated:
            text += f"\ntruncated: {len(relations) - shown} more relations; pass schema= to narrow, or table= for one"
        structured = {"overview": overview}
    return CallToolResult(content=[TextContent(text=text)], structured_content=structured)


def register(tools: list[ToolSpec], offer: Offer) -> None:
    add_tool(tools, describe_schema, title="Describe the schema", read_only=True, destructive=False, idempotent=True)
