"""Branch tools: create_branch, delete_branch, reset_branch and restore_branch.

Not offered in access mode read-only. create_branch runs from any parent (it only reads it); the other three are
always confirmed by the human, refuse protected branches in access mode branches, and on a protected branch in
access mode full keep its previous state as an expiring backup branch (``server.neon.branches`` has the rules).
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import ElicitationResult, Resolve
from mcp_types import CallToolResult, TextContent
from pydantic import Field

from server.mcp import (
    ConfirmAnswer,
    Confirmation,
    Ctx,
    Offer,
    Question,
    ToolSpec,
    add_tool,
    neon_services,
    question,
    run_or_store,
)
from server.neon import BranchChange, BranchChanged, BranchCreated
from server.state import Confirmed

__all__ = ["BranchChangeResult", "register"]


class BranchChangeResult(Confirmation, BranchChanged):
    """What delete_branch, reset_branch and restore_branch return."""


TheBranch = Annotated[str, Field(min_length=1, description="The branch to change, by name or id.")]
PreserveUnderName = Annotated[
    str | None,
    Field(
        description="Keep the branch's current state as a new branch of this name. Default: kept as "
        "<branch>_old_<UTC time> when Neon requires it (the branch has children, or is restored onto its own past), "
        "as an expiring backup/<branch>/<UTC time> on a protected branch, otherwise not kept."
    ),
]


# --- create ----------------------------------------------------------------------------------------------------------


async def create_branch(
    name: Annotated[str, Field(min_length=1, max_length=256, description="Name of the new branch.")],
    ctx: Ctx,
    parent: Annotated[
        str | None,
        Field(description="Branch to copy, by name or id (default: NEON_BRANCH, else the project's default branch)."),
    ] = None,
    at_time: Annotated[
        str | None, Field(description="Copy the parent as it was at this ISO 8601 time (2026-11-26T09:30:00Z).")
    ] = None,
    at_lsn: Annotated[str | None, Field(description="Copy the parent as it was at this LSN (0/1A2B3C).")] = None,
    expires_in: Annotated[
        str | int | None,
        Field(description="Neon deletes the branch after this long: 30m, 2h, 7d, or seconds (at most 30 days)."),
    ] = None,
    with_compute: Annotated[
        bool, Field(description="Give it a read-write compute (needed to query it; without one it costs less).")
    ] = True,
) -> Annotated[CallToolResult, BranchCreated]:
    """Create a Neon branch: a copy-on-write copy of a parent branch, now or as of a past moment.

    Use it to try changes safely: run writes and migrations on the new branch (branch=<name> on the SQL tools),
    never on production. Returns once the branch is ready and a connection to it has run SELECT 1. If anything fails
    after Neon made the branch, it is deleted again.
    """
    created = await neon_services(ctx).branches.create(
        name, parent=parent, at_time=at_time, at_lsn=at_lsn, expires_in=expires_in, with_compute=with_compute
    )
    start = ""
    if at_time is not None:
        start = f" as of {created.parent_timestamp.isoformat() if created.parent_timestamp else at_time}"
    elif at_lsn is not None:
        start = f" at LSN {created.parent_lsn or at_lsn}"
    lines = [f"created branch {created.branch} ({created.branch_id}) from {created.parent}{start}"]
    if created.connectable:
        lines.append(f"ready: compute {created.compute} answered SELECT 1 on database {created.database}")
    else:
        lines.append("no compute: it cannot be queried until one is added")
    if created.expires_at is not None:
        lines.append(f"expires at {created.expires_at.isoformat()} (Neon deletes it then)")
    lines.append(f'use branch="{created.branch}" with run_sql to work on it')
    return CallToolResult(
        content=[TextContent(text="\n".join(lines))], structured_content=created.model_dump(mode="json")
    )


# --- delete, reset, restore ------------------------------------------------------------------------------------------


async def _ask_delete(branch: str, ctx: Ctx) -> Question:
    return await question(ctx, neon_services(ctx).branches.plan_delete(branch))


async def _ask_reset(branch: str, preserve_under_name: str | None, ctx: Ctx) -> Question:
    return await question(ctx, neon_services(ctx).branches.plan_reset(branch, preserve_under_name=preserve_under_name))


async def _ask_restore(
    branch: str,
    from_branch: str | None,
    to_time: str | None,
    to_lsn: str | None,
    preserve_under_name: str | None,
    ctx: Ctx,
) -> Question:
    planning = neon_services(ctx).branches.plan_restore(
        branch, from_branch=from_branch, to_time=to_time, to_lsn=to_lsn, preserve_under_name=preserve_under_name
    )
    return await question(ctx, planning)


async def delete_branch(
    branch: TheBranch,
    ctx: Ctx,
    confirmation: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_ask_delete)],
) -> Annotated[CallToolResult, BranchChangeResult]:
    """Delete a Neon branch with its data and computes, after the human confirms.

    Neon does not delete the default branch, a root branch or a branch with child branches (delete those first).
    Protected branches are refused in the default access mode; in access mode full a protected branch is kept as an
    expiring backup branch instead of being removed at once.
    """
    change = await neon_services(ctx).branches.plan_delete(branch)
    return await _change(ctx, confirmation, "delete_branch", change)


async def reset_branch(
    branch: TheBranch,
    ctx: Ctx,
    confirmation: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_ask_reset)],
    preserve_under_name: PreserveUnderName = None,
) -> Annotated[CallToolResult, BranchChangeResult]:
    """Reset a branch to its parent's current state, discarding its own changes, after the human confirms.

    Use it to refresh a work branch with production's latest data. Its computes restart (same connection strings).
    Protected branches are refused in the default access mode.
    """
    change = await neon_services(ctx).branches.plan_reset(branch, preserve_under_name=preserve_under_name)
    return await _change(ctx, confirmation, "reset_branch", change)


async def restore_branch(
    branch: TheBranch,
    ctx: Ctx,
    confirmation: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_ask_restore)],
    to_time: Annotated[
        str | None, Field(description="Restore the data as it was at this ISO 8601 time (2026-11-26T09:30:00Z).")
    ] = None,
    to_lsn: Annotated[str | None, Field(description="Restore the data as it was at this LSN (0/1A2B3C).")] = None,
    from_branch: Annotated[
        str | None,
        Field(description="Take the data from this branch (name or id): its current state, or with to_time/to_lsn."),
    ] = None,
    preserve_under_name: PreserveUnderName = None,
) -> Annotated[CallToolResult, BranchChangeResult]:
    """Restore a branch's data to a past moment (point-in-time recovery) or from another branch, after the human
    confirms.

    Pass to_time or to_lsn to go back in the branch's own history (within the project's history window), from_branch
    to copy another branch (e.g. a backup branch) at its head, or from_branch with to_time/to_lsn. Its computes
    restart (same connection strings). Protected branches are refused in the default access mode.
    """
    change = await neon_services(ctx).branches.plan_restore(
        branch, from_branch=from_branch, to_time=to_time, to_lsn=to_lsn, preserve_under_name=preserve_under_name
    )
    return await _change(ctx, confirmation, "restore_branch", change)


async def _change(
    ctx: Ctx, confirmation: ElicitationResult[ConfirmAnswer], tool: str, change: BranchChange
) -> CallToolResult:
    service = neon_services(ctx).branches

    async def apply(confirmed: Confirmed) -> CallToolResult:
        return _changed(await service.apply(change, confirmed))

    return await run_or_store(ctx, confirmation, tool=tool, change=change, apply=apply)


def _changed(result: BranchChanged) -> CallToolResult:
    where = f"branch {result.branch} ({result.branch_id})"
    if result.action == "delete":
        if result.backup_branch is not None:
            lines = [
                f"{where} is protected, so it was renamed to backup branch {result.backup_branch}, which Neon "
                f"deletes at {_when(result)} (create_branch parent={result.backup_branch} brings its data back)"
            ]
        else:
            lines = [f"deleted {where}"]
    else:
        if result.source_timestamp is not None:
            point = f" as of {result.source_timestamp.isoformat()}"
        elif result.source_lsn is not None:
            point = f" at LSN {result.source_lsn}"
        else:
            point = ""
        origin = "its own history" if result.source_branch_id == result.branch_id else result.source_branch
        verb = "reset" if result.action == "reset" else "restored"
        lines = [f"{verb} {where} from {origin}{point}; its computes run on the new data"]
    lines += result.notes
    return CallToolResult(
        content=[TextContent(text="\n".join(lines))],
        structured_content={"status": "ok", **result.model_dump(mode="json", exclude_none=True)},
    )


def _when(result: BranchChanged) -> str:
    return result.backup_expires_at.isoformat(timespec="seconds") if result.backup_expires_at else "its expiry"


def register(tools: list[ToolSpec], offer: Offer) -> None:
    """Register the branch tools (none in access mode read-only)."""
    if not offer.writes:
        return
    add_tool(tools, create_branch, title="Create a branch", read_only=False, destructive=False, idempotent=False)
    add_tool(tools, delete_branch, title="Delete a branch", read_only=False, destructive=True, idempotent=True)
    add_tool(
        tools, reset_branch, title="Reset a branch to its parent", read_only=False, destructive=True, idempotent=False
    )
    add_tool(tools, restore_branch, title="Restore a branch", read_only=False, destructive=True, idempotent=False)
