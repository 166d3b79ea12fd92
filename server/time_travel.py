"""Time travel: a read answered as of a past moment, on a short-lived branch made at that moment.

``run_sql(as_of=…)`` plans the read on the live branch first (so a write is refused before anything is created), then
branches the target at the timestamp or LSN, runs the read there over a direct connection, and deletes the branch
whatever happened. The branch also carries an ``expires_at`` an hour ahead, so Neon removes it even if this process
dies before it could.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from . import progress
from .connections import Connections
from .errors import InvalidInput, NeonAPIFailure, NeonMCPError
from .neon_client import NeonClient
from .places import Place
from .sql_service import Execution, Plan, SQLService
from .targets import Directory, Target

__all__ = ["TimeTravel", "parse_point"]

logger = logging.getLogger(__name__)

_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")
_LIFETIME = timedelta(hours=1)


def parse_point(as_of: str) -> tuple[str | None, datetime | None]:
    """``(lsn, None)`` for an LSN such as ``0/1A2B3C``, ``(None, moment)`` for an ISO 8601 timestamp (UTC if naive)."""
    text = as_of.strip()
    if _LSN.match(text):
        return text.upper(), None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"as_of {as_of!r} is neither an ISO 8601 timestamp (2026-11-26T09:30:00Z) nor an LSN (0/1A2B3C)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > datetime.now(UTC):
        raise InvalidInput(f"as_of {as_of!r} is in the future")
    return None, moment


class TimeTravel:
    """Runs reads as of a past moment on throwaway branches."""

    def __init__(self, client: NeonClient, directory: Directory, connections: Connections, sql: SQLService) -> None:
        self.client = client
        self.directory = directory
        self.connections = connections
        self.sql = sql

    async def read(self, plan: Plan, as_of: str, *, max_rows: int | None = None) -> Execution:
        """Run ``plan`` (a read on a Neon branch) as of ``as_of``."""
        target = plan.place.target
        if target is None:
            raise InvalidInput("as_of needs Neon: a plain PostgreSQL URL has no history to branch from")
        if not plan.verdict.read_only:
            raise InvalidInput("as_of answers reads only; this statement changes data")
        async with self._branch_at(target, as_of) as place:
            return await self.sql.execute(replace(plan, place=place), confirmation="not-needed", max_rows=max_rows)

    @asynccontextmanager
    async def _branch_at(self, target: Target, as_of: str) -> AsyncIterator[Place]:
        lsn, moment = parse_point(as_of)
        name = f"time-travel/{target.branch_name}/{secrets.token_hex(3)}"
        await progress.report(0, None, f"branching {target.branch_name} as of {as_of}")
        try:
            created = await self.client.create_branch(
                target.project_id,
                name=name,
                parent_id=target.branch_id,
                parent_lsn=lsn,
                parent_timestamp=moment,
                expires_at=datetime.now(UTC) + _LIFETIME,
            )
        except NeonAPIFailure as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403, 404):
                exc.message = f"cannot read as of {as_of}: {exc.message} (is it inside the project's history window?)"
            raise
        branch_id = created.branch.id
        try:
            await self.client.wait_for_operations(target.project_id, created.operations, progress=progress.report)
            at = Target(target.project_id, branch_id, name, target.database, target.role, None)
            yield Place(await self.connections.databases(at, pooled=False), target.database, at)
        finally:
            await asyncio.shield(self._remove(target.project_id, branch_id))

    async def _remove(self, project_id: str, branch_id: str) -> None:
        await self.connections.forget_branch(branch_id)
        try:
            operations = await self.client.delete_branch(project_id, branch_id)
            await self.client.wait_for_operations(project_id, operations)
        except NeonMCPError as exc:
            logger.warning("time-travel branch %s not deleted now (%s); it expires within the hour", branch_id, exc)
