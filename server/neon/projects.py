"""Projects and organisations: the account level of Neon.

``create`` makes a project whose root branch is named after the production-branch setting (Neon would call it
``main``) and marked protected by Neon, waits for its operations, and answers how to reach it: connection URIs with
the password redacted unless ``reveal`` (the operator's ``reveal_passwords`` and the user's yes, asked by the tool).
Before it creates anything it settles which project the server serves, so that a server serving "the only project"
keeps serving the same one once there are two.

``plan_delete`` checks a deletion and says what goes (branches, computes; their sizes in the binding) and whether it
can be undone: Neon keeps a deleted project recoverable for 7 days (``POST /projects/{id}/recover``, "Deleted
projects can be recovered within 7 days" in Neon's API reference), local Neon removes it and its data at once.
Refused, before anyone is asked: the project the server serves (unless ``allow_deleting_served_project``), a project
holding a branch Neon marks protected (Neon refuses to delete those; the way out is said), and whatever the access
verdict refuses (``server.access``: in access mode branches a project, whose default branch is protected, is never
deleted). ``delete`` runs a plan and writes it to the audit log.

``organizations``, ``projects`` (across the user's organisations, optionally one, with Neon's name search) and
``shared`` list the account. Organisation names and ids are both accepted wherever one is named.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, SecretStr

from .. import access, progress
from ..errors import InvalidInput, NeonAPIFailure, NeonMCPError, PolicyViolation
from ..settings import AccessMode
from ..state.audit import AuditLog, AuditRecord, Confirmed
from ..state.binding import Binding, Bound
from .views import ProjectSummary, project_summary, redact_password

if TYPE_CHECKING:
    from .client import NeonClient
    from .connections import Connections
    from .models import Branch, Endpoint, Organization, Project
    from .targets import Directory

__all__ = [
    "OrganizationInfo",
    "OrganizationList",
    "ProjectCreated",
    "ProjectDeleted",
    "ProjectDeletion",
    "ProjectList",
    "ProjectService",
    "SharedProjectList",
    "undo_of_deletion",
]

logger = logging.getLogger(__name__)

_LISTED = 12
_MASK = "****"
_NEON_RECOVERY_DAYS = 7
"""Neon's deletion recovery period (API reference of deleteProject and recoverProject)."""


class OrganizationInfo(BaseModel):
    id: str
    name: str
    plan: str | None = None
    managed_by: str | None = None
    created_at: datetime | None = None


class OrganizationList(BaseModel):
    organizations: list[OrganizationInfo]


class AccountProject(ProjectSummary):
    org_id: str | None = Field(default=None, description="the organisation it belongs to")
    org: str | None = Field(default=None, description="that organisation's name")


class ProjectList(BaseModel):
    projects: list[AccountProject]
    served: str | None = Field(default=None, description="id of the project this server serves, if one is settled")
    organizations: list[str] = Field(default_factory=list, description="ids of the organisations listed")
    search: str | None = None
    note: str | None = None


class SharedProjectList(BaseModel):
    projects: list[ProjectSummary] = Field(description="projects other accounts share with this one")


class ProjectBranch(BaseModel):
    name: str
    id: str
    default: bool = False
    protected: bool = Field(default=False, description="Neon marks it protected")
    protected_because: str | None = Field(default=None, description="why this server protects it")


class ProjectCreated(BaseModel):
    """What create_project made, and how to reach it."""

    id: str
    name: str
    region_id: str | None = None
    pg_version: int | None = None
    org_id: str | None = None
    branches: list[ProjectBranch]
    compute: str | None = Field(default=None, description="id of the default branch's read-write compute")
    host: str | None = Field(default=None, description="that compute's host")
    database: str | None = None
    role: str | None = None
    connection_uri: str | None = Field(default=None, description="direct connection URI")
    pooled_connection_uri: str | None = Field(default=None, description="through Neon's PgBouncer (transaction mode)")
    password_redacted: bool = Field(description="the URIs carry **** instead of the role's password")
    served: bool = Field(description="this server's tools now default to this project")
    notes: list[str] = Field(default_factory=list)
    elapsed_ms: float


class ProjectDeleted(BaseModel):
    """What delete_project did (or, before confirmation, would do)."""

    project: str
    project_id: str
    branches: list[str] = Field(description="names of the branches that go with it")
    computes: int = Field(description="computes that go with it")
    logical_size: int | None = Field(default=None, description="bytes: the branches' logical sizes added up")
    recoverable: bool = Field(description="whether the deletion can be undone (on Neon, for 7 days)")
    undo: str = Field(description="how, and until when, it can be undone, or that it cannot")
    notes: list[str] = Field(default_factory=list)


def on_local_neon(project: Project) -> bool:
    """Whether ``project`` lives on local Neon (its one platform and region are ``local``)."""
    return "local" in (project.platform_id, project.region_id)


def undo_of_deletion(project: Project) -> tuple[bool, str]:
    """Whether deleting ``project`` can be undone, and how (deterministic: it goes into the confirmed summary)."""
    if on_local_neon(project):
        return False, "Local Neon removes the project and its data at once: this cannot be undone."
    return True, (
        f"Neon keeps a deleted project recoverable for {_NEON_RECOVERY_DAYS} days: Neon's console, neonctl projects "
        f"recover {project.id}, or POST /projects/{project.id}/recover bring back its branches, computes, settings "
        "and connection strings (some integrations must be set up again). After that it is gone for good."
    )


def _names(items: Sequence[str]) -> str:
    more = len(items) - _LISTED
    return ", ".join(items[:_LISTED]) + (f" and {more} more" if more > 0 else "")


def _logical_size(branches: Sequence[Branch]) -> int | None:
    sizes = [b.logical_size for b in branches if b.logical_size is not None]
    return sum(sizes) if sizes else None


@dataclass(frozen=True, slots=True)
class ProjectDeletion:
    """A checked project deletion that has not run (a ``Change``: ``server.mcp.confirmations``)."""

    project: Project
    branches: tuple[Branch, ...]
    endpoints: tuple[Endpoint, ...]
    recoverable: bool
    undo: str
    summary: str
    neon: NeonClient = field(repr=False, compare=False)
    served: bool = False
    """It is the project this server serves (the operator allowed deleting it)."""
    needs_confirmation: bool = True

    def preview(self) -> dict[str, object]:
        return self.deleted().model_dump(mode="json", exclude_none=True)

    async def binding(self) -> Binding:
        """The project and each of its branches as they are now (ids and logical sizes, read again each time)."""
        branches = await self.neon.list_branches(self.project.id)
        project = Bound("project", self.project.name, f"project {self.project.id}", bytes=_logical_size(branches))
        return (project, *(Bound("branch", b.name, f"branch {b.id}", bytes=b.logical_size) for b in branches))

    def deleted(self) -> ProjectDeleted:
        return ProjectDeleted(
            project=self.project.name,
            project_id=self.project.id,
            branches=[b.name for b in self.branches],
            computes=len(self.endpoints),
            logical_size=_logical_size(self.branches),
            recoverable=self.recoverable,
            undo=self.undo,
        )


class ProjectService:
    """Creates, deletes and lists projects, and lists organisations (see the module docstring)."""

    def __init__(
        self,
        neon: NeonClient,
        directory: Directory,
        connections: Connections,
        audit: AuditLog,
        *,
        access_mode: AccessMode,
        production_branch: str,
        reveal_passwords: bool = False,
        allow_deleting_served_project: bool = False,
    ) -> None:
        self.neon = neon
        self.directory = directory
        self.connections = connections
        self.audit = audit
        self.access_mode: AccessMode = access_mode
        self.production_branch = production_branch
        self.reveal_passwords = reveal_passwords
        self.allow_deleting_served_project = allow_deleting_served_project

    # --- organisations and lists -------------------------------------------------------------------------------------

    async def organizations(self) -> OrganizationList:
        """The organisations the API key's user belongs to."""
        return OrganizationList(organizations=[_organization(o) for o in await self.neon.list_organizations()])

    async def organization(self, ref: str) -> Organization:
        """The organisation with this id or name; raises ``InvalidInput`` listing them when none (or several) match."""
        return _pick(await self.neon.list_organizations(), ref)

    async def projects(self, org: str | None = None, search: str | None = None) -> ProjectList:
        """The projects of every organisation of the user (or of ``org``), those matching ``search`` (part of a name
        or id) if given; the served project is marked."""
        search = (search or "").strip() or None
        try:
            organizations = await self.neon.list_organizations()
        except NeonAPIFailure as exc:  # an organisation's API key is no user's: its projects list all the same
            if exc.status not in (401, 403, 404) or org is not None:
                raise
            organizations = []
        names = {o.id: o.name for o in organizations}
        if org is not None:
            chosen = _pick(organizations, org)
            projects = await self.neon.list_projects(search=search, org_id=chosen.id)
            listed = [chosen.id]
        else:
            projects = await self.neon.list_account_projects(search=search)
            listed = [o.id for o in organizations]
        complete = org is None and search is None
        wanted = self.directory.configured
        served = self.directory.settled_id()
        if served is None and wanted is not None:
            served = next((p.id for p in projects if wanted in (p.id, p.name)), None)
        elif served is None and complete and len(projects) == 1:
            served = projects[0].id
        note = None
        if complete and served is None and wanted is not None:
            note = f"NEON_PROJECT_ID {wanted!r} is not among these projects"
        elif complete and served is None and len(projects) > 1:
            note = (
                "several projects and no NEON_PROJECT_ID: tools that take project= work on any of them (by name or "
                "id); for the others the operator must set NEON_PROJECT_ID"
            )
        return ProjectList(
            projects=[
                AccountProject(
                    **project_summary(p, served=served is not None and p.id == served).model_dump(),
                    org_id=p.org_id,
                    org=names.get(p.org_id or ""),
                )
                for p in projects
            ],
            served=served,
            organizations=listed,
            search=search,
            note=note,
        )

    async def shared(self, search: str | None = None) -> SharedProjectList:
        """Projects other accounts share with this one."""
        shared = await self.neon.list_shared_projects(search=(search or "").strip() or None)
        return SharedProjectList(projects=[project_summary(p, served=False) for p in shared])

    # --- create ------------------------------------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        *,
        region: str | None = None,
        pg_version: int | None = None,
        org: str | None = None,
        reveal: bool = False,
    ) -> ProjectCreated:
        """Create project ``name`` and return once its operations finished, its default branch is protected and its
        URIs are known; the URIs keep their password only if ``reveal`` and the operator's ``reveal_passwords``.

        Raises ``InvalidInput`` for bad arguments (Neon's refusal quoted) and ``PolicyViolation`` in access mode
        read-only. A project that Neon made but that did not become ready is reported, not deleted.
        """
        started = time.monotonic()
        access.decide("create_project", self.access_mode).enforced()
        name = name.strip()
        if not name:
            raise InvalidInput("name is empty: give the new project a name")
        neon = self.neon
        org_id = (await self.organization(org)).id if org else None
        served_before = await self.directory.served()  # the server keeps serving it once there are two
        await progress.report(0, None, f"creating project {name}")
        try:
            created = await neon.create_project(
                name=name,
                region_id=region,
                pg_version=pg_version,
                org_id=org_id,
                branch_name=self.production_branch,
            )
        except NeonAPIFailure as exc:
            if exc.status == 400 and "org_id" in exc.message:
                organizations = await neon.list_organizations()
                raise InvalidInput(
                    "Neon needs to know the organisation of the new project; pass org_id= one of: "
                    + _names([f"{o.name} ({o.id})" for o in organizations])
                ) from exc
            if exc.status in (400, 409, 422):
                raise InvalidInput(f"Neon refused to create project {name}: {exc.message}") from exc
            raise
        project, branch = created.project, created.branch
        owner = created.databases[0] if created.databases else None
        database, role = (owner.name, owner.owner_name) if owner else (None, None)
        pooled = None
        try:
            await neon.wait_for_operations(project.id, created.operations, progress=progress.report)
            protected, notes = await self._protect(project.id, branch)
            if database is not None and role is not None:
                pooled = await neon.connection_uri(project.id, branch.id, database, role, pooled=True)
        except NeonMCPError as exc:
            raise NeonMCPError(
                f"project {name} ({project.id}) was created but did not become ready ({exc}); look at it with "
                "describe_project, and delete it with delete_project if it is of no use"
            ) from exc
        branch = branch.model_copy(update={"protected": protected})
        show = reveal and self.reveal_passwords
        direct_uri, hidden = _shown(created.connection_uri, show)
        pooled_uri, hidden_pooled = _shown(pooled, show)
        if hidden or hidden_pooled:
            notes.append(
                f"the password is redacted ({_MASK}); find it in Neon's console (Connect)"
                + ("" if self.reveal_passwords else ", or ask the operator to set NEON_MCP_REVEAL_PASSWORDS=true")
            )
        served_now = served_before or await self.directory.served()
        served = served_now is not None and served_now.id == project.id
        if not served:
            where = f"{served_now.name} ({served_now.id})" if served_now else "no project (several and none set)"
            notes.append(
                f"this server's tools keep working on {where}; describe_project, list_branches and fetch take "
                f"project={project.id}, and the operator can set NEON_PROJECT_ID={project.id} to make it the default"
            )
        endpoint = next((e for e in created.endpoints if e.type == "read_write"), None)
        return ProjectCreated(
            id=project.id,
            name=project.name,
            region_id=project.region_id,
            pg_version=project.pg_version,
            org_id=project.org_id or org_id,
            branches=[
                ProjectBranch(
                    name=branch.name,
                    id=branch.id,
                    default=True,
                    protected=branch.protected,
                    protected_because=self.directory.protection(branch),
                )
            ],
            compute=endpoint.id if endpoint else None,
            host=endpoint.host if endpoint else None,
            database=database,
            role=role,
            connection_uri=direct_uri,
            pooled_connection_uri=pooled_uri,
            password_redacted=hidden or hidden_pooled,
            served=served,
            notes=notes,
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )

    async def _protect(self, project_id: str, branch: Branch) -> tuple[bool, list[str]]:
        """Mark the new root branch protected on Neon: whether it is, and the note to give when Neon refused
        (protected branches come with Neon's paid plans); this server protects it anyway (its name, its being the
        default branch)."""
        try:
            _, operations = await self.neon.update_branch(project_id, branch.id, protected=True)
            await self.neon.wait_for_operations(project_id, operations, progress=progress.report)
        except NeonAPIFailure as exc:
            if exc.status is None or exc.status >= 500:
                raise
            return False, [
                f"Neon did not mark branch {branch.name} protected ({exc.message}); this server protects it anyway "
                "(the production branch and the default branch), but other clients of Neon do not"
            ]
        return True, []

    # --- delete ------------------------------------------------------------------------------------------------------

    async def plan_delete(self, ref: str) -> ProjectDeletion:
        """Check the deletion of project ``ref`` (name or id) on its current branches and computes; raises
        ``PolicyViolation`` or ``InvalidInput`` with the reason and the way out before anyone is asked."""
        neon = self.neon
        project = await self.directory.project(ref)
        served = await self.directory.served()
        if served is not None and served.id == project.id and not self.allow_deleting_served_project:
            raise PolicyViolation(
                f"project {project.name} ({project.id}) is the project this server serves "
                f"({'NEON_PROJECT_ID' if self.directory.configured else 'the only one this API key sees'}): deleting "
                "it is refused unless the operator sets NEON_MCP_ALLOW_DELETING_SERVED_PROJECT=true"
            )
        branches = tuple(sorted(await neon.list_branches(project.id), key=lambda b: (not b.default, b.name, b.id)))
        locked = [b for b in branches if b.protected]
        if locked:
            raise InvalidInput(
                f"project {project.name} ({project.id}) holds branches Neon marks protected ("
                + _names([f"{b.name} ({b.id})" for b in locked])
                + "), and Neon does not delete a project with protected branches. To delete it, first unprotect them "
                "in Neon's console (Branches → the branch → Set as unprotected) or with the API (PATCH "
                f'/projects/{project.id}/branches/<branch id> with {{"branch": {{"protected": false}}}}), then '
                "call delete_project again"
            )
        guarded = next((b for b in branches if self.directory.protection(b) is not None), None)
        verdict = access.decide(
            "delete_project",
            self.access_mode,
            branch=guarded.name if guarded else None,
            protected_because=self.directory.protection(guarded) if guarded else None,
        ).enforced()
        endpoints = tuple(sorted(await neon.list_endpoints(project.id), key=lambda e: e.id))
        recoverable, undo = undo_of_deletion(project)
        names = {b.id: b.name for b in branches}
        lines = [
            f"Delete project {project.name} ({project.id}) with everything in it:",
            f"  {len(branches)} branch(es): " + (_names([f"{b.name} ({b.id})" for b in branches]) or "(none)"),
            f"  {len(endpoints)} compute(s): "
            + (
                _names([f"{e.id} ({e.type}, branch {names.get(e.branch_id, e.branch_id)})" for e in endpoints])
                or "(none)"
            ),
            "  and every database, role and byte of data on them (the sizes Neon reports are below).",
            undo,
        ]
        return ProjectDeletion(
            project=project,
            branches=branches,
            endpoints=endpoints,
            recoverable=recoverable,
            undo=undo,
            summary="\n".join(lines),
            neon=neon,
            served=served is not None and served.id == project.id,
            needs_confirmation=verdict.needs_confirmation,
        )

    async def delete(self, change: ProjectDeletion, confirmed: Confirmed) -> ProjectDeleted:
        """Run a planned deletion (planned again on the current state for a stored one); audited either way."""
        project = change.project
        result = change.deleted()
        try:
            for branch in change.branches:
                await self.connections.forget_branch(branch.id)
            await progress.report(0, None, f"deleting project {project.name}")
            gone = await self.neon.delete_project(project.id)
        except NeonMCPError as exc:
            self._audit(change, confirmed, error=str(exc))
            raise
        finally:
            self.directory.forget_project(project.id)
        if gone is None:
            result.notes.append("Neon says it was already gone")
        if change.served:
            after = await self.directory.served()
            result.notes.append(
                "this server served it; its tools now default to "
                + (f"{after.name} ({after.id}), the only project left" if after else "no project (set NEON_PROJECT_ID)")
                if not self.directory.configured
                else "this server served it (NEON_PROJECT_ID): its tools have no project until the operator changes it"
            )
        self._audit(change, confirmed)
        logger.info("delete_project %s (%s) done", project.name, project.id)
        return result

    def _audit(self, change: ProjectDeletion, confirmed: Confirmed, *, error: str | None = None) -> None:
        self.audit.append(
            AuditRecord(
                target=f"project={change.project.id}",
                sql=f"delete_project {change.project.name} ({len(change.branches)} branches)",
                classification="project",
                confirmation=confirmed.path,
                outcome="error" if error else "ok",
                error=error,
                operation_id=confirmed.operation_id,
            )
        )


def _pick(organizations: Sequence[Organization], ref: str) -> Organization:
    """The organisation whose id (else name) is ``ref``; ``InvalidInput`` listing them when none or several match."""
    found = [o for o in organizations if ref == o.id] or [o for o in organizations if ref == o.name]
    if len(found) == 1:
        return found[0]
    listed = _names([f"{o.name} ({o.id})" for o in organizations]) or "(none)"
    if found:
        raise InvalidInput(f"several organisations are named {ref!r}: {listed}; name one by its id")
    raise InvalidInput(f"organisation {ref!r} not found; organisations: {listed}")


def _organization(o: Organization) -> OrganizationInfo:
    return OrganizationInfo(id=o.id, name=o.name, plan=o.plan, managed_by=o.managed_by, created_at=o.created_at)


def _shown(uri: SecretStr | None, reveal: bool) -> tuple[str | None, bool]:
    """A URI as text: as is when ``reveal``, else with its password masked; whether it was masked."""
    if uri is None:
        return None, False
    text = uri.get_secret_value()
    return (text, False) if reveal else redact_password(text)
