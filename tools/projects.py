"""Project and organisation tools: list_organizations, list_projects, list_shared_projects, create_project and
delete_project.

The lists are read-only. create_project and delete_project are not offered in access mode read-only. create_project
returns no password unless the operator allows revealing passwords and the user accepts it in a form;
delete_project is always confirmed by the human and refused for the served project, for a project holding a
Neon-protected branch, and in access mode branches (``server.neon.projects`` has the rules).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from mcp.server.mcpserver import Elicit, ElicitationResult, Resolve
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from server.mcp import (
    ConfirmAnswer,
    Confirmation,
    Ctx,
    NotAsked,
    Offer,
    Question,
    ToolSpec,
    add_tool,
    neon_services,
    question,
    run_or_store,
)
from server.neon import OrganizationList, ProjectCreated, ProjectDeleted, ProjectList, SharedProjectList
from server.state import Confirmed

from ._reveal import RevealAnswer, ask_reveal, revealed

__all__ = ["ProjectDeleteResult", "register"]


class ProjectDeleteResult(Confirmation, ProjectDeleted):
    """What delete_project returns."""


Search = Annotated[str | None, Field(description="Only projects whose name or id contains this text (Neon's search).")]


def _result(model: BaseModel, lines: list[str]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(text="\n".join(lines))], structured_content=model.model_dump(mode="json")
    )


def _day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


# --- lists -----------------------------------------------------------------------------------------------------------


async def list_organizations(ctx: Ctx) -> Annotated[CallToolResult, OrganizationList]:
    """List the Neon organisations this API key's user belongs to: id, name, plan. Pass an id or a name as org to
    list_projects, or as org_id to create_project."""
    found = await neon_services(ctx).projects.organizations()
    lines = [f"{len(found.organizations)} organisation(s)"]
    lines += [f"  {o.name} ({o.id}) · plan {o.plan or '?'} · created {_day(o.created_at)}" for o in found.organizations]
    return _result(found, lines)


async def list_projects(
    ctx: Ctx,
    org: Annotated[
        str | None, Field(description="Only this organisation's projects, by id or name (default: every one).")
    ] = None,
    search: Search = None,
) -> Annotated[CallToolResult, ProjectList]:
    """List the Neon projects of the user's organisations (or one of them): id, name, organisation, region,
    PostgreSQL version, creation time. The project this server works on is marked with `*`."""
    found = await neon_services(ctx).projects.projects(org, search)
    head = f"{len(found.projects)} project(s)" + (f" matching {found.search!r}" if found.search else "")
    lines = [f"{head}; * marks the one this server serves"]
    for p in found.projects:
        mark = "*" if p.served else " "
        where = f"{p.org} ({p.org_id})" if p.org else (p.org_id or "personal")
        lines.append(
            f"{mark} {p.name} ({p.id}) · {where} · {p.region_id or '?'} · PG {p.pg_version or '?'} · "
            + _day(p.created_at)
        )
    if found.note:
        lines.append(f"note: {found.note}")
    return _result(found, lines)


async def list_shared_projects(ctx: Ctx, search: Search = None) -> Annotated[CallToolResult, SharedProjectList]:
    """List the projects other Neon accounts share with this one (not owned by the user's organisations)."""
    found = await neon_services(ctx).projects.shared(search)
    lines = [f"{len(found.projects)} project(s) shared with this account"]
    lines += [
        f"  {p.name} ({p.id}) · {p.region_id or '?'} · PG {p.pg_version or '?'} · {_day(p.created_at)}"
        for p in found.projects
    ]
    return _result(found, lines)


# --- create ----------------------------------------------------------------------------------------------------------


async def _ask_reveal(name: str, ctx: Ctx) -> Elicit[RevealAnswer] | NotAsked:
    """Ask the human whether the agent may see the new project's password (``tools._reveal``)."""
    return ask_reveal(
        ctx,
        allowed=neon_services(ctx).settings.reveal_passwords,
        question=f"create_project is about to create the Neon project {name!r}; its database role gets a generated "
        "password. Show that password to the agent (in the connection URIs), this once? Neon's console shows it "
        "to you either way.",
    )


async def create_project(
    name: Annotated[str, Field(min_length=1, max_length=256, description="Name of the new project.")],
    ctx: Ctx,
    reveal: Annotated[ElicitationResult[RevealAnswer], Resolve(_ask_reveal)],
    region: Annotated[
        str | None, Field(description="Neon region id, like aws-us-east-2 (default: Neon's default region).")
    ] = None,
    pg_version: Annotated[
        int | None, Field(ge=14, le=18, description="PostgreSQL major version (default: Neon's default, 17).")
    ] = None,
    org_id: Annotated[
        str | None, Field(description="Organisation to create it in, by id or name (list_organizations).")
    ] = None,
) -> Annotated[CallToolResult, ProjectCreated]:
    """Create a Neon project for a new application: its default branch is named after the production-branch setting
    and protected, with a database, its owner role and a read-write compute. Returns once it is ready, with its id,
    branches and connection URIs (pooled and direct); the password is redacted unless the operator allows revealing
    it and the user accepts."""
    created = await neon_services(ctx).projects.create(
        name, region=region, pg_version=pg_version, org=org_id, reveal=revealed(reveal)
    )
    lines = [
        f"created project {created.name} ({created.id}) · region {created.region_id or '?'} · "
        f"PG {created.pg_version or '?'}" + (f" · organisation {created.org_id}" if created.org_id else "")
    ]
    for b in created.branches:
        why = ", ".join(x for x in ("Neon marks it protected" if b.protected else "", b.protected_because or "") if x)
        lines.append(f"branch {b.name} ({b.id})" + (" · default" if b.default else "") + (f" · {why}" if why else ""))
    lines.append(f"compute {created.compute or '(none)'} · database {created.database} · role {created.role}")
    if created.pooled_connection_uri:
        lines.append(f"pooled: {created.pooled_connection_uri}")
    if created.connection_uri:
        lines.append(f"direct: {created.connection_uri}")
    lines.append(
        "this server's tools now work on it" if created.served else "this server keeps serving its current project"
    )
    lines += created.notes
    return _result(created, lines)


# --- delete ----------------------------------------------------------------------------------------------------------


async def _ask_delete(project: str, ctx: Ctx) -> Question:
    return await question(ctx, neon_services(ctx).projects.plan_delete(project))


async def delete_project(
    project: Annotated[str, Field(min_length=1, description="The project to delete, by name or id.")],
    ctx: Ctx,
    confirmation: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_ask_delete)],
) -> Annotated[CallToolResult, ProjectDeleteResult]:
    """Delete a Neon project with all its branches, computes, databases and data, after the human confirms what goes
    and whether it can be undone (on Neon: recoverable for 7 days; on local Neon: never).

    Refused for the project this server serves (unless the operator allows it), for a project holding a branch Neon
    marks protected (unprotect it first: the refusal says how), and in access mode branches."""
    service = neon_services(ctx).projects
    change = await service.plan_delete(project)

    async def apply(confirmed: Confirmed) -> CallToolResult:
        done = await service.delete(change, confirmed)
        lines = [
            f"deleted project {done.project} ({done.project_id}) with {len(done.branches)} branch(es) and "
            f"{done.computes} compute(s)",
            done.undo,
            *done.notes,
        ]
        return CallToolResult(
            content=[TextContent(text="\n".join(lines))],
            structured_content={"status": "ok", **done.model_dump(mode="json", exclude_none=True)},
        )

    return await run_or_store(ctx, confirmation, tool="delete_project", change=change, apply=apply)


def register(tools: list[ToolSpec], offer: Offer) -> None:
    """Register the lists (read-only), and create_project and delete_project unless in access mode read-only."""
    for fn, title in (
        (list_organizations, "List organisations"),
        (list_projects, "List Neon projects"),
        (list_shared_projects, "List projects shared with you"),
    ):
        add_tool(tools, fn, title=title, read_only=True, destructive=False, idempotent=True)
    if not offer.writes:
        return
    add_tool(tools, create_project, title="Create a project", read_only=False, destructive=False, idempotent=False)
    add_tool(tools, delete_project, title="Delete a project", read_only=False, destructive=True, idempotent=True)
