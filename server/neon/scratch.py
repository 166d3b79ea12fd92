"""Short-lived branches: a copy of a target branch (now, or at a past moment) for work that must not touch it.

Time travel reads on one, ``explain_query`` runs ``ANALYZE`` of a write on one, ``migrate`` tests a migration on one.
Every scratch branch has a compute, an ``expires_at`` (an hour by default) so that Neon removes it even if this process
dies first, and a name saying what it is for: ``<purpose>/<branch>/<random>``. ``create`` fails clean: if waiting for
the branch fails after Neon made it, the branch is deleted before the error is raised.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .. import progress
from ..errors import InvalidInput, NeonAPIFailure, NeonMCPError
from ..sql.places import Place
from .client import NeonClient
from .connections import Connections
from .targets import Target

__all__ = ["Scratch", "ScratchBranches"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scratch:
    """A scratch branch and the place to run in on it (same database and role as the target it copies)."""

    branch_id: str
    name: str
    expires_at: datetime
    place: Place

    @property
    def project_id(self) -> str:
        assert self.place.target is not None
        return self.place.target.project_id


class ScratchBranches:
    """Creates and removes scratch branches."""

    def __init__(self, client: NeonClient, connections: Connections) -> None:
        self.client = client
        self.connections = connections

    async def create(
        self,
        of: Place,
        *,
        purpose: str,
        lsn: str | None = None,
        moment: datetime | None = None,
        lifetime: timedelta = timedelta(hours=1),
    ) -> Scratch:
        """A new branch of the branch ``of`` is on (at ``lsn`` or ``moment``, else now), connectable when returned,
        with the same database and role.

        Raises ``InvalidInput`` when ``of`` is not on a Neon branch, Neon's refusal as ``NeonAPIFailure`` (e.g. a
        moment outside the history window).
        """
        target = of.target
        if target is None:
            raise InvalidInput("a short-lived branch needs Neon: a plain PostgreSQL URL has no branches")
        name = f"{purpose}/{target.branch_name}/{secrets.token_hex(3)}"
        expires_at = datetime.now(UTC) + lifetime
        await progress.report(0, None, f"creating branch {name}")
        created = await self.client.create_branch(
            target.project_id,
            name=name,
            parent_id=target.branch_id,
            parent_lsn=lsn,
            parent_timestamp=moment,
            expires_at=expires_at,
        )
        branch_id = created.branch.id
        try:
            await self.client.wait_for_operations(target.project_id, created.operations, progress=progress.report)
            at = Target(target.project_id, branch_id, name, of.database, target.role, None)
            place = Place(await self.connections.databases(at, pooled=False), of.database, at)
        except BaseException:
            await asyncio.shield(self.remove(target.project_id, branch_id))
            raise
        return Scratch(branch_id, name, expires_at, place)

    async def remove(self, project_id: str, branch_id: str) -> None:
        """Close the branch's pools and delete it; a failure is logged (the branch expires on its own)."""
        await self.connections.forget_branch(branch_id)
        try:
            operations = await self.client.delete_branch(project_id, branch_id)
            await self.client.wait_for_operations(project_id, operations)
        except NeonAPIFailure as exc:
            if exc.status == 404:
                return
            logger.warning("scratch branch %s not deleted now (%s); it expires on its own", branch_id, exc)
        except NeonMCPError as exc:
            logger.warning("scratch branch %s not deleted now (%s); it expires on its own", branch_id, exc)

    @asynccontextmanager
    async def use(
        self,
        of: Place,
        *,
        purpose: str,
        lsn: str | None = None,
        moment: datetime | None = None,
        lifetime: timedelta = timedelta(hours=1),
    ) -> AsyncIterator[Scratch]:
        """A scratch branch for the duration of the block, deleted afterwards whatever happened."""
        scratch = await self.create(of, purpose=purpose, lsn=lsn, moment=moment, lifetime=lifetime)
        try:
            yield scratch
        finally:
            await asyncio.shield(self.remove(scratch.project_id, scratch.branch_id))
