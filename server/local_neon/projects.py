"""Projects and their operations.

Creating a project makes its root branch (``production`` unless the request names another) with database ``neondb``
owned by ``neondb_owner`` (or the names the request gives), and a read-write endpoint: a ``create_timeline``
operation runs initdb and creates them, a ``start_compute`` operation reports the endpoint up. If initdb fails, the
project is removed again; its operations stay readable. Every project belongs to an organisation (``accounts``):
the one the request names, else the default. A project holding a protected branch cannot be deleted (Neon's rule).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from ..computes.limits import limits_problem, suspend_problem
from . import catalog, ids, replicas, views
from .accounts import Accounts, check_region
from .branches import Branches
from .endpoints import Endpoints
from .errors import bad_request, locked, not_found, unprocessable
from .operations import Step
from .records import Branch, Database, Endpoint, Operation, Project, Role
from .requests import integer, number, section, string
from .routing import route
from .runtime import Runtime

__all__ = ["Projects"]

_MAX_RETENTION = 2592000


class Projects:
    def __init__(self, rt: Runtime, accounts: Accounts, endpoints: Endpoints, branches: Branches) -> None:
        self._rt = rt
        self._accounts = accounts
        self._endpoints = endpoints
        self._branches = branches

    @route("list_projects", "GET", "/projects")
    async def list_projects(
        self, *, limit: int = 10, cursor: str | None = None, search: str | None = None, org_id: str | None = None
    ) -> dict[str, Any]:
        """The user's projects, of every organisation unless ``org_id`` names one (404 for an unknown one)."""
        if not 1 <= limit <= 400:
            raise bad_request("limit must be from 1 to 400")
        records = self._rt.store.list(Project)
        if org_id is not None:
            self._accounts.organization(org_id)
            records = [p for p in records if p.org_id == org_id]
        if search:
            needle = search.lower()
            records = [p for p in records if needle in p.name.lower() or needle in p.id]
        if cursor:
            position = next((i for i, p in enumerate(records) if p.id == cursor), None)
            if position is None:
                raise bad_request(f"cursor {cursor!r} is not valid (it is the id of the last project of a page)")
            records = records[position + 1 :]
        records = records[:limit]
        body: dict[str, Any] = {
            "projects": [views.project_list_item(p, host=self._rt.host) for p in records],
            "applications": {},
            "integrations": {},
        }
        if records:
            body["pagination"] = {"cursor": records[-1].id}
        return body

    @route("list_shared_projects", "GET", "/projects/shared")
    async def list_shared_projects(
        self, *, limit: int = 10, cursor: str | None = None, search: str | None = None
    ) -> dict[str, Any]:
        """Projects others share with the user: none, locally (neonctl's ``projects list`` asks anyway)."""
        if not 1 <= limit <= 400:
            raise bad_request("limit must be from 1 to 400")
        return {"projects": []}

    @route("create_project", "POST", "/projects", status=201)
    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        options = section(body, "project", required=True)
        name = string(options, "name", field="project.name")
        version = integer(options, "pg_version", field="project.pg_version", minimum=14, maximum=18)
        if version is not None and version != self._rt.pg_version:
            raise bad_request(
                f"project.pg_version {version} is not available: local Neon runs PostgreSQL {self._rt.pg_version}"
            )
        retention = integer(
            options,
            "history_retention_seconds",
            field="project.history_retention_seconds",
            minimum=0,
            maximum=_MAX_RETENTION,
        )
        check_region(string(options, "region_id", field="project.region_id"))
        org_id = string(options, "org_id", field="project.org_id", max_length=60)
        org = self._accounts.organization(org_id) if org_id else self._accounts.default_organization()
        root = section(options, "branch")
        branch_name = string(root, "name", field="project.branch.name") or "production"
        database_name = string(root, "database_name", field="project.branch.database_name", max_length=63) or "neondb"
        role_name = string(root, "role_name", field="project.branch.role_name", max_length=63)
        role_name = role_name or f"{database_name}_owner"
        moment = ids.now()
        project_id = ids.project_id()
        project = Project(
            id=project_id,
            name=name or project_id,
            created_at=moment,
            updated_at=moment,
            pg_version=self._rt.pg_version,
            history_retention_seconds=self._rt.history_seconds if retention is None else retention,
            superuser_password=secrets.token_urlsafe(24),
            settings=section(options, "settings"),
            default_endpoint_settings=_endpoint_defaults(options, min_suspend=self._rt.min_suspend_seconds),
            org_id=org.id,
        )
        branch_id = ids.branch_id()
        branch = Branch(
            id=branch_id,
            project_id=project_id,
            name=branch_name,
            timeline=ids.timeline_name(),
            created_at=moment,
            updated_at=moment,
            state_changed_at=moment,
            current_state="init",
            pending_state="ready",
            default=True,
        )
        endpoint = self._endpoints.new(project, branch, {"type": "read_write"}, field="project")
        role = Role(project_id, branch_id, role_name, ids.password(), moment, moment)
        database = Database(
            self._rt.store.next_id("database"), project_id, branch_id, database_name, role_name, moment, moment
        )
        with self._rt.store.transaction():
            self._rt.store.put(project)
            self._rt.store.put(branch)
            self._rt.store.put(endpoint)
            self._rt.store.put(role)
            self._rt.store.put(database)
        steps: list[Step] = [self._init_step(project, branch, endpoint, role, database)]
        steps.append(self._endpoints.start_step(endpoint))
        operations = self._rt.operations.submit(
            project_id, [branch_id], steps, cleanup=lambda: self.discard_unfinished(project_id)
        )
        assert role.password is not None
        return {
            "project": views.project(project, host=self._rt.host, now=moment),
            "connection_uris": [
                views.connection_details(
                    host=self._rt.host,
                    port=self._rt.front_door_port,
                    endpoint_id=endpoint.id,
                    role=role_name,
                    password=role.password,
                    database=database_name,
                )
            ],
            "roles": [views.role(role, with_password=True)],
            "databases": [views.database(database)],
            "operations": [views.operation(op) for op in operations],
            "branch": views.branch(branch),
            "endpoints": [self._endpoints.view(endpoint)],
        }

    def _init_step(self, project: Project, branch: Branch, endpoint: Endpoint, role: Role, database: Database) -> Step:
        operation = self._rt.operations.new(project.id, "create_timeline", branch_id=branch.id)
        timeline = self._rt.computes.timeline(branch.timeline)

        async def run() -> None:
            await asyncio.to_thread(timeline.create)
            cluster = self._rt.computes.cluster(
                branch.timeline, port=endpoint.port, password=project.superuser_password
            )
            base = await asyncio.to_thread(timeline.init_root, cluster)
            port = await self._rt.computes.start(
                branch.timeline, port=endpoint.port, password=project.superuser_password
            )
            if port != endpoint.port:
                fresh = self._rt.store.get(Endpoint, endpoint.id) or endpoint
                fresh.port = port
                self._rt.store.put(fresh)
            async with self._rt.computes.hold(branch.timeline, port=port, password=project.superuser_password) as c:
                assert role.password is not None
                await catalog.bootstrap(c, role=role.name, password=role.password, database=database.name)
            fresh_branch = self._rt.store.get(Branch, branch.id) or branch
            moment = ids.now()
            fresh_branch.current_state = "ready"
            fresh_branch.pending_state = None
            fresh_branch.state_changed_at = moment
            fresh_branch.updated_at = moment
            fresh_branch.history_start = base.time
            fresh_branch.history_start_lsn = base.lsn
            self._rt.store.put(fresh_branch)

        return operation, run

    async def discard_unfinished(self, project_id: str) -> None:
        """After a failed (or interrupted) creation: remove the project unless its root branch's data is there."""
        branch = next(iter(self._rt.store.list(Branch, project_id=project_id)), None)
        if branch is not None and branch.current_state != "init":
            return  # the data is there; only the endpoint failed to start, and it can be started again
        await self._teardown(project_id, keep_operations=True)

    @route("get_project", "GET", "/projects/{project_id}")
    async def get(self, project_id: str) -> dict[str, Any]:
        project = self._rt.project(project_id)
        return {"project": views.project(project, host=self._rt.host, now=ids.now())}

    @route("update_project", "PATCH", "/projects/{project_id}")
    async def update(self, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
        project = self._rt.project(project_id)
        options = section(body, "project", required=True)
        name = string(options, "name", field="project.name")
        if name is not None:
            project.name = name
        retention = integer(
            options,
            "history_retention_seconds",
            field="project.history_retention_seconds",
            minimum=0,
            maximum=_MAX_RETENTION,
        )
        if retention is not None:
            project.history_retention_seconds = retention
        if "settings" in options:
            project.settings = section(options, "settings")
        if "default_endpoint_settings" in options:
            project.default_endpoint_settings = _endpoint_defaults(options, min_suspend=self._rt.min_suspend_seconds)
        project.updated_at = ids.now()
        self._rt.store.put(project)
        return {"project": views.project(project, host=self._rt.host, now=project.updated_at), "operations": []}

    @route("delete_project", "DELETE", "/projects/{project_id}")
    async def delete(self, project_id: str) -> dict[str, Any]:
        project = self._rt.project(project_id)
        protected = [b.name for b in self._rt.store.list(Branch, project_id=project_id) if b.protected]
        if protected:
            raise unprocessable(
                f"project {project_id} has protected branches ({', '.join(protected)}): projects with protected "
                "branches cannot be deleted; unprotect them first"
            )
        if self._rt.operations.busy(project_id):
            raise locked(f"running operations of project {project_id}")
        await self._teardown(project_id, keep_operations=False)
        return {"project": views.project(project, host=self._rt.host, now=ids.now())}

    async def _teardown(self, project_id: str, *, keep_operations: bool) -> None:
        branches = self._rt.store.list(Branch, project_id=project_id)
        endpoints = self._rt.store.list(Endpoint, project_id=project_id)
        with self._rt.store.transaction():
            self._rt.store.delete_all(Endpoint, project_id=project_id)
            self._rt.store.delete_all(Role, project_id=project_id)
            self._rt.store.delete_all(Database, project_id=project_id)
            self._rt.store.delete_all(Branch, project_id=project_id)
            if not keep_operations:
                self._rt.store.delete_all(Operation, project_id=project_id)
            self._rt.store.delete(Project, project_id)
        for endpoint in endpoints:
            await self._rt.poolers.discard(endpoint.id)
            if endpoint.type == "read_only":
                await self._rt.drop_timeline(replicas.replica_name(endpoint.id))
        gate = asyncio.Semaphore(2)

        async def drop(branch: Branch) -> None:
            async with gate:
                await self._rt.computes.forget(branch.timeline)
                await asyncio.to_thread(self._rt.computes.timeline(branch.timeline).remove, self._rt.bindir)

        await asyncio.gather(*(drop(branch) for branch in branches))

    # --- operations ----------------------------------------------------------------------------------------------

    @route("list_operations", "GET", "/projects/{project_id}/operations")
    async def list_operations(
        self, project_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        self._rt.project(project_id)
        if limit is not None and not 1 <= limit <= 1000:
            raise bad_request("limit must be from 1 to 1000")
        records = list(reversed(self._rt.store.list(Operation, project_id=project_id)))
        if cursor:
            position = next((i for i, op in enumerate(records) if op.id == cursor), None)
            if position is None:
                raise bad_request(f"cursor {cursor!r} is not valid (it is the id of the last operation of a page)")
            records = records[position + 1 :]
        if limit is not None:
            records = records[:limit]
        body: dict[str, Any] = {"operations": [views.operation(op) for op in records]}
        if records:
            body["pagination"] = {"cursor": records[-1].id}
        return body

    @route("get_operation", "GET", "/projects/{project_id}/operations/{operation_id}")
    async def get_operation(self, project_id: str, operation_id: str) -> dict[str, Any]:
        record = self._rt.store.get(Operation, operation_id)
        if record is None or record.project_id != project_id:
            if self._rt.store.get(Project, project_id) is None:
                raise not_found("project", project_id)
            raise not_found("operation", operation_id)
        return {"operation": views.operation(record)}


def _endpoint_defaults(options: dict[str, Any], *, min_suspend: int) -> dict[str, Any]:
    """``default_endpoint_settings`` of a project request, validated against Neon's limits (400 naming the limit)."""
    values = section(options, "default_endpoint_settings")
    field = "project.default_endpoint_settings"
    timeout = integer(
        values, "suspend_timeout_seconds", field=f"{field}.suspend_timeout_seconds", minimum=-(2**63), maximum=2**63 - 1
    )
    if timeout is not None and (problem := suspend_problem(timeout, minimum=min_suspend)) is not None:
        raise bad_request(problem)
    low = number(values, "autoscaling_limit_min_cu", field=f"{field}.autoscaling_limit_min_cu")
    high = number(values, "autoscaling_limit_max_cu", field=f"{field}.autoscaling_limit_max_cu")
    if low is not None or high is not None:  # an endpoint takes 0.25 CU for the one not given
        problem = limits_problem(0.25 if low is None else low, 0.25 if high is None else high)
        if problem is not None:
            raise bad_request(problem)
    return values
