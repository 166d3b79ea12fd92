"""The query performance service behind explain_query, suggest_indexes, list_slow_queries and health_check.

Everything a caller passes goes through the SQL policy first: the statement to explain is planned as
``EXPLAIN (…) <statement>``, which the policy judges like any statement (without ANALYZE a read; with ANALYZE what the
statement itself is). Where it then runs:

- a plan only, or ANALYZE of a read: a guarded read-only transaction on the caller's branch or database;
- ANALYZE of a write (INSERT, UPDATE, DELETE, MERGE, CREATE TABLE AS): never on the caller's branch. On Neon it runs
  on a short-lived scratch branch of it (deleted afterwards), inside a transaction that is rolled back there too; on a
  plain database in a guarded transaction that is rolled back. Statements that need autocommit are refused, and on a
  plain database so is a statement that calls a volatile function the policy cannot see into (its effects outside
  the transaction would not roll back). The answer says which of these happened.

The server's own SQL (catalog queries, hypopg calls, the generic-plan wrapper) is constant text; caller values are
parameters; identifiers come quoted from PostgreSQL or printed by pglast. Database text in the answers is fenced by
the tools.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, PolicyViolation
from ..sql.analysis import analyze
from ..sql.database import Caps, Statement
from ..sql.places import Place
from ..sql.policy import classify
from ..sql.powers import read_powers
from ..state.audit import AuditRecord
from .explain import EXPLAIN_OPTIONS, PLAN_CAPS, Explainable, Probe, document, explainable, probe, run_probe
from .health import Finding
from .health import check as check_health
from .hypothetical import HYPOPG_SQL, Chosen, Hypopg, HypoSession, greedy, parse_definition
from .index_advisor import Candidate, ExistingIndex, TableInfo, candidates, column_uses, covering_index
from .models import (
    CoveredCandidate,
    Explanation,
    HealthCheck,
    HypotheticalComparison,
    HypotheticalIndex,
    IndexAdvice,
    IndexSuggestion,
    Ran,
    SlowQueryList,
)
from .plan_summary import PlanSummary, scanned_tables, summarise, used_indexes
from .slow_queries import OrderBy, slow_queries

if TYPE_CHECKING:
    from ..neon.scratch import ScratchBranches
    from ..sql.places import Places
    from ..sql.service import Plan, SQLService
    from ..state.audit import AuditLog

__all__ = [
    "Explanation",
    "HealthCheck",
    "HypotheticalComparison",
    "IndexAdvice",
    "Performance",
    "SlowQueryList",
]

GREEDY_BUDGET = 10.0
"""Seconds suggest_indexes spends trying hypothetical indexes."""

_LOOKUP_CAPS = Caps(max_rows=10_000, max_bytes=10_000_000)

_TABLE_ROWS_SQL = """
SELECT n.nspname AS schema, c.relname AS name, c.reltuples::bigint AS rows
FROM unnest($1::text[], $2::text[]) AS w(schema, name)
JOIN pg_catalog.pg_namespace n ON n.nspname = w.schema
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.name
"""

_TABLES_SQL = """
WITH wanted AS (
  SELECT DISTINCT ON (w.schema, w.name) w.schema, w.name, c.oid, n.nspname, c.relname, c.reltuples
  FROM unnest($1::text[], $2::text[]) AS w(schema, name)
  JOIN pg_catalog.pg_class c ON c.relname = w.name AND c.relkind IN ('r', 'p', 'm')
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE (w.schema = '' AND pg_catalog.pg_table_is_visible(c.oid)) OR n.nspname = w.schema
)
SELECT wanted.schema AS asked_schema, wanted.name AS asked_name, wanted.nspname AS schema, wanted.relname AS name,
       wanted.reltuples::bigint AS rows,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = wanted.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM wanted
"""
"""The tables the queries name (unqualified names as the search path finds them), with their columns."""

_INDEXES_SQL = """
WITH wanted AS (
  SELECT DISTINCT ON (w.schema, w.name) w.schema, w.name, c.oid, n.nspname, c.relname, c.reltuples
  FROM unnest($1::text[], $2::text[]) AS w(schema, name)
  JOIN pg_catalog.pg_class c ON c.relname = w.name AND c.relkind IN ('r', 'p', 'm')
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE (w.schema = '' AND pg_catalog.pg_table_is_visible(c.oid)) OR n.nspname = w.schema
)
SELECT wanted.nspname AS schema, wanted.relname AS "table", c.relname AS name, am.amname AS method,
       i.indpred IS NOT NULL AS partial, i.indisvalid AS valid, pg_catalog.pg_get_indexdef(c.oid) AS definition,
       ARRAY(SELECT a.attname::text FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
             LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             ORDER BY k.n) AS columns
FROM wanted
JOIN pg_catalog.pg_index i ON i.indrelid = wanted.oid
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = c.relam
"""
"""Their indexes, key columns in order (NULL for an expression)."""


# --- answers ---------------------------------------------------------------------------------------------------


# --- the service -----------------------------------------------------------------------------------------------


def _plan_only(plan: Plan) -> None:
    """Refuse to plan what planning would run and a human would have to confirm (a folded function that writes):
    these tools ask no confirmation."""
    if plan.needs_confirmation:
        raise PolicyViolation(
            f"planning this statement would run code that needs a human's confirmation "
            f"({plan.verdict.statements[0].reason}); explain_query and suggest_indexes do not ask for one"
        )


def _summary(found: Any, how: Probe, table_rows: dict[tuple[str | None, str], int] | None = None) -> PlanSummary:
    summary = summarise(found, table_rows=table_rows)
    if not how.simple:
        summary.settings.pop("plan_cache_mode", None)  # the server's own, for the generic plan
    return summary


def _cut(text: str, limit: int) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= limit:
        return text, False
    return data[:limit].decode(errors="ignore"), True


class Performance:
    """explain, suggest_indexes, slow_queries and health for the tools, over the app's places and SQL policy."""

    def __init__(
        self,
        places: Places,
        sql: SQLService,
        audit: AuditLog,
        *,
        scratch: ScratchBranches | None = None,
        max_sql_bytes: int = 200_000,
        max_bytes: int = 100_000,
    ) -> None:
        self.places = places
        self.sql = sql
        self.audit = audit
        self.scratch = scratch
        self.max_sql_bytes = max_sql_bytes
        self.max_bytes = max_bytes

    # --- explain_query ---------------------------------------------------------------------------------------

    async def explain(
        self,
        sql: str,
        *,
        branch: str | None = None,
        database: str | None = None,
        analyze: bool = False,
        params: Sequence[Any] | None = None,
        hypothetical_indexes: Sequence[str] | None = None,
        raw_plan: bool = False,
    ) -> Explanation:
        """Explain one statement (see the module docstring for where ANALYZE runs).

        Raises ``InvalidInput`` (not explainable, ANALYZE without values for ``$n``, hypothetical indexes with
        ANALYZE or not a CREATE INDEX), ``PolicyViolation`` (the policy refuses the statement, or its ANALYZE), and
        database errors.
        """
        target = explainable(sql, max_bytes=self.max_sql_bytes)
        definitions = [parse_definition(d) for d in hypothetical_indexes or ()]
        if analyze and definitions:
            raise InvalidInput(
                "hypothetical indexes are planned, never executed: use hypothetical_indexes without analyze"
            )
        if analyze and target.parameters and params is None:
            raise InvalidInput(
                f"ANALYZE runs the statement, which has ${target.parameters} placeholder(s): pass params with a value "
                "for each (without analyze, PostgreSQL's generic plan is shown)"
            )
        place = await self.places.place(branch, database)
        options = [*EXPLAIN_OPTIONS, *(["ANALYZE"] if analyze else [])]
        values = [list(params)] if params is not None else None
        policy_place = replace(place, copy=True) if analyze and place.target is not None else place
        plan = await self.sql.plan(target.explain(options).sql, place=policy_place, params=values, single=True)
        if not analyze:
            _plan_only(plan)
        how = probe(target, options, params)
        notes = list(plan.warnings)
        scratch_name: str | None = None
        hypothetical: HypotheticalComparison | None = None
        if not analyze or plan.verdict.read_only:
            ran: Ran = "read-only" if analyze else "not-run"
            if definitions:
                found, hypothetical = await self._with_hypothetical(place, how, target, options, params, definitions)
            else:
                found = await self._read(place, how)
        else:
            self._check_analyze_of_write(place, plan)
            if place.target is None:
                ran = "rolled-back"
                found = await self._roll_back(place, how, plan)
                if target.tag in ("InsertStmt", "MergeStmt"):
                    notes.append("sequences it advanced keep their new values (PostgreSQL never rolls them back)")
            else:
                assert self.scratch is not None, "a Neon place comes with scratch branches"
                ran = "scratch-branch"
                async with self.scratch.use(place, purpose="explain") as scratch:
                    scratch_name = scratch.name
                    on_copy = await self.sql.plan(plan.facts[0].sql, place=scratch.place, params=values, single=True)
                    found = await self._roll_back(scratch.place, how, on_copy)
        summary = _summary(found, how, await self._table_rows(place, found))
        raw, cut = _cut(json.dumps(found, separators=(",", ":")), self.max_bytes) if raw_plan else (None, False)
        return Explanation(
            database=place.database,
            branch=place.branch_name,
            command=target.verb,
            kind=plan.verdict.statements[0].category,
            analyzed=analyze,
            ran=ran,
            scratch_branch=scratch_name,
            generic_plan=not how.simple,
            summary=summary,
            hypothetical=hypothetical,
            raw_plan=raw,
            raw_plan_truncated=cut,
            notes=notes,
        )

    @staticmethod
    def _check_analyze_of_write(place: Place, plan: Plan) -> None:
        """Refuse what a rollback cannot contain: autocommit statements; on a plain database, volatile calls."""
        classification = plan.verdict.statements[0]
        if classification.needs_autocommit:
            raise PolicyViolation(
                "EXPLAIN ANALYZE of a statement that cannot run in a transaction block would not roll back; "
                "explain it without analyze"
            )
        if place.target is None and classify(plan.facts[0]).category != classification.category:
            # Only what the statement sets off (its closure: triggers, functions, …) makes it stricter than its text.
            raise PolicyViolation(
                f"ANALYZE would run the statement, which {classification.reason}: what it does outside the "
                "transaction (another connection, a sequence, a file) would not roll back. Explain it without "
                "analyze, or run it on a Neon branch"
            )

    async def _read(self, place: Place, how: Probe) -> Any:
        if how.simple:
            outcomes = await place.databases.run([how.explain], read_only=True, caps=PLAN_CAPS, database=place.database)
            return document(outcomes[0])
        async with place.databases.rolled_back(place.database, read_only=True, caps=PLAN_CAPS) as run:
            return await run_probe(run, how)

    async def _roll_back(self, place: Place, how: Probe, plan: Plan) -> Any:
        """Run a write's EXPLAIN ANALYZE in a transaction that is rolled back; audited as rolled back."""
        record = AuditRecord(
            target=place.audit_target,
            sql=plan.facts[0].sql,
            classification=plan.verdict.statements[0].category,
            confirmation="not-needed",
            outcome="rolled-back",
        )
        try:
            async with place.databases.rolled_back(place.database, read_only=False, caps=PLAN_CAPS) as run:
                found = await run_probe(run, how)
        except Exception as exc:
            self.audit.append(replace(record, outcome="error", error=str(exc)))
            raise
        self.audit.append(record)
        return found

    async def _hypopg(self, place: Place) -> Hypopg:
        rows = (await place.databases.read_catalog(place.database, [(HYPOPG_SQL, ())]))[0]
        return Hypopg.from_row(rows[0])

    async def _with_hypothetical(
        self,
        place: Place,
        how: Probe,
        target: Explainable,
        options: Sequence[str],
        params: Sequence[Any] | None,
        definitions: Sequence[str],
    ) -> tuple[Any, HypotheticalComparison]:
        """The plan without and with ``definitions`` as hypothetical indexes, on one backend."""
        hypopg = await self._hypopg(place)
        if hypopg.schema is None:
            listed = [HypotheticalIndex(definition=d) for d in definitions]
            return await self._read(place, how), HypotheticalComparison(
                available=False, message=hypopg.missing(), indexes=listed
            )
        async with place.databases.rolled_back(place.database, read_only=True, caps=PLAN_CAPS) as run:
            session = HypoSession(run, hypopg.schema)
            before = await run_probe(run, how)
            created = [await session.create(d) for d in definitions]
            after = await run_probe(run, probe(target, options, params))
            sizes = [await session.size(index) for index in created]
            await session.reset()
        used = used_indexes(after)
        without, with_ = summarise(before).total_cost, _summary(after, how)
        comparison = HypotheticalComparison(
            available=True,
            indexes=[
                HypotheticalIndex(definition=i.definition, name=i.name, size_bytes=size, used=i.name in used)
                for i, size in zip(created, sizes, strict=True)
            ],
            cost_without=without,
            cost_with=with_.total_cost,
            gain=round((without - with_.total_cost) / without, 4) if without > 0 else None,
            plan_with=with_,
        )
        return before, comparison

    async def _table_rows(self, place: Place, found: Any) -> dict[tuple[str | None, str], int]:
        """The planner's row estimates of the tables the plan scans sequentially."""
        tables = sorted((s or "", n) for s, n in scanned_tables(found))
        if not tables:
            return {}
        # One statement through the executor's fast path: two round trips where read_catalog takes four.
        lookup = Statement(_TABLE_ROWS_SQL, ([s for s, _ in tables], [n for _, n in tables]))
        (outcome,) = await place.databases.run([lookup], read_only=True, caps=_LOOKUP_CAPS, database=place.database)
        return {(schema, name): int(rows) for schema, name, rows in outcome.rows}

    # --- suggest_indexes -------------------------------------------------------------------------------------

    async def suggest_indexes(
        self, queries: Sequence[str], *, branch: str | None = None, database: str | None = None
    ) -> IndexAdvice:
        """Candidate indexes for ``queries``, evaluated greedily with hypopg when it is installed. Creates nothing.

        Raises ``InvalidInput`` for a query EXPLAIN does not take, ``PolicyViolation`` when the policy refuses one.
        """
        if not queries:
            raise InvalidInput("pass sql or queries: at least one query to find indexes for")
        targets = [
            explainable(q, max_bytes=self.max_sql_bytes, what=f"query {n}" if len(queries) > 1 else "sql")
            for n, q in enumerate(queries, start=1)
        ]
        place = await self.places.place(branch, database)
        for target in targets:  # each is planned, never run: the policy still refuses what is forbidden
            _plan_only(await self.sql.plan(target.explain(["FORMAT JSON"]).sql, place=place, single=True))
        uses = column_uses([analyze(t.sql)[0].node for t in targets])
        asked = sorted(
            {(r.schema or "", r.name) for u in uses for r in ([u.owner] if u.owner is not None else u.tables)}
        )
        tables, existing = await self._catalog(place, asked)
        found, small = candidates(uses, tables)
        fresh: list[Candidate] = []
        covered: list[CoveredCandidate] = []
        for candidate in found:
            index = covering_index(candidate, existing)
            if index is None:
                fresh.append(candidate)
            else:
                covered.append(
                    CoveredCandidate(
                        table=f"{candidate.schema}.{candidate.table}",
                        columns=list(candidate.columns),
                        covered_by=f"{index.schema}.{index.name}",
                        definition=index.definition,
                    )
                )
        advice = IndexAdvice(
            database=place.database,
            branch=place.branch_name,
            queries=len(targets),
            evaluated=False,
            covered=covered,
            small_tables=sorted(f"{t.schema}.{t.name}" for t in small),
        )
        if not fresh:
            return advice
        hypopg = await self._hypopg(place)
        if hypopg.schema is None:
            advice.hypopg = hypopg.missing()
            advice.suggestions = [_suggestion(c) for c in fresh]
            advice.notes.append("not evaluated: without hypopg these are candidates, not measured gains")
            return advice
        probes = [probe(t, ["FORMAT JSON"], None) for t in targets]
        async with place.databases.rolled_back(place.database, read_only=True, caps=PLAN_CAPS) as run:
            session = HypoSession(run, hypopg.schema)
            result = await greedy(session, probes, fresh, budget=GREEDY_BUDGET)
            await session.reset()
        advice.evaluated = True
        advice.suggestions = [_suggestion(c.candidate, c) for c in result.chosen]
        advice.not_chosen = [_suggestion(c, gain=gain) for c, gain in result.rejected]
        advice.baseline_cost, advice.final_cost, advice.stopped = result.baseline, result.final, result.stopped
        return advice

    async def _catalog(
        self, place: Place, asked: Sequence[tuple[str, str]]
    ) -> tuple[dict[tuple[str | None, str], TableInfo], list[ExistingIndex]]:
        if not asked:
            return {}, []
        args = ([s for s, _ in asked], [n for _, n in asked])
        table_rows, index_rows = await place.databases.read_catalog(
            place.database, [(_TABLES_SQL, args), (_INDEXES_SQL, args)]
        )
        tables = {
            (r["asked_schema"] or None, r["asked_name"]): TableInfo(
                r["schema"], r["name"], frozenset(r["columns"]), int(r["rows"])
            )
            for r in table_rows
        }
        existing = [
            ExistingIndex(
                name=r["name"],
                schema=r["schema"],
                table=r["table"],
                columns=tuple(r["columns"]),
                method=r["method"],
                partial=r["partial"],
                valid=r["valid"],
                definition=r["definition"],
            )
            for r in index_rows
        ]
        return tables, existing

    # --- list_slow_queries and health_check -----------------------------------------------------------------

    async def slow_queries(
        self,
        *,
        branch: str | None = None,
        database: str | None = None,
        limit: int = 10,
        order_by: OrderBy = "total_time",
    ) -> SlowQueryList:
        place = await self.places.place(branch, database)
        found = await slow_queries(place, limit=limit, order_by=order_by, max_bytes=self.max_bytes)
        return SlowQueryList(database=place.database, branch=place.branch_name, **found.model_dump())

    async def health(self, *, branch: str | None = None, database: str | None = None) -> HealthCheck:
        place = await self.places.place(branch, database)
        report = await check_health(place)
        powers = await read_powers(place)
        if powers.powerful:
            finding = Finding(
                check="role_powers",
                severity="warning",
                object=powers.role,
                detail=powers.explain(self.sql.access_mode),
                action=powers.remedy(neon=place.target is not None),
            )
            critical = sum(1 for f in report.findings if f.severity == "critical")
            report = report.model_copy(
                update={
                    "findings": [*report.findings[:critical], finding, *report.findings[critical:]],
                    "healthy": False,
                }
            )
        notes = []
        if place.target is not None:
            notes.append(
                "On Neon, statistics (index scans, cache hits, dead rows) restart with the compute (scale to zero): "
                "they cover the time since it last started"
            )
        return HealthCheck(
            database=place.database,
            branch=place.branch_name,
            notes=notes,
            role=powers.role,
            role_powers=powers.powers,
            **report.model_dump(exclude={"checks"}),
            checks=[*report.checks, "role_powers"],
        )


def _suggestion(candidate: Candidate, chosen: Chosen | None = None, *, gain: float | None = None) -> IndexSuggestion:
    if chosen is not None:
        gain = chosen.gain
    return IndexSuggestion(
        table=f"{candidate.schema}.{candidate.table}",
        columns=list(candidate.columns),
        statement=candidate.statement(),
        reasons=list(candidate.reasons),
        queries=[q + 1 for q in candidate.queries],
        cost_before=chosen.cost_before if chosen else None,
        cost_after=chosen.cost_after if chosen else None,
        gain=None if gain is None else round(gain, 4),
        size_bytes=chosen.size_bytes if chosen else None,
    )
