"""SQL: from a caller's text to rows, under the policy.

- ``analysis``: facts about each statement, read with PostgreSQL's own parser (pglast); judges nothing.
- ``policy``: a pure verdict over those facts (read / write / ddl / destructive / forbidden) for an access mode.
- ``service``: ``SQLService`` plans (input checks, analysis, policy, the summary a human confirms) and executes (backup
  first when confirmed on a protected branch, audit).
- ``database``: the guarded executor (``Databases``): pools, read-only transactions, timeouts, caps, error mapping.
- ``values``: PostgreSQL values to JSON and back. ``places``: where a call runs (``Place``, ``Places``).
- ``closure``: what a statement sets off (views, triggers, function bodies, …) resolved from the catalog (``Closures``),
  as facts (``reached``), from what the statement names (``closure_needs``), through the catalog's queries
  (``closure_catalog``) and function bodies and rule actions read as statements (``bodies``).
- ``catalog``: ``describe_schema``'s catalog reading. ``snapshot``: a one-query schema snapshot, its diff and
  fingerprint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy_exports

if TYPE_CHECKING:
    from .analysis import StatementFacts, analyze
    from .catalog import Relation, SchemaCatalog, TableDetail
    from .closure import Closure, Closures
    from .database import Caps, Databases, Guards, Outcome, Statement
    from .places import Place, Places, URLPlaces
    from .policy import Verdict, classify, decide
    from .service import Backups, Execution, Plan, SQLService
    from .snapshot import diff, fingerprint, snapshot
    from .values import json_lines

__all__ = [
    "Backups",
    "Caps",
    "Closure",
    "Closures",
    "Databases",
    "Execution",
    "Guards",
    "Outcome",
    "Place",
    "Places",
    "Plan",
    "Relation",
    "SQLService",
    "SchemaCatalog",
    "Statement",
    "StatementFacts",
    "TableDetail",
    "URLPlaces",
    "Verdict",
    "analyze",
    "classify",
    "decide",
    "diff",
    "fingerprint",
    "json_lines",
    "snapshot",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "analysis": ("StatementFacts", "analyze"),
        "catalog": ("Relation", "SchemaCatalog", "TableDetail"),
        "closure": ("Closure", "Closures"),
        "database": ("Caps", "Databases", "Guards", "Outcome", "Statement"),
        "places": ("Place", "Places", "URLPlaces"),
        "policy": ("Verdict", "classify", "decide"),
        "service": ("Backups", "Execution", "Plan", "SQLService"),
        "snapshot": ("diff", "fingerprint", "snapshot"),
        "values": ("json_lines",),
    },
)
