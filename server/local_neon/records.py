"""What local Neon remembers: organisations, projects, branches, endpoints, roles, databases and operations, as plain
dataclasses.

Records hold local facts (a branch's timeline directory, an endpoint's port, role passwords); ``views`` turns them
into Neon's JSON. Times are aware UTC datetimes. Records are mutable: handlers change a copy and ``Store.put`` it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Branch", "Database", "Endpoint", "Operation", "Organization", "Project", "Record", "Role"]


@dataclass
class Organization:
    """An organisation of the local user; the first one (made at first start) is the default for new projects."""

    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    default: bool = False

    @property
    def key(self) -> str:
        return self.id


@dataclass
class Project:
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    pg_version: int
    history_retention_seconds: int
    superuser_password: str
    settings: dict[str, Any] = field(default_factory=dict)
    default_endpoint_settings: dict[str, Any] = field(default_factory=dict)
    org_id: str | None = None
    """The organisation the project belongs to (None only in state written before organisations existed)."""

    @property
    def key(self) -> str:
        return self.id


@dataclass
class Branch:
    """A branch and the timeline directory holding its data (``timeline``, a directory under the clusters root).

    ``history_start``/``history_start_lsn`` are the time and LSN of the oldest base copy the timeline keeps: the
    earliest point the branch can be branched or restored at (the housekeeping loop moves it as history ages out).
    """

    id: str
    project_id: str
    name: str
    timeline: str
    created_at: datetime
    updated_at: datetime
    state_changed_at: datetime
    current_state: str = "init"
    pending_state: str | None = None
    parent_id: str | None = None
    parent_lsn: str | None = None
    parent_timestamp: datetime | None = None
    default: bool = False
    protected: bool = False
    expires_at: datetime | None = None
    ttl_interval_seconds: int | None = None
    last_reset_at: datetime | None = None
    restored_from: str | None = None
    restored_as: str | None = None
    history_start: datetime | None = None
    history_start_lsn: str | None = None
    annotation: dict[str, str] = field(default_factory=dict)
    init_source: str = "parent-data"
    """``parent-data`` (a copy of the parent), or ``schema-only`` (a root holding only the schema of its source)."""

    @property
    def key(self) -> str:
        return self.id

    @property
    def is_project_root(self) -> bool:
        """The project's root branch: no parent and not a schema-only branch (those are roots of their own)."""
        return self.parent_id is None and self.init_source == "parent-data"


@dataclass
class Endpoint:
    id: str
    project_id: str
    branch_id: str
    type: str
    port: int
    created_at: datetime
    updated_at: datetime
    current_state: str = "init"
    pending_state: str | None = None
    suspend_timeout_seconds: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
    autoscaling_limit_min_cu: float = 0.25
    autoscaling_limit_max_cu: float = 0.25
    provisioner: str = "k8s-neonvm"
    disabled: bool = False
    name: str | None = None
    last_active: datetime | None = None
    started_at: datetime | None = None
    suspended_at: datetime | None = None
    pooler_port: int | None = None
    """The port of the endpoint's PgBouncer (see ``pooler``); None while local Neon has no pgbouncer."""

    @property
    def key(self) -> str:
        return self.id


@dataclass
class Role:
    project_id: str
    branch_id: str
    name: str
    password: str | None
    created_at: datetime
    updated_at: datetime
    protected: bool = False

    @property
    def key(self) -> str:
        return f"{self.branch_id}/{self.name}"


@dataclass
class Database:
    id: int
    project_id: str
    branch_id: str
    name: str
    owner_name: str
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> str:
        return f"{self.branch_id}/{self.name}"


@dataclass
class Operation:
    id: str
    project_id: str
    action: str
    created_at: datetime
    updated_at: datetime
    status: str = "scheduling"
    branch_id: str | None = None
    endpoint_id: str | None = None
    error: str | None = None
    failures_count: int = 0
    total_duration_ms: int = 0

    @property
    def key(self) -> str:
        return self.id


Record = Organization | Project | Branch | Endpoint | Role | Database | Operation
