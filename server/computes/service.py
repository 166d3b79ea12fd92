"""Computes on Neon: list them, configure autoscaling and scale to zero, start/suspend/restart, add read replicas.

A compute is one of a branch's endpoints: its read-write compute, or a read replica (``read_only``). Callers name a
compute by its endpoint id (``ep-…``), or by a branch (name or id), which means that branch's read-write compute.

Changes are planned first (``plan_configure``, ``plan_action``): the plan resolves the compute, checks the new values
against Neon's limits (``limits``, the same check local Neon makes) and carries the exact ``summary`` a human confirms.
A change to a protected branch's compute (``Directory.protection``; the verdict is ``server.access``'s) needs
confirmation: configuring it, and suspending or restarting it, which drop its connections. Starting a compute, and
anything on an unprotected branch, runs at once. ``apply`` runs a plan and waits for Neon's operations; a plan stored
for ``confirm_operation`` is planned again first and refused if the compute changed since the human read the summary.

``create_replica`` adds a read-only compute to a branch and answers once it accepts connections (and is in recovery,
i.e. refuses writes); if it never does, it is deleted again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from .. import access, progress
from ..errors import InvalidInput, NeonAPIFailure, NeonMCPError
from ..settings import AccessMode
from ..state.binding import Binding, Bound
from .limits import limits_problem, suspend_problem

if TYPE_CHECKING:
    from ..neon.client import NeonClient
    from ..neon.connections import Connections
    from ..neon.models import Branch, Endpoint
    from ..neon.targets import Directory
    from ..sql.database import Guards

__all__ = [
    "ComputeChange",
    "ComputeChanged",
    "ComputeInfo",
    "ComputeList",
    "Computes",
    "ReplicaCreated",
    "suspend_text",
]

logger = logging.getLogger(__name__)

Action = Literal["configure", "start", "suspend", "restart"]

_DEFAULT_SUSPEND = 300
_LISTED = 20


class ComputeInfo(BaseModel):
    id: str
    name: str | None = None
    branch: str
    branch_id: str
    type: str = Field(description="read_write (the branch's primary compute) or read_only (a read replica)")
    state: str = Field(description="Neon's state: active, idle (suspended: scaled to zero) or init")
    pending_state: str | None = Field(default=None, description="the state it is moving to, if any")
    min_cu: float | None = Field(default=None, description="autoscaling minimum, Compute Units")
    max_cu: float | None = Field(default=None, description="autoscaling maximum, Compute Units")
    suspend_timeout_seconds: int | None = Field(
        default=None, description="idle seconds before it suspends: -1 never, 0 Neon's default (300 s)"
    )
    pooler_mode: str | None = None
    pooler_enabled: bool | None = None
    host: str
    last_active: datetime | None = None
    disabled: bool = False
    protected_because: str | None = Field(default=None, description="why this server protects its branch")


class ComputeList(BaseModel):
    project_id: str
    branch: str | None = Field(default=None, description="the branch asked about; null: the whole project")
    computes: list[ComputeInfo]


class ComputeChanged(BaseModel):
    """What configure_compute or manage_compute did (or, before confirmation, would do)."""

    action: Action
    compute: str
    type: str
    branch: str
    branch_id: str
    protected_because: str | None = None
    state: str | None = Field(default=None, description="the compute's state afterwards")
    before: dict[str, float | int | None] = Field(default_factory=dict, description="settings before the change")
    after: dict[str, float | int | None] = Field(default_factory=dict, description="settings after the change")
    changed: bool = Field(default=True, description="false when there was nothing to do")
    notes: list[str] = Field(default_factory=list)


class ReplicaCreated(BaseModel):
    compute: str = Field(description="the read replica's endpoint id")
    branch: str
    branch_id: str
    host: str
    state: str
    in_recovery: bool = Field(description="PostgreSQL reports recovery: it refuses writes itself")
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class _Request:
    action: Action
    branch: str | None = None
    endpoint: str | None = None
    min_cu: float | None = None
    max_cu: float | None = None
    suspend_timeout_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class ComputeChange:
    """A checked compute change that has not run: what the human confirms (``summary``) and what ``apply`` does."""

    request: _Request
    project_id: str
    endpoint: Endpoint
    branch: Branch
    protected_because: str | None
    before: dict[str, float | int | None]
    after: dict[str, float | int | None]
    changed: bool
    summary: str
    confirm: bool = False
    """The access verdict asks for a human's yes (a protected branch's compute)."""

    @property
    def needs_confirmation(self) -> bool:
        """Confirmed on a protected branch when it changes something (starting a compute never needs it)."""
        return self.confirm and self.changed and self.request.action != "start"

    def preview(self) -> dict[str, object]:
        """The result's fields known before it runs, as JSON."""
        return self.result().model_dump(mode="json", exclude_none=True)

    async def binding(self) -> Binding:
        """The compute it changes and its branch, by id."""
        return (Bound("compute", self.endpoint.id, f"compute {self.endpoint.id} of branch {self.branch.id}"),)

    def result(self) -> ComputeChanged:
        """The result, as far as it is known before it runs."""
        return ComputeChanged(
            action=self.request.action,
            compute=self.endpoint.id,
            type=self.endpoint.type,
            branch=self.branch.name,
            branch_id=self.branch.id,
            protected_because=self.protected_because,
            state=self.endpoint.current_state,
            before=dict(self.before),
            after=dict(self.after),
            changed=self.changed,
        )


def suspend_text(seconds: int | None) -> str:
    """A suspend timeout in words: -1 never, 0 Neon's default."""
    if seconds is None:
        return "unknown"
    if seconds < 0:
        return "never suspends"
    if seconds == 0:
        return f"suspends after Neon's default {_DEFAULT_SUSPEND} s idle"
    return f"suspends after {seconds} s idle"


def _cu(endpoint: Endpoint, key: str) -> float | None:
    value = (endpoint.model_extra or {}).get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _settings(endpoint: Endpoint) -> dict[str, float | int | None]:
    return {
        "min_cu": _cu(endpoint, "autoscaling_limit_min_cu"),
        "max_cu": _cu(endpoint, "autoscaling_limit_max_cu"),
        "suspend_timeout_seconds": endpoint.suspend_timeout_seconds,
    }


def _size(values: dict[str, float | int | None]) -> str:
    low, high = values["min_cu"], values["max_cu"]
    if low is None or high is None:
        return "size unknown"
    return f"{low:g} CU (fixed)" if low == high else f"autoscaling {low:g}–{high:g} CU"


def _what(endpoint: Endpoint, branch: Branch) -> str:
    kind = "read replica" if endpoint.type == "read_only" else "read-write compute"
    return f"{kind} {endpoint.id} of branch {branch.name} ({branch.id})"


class Computes:
    """The compute tools' service, over the server's Neon client, directory and connections (``guards`` for the
    readiness check of a new read replica)."""

    def __init__(
        self,
        neon: NeonClient,
        directory: Directory,
        connections: Connections,
        guards: Guards,
        *,
        access_mode: AccessMode,
    ) -> None:
        self.neon = neon
        self.directory = directory
        self.connections = connections
        self.guards = guards
        self.access_mode: AccessMode = access_mode

    # --- listing -------------------------------------------------------------------------------------------------

    async def list(self, branch: str | None = None) -> ComputeList:
        """The computes of one branch (one request), or of the whole project (one request, plus the branch list
        when a compute's branch is not cached)."""
        directory = self.directory
        project_id = await directory.project_id()
        asked: Branch | None = None
        if branch is not None:
            asked = await directory.branch(branch)
            endpoints = await self.neon.list_endpoints(project_id, asked.id)
            branches = {asked.id: asked}
        else:
            endpoints = await self.neon.list_endpoints(project_id)
            branches = {b.id: b for b in await directory.branches()}
            if any(e.branch_id not in branches for e in endpoints):
                branches = {b.id: b for b in await directory.branches(refresh=True)}

        def order(e: Endpoint) -> tuple[str, bool, str]:
            owner = branches.get(e.branch_id)
            return (owner.name if owner else e.branch_id, e.type != "read_write", e.id)

        return ComputeList(
            project_id=project_id,
            branch=asked.name if asked is not None else None,
            computes=[self._info(e, branches.get(e.branch_id)) for e in sorted(endpoints, key=order)],
        )

    def _info(self, endpoint: Endpoint, branch: Branch | None) -> ComputeInfo:
        values = _settings(endpoint)
        return ComputeInfo(
            id=endpoint.id,
            name=endpoint.name,
            branch=branch.name if branch is not None else endpoint.branch_id,
            branch_id=endpoint.branch_id,
            type=endpoint.type,
            state=endpoint.current_state,
            pending_state=endpoint.pending_state,
            min_cu=values["min_cu"],
            max_cu=values["max_cu"],
            suspend_timeout_seconds=endpoint.suspend_timeout_seconds,
            pooler_mode=endpoint.pooler_mode,
            pooler_enabled=endpoint.pooler_enabled,
            host=endpoint.host,
            last_active=endpoint.last_active,
            disabled=endpoint.disabled,
            protected_because=self.directory.protection(branch) if branch is not None else None,
        )

    # --- planning ------------------------------------------------------------------------------------------------

    async def plan_configure(
        self,
        *,
        branch: str | None = None,
        endpoint: str | None = None,
        min_cu: float | None = None,
        max_cu: float | None = None,
        suspend_timeout_seconds: int | None = None,
    ) -> ComputeChange:
        """Check a change of autoscaling limits and suspend timeout against Neon's limits; raises before anything is
        asked (``InvalidInput`` with Neon's reason)."""
        if min_cu is None and max_cu is None and suspend_timeout_seconds is None:
            raise InvalidInput("nothing to change: pass min_cu, max_cu and/or suspend_timeout_seconds")
        request = _Request("configure", branch, endpoint, min_cu, max_cu, suspend_timeout_seconds)
        return await self._plan(request)

    async def plan_action(self, endpoint: str, action: Literal["start", "suspend", "restart"]) -> ComputeChange:
        """Check a start, suspend or restart of a compute (an endpoint id, or a branch's read-write compute)."""
        return await self._plan(_Request(action, endpoint=endpoint))

    async def _plan(self, request: _Request) -> ComputeChange:
        project_id, found, branch = await self._resolve(request.branch, request.endpoint)
        protected_because = self.directory.protection(branch)
        operation: access.Operation = "configure_compute" if request.action == "configure" else "manage_compute"
        verdict = access.decide(
            operation, self.access_mode, branch=branch.name, protected_because=protected_because
        ).enforced()
        before = _settings(found)
        after = dict(before)
        if request.action == "configure":
            after = {
                "min_cu": request.min_cu if request.min_cu is not None else before["min_cu"],
                "max_cu": request.max_cu if request.max_cu is not None else before["max_cu"],
                "suspend_timeout_seconds": request.suspend_timeout_seconds
                if request.suspend_timeout_seconds is not None
                else before["suspend_timeout_seconds"],
            }
            _check_limits(after)
            changed = after != before
        elif request.action == "start":
            changed = not (found.current_state == "active" and found.pending_state in (None, "active"))
        elif request.action == "suspend":
            changed = not (found.current_state == "idle" and found.pending_state in (None, "idle"))
        else:
            changed = True
        change = ComputeChange(
            request=request,
            project_id=project_id,
            endpoint=found,
            branch=branch,
            protected_because=protected_because,
            before=before,
            after=after,
            changed=changed,
            summary="",
            confirm=verdict.needs_confirmation,
        )
        return replace(change, summary=_summary(change))

    async def _resolve(self, branch: str | None, endpoint: str | None) -> tuple[str, Endpoint, Branch]:
        """(project id, the compute, its branch) for an endpoint id, or a branch's read-write compute."""
        if branch is not None and endpoint is not None:
            raise InvalidInput("name the compute by branch or by endpoint, not both")
        directory = self.directory
        project_id = await directory.project_id()
        if endpoint is not None and endpoint.startswith("ep-"):
            try:
                found = await self.neon.get_endpoint(project_id, endpoint)
            except NeonAPIFailure as exc:
                if exc.status != 404:
                    raise
                listed = await self.neon.list_endpoints(project_id)
                raise InvalidInput(
                    f"compute {endpoint!r} not found; computes: "
                    + (", ".join(e.id for e in listed[:_LISTED]) or "(none)")
                ) from exc
            return project_id, found, await directory.branch(found.branch_id)
        owner = await directory.branch(endpoint if endpoint is not None else branch)
        writers = [e for e in await self.neon.list_endpoints(project_id, owner.id) if e.type == "read_write"]
        if not writers:
            raise InvalidInput(
                f"branch {owner.name} has no read-write compute; name a compute by its id (list_computes shows them)"
            )
        return project_id, writers[0], owner

    # --- applying ------------------------------------------------------------------------------------------------

    async def apply(self, change: ComputeChange) -> ComputeChanged:
        """Run a planned change and wait for its operations."""
        result = change.result()
        if not change.changed:
            result.notes.append(_unchanged(change))
            return result
        neon = self.neon
        project_id = change.project_id
        endpoint_id = change.endpoint.id
        await progress.report(0, None, f"{change.request.action} compute {endpoint_id}")
        if change.request.action == "configure":
            diff = {k: v for k, v in change.after.items() if v != change.before[k]}
            updated, operations = await neon.update_endpoint(
                project_id,
                endpoint_id,
                autoscaling_limit_min_cu=_float(diff.get("min_cu")),
                autoscaling_limit_max_cu=_float(diff.get("max_cu")),
                suspend_timeout_seconds=_int(diff.get("suspend_timeout_seconds")),
            )
        elif change.request.action == "start":
            updated, operations = await neon.start_endpoint(project_id, endpoint_id)
        elif change.request.action == "suspend":
            updated, operations = await neon.suspend_endpoint(project_id, endpoint_id)
        else:
            updated, operations = await neon.restart_endpoint(project_id, endpoint_id)
        await neon.wait_for_operations(project_id, operations, progress=progress.report, poll_interval=0.5)
        if change.request.action in ("suspend", "restart"):
            await self.connections.forget_branch(change.branch.id)  # their sessions were cut
        final = await neon.get_endpoint(project_id, endpoint_id)
        result.after = _settings(final) if change.request.action == "configure" else _settings(updated)
        result.state = final.current_state
        if change.request.action == "suspend":
            result.notes.append("the next connection (or run_sql on the branch) starts it again")
        logger.info("%s of compute %s done", change.request.action, endpoint_id)
        return result

    # --- read replicas -------------------------------------------------------------------------------------------

    async def create_replica(self, branch: str | None = None) -> ReplicaCreated:
        """Add a read replica to ``branch`` (default: NEON_BRANCH, else the default branch); return once it answers
        ``SELECT pg_is_in_recovery()``. Whatever fails after Neon made it, it is deleted again."""
        from ..sql.database import Databases

        started = time.monotonic()
        directory = self.directory
        project_id = await directory.project_id()
        found = await directory.branch(branch)
        access.decide("create_read_replica", self.access_mode, branch=found.name).enforced()
        neon = self.neon
        await progress.report(0, None, f"adding a read replica to branch {found.name}")
        endpoint, operations = await neon.create_endpoint(project_id, found.id, endpoint_type="read_only")
        try:
            await neon.wait_for_operations(project_id, operations, progress=progress.report, poll_interval=0.5)
            target = await directory.target(found.id)
            uri = await neon.connection_uri(
                project_id, found.id, target.database, target.role, pooled=False, endpoint_id=endpoint.id
            )
            databases = Databases(uri.get_secret_value(), self.guards, pool_size=1, cache_statements=False)
            try:
                async with databases.connection() as conn:
                    in_recovery = bool(await conn.fetchval("SELECT pg_catalog.pg_is_in_recovery()"))
            finally:
                await databases.close()
            final = await neon.get_endpoint(project_id, endpoint.id)
        except BaseException as exc:
            try:
                await neon.wait_for_operations(project_id, await neon.delete_endpoint(project_id, endpoint.id))
                after = "it was deleted again"
            except NeonMCPError as cleanup:
                logger.warning("read replica %s could not be deleted after a failed creation: %s", endpoint.id, cleanup)
                after = f"deleting it failed too: delete compute {endpoint.id} by hand"
            if not isinstance(exc, NeonMCPError):
                raise
            raise NeonMCPError(f"read replica {endpoint.id} was created but did not answer ({exc}); {after}") from exc
        await progress.report(1, 1, f"read replica {endpoint.id} is ready")
        return ReplicaCreated(
            compute=final.id,
            branch=found.name,
            branch_id=found.id,
            host=final.host,
            state=final.current_state,
            in_recovery=in_recovery,
            elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        )


def _float(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _int(value: float | int | None) -> int | None:
    return None if value is None else int(value)


def _check_limits(values: dict[str, float | int | None]) -> None:
    low, high, seconds = values["min_cu"], values["max_cu"], values["suspend_timeout_seconds"]
    if low is not None and high is not None and (problem := limits_problem(float(low), float(high))) is not None:
        raise InvalidInput(f"Neon refuses this: {problem}")
    if seconds is not None and (problem := suspend_problem(int(seconds))) is not None:
        raise InvalidInput(f"Neon refuses this: {problem}")


def _summary(change: ComputeChange) -> str:
    """The text the human confirms: deterministic for the same compute (no clock, no random part)."""
    what = _what(change.endpoint, change.branch)
    action = change.request.action
    if action == "configure":
        b, a = change.before, change.after
        lines = [
            f"Configure the {what}: {_size(b)} → {_size(a)}; "
            f"{suspend_text(_int(b['suspend_timeout_seconds']))} → {suspend_text(_int(a['suspend_timeout_seconds']))}."
        ]
    elif action == "start":
        lines = [f"Start the {what} (now {change.endpoint.current_state})."]
    elif action == "suspend":
        lines = [
            f"Suspend the {what} (now {change.endpoint.current_state}): its open connections are cut; the next "
            "connection starts it again. Statistics held in memory (pg_stat_statements) are lost."
        ]
    else:
        lines = [
            f"Restart the {what}: its open connections are cut and it starts again at the same address. Statistics "
            "held in memory (pg_stat_statements) are lost."
        ]
    if change.protected_because is not None:
        lines.append(f"Branch {change.branch.name} is protected ({change.protected_because}).")
    if not change.changed:
        lines.append(_unchanged(change))
    return "\n".join(lines)


def _unchanged(change: ComputeChange) -> str:
    if change.request.action == "configure":
        return "Nothing to change: the compute has these settings already."
    state = "active" if change.request.action == "start" else "suspended"
    return f"Nothing to do: the compute is {state} already."
