"""Branches: create (at head or a past point), list, get, update, set as default, delete, expire.

Every branch has its own timeline directory (see ``timelines``). A new branch is copied from its parent in a
``create_timeline`` operation, then its endpoints start (``start_compute``); if the copy fails, the branch and its
records are removed again. A ``schema-only`` branch is a new root holding only its source's schema, roles and
databases (see ``schema_copy``). Neon's rules hold: one default branch; the default branch, the project's root
branch, protected branches and branches with children cannot be deleted; deleting a branch that is gone answers 204;
the roles of a branch of a protected branch get new passwords.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

from . import ids, inheritance, replicas, schema_copy, views
from .branching import Copy, Point, check_window, copy_data, on_copy, parse_point
from .endpoints import Endpoints
from .errors import NeonAPIError, bad_request, unprocessable
from .operations import Step
from .records import Branch, Database, Endpoint, Project, Role
from .requests import boolean, section, string
from .routing import route
from .runtime import Runtime

__all__ = ["Branches"]

_SORT_KEYS = ("name", "created_at", "updated_at")
_MAX_TTL = timedelta(days=30)


class Branches:
    def __init__(self, rt: Runtime, endpoints: Endpoints) -> None:
        self._rt = rt
        self._endpoints = endpoints

    # --- reading -------------------------------------------------------------------------------------------------

    @route("list_branches", "GET", "/projects/{project_id}/branches")
    async def list_branches(
        self,
        project_id: str,
        *,
        search: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        self._rt.project(project_id)
        sort_by = sort_by or "updated_at"
        sort_order = sort_order or "desc"
        if sort_by not in _SORT_KEYS:
            raise bad_request(f"sort_by must be one of {', '.join(_SORT_KEYS)}")
        if sort_order not in ("asc", "desc"):
            raise bad_request("sort_order must be asc or desc")
        if limit is not None and not 1 <= limit <= 10000:
            raise bad_request("limit must be from 1 to 10000")
        records = self._rt.store.list(Branch, project_id=project_id)
        if search:
            needle = search.lower()
            records = [b for b in records if needle in b.name.lower() or needle in b.id]
        records.sort(key=lambda b: (getattr(b, sort_by), b.id), reverse=sort_order == "desc")
        if cursor:
            position = next((i for i, b in enumerate(records) if b.id == cursor), None)
            if position is None:
                raise bad_request(f"cursor {cursor!r} is not valid (it is the id of the last branch of a page)")
            records = records[position + 1 :]
        pagination: dict[str, Any] = {"sort_by": sort_by, "sort_order": sort_order}
        if limit is not None and len(records) > limit:
            records = records[:limit]
            pagination["next"] = records[-1].id
        return {"branches": [views.branch(b) for b in records], "annotations": {}, "pagination": pagination}

    @route("get_branch", "GET", "/projects/{project_id}/branches/{branch_id}")
    async def get(self, project_id: str, branch_id: str) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        annotation = {"object": {"type": "console/branch", "id": branch.id}, "value": branch.annotation}
        return {"branch": views.branch(branch), "annotation": annotation}

    # --- creating ------------------------------------------------------------------------------------------------

    @route("create_branch", "POST", "/projects/{project_id}/branches", status=201)
    async def create(self, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
        project = self._rt.project(project_id)
        options = section(body, "branch")
        wanted = body.get("endpoints") or []
        if not isinstance(wanted, list) or not all(isinstance(item, dict) for item in wanted):
            raise bad_request('endpoints must be a list of objects such as {"type": "read_write"}')
        parent_id = string(options, "parent_id", field="branch.parent_id", max_length=60)
        parent = self._rt.branch(project_id, parent_id) if parent_id else self._rt.default_branch(project_id)
        init_source = options.get("init_source") or "parent-data"
        if init_source not in ("parent-data", "schema-only"):
            raise bad_request("branch.init_source must be parent-data or schema-only")
        name = string(options, "name", field="branch.name")
        if name is not None:
            self._rt.check_branch_name_free(project_id, name)
        point = parse_point(
            lsn=options.get("parent_lsn"),
            timestamp=options.get("parent_timestamp"),
            lsn_field="branch.parent_lsn",
            time_field="branch.parent_timestamp",
        )
        check_window(project, parent, point, history_seconds=self._rt.history_seconds)
        protected = boolean(options, "protected", field="branch.protected") or False
        annotation = _annotation(body.get("annotation_value"))
        moment = ids.now()
        branch_id = ids.branch_id()
        branch = Branch(
            id=branch_id,
            project_id=project_id,
            name=name or branch_id,
            timeline="",
            created_at=moment,
            updated_at=moment,
            state_changed_at=moment,
            current_state="init",
            pending_state="ready",
            parent_id=parent.id if init_source == "parent-data" else None,
            protected=protected,
            annotation=annotation,
            init_source=init_source,
        )
        _set_expiry(branch, options.get("expires_at"), field="branch.expires_at")
        endpoints = [self._endpoints.new(project, branch, item, field="endpoints[]") for item in wanted]
        if len(endpoints) > 1:
            raise bad_request("a branch can have only one read_write endpoint")
        self._rt.operations.check([parent.id])
        roles, databases = inheritance.inherit(self._rt, parent, branch)
        with self._rt.store.transaction():
            self._rt.store.put(branch)
            for endpoint in endpoints:
                self._rt.store.put(endpoint)
            for role in roles:
                self._rt.store.put(role)
            for db in databases:
                self._rt.store.put(db)
        run_on = next((e.port for e in endpoints if e.type == "read_write"), None)
        steps: list[Step] = [self._copy_step(project, branch, parent, point, run_on=run_on)]
        steps += [self._endpoints.start_step(endpoint) for endpoint in endpoints]
        operations = self._rt.operations.submit(
            project_id, [branch.id, parent.id], steps, cleanup=lambda: self.discard_unfinished(branch.id)
        )
        body_out: dict[str, Any] = {
            "branch": views.branch(branch),
            "endpoints": [self._endpoints.view(e) for e in endpoints],
            "operations": [views.operation(op) for op in operations],
            "roles": [views.role(role) for role in roles],
            "databases": [views.database(db) for db in databases],
        }
        if endpoints:
            body_out["connection_uris"] = _connection_uris(self._rt, endpoints[0], roles, databases)
        return body_out

    def _copy_step(self, project: Project, branch: Branch, parent: Branch, point: Point, *, run_on: int | None) -> Step:
        operation = self._rt.operations.new(project.id, "create_timeline", branch_id=branch.id)

        async def run() -> None:
            if branch.init_source == "schema-only":
                await schema_copy.copy_schema(self._rt, project, parent, point, branch, run_on=run_on)
            else:
                await self._copy(project, branch, parent, point, run_on)

        return operation, run

    async def _copy(self, project: Project, branch: Branch, parent: Branch, point: Point, run_on: int | None) -> Copy:
        """Copy the parent's data into the branch. From a protected parent the copy's login roles get the branch's own
        passwords (made by ``inherit``) before its server serves anyone."""
        own = {r.name: r.password for r in self._rt.store.list(Role, branch_id=branch.id) if r.password is not None}
        copy = await copy_data(self._rt, project, parent, point, run_on=None if parent.protected else run_on)
        if parent.protected:
            own = {name: password for name, password in own.items() if copy.roles is None or name in copy.roles}
            try:
                await inheritance.set_passwords(self._rt, project, copy.timeline, own)
                if run_on is not None:
                    await self._rt.computes.start(copy.timeline, port=run_on, password=project.superuser_password)
            except BaseException:
                await self._rt.drop_timeline(copy.timeline)
                raise
        fresh = on_copy(self._rt.store.get(Branch, branch.id) or branch, copy, from_parent=True)
        with self._rt.store.transaction():
            self._rt.store.put(fresh)
            if copy.roles is not None:  # a copy from the past has the roles and databases of then
                inheritance.sync(self._rt, fresh, parent, roles=copy.roles, databases=copy.databases)
            if parent.protected:
                inheritance.reissue_passwords(self._rt, fresh, own)
        return copy

    async def discard_unfinished(self, branch_id: str) -> None:
        """After a failed (or interrupted) creation: if the copy did not finish, remove the branch and its records;
        if only an endpoint failed to start, mark it idle (it can be started again)."""
        branch = self._rt.store.get(Branch, branch_id)
        if branch is None:
            return
        if branch.current_state == "init":
            if branch.timeline:
                await self._rt.drop_timeline(branch.timeline)
            self._rt.forget_branch(branch)
            return
        for endpoint in self._rt.endpoints_of(branch):
            if endpoint.current_state != "active":
                self._rt.store.put(replace(endpoint, current_state="idle", pending_state=None))

    # --- changing ------------------------------------------------------------------------------------------------

    @route("update_branch", "PATCH", "/projects/{project_id}/branches/{branch_id}")
    async def update(self, project_id: str, branch_id: str, body: dict[str, Any]) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        options = section(body, "branch", required=True)
        name = string(options, "name", field="branch.name")
        if name is not None and name != branch.name:
            self._rt.check_branch_name_free(project_id, name)
            branch.name = name
        protected = boolean(options, "protected", field="branch.protected")
        if protected is not None:
            branch.protected = protected
        if "expires_at" in options:
            if branch.default and options["expires_at"] is not None:
                raise bad_request("the default branch cannot expire")
            _set_expiry(branch, options["expires_at"], field="branch.expires_at")
        branch.updated_at = ids.now()
        self._rt.store.put(branch)
        return {"branch": views.branch(branch), "operations": []}

    @route("set_default_branch", "POST", "/projects/{project_id}/branches/{branch_id}/set_as_default")
    async def set_default(self, project_id: str, branch_id: str) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        if branch.expires_at is not None:
            raise bad_request(f"branch {branch.id} expires at {ids.format_time(branch.expires_at)}; remove that first")
        moment = ids.now()
        with self._rt.store.transaction():
            for other in self._rt.store.list(Branch, project_id=project_id):
                if other.default and other.id != branch.id:
                    self._rt.store.put(replace(other, default=False, updated_at=moment))
            branch = replace(branch, default=True, updated_at=moment)
            self._rt.store.put(branch)
        return {"branch": views.branch(branch), "operations": []}

    @route("delete_branch", "DELETE", "/projects/{project_id}/branches/{branch_id}")
    async def delete(self, project_id: str, branch_id: str) -> dict[str, Any] | None:
        """Delete the branch; ``None`` (204) when it is already gone."""
        branch = self._rt.find_branch(project_id, branch_id)
        if branch is None:
            return None
        if branch.default:
            raise unprocessable(f"branch {branch.id} is the project's default branch and cannot be deleted")
        if branch.is_project_root:
            raise unprocessable(f"branch {branch.id} is the project's root branch and cannot be deleted")
        if branch.protected:
            raise unprocessable(f"branch {branch.id} is protected; unprotect it before deleting it")
        if children := self._rt.children(branch):
            raise unprocessable(
                f"branch {branch.id} has child branches ({', '.join(c.id for c in children)}); delete them first"
            )
        return {"branch": views.branch(branch), "operations": self.delete_now(branch)}

    def delete_now(self, branch: Branch) -> list[dict[str, Any]]:
        """Remove ``branch``'s records at once and submit the teardown (``suspend_compute``, ``delete_timeline``)."""
        self._rt.operations.check([branch.id])
        steps: list[Step] = []
        for endpoint in self._rt.endpoints_of(branch):
            if endpoint.current_state == "active":
                operation = self._rt.operations.new(
                    branch.project_id, "suspend_compute", branch_id=branch.id, endpoint_id=endpoint.id
                )
                steps.append((operation, _nothing))
        delete = self._rt.operations.new(branch.project_id, "delete_timeline", branch_id=branch.id)
        endpoints = self._rt.endpoints_of(branch)

        async def teardown() -> None:
            for endpoint in endpoints:
                await self._rt.poolers.discard(endpoint.id)
                if endpoint.type == "read_only":
                    await self._rt.drop_timeline(replicas.replica_name(endpoint.id))
            await self._rt.drop_timeline(branch.timeline)

        steps.append((delete, teardown))
        operations = self._rt.operations.submit(branch.project_id, [branch.id], steps)
        self._rt.forget_branch(branch)
        return [views.operation(op) for op in operations]

    # --- helpers -------------------------------------------------------------------------------------------------

    async def expire(self) -> None:
        """Delete the branches whose ``expires_at`` has passed (skipping busy ones; children first)."""
        moment = ids.now()
        for branch in self._rt.store.list(Branch):
            if branch.expires_at is None or branch.expires_at > moment or branch.default:
                continue
            if branch.current_state != "ready" or self._rt.children(branch):
                continue
            with contextlib.suppress(NeonAPIError):  # busy: tried again on the next round
                self.delete_now(branch)


async def _nothing() -> None:
    """The endpoint's server stops with its timeline (``delete_timeline``); this step only reports it."""


def _annotation(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()) or len(value) > 50:
        raise bad_request("annotation_value must be an object of at most 50 string values")
    return {str(k): v for k, v in value.items()}


def _set_expiry(branch: Branch, value: object, *, field: str) -> None:
    if value is None:
        branch.expires_at = None
        branch.ttl_interval_seconds = None
        return
    moment = ids.parse_time(value, field)
    now = ids.now()
    if moment <= now:
        raise bad_request(f"{field} must be in the future")
    if moment - now > _MAX_TTL:
        raise bad_request(f"{field} must be at most 30 days from now")
    branch.expires_at = moment
    branch.ttl_interval_seconds = int((moment - now).total_seconds())


def _connection_uris(
    rt: Runtime, endpoint: Endpoint, roles: list[Role], databases: list[Database]
) -> list[dict[str, Any]]:
    passwords = {role.name: role.password for role in roles}
    details = []
    for db in databases:
        password = passwords.get(db.owner_name)
        if password is not None:
            details.append(
                views.connection_details(
                    host=rt.host,
                    port=rt.front_door_port,
                    endpoint_id=endpoint.id,
                    role=db.owner_name,
                    password=password,
                    database=db.name,
                )
            )
    return details
