"""Read-only views of Neon: a project, the branch tree, one branch in detail, connection strings, schema comparisons.

Each view asks the API as little as it can: the branch list comes from the ``Directory`` (refreshed where the caller
asks for the current state), the computes of a whole project from one endpoints call. Results are pydantic models the
tools declare as their output; the tools only render them as text.

Passwords: ``connection_string`` redacts the role's password in the URI unless the operator set ``reveal_passwords``;
roles never carry one (``neon_models.Role`` drops it on arrival). A URI is never logged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .client import NeonClient
    from .models import Branch, Endpoint, Project
    from .targets import Directory

__all__ = [
    "BranchDescription",
    "BranchList",
    "BranchSummary",
    "ConnectionString",
    "DatabaseInfo",
    "EndpointInfo",
    "NeonViews",
    "ProjectDescription",
    "ProjectSummary",
    "RoleInfo",
    "SchemaComparison",
    "project_summary",
    "redact_password",
]

_REDACTED = "****"

_HUNK = re.compile(r"^@@ -\d+(?:,(?P<old>\d+))? \+\d+(?:,(?P<new>\d+))? @@")

_POOLED_ADVICE = (
    "pooled: through Neon's PgBouncer in transaction mode. No session state survives a transaction (SET, temporary "
    "tables, advisory locks), named prepared statements do not carry across transactions, LISTEN does not work. Use "
    "a direct URI (pooled=false) for migrations, LISTEN/NOTIFY and session features."
)
_DIRECT_ADVICE = (
    "direct: a PostgreSQL connection per client connection, with every session feature (migrations, LISTEN/NOTIFY, "
    "session settings). For many short-lived connections (serverless functions, web apps) prefer the pooled URI."
)
_REDACTION_NOTE = (
    "the password is redacted ({mask}); find it in Neon's console (Connect), or ask the operator to set "
    "NEON_MCP_REVEAL_PASSWORDS=true to have this tool return it"
)


class ProjectSummary(BaseModel):
    id: str
    name: str
    region_id: str | None = None
    pg_version: int | None = None
    created_at: datetime | None = None
    served: bool = Field(default=False, description="the project this server's tools work on")


class ProjectDescription(ProjectSummary):
    history_retention_seconds: int | None = Field(default=None, description="how far back branches can start")
    default_branch: str | None = None
    default_branch_id: str | None = None
    production_branch: str = Field(description="the production branch's name (an operator setting)")
    production_branch_exists: bool
    branches: int
    computes: int


class BranchSummary(BaseModel):
    name: str
    id: str
    parent: str | None = Field(default=None, description="the parent branch's name (its id if not listed)")
    created_at: datetime | None = None
    default: bool = False
    protected: bool = Field(default=False, description="protected from changes by this server's tools")
    protected_because: str | None = None
    expires_at: datetime | None = None
    compute: str | None = Field(
        default=None, description="state of the branch's read-write compute (active, idle, …); null: it has none"
    )
    read_only_computes: int = 0
    logical_size: int | None = Field(default=None, description="bytes")
    depth: int = Field(default=0, description="depth in the branch tree (0: a root)")


class BranchList(BaseModel):
    project_id: str
    branches: list[BranchSummary] = Field(description="depth-first: each branch before its children")


class EndpointInfo(BaseModel):
    id: str
    type: str
    state: str
    pending_state: str | None = None
    host: str
    disabled: bool = False
    autoscaling_limit_min_cu: float | None = None
    autoscaling_limit_max_cu: float | None = None
    suspend_timeout_seconds: int | None = None
    last_active: datetime | None = None


class DatabaseInfo(BaseModel):
    name: str
    owner: str


class RoleInfo(BaseModel):
    name: str
    protected: bool = False


class BranchDescription(BranchSummary):
    parent_id: str | None = None
    parent_lsn: str | None = None
    parent_timestamp: datetime | None = None
    current_state: str | None = None
    endpoints: list[EndpointInfo] = Field(default_factory=list)
    databases: list[DatabaseInfo] = Field(default_factory=list)
    roles: list[RoleInfo] = Field(default_factory=list)
    children: list[str] = Field(default_factory=list, description="names of the branches made from this one")


class ConnectionString(BaseModel):
    uri: str
    password_redacted: bool
    branch: str
    branch_id: str
    database: str
    role: str
    host: str
    pooled: bool
    protected_because: str | None = Field(default=None, description="why this server protects the branch")
    advice: str
    password_note: str | None = None


class SchemaComparison(BaseModel):
    branch: str
    branch_id: str
    base_branch: str
    base_branch_id: str
    database: str
    identical: bool
    added: int = Field(description="lines added in the whole diff")
    removed: int = Field(description="lines removed in the whole diff")
    diff: str = Field(description="unified diff from the base branch's schema to the branch's")
    truncated: bool = False
    omitted_bytes: int = 0


class NeonViews:
    """The read-only Neon views, over the server's client and directory.

    ``project_id`` is the configured project (NEON_PROJECT_ID), ``production_branch`` the production branch's name,
    ``reveal_passwords`` whether connection strings keep their password, ``max_bytes`` where a schema diff is cut.
    """

    def __init__(
        self,
        neon: NeonClient,
        directory: Directory,
        *,
        production_branch: str,
        project_id: str | None = None,
        reveal_passwords: bool = False,
        max_bytes: int = 100_000,
    ) -> None:
        self.neon = neon
        self.directory = directory
        self.production_branch = production_branch
        self.project_id = project_id
        self.reveal_passwords = reveal_passwords
        self.max_bytes = max_bytes

    async def project(self, project: str | None = None) -> ProjectDescription:
        """One project (id or name; default: the served one) with its branch and compute counts."""
        return (await self.project_and_branches(project))[0]

    async def project_and_branches(self, project: str | None = None) -> tuple[ProjectDescription, BranchList]:
        """One project (id or name; default: the served one) and its branch tree, from the same three requests
        (the project, its branches, its computes)."""
        directory = self.directory
        found = await directory.project(project)
        detail = await self.neon.get_project(found.id)
        branches = await directory.branches(found.id, refresh=True)
        endpoints = await self.neon.list_endpoints(found.id)
        default = next((b for b in branches if b.default), None)
        production = self.production_branch
        served = project is None or await self._is_served(detail.id)
        description = ProjectDescription(
            **project_summary(detail, served=served).model_dump(),
            history_retention_seconds=detail.history_retention_seconds,
            default_branch=default.name if default else None,
            default_branch_id=default.id if default else None,
            production_branch=production,
            production_branch_exists=any(b.name == production for b in branches),
            branches=len(branches),
            computes=len(endpoints),
        )
        return description, self._tree(found.id, branches, endpoints)

    async def _is_served(self, project_id: str) -> bool:
        """Whether the project the tools default to is ``project_id`` (``False`` when none is settled)."""
        try:
            return await self.directory.project_id() == project_id
        except InvalidInput:
            return False

    async def branches(self, project: str | None = None) -> BranchList:
        """The current branch tree: one branches request and one endpoints request for the whole project."""
        directory = self.directory
        project_id = await directory.project_id(project)
        branches = await directory.branches(project_id, refresh=True)
        endpoints = await self.neon.list_endpoints(project_id)
        return self._tree(project_id, branches, endpoints)

    def _tree(self, project_id: str, branches: list[Branch], endpoints: list[Endpoint]) -> BranchList:
        names = {b.id: b.name for b in branches}
        return BranchList(
            project_id=project_id,
            branches=[self._summary(b, depth, names, endpoints) for b, depth in _tree_order(branches)],
        )

    async def branch(self, ref: str, project: str | None = None) -> BranchDescription:
        """One branch (name or id) of a project (default: the served one): its computes, databases, roles and
        children."""
        directory = self.directory
        client = self.neon
        project_id = await directory.project_id(project)
        branches = await directory.branches(project_id, refresh=True)
        found = await directory.branch(ref, project=project_id)
        endpoints = await client.list_endpoints(project_id, found.id)
        databases = await client.list_databases(project_id, found.id)
        roles = await client.list_roles(project_id, found.id)
        names = {b.id: b.name for b in branches}
        depth = len(_ancestors(found, {b.id: b for b in branches}))
        return BranchDescription(
            **self._summary(found, depth, names, endpoints).model_dump(),
            parent_id=found.parent_id,
            parent_lsn=found.parent_lsn,
            parent_timestamp=found.parent_timestamp,
            current_state=found.current_state,
            endpoints=[_endpoint_info(e) for e in endpoints],
            databases=[DatabaseInfo(name=d.name, owner=d.owner_name) for d in databases],
            roles=[RoleInfo(name=r.name, protected=r.protected) for r in roles],
            children=[b.name for b in branches if b.parent_id == found.id],
        )

    async def connection_string(
        self, branch: str | None = None, database: str | None = None, role: str | None = None, *, pooled: bool = True
    ) -> ConnectionString:
        """The connection URI of a branch's read-write compute; its password redacted unless the operator allows."""
        target = await self.directory.target(branch, database, role)
        secret = await self.neon.connection_uri(
            target.project_id, target.branch_id, target.database, target.role, pooled=pooled
        )
        uri = secret.get_secret_value()
        reveal = self.reveal_passwords
        shown, had_password = (uri, False) if reveal else redact_password(uri)
        return ConnectionString(
            uri=shown,
            password_redacted=had_password,
            branch=target.branch_name,
            branch_id=target.branch_id,
            database=target.database,
            role=target.role,
            host=urlsplit(uri).netloc.rpartition("@")[2],
            pooled=pooled,
            protected_because=target.protected_because,
            advice=_POOLED_ADVICE if pooled else _DIRECT_ADVICE,
            password_note=_REDACTION_NOTE.format(mask=_REDACTED) if had_password else None,
        )

    async def compare_schemas(
        self, branch: str, base_branch: str | None = None, database: str | None = None
    ) -> SchemaComparison:
        """Neon's schema diff of ``database`` from ``base_branch`` (default: the branch's parent) to ``branch``.

        The diff is cut at ``max_bytes`` (on a line boundary); raises ``InvalidInput`` when the branch has no parent
        and no base is named.
        """
        directory = self.directory
        project_id = await directory.project_id()
        found = await directory.branch(branch)
        if base_branch is not None:
            base = await directory.branch(base_branch)
        elif found.parent_id is not None:
            base = await directory.branch(found.parent_id)
        else:
            raise InvalidInput(f"branch {found.name} has no parent: name base_branch= to compare it with")
        db = await directory.database(project_id, found, database)
        diff = await self.neon.compare_schema(project_id, found.id, base_branch_id=base.id, database=db.name)
        added, removed = _counts(diff)
        shown = _cut(diff, self.max_bytes)
        omitted = len(diff.encode()) - len(shown.encode())
        return SchemaComparison(
            branch=found.name,
            branch_id=found.id,
            base_branch=base.name,
            base_branch_id=base.id,
            database=db.name,
            identical=not diff.strip(),
            added=added,
            removed=removed,
            diff=shown,
            truncated=omitted > 0,
            omitted_bytes=omitted,
        )

    def _summary(self, branch: Branch, depth: int, names: dict[str, str], endpoints: list[Endpoint]) -> BranchSummary:
        mine = [e for e in endpoints if e.branch_id == branch.id]
        writer = next((e for e in mine if e.type == "read_write"), None)
        reason = self.directory.protection(branch)
        parent = None if branch.parent_id is None else names.get(branch.parent_id, branch.parent_id)
        return BranchSummary(
            name=branch.name,
            id=branch.id,
            parent=parent,
            created_at=branch.created_at,
            default=branch.default,
            protected=reason is not None,
            protected_because=reason,
            expires_at=branch.expires_at,
            compute=writer.current_state if writer else None,
            read_only_computes=sum(1 for e in mine if e.type == "read_only"),
            logical_size=branch.logical_size,
            depth=depth,
        )


def project_summary(project: Project, *, served: bool) -> ProjectSummary:
    return ProjectSummary(
        id=project.id,
        name=project.name,
        region_id=project.region_id,
        pg_version=project.pg_version,
        created_at=project.created_at,
        served=served,
    )


def _endpoint_info(endpoint: Endpoint) -> EndpointInfo:
    extra: dict[str, Any] = endpoint.model_extra or {}
    return EndpointInfo(
        id=endpoint.id,
        type=endpoint.type,
        state=endpoint.current_state,
        pending_state=endpoint.pending_state,
        host=endpoint.host,
        disabled=endpoint.disabled,
        autoscaling_limit_min_cu=extra.get("autoscaling_limit_min_cu"),
        autoscaling_limit_max_cu=extra.get("autoscaling_limit_max_cu"),
        suspend_timeout_seconds=endpoint.suspend_timeout_seconds,
        last_active=endpoint.last_active,
    )


def _ancestors(branch: Branch, by_id: dict[str, Branch]) -> list[Branch]:
    found: list[Branch] = []
    seen = {branch.id}
    current = by_id.get(branch.parent_id) if branch.parent_id else None
    while current is not None and current.id not in seen:
        found.append(current)
        seen.add(current.id)
        current = by_id.get(current.parent_id) if current.parent_id else None
    return found


def _tree_order(branches: Sequence[Branch]) -> list[tuple[Branch, int]]:
    """Depth-first, each branch before its children, siblings oldest first; a branch whose parent is not listed is a
    root (the default branch leads the roots)."""
    ids = {b.id for b in branches}
    children: dict[str | None, list[Branch]] = {}
    for branch in branches:
        parent = branch.parent_id if branch.parent_id in ids and branch.parent_id != branch.id else None
        children.setdefault(parent, []).append(branch)

    def key(branch: Branch) -> tuple[bool, str, str]:
        return (not branch.default, branch.created_at.isoformat() if branch.created_at else "", branch.name)

    ordered: list[tuple[Branch, int]] = []
    visited: set[str] = set()
    stack = [(b, 0) for b in sorted(children.get(None, []), key=key, reverse=True)]
    while stack:
        branch, depth = stack.pop()
        if branch.id in visited:
            continue
        visited.add(branch.id)
        ordered.append((branch, depth))
        stack += [(child, depth + 1) for child in sorted(children.get(branch.id, []), key=key, reverse=True)]
    # A parent cycle (not something Neon allows) would leave branches unreached: list them as roots.
    ordered += [(b, 0) for b in branches if b.id not in visited]
    return ordered


def redact_password(uri: str) -> tuple[str, bool]:
    """``uri`` with the password in its user info replaced by ``_REDACTED``; whether there was one."""
    parts = urlsplit(uri)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not at or not colon:
        return uri, False
    return urlunsplit(parts._replace(netloc=f"{user}:{_REDACTED}@{hostport}")), True


def _counts(diff: str) -> tuple[int, int]:
    """Lines added and removed, read hunk by hunk (a removed SQL comment also starts with ``---``, like a header)."""
    added = removed = 0
    old_left = new_left = 0
    for line in diff.splitlines():
        if old_left > 0 or new_left > 0:
            if line.startswith("-"):
                removed += 1
                old_left -= 1
            elif line.startswith("+"):
                added += 1
                new_left -= 1
            elif not line.startswith("\\"):
                old_left -= 1
                new_left -= 1
            continue
        hunk = _HUNK.match(line)
        if hunk:
            old_left = int(hunk["old"] or 1)
            new_left = int(hunk["new"] or 1)
    return added, removed


def _cut(text: str, budget: int) -> str:
    """``text`` up to ``budget`` UTF-8 bytes, ending on a line boundary (mid-line only for a first line too long)."""
    if len(text.encode()) <= budget:
        return text
    head = text.encode()[:budget].decode(errors="ignore")
    line_end = head.rfind("\n")
    return head[: line_end + 1] if line_end >= 0 else head
