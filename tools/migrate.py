"""migrate: change a branch's schema safely — plan (tested on a branch, linted), apply (exactly as tested), history.

Offered with Neon only (every migration is tested on a branch first). ``apply`` is confirmed by the human when the
target branch is protected or a statement is destructive, and takes a backup branch of a protected target first.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import ElicitationResult, Resolve
from mcp_types import CallToolResult, TextContent
from pydantic import Field

from server.errors import InvalidInput
from server.mcp import (
    ConfirmAnswer,
    Confirmation,
    Ctx,
    NotAsked,
    Offer,
    Question,
    ToolSpec,
    add_tool,
    fence,
    neon_services,
    question,
    run_or_store,
)
from server.migrate import AppliedMigration, MigrationReport
from server.state import Confirmed

from ._params import Branch, Database

__all__ = ["MigrateResult", "register"]

Action = Literal["plan", "apply", "discard", "history"]


class MigrateResult(Confirmation):
    """What migrate returns; which sections are present depends on the action."""

    action: Action
    migration_id: str | None = None
    plan: MigrationReport | None = None
    applied: AppliedMigration | None = None
    history: list[dict[str, Any]] | None = None
    message: str | None = None


async def _confirm_apply(action: str, migration_id: str | None, ctx: Ctx) -> Question:
    if action != "apply" or not migration_id:
        return NotAsked("not-needed")
    return await question(ctx, neon_services(ctx).migrations.plan_apply(migration_id))


async def migrate(
    action: Annotated[
        Action,
        Field(
            description="plan: test a script on a short-lived branch and lint it; apply: run a planned migration on "
            "its target; discard: drop a plan; history: migrations applied to a branch."
        ),
    ],
    ctx: Ctx,
    confirmation: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_confirm_apply)],
    sql: Annotated[
        str | None,
        Field(description="plan: the whole migration script (several statements; function bodies may contain ;)."),
    ] = None,
    migration_id: Annotated[str | None, Field(description="apply / discard: the id migrate plan returned.")] = None,
    branch: Branch = None,
    database: Database = None,
    version: Annotated[
        str | None, Field(description="plan: the migration's version (default: the UTC time, YYYYMMDDHHMMSS).")
    ] = None,
    description: Annotated[str | None, Field(description="plan: what the migration does, for the history.")] = None,
) -> Annotated[CallToolResult, MigrateResult]:
    """Change a schema the safe way: plan on a branch, review, apply exactly what was tested, keep a history.

    plan: parses the script, lints every statement (locks taken, table rewrites, CREATE INDEX without CONCURRENTLY,
    NOT NULL without a safe path, volatile defaults, breaking renames and drops, squawk's rules), applies it on a
    short-lived copy of the branch, and returns a migration_id with findings, each statement's lock and time, rows
    affected and the schema diff. Nothing changes on the target. apply(migration_id): runs exactly the planned SQL on
    the target (refused if its schema changed since, or the plan expired or already ran), after the user's
    confirmation for a protected branch or a destructive statement, with a backup branch of a protected target first;
    records it in neon_mcp.schema_migrations. Protected branches (production) are changed only this way.
    """
    service = neon_services(ctx).migrations
    if action == "plan":
        if not sql:
            raise _missing("sql", action)
        report = await service.plan(sql, branch=branch, database=database, version=version, description=description)
        data = MigrateResult(status="ok", action="plan", migration_id=report.migration_id, plan=report)
        return _result(data, _plan_text(report))
    if action == "history":
        place, rows = await service.history(branch=branch, database=database)
        lines = [f"{len(rows)} migration(s) applied to {place.label}, newest first"]
        lines += [f"{r['version']}  {r['applied_at']}  {r['description']}  ({r['duration_ms']} ms)" for r in rows]
        return _result(
            MigrateResult(status="ok", action="history", history=rows), [lines[0], fence("\n".join(lines[1:]))]
        )
    if not migration_id:
        raise _missing("migration_id", action)
    if action == "discard":
        message = await service.discard(migration_id)
        return _result(
            MigrateResult(status="ok", action="discard", migration_id=migration_id, message=message), [message]
        )
    change = await service.plan_apply(migration_id)

    async def apply(confirmed: Confirmed) -> CallToolResult:
        applied = await service.apply(change, confirmed)
        data = MigrateResult(status="ok", action="apply", migration_id=migration_id, applied=applied)
        return _result(data, _applied_text(applied))

    return await run_or_store(ctx, confirmation, tool="migrate", change=change, apply=apply)


def _missing(argument: str, action: str) -> InvalidInput:
    return InvalidInput(f"action {action} needs {argument}")


def _result(data: MigrateResult, lines: list[str]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(text="\n".join(lines))], structured_content=data.model_dump(mode="json", exclude_none=True)
    )


def _plan_text(report: MigrationReport) -> list[str]:
    head = (
        f"planned migration {report.migration_id} (version {report.version}) for branch {report.branch}, database "
        f"{report.database}: tested on {report.plan_branch} in {report.total_ms:.0f} ms, "
        f"{report.rows_affected} row(s) affected; the plan expires at {report.expires_at}"
    )
    lines = [head]
    if report.already_applied:
        lines.append("this version is already applied with the same checksum: apply will be a no-op")
    lines.append("statements:")
    for s in report.statements:
        extra = " (outside the transaction)" if s.outside_transaction else ""
        took = f"{s.elapsed_ms:.1f} ms" if s.elapsed_ms is not None else "—"
        lock = s.lock or "no table lock"
        lines.append(f"  {s.number}. [{s.kind}; {lock}{'; rewrites' if s.rewrites else ''}]{extra} {took}")
    lines.append(fence("\n".join(f"{s.number}. {s.sql}" for s in report.statements)))
    if report.findings:
        lines.append("findings:")
        for f in report.findings:
            where = f"statement {f.statement}" if f.statement else "script"
            advice = f" → {f.advice}" if f.advice else ""
            lines.append(f"  {f.severity.upper()} {f.rule} ({where}, {f.source}): {f.message}{advice}")
    else:
        lines.append("findings: none")
    lines.append("schema diff (before → after):")
    lines.append(fence(report.schema_diff or "(no schema change)"))
    why = f"protected branch: {report.protected_because}" if report.protected_because else "destructive statements"
    needs = (
        f"apply needs the user's confirmation ({why})"
        if report.needs_confirmation
        else "apply runs without confirmation (unprotected branch, nothing destructive)"
    )
    lines.append(f"next: migrate(action='apply', migration_id='{report.migration_id}'); {needs}")
    return lines


def _applied_text(applied: AppliedMigration) -> list[str]:
    lines = [f"{applied.message} on branch {applied.branch}, database {applied.database}"]
    if applied.backup_branch:
        lines.append(f"backup branch taken first: {applied.backup_branch}")
    for s in applied.statements:
        took = f"{s.elapsed_ms:.1f} ms" if s.elapsed_ms is not None else "—"
        rows = f", {s.rows_affected} row(s)" if s.rows_affected is not None else ""
        lines.append(f"  {s.number}. {took}{rows}")
    if applied.applied:
        lines.append(f"total {applied.total_ms:.0f} ms")
    return lines


def register(tools: list[ToolSpec], offer: Offer) -> None:
    """Register migrate (with Neon only: every migration is tested on a branch first)."""
    if not offer.neon:
        return
    add_tool(tools, migrate, title="Plan and apply a migration", read_only=False, destructive=True, idempotent=False)
