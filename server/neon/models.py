"""Typed views of the Neon resources neon-mcp uses: organisations, projects, branches, endpoints, operations, databases
and roles.

Only the fields the tools read are typed; everything else Neon sends is kept (``extra="allow"``), so fields Neon adds
later are tolerated rather than rejected. Role passwords are dropped on arrival: a model never holds a secret.
Field meanings follow Neon's API v2 contract (``openapi-v2.json``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "FAILED_OPERATION_STATUSES",
    "SUCCESSFUL_OPERATION_STATUSES",
    "Branch",
    "Database",
    "Endpoint",
    "NeonModel",
    "Operation",
    "Organization",
    "Project",
    "Role",
]

SUCCESSFUL_OPERATION_STATUSES: Final = frozenset({"finished", "skipped"})
"""An operation in one of these states is done and did what was needed (``skipped``: nothing was left to do)."""

FAILED_OPERATION_STATUSES: Final = frozenset({"failed", "error", "cancelled"})
"""An operation in one of these states will not finish; any other state (scheduling, running, cancelling) may."""


class NeonModel(BaseModel):
    """Base of the resource models: unknown fields kept, values immutable once parsed."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Organization(NeonModel):
    id: str
    name: str
    handle: str | None = None
    plan: str | None = None
    managed_by: str | None = None
    created_at: datetime | None = None


class Project(NeonModel):
    id: str
    name: str
    org_id: str | None = Field(default=None, description="the organisation it belongs to (absent: a personal one)")
    platform_id: str | None = None
    region_id: str | None = None
    pg_version: int | None = None
    store_passwords: bool | None = None
    history_retention_seconds: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Branch(NeonModel):
    id: str
    project_id: str
    name: str
    parent_id: str | None = None
    parent_lsn: str | None = None
    parent_timestamp: datetime | None = None
    current_state: str | None = None
    pending_state: str | None = None
    default: bool = False
    protected: bool = False
    logical_size: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    last_reset_at: datetime | None = None


class Endpoint(NeonModel):
    id: str
    project_id: str
    branch_id: str
    host: str
    type: str
    current_state: str
    pending_state: str | None = None
    disabled: bool = False
    suspend_timeout_seconds: int | None = None
    last_active: datetime | None = None
    name: str | None = None
    pooler_enabled: bool | None = None
    pooler_mode: str | None = None
    started_at: datetime | None = None
    suspended_at: datetime | None = None
    created_at: datetime | None = None


class Operation(NeonModel):
    id: str
    project_id: str
    action: str
    status: str
    branch_id: str | None = None
    endpoint_id: str | None = None
    error: str | None = None
    failures_count: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESSFUL_OPERATION_STATUSES

    @property
    def failed(self) -> bool:
        return self.status in FAILED_OPERATION_STATUSES


class Database(NeonModel):
    id: int | None = None
    branch_id: str
    name: str
    owner_name: str


class Role(NeonModel):
    branch_id: str
    name: str
    protected: bool = False
    authentication_method: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            return {key: value for key, value in data.items() if key != "password"}
        return data
