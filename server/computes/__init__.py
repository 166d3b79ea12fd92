"""Computes, connections and roles on Neon.

- ``service``: ``Computes`` lists, configures, starts, suspends and restarts computes and adds read replicas;
  ``limits`` Neon's limits (shared with local Neon).
- ``connection_check``: why an application cannot connect, as findings with fixes.
- ``roles``: least-privilege login roles made with SQL (SCRAM verifier, password shown once or never).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy_exports

if TYPE_CHECKING:
    from .connection_check import ConnectionCheck, ConnectionReport
    from .roles import Privileges, RoleCreated, Roles
    from .service import ComputeChange, ComputeChanged, ComputeList, Computes, ReplicaCreated, suspend_text

__all__ = [
    "ComputeChange",
    "ComputeChanged",
    "ComputeList",
    "Computes",
    "ConnectionCheck",
    "ConnectionReport",
    "Privileges",
    "ReplicaCreated",
    "RoleCreated",
    "Roles",
    "suspend_text",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "connection_check": ("ConnectionCheck", "ConnectionReport"),
        "roles": ("Privileges", "RoleCreated", "Roles"),
        "service": ("ComputeChange", "ComputeChanged", "ComputeList", "Computes", "ReplicaCreated", "suspend_text"),
    },
)
