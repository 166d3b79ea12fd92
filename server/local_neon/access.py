"""Roles, databases and connection URIs of a branch.

Creating, deleting or re-keying a role or database is an ``apply_config`` operation that runs the SQL in the branch's
server (started for the moment if its endpoint is suspended, as Neon does). Passwords are kept, so they can be
revealed and put in connection URIs. Connection URIs go through the front door (see ``frontdoor``), which wakes a
suspended endpoint when a client connects, as Neon's proxy does; asking for one starts nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from . import catalog, ids, views
from .endpoints import Endpoints
from .errors import NeonAPIError, bad_request, conflict, not_found, unprocessable
from .operations import Step
from .records import Branch, Database, Role
from .requests import boolean, section, string
from .routing import route
from .runtime import Runtime

__all__ = ["Access"]

Work = Callable[[], Awaitable[None]]
_RESERVED_ROLES = frozenset({"cloud_admin", "neon_superuser", "postgres", "public", "none"})
_RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})


class Access:
    def __init__(self, rt: Runtime, endpoints: Endpoints) -> None:
        self._rt = rt
        self._endpoints = endpoints

    # --- roles ---------------------------------------------------------------------------------------------------

    @route("list_roles", "GET", "/projects/{project_id}/branches/{branch_id}/roles")
    async def list_roles(self, project_id: str, branch_id: str) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        roles = self._rt.store.list(Role, project_id=project_id, branch_id=branch.id)
        return {"roles": [views.role(role) for role in roles]}

    @route("create_role", "POST", "/projects/{project_id}/branches/{branch_id}/roles", status=201)
    async def create_role(self, project_id: str, branch_id: str, body: dict[str, Any]) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        options = section(body, "role", required=True)
        name = string(options, "name", field="role.name", required=True, max_length=63)
        assert name is not None
        if len(name.encode()) > 63:
            raise bad_request("role.name cannot exceed 63 bytes")
        if name in _RESERVED_ROLES or name.startswith("pg_"):
            raise bad_request(f"role name {name!r} is reserved")
        if self._rt.store.get(Role, f"{branch.id}/{name}") is not None:
            raise conflict(f"role {name!r} already exists on branch {branch.id}")
        no_login = boolean(options, "no_login", field="role.no_login") or False
        self._rt.operations.check([branch.id])
        moment = ids.now()
        role = Role(project_id, branch.id, name, None if no_login else ids.password(), moment, moment)
        self._rt.store.put(role)

        async def apply() -> None:
            async with self._rt.hold(branch) as cluster:
                await catalog.create_role(cluster, name, role.password)

        async def undo() -> None:
            self._rt.store.delete(Role, role.key)

        operations = self._submit(branch, apply, undo)
        return {"role": views.role(role, with_password=True), "operations": operations}

    @route("get_role", "GET", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}")
    async def get_role(self, project_id: str, branch_id: str, role_name: str) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        return {"role": views.role(self._rt.role(branch, role_name))}

    @route("delete_role", "DELETE", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}")
    async def delete_role(self, project_id: str, branch_id: str, role_name: str) -> dict[str, Any] | None:
        """Drop the role; ``None`` (204) when the branch has no such role."""
        branch = self._rt.branch(project_id, branch_id)
        role = self._rt.store.get(Role, f"{branch.id}/{role_name}")
        if role is None:
            return None
        if role.protected:
            raise unprocessable(f"role {role_name!r} is protected and cannot be deleted")
        owned = [db.name for db in self._databases(branch) if db.owner_name == role_name]
        if owned:
            raise unprocessable(
                f"role {role_name!r} owns database(s) {', '.join(owned)}; delete them or change their owner first"
            )
        self._rt.operations.check([branch.id])
        databases = ["postgres", *(db.name for db in self._databases(branch))]

        async def apply() -> None:
            async with self._rt.hold(branch) as cluster:
                await catalog.drop_role(cluster, role_name, databases)
            self._rt.store.delete(Role, role.key)

        return {"role": views.role(role), "operations": self._submit(branch, apply)}

    @route("reveal_password", "GET", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password")
    async def reveal_password(self, project_id: str, branch_id: str, role_name: str) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        role = self._rt.role(branch, role_name)
        if role.password is None:
            raise NeonAPIError(412, f"role {role_name!r} has no password: it was created without login")
        return {"password": role.password}

    @route("reset_password", "POST", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password")
    async def reset_password(self, project_id: str, branch_id: str, role_name: str) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        old = self._rt.role(branch, role_name)
        self._rt.operations.check([branch.id])
        role = replace(old, password=ids.password(), updated_at=ids.now())
        self._rt.store.put(role)
        password = role.password
        assert password is not None

        async def apply() -> None:
            async with self._rt.hold(branch) as cluster:
                await catalog.set_password(cluster, role_name, password)

        async def undo() -> None:
            self._rt.store.put(old)

        operations = self._submit(branch, apply, undo)
        return {"role": views.role(role, with_password=True), "operations": operations}

    # --- databases -----------------------------------------------------------------------------------------------

    @route("list_databases", "GET", "/projects/{project_id}/branches/{branch_id}/databases")
    async def list_databases(self, project_id: str, branch_id: str) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        return {"databases": [views.database(db) for db in self._databases(branch)]}

    @route("create_database", "POST", "/projects/{project_id}/branches/{branch_id}/databases", status=201)
    async def create_database(self, project_id: str, branch_id: str, body: dict[str, Any]) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        options = section(body, "database", required=True)
        name = string(options, "name", field="database.name", required=True, max_length=63)
        owner = string(options, "owner_name", field="database.owner_name", required=True, max_length=63)
        assert name is not None and owner is not None
        if name in _RESERVED_DATABASES:
            raise bad_request(f"database name {name!r} is reserved")
        if self._rt.store.get(Database, f"{branch.id}/{name}") is not None:
            raise conflict(f"database {name!r} already exists on branch {branch.id}")
        if self._rt.store.get(Role, f"{branch.id}/{owner}") is None:
            raise bad_request(f"database.owner_name: role {owner!r} does not exist on branch {branch.id}")
        self._rt.operations.check([branch.id])
        moment = ids.now()
        database = Database(self._rt.store.next_id("database"), project_id, branch.id, name, owner, moment, moment)
        self._rt.store.put(database)

        async def apply() -> None:
            async with self._rt.hold(branch) as cluster:
                await catalog.create_database(cluster, name, owner)

        async def undo() -> None:
            self._rt.store.delete(Database, database.key)

        return {"database": views.database(database), "operations": self._submit(branch, apply, undo)}

    @route("get_database", "GET", "/projects/{project_id}/branches/{branch_id}/databases/{database_name}")
    async def get_database(self, project_id: str, branch_id: str, database_name: str) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        return {"database": views.database(self._rt.database(branch, database_name))}

    @route("delete_database", "DELETE", "/projects/{project_id}/branches/{branch_id}/databases/{database_name}")
    async def delete_database(self, project_id: str, branch_id: str, database_name: str) -> dict[str, Any] | None:
        """Drop the database; ``None`` (204) when the branch has no such database."""
        branch = self._rt.branch(project_id, branch_id)
        database = self._rt.store.get(Database, f"{branch.id}/{database_name}")
        if database is None:
            return None
        self._rt.operations.check([branch.id])

        async def apply() -> None:
            async with self._rt.hold(branch) as cluster:
                await catalog.drop_database(cluster, database_name)
            self._rt.store.delete(Database, database.key)

        return {"database": views.database(database), "operations": self._submit(branch, apply)}

    # --- connection URIs -----------------------------------------------------------------------------------------

    @route("connection_uri", "GET", "/projects/{project_id}/connection_uri")
    async def connection_uri(
        self,
        project_id: str,
        *,
        database_name: str,
        role_name: str,
        branch_id: str | None = None,
        endpoint_id: str | None = None,
        pooled: bool = False,
    ) -> dict[str, Any]:
        """The URI of ``role_name`` on ``database_name``; ``pooled`` gives the pooler's (the direct one when local Neon
        runs no pooler)."""
        branch = self._rt.branch(project_id, branch_id) if branch_id else self._rt.default_branch(project_id)
        if endpoint_id:
            endpoint = self._rt.endpoint(project_id, endpoint_id)
            if endpoint.branch_id != branch.id:
                raise bad_request(f"endpoint {endpoint_id} does not belong to branch {branch.id}")
        else:  # the read-write endpoint, else (a branch of read replicas only) its first endpoint
            endpoints = sorted(self._rt.endpoints_of(branch), key=lambda e: e.type != "read_write")
            if not endpoints:
                raise not_found("endpoint of branch", branch.id)
            endpoint = endpoints[0]
        self._rt.database(branch, database_name)
        role = self._rt.role(branch, role_name)
        if role.password is None:
            raise bad_request(f"role {role_name!r} cannot log in (it has no password)")
        uri = views.connection_uri(
            host=self._rt.host,
            port=self._rt.front_door_port,
            endpoint_id=endpoint.id,
            pooled=pooled,
            role=role.name,
            password=role.password,
            database=database_name,
        )
        return {"uri": uri}

    # --- helpers -------------------------------------------------------------------------------------------------

    def _databases(self, branch: Branch) -> list[Database]:
        return self._rt.store.list(Database, project_id=branch.project_id, branch_id=branch.id)

    def _submit(self, branch: Branch, apply: Work, undo: Work | None = None) -> list[dict[str, Any]]:
        operation = self._rt.operations.new(branch.project_id, "apply_config", branch_id=branch.id)
        endpoint = self._rt.read_write_endpoint(branch)
        if endpoint is not None:
            operation.endpoint_id = endpoint.id
        steps: list[Step] = [(operation, apply)]
        operations = self._rt.operations.submit(branch.project_id, [branch.id], steps, cleanup=undo)
        return [views.operation(op) for op in operations]
