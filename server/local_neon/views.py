"""Records as Neon's JSON: the Project, Branch, Endpoint, Operation, Role, Database and ConnectionDetails schemas.

Every field the spec requires is present; usage counters Neon measures (compute time, transfer, …) are 0 locally.
Optional fields without a value are left out rather than sent as null, as Neon does. Endpoint hosts and connection
URIs address the front door (see ``frontdoor.addresses``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .frontdoor import addresses
from .ids import format_time
from .records import Branch, Database, Endpoint, Operation, Organization, Project, Role

__all__ = [
    "REGION",
    "branch",
    "connection_details",
    "connection_uri",
    "database",
    "endpoint",
    "operation",
    "organization",
    "project",
    "project_list_item",
    "region",
    "role",
]

REGION = "local"
_ZERO_USAGE = {
    "cpu_used_sec": 0,
    "compute_time_seconds": 0,
    "active_time_seconds": 0,
    "written_data_bytes": 0,
    "data_transfer_bytes": 0,
}


def _optional(body: dict[str, Any], **values: Any) -> dict[str, Any]:
    for key, value in values.items():
        if value is not None:
            body[key] = format_time(value) if isinstance(value, datetime) else value
    return body


def _period(moment: datetime) -> tuple[str, str]:
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return format_time(start), format_time(end)


def _project_common(record: Project, host: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "platform_id": REGION,
        "region_id": REGION,
        "name": record.name,
        "provisioner": "k8s-neonvm",
        "pg_version": record.pg_version,
        "proxy_host": host,
        "branch_logical_size_limit": 0,
        "branch_logical_size_limit_bytes": 0,
        "store_passwords": True,
        "cpu_used_sec": 0,
        "creation_source": "console",
        "history_retention_seconds": record.history_retention_seconds,
        "created_at": format_time(record.created_at),
        "updated_at": format_time(record.updated_at),
        "owner_id": record.org_id or "local",
        "settings": record.settings,
        "default_endpoint_settings": record.default_endpoint_settings,
        **({"org_id": record.org_id} if record.org_id else {}),
    }


def project(record: Project, *, host: str, now: datetime) -> dict[str, Any]:
    """The Project schema."""
    start, end = _period(now)
    body = _project_common(record, host)
    body.update(_ZERO_USAGE)
    body.update(data_storage_bytes_hour=0, consumption_period_start=start, consumption_period_end=end)
    return body


def project_list_item(record: Project, *, host: str) -> dict[str, Any]:
    """The ProjectListItem schema."""
    body = _project_common(record, host)
    body["active_time"] = 0
    return body


def branch(record: Branch) -> dict[str, Any]:
    """The Branch schema."""
    body: dict[str, Any] = {
        "id": record.id,
        "project_id": record.project_id,
        "name": record.name,
        "current_state": record.current_state,
        "state_changed_at": format_time(record.state_changed_at),
        "creation_source": "console",
        "primary": record.default,
        "default": record.default,
        "protected": record.protected,
        "created_at": format_time(record.created_at),
        "updated_at": format_time(record.updated_at),
        "init_source": record.init_source,
        **_ZERO_USAGE,
    }
    _optional(
        body,
        parent_id=record.parent_id,
        parent_lsn=record.parent_lsn,
        pending_state=record.pending_state,
        expires_at=record.expires_at,
        ttl_interval_seconds=record.ttl_interval_seconds,
        last_reset_at=record.last_reset_at,
        restored_from=record.restored_from,
        restored_as=record.restored_as,
    )
    if record.parent_timestamp is not None:
        body["parent_timestamp"] = format_time(record.parent_timestamp, precise=True)
    return body


def organization(record: Organization) -> dict[str, Any]:
    """The Organization schema."""
    return {
        "id": record.id,
        "name": record.name,
        "handle": record.id,
        "plan": "local",
        "managed_by": "console",
        "created_at": format_time(record.created_at),
        "updated_at": format_time(record.updated_at),
    }


def region() -> dict[str, Any]:
    """The RegionResponse schema of local Neon's one region."""
    return {"region_id": REGION, "name": "This machine", "default": True, "geo_lat": "", "geo_long": ""}


def endpoint(record: Endpoint, *, host: str, port: int, pooler_enabled: bool) -> dict[str, Any]:
    """The Endpoint schema, its ``host`` on the front door at ``host``:``port``; ``pooler_enabled`` says whether a
    PgBouncer serves (or, when it runs, will serve) it."""
    body: dict[str, Any] = {
        "host": addresses.endpoint_host(record.id, host=host, port=port),
        "id": record.id,
        "project_id": record.project_id,
        "branch_id": record.branch_id,
        "autoscaling_limit_min_cu": record.autoscaling_limit_min_cu,
        "autoscaling_limit_max_cu": record.autoscaling_limit_max_cu,
        "region_id": REGION,
        "type": record.type,
        "current_state": record.current_state,
        "settings": record.settings,
        "pooler_enabled": pooler_enabled,
        "pooler_mode": "transaction",
        "disabled": record.disabled,
        "passwordless_access": False,
        "creation_source": "console",
        "created_at": format_time(record.created_at),
        "updated_at": format_time(record.updated_at),
        "proxy_host": host,
        "suspend_timeout_seconds": record.suspend_timeout_seconds,
        "provisioner": record.provisioner,
    }
    return _optional(
        body,
        name=record.name,
        pending_state=record.pending_state,
        last_active=record.last_active,
        started_at=record.started_at,
        suspended_at=record.suspended_at,
    )


def operation(record: Operation) -> dict[str, Any]:
    """The Operation schema."""
    body: dict[str, Any] = {
        "id": record.id,
        "project_id": record.project_id,
        "action": record.action,
        "status": record.status,
        "failures_count": record.failures_count,
        "created_at": format_time(record.created_at),
        "updated_at": format_time(record.updated_at),
        "total_duration_ms": record.total_duration_ms,
    }
    return _optional(body, branch_id=record.branch_id, endpoint_id=record.endpoint_id, error=record.error)


def role(record: Role, *, with_password: bool = False) -> dict[str, Any]:
    """The Role schema; the password only where Neon shows it (creation, reset)."""
    body: dict[str, Any] = {
        "branch_id": record.branch_id,
        "name": record.name,
        "protected": record.protected,
        "created_at": format_time(record.created_at),
        "updated_at": format_time(record.updated_at),
    }
    if record.password is not None:
        body["authentication_method"] = "password"
        if with_password:
            body["password"] = record.password
    return body


def database(record: Database) -> dict[str, Any]:
    """The Database schema."""
    return {
        "id": record.id,
        "branch_id": record.branch_id,
        "name": record.name,
        "owner_name": record.owner_name,
        "created_at": format_time(record.created_at),
        "updated_at": format_time(record.updated_at),
    }


def connection_uri(
    *, host: str, port: int, endpoint_id: str, pooled: bool, role: str, password: str, database: str
) -> str:
    """A connection URI through the front door at ``host``:``port`` (see ``frontdoor.addresses``)."""
    return addresses.connection_uri(
        host=host, port=port, endpoint_id=endpoint_id, pooled=pooled, role=role, password=password, database=database
    )


def connection_details(
    *, host: str, port: int, endpoint_id: str, role: str, password: str, database: str
) -> dict[str, Any]:
    """The ConnectionDetails schema for the front door at ``host``:``port``."""
    return {
        "connection_uri": connection_uri(
            host=host, port=port, endpoint_id=endpoint_id, pooled=False, role=role, password=password, database=database
        ),
        "connection_parameters": {
            "database": database,
            "password": password,
            "role": role,
            "host": addresses.endpoint_host(endpoint_id, host=host, port=port),
            "pooler_host": addresses.pooler_host(endpoint_id, host=host, port=port),
        },
    }
