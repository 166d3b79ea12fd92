"""Recent Neon operations of the served project: what ran (create_timeline, start_compute, apply_config, …), how it
ended, how long it took, and why it failed.

Neon lists a project's operations newest first, a page at a time. Without a branch one page of ``limit`` is read;
with a branch, pages are read until ``limit`` of that branch's operations are found or ``_SCANNED`` operations were
looked at (the answer then says it looked no further).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .client import NeonClient
    from .models import Operation
    from .targets import Directory

__all__ = ["OperationHistory", "OperationInfo", "OperationList"]

_PAGE = 100
_SCANNED = 1000
MAX_LIMIT = 100


class OperationInfo(BaseModel):
    id: str
    action: str
    status: str = Field(description="scheduling, running, finished, failed, error, cancelling, cancelled, skipped")
    branch: str | None = Field(default=None, description="the branch's name (its id if it no longer exists)")
    branch_id: str | None = None
    compute: str | None = Field(default=None, description="the endpoint id, for compute operations")
    created_at: datetime | None = None
    duration_ms: int | None = Field(default=None, description="how long it ran (Neon's total_duration_ms)")
    failures: int = 0
    error: str | None = None


class OperationList(BaseModel):
    project_id: str
    branch: str | None = Field(default=None, description="only this branch's operations, if one was asked for")
    operations: list[OperationInfo] = Field(description="newest first")
    running: int = Field(description="operations not finished yet (scheduling, running, cancelling)")
    failed: int = Field(description="operations that failed, erred or were cancelled")
    scanned: int = Field(description="operations looked at")
    more: bool = Field(description="older operations exist beyond those looked at")


class OperationHistory:
    """Reads the served project's operations (see the module docstring)."""

    def __init__(self, neon: NeonClient, directory: Directory) -> None:
        self.neon = neon
        self.directory = directory

    async def recent(self, limit: int = 20, branch: str | None = None) -> OperationList:
        """The newest ``limit`` operations (1 to 100), of the project or of one branch (name or id)."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be from 1 to {MAX_LIMIT}")
        directory = self.directory
        project_id = await directory.project_id()
        wanted = await directory.branch(branch) if branch is not None else None
        names = {b.id: b.name for b in await directory.branches()}
        found: list[Operation] = []
        scanned = 0
        cursor: str | None = None
        page_size = limit if wanted is None else _PAGE
        while True:
            page, cursor = await self.neon.list_operations(project_id, limit=page_size, cursor=cursor)
            scanned += len(page)
            found += [op for op in page if wanted is None or op.branch_id == wanted.id]
            if len(found) >= limit or cursor is None or scanned >= _SCANNED:
                break
        found = sorted(found, key=lambda op: op.created_at.timestamp() if op.created_at else 0.0, reverse=True)[:limit]
        infos = [_info(op, names) for op in found]
        return OperationList(
            project_id=project_id,
            branch=wanted.name if wanted is not None else None,
            operations=infos,
            running=sum(1 for op in found if not op.succeeded and not op.failed),
            failed=sum(1 for op in found if op.failed),
            scanned=scanned,
            more=cursor is not None,
        )


def _info(op: Operation, names: dict[str, str]) -> OperationInfo:
    extra = op.model_extra or {}
    duration = extra.get("total_duration_ms")
    return OperationInfo(
        id=op.id,
        action=op.action,
        status=op.status,
        branch=names.get(op.branch_id, op.branch_id) if op.branch_id else None,
        branch_id=op.branch_id,
        compute=op.endpoint_id,
        created_at=op.created_at,
        duration_ms=int(duration) if isinstance(duration, int | float) and not isinstance(duration, bool) else None,
        failures=op.failures_count or 0,
        error=op.error,
    )
