"""The statements that cost a database the most, from the pg_stat_statements extension.

Reads this database's rows of ``pg_stat_statements`` (PostgreSQL 13+ column names), ordered by a fixed choice of
column, with query texts cut to a length and the whole answer to a byte budget. When the extension is missing, or
present but not preloaded, the answer says how to enable it instead of failing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from ..errors import DatabaseError
from ..redaction import redact
from ..sql.places import Place

__all__ = ["ORDER_BY", "OrderBy", "SlowQueries", "SlowQuery", "slow_queries"]

OrderBy = Literal["total_time", "mean_time", "calls", "rows", "shared_blks_read"]
ORDER_BY: dict[str, str] = {
    "total_time": "total_exec_time",
    "mean_time": "mean_exec_time",
    "calls": "calls",
    "rows": "rows",
    "shared_blks_read": "shared_blks_read",
}
"""The caller's choice → the column it sorts by (the only text interpolated into the query)."""

_QUERY_CHARS = 2_000
_HIDDEN = "<insufficient privilege>"

_STATUS = """
SELECT (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e
        JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements') AS schema,
       EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'pg_stat_statements') AS available,
       pg_catalog.current_setting('server_version_num')::int AS version,
       (SELECT pg_catalog.to_regclass(pg_catalog.quote_ident(n.nspname) || '.pg_stat_statements_info') IS NOT NULL
        FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_stat_statements') AS has_info
"""

_LIST = """
SELECT s.queryid::text AS queryid, left(s.query, $2) AS query, length(s.query) AS length, s.calls,
       s.total_exec_time AS total_ms, s.mean_exec_time AS mean_ms, s.rows,
       s.shared_blks_hit, s.shared_blks_read
FROM {schema}.pg_stat_statements s
WHERE s.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
ORDER BY s.{order} DESC NULLS LAST, s.queryid
LIMIT $1
"""

_SINCE = "SELECT stats_reset FROM {schema}.pg_stat_statements_info"

_ENABLE = (
    "pg_stat_statements is not enabled in this database: run CREATE EXTENSION pg_stat_statements (as a migration; "
    "on Neon it is available and preloaded)"
)
_NOT_AVAILABLE = (
    "pg_stat_statements is not installed on this PostgreSQL server: it ships with PostgreSQL's contrib modules; add "
    "it to shared_preload_libraries, restart, then CREATE EXTENSION pg_stat_statements (on Neon it is available)"
)
_NOT_LOADED = (
    "pg_stat_statements is created in this database but not loaded: add it to shared_preload_libraries and restart "
    "the server (on Neon it is preloaded)"
)
NEON_RESETS = (
    "On Neon these statistics are lost when the compute suspends or restarts (scale to zero): they cover the time "
    "since the compute last started."
)


class SlowQuery(BaseModel):
    queryid: str | None = None
    query: str = Field(description="normalised text, constants replaced by $n; untrusted")
    query_truncated: bool = False
    calls: int
    total_ms: float
    mean_ms: float
    rows: int
    shared_blks_hit: int
    shared_blks_read: int


class SlowQueries(BaseModel):
    available: bool = Field(description="pg_stat_statements could be read")
    message: str | None = Field(default=None, description="why not, and how to enable it")
    order_by: str
    queries: Annotated[
        list[SlowQuery],
        # Declared without a per-item schema: validating every item costs a client more than it tells it.
        WithJsonSchema(
            {
                "type": "array",
                "description": "{queryid, query (untrusted), query_truncated, calls, total_ms, mean_ms, rows, "
                "shared_blks_hit, shared_blks_read}",
            }
        ),
    ] = Field(default_factory=list)
    truncated: bool = Field(default=False, description="the byte cap cut the list short")
    stats_since: str | None = Field(default=None, description="when the statistics were last reset")
    notes: list[str] = Field(default_factory=list)


async def slow_queries(place: Place, *, limit: int, order_by: OrderBy, max_bytes: int) -> SlowQueries:
    """The top ``limit`` statements of ``place``'s database by ``order_by``, within ``max_bytes`` of query text."""
    column = ORDER_BY[order_by]
    notes = [NEON_RESETS] if place.target is not None else []
    (status,) = (await place.databases.read_catalog(place.database, [(_STATUS, ())]))[0]
    schema = status["schema"]
    if schema is None:
        message = _ENABLE if status["available"] else _NOT_AVAILABLE
        return SlowQueries(available=False, message=message, order_by=order_by, notes=notes)
    if int(status["version"]) < 130000:
        return SlowQueries(
            available=False,
            message="list_slow_queries needs PostgreSQL 13 or later (pg_stat_statements' exec-time columns)",
            order_by=order_by,
            notes=notes,
        )
    # Only the schema PostgreSQL quoted and a column from ORDER_BY are interpolated; values are parameters.
    queries: list[tuple[str, tuple[int, ...]]] = [(_LIST.format(schema=schema, order=column), (limit, _QUERY_CHARS))]
    if status["has_info"]:
        queries.append((_SINCE.format(schema=schema), ()))
    try:
        results = await place.databases.read_catalog(place.database, queries)
    except DatabaseError as exc:
        if exc.sqlstate == "55000":  # object_not_in_prerequisite_state: not in shared_preload_libraries
            return SlowQueries(available=False, message=_NOT_LOADED, order_by=order_by, notes=notes)
        raise
    found: list[SlowQuery] = []
    used, truncated = 0, False
    for row in results[0]:
        cut = str(row["query"] or "")
        text = redact(cut)  # another session's ALTER ROLE … PASSWORD '…' is recorded as it was written
        used += len(text.encode()) + 100
        if used > max_bytes and found:
            truncated = True
            break
        found.append(
            SlowQuery(
                queryid=row["queryid"],
                query=text,
                query_truncated=int(row["length"] or 0) > len(cut),
                calls=int(row["calls"]),
                total_ms=round(float(row["total_ms"]), 3),
                mean_ms=round(float(row["mean_ms"]), 3),
                rows=int(row["rows"]),
                shared_blks_hit=int(row["shared_blks_hit"]),
                shared_blks_read=int(row["shared_blks_read"]),
            )
        )
    if any(q.query == _HIDDEN for q in found):
        notes.append("some query texts are hidden from this role: grant it pg_read_all_stats to see them")
    since = results[1][0]["stats_reset"] if len(results) > 1 and results[1] else None
    return SlowQueries(
        available=True,
        order_by=order_by,
        queries=found,
        truncated=truncated,
        stats_since=since.isoformat(timespec="seconds") if since is not None else None,
        notes=notes,
    )
