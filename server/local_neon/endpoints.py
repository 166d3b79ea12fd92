"""Endpoints: the computes of a branch, each a server on its own loopback port.

A ``read_write`` endpoint runs the branch's own server (one per branch); a ``read_only`` endpoint (a read replica) runs
a hot standby of it (see ``replicas``), on any branch: it streams from the read-write endpoint when there is one and
reads the branch's WAL archive otherwise. ``start`` runs the
endpoint's server on its port, and its PgBouncer on its pooler port when local Neon has one (see ``pooler``);
``suspend`` stops both, ``restart`` does both; each is an operation (``start_compute``/``suspend_compute``). An update
is checked against Neon's limits (``server.computes.limits``: sizes, autoscaling range, suspend timeout) and refused
with their reason; a change to a running endpoint is an ``apply_config`` operation (autoscaling values are stored and
reported; nothing scales here). ``suspend_timeout_seconds`` > 0 lets the housekeeping loop suspend an endpoint idle
that long; 0 (Neon's default, 300 s on Neon) and -1 keep it running.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from ..computes.limits import limits_problem, suspend_problem
from . import ids, replicas, views
from .clusters import free_port
from .errors import bad_request, unprocessable
from .operations import Step
from .records import Branch, Endpoint, Operation, Project
from .requests import boolean, integer, number, section, string
from .routing import route
from .runtime import Runtime

__all__ = ["Endpoints"]

_INT64 = 2**63 - 1  # the spec's int64: the range itself is Neon's limit, checked with its reason


class Endpoints:
    def __init__(self, rt: Runtime) -> None:
        self._rt = rt

    # --- building blocks shared with projects and branches -------------------------------------------------------

    def allocate_port(self, *, besides: int | None = None) -> int:
        """A free loopback port that no endpoint record uses (for its server or its pooler), nor ``besides``."""
        used = {besides}
        for endpoint in self._rt.store.list(Endpoint):
            used.update((endpoint.port, endpoint.pooler_port))
        while True:
            port = free_port(self._rt.host)
            if port not in used:
                return port

    def new(self, project: Project, branch: Branch, options: dict[str, Any], *, field: str) -> Endpoint:
        """An endpoint record for ``branch`` from request ``options`` (validated; 400 naming ``field``)."""
        kind = options.get("type")
        if kind not in ("read_write", "read_only"):
            raise bad_request(f"{field}.type must be read_write or read_only")
        writer = self._rt.read_write_endpoint(branch)
        if kind == "read_write" and writer is not None:
            raise bad_request(f"branch {branch.id} already has a read_write endpoint; a branch can have only one")
        defaults = project.default_endpoint_settings
        moment = ids.now()
        port = self.allocate_port()
        record = Endpoint(
            id=ids.endpoint_id(),
            project_id=project.id,
            branch_id=branch.id,
            type=kind,
            port=port,
            pooler_port=self.allocate_port(besides=port) if self._rt.poolers.available else None,
            created_at=moment,
            updated_at=moment,
            current_state="init",
            pending_state="active",
            suspend_timeout_seconds=int(defaults.get("suspend_timeout_seconds", 0)),
            autoscaling_limit_min_cu=float(defaults.get("autoscaling_limit_min_cu", 0.25)),
            autoscaling_limit_max_cu=float(defaults.get("autoscaling_limit_max_cu", 0.25)),
        )
        _apply_options(record, options, field=field, min_suspend=self._rt.min_suspend_seconds)
        return record

    def start_step(self, endpoint: Endpoint) -> Step:
        """The ``start_compute`` operation for ``endpoint`` and the coroutine that performs it."""
        operation = self._rt.operations.new(
            endpoint.project_id, "start_compute", branch_id=endpoint.branch_id, endpoint_id=endpoint.id
        )
        return operation, lambda: self.bring_up(endpoint.id)

    def suspend_step(self, endpoint: Endpoint, *, then_delete: bool = False) -> Step:
        """The ``suspend_compute`` operation for ``endpoint`` (deleting its record afterwards with ``then_delete``)."""
        operation = self._rt.operations.new(
            endpoint.project_id, "suspend_compute", branch_id=endpoint.branch_id, endpoint_id=endpoint.id
        )
        return operation, lambda: self._suspend(endpoint.id, then_delete=then_delete)

    def _apply_config(self, endpoint: Endpoint) -> Operation:
        """The ``apply_config`` operation of an update to a running endpoint, done as it is stored: the housekeeping
        loop reads the new suspend timeout from the record, and nothing here scales."""
        return self._rt.operations.new(
            endpoint.project_id, "apply_config", branch_id=endpoint.branch_id, endpoint_id=endpoint.id
        )

    def server_name(self, endpoint: Endpoint, branch: Branch) -> str:
        """The server an endpoint runs: its branch's own (read-write), or its standby (read-only)."""
        return replicas.replica_name(endpoint.id) if endpoint.type == "read_only" else branch.timeline

    def mark(self, endpoint: Endpoint, pending: str | None) -> Endpoint:
        """Store ``endpoint`` with ``pending_state``; returns it."""
        endpoint.pending_state = pending
        endpoint.updated_at = ids.now()
        self._rt.store.put(endpoint)
        return endpoint

    def view(self, endpoint: Endpoint) -> dict[str, Any]:
        pooler = self._rt.poolers.available and endpoint.pooler_port is not None
        return views.endpoint(endpoint, host=self._rt.host, port=self._rt.front_door_port, pooler_enabled=pooler)

    # --- the API -------------------------------------------------------------------------------------------------

    @route("list_endpoints", "GET", "/projects/{project_id}/endpoints")
    async def list_endpoints(self, project_id: str) -> dict[str, Any]:
        self._rt.project(project_id)
        return {"endpoints": [self.view(record) for record in self._rt.store.list(Endpoint, project_id=project_id)]}

    @route("list_branch_endpoints", "GET", "/projects/{project_id}/branches/{branch_id}/endpoints")
    async def list_branch_endpoints(self, project_id: str, branch_id: str) -> dict[str, Any]:
        branch = self._rt.branch(project_id, branch_id)
        return {"endpoints": [self.view(record) for record in self._rt.endpoints_of(branch)]}

    @route("create_endpoint", "POST", "/projects/{project_id}/endpoints", status=201)
    async def create(self, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
        project = self._rt.project(project_id)
        options = section(body, "endpoint", required=True)
        branch_id = string(options, "branch_id", field="endpoint.branch_id", required=True)
        assert branch_id is not None
        branch = self._rt.branch(project_id, branch_id)
        record = self.new(project, branch, options, field="endpoint")
        self._rt.operations.check([branch.id])
        self._rt.store.put(record)
        operations = self._rt.operations.submit(
            project_id, [branch.id], [self.start_step(record)], cleanup=lambda: self._forget(record.id)
        )
        return {"endpoint": self.view(record), "operations": [views.operation(op) for op in operations]}

    @route("get_endpoint", "GET", "/projects/{project_id}/endpoints/{endpoint_id}")
    async def get(self, project_id: str, endpoint_id: str) -> dict[str, Any]:
        return {"endpoint": self.view(self._rt.endpoint(project_id, endpoint_id))}

    @route("update_endpoint", "PATCH", "/projects/{project_id}/endpoints/{endpoint_id}")
    async def update(self, project_id: str, endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        record = self._rt.endpoint(project_id, endpoint_id)
        options = section(body, "endpoint", required=True)
        if options.get("branch_id") not in (None, record.branch_id):
            raise bad_request("moving an endpoint to another branch is not supported by local Neon")
        if options.get("type") not in (None, record.type):
            raise bad_request("the type of an endpoint cannot be changed")
        before = replace(record)
        _apply_options(record, options, field="endpoint", min_suspend=self._rt.min_suspend_seconds)
        self._rt.operations.check([record.branch_id])
        steps: list[Step] = []
        applied: list[Operation] = []
        if record.disabled and not before.disabled and record.current_state == "active":
            steps.append(self.suspend_step(record))
            record.pending_state = "idle"
        elif record != before and record.current_state == "active":
            applied.append(self._rt.operations.done(self._apply_config(record)))
        record.updated_at = ids.now()
        self._rt.store.put(record)
        operations = applied + self._rt.operations.submit(project_id, [record.branch_id], steps)
        return {"endpoint": self.view(record), "operations": [views.operation(op) for op in operations]}

    @route("delete_endpoint", "DELETE", "/projects/{project_id}/endpoints/{endpoint_id}")
    async def delete(self, project_id: str, endpoint_id: str) -> dict[str, Any] | None:
        """Delete the endpoint; ``None`` (204) when it is already gone; 422 for an endpoint of a protected branch."""
        record = self._rt.find_endpoint(project_id, endpoint_id)
        if record is None:
            return None
        branch = self._rt.store.get(Branch, record.branch_id)
        if branch is not None and branch.protected:
            raise unprocessable(
                f"endpoint {endpoint_id} is a compute of protected branch {branch.name}: computes of protected "
                "branches cannot be deleted"
            )
        self._rt.operations.check([record.branch_id])
        step = self.suspend_step(record, then_delete=True)
        operations = self._rt.operations.submit(project_id, [record.branch_id], [step])
        self.mark(record, "idle")
        return {"endpoint": self.view(record), "operations": [views.operation(op) for op in operations]}

    @route("start_endpoint", "POST", "/projects/{project_id}/endpoints/{endpoint_id}/start")
    async def start(self, project_id: str, endpoint_id: str) -> dict[str, Any]:
        record = self._rt.endpoint(project_id, endpoint_id)
        if record.disabled:
            raise bad_request(f"endpoint {endpoint_id} is disabled; enable it before starting it")
        operations = self._rt.operations.submit(project_id, [record.branch_id], [self.start_step(record)])
        self.mark(record, "active")
        return {"endpoint": self.view(record), "operations": [views.operation(op) for op in operations]}

    @route("suspend_endpoint", "POST", "/projects/{project_id}/endpoints/{endpoint_id}/suspend")
    async def suspend(self, project_id: str, endpoint_id: str) -> dict[str, Any]:
        record = self._rt.endpoint(project_id, endpoint_id)
        operations = self._rt.operations.submit(project_id, [record.branch_id], [self.suspend_step(record)])
        self.mark(record, "idle")
        return {"endpoint": self.view(record), "operations": [views.operation(op) for op in operations]}

    @route("restart_endpoint", "POST", "/projects/{project_id}/endpoints/{endpoint_id}/restart")
    async def restart(self, project_id: str, endpoint_id: str) -> dict[str, Any]:
        record = self._rt.endpoint(project_id, endpoint_id)
        if record.disabled:
            raise bad_request(f"endpoint {endpoint_id} is disabled; enable it before restarting it")
        steps = [self.suspend_step(record), self.start_step(record)]
        operations = self._rt.operations.submit(project_id, [record.branch_id], steps)
        self.mark(record, "active")
        return {"endpoint": self.view(record), "operations": [views.operation(op) for op in operations]}

    # --- the work ------------------------------------------------------------------------------------------------

    async def bring_up(self, endpoint_id: str) -> None:
        """Start the endpoint's server and its pooler now and record it active (the work of ``start_compute``).

        Raises ``ClusterError`` if either does not start (the server is then let go again).
        """
        record = self._rt.store.get(Endpoint, endpoint_id)
        if record is None:
            return
        branch = self._rt.store.get(Branch, record.branch_id)
        project = self._rt.store.get(Project, record.project_id)
        assert branch is not None and project is not None
        password = project.superuser_password
        server = branch.timeline
        if record.type == "read_only":
            server = await replicas.prepare(self._rt, branch, record, password=password)
        port = await self._rt.computes.start(server, port=record.port, password=password)
        pooler_port = record.pooler_port
        if self._rt.poolers.available:
            wanted = pooler_port if pooler_port is not None else self.allocate_port(besides=port)
            try:
                pooler_port = await self._rt.poolers.start(
                    endpoint_id, port=wanted, server_port=port, password=password
                )
            except BaseException:
                await self._rt.computes.stop(server)
                raise
        fresh = self._rt.store.get(Endpoint, endpoint_id) or record
        moment = ids.now()
        self._rt.activity[endpoint_id] = time.monotonic()
        self._rt.store.put(
            replace(
                fresh,
                port=port,
                pooler_port=pooler_port,
                current_state="active",
                pending_state=None,
                started_at=moment,
                last_active=moment,
                updated_at=moment,
            )
        )

    async def _suspend(self, endpoint_id: str, *, then_delete: bool) -> None:
        record = self._rt.store.get(Endpoint, endpoint_id)
        if record is None:
            return
        branch = self._rt.store.get(Branch, record.branch_id)
        if then_delete:
            await self._rt.poolers.discard(endpoint_id)
        else:
            await self._rt.poolers.stop(endpoint_id)
        if record.type == "read_only":
            name = replicas.replica_name(endpoint_id)
            await (self._rt.drop_timeline(name) if then_delete else self._rt.computes.stop(name))
        elif branch is not None:
            await self._rt.computes.stop(branch.timeline)
        self._rt.activity.pop(endpoint_id, None)
        if then_delete:
            self._rt.store.delete(Endpoint, endpoint_id)
            return
        fresh = self._rt.store.get(Endpoint, endpoint_id) or record
        moment = ids.now()
        self._rt.store.put(
            replace(fresh, current_state="idle", pending_state=None, suspended_at=moment, updated_at=moment)
        )

    async def _forget(self, endpoint_id: str) -> None:
        """After a failed start of a new endpoint: drop it (its branch's server is stopped if nothing wants it)."""
        record = self._rt.store.get(Endpoint, endpoint_id)
        if record is not None:
            await self._suspend(endpoint_id, then_delete=True)


def _apply_options(record: Endpoint, options: dict[str, Any], *, field: str, min_suspend: int) -> None:
    """Set the endpoint settings a create or update request may carry, validated against Neon's limits (400 naming
    ``field`` or the limit). The caller stores ``record`` only when nothing was refused."""
    timeout_field = f"{field}.suspend_timeout_seconds"
    timeout = integer(options, "suspend_timeout_seconds", field=timeout_field, minimum=-_INT64 - 1, maximum=_INT64)
    if timeout is not None and (problem := suspend_problem(timeout, minimum=min_suspend)) is not None:
        raise bad_request(problem)
    low = number(options, "autoscaling_limit_min_cu", field=f"{field}.autoscaling_limit_min_cu")
    high = number(options, "autoscaling_limit_max_cu", field=f"{field}.autoscaling_limit_max_cu")
    low = record.autoscaling_limit_min_cu if low is None else low
    high = record.autoscaling_limit_max_cu if high is None else high
    if (problem := limits_problem(low, high)) is not None:
        raise bad_request(problem)
    if options.get("pooler_mode") not in (None, "transaction"):
        raise bad_request(f"{field}.pooler_mode must be transaction: Neon's pooler runs in transaction mode only")
    boolean(options, "pooler_enabled", field=f"{field}.pooler_enabled")  # deprecated by Neon; accepted, not used
    if timeout is not None:
        record.suspend_timeout_seconds = timeout
    record.autoscaling_limit_min_cu, record.autoscaling_limit_max_cu = low, high
    if "settings" in options:
        settings = section(options, "settings")
        pg_settings = settings.get("pg_settings", {})
        if not isinstance(pg_settings, dict) or not all(isinstance(v, str) for v in pg_settings.values()):
            raise bad_request(f"{field}.settings.pg_settings must map setting names to string values")
        record.settings = settings
    disabled = boolean(options, "disabled", field=f"{field}.disabled")
    if disabled is not None:
        record.disabled = disabled
    name = string(options, "name", field=f"{field}.name", max_length=64)
    if name is not None:
        record.name = name
    provisioner = string(options, "provisioner", field=f"{field}.provisioner")
    if provisioner is not None:
        record.provisioner = provisioner
