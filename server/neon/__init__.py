"""Neon: its management API, and everything the server does with branches.

- ``client``: ``NeonClient`` over httpx2 (retries, rate limits, pagination, operations); ``models`` its answers;
  ``rate_limit`` the limiter and backoff.
- ``targets``: ``Directory`` resolves project, branch, database and role by name or id (cached) and decides protection.
- ``connections``: ``Connections``, the places of a Neon project: pools per target, waking suspended computes.
- ``branches``: create, delete, reset, restore (``BranchService``); ``backups``: backup branches before destructive
  changes; ``scratch``: short-lived branches; ``time_travel``: reads as of a past moment; ``points``: timestamps and
  LSNs.
- ``projects``: create, delete and list projects, list organisations (``ProjectService``).
- ``views``: read-only views (a project, branch tree, connection strings, schema diffs); ``operations``: recent
  operations; ``search``: what the connector tools search and fetch (``Finder``).
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
    from .projects import (
        OrganizationList,
        ProjectCreated,
        ProjectDeleted,
        ProjectDeletion,
        ProjectList,
        ProjectService,
        SharedProjectList,
    )
    from .scratch import ScratchBranches
    from .search import BranchHit, Finder, ProjectHit, Ref, SearchHits, TableDocument, TableHit, parse_ref
    from .targets import Directory, Target
    from .time_travel import TimeTravel
    from .views import (
        BranchDescription,
        BranchList,
        BranchSummary,
        ConnectionString,
        NeonViews,
        ProjectDescription,
        SchemaComparison,
    )

__all__ = [
    "Backups",
    "Branch",
    "BranchChange",
    "BranchChanged",
    "BranchCreated",
    "BranchDescription",
    "BranchHit",
    "BranchList",
    "BranchService",
    "BranchSummary",
    "ConnectionString",
    "Connections",
    "Directory",
    "Endpoint",
    "Finder",
    "NeonClient",
    "NeonViews",
    "OperationHistory",
    "OperationList",
    "OrganizationList",
    "ProjectCreated",
    "ProjectDeleted",
    "ProjectDeletion",
    "ProjectDescription",
    "ProjectHit",
    "ProjectList",
    "ProjectService",
    "Ref",
    "SchemaComparison",
    "ScratchBranches",
    "SearchHits",
    "SharedProjectList",
    "TableDocument",
    "TableHit",
    "Target",
    "TimeTravel",
    "parse_ref",
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
        "projects": (
            "OrganizationList",
            "ProjectCreated",
            "ProjectDeleted",
            "ProjectDeletion",
            "ProjectList",
            "ProjectService",
            "SharedProjectList",
        ),
        "scratch": ("ScratchBranches",),
        "search": ("BranchHit", "Finder", "ProjectHit", "Ref", "SearchHits", "TableDocument", "TableHit", "parse_ref"),
        "targets": ("Directory", "Target"),
        "time_travel": ("TimeTravel",),
        "views": (
            "BranchDescription",
            "BranchList",
            "BranchSummary",
            "ConnectionString",
            "NeonViews",
            "ProjectDescription",
            "SchemaComparison",
        ),
    },
)
