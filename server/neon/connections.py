"""Connections to Neon branches: where a call runs (``place``), and one ``Databases`` per (project, branch, role),
its URI fetched once.

``place(branch, database)`` resolves a call's optional arguments through the ``Directory`` (cached) into a ``Place``:
``Connections`` are the ``Places`` of a server connected to Neon, as ``URLPlaces`` are those of a plain database.

After the first call on a target, running SQL there needs no API request: the URI (with the role's password) is kept
in memory for the life of the server, and the pools stay open. Pooled URIs are the default (Neon's PgBouncer in
transaction mode): asyncpg's statement cache is then off, every setting is ``SET LOCAL``, and statements that must run
outside a transaction go over the direct URI. A compute that does not answer is started through the API and the
connection retried (``Databases`` does the retrying; this module supplies the waking).

With ``prefer_replicas`` (for access mode read-only) a branch that has a read replica is reached through it, so the
database itself refuses writes (a hot standby does, whatever the session asks for); waking then starts the replica.
A branch without one is reached through its read-write compute, as always.
"""

from __future__ import annotations

import asyncio
import logging

from .. import progress
from ..errors import InvalidInput
from ..sql.database import Databases, Guards
from ..sql.places import Place
from .client import NeonClient
from .targets import Directory, Target

__all__ = ["Connections"]

logger = logging.getLogger(__name__)

_Key = tuple[str, str, str, bool]
"""(project id, branch id, role, pooled)."""


class Connections:
    """The places of the served Neon project, the open ``Databases`` of each target, and the waking of suspended
    computes."""

    def __init__(
        self,
        client: NeonClient,
        directory: Directory,
        guards: Guards,
        *,
        pooled: bool = True,
        pool_size: int = 4,
        wake_patience: float = 60,
        prefer_replicas: bool = False,
    ) -> None:
        self.client = client
        self.directory = directory
        self.guards = guards
        self.pooled = pooled
        self.prefer_replicas = prefer_replicas
        self.pool_size = pool_size
        self.wake_patience = wake_patience
        self._open: dict[_Key, Databases] = {}
        self._lock = asyncio.Lock()

    async def place(self, branch: str | None = None, database: str | None = None) -> Place:
        """Where a call on ``branch`` and ``database`` (each defaulted as the settings say) runs."""
        target = await self.directory.target(branch, database)
        return Place(await self.databases(target), target.database, target)

    async def databases(self, target: Target, *, pooled: bool | None = None) -> Databases:
        """The pools of ``target``'s branch as ``target``'s role (created, and its URI fetched, on first use)."""
        use_pooler = self.pooled if pooled is None else pooled
        key = (target.project_id, target.branch_id, target.role, use_pooler)
        found = self._open.get(key)
        if found is not None:
            return found
        async with self._lock:
            found = self._open.get(key)
            if found is None:
                found = await self._connect(target, use_pooler)
                self._open[key] = found
        return found

    async def _connect(self, target: Target, pooled: bool) -> Databases:
        replica = await self._replica(target) if self.prefer_replicas else None
        uri = await self.client.connection_uri(
            target.project_id, target.branch_id, target.database, target.role, pooled=pooled, endpoint_id=replica
        )

        async def wake() -> None:
            await self.wake(target.project_id, target.branch_id, endpoint_id=replica)

        async def direct() -> Databases:
            return await self.databases(target, pooled=False)

        return Databases(
            uri.get_secret_value(),
            self.guards,
            pool_size=self.pool_size,
            cache_statements=not pooled,
            wake=wake,
            wake_patience=self.wake_patience,
            direct=direct if pooled else None,
        )

    async def _replica(self, target: Target) -> str | None:
        """The id of a read replica of the target's branch that is not disabled, if there is one."""
        endpoints = await self.client.list_endpoints(target.project_id, target.branch_id)
        return next((e.id for e in endpoints if e.type == "read_only" and not e.disabled), None)

    async def wake(self, project_id: str, branch_id: str, *, endpoint_id: str | None = None) -> None:
        """Start the branch's read-write compute (or the compute ``endpoint_id``) unless it is active; return once it
        runs."""
        endpoints = [
            e
            for e in await self.client.list_endpoints(project_id, branch_id)
            if (e.id == endpoint_id if endpoint_id is not None else e.type == "read_write")
        ]
        if not endpoints and endpoint_id is not None:
            raise InvalidInput(f"read replica {endpoint_id} of branch {branch_id} no longer exists")
        if not endpoints:
            raise InvalidInput(
                f"branch {branch_id} has no read-write compute, so nothing can connect to it; "
                "create the branch again with a compute (create_branch with_compute=true)"
            )
        endpoint = endpoints[0]
        if endpoint.current_state == "active" and endpoint.pending_state is None:
            return
        logger.info("compute %s is %s; starting it", endpoint.id, endpoint.current_state)
        await progress.report(0, None, f"starting compute {endpoint.id} ({endpoint.current_state})")
        _, operations = await self.client.start_endpoint(project_id, endpoint.id)
        await self.client.wait_for_operations(project_id, operations, progress=progress.report, poll_interval=0.5)
        await progress.report(1, 1, f"compute {endpoint.id} started")

    async def forget_branch(self, branch_id: str) -> None:
        """Close the pools of a branch that was deleted, reset or restored (its URI and sessions are stale)."""
        keys = [key for key in self._open if key[1] == branch_id]
        for key in keys:
            await self._open.pop(key).close()

    async def close(self) -> None:
        opened, self._open = list(self._open.values()), {}
        for databases in opened:
            await databases.close()
