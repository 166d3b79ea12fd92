"""Neon: its management API, and everything the server does with branches.

- ``client``: ``NeonClient`` over httpx2 (retries, rate limits, pagination, operations); ``models`` its answers;
  ``rate_limit`` the limiter and backoff.
- ``targets``: ``Directory`` resolves project, branch, database and role by name or id (cached) and decides protection.
- ``connections``: ``Connections``, the places of a Neon project: pools per target, waking suspended computes.
- ``branches``: create, delete, reset, restore (``BranchService``); ``backups``: backup branches before destructive
  changes; ``scratch``: short-lived branches; ``time_travel``: reads as of a past moment; ``points``: timestamps and
  LSNs.
- ``views``: read-only views (projects, branch tree, connection strings, schema diffs); ``operations``: recent
  operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy_exports

if TYPE_CHECKING:
    from .backups import Backups
    from .branches import BranchChange, BranchChanged, BranchCreated, BranchService
    from .client import NeonClient
    from .connections import Connections
    from .models import Branch, Endpoint
    from .operations import OperationHistory, OperationList
    from .scratch import ScratchBranches
    from .targets import Directory, Target
    from .time_travel import TimeTravel
    from .views import (
        BranchDescription,
        BranchList,
        BranchSummary,
        ConnectionString,
        NeonViews,
        ProjectDescription,
        ProjectList,
        SchemaComparison,
    )

__all__ = [
    "Backups",
    "Branch",
    "BranchChange",
    "BranchChanged",
    "BranchCreated",
    "BranchDescription",
    "BranchList",
    "BranchService",
    "BranchSummary",
    "ConnectionString",
    "Connections",
    "Directory",
    "Endpoint",
    "NeonClient",
    "NeonViews",
    "OperationHistory",
    "OperationList",
    "ProjectDescription",
    "ProjectList",
    "SchemaComparison",
    "ScratchBranches",
    "Target",
    "TimeTravel",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "backups": ("Backups",),
        "branches": ("BranchChange", "BranchChanged", "BranchCreated", "BranchService"),
        "client": ("NeonClient",),
        "connections": ("Connections",),
        "models": ("Branch", "Endpoint"),
        "operations": ("OperationHistory", "OperationList"),
        "scratch": ("ScratchBranches",),
        "targets": ("Directory", "Target"),
        "time_travel": ("TimeTravel",),
        "views": (
            "BranchDescription",
            "BranchList",
            "BranchSummary",
            "ConnectionString",
            "NeonViews",
            "ProjectDescription",
            "ProjectList",
            "SchemaComparison",
        ),
    },
)
