"""What the query performance tools answer (pydantic only: registering the tools loads neither asyncpg nor pglast)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from .health import HealthReport
from .plan_summary import PlanSummary
from .slow_queries import SlowQueries

__all__ = [
    "CoveredCandidate",
    "Explanation",
    "HealthCheck",
    "HypotheticalComparison",
    "HypotheticalIndex",
    "IndexAdvice",
    "IndexSuggestion",
    "Ran",
    "SlowQueryList",
]

Ran = Literal["not-run", "read-only", "rolled-back", "scratch-branch"]


def _items(description: str) -> WithJsonSchema:
    """An array declared without a per-item schema: validating every item costs a client more than it tells it."""
    return WithJsonSchema({"type": "array", "description": description})


_SUGGESTION = "{table, columns, statement, reasons, queries, cost_before, cost_after, gain, size_bytes}"


class HypotheticalIndex(BaseModel):
    definition: str
    name: str | None = Field(default=None, description="hypopg's name for it, as it appears in the plan")
    size_bytes: int | None = Field(default=None, description="estimated size if it were built")
    used: bool = Field(default=False, description="the plan with the hypothetical indexes uses it")


class HypotheticalComparison(BaseModel):
    available: bool = Field(description="hypopg is installed in this database")
    message: str | None = Field(default=None, description="how to enable hypopg when it is not")
    indexes: Annotated[list[HypotheticalIndex], _items("{definition, name, size_bytes, used}")] = Field(
        default_factory=list
    )
    cost_without: float | None = None
    cost_with: float | None = None
    gain: float | None = Field(default=None, description="share of the cost the indexes would save, 0 to 1")
    plan_with: PlanSummary | None = None


class Explanation(BaseModel):
    """What explain_query returns."""

    database: str
    branch: str | None = None
    command: str = Field(description="SELECT, INSERT, UPDATE, DELETE, MERGE or CREATE TABLE AS")
    kind: str = Field(
        description="the SQL policy's category of what ran: read for a plan only; with ANALYZE, the statement's own "
        "(read, write, ddl or destructive)"
    )
    analyzed: bool
    ran: Ran = Field(
        description="not-run (plan only); read-only (ANALYZE of a read); rolled-back (ANALYZE of a write, undone); "
        "scratch-branch (ANALYZE of a write on a short-lived Neon branch, deleted afterwards)"
    )
    scratch_branch: str | None = None
    generic_plan: bool = Field(default=False, description="planned without values for $n (PostgreSQL's generic plan)")
    summary: PlanSummary
    hypothetical: HypotheticalComparison | None = None
    raw_plan: str | None = Field(default=None, description="the EXPLAIN JSON, on request, cut at the byte cap")
    raw_plan_truncated: bool = False
    notes: list[str] = Field(default_factory=list)


class IndexSuggestion(BaseModel):
    table: str
    columns: list[str]
    statement: str = Field(description="CREATE INDEX CONCURRENTLY …, to run as a migration")
    reasons: list[str]
    queries: list[int] = Field(description="1-based numbers of the queries it serves")
    cost_before: float | None = None
    cost_after: float | None = None
    gain: float | None = Field(
        default=None, description="share of the workload's cost without new indexes that it saves, 0 to 1 (hypopg)"
    )
    size_bytes: int | None = Field(default=None, description="estimated size (hypopg)")


class CoveredCandidate(BaseModel):
    table: str
    columns: list[str]
    covered_by: str
    definition: str


class IndexAdvice(BaseModel):
    """What suggest_indexes returns."""

    database: str
    branch: str | None = None
    queries: int
    evaluated: bool = Field(description="candidates were tried as hypothetical indexes (hypopg)")
    hypopg: str | None = Field(default=None, description="how to enable hypopg when it is missing")
    suggestions: Annotated[list[IndexSuggestion], _items(_SUGGESTION)] = Field(default_factory=list)
    not_chosen: Annotated[list[IndexSuggestion], _items(f"tried, but saving under 10%: {_SUGGESTION}")] = Field(
        default_factory=list
    )
    covered: Annotated[
        list[CoveredCandidate], _items("an existing index serves these: {table, columns, covered_by, definition}")
    ] = Field(default_factory=list)
    small_tables: list[str] = Field(default_factory=list, description="too small for an index to help")
    baseline_cost: float | None = None
    final_cost: float | None = None
    stopped: str | None = Field(default=None, description="why the evaluation stopped")
    notes: list[str] = Field(default_factory=list)


class SlowQueryList(SlowQueries):
    """What list_slow_queries returns."""

    database: str
    branch: str | None = None


class HealthCheck(HealthReport):
    """What health_check returns."""

    database: str
    branch: str | None = None
    role: str | None = Field(default=None, description="the database role the server connects as")
    role_powers: list[str] = Field(
        default_factory=list,
        description="its powers beyond SQL: superuser, pg_execute_server_program, pg_read_server_files, "
        "pg_write_server_files (empty: none)",
    )
    notes: list[str] = Field(default_factory=list)
