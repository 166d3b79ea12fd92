"""Read-only copies of a branch at a point in time, for connections that ask with ``neon_timestamp:…``/``neon_lsn:…``.

Neon serves such a connection from an ephemeral compute at that point; here a copy is restored from the branch's
history (its base copy and archived WAL, see ``timelines``) into a new timeline directory and replayed up to the point,
where recovery *pauses*: the server stays a hot standby, so PostgreSQL itself refuses writes (SQLSTATE 25006), as on
Neon. One copy serves every connection to the same branch and point; it is removed once no connection has used it for
``IDLE_SECONDS``, and all of them when local Neon closes (a crash leaves timeline directories that the next start
sweeps away, as it does those of interrupted operations).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from ...errors import ClusterError
from .. import ids
from ..branching import Point
from ..clusters import free_port
from ..records import Branch, Project
from ..runtime import Runtime
from ..timelines import Timeline

__all__ = ["IDLE_SECONDS", "Copies", "CopyFailed"]

logger = logging.getLogger("neon_mcp.local_neon")

IDLE_SECONDS = 30.0
_READY_TIMEOUT = 120.0
_RECOVERY_CONF = "neon_recovery.conf"

_Key = tuple[str, str, str]


class CopyFailed(Exception):
    """The copy could not be made (the point lies past the branch's head, or recovery failed)."""


@dataclass
class _Copy:
    name: str
    port: int
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)


class Copies:
    """The copies in use, made on demand."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._copies: dict[_Key, _Copy] = {}
        self._locks: collections.defaultdict[_Key, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    @asynccontextmanager
    async def use(self, project: Project, branch: Branch, point: Point) -> AsyncIterator[int]:
        """The port of a server with ``branch``'s data at ``point``, kept while the block runs.

        Raises ``CopyFailed``.
        """
        key = (branch.id, branch.timeline, point.lsn or (point.time.isoformat() if point.time else ""))
        async with self._locks[key]:
            copy = self._copies.get(key)
            if copy is None:
                copy = await self._make(project, branch, point)
                self._copies[key] = copy
            copy.users += 1
        try:
            yield copy.port
        finally:
            copy.users -= 1
            copy.last_used = time.monotonic()

    def names(self) -> list[str]:
        """The timeline directory names of the copies kept now."""
        return [copy.name for copy in self._copies.values()]

    async def reap(self, *, idle: float = IDLE_SECONDS) -> None:
        """Remove the copies no connection has used for ``idle`` seconds."""
        now = time.monotonic()
        for key, copy in list(self._copies.items()):
            if copy.users == 0 and now - copy.last_used >= idle:
                async with self._locks[key]:
                    if self._copies.get(key) is copy and copy.users == 0:
                        del self._copies[key]
                        await self._rt.drop_timeline(copy.name)

    async def close(self) -> None:
        """Remove every copy (their connections are cut)."""
        copies, self._copies = list(self._copies.values()), {}
        for copy in copies:
            with contextlib.suppress(ClusterError, OSError):
                await self._rt.drop_timeline(copy.name)

    async def _make(self, project: Project, branch: Branch, point: Point) -> _Copy:
        rt = self._rt
        origin = rt.computes.timeline(branch.timeline)
        async with rt.hold(branch) as source:
            head = await rt.computes.seal(source, origin)  # the archive now reaches past the point
        if point.lsn_value is not None and point.lsn_value > head:
            raise CopyFailed(f"LSN {point.lsn} is past the head of branch {branch.id} ({ids.format_lsn(head)})")
        timeline = Timeline(rt.clusters_root / ids.timeline_name())
        await asyncio.to_thread(timeline.create)
        try:
            await asyncio.to_thread(timeline.prepare_recovery, origin, target_time=point.time, target_lsn=point.lsn)
            await asyncio.to_thread(_pause_at_target, timeline)
            password = project.superuser_password
            port = await rt.computes.start(timeline.name, port=free_port(rt.host), password=password)
            await _wait_paused(rt.computes.cluster(timeline.name, port=port, password=password).dsn())
        except BaseException as exc:
            await rt.drop_timeline(timeline.name)
            if isinstance(exc, (ClusterError, OSError, asyncpg.PostgresError)):
                raise CopyFailed(f"could not restore branch {branch.id} at the point asked for: {exc}") from exc
            raise
        logger.info("local Neon: read-only copy of %s at %s on port %d", branch.id, point, port)
        return _Copy(timeline.name, port)


def _pause_at_target(timeline: Timeline) -> None:
    """Make the recovery ``prepare_recovery`` set up stop at its target as a hot standby instead of promoting."""
    conf = timeline.data / _RECOVERY_CONF
    text = conf.read_text(encoding="utf-8").replace("recovery_target_action = 'promote'", "")
    with conf.open("w", encoding="utf-8") as out:  # truncating keeps the file's owner (the servers' user)
        out.write(text + "recovery_target_action = 'pause'\nhot_standby = on\n")


async def _wait_paused(dsn: str) -> None:
    """Wait until the server accepts connections and its recovery has paused at the target."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _READY_TIMEOUT
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=10, ssl=False)
        except (OSError, asyncpg.PostgresError) as exc:
            if loop.time() > deadline:
                raise ClusterError(f"the copy did not accept connections: {exc}") from exc
            await asyncio.sleep(0.05)
            continue
        try:
            while (await conn.fetchval("SELECT pg_get_wal_replay_pause_state()")) != "paused":
                if not await conn.fetchval("SELECT pg_is_in_recovery()"):
                    raise ClusterError("the copy left recovery instead of pausing at the point")
                if loop.time() > deadline:
                    raise ClusterError(f"the copy did not reach the point within {_READY_TIMEOUT:g} s")
                await asyncio.sleep(0.02)
            return
        finally:
            await conn.close()
