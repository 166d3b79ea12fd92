"""The background loop: deletes branches past ``expires_at``, suspends idle endpoints, keeps history in its window.

An endpoint is in use while its server has client connections (``pg_stat_activity``); it is suspended once it has
had none for ``suspend_timeout_seconds`` (when that is > 0), through the same ``suspend_compute`` operation a client
would start. A branch's history (bases and archived WAL, see ``timelines``) gets a new base when its newest is half a
window old and WAL was written since, and loses what only serves moments older than the window. A branch or endpoint
busy with another operation is left for the next round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import timedelta

import asyncpg

from ..errors import NeonMCPError
from . import ids
from .branches import Branches
from .endpoints import Endpoints
from .errors import NeonAPIError
from .records import Branch, Endpoint, Project
from .runtime import Runtime

__all__ = ["Housekeeping"]

logger = logging.getLogger("neon_mcp.local_neon")

_INTERVAL = 0.5
_MAX_CHECK_INTERVAL = 10.0
_MAX_UPKEEP_INTERVAL = 60.0


class Housekeeping:
    def __init__(self, rt: Runtime, endpoints: Endpoints, branches: Branches) -> None:
        self._rt = rt
        self._endpoints = endpoints
        self._branches = branches
        self._next_check: dict[str, float] = {}
        self._next_upkeep: dict[str, float] = {}

    async def run(self) -> None:
        """Run rounds until cancelled; a failing round is logged and the loop goes on."""
        while True:
            try:
                await self.round()
            except Exception:
                logger.exception("local Neon: housekeeping round failed")
            await asyncio.sleep(_INTERVAL)

    async def round(self) -> None:
        await self._branches.expire()
        await self._suspend_idle()
        await self._keep_history()

    async def _keep_history(self) -> None:
        now = time.monotonic()
        for branch in self._rt.store.list(Branch):
            project = self._rt.store.get(Project, branch.project_id)
            if branch.current_state != "ready" or not branch.timeline or project is None:
                continue
            retention = min(project.history_retention_seconds, self._rt.history_seconds)
            if self._next_upkeep.get(branch.id, 0.0) > now:
                continue
            self._next_upkeep[branch.id] = now + min(_MAX_UPKEEP_INTERVAL, max(_INTERVAL, retention / 4))
            await self._upkeep(branch, retention)

    async def _upkeep(self, branch: Branch, retention: int) -> None:
        """Add a base if the newest is half a window old and the data changed since; prune what is too old.

        Only when there is work does it reserve the branch (mutations meanwhile get 423, which Neon's clients retry).
        """
        timeline = self._rt.computes.timeline(branch.timeline)
        bases = await asyncio.to_thread(timeline.bases)
        if not bases:
            return
        moment = ids.now()
        cutoff = moment - timedelta(seconds=retention)
        stale = moment - bases[-1].time >= timedelta(seconds=retention / 2)
        add = stale and await asyncio.to_thread(timeline.wrote_since, bases[-1])
        anchor = timeline.anchor(bases, cutoff)
        if not add and (anchor is None or anchor is bases[0]):
            return
        try:
            with self._rt.operations.reserve([branch.id], "history upkeep"):
                if add:
                    async with self._rt.hold(branch) as cluster:
                        await asyncio.to_thread(timeline.add_base, cluster)
                oldest = await asyncio.to_thread(timeline.prune, cutoff, self._rt.bindir)
        except NeonAPIError:
            return  # busy; a later round tries again
        fresh = self._rt.store.get(Branch, branch.id)
        if oldest is not None and fresh is not None and fresh.history_start != oldest.time:
            self._rt.store.put(replace(fresh, history_start=oldest.time, history_start_lsn=oldest.lsn))

    async def _suspend_idle(self) -> None:
        now = time.monotonic()
        for endpoint in self._rt.store.list(Endpoint):
            timeout = endpoint.suspend_timeout_seconds
            if endpoint.current_state != "active" or endpoint.pending_state is not None or timeout <= 0:
                self._next_check.pop(endpoint.id, None)
                continue
            if self._next_check.get(endpoint.id, 0.0) > now:
                continue
            self._next_check[endpoint.id] = now + min(_MAX_CHECK_INTERVAL, max(_INTERVAL, timeout / 5))
            branch = self._rt.store.get(Branch, endpoint.branch_id)
            if branch is None:
                continue
            try:
                clients = await self._rt.computes.client_backends(self._endpoints.server_name(endpoint, branch))
            except (OSError, KeyError, asyncpg.PostgresError, asyncpg.InterfaceError, NeonMCPError) as exc:
                logger.debug("local Neon: cannot count the clients of %s (checked again later): %s", endpoint.id, exc)
                continue
            last = self._rt.activity.setdefault(endpoint.id, now)
            if clients:
                self._rt.activity[endpoint.id] = now
            elif now - last >= timeout:
                self._suspend(endpoint)

    def _suspend(self, endpoint: Endpoint) -> None:
        try:
            step = self._endpoints.suspend_step(endpoint)
            self._rt.operations.submit(endpoint.project_id, [endpoint.branch_id], [step])
        except NeonAPIError:
            return  # busy; the next round tries again
        self._endpoints.mark(endpoint, "idle")
