"""What every part of local Neon shares: the store, the operations runner, the servers and their poolers, and lookups
that 404.

Handlers (projects, branches, endpoints, access) receive one ``Runtime``; nothing lives in module globals.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..computes.limits import SUSPEND_MIN_SECONDS
from .clusters import Cluster
from .computes import Computes
from .errors import conflict, not_found
from .operations import Operations
from .pooler import Poolers
from .records import Branch, Database, Endpoint, Project, Role
from .store import Store

__all__ = ["Runtime"]


@dataclass
class Runtime:
    store: Store
    operations: Operations
    computes: Computes
    poolers: Poolers
    clusters_root: Path
    bindir: Path
    host: str
    history_seconds: int
    pg_version: int
    front_door_port: int = 0
    """The port of the front door (see ``frontdoor``), which every endpoint host and connection URI names."""
    min_suspend_seconds: int = SUSPEND_MIN_SECONDS
    """The shortest ``suspend_timeout_seconds`` accepted: Neon's 60 s, unless lowered (tests watch scale to zero)."""
    activity: dict[str, float] = field(default_factory=dict)
    """Endpoint id → ``time.monotonic()`` when it was last seen in use (or started)."""

    def project(self, project_id: str) -> Project:
        record = self.store.get(Project, project_id)
        if record is None:
            raise not_found("project", project_id)
        return record

    def branch(self, project_id: str, branch_id: str) -> Branch:
        record = self.find_branch(project_id, branch_id)
        if record is None:
            raise not_found("branch", branch_id)
        return record

    def find_branch(self, project_id: str, branch_id: str) -> Branch | None:
        """The branch, or ``None`` if the project has none of that id (404 if the project does not exist)."""
        self.project(project_id)
        record = self.store.get(Branch, branch_id)
        return record if record is not None and record.project_id == project_id else None

    def default_branch(self, project_id: str) -> Branch:
        for record in self.store.list(Branch, project_id=project_id):
            if record.default:
                return record
        raise not_found("default branch of project", project_id)

    def endpoint(self, project_id: str, endpoint_id: str) -> Endpoint:
        record = self.find_endpoint(project_id, endpoint_id)
        if record is None:
            raise not_found("endpoint", endpoint_id)
        return record

    def find_endpoint(self, project_id: str, endpoint_id: str) -> Endpoint | None:
        """The endpoint, or ``None`` if the project has none of that id (404 if the project does not exist)."""
        self.project(project_id)
        record = self.store.get(Endpoint, endpoint_id)
        return record if record is not None and record.project_id == project_id else None

    def role(self, branch: Branch, name: str) -> Role:
        record = self.store.get(Role, f"{branch.id}/{name}")
        if record is None:
            raise not_found(f"role on branch {branch.id}:", name)
        return record

    def database(self, branch: Branch, name: str) -> Database:
        record = self.store.get(Database, f"{branch.id}/{name}")
        if record is None:
            raise not_found(f"database on branch {branch.id}:", name)
        return record

    def endpoints_of(self, branch: Branch) -> list[Endpoint]:
        return self.store.list(Endpoint, project_id=branch.project_id, branch_id=branch.id)

    def read_write_endpoint(self, branch: Branch) -> Endpoint | None:
        return next((e for e in self.endpoints_of(branch) if e.type == "read_write"), None)

    def children(self, branch: Branch) -> list[Branch]:
        return [b for b in self.store.list(Branch, project_id=branch.project_id) if b.parent_id == branch.id]

    @asynccontextmanager
    async def hold(self, branch: Branch) -> AsyncIterator[Cluster]:
        """The branch's server, running while the block runs (on its endpoint's port when it has one)."""
        endpoint = self.read_write_endpoint(branch)
        password = self.project(branch.project_id).superuser_password
        port = endpoint.port if endpoint is not None else None
        async with self.computes.hold(branch.timeline, port=port, password=password) as cluster:
            yield cluster

    def check_branch_name_free(self, project_id: str, name: str) -> None:
        """409 if a branch of the project already has ``name``."""
        if any(b.name == name for b in self.store.list(Branch, project_id=project_id)):
            raise conflict(f"branch with name {name!r} already exists")

    def forget_branch(self, branch: Branch) -> None:
        """Delete the branch's records (and its endpoints', roles' and databases'); its timeline is left alone."""
        with self.store.transaction():
            self.store.delete_all(Endpoint, project_id=branch.project_id, branch_id=branch.id)
            self.store.delete_all(Role, project_id=branch.project_id, branch_id=branch.id)
            self.store.delete_all(Database, project_id=branch.project_id, branch_id=branch.id)
            self.store.delete(Branch, branch.id)

    async def drop_timeline(self, name: str) -> None:
        """Stop the timeline's server (immediate mode) and delete its directory ("" is no timeline: nothing)."""
        if not name:
            return
        await self.computes.forget(name)
        await asyncio.to_thread(self.computes.timeline(name).remove, self.bindir)
