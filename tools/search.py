"""search and fetch: the two tools connector clients call (OpenAI's MCP contract for ChatGPT connectors and deep
research).

``search(query)`` answers ``{"results": [{"id", "title", "url", "text"}]}`` and ``fetch(id)`` answers
``{"id", "title", "text", "url", "metadata"}``, each as the structured content and as one text item holding the same
JSON (clients of the contract read either). What they cover and what a search costs is in ``server.neon.search``.
Table names, comments and everything else the database wrote are fenced inside the JSON's strings, like every other
database text a model reads.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from server.mcp import Ctx, Offer, ToolSpec, add_tool, fence, neon_services
from server.neon import BranchHit, ProjectHit, SearchHits, TableHit, parse_ref

from .neon_info import branch_lines, project_lines, tree_lines
from .schema import table_text

__all__ = ["Document", "SearchResults", "register"]

Metadata = dict[str, str | int | bool | None]


class SearchResult(BaseModel):
    id: str = Field(description="pass to fetch")
    title: str
    url: str
    text: str | None = Field(default=None, description="a short description")


class SearchResults(BaseModel):
    results: list[SearchResult]
    notes: list[str] = Field(default_factory=list, description="what could not be searched, and why")


class Document(BaseModel):
    id: str
    title: str
    text: str
    url: str
    metadata: Metadata = Field(default_factory=dict)


def _answer(model: BaseModel) -> CallToolResult:
    """The contract's answer: the JSON as structured content and as the one text item."""
    data = model.model_dump(mode="json", exclude_defaults=False)
    return CallToolResult(content=[TextContent(text=json.dumps(data, ensure_ascii=False))], structured_content=data)


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d") if moment else "?"


def _project_result(hit: ProjectHit) -> SearchResult:
    p = hit.project
    facts = [f"project {p.name} ({p.id})", f"region {p.region_id or '?'}", f"PG {p.pg_version or '?'}"]
    facts.append(f"created {_day(p.created_at)}")
    if hit.served:
        facts.append("served by this server")
    return SearchResult(id=f"project:{p.id}", title=p.name, url=hit.url, text=" · ".join(facts))


def _branch_result(hit: BranchHit) -> SearchResult:
    p, b = hit.project, hit.branch
    facts = [f"branch {b.name} ({b.id}) of project {p.name} ({p.id})"]
    if b.default:
        facts.append("default")
    if hit.protected_because:
        facts.append(f"protected: {hit.protected_because}")
    facts.append(f"created {_day(b.created_at)}")
    return SearchResult(id=f"branch:{p.id}/{b.id}", title=f"{b.name} ({p.name})", url=hit.url, text=" · ".join(facts))


def _table_result(hit: TableHit) -> SearchResult:
    t = hit.table
    rows = "?" if t.rows is None else f"≈{t.rows}"
    described = f"{t.kind} {t.schema}.{t.name} in database {hit.database}, {rows} rows"
    if t.comment:
        described += f"; comment: {' '.join(t.comment.split())}"
    return SearchResult(
        id=f"table:{hit.project.id}/{hit.branch.id}/{t.oid}",
        title=fence(f"{t.schema}.{t.name}"),
        url=hit.url,
        text=f"on branch {hit.branch.name} of project {hit.project.name}\n" + fence(described),
    )


async def search(
    query: Annotated[str, Field(max_length=200, description="Text to look for in names (and ids); empty: all.")],
    ctx: Ctx,
) -> Annotated[CallToolResult, SearchResults]:
    """Search Neon by name: projects of every organisation of the user, the branches of the project this server
    serves, and the tables, views and materialized views of its default database on its default branch (other
    projects' branches and tables are not searched: fetch a project to see its branches). Ids: project:<id>,
    branch:<project id>/<branch id>, table:<project id>/<branch id>/<oid>; pass one to fetch. A fixed number of API
    requests, however many projects there are."""
    hits: SearchHits = await neon_services(ctx).finder.search(query)
    results = [_project_result(h) for h in hits.projects]
    results += [_branch_result(h) for h in hits.branches]
    results += [_table_result(h) for h in hits.tables]
    return _answer(SearchResults(results=results, notes=hits.skipped))


async def fetch(
    id: Annotated[str, Field(min_length=1, description="An id from search: project:…, branch:…/… or table:…/…/….")],
    ctx: Ctx,
) -> Annotated[CallToolResult, Document]:
    """Fetch what a search result stands for, in full: a project (settings, branch tree), a branch (computes,
    databases, roles), or a table (columns, constraints, indexes, triggers, policies)."""
    finder = neon_services(ctx).finder
    ref = parse_ref(id)
    metadata: Metadata
    if ref.kind == "project":
        project, tree, url = await finder.project(ref)
        text = "\n".join(project_lines(project) + tree_lines(tree))
        metadata = {
            "kind": "project",
            "project_id": project.id,
            "region_id": project.region_id,
            "pg_version": project.pg_version,
            "branches": project.branches,
            "computes": project.computes,
            "served": project.served,
        }
        return _answer(Document(id=id, title=project.name, text=text, url=url, metadata=metadata))
    if ref.kind == "branch":
        branch, owner, url = await finder.branch(ref)
        metadata = {
            "kind": "branch",
            "project_id": owner.id,
            "branch_id": branch.id,
            "default": branch.default,
            "protected": branch.protected,
        }
        title = f"{branch.name} ({owner.name})"
        return _answer(Document(id=id, title=title, text="\n".join(branch_lines(branch)), url=url, metadata=metadata))
    table = await finder.table(ref)
    d = table.detail
    text = f"on branch {table.branch.name} of project {table.project.name}\n" + fence(
        f"database {table.database}\n" + table_text(d)
    )
    metadata = {"kind": "table", "project_id": table.project.id, "branch_id": table.branch.id, "oid": ref.oid}
    return _answer(
        Document(id=id, title=fence(f"{d.schema_name}.{d.name}"), text=text, url=table.url, metadata=metadata)
    )


def register(tools: list[ToolSpec], offer: Offer) -> None:
    """Register search and fetch (read-only; with Neon)."""
    add_tool(tools, search, title="Search Neon", read_only=True, destructive=False, idempotent=True)
    add_tool(tools, fetch, title="Fetch a search result", read_only=True, destructive=False, idempotent=True)
