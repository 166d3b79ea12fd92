"""Time travel: a read answered as of a past moment, on a short-lived branch made at that moment.

``run_sql(as_of=…)`` plans the read on the live branch first (so a write is refused before anything is created), then
branches the target at the timestamp or LSN, runs the read there over a direct connection, and deletes the branch
whatever happened. The branch also carries an ``expires_at`` an hour ahead, so Neon removes it even if this process
dies before it could.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import InvalidInput, NeonAPIFailure
from ..sql.service import Execution, Plan, SQLService
from ..state.audit import NOT_NEEDED
from .points import parse_point
from .scratch import ScratchBranches

__all__ = ["TimeTravel"]


class TimeTravel:
    """Runs reads as of a past moment on throwaway branches."""

    def __init__(self, scratch: ScratchBranches, sql: SQLService) -> None:
        self.scratch = scratch
        self.sql = sql

    async def read(self, plan: Plan, *, max_rows: int | None = None) -> Execution:
        """Run ``plan`` (a read on a Neon branch, planned with ``as_of``) as of its moment."""
        as_of = plan.as_of
        if as_of is None or plan.place.target is None or not plan.verdict.read_only:
            raise InvalidInput("time travel answers reads on a Neon branch planned with as_of")
        lsn, moment = parse_point(as_of, "as_of")
        try:
            scratch = self.scratch.use(plan.place, purpose="time-travel", lsn=lsn, moment=moment)
            async with scratch as branch:
                return await self.sql.execute(replace(plan, place=branch.place), NOT_NEEDED, max_rows=max_rows)
        except NeonAPIFailure as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (401, 403, 404):
                exc.message = f"cannot read as of {as_of}: {exc.message} (is it inside the project's history window?)"
            raise
