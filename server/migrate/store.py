"""Migration plans kept on disk: exactly what was tested, so that exactly that is applied.

One JSON file per plan in ``$NEON_MCP_HOME/migrations`` (directory 0700, files 0600), written atomically. A plan
holds the script and its SHA-256; loading a plan whose script no longer matches its checksum is refused, so neither
the model nor an edit on disk can change what ``apply`` runs. Plans survive a restart of the server and expire with
their plan branch; expired and finished plans are purged on open.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from ..errors import ConfirmationError, InvalidInput

__all__ = ["MigrationPlan", "MigrationStore", "checksum"]

PlanState = Literal["planned", "applied", "discarded"]
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

    @property
    def expired(self) -> bool:
        return self.state == "planned" and self.expires_at <= datetime.now(UTC)


class MigrationStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, plan_id: str) -> Path:
        if not plan_id.startswith("mig_") or not plan_id[4:].replace("-", "").replace("_", "").isalnum():
            raise InvalidInput(f"{plan_id!r} is not a migration id (they look like mig_…, from migrate plan)")
        return self.directory / f"{plan_id}.json"

    def new_id(self) -> str:
        return "mig_" + secrets.token_urlsafe(9)

    def save(self, plan: MigrationPlan) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(plan.id)
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(plan.model_dump_json(indent=1))
        os.replace(temporary, path)

    def load(self, plan_id: str) -> MigrationPlan:
        """The stored plan; raises ``ConfirmationError`` when it is unknown or its script was changed."""
        path = self._path(plan_id.strip())
        try:
            plan = MigrationPlan.model_validate(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ConfirmationError(
                f"unknown migration id {plan_id!r}; ids come from migrate(action='plan') (or it was purged)"
            ) from None
        except (ValueError, ValidationError) as exc:
            raise ConfirmationError(f"migration {plan_id} is unreadable on disk; plan it again ({exc})") from exc
        if checksum(plan.sql) != plan.checksum:
            raise ConfirmationError(
                f"migration {plan_id}'s stored SQL does not match its checksum: it was changed after it was planned; "
                "nothing runs. Plan it again."
            )
        return plan

    def purge(self) -> list[MigrationPlan]:
        """Forget plans that expired or finished long ago; the expired ones still planned are returned (their
        branches may need deleting)."""
        if not self.directory.is_dir():
            return []
        expired = []
        now = time.time()
        for path in self.directory.glob("mig_*.json"):
            try:
                plan = MigrationPlan.model_validate(json.loads(path.read_text()))
            except (OSError, ValueError, ValidationError):
                continue
            finished = plan.finished_at.timestamp() if plan.finished_at else None
            if plan.expired:
                expired.append(plan)
                path.unlink(missing_ok=True)
            elif finished is not None and now - finished > _KEEP_FINISHED:
                path.unlink(missing_ok=True)
        return expired
