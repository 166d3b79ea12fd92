"""Targets: which Neon project, branch, database and role a call means, resolved once and cached.

A ``Target`` is (project, branch, database, role). Callers name branches by name or id; the ``Directory`` answers from
its cache after the first lookup, so a warm tool call makes no API request to find where it runs. Branch tools that
change the branch list call ``forget`` to refresh it.

Defaults follow the settings: ``NEON_PROJECT_ID`` (else the only project), ``NEON_BRANCH`` (else the project's default
branch), ``NEON_DATABASE`` (else ``neondb``, else the only database), ``NEON_ROLE`` (else the database's owner). Every
"not found" lists what exists.

Protection is decided here too: a branch is protected when it is the production branch (by name, from the settings),
when Neon marks it protected, or when it is the project's default branch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidInput, NeonAPIFailure
from .client import NeonClient
from .models import Branch, Database, Project, Role

__all__ = ["Directory", "Target", "protection_reason"]

_LISTED = 20
"""Most names an error message lists."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a call runs on Neon; ``protected_because`` is ``None`` for an unprotected branch."""

    project_id: str
    branch_id: str
    branch_name: str
    database: str
    role: str
    protected_because: str | None = None

    @property
    def label(self) -> str:
        return f"branch {self.branch_name} ({self.branch_id}), database {self.database}"


def protection_reason(branch: Branch, production_branch: str) -> str | None:
    """Why ``branch`` is protected, or ``None`` when it is not."""
    if branch.name == production_branch:
        return "it is the production branch"
    if branch.protected:
        return "Neon marks it protected"
    if branch.default:
        return "it is the project's default branch"
    return None


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    more = len(names) - _LISTED
    return (shown + (f" and {more} more" if more > 0 else "")) or "(none)"


class Directory:
    """Names → ids for one Neon account, cached per project and branch."""

    def __init__(
        self,
        client: NeonClient,
        *,
        production_branch: str = "production",
        project_id: str | None = None,
        branch: str | None = None,
        database: str | None = None,
        role: str | None = None,
    ) -> None:
        self.client = client
        self.production_branch = production_branch
        self._project_setting = project_id
        self._branch_setting = branch
        self._database_setting = database
        self._role_setting = role
        self._default_project: Project | None = None
        self._projects: dict[str, Project] = {}
        self._branches: dict[str, list[Branch]] = {}
        self._databases: dict[tuple[str, str], list[Database]] = {}
        self._roles: dict[tuple[str, str], list[Role]] = {}
        self._lock = asyncio.Lock()

    # --- projects --------------------------------------------------------------------------------------------------

    async def project(self, project: str | None = None) -> Project:
        """The project named (id or name), else the configured one, else the account's only project.

        Found projects are cached by id and by the name they were asked for (until ``forget_project``), as branches
        are by name: a project renamed meanwhile still answers to its old name in this server.
        """
        if project is None and self._default_project is not None:
            return self._default_project
        wanted = project or self._project_setting
        if wanted is not None and wanted in self._projects:
            return self._projects[wanted]
        async with self._lock:
            found = await self._find_project(wanted)
        self._projects[found.id] = found
        if wanted is not None:
            self._projects[wanted] = found
        if project is None:
            self._default_project = found
        return found

    async def _find_project(self, wanted: str | None) -> Project:
        if wanted is not None:
            try:
                return await self.client.get_project(wanted)  # one request when it is an id, as it usually is
            except NeonAPIFailure as exc:
                if exc.status not in (400, 404):
                    raise
            # A name: Neon's search narrows the list to names and ids containing it, then the exact match is picked.
            candidates = await self.client.list_account_projects(search=wanted)
            named = [p for p in candidates if wanted in (p.id, p.name)]
            if len(named) == 1:
                return named[0]
            if named:
                raise InvalidInput(
                    f"several projects are named {wanted!r}: "
                    + _listing([f"{p.name} ({p.id})" for p in named])
                    + "; name one by its id"
                )
            projects = await self.client.list_account_projects()
            raise InvalidInput(
                f"project {wanted!r} not found; projects this API key sees: "
                + _listing([f"{p.name} ({p.id})" for p in projects])
            )
        projects = await self.client.list_account_projects()
        if len(projects) == 1:
            return projects[0]
        if not projects:
            raise InvalidInput(
                "this Neon API key sees no project; create one (create_project, Neon's console or neonctl)"
            )
        raise InvalidInput(
            "this API key sees several projects and none is configured; set NEON_PROJECT_ID to one of them (tools "
            "that take project= accept a name or an id): " + _listing([f"{p.name} ({p.id})" for p in projects])
        )

    @property
    def configured(self) -> str | None:
        """The project the operator configured (NEON_PROJECT_ID: an id or a name), if any."""
        return self._project_setting

    def settled_id(self) -> str | None:
        """The id of the project the tools default to, if it was resolved already (no request)."""
        return self._default_project.id if self._default_project is not None else None

    async def served(self) -> Project | None:
        """The project the tools default to, or ``None`` when none is settled (several projects and no
        ``NEON_PROJECT_ID``, none at all, or a configured one that does not exist)."""
        try:
            return await self.project()
        except InvalidInput:
            return None

    async def project_id(self, project: str | None = None) -> str:
        return (await self.project(project)).id

    # --- branches --------------------------------------------------------------------------------------------------

    async def branches(self, project: str | None = None, *, refresh: bool = False) -> list[Branch]:
        """Every branch of the project (cached until ``forget`` or ``refresh``)."""
        project_id = await self.project_id(project)
        cached = self._branches.get(project_id)
        if cached is not None and not refresh:
            return cached
        branches = await self.client.list_branches(project_id)
        self._branches[project_id] = branches
        return branches

    async def branch(self, ref: str | None = None, *, project: str | None = None) -> Branch:
        """The branch with this id or name; ``None`` means ``NEON_BRANCH``, else the project's default branch.

        A name not in the cache refreshes it once (another client may have just created the branch).
        """
        wanted = ref or self._branch_setting
        for refresh in (False, True):
            branches = await self.branches(project, refresh=refresh)
            found = _pick_branch(branches, wanted)
            if found is not None:
                return found
        branches = await self.branches(project)
        if wanted is None:
            raise InvalidInput("the project has no default branch; name a branch (list_branches shows them)")
        raise InvalidInput(f"branch {wanted!r} not found; branches: " + _listing([b.name for b in branches]))

    def protection(self, branch: Branch) -> str | None:
        return protection_reason(branch, self.production_branch)

    def forget_project(self, project_id: str) -> None:
        """Drop everything cached about a project that was deleted (the default project too, if it was that one)."""
        self._projects = {key: p for key, p in self._projects.items() if p.id != project_id}
        if self._default_project is not None and self._default_project.id == project_id:
            self._default_project = None
        self.forget(project_id)

    def forget(self, project_id: str | None = None) -> None:
        """Drop cached branches (and their databases and roles): the next lookup asks Neon again."""
        if project_id is None:
            self._branches.clear()
            self._databases.clear()
            self._roles.clear()
            return
        self._branches.pop(project_id, None)
        for cache in (self._databases, self._roles):
            for key in [key for key in cache if key[0] == project_id]:
                del cache[key]

    # --- databases and roles ---------------------------------------------------------------------------------------

    async def databases(self, project_id: str, branch_id: str) -> list[Database]:
        key = (project_id, branch_id)
        if key not in self._databases:
            self._databases[key] = await self.client.list_databases(project_id, branch_id)
        return self._databases[key]

    async def roles(self, project_id: str, branch_id: str) -> list[Role]:
        key = (project_id, branch_id)
        if key not in self._roles:
            self._roles[key] = await self.client.list_roles(project_id, branch_id)
        return self._roles[key]

    async def database(self, project_id: str, branch: Branch, name: str | None) -> Database:
        """The database named, else ``NEON_DATABASE``, else ``neondb``, else the branch's only database."""
        databases = await self.databases(project_id, branch.id)
        wanted = name or self._database_setting
        if wanted is not None:
            for database in databases:
                if database.name == wanted:
                    return database
            raise InvalidInput(
                f"database {wanted!r} not found on branch {branch.name}; databases: "
                + _listing([d.name for d in databases])
            )
        for database in databases:
            if database.name == "neondb":
                return database
        if len(databases) == 1:
            return databases[0]
        if not databases:
            raise InvalidInput(f"branch {branch.name} has no database")
        raise InvalidInput(
            f"branch {branch.name} has several databases and none is named neondb; pass database= or set "
            "NEON_DATABASE to one of: " + _listing([d.name for d in databases])
        )

    async def role(self, project_id: str, branch: Branch, database: Database, name: str | None) -> str:
        """The role named, else ``NEON_ROLE``, else the database's owner; checked against the branch's roles."""
        wanted = name or self._role_setting or database.owner_name
        if wanted == database.owner_name:
            return wanted  # the owner exists: Neon just listed it as the database's owner
        roles = await self.roles(project_id, branch.id)
        if any(role.name == wanted for role in roles):
            return wanted
        raise InvalidInput(
            f"role {wanted!r} not found on branch {branch.name}; roles: " + _listing([r.name for r in roles])
        )

    async def target(self, branch: str | None = None, database: str | None = None, role: str | None = None) -> Target:
        """Resolve a call's target (every part defaulted as the module docstring says)."""
        project_id = await self.project_id()
        found = await self.branch(branch)
        db = await self.database(project_id, found, database)
        role_name = await self.role(project_id, found, db, role)
        return Target(project_id, found.id, found.name, db.name, role_name, self.protection(found))


def _pick_branch(branches: Sequence[Branch], wanted: str | None) -> Branch | None:
    if wanted is None:
        return next((b for b in branches if b.default), None)
    for branch in branches:
        if branch.id == wanted:
            return branch
    for branch in branches:
        if branch.name == wanted:
            return branch
    return None
