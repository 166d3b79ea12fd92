"""migrate: schema changes tested on a branch, linted, confirmed, applied exactly once, recorded.

``plan`` parses the whole script with pglast (function bodies keep their ``;``), refuses what the SQL policy forbids,
lints it (our rules and squawk's), and applies it on a scratch branch of the target: one transaction, with the
statements that cannot run in one (``CREATE INDEX CONCURRENTLY`` …) outside it, in order. It times each statement,
counts rows, diffs the schema before and after, and stores the plan (script, checksum, target, the target's schema
fingerprint: ``server.migrate.store``, files or the state database replicas share). A failing script reports its
statement, error and position, and leaves nothing behind.

``apply`` runs exactly the stored script on the target, after checking that it is still planned and unexpired, that
the target's schema is the one it was tested against, and that its version was not applied with another checksum;
after a human's confirmation when the target is protected or a statement is destructive; after a backup branch of a
protected target. ``neon_mcp.schema_migrations`` records it in the same transaction. The plan branch is then deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import access, progress
from ..errors import ConfirmationError, DatabaseError, InvalidInput, MigrationFailed, NeonMCPError, PolicyViolation
from ..neon.targets import Target
from ..redaction import redact
from ..settings import AccessMode
from ..sql.analysis import StatementFacts, analyze
from ..sql.database import Caps, Outcome, Statement
from ..sql.places import Place
from ..sql.policy import classify
from ..sql.reached import EMPTY
from ..sql.snapshot import diff, fingerprint, snapshot
from ..state.audit import AuditLog, AuditRecord, Confirmed
from ..state.binding import Binding, Bound
from .lint import Finding, lint, lock_of, squawk_findings
from .models import AppliedMigration, FindingModel, MigrationReport, StatementReport
from .store import Claim, MigrationPlan, MigrationStore, checksum

if TYPE_CHECKING:
    from ..neon.backups import Backups
    from ..neon.connections import Connections
    from ..neon.scratch import ScratchBranches
    from ..sql.service import SQLService

__all__ = ["AppliedMigration", "ApplyChange", "MigrationReport", "Migrations", "StatementReport"]

logger = logging.getLogger(__name__)

_PLAN_LIFETIME = timedelta(hours=1)
_CAPS = Caps(max_rows=20, max_bytes=20_000)
_GUARD_SETTINGS = frozenset({"lock_timeout", "statement_timeout"})
_INDEX_THRESHOLD = 10 * 1024 * 1024
"""Tables at least this big (bytes) get the index-without-concurrently warning."""

_BOOKKEEPING = """CREATE SCHEMA IF NOT EXISTS neon_mcp;
CREATE TABLE IF NOT EXISTS neon_mcp.schema_migrations (
    version text PRIMARY KEY,
    description text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    applied_by text NOT NULL,
    duration_ms double precision NOT NULL,
    plan_branch text NOT NULL,
    migration_id text NOT NULL
)"""
_RECORD = (
    "INSERT INTO neon_mcp.schema_migrations "
    "(version, description, checksum, applied_by, duration_ms, plan_branch, migration_id) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_HISTORY_SQL = """
SELECT version, description, checksum, applied_at, applied_by, duration_ms, plan_branch, migration_id
FROM neon_mcp.schema_migrations ORDER BY applied_at DESC, version DESC LIMIT $1
"""
_HAS_HISTORY_SQL = "SELECT pg_catalog.to_regclass('neon_mcp.schema_migrations') IS NOT NULL AS present"
_VERSION_SQL = "SELECT checksum, applied_at FROM neon_mcp.schema_migrations WHERE version = $1"
_SIZES_SQL = """
SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_total_relation_size(c.oid) AS bytes
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'm')
"""
_BLOCKERS_SQL = """
SELECT DISTINCT a.pid, a.usename, a.application_name, a.state, l.mode,
       pg_catalog.now() - a.xact_start AS in_transaction_for, pg_catalog.left(a.query, 200) AS query,
       c.relname AS relation
FROM pg_catalog.pg_locks l
JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
JOIN pg_catalog.pg_class c ON c.oid = l.relation
WHERE l.granted AND a.pid <> pg_catalog.pg_backend_pid() AND c.relname = ANY($1::text[])
ORDER BY a.pid
"""


@dataclass(frozen=True, slots=True)
class _Script:
    facts: tuple[StatementFacts, ...]
    kinds: tuple[str, ...]
    autocommit: tuple[bool, ...]
    destructive: bool

    def statements(self) -> list[Statement]:
        return [
            Statement(sql=f.sql, params=(), autocommit=a, verb=None)
            for f, a in zip(self.facts, self.autocommit, strict=True)
        ]


@dataclass(slots=True)
class _Run:
    outcomes: list[Outcome | None] = field(default_factory=list)
    total_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class ApplyChange:
    """A stored plan checked to be applicable: the summary a human confirms, and the parsed script to run."""

    plan: MigrationPlan
    script: _Script
    summary: str
    needs_confirmation: bool

    def preview(self) -> dict[str, object]:
        return {"action": "apply", "migration_id": self.plan.id}

    async def binding(self) -> Binding:
        """The target branch, by id (its schema is checked against the plan's before it runs)."""
        return (Bound("branch", self.plan.branch_name, f"branch {self.plan.branch_id}"),)


class Migrations:
    """The migrate tool's service (one per server): plans are kept in ``store``, tested on ``scratch`` branches and
    applied over ``connections``; ``sql``'s cached plans are dropped after a migration changed a schema."""

    def __init__(
        self,
        store: MigrationStore,
        connections: Connections,
        scratch: ScratchBranches,
        backups: Backups,
        sql: SQLService,
        audit: AuditLog,
        *,
        access_mode: AccessMode,
        default_schema: str | None = None,
        lock_timeout: float = 5.0,
        max_sql_bytes: int = 200_000,
    ) -> None:
        self.store = store
        self.connections = connections
        self.scratch = scratch
        self.backups = backups
        self.sql = sql
        self.audit = audit
        self.access_mode: AccessMode = access_mode
        self.default_schema = default_schema
        self.lock_timeout = lock_timeout
        self.max_sql_bytes = max_sql_bytes
        self._purged = False
        self._parsed: dict[tuple[str, str | None], _Script] = {}

    # --- plan --------------------------------------------------------------------------------------------------------

    async def plan(
        self,
        sql: str,
        *,
        branch: str | None = None,
        database: str | None = None,
        version: str | None = None,
        description: str | None = None,
    ) -> MigrationReport:
        if self.access_mode == "read-only":
            raise PolicyViolation(
                "the server is in read-only mode: migrations are neither planned (planning creates a branch) nor "
                "applied; migrate(action='history') still works"
            )
        await self._purge()
        place = await self._place(branch, database)
        target = place.target
        assert target is not None
        script = await self._parse(sql, place)
        version = (version or datetime.now(UTC).strftime("%Y%m%d%H%M%S")).strip()
        if not version:
            raise InvalidInput("version is empty")
        description = (description or _describe(script.facts)).strip()
        total = checksum(sql)
        await progress.report(0, None, "reading the target's schema and sizes")
        before = await snapshot(place)
        already = await self._applied_checksum(place, version)
        if already is not None and already != total:
            raise InvalidInput(
                f"version {version} is already applied on {place.label} with another checksum ({already}); "
                "choose a new version for a different script"
            )
        findings = lint(
            script.facts,
            sizes=await self._sizes(place, script.facts),
            default_schema=self.default_schema,
            index_threshold=_INDEX_THRESHOLD,
            server_lock_timeout=self.lock_timeout,
        )
        findings += await squawk_findings(sql, script.facts, pg_version=await self._pg_version(place))
        scratch = await self.scratch.create(place, purpose="migrate", lifetime=_PLAN_LIFETIME)
        try:
            await progress.report(1, 3, f"applying the migration on {scratch.name}")
            run = await self._run(scratch.place, script, record=None)
            after = await snapshot(scratch.place)
        except BaseException as exc:
            await asyncio.shield(self.scratch.remove(scratch.project_id, scratch.branch_id))
            if isinstance(exc, DatabaseError):
                where = "its plan branch (now deleted); the target is untouched"
                raise _failure(exc, script, findings, where=where) from exc
            raise
        plan = MigrationPlan(
            id=self.store.new_id(),
            sql=sql,
            checksum=total,
            version=version,
            description=description,
            project_id=target.project_id,
            branch_id=target.branch_id,
            branch_name=target.branch_name,
            database=place.database,
            role=target.role,
            protected_because=target.protected_because,
            destructive=script.destructive,
            schema_fingerprint=fingerprint(before),
            plan_branch_id=scratch.branch_id,
            plan_branch_name=scratch.name,
            created_at=datetime.now(UTC),
            expires_at=scratch.expires_at,
        )
        await self.store.save(plan)
        await progress.report(3, 3, "planned")
        return MigrationReport(
            migration_id=plan.id,
            version=version,
            description=description,
            checksum=total,
            branch=target.branch_name,
            database=place.database,
            plan_branch=scratch.name,
            expires_at=scratch.expires_at.isoformat(timespec="seconds"),
            statements=_reports(script, run.outcomes),
            findings=[FindingModel(**_finding_dict(f)) for f in _ordered(findings)],
            schema_diff=diff(before, after),
            rows_affected=sum(o.rows_affected or 0 for o in run.outcomes if o is not None),
            total_ms=round(run.total_ms, 1),
            needs_confirmation=self._apply_verdict(
                target.branch_name, target.protected_because, script.destructive
            ).needs_confirmation,
            protected_because=target.protected_because,
            already_applied=already is not None,
        )

    # --- apply -------------------------------------------------------------------------------------------------------

    async def plan_apply(self, migration_id: str) -> ApplyChange:
        """Check that a stored plan can be applied, by whom it must be confirmed, and what the human is asked.

        Raises ``ConfirmationError`` (unknown, applied, discarded or expired plan) and ``PolicyViolation`` (access
        mode) before anything is asked.
        """
        plan = await self.store.applicable(migration_id)
        verdict = self._apply_verdict(plan.branch_name, plan.protected_because, plan.destructive).enforced()
        script = await self._parse(plan.sql)
        return ApplyChange(plan, script, self._summary(plan, script), verdict.needs_confirmation)

    def _apply_verdict(self, branch: str, protected: str | None, destructive: bool) -> access.Verdict:
        return access.decide(
            "migrate_apply",
            self.access_mode,
            branch=branch,
            protected_because=protected,
            destructive=destructive,
        )

    def _summary(self, plan: MigrationPlan, script: _Script) -> str:
        """The confirmation question: exactly what will run where (deterministic: built from the stored plan)."""
        lines = [
            f"Apply migration {plan.id} (version {plan.version}: {plan.description}) to branch {plan.branch_name} "
            f"({plan.branch_id}), database {plan.database}.",
            f"Checksum {plan.checksum}; tested on branch {plan.plan_branch_name} at "
            f"{plan.created_at:%Y-%m-%d %H:%M:%S} UTC.",
        ]
        if plan.protected_because is not None:
            lines.append(
                f"Branch {plan.branch_name} is protected ({plan.protected_because}); "
                + (
                    f"a backup branch backup/{plan.branch_name}/<UTC time> is taken first."
                    if self.backups.enabled
                    else "backups are switched off (NEON_MCP_BACKUPS=false)."
                )
            )
        if plan.destructive:
            lines.append("It contains destructive statements (data or objects are removed).")
        lines.append("Statements:")
        for fact in script.facts:
            lock = lock_of(fact).level
            text = fact.sql if len(fact.sql) <= 500 else fact.sql[:500] + " …"
            lines.append(f"{fact.index + 1}. [{lock or 'no table lock'}] {text}")
        return "\n".join(lines)

    async def apply(self, change: ApplyChange, confirmed: Confirmed) -> AppliedMigration:
        """Apply a checked plan, once: the store holds the plan for as long as it runs (another call, through any
        replica, is refused meanwhile), and reads its state again, which another call may have changed since it was
        checked. Its plan branch is deleted once it is recorded as applied."""
        async with self.store.claim(change.plan.id) as claim:
            applied = await self._apply(claim, change.script, confirmed)
        await self.scratch.remove(claim.plan.project_id, claim.plan.plan_branch_id)
        return applied

    async def _apply(self, claim: Claim, script: _Script, confirmed: Confirmed) -> AppliedMigration:
        plan = claim.plan
        target = Target(
            plan.project_id, plan.branch_id, plan.branch_name, plan.database, plan.role, plan.protected_because
        )
        place = Place(await self.connections.databases(target), plan.database, target)
        applied = await self._applied_checksum(place, plan.version)
        if applied is not None:
            if applied != plan.checksum:
                raise ConfirmationError(
                    f"version {plan.version} was applied on {place.label} with another checksum ({applied}) since "
                    "the plan; nothing runs"
                )
            await claim.finish("applied")
            return AppliedMigration(
                migration_id=plan.id,
                version=plan.version,
                branch=plan.branch_name,
                database=plan.database,
                applied=False,
                message=f"version {plan.version} is already applied with this checksum: nothing to do",
            )
        now = fingerprint(await snapshot(place))
        if now != plan.schema_fingerprint:
            raise ConfirmationError(
                f"the schema of {place.label} changed since migration {plan.id} was planned; nothing runs. "
                "Plan it again (migrate action='plan') to test it against the current schema."
            )
        backup = None
        if plan.protected_because is not None:
            backup = await self.backups.take(plan.project_id, plan.branch_id, plan.branch_name)
        await progress.report(1, 2, f"applying migration {plan.id} to {place.label}")
        started = time.perf_counter()
        try:
            run = await self._run(place, script, record=plan, started=started)
        except DatabaseError as exc:
            self._audit(plan, script, None, confirmed, error=str(exc))
            raise await self._apply_failure(exc, place, script, plan, backup) from exc
        await claim.finish("applied")
        self.sql.forget_cached_plans()
        self._audit(plan, script, run.outcomes, confirmed)
        return AppliedMigration(
            migration_id=plan.id,
            version=plan.version,
            branch=plan.branch_name,
            database=plan.database,
            applied=True,
            statements=_reports(script, run.outcomes),
            total_ms=round(run.total_ms, 1),
            backup_branch=backup,
            message=f"applied version {plan.version} and recorded it in neon_mcp.schema_migrations",
        )

    async def _apply_failure(
        self, exc: DatabaseError, place: Place, script: _Script, plan: MigrationPlan, backup: str | None
    ) -> MigrationFailed:
        index = exc.statement_index or 0
        committed = [i for i in range(index) if script.autocommit[i]]
        state = (
            "nothing was applied (the transaction rolled back)"
            if not committed
            else f"statements {', '.join(str(i + 1) for i in committed)} ran outside the transaction and stay applied"
        )
        failure = _failure(exc, script, [], where=f"{place.label}; {state}")
        if exc.sqlstate == "55P03":
            tables = sorted({r.name for f in script.facts for r in (*f.targets, *f.relations)})
            try:
                (rows,) = await place.databases.read_catalog(place.database, [(_BLOCKERS_SQL, (tables,))])
            except NeonMCPError:
                rows = []
            holders = "\n".join(
                f"held by pid {r['pid']} ({r['usename']}, {r['application_name'] or 'no application name'}, "
                f"{r['state']}, {r['mode']} on {r['relation']}, in a transaction for {r['in_transaction_for']}): "
                f"{redact(r['query'])!r}"
                for r in rows
            )
            failure = _with(
                failure,
                f"Lock timeout ({self.lock_timeout:g} s): "
                + (
                    "held by the sessions quoted below."
                    if holders
                    else "the holder had finished by the time it was looked up."
                )
                + f" The plan is still valid: call migrate(action='apply', migration_id='{plan.id}') again later.",
                quoted=holders or None,
            )
        if backup is not None:
            failure = _with(failure, f"Backup branch taken before: {backup}.")
        return failure

    # --- discard and history -----------------------------------------------------------------------------------------

    async def discard(self, migration_id: str) -> str:
        plan = await self.store.load(migration_id)
        if plan.state != "planned":
            return f"migration {plan.id} is already {plan.state}; nothing to discard"
        async with self.store.claim(plan.id) as claim:
            await claim.finish("discarded")
        await self.scratch.remove(plan.project_id, plan.plan_branch_id)
        return f"discarded migration {plan.id} and deleted its plan branch {plan.plan_branch_name}"

    async def history(
        self, *, branch: str | None = None, database: str | None = None, limit: int = 50
    ) -> tuple[Place, list[dict[str, Any]]]:
        place = await self._place(branch, database)
        (present,) = await place.databases.read_catalog(place.database, [(_HAS_HISTORY_SQL, ())])
        if not present[0]["present"]:
            return place, []
        (rows,) = await place.databases.read_catalog(place.database, [(_HISTORY_SQL, (limit,))])
        return place, [
            {
                "version": r["version"],
                "description": r["description"],
                "checksum": r["checksum"],
                "applied_at": r["applied_at"].isoformat(timespec="seconds"),
                "applied_by": r["applied_by"],
                "duration_ms": round(float(r["duration_ms"]), 1),
                "plan_branch": r["plan_branch"],
                "migration_id": r["migration_id"],
            }
            for r in rows
        ]

    # --- mechanisms --------------------------------------------------------------------------------------------------

    async def _place(self, branch: str | None, database: str | None) -> Place:
        return await self.connections.place(branch, database)

    async def _parse(self, sql: str, place: Place | None = None) -> _Script:
        """The script's statements and categories; with ``place`` (planning), judged with what each statement sets
        off there (its executable closure, the script's own definitions included)."""
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidInput("sql is empty: pass the migration script")
        if len(sql.encode()) > self.max_sql_bytes:
            raise InvalidInput(f"the script is over {self.max_sql_bytes:,} bytes (NEON_MCP_MAX_SQL_BYTES)")
        key = (sql, place.key if place is not None else None)
        parsed = self._parsed.get(key)
        if parsed is None:
            parsed = await self._classify(sql, place)
            if len(self._parsed) >= 16:
                self._parsed.pop(next(iter(self._parsed)))
            self._parsed[key] = parsed
        return parsed

    async def _classify(self, sql: str, place: Place | None) -> _Script:
        facts = analyze(sql) if len(sql) <= 4096 else await asyncio.to_thread(analyze, sql)
        closures = await self.sql.closures.of(place, facts) if place is not None else (EMPTY,) * len(facts)
        kinds, autocommit = [], []
        for fact, closure in zip(facts, closures, strict=True):
            if _is_guard(fact):
                kinds.append("read")
                autocommit.append(False)
                continue
            verdict = classify(fact, closure)
            if verdict.category == "forbidden":
                advice = (
                    " (migrate runs the script in a transaction itself: leave out BEGIN and COMMIT)"
                    if fact.tag == "TransactionStmt"
                    else ""
                )
                raise PolicyViolation(f"statement {fact.index + 1}: {verdict.reason}{advice}")
            kinds.append(verdict.category)
            autocommit.append(verdict.needs_autocommit)
        return _Script(facts, tuple(kinds), tuple(autocommit), "destructive" in kinds)

    async def _run(
        self, place: Place, script: _Script, *, record: MigrationPlan | None, started: float | None = None
    ) -> _Run:
        """Run the script: runs of transactional statements together, the others alone, in order.

        With ``record``, the bookkeeping table is created in the first transaction and the migration recorded in the
        last one (a last transaction of its own when the script ends with statements that run alone).
        """
        started = time.perf_counter() if started is None else started
        run = _Run()
        statements = script.statements()
        segments: list[list[int]] = []
        for index, statement in enumerate(statements):
            if statement.autocommit or not segments or statements[segments[-1][0]].autocommit:
                segments.append([index])
            else:
                segments[-1].append(index)
        last_transaction = max((i for i, s in enumerate(segments) if not statements[s[0]].autocommit), default=None)
        if record is not None:
            head = [Statement(sql=part, params=(), autocommit=False, verb=None) for part in _BOOKKEEPING.split(";\n")]
            await place.databases.run(head, read_only=False, caps=_CAPS, database=place.database)
        for number, segment in enumerate(segments):
            batch = [statements[i] for i in segment]
            tail: list[Statement] = []
            if record is not None and number == last_transaction:
                tail = [self._record_statement(record, started)]
            try:
                outcomes = await place.databases.run(batch + tail, read_only=False, caps=_CAPS, database=place.database)
            except DatabaseError as exc:
                if exc.statement_index is not None and len(batch) + len(tail) > 1:
                    exc.statement_index = segment[min(exc.statement_index, len(segment) - 1)]
                else:
                    exc.statement_index = segment[0]
                raise
            run.outcomes.extend(outcomes[: len(batch)])
        if record is not None and last_transaction is None:
            await place.databases.run(
                [self._record_statement(record, started)], read_only=False, caps=_CAPS, database=place.database
            )
        run.total_ms = (time.perf_counter() - started) * 1000
        return run

    def _audit(
        self,
        plan: MigrationPlan,
        script: _Script,
        outcomes: Sequence[Outcome | None] | None,
        confirmed: Confirmed,
        *,
        error: str | None = None,
    ) -> None:
        target = (
            f"project={plan.project_id} branch={plan.branch_id} database={plan.database} role={plan.role} "
            f"migration={plan.id} version={plan.version}"
        )
        for index, fact in enumerate(script.facts):
            outcome = outcomes[index] if outcomes is not None and index < len(outcomes) else None
            self.audit.append(
                AuditRecord(
                    target=target,
                    sql=fact.sql,
                    classification=script.kinds[index],
                    confirmation=confirmed.path,
                    outcome="ok" if outcome is not None else ("error" if error else "rolled-back"),
                    rows_affected=outcome.rows_affected if outcome is not None else None,
                    error=error,
                    operation_id=plan.id,
                )
            )

    def _record_statement(self, plan: MigrationPlan, started: float) -> Statement:
        return Statement(
            sql=_RECORD,
            params=(
                plan.version,
                plan.description,
                plan.checksum,
                f"{plan.role} via neon-mcp",
                (time.perf_counter() - started) * 1000,
                plan.plan_branch_name,
                plan.id,
            ),
            autocommit=False,
            verb="INSERT",
        )

    async def _applied_checksum(self, place: Place, version: str) -> str | None:
        (present,) = await place.databases.read_catalog(place.database, [(_HAS_HISTORY_SQL, ())])
        if not present[0]["present"]:
            return None
        (rows,) = await place.databases.read_catalog(place.database, [(_VERSION_SQL, (version,))])
        return str(rows[0]["checksum"]) if rows else None

    async def _sizes(self, place: Place, facts: Sequence[StatementFacts]) -> dict[tuple[str, str], int]:
        names = sorted({r.name for f in facts for r in (*f.relations, *f.targets)})
        if not names:
            return {}
        (rows,) = await place.databases.read_catalog(place.database, [(_SIZES_SQL, (names,))])
        return {(r["schema"], r["name"]): int(r["bytes"]) for r in rows}

    async def _pg_version(self, place: Place) -> str:
        (rows,) = await place.databases.read_catalog(place.database, [("SHOW server_version", ())])
        return str(rows[0][0]).split()[0]

    async def _purge(self) -> None:
        if self._purged:
            return
        self._purged = True
        for plan in await self.store.purge():
            await self.scratch.remove(plan.project_id, plan.plan_branch_id)


def _is_guard(fact: StatementFacts) -> bool:
    """``SET [LOCAL] lock_timeout / statement_timeout``: a migration may choose its own limits."""
    node = fact.node
    return fact.tag == "VariableSetStmt" and (node.name or "").lower() in _GUARD_SETTINGS and bool(node.is_local)


def _describe(facts: Sequence[StatementFacts]) -> str:
    first = " ".join(facts[0].sql.split())
    text = first if len(first) <= 60 else first[:57] + "…"
    return text + (f" (+{len(facts) - 1} more)" if len(facts) > 1 else "")


def _reports(script: _Script, outcomes: Sequence[Outcome | None]) -> list[StatementReport]:
    reports = []
    for index, fact in enumerate(script.facts):
        lock = lock_of(fact)
        outcome = outcomes[index] if index < len(outcomes) else None
        reports.append(
            StatementReport(
                number=index + 1,
                sql=fact.sql,
                kind=script.kinds[index],
                lock=lock.level,
                rewrites=lock.rewrites,
                outside_transaction=script.autocommit[index],
                elapsed_ms=round(outcome.elapsed_ms, 2) if outcome is not None else None,
                rows_affected=outcome.rows_affected if outcome is not None else None,
            )
        )
    return reports


_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def _ordered(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (_SEVERITY_ORDER[f.severity], f.statement or 0))


def _finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity,
        "statement": finding.statement,
        "message": finding.message,
        "advice": finding.advice,
        "source": finding.source,
    }


def _failure(exc: DatabaseError, script: _Script, findings: Sequence[Finding], *, where: str) -> MigrationFailed:
    """The failure of a migration's statement: where and what stayed in the server's words; PostgreSQL's error and the
    statement quoted (shown fenced)."""
    index = exc.statement_index or 0
    fact = script.facts[index]
    position = f" at character {exc.position} of the statement" if exc.position else ""
    sqlstate = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
    errors = [f for f in findings if f.severity == "error"]
    hint = (" Lint errors: " + "; ".join(f"{f.rule}: {f.message}" for f in errors) + ".") if errors else ""
    return MigrationFailed(
        f"migration failed at statement {index + 1}{position}{sqlstate}; the error and the statement are quoted "
        f"below. Failed on {where}.{hint}",
        quoted=f"{exc.split()[1]}\nStatement {index + 1}: {fact.sql[:300]}",
    )


def _with(failure: MigrationFailed, words: str, *, quoted: str | None = None) -> MigrationFailed:
    """``failure`` with more of the server's words (and more quoted text)."""
    said, said_quoted = failure.split()
    both = "\n".join(part for part in (said_quoted, quoted) if part)
    return MigrationFailed(f"{said} {words}", quoted=both or None)
