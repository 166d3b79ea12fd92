"""Hypothetical indexes with hypopg: what the planner would do with indexes that do not exist.

hypopg keeps hypothetical indexes in the backend's memory, neither in the catalog nor in the transaction, so all of
the work runs in one ``Databases.rolled_back`` block (one connection, one read-only transaction) that ends with
``hypopg_reset()``; if the block fails, that connection is closed rather than pooled. Behind Neon's pooler
(PgBouncer in transaction mode) the one transaction keeps every step on the same server backend.

A caller's index definition reaches hypopg only after pglast has parsed it as exactly one ``CREATE INDEX``, and then
as pglast prints it; it is passed as a parameter, never spliced into SQL. The server's own calls name hypopg's
functions through the schema PostgreSQL itself quoted (``quote_ident``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pglast import ast
from pglast.parser import ParseError, parse_sql
from pglast.stream import RawStream

from ..errors import InvalidInput
from ..sql.database import Statement
from .explain import Probe, Run, run_probe
from .index_advisor import Candidate
from .plan_summary import total_cost

__all__ = [
    "HYPOPG_SQL",
    "MIN_GAIN",
    "Chosen",
    "Greedy",
    "HypoIndex",
    "HypoSession",
    "Hypopg",
    "greedy",
    "parse_definition",
]

HYPOPG_SQL = """
SELECT (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e
        JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hypopg') AS schema,
       EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'hypopg') AS available,
       pg_catalog.current_setting('server_version_num')::int / 10000 AS major
"""
"""Where hypopg is installed in this database (quoted schema, or NULL), and whether the server has it at all."""

MIN_GAIN = 0.10
"""The greedy evaluation stops when the best remaining index lowers the workload's cost by less than this share of
its cost without any new index."""


@dataclass(frozen=True, slots=True)
class Hypopg:
    """What a database says about hypopg."""

    schema: str | None
    available: bool
    major: int

    @classmethod
    def from_row(cls, row: Any) -> Hypopg:
        return cls(row["schema"], bool(row["available"]), int(row["major"]))

    @property
    def installed(self) -> bool:
        return self.schema is not None

    def missing(self) -> str:
        """What to do when it is not installed (the answer says it; nothing is installed by this server)."""
        if self.available:
            return (
                "hypopg is not enabled in this database: run CREATE EXTENSION hypopg (as a migration; it is available "
                "on Neon) to compare plans with hypothetical indexes"
            )
        return (
            "hypopg is not installed on this PostgreSQL server: on Neon run CREATE EXTENSION hypopg; elsewhere install "
            f"it (Debian: postgresql-{self.major}-hypopg), then CREATE EXTENSION hypopg"
        )


def parse_definition(text: str) -> str:
    """A caller's hypothetical index as pglast prints it; ``InvalidInput`` unless it is exactly one CREATE INDEX.

    ``CONCURRENTLY`` is accepted (suggest_indexes proposes it) and dropped: a hypothetical index is never built.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("a hypothetical index is empty: pass a CREATE INDEX statement")
    try:
        parsed = parse_sql(text)
    except ParseError as exc:
        raise InvalidInput(f"hypothetical index {text!r} does not parse: {exc.args[0]}") from exc
    if len(parsed) != 1 or not isinstance(parsed[0].stmt, ast.IndexStmt):
        raise InvalidInput(f"hypothetical index {text!r} must be exactly one CREATE INDEX statement")
    stmt = parsed[0].stmt
    if stmt.unique or stmt.primary or stmt.isconstraint:
        raise InvalidInput(f"hypothetical index {text!r}: drop UNIQUE; hypopg plans plain indexes")
    stmt.concurrent = False
    stmt.if_not_exists = False
    return str(RawStream()(stmt))


@dataclass(frozen=True, slots=True)
class HypoIndex:
    oid: int
    name: str
    definition: str


class HypoSession:
    """hypopg's functions on one backend, through a ``run`` of a ``Databases.rolled_back`` block."""

    def __init__(self, run: Run, schema: str) -> None:
        """``schema``: where hypopg is installed, as PostgreSQL's ``quote_ident`` gave it (``Hypopg.schema``)."""
        self.run = run
        # Only the quoted schema is interpolated; every value is a parameter.
        self._create = f"SELECT indexrelid, indexname FROM {schema}.hypopg_create_index($1)"  # noqa: S608
        self._drop = f"SELECT {schema}.hypopg_drop_index($1::oid)"
        self._size = f"SELECT {schema}.hypopg_relation_size($1::oid)"
        self._reset = f"SELECT {schema}.hypopg_reset()"

    async def create(self, definition: str) -> HypoIndex:
        oid, name = (await self.run(Statement(self._create, (definition,)))).rows[0]
        return HypoIndex(int(oid), str(name), definition)

    async def drop(self, index: HypoIndex) -> None:
        await self.run(Statement(self._drop, (index.oid,)))

    async def size(self, index: HypoIndex) -> int:
        return int((await self.run(Statement(self._size, (index.oid,)))).rows[0][0])

    async def reset(self) -> None:
        await self.run(Statement(self._reset))

    async def costs(self, probes: Sequence[Probe]) -> list[float]:
        """The planner's total cost of each probe's statement, with the hypothetical indexes that exist now."""
        return [total_cost(await run_probe(self.run, probe)) for probe in probes]


@dataclass(frozen=True, slots=True)
class Chosen:
    candidate: Candidate
    cost_before: float
    cost_after: float
    size_bytes: int
    gain: float
    """The share of the workload's baseline cost it saves, on top of the indexes chosen before it."""


@dataclass(frozen=True, slots=True)
class Greedy:
    baseline: float
    """The workload's total cost without any hypothetical index."""
    final: float
    chosen: list[Chosen]
    rejected: list[tuple[Candidate, float]]
    """Candidates not chosen, with the gain (share of the baseline) each showed in the last round it was tried."""
    stopped: str


async def greedy(
    session: HypoSession, probes: Sequence[Probe], options: Sequence[Candidate], *, budget: float
) -> Greedy:
    """Choose indexes one at a time: each round tries every remaining candidate on top of those chosen, one at a
    time, and keeps the one that lowers the workload's total cost most; stops when that saves less than ``MIN_GAIN``
    of the baseline cost, or when ``budget`` seconds have passed (the best of a round cut short is still kept if it
    saves enough)."""
    deadline = time.monotonic() + budget
    baseline = current = sum(await session.costs(probes))
    remaining = list(options)
    chosen: list[Chosen] = []
    gains: dict[int, float] = {}
    stopped = "no candidates left"
    while remaining:
        best: tuple[float, int] | None = None
        out_of_time = False
        for position, candidate in enumerate(remaining):
            if time.monotonic() > deadline:
                out_of_time = True
                break
            index = await session.create(candidate.statement(concurrently=False))
            cost = sum(await session.costs(probes))
            await session.drop(index)
            gains[id(candidate)] = (current - cost) / baseline if baseline > 0 else 0.0
            if best is None or cost < best[0]:
                best = (cost, position)
        if best is not None:
            cost, position = best
            if baseline <= 0 or (current - cost) / baseline < MIN_GAIN:
                stopped = f"no remaining index lowers the cost by {MIN_GAIN:.0%} or more"
                break
            candidate = remaining.pop(position)
            index = await session.create(candidate.statement(concurrently=False))  # kept for the next rounds
            gain = (current - cost) / baseline
            chosen.append(Chosen(candidate, current, cost, await session.size(index), gain))
            current = cost
        if out_of_time:
            stopped = f"the time budget of {budget:g} s ran out"
            break
    rejected = [(c, gains.get(id(c), 0.0)) for c in remaining]
    return Greedy(baseline, current, chosen, rejected, stopped)
