"""The PostgreSQL servers behind endpoints: one per timeline, started for an endpoint or held briefly for work.

An endpoint that is active *wants* its timeline's server running on its port. Work that needs a server (copying a
branch, creating a role, dumping a schema) *holds* it for a moment: it is started if it was down and stopped again
when the last holder leaves, unless an endpoint wants it. Starts and stops of one timeline are serialised; the
blocking ``pg_ctl`` calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from ..errors import ClusterError
from .clusters import Cluster
from .timelines import Timeline

__all__ = ["FRONT_DOOR_APPLICATION", "SUPERUSER", "Computes"]

SUPERUSER = "cloud_admin"
FRONT_DOOR_APPLICATION = "local-neon-front-door"
"""The application name of the front door's own connections (reading role secrets): not clients of the endpoint."""
_CONNECT_TIMEOUT = 10.0
_ARCHIVE_WAIT = 30.0


class Computes:
    """Servers of the timelines under ``root``."""

    def __init__(self, root: Path, *, bindir: Path | None, host: str) -> None:
        self._root = root
        self._bindir = bindir
        self._host = host
        self._clusters: dict[str, Cluster] = {}
        self._locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._holds: collections.Counter[str] = collections.Counter()
        self._wanted: set[str] = set()

    def timeline(self, name: str) -> Timeline:
        return Timeline(self._root / name)

    def cluster(self, name: str, *, port: int | None, password: str) -> Cluster:
        """A ``Cluster`` for the timeline (the one last started, when its port and password fit)."""
        known = self._clusters.get(name)
        if known is not None and known.password == password and (port is None or known.port == port):
            return known
        cluster = self.timeline(name).cluster(
            bindir=self._bindir, host=self._host, port=port, superuser=SUPERUSER, password=password
        )
        self._clusters[name] = cluster
        return cluster

    async def start(self, name: str, *, port: int, password: str) -> int:
        """Run the timeline's server on ``port`` (restarting it if it runs on another) and keep it running.

        Returns the port it listens on: ``port``, or a new free one if ``port`` was taken by someone else.
        """
        self._wanted.add(name)
        async with self._locks[name]:
            return await self._start_on(name, port, password)

    async def stop(self, name: str) -> None:
        """Let the server stop: now if no work holds it, else when the last holder leaves."""
        self._wanted.discard(name)
        async with self._locks[name]:
            if not self._holds[name]:
                await self._stop(name)

    async def forget(self, name: str) -> None:
        """Stop the server at once (immediate mode), whoever holds it; for timelines about to be deleted."""
        self._wanted.discard(name)
        async with self._locks[name]:
            cluster = self._clusters.pop(name, None)
            if cluster is not None:
                await asyncio.to_thread(cluster.stop, mode="immediate")
        if not self._holds.pop(name, 0) and not self._locks[name].locked():
            del self._locks[name]

    @asynccontextmanager
    async def hold(self, name: str, *, port: int | None, password: str) -> AsyncIterator[Cluster]:
        """The timeline's server, running for the duration of the block (started on ``port`` if it was down)."""
        async with self._locks[name]:
            self._holds[name] += 1
            try:
                cluster = self._clusters.get(name)
                if cluster is None or not await asyncio.to_thread(cluster.is_running):
                    await self._start_on(name, port, password)
                    cluster = self._clusters[name]
            except BaseException:
                self._holds[name] -= 1
                raise
        try:
            yield cluster
        finally:
            async with self._locks[name]:
                self._holds[name] -= 1
                if not self._holds[name] and name not in self._wanted:
                    await self._stop(name)

    async def stop_all(self) -> None:
        """Stop every server started here (fast mode), two at a time."""
        gate = asyncio.Semaphore(2)

        async def stop_one(name: str) -> None:
            async with gate, self._locks[name]:
                await self._stop(name)

        await asyncio.gather(*(stop_one(name) for name in list(self._clusters)), return_exceptions=True)
        self._wanted.clear()

    async def client_backends(self, name: str) -> int:
        """Client connections to the running server, other than the one asking and the front door's own."""
        cluster = self._clusters[name]
        conn = await asyncpg.connect(cluster.dsn(), timeout=_CONNECT_TIMEOUT)
        try:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> $1",
                FRONT_DOOR_APPLICATION,
            )
        finally:
            await conn.close()
        return count

    async def seal(self, cluster: Cluster, timeline: Timeline) -> int:
        """Commit a transaction and switch WAL segments on the running ``cluster``, then wait until archived.

        Afterwards the archive holds a commit later than every moment up to now, which a recovery to a past time or
        LSN needs to know it has gone far enough. Returns the server's WAL position before the seal (as an int).
        """
        conn = await asyncpg.connect(cluster.dsn(), timeout=_CONNECT_TIMEOUT)
        try:
            head: int = await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
            await conn.execute("SELECT txid_current()")
            segment: str = await conn.fetchval("SELECT pg_walfile_name(pg_switch_wal())")
        finally:
            await conn.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _ARCHIVE_WAIT
        while not (timeline.wal / segment).exists():
            if loop.time() > deadline:
                raise ClusterError(f"WAL segment {segment} was not archived within {_ARCHIVE_WAIT:g} s.")
            await asyncio.sleep(0.01)
        return int(head)

    async def _start_on(self, name: str, port: int | None, password: str) -> int:
        cluster = self.cluster(name, port=port, password=password)
        running_port = await asyncio.to_thread(_running_port, cluster)
        if running_port is not None and port is not None and running_port != port:
            await asyncio.to_thread(cluster.stop)
        try:
            await asyncio.to_thread(cluster.start)
        except ClusterError as exc:
            if "already in use" not in str(exc):
                raise
            self._clusters.pop(name, None)  # the port it last had is someone else's now: pick a free one
            cluster = self.cluster(name, port=None, password=password)
            await asyncio.to_thread(cluster.start)
        self._clusters[name] = cluster
        assert cluster.port is not None  # start() picked one
        return cluster.port

    async def _stop(self, name: str) -> None:
        cluster = self._clusters.get(name)
        if cluster is not None:
            await asyncio.to_thread(cluster.stop)


def _running_port(cluster: Cluster) -> int | None:
    """The port the server on ``cluster``'s data directory listens on, if one runs."""
    if not cluster.is_running():
        return None
    try:
        return int((cluster.datadir / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None
