"""Compute tools: list_computes, configure_compute, manage_compute, create_read_replica, list_operations and
connection_check.

In access mode read-only only the three that change nothing are offered (list_computes, list_operations,
connection_check). Changes to a protected branch's compute (configure, suspend, restart) are confirmed by the human;
on other branches they run at once (``server.computes`` has the rules, ``server.computes.limits`` Neon's limits).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import ElicitationResult, Resolve
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from server.computes import ComputeChange, ComputeChanged, ComputeList, ConnectionReport, ReplicaCreated, suspend_text
from server.mcp import (
    ConfirmAnswer,
    Confirmation,
    Ctx,
    Offer,
    Question,
    ToolSpec,
    add_tool,
    fence,
    neon_services,
    question,
    run_or_store,
)
from server.neon import OperationList
from server.state import Confirmed

from ._params import Branch, Database

__all__ = ["ComputeChangeResult", "register"]


class ComputeChangeResult(Confirmation, ComputeChanged):
    """What configure_compute and manage_compute return."""


Endpoint = Annotated[
    str | None,
    Field(description="The compute's endpoint id (ep-…); list_computes shows them. Or pass branch instead."),
]
MinCU = Annotated[
    float | None,
    Field(description="Autoscaling minimum in Compute Units: 0.25, 0.5 or a whole number (1 CU ≈ 4 GB RAM)."),
]
MaxCU = Annotated[
    float | None,
    Field(description="Autoscaling maximum in CU: up to 16 (at most 8 above the minimum); above 16 a fixed size."),
]
SuspendTimeout = Annotated[
    int | None,
    Field(description="Idle seconds before it scales to zero: 60 to 604800, -1 never, 0 Neon's default (300 s)."),
]


def _result(model: BaseModel, lines: list[str], **extra: Any) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(text="\n".join(lines))],
        structured_content={**model.model_dump(mode="json", exclude_none=True), **extra},
    )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _cu(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "size ?"
    return f"{low:g} CU" if low == high else f"{low:g}–{high:g} CU"


# --- reading ---------------------------------------------------------------------------------------------------------


async def list_computes(ctx: Ctx, branch: Branch = None) -> Annotated[CallToolResult, ComputeList]:
    """List compute endpoints (of one branch, or the whole project): type (read_write, or read_only for a read
    replica), state (active, idle = suspended), autoscaling range, suspend timeout, pooler, host, last activity."""
    found = await neon_services(ctx).computes.list(branch)
    where = f"branch {found.branch}" if found.branch else f"project {found.project_id}"
    lines = [f"{len(found.computes)} compute(s) in {where}"]
    for c in found.computes:
        state = c.state + (f" → {c.pending_state}" if c.pending_state else "") + (" (disabled)" if c.disabled else "")
        facts = [
            f"{c.id} · {c.type} · {state}",
            f"branch {c.branch}" + (f" (protected: {c.protected_because})" if c.protected_because else ""),
            _cu(c.min_cu, c.max_cu),
            suspend_text(c.suspend_timeout_seconds),
            f"pooler {c.pooler_mode or '?'}" + ("" if c.pooler_enabled is not False else " (off)"),
            c.host,
            f"last active {_when(c.last_active)}",
        ]
        lines.append(" · ".join(facts))
    return _result(found, lines)


async def list_operations(
    ctx: Ctx,
    limit: Annotated[int, Field(ge=1, le=100, description="How many operations, newest first (1–100).")] = 20,
    branch: Annotated[str | None, Field(description="Only this branch's operations (name or id).")] = None,
) -> Annotated[CallToolResult, OperationList]:
    """List recent Neon operations of the project (or one branch), newest first: action (create_timeline,
    start_compute, suspend_compute, apply_config, …), status, branch, compute, duration and error."""
    found = await neon_services(ctx).operations.recent(limit, branch)
    where = f"branch {found.branch}" if found.branch else f"project {found.project_id}"
    lines = [
        f"{len(found.operations)} operation(s) of {where}, newest first · {found.running} not finished · "
        f"{found.failed} failed"
    ]
    for op in found.operations:
        parts = [f"{_when(op.created_at)} · {op.action} · {op.status}"]
        if op.duration_ms is not None:
            parts.append(f"{op.duration_ms} ms")
        parts.append(f"branch {op.branch}" if op.branch else "project")
        if op.compute:
            parts.append(op.compute)
        lines.append(" · ".join(parts) + (f" · error: {op.error}" if op.error else ""))
    if found.more and found.branch:
        lines.append(f"(looked at the newest {found.scanned} operations of the project)")
    return _result(found, lines)


async def connection_check(
    ctx: Ctx,
    branch: Branch = None,
    database: Database = None,
    role: Annotated[str | None, Field(description="Role the application connects as (default: the owner).")] = None,
) -> Annotated[CallToolResult, ConnectionReport]:
    """Diagnose "my app can't connect" for a branch: compute state (and waking it), database and role (exists, may
    log in), reachability and time to connect on the pooled and direct URIs, TLS, connections in use against the
    limits, and the pooler's transaction-mode caveats. Each finding comes with a suggested fix. Never shows a
    password."""
    report = await neon_services(ctx).connection_check.check(branch, database, role)
    verdict = "no problem found" if report.ok else "problems found"
    lines = [
        f"connection check of branch {report.branch} ({report.branch_id}), database {report.database}, role "
        f"{report.role}: {verdict}"
    ]
    # Findings quote names and PostgreSQL's own error messages: inside the fence, with the names.
    body = [f"[{f.status}] {f.check}: {f.finding}" + (f"\n    fix: {f.fix}" if f.fix else "") for f in report.findings]
    if report.databases:
        body.append("databases: " + ", ".join(report.databases))
    if report.login_roles:
        body.append("roles that may log in: " + ", ".join(report.login_roles))
    if body:
        lines.append(fence("\n".join(body)))
    return _result(report, lines)


# --- changing --------------------------------------------------------------------------------------------------------


async def _ask_configure(
    branch: str | None,
    endpoint: str | None,
    min_cu: float | None,
    max_cu: float | None,
    suspend_timeout_seconds: int | None,
    ctx: Ctx,
) -> Question:
    planning = neon_services(ctx).computes.plan_configure(
        branch=branch, endpoint=endpoint, min_cu=min_cu, max_cu=max_cu, suspend_timeout_seconds=suspend_timeout_seconds
    )
    return await question(ctx, planning)


async def _ask_manage(endpoint: str, action: Literal["start", "suspend", "restart"], ctx: Ctx) -> Question:
    return await question(ctx, neon_services(ctx).computes.plan_action(endpoint, action))


async def configure_compute(
    ctx: Ctx,
    confirmation: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_ask_configure)],
    branch: Annotated[
        str | None, Field(description="Configure this branch's read-write compute (name or id); or pass endpoint.")
    ] = None,
    endpoint: Endpoint = None,
    min_cu: MinCU = None,
    max_cu: MaxCU = None,
    suspend_timeout_seconds: SuspendTimeout = None,
) -> Annotated[CallToolResult, ComputeChangeResult]:
    """Change a compute's autoscaling range (min_cu, max_cu) and scale-to-zero timeout (suspend_timeout_seconds).

    Values are checked against Neon's limits first and refused with Neon's reason. On a protected branch the human
    confirms the change. Default compute: the default branch's read-write compute.
    """
    change = await neon_services(ctx).computes.plan_configure(
        branch=branch, endpoint=endpoint, min_cu=min_cu, max_cu=max_cu, suspend_timeout_seconds=suspend_timeout_seconds
    )
    return await _change(ctx, confirmation, "configure_compute", change)


async def manage_compute(
    endpoint: Annotated[
        str, Field(min_length=1, description="The compute: its endpoint id (ep-…), or a branch for its read-write one.")
    ],
    action: Annotated[Literal["start", "suspend", "restart"], Field(description="start, suspend or restart.")],
    ctx: Ctx,
    confirmation: Annotated[ElicitationResult[ConfirmAnswer], Resolve(_ask_manage)],
) -> Annotated[CallToolResult, ComputeChangeResult]:
    """Start, suspend (scale to zero now) or restart a compute. Suspending or restarting cuts its open connections
    and loses in-memory statistics (pg_stat_statements): on a protected branch the human confirms it. A suspended
    compute also starts by itself on the next connection."""
    change = await neon_services(ctx).computes.plan_action(endpoint, action)
    return await _change(ctx, confirmation, "manage_compute", change)


async def _change(
    ctx: Ctx, confirmation: ElicitationResult[ConfirmAnswer], tool: str, change: ComputeChange
) -> CallToolResult:
    service = neon_services(ctx).computes

    async def apply(_: Confirmed) -> CallToolResult:
        return _changed(await service.apply(change))

    return await run_or_store(ctx, confirmation, tool=tool, change=change, apply=apply)


def _changed(result: ComputeChanged) -> CallToolResult:
    where = f"compute {result.compute} ({result.type}) of branch {result.branch}"
    if result.action == "configure":
        b, a = result.before, result.after
        line = (
            f"{where}: {_cu(_num(b, 'min_cu'), _num(b, 'max_cu'))} → {_cu(_num(a, 'min_cu'), _num(a, 'max_cu'))}; "
            f"{suspend_text(_whole(b))} → {suspend_text(_whole(a))}"
        )
    else:
        verb = {"start": "started", "suspend": "suspended", "restart": "restarted"}[result.action]
        line = f"{where}: {verb if result.changed else 'unchanged'}; now {result.state}"
    return _result(result, [line, *result.notes], status="ok")


def _num(values: dict[str, float | int | None], key: str) -> float | None:
    value = values.get(key)
    return None if value is None else float(value)


def _whole(values: dict[str, float | int | None]) -> int | None:
    value = values.get("suspend_timeout_seconds")
    return None if value is None else int(value)


async def create_read_replica(ctx: Ctx, branch: Branch = None) -> Annotated[CallToolResult, ReplicaCreated]:
    """Add a read replica (a read-only compute) to a branch: reads scale out without touching the primary, and the
    database itself refuses writes on it. Returns once it answers; connect to it with its endpoint id."""
    made = await neon_services(ctx).computes.create_replica(branch)
    lines = [
        f"read replica {made.compute} of branch {made.branch} ({made.branch_id}) is {made.state} at {made.host} "
        f"after {made.elapsed_ms:g} ms; "
        + ("it is in recovery: PostgreSQL refuses writes on it" if made.in_recovery else "it is NOT in recovery"),
    ]
    return _result(made, lines)


def register(tools: list[ToolSpec], offer: Offer) -> None:
    """Register the compute tools (only the read-only ones in access mode read-only)."""
    add_tool(tools, list_computes, title="List computes", read_only=True, destructive=False, idempotent=True)
    add_tool(tools, list_operations, title="List operations", read_only=True, destructive=False, idempotent=True)
    add_tool(tools, connection_check, title="Check connecting", read_only=True, destructive=False, idempotent=True)
    if not offer.writes:
        return
    add_tool(tools, configure_compute, title="Configure a compute", read_only=False, destructive=False, idempotent=True)
    add_tool(
        tools,
        manage_compute,
        title="Start, suspend or restart a compute",
        read_only=False,
        destructive=True,
        idempotent=True,
    )
    add_tool(
        tools, create_read_replica, title="Create a read replica", read_only=False, destructive=False, idempotent=False
    )
