"""A database's health from its catalogs and statistics views: findings, each with a severity and an action.

``check`` runs a fixed set of catalog queries (one round trip each, in one guarded read-only transaction, whatever the
number of tables; each returns only what crosses a threshold) and ``report`` turns their rows into findings:

    cache_hit_ratio      shared buffer hits against reads, for this database
    connections          client connections against max_connections (and by state)
    long_running_query   statements active for a while
    idle_in_transaction  sessions holding a transaction open while doing nothing
    blocking_lock        a session waiting for a lock another session holds (who blocks whom)
    invalid_index        indexes a failed CREATE INDEX CONCURRENTLY left behind
    duplicate_index      indexes identical to another on the same table
    unused_index         sizeable indexes never scanned since statistics were reset
    table_bloat          tables much larger than their rows need (estimate)
    index_bloat          B-tree indexes much larger than their entries need (estimate)
    dead_tuples          many dead rows, with the last (auto)vacuum
    stale_statistics     tables never analysed, or much changed since
    wraparound           transaction-id age of the database against the 2^31 horizon
    sequence_exhaustion  sequences (or the integer column they feed) close to their maximum

Thresholds are module constants. The interpretation is pure (rows in, findings out), so it is tested on tables of rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from ..redaction import redact
from ..sql.places import Place
from ..sql.quoting import qualified

__all__ = ["CHECKS", "Finding", "HealthReport", "check", "estimate_bloat", "report", "sequence_used"]

Severity = Literal["info", "warning", "critical"]
_RANK = {"critical": 0, "warning": 1, "info": 2}

CHECKS = (
    "cache_hit_ratio",
    "connections",
    "long_running_query",
    "idle_in_transaction",
    "blocking_lock",
    "invalid_index",
    "duplicate_index",
    "unused_index",
    "table_bloat",
    "index_bloat",
    "dead_tuples",
    "stale_statistics",
    "wraparound",
    "sequence_exhaustion",
)

SESSION_SECONDS = 5.0
"""Active statements and idle open transactions older than this are reported; lock waits older than 1 s."""
_LOCK_WAIT_SECONDS = 1.0
_SESSION_CRITICAL_SECONDS = 300.0
_CACHE_MIN_READS = 10_000
"""Blocks read from outside shared buffers before a low hit ratio means anything (a new database reads its catalogs)."""
_CACHE_WARNING = 0.95
_CONNECTIONS_WARNING, _CONNECTIONS_CRITICAL = 0.80, 0.95
_UNUSED_INDEX_BYTES = 1 << 20
_BLOAT_MIN_BYTES = 1 << 20
_BLOAT_RATIO = 0.5
_BLOAT_WARNING_BYTES = 100 << 20
_DEAD_MIN, _DEAD_RATIO = 10_000, 0.2
_STALE_MIN = 10_000
_STALE_RATIO = 0.2
_WRAPAROUND = 2**31
_WRAPAROUND_CRITICAL = 1_500_000_000
_SEQUENCE_WARNING, _SEQUENCE_CRITICAL = 0.75, 0.90
_INTEGER_MAX = {"smallint": 32_767, "integer": 2_147_483_647, "bigint": 9_223_372_036_854_775_807}
_LISTED = 10
"""Most findings of one kind listed one by one; the rest are counted."""
_QUERY_CHARS = 200


class Finding(BaseModel):
    check: str = Field(description="which check found it (see CHECKS)")
    severity: Severity
    object: str | None = Field(default=None, description="the table, index, sequence or session it is about")
    detail: str
    action: str = Field(description="what to do about it")


class HealthReport(BaseModel):
    healthy: bool = Field(description="no warning or critical finding")
    findings: Annotated[
        list[Finding],
        # Declared without a per-item schema: validating every item costs a client more than it tells it.
        WithJsonSchema({"type": "array", "description": "critical first: {check, severity, object, detail, action}"}),
    ] = Field(default_factory=list)
    cache_hit_ratio: float | None = None
    connections: int = 0
    max_connections: int = 0
    connections_by_state: dict[str, int] = Field(default_factory=dict)
    xid_age: int = 0
    checks: list[str] = Field(default_factory=lambda: list(CHECKS))


# --- the queries -----------------------------------------------------------------------------------------------

_USER_SCHEMA = (
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema') AND {n}.nspname NOT LIKE 'pg\\_toast%' "
    "AND {n}.nspname NOT LIKE 'pg\\_temp\\_%'"
)

_OVERVIEW = """
SELECT pg_catalog.current_setting('max_connections')::int AS max_connections,
       pg_catalog.current_setting('autovacuum_freeze_max_age')::bigint AS freeze_max_age,
       pg_catalog.current_setting('block_size')::int AS block_size,
       s.blks_hit, s.blks_read, pg_catalog.age(d.datfrozenxid) AS xid_age
FROM pg_catalog.pg_database d LEFT JOIN pg_catalog.pg_stat_database s ON s.datid = d.oid
WHERE d.datname = pg_catalog.current_database()
"""

_CONNECTIONS = """
SELECT coalesce(state, 'unknown') AS state, count(*) AS n
FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC, 1
"""

_SESSIONS = """
SELECT pid, usename AS "user", application_name AS application, state,
       extract(epoch FROM now() - query_start)::float8 AS query_seconds,
       extract(epoch FROM now() - state_change)::float8 AS state_seconds,
       left(query, $2) AS query
FROM pg_catalog.pg_stat_activity
WHERE datname = pg_catalog.current_database() AND pid <> pg_catalog.pg_backend_pid()
  AND backend_type = 'client backend'
  AND ((state = 'active' AND query_start < now() - make_interval(secs => $1))
       OR (state LIKE 'idle in transaction%' AND state_change < now() - make_interval(secs => $1)))
ORDER BY coalesce(xact_start, query_start)
"""

_BLOCKING = """
SELECT w.pid AS waiting_pid, extract(epoch FROM now() - w.state_change)::float8 AS waiting_seconds,
       left(w.query, $2) AS waiting_query, b.pid AS blocking_pid, b.state AS blocking_state,
       b.usename AS blocking_user, extract(epoch FROM now() - b.xact_start)::float8 AS blocking_seconds,
       left(b.query, $2) AS blocking_query
FROM pg_catalog.pg_stat_activity w
CROSS JOIN LATERAL unnest(pg_catalog.pg_blocking_pids(w.pid)) AS bp(pid)
JOIN pg_catalog.pg_stat_activity b ON b.pid = bp.pid
WHERE w.datname = pg_catalog.current_database() AND w.wait_event_type = 'Lock'
  AND w.state_change < now() - make_interval(secs => $1)
ORDER BY w.state_change, b.pid
"""

_INVALID_INDEXES = f"""
SELECT n.nspname AS schema, t.relname AS "table", c.relname AS index, pg_catalog.pg_relation_size(c.oid) AS bytes
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE NOT i.indisvalid AND {_USER_SCHEMA.format(n="n")}
ORDER BY 1, 2, 3
"""  # noqa: S608 - only the constant fragment above is interpolated

_DUPLICATE_INDEXES = f"""
WITH alike AS (  -- cheap first: indexes sharing their table, width and first column with another
  SELECT i.* FROM pg_catalog.pg_index i
  WHERE i.indisvalid AND EXISTS (
    SELECT 1 FROM pg_catalog.pg_index j
    WHERE j.indrelid = i.indrelid AND j.indexrelid <> i.indexrelid AND j.indisvalid
      AND j.indnatts = i.indnatts AND j.indkey[0] = i.indkey[0])
), groups AS (
  SELECT i.indrelid, array_agg(i.indexrelid ORDER BY i.indisprimary DESC, i.indisunique DESC, c.relname) AS ids
  FROM alike i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
  GROUP BY i.indrelid, c.relam, i.indkey::text, i.indclass::text, i.indcollation::text,
           coalesce(pg_catalog.pg_get_expr(i.indexprs, i.indrelid), ''),
           coalesce(pg_catalog.pg_get_expr(i.indpred, i.indrelid), '')
  HAVING count(*) > 1
)
SELECT n.nspname AS schema, t.relname AS "table",
       ARRAY(SELECT c.relname::text FROM unnest(g.ids) WITH ORDINALITY AS u(id, o)
             JOIN pg_catalog.pg_class c ON c.oid = u.id ORDER BY u.o) AS indexes,
       ARRAY(SELECT pg_catalog.pg_relation_size(u.id) FROM unnest(g.ids) WITH ORDINALITY AS u(id, o) ORDER BY u.o)
         AS bytes,
       pg_catalog.pg_get_indexdef(g.ids[1]) AS definition
FROM groups g JOIN pg_catalog.pg_class t ON t.oid = g.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE {_USER_SCHEMA.format(n="n")}
ORDER BY 1, 2
"""  # noqa: S608 - only the constant fragment above is interpolated
"""Groups of identical indexes, found on the keys alone; sizes and definitions only for the groups."""

_UNUSED_INDEXES = f"""
SELECT s.schemaname AS schema, s.relname AS "table", s.indexrelname AS index,
       pg_catalog.pg_relation_size(s.indexrelid) AS bytes
FROM pg_catalog.pg_stat_user_indexes s JOIN pg_catalog.pg_index i ON i.indexrelid = s.indexrelid
JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary AND i.indisvalid
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = s.indexrelid)
  AND pg_catalog.pg_relation_size(s.indexrelid) >= $1 AND {_USER_SCHEMA.format(n="n")}
ORDER BY 4 DESC
"""  # noqa: S608 - only the constant fragment above is interpolated

_TABLES = f"""
SELECT n.nspname AS schema, c.relname AS "table", c.reltuples::float8 AS rows, c.relpages::bigint AS pages,
       coalesce((SELECT substr(o, 12)::int FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 100)
         AS fillfactor,
       (SELECT sum(s.avg_width) FROM pg_catalog.pg_stats s
        WHERE s.schemaname = n.nspname AND s.tablename = c.relname AND NOT s.inherited)::float8 AS width,
       st.n_live_tup AS live, st.n_dead_tup AS dead, st.n_mod_since_analyze AS modified,
       to_char(greatest(st.last_vacuum, st.last_autovacuum) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
         AS vacuumed,
       to_char(greatest(st.last_analyze, st.last_autoanalyze) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
         AS analyzed,
       pg_catalog.age(c.relfrozenxid) AS xid_age
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_stat_user_tables st ON st.relid = c.oid
WHERE c.relkind IN ('r', 'm') AND {_USER_SCHEMA.format(n="n")}
  AND (c.relpages >= $1 OR st.n_dead_tup >= $2 OR st.n_mod_since_analyze >= $2 OR st.n_live_tup >= $2)
ORDER BY c.relpages DESC
"""  # noqa: S608 - only the constant fragment above is interpolated

_INDEXES = f"""
SELECT n.nspname AS schema, t.relname AS "table", c.relname AS index, c.reltuples::float8 AS rows,
       c.relpages::bigint AS pages,
       coalesce((SELECT substr(o, 12)::int FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%'), 90)
         AS fillfactor,
       (SELECT sum(s.avg_width) FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_stats s
          ON s.schemaname = n.nspname AND s.tablename = t.relname AND s.attname = a.attname AND NOT s.inherited
        WHERE a.attrelid = t.oid AND a.attnum = ANY (i.indkey))::float8 AS width
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE am.amname = 'btree' AND i.indisvalid AND i.indexprs IS NULL AND c.relpages >= $1 AND {_USER_SCHEMA.format(n="n")}
ORDER BY c.relpages DESC
"""  # noqa: S608 - only the constant fragment above is interpolated

_SEQUENCES = """
SELECT s.schemaname AS schema, s.sequencename AS sequence, s.last_value, s.min_value, s.max_value,
       s.increment_by AS increment, s.cycle, pg_catalog.format_type(a.atttypid, NULL) AS column_type,
       tn.nspname || '.' || t.relname || '.' || a.attname AS "column"
FROM pg_catalog.pg_sequences s
JOIN pg_catalog.pg_namespace sn ON sn.nspname = s.schemaname
JOIN pg_catalog.pg_class sc ON sc.relnamespace = sn.oid AND sc.relname = s.sequencename
LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = sc.oid
  AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
LEFT JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
WHERE s.last_value IS NOT NULL
"""

_OLDEST_TABLE = """
SELECT n.nspname AS schema, c.relname AS "table", pg_catalog.age(c.relfrozenxid) AS xid_age
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 't') AND c.relfrozenxid <> '0'::xid
ORDER BY 3 DESC LIMIT 1
"""


def queries() -> list[tuple[str, Sequence[Any]]]:
    """The catalog queries of one check, in the order ``report`` takes their rows."""
    return [
        (_OVERVIEW, ()),
        (_CONNECTIONS, ()),
        (_SESSIONS, (SESSION_SECONDS, _QUERY_CHARS)),
        (_BLOCKING, (_LOCK_WAIT_SECONDS, _QUERY_CHARS)),
        (_INVALID_INDEXES, ()),
        (_DUPLICATE_INDEXES, ()),
        (_UNUSED_INDEXES, (_UNUSED_INDEX_BYTES,)),
        (_TABLES, (_BLOAT_MIN_BYTES // 8192, _DEAD_MIN)),
        (_INDEXES, (_BLOAT_MIN_BYTES // 8192,)),
        (_SEQUENCES, ()),
        (_OLDEST_TABLE, ()),
    ]


_CAP_ROWS, _CAP_BYTES = 1_000_000, 50_000_000
"""The queries return only what crosses a threshold; the caps are there so that nothing is cut in practice."""


async def check(place: Place) -> HealthReport:
    """Run the checks on ``place``, in one guarded read-only transaction.

    Through the executor rather than ``read_catalog``: its statements stay prepared on the connection, so a repeated
    check does not plan eleven catalog queries again (about 1 ms each). Every value the queries return is JSON-safe
    as is (integers, floats, text, arrays; times formatted in SQL).
    """
    from ..sql.database import Caps, Statement  # here, not at import: registering the tools must not load asyncpg

    statements = [Statement(sql, tuple(args)) for sql, args in queries()]
    caps = Caps(max_rows=_CAP_ROWS, max_bytes=_CAP_BYTES)
    outcomes = await place.databases.run(statements, read_only=True, caps=caps, database=place.database)
    results = [[dict(zip([c.name for c in o.columns], row, strict=True)) for row in o.rows] for o in outcomes]
    return report(*results)


# --- pure interpretation ---------------------------------------------------------------------------------------

Row = Mapping[str, Any]


def _size(num: float) -> str:
    value = float(num)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _one_line(statement: str | None) -> str:
    """A statement another session ran, on one line, its password literals redacted."""
    return " ".join(redact(statement or "").split())


def estimate_bloat(
    *, rows: float, pages: int, width: float | None, fillfactor: int, block_size: int, index: bool
) -> tuple[int, float] | None:
    """Estimated wasted bytes and their share of the relation, or None when there is nothing to go on.

    A heap tuple takes a 24-byte header plus its columns' average width (from pg_stats), 8-aligned, plus a 4-byte
    line pointer; a B-tree entry an 8-byte header plus its key columns' width. Pages keep a 24-byte header (B-tree
    pages 16 more) and fill up to ``fillfactor`` percent. The estimate ignores NULL bitmaps, TOAST and alignment
    padding between columns: a coarse signal, not an exact measure.
    """
    if width is None or rows < 0 or pages <= 0:
        return None
    header, page_overhead = (8, 24 + 16) if index else (24, 24)
    entry = header + 8 * math.ceil(width / 8) + 4
    per_page = max(1, math.floor((block_size - page_overhead) * fillfactor / 100 / entry))
    expected = math.ceil(rows / per_page) + (1 if index else 0)
    wasted = max(0, pages - expected)
    return wasted * block_size, wasted / pages


def sequence_used(row: Row) -> tuple[float, int] | None:
    """How much of its range a sequence has used (0–1) and the effective maximum (the smaller of the sequence's and
    its integer column's), or None for a cycling sequence."""
    if row["cycle"]:
        return None
    low, high, last = int(row["min_value"]), int(row["max_value"]), int(row["last_value"])
    limit = _INTEGER_MAX.get(str(row.get("column_type") or ""))
    if int(row["increment"]) > 0:
        high = min(high, limit) if limit is not None else high
        return ((last - low) / (high - low) if high > low else 1.0), high
    low = max(low, -limit - 1) if limit is not None else low
    return ((high - last) / (high - low) if high > low else 1.0), low


def _limited(found: list[Finding], check: str, what: str) -> list[Finding]:
    if len(found) <= _LISTED:
        return found
    rest = len(found) - _LISTED
    return [*found[:_LISTED], Finding(check=check, severity="info", detail=f"and {rest} more {what}", action="")]


def _sessions(rows: Sequence[Row]) -> list[Finding]:
    out: list[Finding] = []
    for row in rows:
        idle = str(row["state"]).startswith("idle in transaction")
        seconds = float(row["state_seconds"] if idle else row["query_seconds"])
        who = f"pid {row['pid']} ({row['user']}" + (f", {row['application']})" if row["application"] else ")")
        if idle:
            out.append(
                Finding(
                    check="idle_in_transaction",
                    severity="critical" if seconds >= _SESSION_CRITICAL_SECONDS else "warning",
                    object=who,
                    detail=f"{row['state']} for {_duration(seconds)}; last statement: {_one_line(row['query'])}",
                    action="it holds locks and keeps vacuum from removing dead rows: end the transaction in the "
                    "application (or pg_terminate_backend as an operator); set idle_in_transaction_session_timeout",
                )
            )
        else:
            out.append(
                Finding(
                    check="long_running_query",
                    severity="warning" if seconds >= 60 else "info",
                    object=who,
                    detail=f"active for {_duration(seconds)}: {_one_line(row['query'])}",
                    action="explain_query it; cancel it (pg_cancel_backend, as an operator) if it is stuck, "
                    "and set a statement_timeout for its role",
                )
            )
    return out


def _blocking(rows: Sequence[Row]) -> list[Finding]:
    out: list[Finding] = []
    for row in rows:
        seconds = float(row["waiting_seconds"])
        blocker_age = row["blocking_seconds"]
        holder = f"pid {row['blocking_pid']} ({row['blocking_user']}, {row['blocking_state']}"
        holder += f", transaction open {_duration(float(blocker_age))})" if blocker_age is not None else ")"
        out.append(
            Finding(
                check="blocking_lock",
                severity="critical" if seconds >= 60 else "warning",
                object=f"pid {row['waiting_pid']} blocked by pid {row['blocking_pid']}",
                detail=f"pid {row['waiting_pid']} has waited {_duration(seconds)} for a lock "
                f"({_one_line(row['waiting_query'])}); {holder} holds it, last statement: "
                f"{_one_line(row['blocking_query'])}",
                action="finish or roll back the blocking transaction; keep transactions that take locks short, "
                "and set lock_timeout so waiters give up",
            )
        )
    return out


def _indexes(invalid: Sequence[Row], duplicate: Sequence[Row], unused: Sequence[Row]) -> list[Finding]:
    out: list[Finding] = []
    for r in invalid:
        index = qualified(r["schema"], r["index"])
        out.append(
            Finding(
                check="invalid_index",
                severity="warning",
                object=index,
                detail=f"index {index} on {r['table']} is invalid ({_size(r['bytes'])}): a CREATE INDEX CONCURRENTLY "
                "or REINDEX failed; it is kept up to date on writes but never used",
                action=f"unless it is being built right now: DROP INDEX CONCURRENTLY {index}; then create it again "
                "(or REINDEX INDEX CONCURRENTLY), as a migration",
            )
        )
    for r in duplicate:
        keep, *extra = r["indexes"]
        wasted = sum(r["bytes"][1:])
        table = qualified(r["schema"], r["table"])
        out.append(
            Finding(
                check="duplicate_index",
                severity="warning",
                object=", ".join(qualified(r["schema"], name) for name in extra),
                detail=f"{', '.join(extra)} duplicate{'s' if len(extra) == 1 else ''} {keep} on "
                f"{table} ({r['definition']}); {_size(wasted)} kept up to date for nothing",
                action="drop the duplicate(s) with DROP INDEX CONCURRENTLY, as a migration; keep "
                + qualified(r["schema"], keep),
            )
        )
    out += _limited(
        [
            Finding(
                check="unused_index",
                severity="info",
                object=qualified(r["schema"], r["index"]),
                detail=f"{qualified(r['schema'], r['index'])} on {r['table']} ({_size(r['bytes'])}) has not been "
                "scanned since statistics were last reset",
                action="if it is not needed by rare queries (reports, month-end jobs), drop it with DROP INDEX "
                "CONCURRENTLY as a migration; it slows every write",
            )
            for r in unused
        ],
        "unused_index",
        "unused indexes",
    )
    return out


def _tables(rows: Sequence[Row], block_size: int) -> list[Finding]:
    bloated, dead, stale = [], [], []
    for r in rows:
        name = qualified(r["schema"], r["table"])
        estimate = estimate_bloat(
            rows=float(r["rows"]),
            pages=int(r["pages"]),
            width=r["width"],
            fillfactor=int(r["fillfactor"]),
            block_size=block_size,
            index=False,
        )
        if estimate is not None and estimate[0] >= _BLOAT_MIN_BYTES and estimate[1] >= _BLOAT_RATIO:
            bloated.append(
                Finding(
                    check="table_bloat",
                    severity="warning" if estimate[0] >= _BLOAT_WARNING_BYTES else "info",
                    object=name,
                    detail=f"{name} takes {_size(int(r['pages']) * block_size)} for ≈{float(r['rows']):,.0f} rows; "
                    f"about {_size(estimate[0])} ({estimate[1]:.0%}) is free space (estimate)",
                    action="VACUUM keeps the space for new rows; to give it back, VACUUM FULL (locks the table) or "
                    "pg_repack, in a maintenance window",
                )
            )
        live, dead_rows = int(r["live"] or 0), int(r["dead"] or 0)
        if dead_rows >= _DEAD_MIN and dead_rows > _DEAD_RATIO * max(live, 1):
            vacuumed = r["vacuumed"]
            when = f"last vacuumed {vacuumed}" if vacuumed else "never vacuumed"
            dead.append(
                Finding(
                    check="dead_tuples",
                    severity="warning",
                    object=name,
                    detail=f"{name} has {dead_rows:,} dead rows against {live:,} live; {when}",
                    action=f"VACUUM (ANALYZE) {name}; if autovacuum does not keep up, lower its "
                    "autovacuum_vacuum_scale_factor, and look for long transactions that hold back cleanup",
                )
            )
        modified, analyzed = int(r["modified"] or 0), r["analyzed"]
        if (analyzed is None and live >= _STALE_MIN) or (
            modified >= _STALE_MIN and modified > _STALE_RATIO * max(live, 1)
        ):
            when = f"last analysed {analyzed}" if analyzed else "never analysed"
            stale.append(
                Finding(
                    check="stale_statistics",
                    severity="info" if analyzed else "warning",
                    object=name,
                    detail=f"{name}: {when}, {modified:,} rows changed since; the planner's estimates may be off",
                    action=f"ANALYZE {name}",
                )
            )
    return (
        _limited(bloated, "table_bloat", "bloated tables")
        + _limited(dead, "dead_tuples", "tables with dead rows")
        + _limited(stale, "stale_statistics", "tables with stale statistics")
    )


def _index_bloat(rows: Sequence[Row], block_size: int) -> list[Finding]:
    found = []
    for r in rows:
        estimate = estimate_bloat(
            rows=float(r["rows"]),
            pages=int(r["pages"]),
            width=r["width"],
            fillfactor=int(r["fillfactor"]),
            block_size=block_size,
            index=True,
        )
        if estimate is None or estimate[0] < _BLOAT_MIN_BYTES or estimate[1] < _BLOAT_RATIO:
            continue
        name = qualified(r["schema"], r["index"])
        found.append(
            Finding(
                check="index_bloat",
                severity="warning" if estimate[0] >= _BLOAT_WARNING_BYTES else "info",
                object=name,
                detail=f"{name} on {r['table']} takes {_size(int(r['pages']) * block_size)}; about "
                f"{_size(estimate[0])} ({estimate[1]:.0%}) is empty space (estimate)",
                action=f"REINDEX INDEX CONCURRENTLY {name}",
            )
        )
    return _limited(found, "index_bloat", "bloated indexes")


def _wraparound(age: int, freeze_max_age: int, oldest: Sequence[Row]) -> list[Finding]:
    if age < freeze_max_age and age < _WRAPAROUND_CRITICAL:
        return []
    table = (
        f" (oldest: {qualified(oldest[0]['schema'], oldest[0]['table'])}, age {int(oldest[0]['xid_age']):,})"
        if oldest
        else ""
    )
    left = _WRAPAROUND - age
    return [
        Finding(
            check="wraparound",
            severity="critical" if age >= _WRAPAROUND_CRITICAL else "warning",
            object=None,
            detail=f"the database's transaction-id age is {age:,}{table}: "
            + (f"over autovacuum_freeze_max_age ({freeze_max_age:,}), " if age >= freeze_max_age else "")
            + f"{left:,} transactions from wraparound, where PostgreSQL stops taking writes",
            action="VACUUM (FREEZE) the oldest tables now; find what holds back the xmin horizon (long or "
            "idle transactions, prepared transactions, replication slots) and end it",
        )
    ]


def _sequences(rows: Sequence[Row]) -> list[Finding]:
    found = []
    for r in rows:
        used = sequence_used(r)
        if used is None or used[0] < _SEQUENCE_WARNING:
            continue
        share, limit = used
        name = qualified(r["schema"], r["sequence"])
        feeds = f", feeding {r['column']} ({r['column_type']})" if r.get("column") else ""
        found.append(
            Finding(
                check="sequence_exhaustion",
                severity="critical" if share >= _SEQUENCE_CRITICAL else "warning",
                object=name,
                detail=f"{name} is at {int(r['last_value']):,}, {share:.1%} of its range (limit {limit:,}){feeds}",
                action="widen the column and the sequence to bigint (ALTER … TYPE bigint, ALTER SEQUENCE … AS bigint) "
                "as a migration, before inserts start failing",
            )
        )
    return found


def report(
    overview: Sequence[Row],
    connections: Sequence[Row],
    sessions: Sequence[Row],
    blocking: Sequence[Row],
    invalid: Sequence[Row],
    duplicate: Sequence[Row],
    unused: Sequence[Row],
    tables: Sequence[Row],
    indexes: Sequence[Row],
    sequences: Sequence[Row],
    oldest: Sequence[Row],
) -> HealthReport:
    """The findings in the rows of ``queries()``, critical first."""
    head = overview[0]
    block_size = int(head["block_size"])
    findings: list[Finding] = []
    hit, read = int(head["blks_hit"] or 0), int(head["blks_read"] or 0)
    ratio = hit / (hit + read) if hit + read else None
    if ratio is not None and read >= _CACHE_MIN_READS and ratio < _CACHE_WARNING:
        findings.append(
            Finding(
                check="cache_hit_ratio",
                severity="warning",
                detail=f"{ratio:.1%} of block reads were served from shared buffers ({read:,} blocks read from "
                "outside them)",
                action="the working set does not fit in memory: add an index for the scans that read most "
                "(list_slow_queries by shared_blks_read), or give the compute more memory",
            )
        )
    by_state = {str(r["state"]): int(r["n"]) for r in connections}
    total, most = sum(by_state.values()), int(head["max_connections"])
    if most and total / most >= _CONNECTIONS_WARNING:
        findings.append(
            Finding(
                check="connections",
                severity="critical" if total / most >= _CONNECTIONS_CRITICAL else "warning",
                detail=f"{total} of max_connections {most} are in use ("
                + ", ".join(f"{n} {state}" for state, n in by_state.items())
                + ")",
                action="use a connection pooler (on Neon, the pooled connection string); close idle sessions",
            )
        )
    findings += _sessions(sessions) + _blocking(blocking) + _indexes(invalid, duplicate, unused)
    findings += _tables(tables, block_size) + _index_bloat(indexes, block_size)
    age = int(head["xid_age"] or 0)
    findings += _wraparound(age, int(head["freeze_max_age"]), oldest) + _sequences(sequences)
    findings.sort(key=lambda f: _RANK[f.severity])
    return HealthReport(
        healthy=not any(f.severity != "info" for f in findings),
        findings=findings,
        cache_hit_ratio=None if ratio is None else round(ratio, 4),
        connections=total,
        max_connections=most,
        connections_by_state=by_state,
        xid_age=age,
    )
