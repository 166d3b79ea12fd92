"""Neon information tools: describe_project, list_branches, describe_branch, get_connection_string, compare_schemas.

All read-only. Each calls one method of ``NeonViews`` and renders its model as compact text (``fetch`` renders a
project and a branch the same way); the model itself is the structured content. Names of databases and roles, and
schema diffs, come from the database and are fenced.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from server.mcp import Ctx, Offer, ToolSpec, add_tool, fence, neon_services
from server.neon import (
    BranchDescription,
    BranchList,
    BranchSummary,
    ConnectionString,
    ProjectDescription,
    SchemaComparison,
)

from ._params import Branch, Database

__all__ = ["Project", "branch_lines", "project_lines", "register", "tree_lines"]

Project = Annotated[
    str | None, Field(description="Neon project, by id or name (default: NEON_PROJECT_ID, else the only project).")
]


def _result(model: BaseModel, lines: list[str]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(text="\n".join(lines))], structured_content=model.model_dump(mode="json")
    )


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"


def _suspend(seconds: int) -> str:
    """Neon's ``suspend_timeout_seconds``: -1 never, 0 the default (five minutes on Neon)."""
    if seconds < 0:
        return "never suspends"
    return "suspends after the default idle time" if seconds == 0 else f"suspends after {seconds} s idle"


def _branch_facts(b: BranchSummary) -> list[str]:
    facts = [b.id]
    if b.default:
        facts.append("default")
    if b.protected_because:
        facts.append(f"protected: {b.protected_because}")
    facts.append(f"compute {b.compute}" if b.compute else "no compute")
    if b.read_only_computes:
        facts.append(f"+{b.read_only_computes} read-only")
    if b.logical_size is not None:
        facts.append(_mb(b.logical_size))
    facts.append(f"created {_day(b.created_at)}")
    if b.expires_at:
        facts.append(f"expires {_day(b.expires_at)}")
    return facts


def project_lines(p: ProjectDescription) -> list[str]:
    """A project described in a few lines."""
    retention = "?" if p.history_retention_seconds is None else f"{p.history_retention_seconds / 3600:g} h"
    production = p.production_branch + ("" if p.production_branch_exists else " (no branch has this name)")
    return [
        f"project {p.name} ({p.id})" + (" · served by this server" if p.served else ""),
        f"region {p.region_id or '?'} · PG {p.pg_version or '?'} · created {_day(p.created_at)}",
        f"history retention {retention}",
        f"default branch {p.default_branch or '(none)'}" + (f" ({p.default_branch_id})" if p.default_branch_id else ""),
        f"production branch {production}",
        f"{p.branches} branch(es), {p.computes} compute(s)",
    ]


def tree_lines(found: BranchList) -> list[str]:
    """A project's branches as an indented tree, one line each."""
    lines = [f"{len(found.branches)} branch(es) in project {found.project_id}"]
    return lines + ["  " * b.depth + f"{b.name} · " + " · ".join(_branch_facts(b)) for b in found.branches]


def branch_lines(b: BranchDescription) -> list[str]:
    """One branch described: its facts, computes, and its databases and roles (fenced: the database names them)."""
    lines = [f"branch {b.name} · " + " · ".join(_branch_facts(b))]
    origin = f"parent {b.parent} ({b.parent_id})" if b.parent_id else "no parent (a root branch)"
    if b.parent_timestamp or b.parent_lsn:
        origin += f" at {_day(b.parent_timestamp) if b.parent_timestamp else ''} {b.parent_lsn or ''}".rstrip()
    lines += [origin, f"state {b.current_state or '?'}", "children: " + (", ".join(b.children) or "(none)")]
    lines.append("computes:" if b.endpoints else "computes: (none)")
    for e in b.endpoints:
        parts = [f"  {e.id} {e.type} {e.state}" + (f" → {e.pending_state}" if e.pending_state else ""), e.host]
        if e.autoscaling_limit_min_cu is not None:
            parts.append(f"{e.autoscaling_limit_min_cu:g}–{e.autoscaling_limit_max_cu or 0:g} CU")
        if e.suspend_timeout_seconds is not None:
            parts.append(_suspend(e.suspend_timeout_seconds))
        if e.disabled:
            parts.append("disabled")
        lines.append(" · ".join(parts))
    names = ["databases (owner):"] + [f"  {d.name} ({d.owner})" for d in b.databases]
    names += ["roles:"] + [f"  {r.name}" + (" (protected)" if r.protected else "") for r in b.roles]
    lines.append(fence("\n".join(names)))
    return lines


async def describe_project(ctx: Ctx, project: Project = None) -> Annotated[CallToolResult, ProjectDescription]:
    """Describe a Neon project: region, PostgreSQL version, history retention (how far back branches and time-travel
    reads can go), its default branch, the production branch (and whether it exists), branch and compute counts."""
    p = await neon_services(ctx).views.project(project)
    return _result(p, project_lines(p))


async def list_branches(ctx: Ctx, project: Project = None) -> Annotated[CallToolResult, BranchList]:
    """List the project's branches as a tree (children under their parent): id, default, protection and why,
    compute state, logical size, creation and expiry times."""
    found = await neon_services(ctx).views.branches(project)
    return _result(found, tree_lines(found))


async def describe_branch(
    ctx: Ctx, branch: Annotated[str, Field(description="The branch, by name or id.")]
) -> Annotated[CallToolResult, BranchDescription]:
    """Describe one branch: its parent and children, protection and why, state, size, computes (type, state, host,
    autoscaling, suspend timeout), databases with their owners, and roles (never passwords)."""
    b = await neon_services(ctx).views.branch(branch)
    return _result(b, branch_lines(b))


async def get_connection_string(
    ctx: Ctx,
    branch: Branch = None,
    database: Database = None,
    role: Annotated[str | None, Field(description="Role to connect as (default: NEON_ROLE, else the owner).")] = None,
    pooled: Annotated[
        bool, Field(description="Through Neon's connection pooler (PgBouncer, transaction mode); false: direct.")
    ] = True,
) -> Annotated[CallToolResult, ConnectionString]:
    """Get a PostgreSQL connection URI for a branch's read-write compute, with advice on pooled versus direct.

    The password is redacted unless the operator allowed revealing it.
    """
    c = await neon_services(ctx).views.connection_string(branch, database, role, pooled=pooled)
    lines = [
        c.uri,
        f"branch {c.branch} ({c.branch_id}) · database {c.database} · role {c.role} · host {c.host} · "
        + ("pooled" if c.pooled else "direct"),
        c.advice,
    ]
    if c.protected_because:
        lines.append(f"this server protects the branch: {c.protected_because}")
    if c.password_note:
        lines.append(c.password_note)
    return _result(c, lines)


async def compare_schemas(
    ctx: Ctx,
    branch: Annotated[str, Field(description="The branch whose schema to compare, by name or id.")],
    base_branch: Annotated[
        str | None, Field(description="Branch to compare with, by name or id (default: the branch's parent).")
    ] = None,
    database: Database = None,
) -> Annotated[CallToolResult, SchemaComparison]:
    """Compare a database's schema between two branches: a unified diff (Neon's) from the base branch's schema to the
    branch's, e.g. to review a migration made on a child branch before applying it to its parent."""
    c = await neon_services(ctx).views.compare_schemas(branch, base_branch, database)
    where = f"schema of database {c.database}: {c.base_branch} → {c.branch}"
    if c.identical:
        return _result(c, [f"{where}: no differences"])
    lines = [f"{where}: +{c.added} −{c.removed} lines", fence(c.diff.rstrip("\n"))]
    if c.truncated:
        lines.append(f"truncated: {c.omitted_bytes} more bytes of diff not shown (the server's max_bytes)")
    return _result(c, lines)


def register(tools: list[ToolSpec], offer: Offer) -> None:
    """Register the Neon information tools (all read-only, idempotent, closed-world)."""
    for fn, title in (
        (describe_project, "Describe a Neon project"),
        (list_branches, "List branches"),
        (describe_branch, "Describe a branch"),
        (get_connection_string, "Get a connection string"),
        (compare_schemas, "Compare schemas between branches"),
    ):
        add_tool(tools, fn, title=title, read_only=True, destructive=False, idempotent=True, open_world=False)
