"""Backup branches: taken before a confirmed destructive operation on a protected branch.

A backup is a Neon branch of the protected branch at this moment, named ``backup/<branch>/<UTC time>``, without a
compute (it costs no compute time until someone connects), that Neon deletes itself when it expires (7 days by
default). The operation it protects runs only once the backup's operations have finished.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .. import progress
from ..errors import NeonAPIFailure

if TYPE_CHECKING:  # types only: the branch tools' result models are imported, through this module, at start-up
    from .client import NeonClient
    from .targets import Directory

__all__ = ["Backups", "backup_name"]

logger = logging.getLogger(__name__)


def backup_name(branch_name: str, moment: datetime) -> str:
    """``backup/production/2026-11-26T12-00-00Z``: sortable, and unique to the second."""
    return f"backup/{branch_name}/{moment.astimezone(UTC):%Y-%m-%dT%H-%M-%SZ}"


class Backups:
    """Takes backup branches (or, when the operator switched them off, says so by returning ``None``)."""

    def __init__(self, client: NeonClient, directory: Directory, *, enabled: bool = True, days: float = 7.0) -> None:
        self.client = client
        self.directory = directory
        self.enabled = enabled
        self.lifetime = timedelta(days=days)

    async def take(self, project_id: str, branch_id: str, branch_name: str) -> str | None:
        """Branch ``branch_id`` as it is now into a new backup branch; its name, or ``None`` when backups are off."""
        if not self.enabled:
            return None
        now = datetime.now(UTC)
        base = backup_name(branch_name, now)
        await progress.report(0, None, f"taking backup branch {base}")
        for attempt in range(1, 6):
            # Two backups of a branch within the same second: the later one gets a suffix, never an error.
            name = base if attempt == 1 else f"{base}-{attempt}"
            try:
                created = await self.client.create_branch(
                    project_id, name=name, parent_id=branch_id, expires_at=now + self.lifetime, with_compute=False
                )
                break
            except NeonAPIFailure as exc:
                if exc.status != 409 or attempt == 5:
                    raise
        await self.client.wait_for_operations(project_id, created.operations, progress=progress.report)
        self.directory.forget(project_id)
        logger.info("backup branch %s (%s) taken of %s", name, created.branch.id, branch_name)
        return name
