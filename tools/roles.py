"""create_role: a least-privilege login role made with SQL (``server.computes.roles`` has the privileges and the rules).

Not offered in access mode read-only. In access mode branches a protected branch is refused (role changes there go
through migrate); in full the human confirms it. The password is returned once, only when the operator allows it
(``NEON_MCP_REVEAL_ROLE_PASSWORDS``) and the human accepts showing it, in a form asked before the role is made.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Elicit, ElicitationResult, Resolve
from mcp_types import CallToolResult, TextContent
from pydantic import Field

from server.computes import Privileges, RoleCreated
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
from server.state import Confirmed

from ._params import Branch, Database
from ._reveal import RevealAnswer, ask_reveal, revealed

__all__ = ["RoleResult", "register"]


class RoleResult(Confirmation, RoleCreated):
    """What create_role returns."""


Name = Annotated[str, Field(min_length=1, max_length=63, description="Name of the new login role.")]
Grant = Annotated[
    Privileges,
    Field(
        description="read: SELECT (and on tables created later); write: read + INSERT, UPDATE, DELETE; owner: write "
        "+ CREATE in the schemas and all privileges on their tables, for migrations."
    ),
]
Schemas = Annotated[
    list[str] | None,
    Field(description="Schemas it gets the privileges in (default: NEON_MCP_DEFAULT_SCHEMA, else public)."),
]


async def _ask_confirm(
    name: str, privileges: Privileges, schemas: list[str] | None, branch: str | None, database: str | None, ctx: Ctx
) -> Question:
    planning = neon_services(ctx).roles.plan(name, privileges, schemas=schemas, branch=branch, database=database)
    return await question(ctx, planning)


async def _ask_reveal(name: str, ctx: Ctx) -> Elicit[RevealAnswer] | NotAsked:
    """Ask the human whether the agent may see the new role's password (``tools._reveal``)."""
    return ask_reveal(
        ctx,
        allowed=neon_services(ctx).settings.reveal_role_passwords,
        question=f"create_role is about to create the role {name!r} with a generated password. Show that password "
        "to the agent, this once? It is stored nowhere else; without it, set a password yourself (ALTER ROLE … "
        "PASSWORD).",
    )


async def create_role(
    name: Name,
    privileges: Grant,
    ctx: Ctx,
    confirmation: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_ask_confirm)],
    reveal: Annotated[ElicitationResult[RevealAnswer], Resolve(_ask_reveal)],
    schemas: Schemas = None,
    branch: Branch = None,
    database: Database = None,
) -> Annotated[CallToolResult, RoleResult]:
    """Create a login role with exactly the privileges asked for (read, write or owner) on the given schemas,
    including tables created later. Made with SQL, so it is not a member of neon_superuser (roles made in Neon's
    console or API are). The password is generated; it is returned once only if the operator allows it and the user
    accepts, otherwise never."""
    roles = neon_services(ctx).roles
    plan = await roles.plan(name, privileges, schemas=schemas, branch=branch, database=database)
    show = revealed(reveal)

    async def apply(confirmed: Confirmed) -> CallToolResult:
        made = await roles.create(plan, confirmed, reveal=show)
        lines = [
            f"created login role {made.role} in database {made.database}"
            + (f" on branch {made.branch}" if made.branch else "")
            + f" with {made.privileges} privileges in schema(s) {', '.join(made.schemas)}",
            f"default privileges cover {made.future_tables}",
        ]
        if made.password is not None:
            lines.append(f"password (shown once): {made.password}")
        if made.note:
            lines.append(made.note)
        return CallToolResult(
            content=[TextContent(text="\n".join(lines))],
            structured_content={"status": "ok", **made.model_dump(mode="json", exclude_none=True)},
        )

    return await run_or_store(ctx, confirmation, tool="create_role", change=plan, apply=apply)


def register(tools: list[ToolSpec], offer: Offer) -> None:
    """Register create_role (not in access mode read-only)."""
    if not offer.writes:
        return
    add_tool(tools, create_role, title="Create a role", read_only=False, destructive=False, idempotent=False)
