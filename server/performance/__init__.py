"""Query performance: explain, index suggestions, slow queries, health.

- ``service``: ``Performance`` behind explain_query, suggest_indexes, list_slow_queries and health_check.
- ``explain``: EXPLAIN wrapping and generic plans; ``plan_summary``: plans summarised for a model;
  ``index_advisor``: index candidates from pglast; ``hypothetical``: hypopg sessions and the greedy evaluation;
  ``slow_queries``: pg_stat_statements; ``health``: the health findings; ``models``: what the tools return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import lazy_exports

if TYPE_CHECKING:
    from .health import Finding
    from .models import Explanation, HealthCheck, IndexAdvice, IndexSuggestion, SlowQueryList
    from .plan_summary import PlanSummary
    from .service import Performance
    from .slow_queries import OrderBy

__all__ = [
    "Explanation",
    "Finding",
    "HealthCheck",
    "IndexAdvice",
    "IndexSuggestion",
    "OrderBy",
    "Performance",
    "PlanSummary",
    "SlowQueryList",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "health": ("Finding",),
        "models": ("Explanation", "HealthCheck", "IndexAdvice", "IndexSuggestion", "SlowQueryList"),
        "plan_summary": ("PlanSummary",),
        "service": ("Performance",),
        "slow_queries": ("OrderBy",),
    },
)
