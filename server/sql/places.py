"""Where a tool call runs: a database on a plain PostgreSQL server, or on a Neon branch.

``Places.place(branch, database)`` turns a call's optional arguments into a ``Place``. With a database URL there are
no branches and naming one is an error; with Neon the target is resolved through the ``Directory`` (cached) and its
pools come from ``Connections`` (URI fetched once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..neon.connections import Connections
    from ..neon.targets import Directory, Target
    from .database import Databases

__all__ = ["NeonPlaces", "Place", "Places", "URLPlaces"]


@dataclass(frozen=True, slots=True)
class Place:
    """A database to run in, with its pools, and the Neon target when there is one."""

    databases: Databases
    database: str
    target: Target | None = None

    @property
    def protected_because(self) -> str | None:
        return self.target.protected_because if self.target is not None else None

    @property
    def branch_name(self) -> str | None:
        return self.target.branch_name if self.target is not None else None

    @property
    def key(self) -> str:
        """Identifies the place in fingerprints and caches."""
        if self.target is None:
            return self.database
        return f"{self.target.project_id}/{self.target.branch_id}/{self.database}/{self.target.role}"

    @property
    def audit_target(self) -> str:
        """How the audit log names the place."""
        if self.target is None:
            return f"database={self.database}"
        target = self.target
        return f"project={target.project_id} branch={target.branch_id} database={self.database} role={target.role}"

    @property
    def label(self) -> str:
        if self.target is None:
            return f"database {self.database!r}"
        return f"database {self.database!r} on branch {self.target.branch_name} ({self.target.branch_id})"


class Places(Protocol):
    async def place(self, branch: str | None = None, database: str | None = None) -> Place: ...

    async def close(self) -> None: ...


class URLPlaces:
    """The databases of the one server a ``--database-url`` names."""

    def __init__(self, databases: Databases) -> None:
        self.databases = databases

    async def place(self, branch: str | None = None, database: str | None = None) -> Place:
        if branch is not None:
            raise InvalidInput(
                "branch= needs Neon: this server serves a plain PostgreSQL URL (--database-url), which has no branches"
            )
        return Place(self.databases, database or self.databases.default_database)

    async def close(self) -> None:
        await self.databases.close()


class NeonPlaces:
    """Neon targets: resolved by the directory, connected by ``Connections``."""

    def __init__(self, directory: Directory, connections: Connections) -> None:
        self.directory = directory
        self.connections = connections

    async def place(self, branch: str | None = None, database: str | None = None) -> Place:
        target = await self.directory.target(branch, database)
        return Place(await self.connections.databases(target), target.database, target)

    async def close(self) -> None:
        await self.connections.close()
