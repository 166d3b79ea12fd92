"""Where a tool call runs: a database on a plain PostgreSQL server, or on a Neon branch.

``Places.place(branch, database)`` turns a call's optional arguments into a ``Place``. With a database URL
(``URLPlaces``) there are no branches and naming one is an error; with Neon, ``server.neon.connections.Connections``
resolves the branch and opens its pools. The SQL package knows a Neon branch only as a ``Branch`` (the protocol
below): it never imports the Neon package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .database import Databases

__all__ = ["Branch", "Place", "Places", "URLPlaces"]


class Branch(Protocol):
    """The Neon branch a place is on (``server.neon.targets.Target`` is one)."""

    @property
    def project_id(self) -> str: ...

    @property
    def branch_id(self) -> str: ...

    @property
    def branch_name(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def protected_because(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Place:
    """A database to run in, with its pools, and the Neon target when there is one."""

    databases: Databases
    database: str
    target: Branch | None = None
    copy: bool = False
    """It stands for an unprotected copy of its branch (a scratch branch to be made of it), as the policy sees it."""

    @property
    def protected_because(self) -> str | None:
        return self.target.protected_because if self.target is not None and not self.copy else None

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
