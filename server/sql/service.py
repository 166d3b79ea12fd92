"""The SQL core's service: check the input, plan (analysis + policy), summarise for confirmation, run, audit.

Tools call ``SQLService.plan`` and ``SQLService.execute``; nothing here knows about MCP. A ``Plan`` that needs
confirming carries the summary the human confirms, and gives its ``binding``: the relations it changes or drops with
their OIDs and sizes as they are now (``touched``). Before a confirmed destructive plan runs on a protected branch,
``backups`` (Neon's, given by the composition root) keep a copy of the branch.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from .. import access
from ..errors import ConfirmationError, DatabaseError, InvalidInput, NeedsConfirmation, NeonMCPError, PolicyViolation
from ..redaction import redact
from ..settings import AccessMode
from ..state.audit import AuditLog, AuditRecord, Confirmed
from ..state.binding import Binding
from .analysis import StatementFacts, analyze
from .closure import Closures
from .database import Caps, Outcome, Statement
from .effects import Effect
from .places import Place
from .policy import Classification, Verdict, decide
from .quoting import qualified
from .touched import held, touched

__all__ = ["Backups", "Execution", "Plan", "SQLService", "protected_refusal"]

_VERBS = {"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE"}
_SUMMARY_SQL_CHARS = 2_000
_PLAN_TTL = 2.0
"""Seconds a plan is reused: a tool's confirmation resolver and its body plan the same call twice. Short, because a
plan holds what the catalog said (the closures' own cache, ``Closures.ttl``, bounds the rest)."""
_PLAN_MEMORY = 256


@dataclass(frozen=True, slots=True)
class Plan:
    """What a call will run, and what the policy said about it."""

    place: Place
    facts: tuple[StatementFacts, ...]
    params: tuple[tuple[Any, ...], ...]
    verdict: Verdict
    warnings: tuple[str, ...]
    summary: str = ""
    """What the human confirms, when the plan needs confirming (empty otherwise)."""
    as_of: str | None = None
    """A read to answer as of this timestamp or LSN (on a short-lived branch made at that moment)."""

    @property
    def database(self) -> str:
        return self.place.database

    def preview(self) -> dict[str, object]:
        """The result's fields known before it runs: where, what kind, the warnings."""
        branch = self.place.branch_name
        return {
            "database": self.database,
            **({"branch": branch} if branch else {}),
            "kind": self.verdict.category,
            "warnings": list(self.warnings),
        }

    @property
    def needs_confirmation(self) -> bool:
        return self.verdict.action == "confirm"

    async def binding(self) -> Binding:
        """The relations and schemas this plan changes or drops, as they are now (what a confirmation is bound to)."""
        return await touched(self.place, self.facts)

    @property
    def fingerprint(self) -> str:
        """A short hash of exactly what would run where: part of every confirmation question."""
        payload = json.dumps(
            [self.place.key, [f.sql for f in self.facts], [list(p) for p in self.params]], default=str
        ).encode()
        return hashlib.sha256(payload).hexdigest()[:12]

    def statements(self) -> list[Statement]:
        return [
            Statement(
                sql=f.sql,
                params=p,
                autocommit=c.needs_autocommit,
                verb=_VERBS.get(f.tag),
                query=f.tag == "SelectStmt" and not f.select_into and not f.modifications,
                target=qualified(f.targets[0].schema, f.targets[0].name) if len(f.targets) == 1 else None,
            )
            for f, p, c in zip(self.facts, self.params, self.verdict.statements, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class Execution:
    """What running a plan gave: each statement's outcome, and the backup branch taken first, if any."""

    outcomes: list[Outcome]
    backup: str | None = None


class Backups(Protocol):
    """What keeps a copy of a protected branch before a confirmed destructive change (``server.neon.backups``)."""

    @property
    def enabled(self) -> bool: ...

    async def take(self, project_id: str, branch_id: str, branch_name: str) -> str | None: ...


def protected_refusal(place: Place, reason: str) -> str:
    """Why a change to a protected branch is refused in access mode ``branches``, and what to do instead."""
    return (
        f"branch {place.branch_name} is protected ({place.protected_because}): in access mode branches only reads run "
        "on it. Try the change on an unprotected branch (create_branch, then branch=<name>), and ship schema "
        "changes to a protected branch with migrate (action='plan', then 'apply'). "
        f"(Refused statement: {reason})"
    )


def _check_total(texts: Sequence[object], *, limit: int) -> None:
    """The SQL size limit holds for a call, across all its statements."""
    size = sum(len(text.encode("utf-8", "surrogatepass")) for text in texts if isinstance(text, str))
    if len(texts) > 1 and size > limit:
        raise InvalidInput(
            f"the statements are {size:,} bytes together; the limit is {limit:,} bytes per call "
            "(NEON_MCP_MAX_SQL_BYTES): send them in several calls"
        )


ANALYSIS_SECONDS = 2.0
"""The default longest a statement's text may take to analyse (``Settings.max_analysis_seconds``; pglast builds a
Python tree of every node: a 100 kB expression took eight seconds here); a statement that needs longer is refused. The
refused analysis still runs to its end in its thread (threads cannot be stopped), one at a time, slowing the event
loop meanwhile but not stopping it."""
_INLINE_CHARS = 4096
_large_analyses = threading.Semaphore(1)
"""Long texts are analysed one at a time, so an abandoned analysis (a thread cannot be stopped: it runs on after its
caller's deadline) keeps at most one core busy; one still waiting when its caller gave up is skipped."""


def _analyze_alone(sql: str, abandoned: threading.Event) -> tuple[StatementFacts, ...]:
    with _large_analyses:
        return () if abandoned.is_set() else analyze(sql)


async def _analysed(sql: str, what: str, budget: float) -> tuple[StatementFacts, ...]:
    """``analyze(sql)``; a long text in a worker thread (the event loop keeps serving), refused with
    ``InvalidInput`` if it is not analysed within ``budget`` seconds (waiting for another long text included)."""
    if len(sql) <= _INLINE_CHARS:
        return analyze(sql)
    abandoned = threading.Event()
    work = asyncio.ensure_future(asyncio.to_thread(_analyze_alone, sql, abandoned))
    try:
        return await asyncio.wait_for(asyncio.shield(work), timeout=budget)
    except TimeoutError:
        abandoned.set()
        work.add_done_callback(lambda done: done.cancelled() or done.exception())  # nobody awaits it any more
        raise InvalidInput(
            f"{what} is too complex to analyse within {budget:g} s ({len(sql):,} characters); split it "
            "into smaller statements, or pass long lists of values as params"
        ) from None


def _check_text(sql: object, *, limit: int, what: str = "sql") -> str:
    if not isinstance(sql, str):
        raise InvalidInput(f"{what} must be a string")
    if "\x00" in sql:
        raise InvalidInput(f"{what} contains a NUL byte, which PostgreSQL cannot accept")
    size = len(sql.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InvalidInput(f"{what} is {size:,} bytes; the limit is {limit:,} bytes (NEON_MCP_MAX_SQL_BYTES)")
    if not sql.strip():
        raise InvalidInput(f"{what} is empty")
    return sql


class SQLService:
    """Plans and runs SQL for the tools, under one access mode and one set of limits."""

    def __init__(
        self,
        audit: AuditLog,
        *,
        access_mode: AccessMode,
        caps: Caps,
        max_sql_bytes: int,
        default_schema: str | None = None,
        backups: Backups | None = None,
        closures: Closures | None = None,
        analysis_seconds: float = ANALYSIS_SECONDS,
    ) -> None:
        self.audit = audit
        self.analysis_seconds = analysis_seconds
        self.closures = closures if closures is not None else Closures()
        self.backups = backups
        self.access_mode: AccessMode = access_mode
        self.caps = caps
        self.max_sql_bytes = max_sql_bytes
        self.default_schema = default_schema
        self._plans: dict[tuple[Any, ...], tuple[float, Plan]] = {}

    # --- planning -------------------------------------------------------------------------------------------------

    async def plan(
        self,
        sql: str | Sequence[str],
        *,
        place: Place,
        params: Sequence[Sequence[Any]] | None = None,
        single: bool = False,
        as_of: str | None = None,
    ) -> Plan:
        """Analyse and classify; raises ``PolicyViolation`` when the policy rejects, ``InvalidInput`` on bad input.

        ``single``: ``sql`` must hold exactly one statement (``run_sql``). Otherwise ``sql`` is a list whose items
        are one statement each (``run_sql_transaction``). ``as_of``: the plan is a read to answer as of that moment
        (``server.neon.time_travel`` runs it), which only a read on a Neon branch can be.
        """
        key = (sql if isinstance(sql, str) else tuple(sql), place, _params_key(params), single, as_of)
        cached = self._plans.get(key) if key[2] is not None else None
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        plan = await self._plan(sql, place=place, params=params, single=single)
        if as_of is not None:
            if place.target is None:
                raise InvalidInput("as_of needs Neon: a plain PostgreSQL URL has no history to branch from")
            if not plan.verdict.read_only:
                raise InvalidInput("as_of answers reads only; this statement changes data")
            plan = replace(plan, as_of=as_of)
        if key[2] is not None:
            if len(self._plans) >= _PLAN_MEMORY:
                self._plans.clear()
            self._plans[key] = (time.monotonic() + _PLAN_TTL, plan)
        return plan

    async def _plan(
        self, sql: str | Sequence[str], *, place: Place, params: Sequence[Sequence[Any]] | None, single: bool
    ) -> Plan:
        texts = [sql] if isinstance(sql, str) else list(sql)
        if not texts:
            raise InvalidInput("statements is empty: pass at least one SQL statement")
        _check_total(texts, limit=self.max_sql_bytes)
        facts: list[StatementFacts] = []
        for number, text in enumerate(texts, start=1):
            what = "sql" if single else f"statement {number}"
            checked = _check_text(text, limit=self.max_sql_bytes, what=what)
            parsed = await _analysed(checked, what, self.analysis_seconds)
            if len(parsed) > 1:
                raise InvalidInput(
                    f"{what} holds {len(parsed)} statements; pass exactly one"
                    + (" (use run_sql_transaction for several)" if single else " per list item")
                )
            facts.append(_renumbered(parsed[0], len(facts)))
        bound = _bind_params(params, len(facts))
        mode = self._mode_at(place)
        verdict = decide(facts, mode)
        if verdict.action != "reject":  # what the statements set off can only make the verdict stricter
            verdict = decide(facts, mode, await self.closures.of(place, facts))
        if verdict.action == "reject":
            if self.access_mode == "branches" and verdict.category != "forbidden":
                # The verdict's own words speak of read-only mode; the statement's reason is what matters here.
                worst = next(c for c in verdict.statements if c.category == verdict.category)
                why = f"statement {worst.index + 1} ({worst.category}): {worst.reason}"
                raise _refused(protected_refusal(place, why), reached=verdict.reached)
            raise _refused(verdict.reason, reached=verdict.reached)
        if len(facts) > 1 and any(c.needs_autocommit for c in verdict.statements):
            raise PolicyViolation(
                "a statement here cannot run inside a transaction block (VACUUM, CREATE INDEX CONCURRENTLY, "
                "CREATE/DROP DATABASE …); run it alone with run_sql"
            )
        plan = Plan(place, tuple(facts), bound, verdict, tuple(self._warnings(facts)))
        return replace(plan, summary=self._summary(plan)) if plan.needs_confirmation else plan

    def _mode_at(self, place: Place) -> AccessMode:
        """The policy's mode for ``place``: ``branches`` is full on unprotected branches and read-only elsewhere."""
        return access.mode_at(self.access_mode, place.protected_because, on_a_branch=place.target is not None)

    def _warnings(self, facts: Sequence[StatementFacts]) -> list[str]:
        if not self.default_schema:
            return []
        seen: set[str] = set()
        warnings = []
        for fact in facts:
            for relation in fact.relations:
                # pg_* names are PostgreSQL's own catalogs and views, found through pg_catalog.
                if relation.schema is None and relation.name not in seen and not relation.name.startswith("pg_"):
                    seen.add(relation.name)
                    warnings.append(
                        f"table {relation.name} is not schema-qualified; "
                        f"write {qualified(self.default_schema, relation.name)}"
                    )
        return warnings

    def forget_cached_plans(self, place_key: str | None = None) -> None:
        """Drop memoised plans and what was learned of the catalog (after DDL: through ``execute``, or elsewhere, e.g.
        a migration); of one place, or of all."""
        self._plans.clear()
        self.closures.forget(place_key)

    # --- confirmation ---------------------------------------------------------------------------------------------

    def _summary(self, plan: Plan) -> str:
        """A human summary of a plan that needs confirmation: statements, target, the objects it changes.

        Built from the plan alone (no clock, no database), so asking again for the same operation gives the same text:
        the 2026-07-28 protocol matches an answer to its question by the question's exact text. The objects' identity
        and size, which the database gives, come with the plan's ``binding``.
        """
        lines = self._summary_head(plan)
        for fact, classification in zip(plan.facts, plan.verdict.statements, strict=True):
            lines.append(_statement_line(fact, classification))
            targets = ", ".join(qualified(r.schema, r.name) for r in fact.targets)
            if targets:
                lines.append(f"   affects: {targets}")
        lines += _parameters(plan)
        return "\n".join(lines)

    def _summary_head(self, plan: Plan) -> list[str]:
        """The first lines of a summary: where, which operation, why it is asked, and the backup taken first."""
        lines = [
            f"Destructive operation on {plan.place.label} (operation {plan.fingerprint}).",
            f"Why confirmation is needed: {plan.verdict.reason}",
        ]
        if plan.place.protected_because is not None:
            lines.append(
                f"Branch {plan.place.branch_name} is protected ({plan.place.protected_because}); "
                + (
                    f"a backup branch backup/{plan.place.branch_name}/<UTC time> is taken before it runs."
                    if self.backups is not None and self.backups.enabled
                    else "backups are switched off (NEON_MCP_BACKUPS=false): nothing is kept."
                )
            )
        return lines

    # --- running --------------------------------------------------------------------------------------------------

    async def execute(self, plan: Plan, confirmed: Confirmed, *, max_rows: int | None = None) -> Execution:
        """Run a plan the policy allowed (and a human confirmed, if it needed that); audit what changes data.

        A confirmed plan on a protected branch runs only after its backup branch has been taken.

        A write the policy let through unconfirmed is measured before it commits (``server.sql.effects``): if it
        touches a whole table it is rolled back and ``NeedsConfirmation`` is raised with the plan to ask about (its
        summary states the measured effect). When a human confirmed that (``confirmed.summary``, by
        ``confirm_operation``), the run measures again and commits only if it gives the same summary; otherwise it
        is rolled back and ``ConfirmationError`` says what it would do now.
        """
        if plan.needs_confirmation and confirmed.path == "not-needed":
            raise AssertionError("a plan that needs confirmation ran without one")
        caps = self.caps if max_rows is None else Caps(min(max_rows, self.caps.max_rows), self.caps.max_bytes)
        read_only = plan.verdict.read_only
        measured = not read_only and not plan.needs_confirmation
        backup = None
        target = plan.place.target
        confirmed_by_human = plan.needs_confirmation or confirmed.summary is not None
        if confirmed_by_human and target is not None and plan.place.protected_because and self.backups is not None:
            backup = await self.backups.take(target.project_id, target.branch_id, target.branch_name)

        rolled_back: list[Effect] = []

        def check(effects: Sequence[Effect]) -> None:
            if not effects:
                return
            asked = self._measured(plan, effects)
            if asked.summary == confirmed.summary:
                return  # the human confirmed exactly this effect: commit
            rolled_back.extend(effects)
            if confirmed.summary is None:
                raise NeedsConfirmation(
                    "; ".join(effect.describe() for effect in effects)
                    + ": measured by running it, then rolled back (nothing was applied). A change of a whole table "
                    "needs the user's confirmation.",
                    asked,
                )
            raise ConfirmationError(
                f"what operation {confirmed.operation_id} would do changed since it was confirmed; nothing ran. "
                f"Now it would be:\n{asked.summary}\nRun the tool again to confirm that."
            )

        try:
            outcomes = await plan.place.databases.run(
                plan.statements(),
                read_only=read_only,
                caps=caps,
                database=plan.database,
                check=check if measured else None,
                hold=held(plan.facts, confirmed.binding),
            )
        except NeonMCPError as exc:
            if rolled_back:
                self._audit(plan, confirmed, None, measured=rolled_back)
            elif not read_only:
                self._audit(plan, confirmed, None, error=str(exc))
            if isinstance(exc, DatabaseError) and exc.sqlstate == "42P01" and plan.warnings:
                exc.hint = "; ".join(filter(None, [exc.hint, *plan.warnings]))
            raise
        if not read_only:
            self._audit(plan, confirmed, outcomes)
        if plan.verdict.category in ("ddl", "destructive"):
            # Functions, triggers, views … may have been created, replaced or dropped: plans and closures are stale.
            self.forget_cached_plans(plan.place.key)
        return Execution(outcomes, backup)

    def _measured(self, plan: Plan, effects: Sequence[Effect]) -> Plan:
        """``plan`` as a change to confirm, its summary stating the measured ``effects`` (deterministic: the same
        effects, as ``Effect.describe`` rounds them, give the same text)."""
        reason = "it changes a whole table (measured by running it in a transaction that was then rolled back)"
        verdict = replace(plan.verdict, action="confirm", category="destructive", reason=reason)
        measured = replace(plan, verdict=verdict)
        by_statement = {effect.statement: effect for effect in effects}
        lines = self._summary_head(measured)
        for fact, classification in zip(plan.facts, plan.verdict.statements, strict=True):
            lines.append(_statement_line(fact, classification))
            if fact.index in by_statement:
                lines.append(f"   measured: {by_statement[fact.index].describe()}")
        lines += _parameters(plan)
        return replace(measured, summary="\n".join(lines))

    def _audit(
        self,
        plan: Plan,
        confirmed: Confirmed,
        outcomes: list[Outcome] | None,
        *,
        error: str | None = None,
        measured: Sequence[Effect] = (),
    ) -> None:
        """One record per statement that is not a read: what ran, or failed, or was rolled back after ``measured``."""
        affected = {effect.statement: effect.affected for effect in measured}
        for index, (fact, classification) in enumerate(zip(plan.facts, plan.verdict.statements, strict=True)):
            if classification.category == "read":
                continue
            outcome = outcomes[index] if outcomes is not None else None
            self.audit.append(
                AuditRecord(
                    target=plan.place.audit_target,
                    sql=fact.sql,
                    classification=classification.category,
                    confirmation=confirmed.path,
                    outcome="ok" if outcome is not None else ("error" if error else "rolled-back"),
                    rows_affected=outcome.rows_affected if outcome is not None else affected.get(index),
                    error=error,
                    operation_id=confirmed.operation_id,
                )
            )


def _refused(reason: str, *, reached: bool) -> PolicyViolation:
    """The policy's refusal; a reason that names objects reached through the catalog (names the database chose) is
    shown fenced, as every text from the database is."""
    if reached:
        return PolicyViolation("the SQL policy refuses this, for what it reaches in the database:", quoted=reason)
    return PolicyViolation(reason)


def _params_key(params: Sequence[Sequence[Any]] | None) -> str | None:
    """A hashable form of the parameters, or None when they cannot be keyed (then the plan is not memoised)."""
    if params is None:
        return ""
    try:
        return json.dumps(params, sort_keys=True)
    except (TypeError, ValueError):
        return None


def _renumbered(fact: StatementFacts, index: int) -> StatementFacts:
    return fact if fact.index == index else replace(fact, index=index)


def _bind_params(params: Sequence[Sequence[Any]] | None, count: int) -> tuple[tuple[Any, ...], ...]:
    if params is None:
        return tuple(() for _ in range(count))
    if len(params) != count:
        raise InvalidInput(f"params has {len(params)} lists for {count} statements; give one list per statement")
    return tuple(tuple(p) for p in params)


def _statement_line(fact: StatementFacts, classification: Classification) -> str:
    """A statement as a summary shows it: numbered, classified, its password literals redacted, shortened."""
    sql = redact(fact.sql)
    shown = sql if len(sql) <= _SUMMARY_SQL_CHARS else sql[:_SUMMARY_SQL_CHARS] + " …"
    return f"{fact.index + 1}. [{classification.category}] {shown}"


def _parameters(plan: Plan) -> list[str]:
    if not any(plan.params):
        return []
    return [f"Parameters: {json.dumps([list(p) for p in plan.params], default=str)[:500]}"]
