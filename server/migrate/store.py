"""Migration plans, kept so that exactly what was tested is applied, once.

A plan holds the script and its SHA-256; loading a plan whose script no longer matches its checksum is refused, so
neither the model nor an edit where it is kept can change what ``apply`` runs. Plans expire with their plan branch;
expired and long-finished plans are purged.

``MigrationStore`` is the interface, with two implementations:

- ``PlanFiles``: one JSON file per plan in ``$NEON_MCP_HOME/migrations`` (directory 0700, files 0600), written
  atomically (the embedded default: one process; plans survive its restart).
- ``PlanTable``: rows of ``neon_mcp_state.migration_plans`` in the state database, shared by replicas: a plan made
  through one is applied through any. Applying holds the plan's row lock for as long as the migration runs, so two
  replicas racing on one plan get one apply and one refusal; if the applying process dies, the database releases the
  lock and the plan is still planned (a retry finds the version recorded on the target if it had committed). Expiry
  is decided by the database's clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ValidationError

from ..errors import ConfirmationError, InvalidInput

if TYPE_CHECKING:
    import asyncpg

    from ..state.database import StateDatabase

__all__ = ["Claim", "MigrationPlan", "MigrationStore", "PlanFiles", "PlanTable", "checksum"]

PlanState = Literal["planned", "applied", "discarded"]
Finished = Literal["applied", "discarded"]
_KEEP_FINISHED = 7 * 86_400
"""Seconds an applied or discarded plan is remembered (so a second apply says what happened)."""


def checksum(script: str) -> str:
    return "sha256:" + hashlib.sha256(script.encode()).hexdigest()


class MigrationPlan(BaseModel):
    """A planned migration: the script, where it was tested, and what the target looked like then."""

    id: str
    sql: str
    checksum: str
    version: str
    description: str
    project_id: str
    branch_id: str
    branch_name: str
    database: str
    role: str
    protected_because: str | None
    destructive: bool
    schema_fingerprint: str
    plan_branch_id: str
    plan_branch_name: str
    created_at: datetime
    expires_at: datetime
    state: PlanState = "planned"
    finished_at: datetime | None = None


class Claim(Protocol):
    """A plan held by one call until the block it was claimed in ends: nobody else applies or discards it then."""

    @property
    def plan(self) -> MigrationPlan: ...

    async def finish(self, state: Finished) -> None:
        """Record the plan as applied or discarded (kept when the block ends without raising)."""
        ...


class MigrationStore(Protocol):
    def new_id(self) -> str: ...

    async def save(self, plan: MigrationPlan) -> None:
        """Keep a new plan; raises ``StateUnavailable`` when it cannot be kept."""
        ...

    async def load(self, plan_id: str) -> MigrationPlan:
        """The stored plan, whatever its state; raises ``ConfirmationError`` when it is unknown or its script was
        changed."""
        ...

    async def applicable(self, plan_id: str) -> MigrationPlan:
        """The stored plan if it can be applied now (planned, not expired by the store's clock); raises
        ``ConfirmationError`` saying why not."""
        ...

    def claim(self, plan_id: str) -> AbstractAsyncContextManager[Claim]:
        """Hold an applicable plan for the block: raises ``ConfirmationError`` as ``applicable`` does, and when
        another call holds it now. What ``Claim.finish`` records is kept when the block ends without raising."""
        ...

    async def purge(self) -> list[MigrationPlan]:
        """Forget plans that expired or finished long ago; the expired ones still planned are returned (their
        branches may need deleting)."""
        ...


def _new_id() -> str:
    return "mig_" + secrets.token_urlsafe(9)


def _checked_id(plan_id: str) -> str:
    plan_id = plan_id.strip()
    if not plan_id.startswith("mig_") or not plan_id[4:].replace("-", "").replace("_", "").isalnum():
        raise InvalidInput(f"{plan_id!r} is not a migration id (they look like mig_…, from migrate plan)")
    return plan_id


def _unknown(plan_id: str) -> ConfirmationError:
    return ConfirmationError(
        f"unknown migration id {plan_id!r}; ids come from migrate(action='plan') (or it was purged)"
    )


def _verified(plan: MigrationPlan) -> MigrationPlan:
    if checksum(plan.sql) != plan.checksum:
        raise ConfirmationError(
            f"migration {plan.id}'s stored SQL does not match its checksum: it was changed after it was planned; "
            "nothing runs. Plan it again."
        )
    return plan


def _refusal(plan: MigrationPlan, *, expired: bool) -> ConfirmationError | None:
    """Why ``plan`` cannot be applied now, or None."""
    if plan.state == "applied":
        when = f" (at {plan.finished_at:%Y-%m-%d %H:%M:%S} UTC)" if plan.finished_at else ""
        return ConfirmationError(f"migration {plan.id} was already applied{when}; it cannot run again")
    if plan.state == "discarded":
        return ConfirmationError(f"migration {plan.id} was discarded; plan it again")
    if expired:
        return ConfirmationError(
            f"migration {plan.id} expired at {plan.expires_at:%H:%M:%S} UTC with its plan branch; plan it again"
        )
    return None


def _busy(plan_id: str) -> ConfirmationError:
    return ConfirmationError(
        f"migration {plan_id} is being applied (or discarded) by another call right now; it runs once. Call "
        f"migrate(action='apply', migration_id='{plan_id}') again later to see how it ended."
    )


# --- files ----------------------------------------------------------------------------------------------------------


class _FileClaim:
    def __init__(self, plan: MigrationPlan) -> None:
        self.plan = plan
        self.finished: Finished | None = None

    async def finish(self, state: Finished) -> None:
        self.finished = state


class PlanFiles:
    """``MigrationStore`` as files in ``directory``; claims are held in this process (a set: one event loop needs no
    lock)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._claimed: set[str] = set()

    def _path(self, plan_id: str) -> Path:
        return self.directory / f"{_checked_id(plan_id)}.json"

    def new_id(self) -> str:
        return _new_id()

    async def save(self, plan: MigrationPlan) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(plan.id)
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(plan.model_dump_json(indent=1))
        os.replace(temporary, path)

    async def load(self, plan_id: str) -> MigrationPlan:
        path = self._path(plan_id)
        try:
            plan = MigrationPlan.model_validate(json.loads(path.read_text()))
        except FileNotFoundError:
            raise _unknown(plan_id.strip()) from None
        except (ValueError, ValidationError) as exc:
            raise ConfirmationError(f"migration {plan_id} is unreadable on disk; plan it again ({exc})") from exc
        return _verified(plan)

    async def applicable(self, plan_id: str) -> MigrationPlan:
        plan = await self.load(plan_id)
        refusal = _refusal(plan, expired=plan.expires_at <= datetime.now(UTC))
        if refusal is not None:
            raise refusal
        return plan

    @asynccontextmanager
    async def claim(self, plan_id: str) -> AsyncIterator[Claim]:
        plan_id = _checked_id(plan_id)
        if plan_id in self._claimed:
            raise _busy(plan_id)
        self._claimed.add(plan_id)
        try:
            claim = _FileClaim(await self.applicable(plan_id))
            yield claim
            if claim.finished is not None:
                await self.save(
                    claim.plan.model_copy(update={"state": claim.finished, "finished_at": datetime.now(UTC)})
                )
        finally:
            self._claimed.discard(plan_id)

    async def purge(self) -> list[MigrationPlan]:
        if not self.directory.is_dir():
            return []
        expired = []
        now = time.time()
        for path in self.directory.glob("mig_*.json"):
            try:
                plan = MigrationPlan.model_validate(json.loads(path.read_text()))
            except (OSError, ValueError, ValidationError):
                continue
            if plan.id in self._claimed:
                continue
            finished = plan.finished_at.timestamp() if plan.finished_at else None
            if plan.state == "planned" and plan.expires_at.timestamp() <= now:
                expired.append(plan)
                path.unlink(missing_ok=True)
            elif finished is not None and now - finished > _KEEP_FINISHED:
                path.unlink(missing_ok=True)
        return expired


# --- the state database ---------------------------------------------------------------------------------------------

_SAVE = """
INSERT INTO neon_mcp_state.migration_plans
    (id, tenant, plan, checksum, schema_fingerprint, state, created_by, expires_at)
VALUES ($1, $2, $3::jsonb, $4, $5, 'planned', $6, $7)
"""
_LOAD = """
SELECT plan::text AS plan, state, finished_at, expires_at <= now() AS expired
FROM neon_mcp_state.migration_plans WHERE id = $1 AND tenant = $2
"""
_CLAIM = _LOAD + "FOR UPDATE NOWAIT"
_FINISH = """
UPDATE neon_mcp_state.migration_plans SET state = $3, finished_at = now(), finished_by = $4
WHERE id = $1 AND tenant = $2
"""
_PURGE = """
DELETE FROM neon_mcp_state.migration_plans WHERE id IN (
    SELECT id FROM neon_mcp_state.migration_plans
    WHERE tenant = $1
      AND ((state = 'planned' AND expires_at <= now()) OR finished_at < now() - make_interval(secs => $2))
    FOR UPDATE SKIP LOCKED
)
RETURNING plan::text AS plan, state
"""


def _plan_of(row: asyncpg.Record) -> MigrationPlan:
    """The plan as stored, with its state as the row says now."""
    try:
        plan = MigrationPlan.model_validate_json(row["plan"])
    except ValidationError as exc:
        raise ConfirmationError(f"a stored migration plan is unreadable; plan it again ({exc})") from exc
    return _verified(plan.model_copy(update={"state": row["state"], "finished_at": row["finished_at"]}))


class _RowClaim:
    def __init__(self, plan: MigrationPlan, conn: asyncpg.Connection, tenant: str, replica: str) -> None:
        self.plan = plan
        self._conn = conn
        self._tenant = tenant
        self._replica = replica

    async def finish(self, state: Finished) -> None:
        from ..state.database import translated

        with translated(f"recording migration {self.plan.id} as {state}"):
            await self._conn.execute(_FINISH, self.plan.id, self._tenant, state, self._replica)


class PlanTable:
    """``MigrationStore`` of one tenant in the state database, shared by every replica."""

    def __init__(self, database: StateDatabase, *, tenant: str, replica: str) -> None:
        self.database = database
        self.tenant = tenant
        self.replica = replica

    def new_id(self) -> str:
        return _new_id()

    async def save(self, plan: MigrationPlan) -> None:
        await self.database.execute(
            f"keeping migration plan {plan.id}",
            _SAVE,
            plan.id,
            self.tenant,
            plan.model_dump_json(),
            plan.checksum,
            plan.schema_fingerprint,
            self.replica,
            plan.expires_at,
        )

    async def _row(self, plan_id: str) -> asyncpg.Record:
        row = await self.database.fetchrow(f"reading migration {plan_id}", _LOAD, plan_id, self.tenant)
        if row is None:
            raise _unknown(plan_id)
        return row

    async def load(self, plan_id: str) -> MigrationPlan:
        return _plan_of(await self._row(_checked_id(plan_id)))

    async def applicable(self, plan_id: str) -> MigrationPlan:
        row = await self._row(_checked_id(plan_id))
        plan = _plan_of(row)
        refusal = _refusal(plan, expired=row["expired"])
        if refusal is not None:
            raise refusal
        return plan

    @asynccontextmanager
    async def claim(self, plan_id: str) -> AsyncIterator[Claim]:
        import asyncpg

        plan_id = _checked_id(plan_id)
        async with self.database.transaction(f"applying migration {plan_id}") as conn:
            try:
                row = await conn.fetchrow(_CLAIM, plan_id, self.tenant)
            except asyncpg.LockNotAvailableError:
                raise _busy(plan_id) from None
            if row is None:
                raise _unknown(plan_id)
            plan = _plan_of(row)
            refusal = _refusal(plan, expired=row["expired"])
            if refusal is not None:
                raise refusal
            yield _RowClaim(plan, conn, self.tenant, self.replica)

    async def purge(self) -> list[MigrationPlan]:
        rows = await self.database.fetch("purging migration plans", _PURGE, self.tenant, float(_KEEP_FINISHED))
        expired = []
        for row in rows:
            plan = MigrationPlan.model_validate_json(row["plan"])
            if row["state"] == "planned":
                expired.append(plan)
        return expired
