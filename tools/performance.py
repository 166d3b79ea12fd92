"""Query performance tools: explain_query, suggest_indexes, list_slow_queries, health_check.

Each calls one method of ``server.performance.Performance`` and renders its model as compact text; the model is the
structured content. Plans, query texts and object names come from the database (or quote it) and are fenced.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from server.mcp import Ctx, Offer, ToolSpec, add_tool, fence, services
from server.performance import (
    Explanation,
    Finding,
    HealthCheck,
    IndexAdvice,
    IndexSuggestion,
    OrderBy,
    PlanSummary,
    SlowQueryList,
)

from ._params import Branch, Database

__all__ = ["register"]

_RAN = {
    "not-run": "plan only (not run)",
    "read-only": "ran in a read-only transaction",
    "rolled-back": "ran in a transaction that was rolled back: nothing it changed was kept",
    "scratch-branch": "ran on scratch branch {branch}, deleted afterwards: the branch itself was not touched",
}


def _result(model: BaseModel, lines: list[str]) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(text="\n".join(lines))], structured_content=model.model_dump(mode="json")
    )


def _where(database: str, branch: str | None) -> str:
    return f"database {database!r}" + (f" on branch {branch}" if branch else "")


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:,.1f} ms"


def _rows(value: float) -> str:
    return f"{value:,.0f}"


def _size(num: int | None) -> str:
    if num is None:
        return "?"
    value = float(num)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" or value >= 10 else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _plan_lines(s: PlanSummary) -> list[str]:
    """The parts of a summary that quote the database (names, filters), for the fence."""
    lines = []
    if s.costliest_nodes:
        lines.append("costliest nodes (own " + ("time" if s.execution_ms is not None else "cost") + "):")
        for n in s.costliest_nodes:
            own = f"{_ms(n.self_ms)}" if n.self_ms is not None else f"cost {n.self_cost:,.1f}"
            rows = f"rows {_rows(n.rows_estimated)} est"
            if n.rows_actual is not None:
                rows += f" / {_rows(n.rows_actual)} actual" + (f" × {n.loops} loops" if (n.loops or 1) > 1 else "")
            lines.append(f"  {n.node} — {own} ({n.share:.0%}), {rows}")
    if s.seq_scans:
        lines.append("sequential scans on large tables:")
        for scan in s.seq_scans:
            size = f"≈{scan.table_rows:,} rows" if scan.table_rows is not None else "large"
            detail = f", filter {scan.filter}" if scan.filter else ""
            if scan.rows_removed_by_filter is not None:
                detail += f", {_rows(scan.rows_removed_by_filter)} rows read and thrown away"
            lines.append(f"  {scan.relation} ({size}){detail}")
    if s.estimate_misses:
        lines.append("row estimates off by more than 10×:")
        lines += [
            f"  {m.node}: {_rows(m.rows_estimated)} estimated, {_rows(m.rows_actual)} actual ({m.factor:,.0f}×)"
            for m in s.estimate_misses
        ]
    if s.spills:
        lines.append("spilled to disk:")
        lines += [f"  {sp.node}: {sp.detail}" for sp in s.spills]
    if s.triggers:
        lines.append("triggers: " + ", ".join(f"{t.name} {_ms(t.ms)} ({t.calls} calls)" for t in s.triggers))
    if s.settings:
        lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in s.settings.items()))
    return lines


def _hints(s: PlanSummary) -> list[str]:
    hints = []
    if s.seq_scans:
        hints.append("a sequential scan reads a large table: suggest_indexes with this query proposes an index")
    if s.estimate_misses:
        hints.append(
            "row estimates are far off: ANALYZE the tables involved (statistics may be stale), or CREATE STATISTICS "
            "for correlated columns"
        )
    if s.spills:
        hints.append("sorts or hashes spilled to disk: raise work_mem for this query, or sort and hash fewer rows")
    if s.jit is not None and s.jit.total_ms and s.execution_ms and s.jit.total_ms > 0.2 * s.execution_ms:
        hints.append("JIT took a large share of the time: for short queries consider jit = off")
    return hints


async def explain_query(
    sql: Annotated[
        str, Field(description="One SELECT, INSERT, UPDATE, DELETE, MERGE or CREATE TABLE AS (without EXPLAIN).")
    ],
    ctx: Ctx,
    branch: Branch = None,
    database: Database = None,
    analyze: Annotated[
        bool,
        Field(
            description="Run the statement for actual times and rows. A read runs read-only; a write never touches "
            "the branch: on Neon it runs on a short-lived branch, otherwise in a transaction that is rolled back."
        ),
    ] = False,
    params: Annotated[
        list[Any] | None,
        Field(description="Values for $1, $2 … (JSON values). Without them a $n statement gets its generic plan."),
    ] = None,
    hypothetical_indexes: Annotated[
        list[str] | None,
        Field(
            max_length=10,
            description="CREATE INDEX statements to try as hypothetical indexes (hypopg): the plan and cost with "
            "and without them. Not with analyze.",
        ),
    ] = None,
    raw_plan: Annotated[
        bool, Field(description="Also return PostgreSQL's EXPLAIN JSON (cut at the server's byte cap).")
    ] = False,
) -> Annotated[CallToolResult, Explanation]:
    """Explain why a query is slow: EXPLAIN (FORMAT JSON, VERBOSE, BUFFERS, SETTINGS), with ANALYZE on request.

    Answers with a summary: total cost and time, the costliest nodes, sequential scans of large tables, row
    estimates off by more than 10×, sorts and hashes that spilled to disk, buffer hits and reads, JIT. With
    hypothetical_indexes (hypopg) it compares the plan with and without them. The raw plan only on request.
    """
    e = await services(ctx).performance.explain(
        sql,
        branch=branch,
        database=database,
        analyze=analyze,
        params=params,
        hypothetical_indexes=hypothetical_indexes,
        raw_plan=raw_plan,
    )
    s = e.summary
    head = f"EXPLAIN{' ANALYZE' if e.analyzed else ''} of {e.command} ({e.kind}) on {_where(e.database, e.branch)}"
    head += " · " + _RAN[e.ran].format(branch=e.scratch_branch)
    figures = [f"cost {s.total_cost:,.1f}"]
    if s.planning_ms is not None:
        figures.append(f"planning {_ms(s.planning_ms)}")
    if s.execution_ms is not None:
        figures.append(f"execution {_ms(s.execution_ms)}")
    rows = f"rows {_rows(s.rows_estimated)} estimated"
    figures.append(rows + (f", {_rows(s.rows_actual)} actual" if s.rows_actual is not None else ""))
    lines = [head, " · ".join(figures)]
    if e.generic_plan:
        lines.append("generic plan: $n placeholders planned without values (pass params for a specific plan)")
    if s.buffers is not None:
        b = s.buffers
        ratio = f" ({b.hit_ratio:.0%} from cache)" if b.hit_ratio is not None else ""
        lines.append(
            f"buffers: {b.shared_hit:,} hit, {b.shared_read:,} read{ratio}, {b.shared_dirtied:,} dirtied; "
            f"temp {b.temp_read:,} read / {b.temp_written:,} written"
        )
    if s.jit is not None:
        lines.append(f"JIT: {s.jit.functions} functions" + (f", {_ms(s.jit.total_ms)}" if s.jit.total_ms else ""))
    body = _plan_lines(s)
    if body:
        lines.append(fence("\n".join(body)))
    lines += [f"hint: {h}" for h in _hints(s)]
    h = e.hypothetical
    if h is not None and not h.available:
        lines.append(f"hypothetical indexes: {h.message}")
    elif h is not None and h.cost_with is not None and h.cost_without is not None:
        change = f" ({-h.gain:+.0%})" if h.gain is not None else ""
        lines.append(f"with the hypothetical indexes: cost {h.cost_without:,.1f} → {h.cost_with:,.1f}{change}")
        listed = [
            f"{'used' if i.used else 'not used'}: {i.definition} (≈{_size(i.size_bytes)}, {i.name})" for i in h.indexes
        ]
        if h.plan_with is not None:
            listed += ["plan with them:", *_plan_lines(h.plan_with)]
        lines.append(fence("\n".join(listed)))
    lines += [f"note: {n}" for n in e.notes]
    if e.raw_plan is not None:
        lines.append("raw plan" + (" (cut at the byte cap)" if e.raw_plan_truncated else "") + ":")
        lines.append(fence(e.raw_plan))
    return _result(e, lines)


def _suggestion_line(number: int, s: IndexSuggestion) -> str:
    """The statement, then everything else as an SQL comment, so that the line can be copied as it is."""
    notes = []
    if s.gain is not None and s.cost_before is not None and s.cost_after is not None:
        notes.append(f"saves {s.gain:.0%} (cost {s.cost_before:,.1f} → {s.cost_after:,.1f}), ≈{_size(s.size_bytes)}")
    elif s.gain is not None:
        notes.append(f"saves {s.gain:.0%}")
    notes.append(f"{'; '.join(s.reasons)} (queries {', '.join(map(str, s.queries))})")
    return f"{number}. {s.statement};  -- {'; '.join(notes)}"


async def suggest_indexes(
    ctx: Ctx,
    sql: Annotated[str | None, Field(description="One query to find indexes for.")] = None,
    queries: Annotated[
        list[str] | None,
        Field(max_length=20, description="Several queries (a workload), weighed together. Use instead of sql."),
    ] = None,
    branch: Branch = None,
    database: Database = None,
) -> Annotated[CallToolResult, IndexAdvice]:
    """Suggest indexes for one query or a workload, from their filters, joins, orderings and groupings.

    Candidates an existing index already serves are skipped. With hypopg the rest are tried as hypothetical indexes,
    greedily (the best first, until the next saves under 10%), with the estimated gain and size of each. Answers
    CREATE INDEX CONCURRENTLY statements; it never creates an index (that is a migration).
    """
    a = await services(ctx).performance.suggest_indexes(
        [*([sql] if sql is not None else []), *(queries or [])], branch=branch, database=database
    )
    head = f"suggest_indexes: {a.queries} quer{'y' if a.queries == 1 else 'ies'} on {_where(a.database, a.branch)}"
    if a.evaluated and a.baseline_cost is not None and a.final_cost is not None:
        gain = (a.baseline_cost - a.final_cost) / a.baseline_cost if a.baseline_cost else 0.0
        head += f" · tried with hypopg: cost {a.baseline_cost:,.1f} → {a.final_cost:,.1f} ({-gain:+.0%})"
    lines = [head]
    body = [_suggestion_line(n, s) for n, s in enumerate(a.suggestions, start=1)]
    if not a.suggestions:
        body.append("no index to suggest" + (" that saves 10% or more" if a.evaluated else ""))
    if a.not_chosen:
        body.append("tried, saving under 10% (not suggested):")
        body += [f"  {s.table} ({', '.join(s.columns)}): {s.gain or 0:.0%}" for s in a.not_chosen]
    if a.covered:
        body.append("already served by an existing index:")
        body += [f"  {c.table} ({', '.join(c.columns)}) by {c.covered_by}" for c in a.covered]
    if a.small_tables:
        body.append("small tables, read whole anyway: " + ", ".join(a.small_tables))
    lines.append(fence("\n".join(body)))
    if a.suggestions:
        lines.append(
            "Nothing was created: ship indexes as a migration (CREATE INDEX CONCURRENTLY runs outside a "
            "transaction and does not block writes)."
        )
    if a.hypopg:
        lines.append(f"hypopg: {a.hypopg}")
    if a.stopped:
        lines.append(f"evaluation stopped: {a.stopped}")
    lines += [f"note: {n}" for n in a.notes]
    return _result(a, lines)


async def list_slow_queries(
    ctx: Ctx,
    branch: Branch = None,
    database: Database = None,
    limit: Annotated[int, Field(ge=1, le=100, description="How many statements to list.")] = 10,
    order_by: Annotated[
        OrderBy,
        Field(
            description="total_time (the default: what costs the server most), mean_time, calls, rows, or "
            "shared_blks_read (what reads most from outside memory)."
        ),
    ] = "total_time",
) -> Annotated[CallToolResult, SlowQueryList]:
    """List the statements that cost this database the most, from pg_stat_statements: total and mean time, calls,
    rows, shared blocks hit and read. If the extension is missing, says how to enable it."""
    q = await services(ctx).performance.slow_queries(branch=branch, database=database, limit=limit, order_by=order_by)
    where = _where(q.database, q.branch)
    if not q.available:
        return _result(q, [f"list_slow_queries on {where}: {q.message}", *[f"note: {n}" for n in q.notes]])
    since = f", since {q.stats_since}" if q.stats_since else ""
    lines = [f"top {len(q.queries)} statements by {q.order_by} on {where} (pg_stat_statements{since})"]
    body = []
    for n, s in enumerate(q.queries, start=1):
        body.append(
            f"{n}. total {_ms(s.total_ms)} · {s.calls:,} call{'s' if s.calls != 1 else ''} · mean {_ms(s.mean_ms)} · "
            f"{s.rows:,} rows · "
            f"blocks {s.shared_blks_hit:,} hit / {s.shared_blks_read:,} read"
        )
        body.append("   " + " ".join(s.query.split()) + (" …" if s.query_truncated else ""))
    lines.append(fence("\n".join(body) if body else "(no statements recorded yet)"))
    if q.truncated:
        lines.append("truncated: the byte cap cut the list short; lower limit")
    lines += [f"note: {n}" for n in q.notes]
    return _result(q, lines)


def _finding_lines(f: Finding) -> list[str]:
    lines = [f"[{f.severity}] {f.check}" + (f" {f.object}" if f.object else "") + f": {f.detail}"]
    if f.action:
        lines.append(f"   → {f.action}")
    return lines


async def health_check(
    ctx: Ctx, branch: Branch = None, database: Database = None
) -> Annotated[CallToolResult, HealthCheck]:
    """Check a database's health: cache hit ratio; connections against max_connections and by state; long-running
    queries and idle-in-transaction sessions; blocking locks (who blocks whom); unused, duplicate and invalid
    indexes; table and index bloat (estimates); dead rows and last (auto)vacuum/analyze; transaction-id wraparound
    age; sequences near their maximum; a database role with powers over the database host (superuser, server files
    and programs). Each finding has a severity and a suggested action."""
    h = await services(ctx).performance.health(branch=branch, database=database)
    figures = []
    if h.cache_hit_ratio is not None:
        figures.append(f"cache hit {h.cache_hit_ratio:.1%}")
    states = ", ".join(f"{n} {state}" for state, n in h.connections_by_state.items())
    figures.append(f"{h.connections}/{h.max_connections} connections ({states})")
    figures.append(f"xid age {h.xid_age:,}")
    where = _where(h.database, h.branch)
    if not h.findings:
        lines = [f"healthy: nothing to report on {where} ({len(h.checks)} checks) · " + " · ".join(figures)]
    else:
        counts = {sev: sum(1 for f in h.findings if f.severity == sev) for sev in ("critical", "warning", "info")}
        summary = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
        verdict = "healthy, with notes" if h.healthy else "needs attention"
        lines = [f"{verdict} on {where}: {summary} · " + " · ".join(figures)]
        lines.append(fence("\n".join(line for f in h.findings for line in _finding_lines(f))))
    lines += [f"note: {n}" for n in h.notes]
    return _result(h, lines)


def register(tools: list[ToolSpec], offer: Offer) -> None:
    """Register the tools of this family (in every access mode: none of them changes anything that stays)."""
    # explain_query may run a write (rolled back, or on a scratch branch it deletes): not read-only, not destructive.
    add_tool(tools, explain_query, title="Explain a query", read_only=False, destructive=False, idempotent=True)
    add_tool(tools, suggest_indexes, title="Suggest indexes", read_only=True, destructive=False, idempotent=True)
    add_tool(tools, list_slow_queries, title="List slow queries", read_only=True, destructive=False, idempotent=True)
    add_tool(tools, health_check, title="Check database health", read_only=True, destructive=False, idempotent=True)
