"""Effects measured, then confirmed: whether a change touches a whole table is decided by what it does.

A WHERE clause proves nothing (``WHERE true``, ``WHERE id > 0``, a join that matches every row). So an UPDATE,
DELETE or MERGE the policy let through without confirmation is measured inside its own transaction, before the
commit: when it touched ``MIN_ROWS`` rows or more, the table is looked at again in the same transaction.

- It touched **every row** when no row of the table is left whose version this transaction did not write (``xmin``
  is not the transaction's id): an ``EXISTS`` that stops at the first untouched row, so it costs little unless the
  change did touch (nearly) everything.
- It touched **most of a large table** when the table held ``LARGE_TABLE_ROWS`` rows or more and the change touched
  more than ``LARGE_SHARE`` of them. The untouched rows are counted (a scan) only when that is possible: the change
  touched more than ``LARGE_SHARE × LARGE_TABLE_ROWS`` rows and more than an eighth of the planner's estimate of the
  table (which may be four times too high, after a mass delete, and still be counted).

Either makes the change a whole-table change: the executor rolls it back, so nothing is applied, and the human is
asked with the measured effect in the summary (``describe``). Counts there are rounded to two significant digits
(``about 1,200 rows``) so that a table that changed a little since still gives the same summary, and one that
changed materially does not: the confirmed run measures again and runs only if its summary is the one confirmed.

Only plain and partitioned tables are measured (a view or foreign table has no row versions to look at); rows
written by a trigger's exception block (a subtransaction) do not count as touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

__all__ = ["LARGE_SHARE", "LARGE_TABLE_ROWS", "MIN_ROWS", "Effect", "about", "measure"]

MIN_ROWS = 2
"""A change of fewer rows is never a whole-table change (a one-row table updated by key is routine)."""
LARGE_TABLE_ROWS = 10_000
LARGE_SHARE = 0.5

_TABLE_SQL = """
SELECT c.relkind::text AS relkind, c.reltuples::float8 AS estimate
FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)
"""
_OURS = "xmin <> pg_catalog.pg_current_xact_id()::xid"


@dataclass(frozen=True, slots=True)
class Effect:
    """What one statement of a call did to its table, measured before the commit."""

    statement: int
    """0-based position of the statement in the call."""
    verb: str
    table: str
    affected: int
    untouched: int | None
    """Rows of the table the transaction did not write: 0 when it touched every row; None when not counted."""

    @property
    def every_row(self) -> bool:
        return self.untouched == 0

    @property
    def whole_table(self) -> bool:
        """Touches every row, or more than ``LARGE_SHARE`` of a table of ``LARGE_TABLE_ROWS`` rows or more."""
        if self.every_row:
            return True
        if self.untouched is None:
            return False
        size = self.untouched + self.affected
        return size >= LARGE_TABLE_ROWS and self.affected > LARGE_SHARE * size

    def describe(self) -> str:
        """The effect in the words a human confirms (rounded: see the module docstring)."""
        if self.every_row:
            return f"{self.verb} touches every row of {self.table} ({about(self.affected)} rows)"
        size = (self.untouched or 0) + self.affected
        percent = round(100 * self.affected / size, -1) if size else 0
        share = f"{about(self.affected)} of {about(size)} rows (about {percent:.0f}%)"
        return f"{self.verb} touches {share} of {self.table}"


def about(count: int) -> str:
    """``count`` as shown in a summary: exact under 100, else rounded to two significant digits (``about`` it)."""
    if count < 100:
        return f"{count:,}"
    digits = len(str(count)) - 2
    return f"about {round(count, -digits):,}"


async def measure(
    conn: asyncpg.Connection, index: int, verb: str, target: str, affected: int, wait: float
) -> Effect | None:
    """Measure what statement ``index`` (``verb`` on ``target``, a quoted qualified table name) did, inside its
    transaction; None when it is too small to matter or the target is not a table."""
    if affected < MIN_ROWS:
        return None
    table = await conn.fetchrow(_TABLE_SQL, target, timeout=wait)
    if table is None or table["relkind"] not in ("r", "p"):
        return None
    # ``target`` came from the statement's own syntax tree, quoted: it names the table the statement just changed.
    exists = f"SELECT EXISTS (SELECT FROM {target} WHERE {_OURS})"  # noqa: S608 - a quoted name, a constant
    if not await conn.fetchval(exists, timeout=wait):
        return Effect(index, verb, target, affected, 0)
    estimate = float(table["estimate"])
    if affected <= LARGE_SHARE * LARGE_TABLE_ROWS or (estimate >= 0 and affected <= LARGE_SHARE * estimate / 4):
        return Effect(index, verb, target, affected, None)
    count = f"SELECT count(*) FROM {target} WHERE {_OURS}"  # noqa: S608 - a quoted name, a constant
    untouched = int(await conn.fetchval(count, timeout=wait))
    return Effect(index, verb, target, affected, untouched)
