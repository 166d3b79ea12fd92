"""Reading one statement's rows, holding no more of them than the answer may show.

Memory per call is bounded by what PostgreSQL sends, so the bound is kept in the database, not after transfer:

- A query (SELECT, VALUES, TABLE; ``Statement.query``) whose result has a variable-length column is read through a
  wrapper written from its own result description (the statement is prepared first, then wrapped; the caller's
  ``$n`` parameters are unchanged). The wrapper asks for at most ``max_rows + 1`` rows (``LIMIT``, which also lets
  the planner choose a fast-start plan), keeps a running total of the rows' sizes (text octets; a numeric's stored
  size, as it is decoded from that; arrays, composites and other structured values count four times, their decoded
  form being larger) and, once it passes
  ``4 × max_bytes``, sends the remaining rows without their variable-length values: a flag says so, and only the
  first such row, if it is the first of all, carries each value cut to its share of the budget, with its full
  length. bytea values never arrive longer than ``BYTEA_PREVIEW_BYTES``. So a 500 MB value costs its cut share,
  and 500 MB of rows cost about the budget.
- Rows arrive in batches of at most ``max_rows + 1`` rows, fewer when rows are very wide (``FETCH_BYTES`` over an
  upper bound of a row's size without its variable-length values), and the byte budget is checked row by row.

Statements that cannot be wrapped (EXPLAIN, SHOW, INSERT/UPDATE/DELETE … RETURNING, CALL) are read in batches of
``UNWRAPPED_BATCH`` rows: their values are not cut in the database. The server's growth per call is therefore about
``4 × max_bytes`` of values, plus ``FETCH_BYTES`` of row overhead, plus the answer itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any, Literal, Protocol

from ..errors import InvalidInput
from .values import BYTEA_PREVIEW_BYTES, coerce_param, converter, cut_bytes, estimate_size, float_free, sizing

__all__ = [
    "CACHED_SQL_CHARS",
    "FETCH_BYTES",
    "UNWRAPPED_BATCH",
    "Caps",
    "Column",
    "Outcome",
    "Shape",
    "Statement",
    "param_values",
    "rows_affected",
    "shape_of",
]

CACHED_SQL_CHARS = 15 * 1024
"""Texts up to this long have their wrapper kept (asyncpg keeps prepared statements up to about as long)."""
FETCH_BYTES = 8 * 1024 * 1024
"""Upper bound of one batch's row overhead (Python objects of fixed-size values, records, lists)."""
UNWRAPPED_BATCH = 32
"""Rows per batch of a statement whose values cannot be cut in the database."""
_BUDGET_FACTOR = 4
"""The database's running budget is this many times ``max_bytes`` (so it never stops a row the answer would keep:
a character is at most four octets)."""
_ROW_BYTES = 96
_CELL_BYTES = 72
"""Upper bounds of a decoded row's and a fixed-size cell's Python memory, for batch sizing."""
_STRUCTURED_WEIGHT = 4


@dataclass(frozen=True, slots=True)
class Caps:
    """How much of a result is returned."""

    max_rows: int
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement to run, with its ``$n`` parameter values (JSON values, coerced to the parameter types)."""

    sql: str
    params: Sequence[Any] = ()
    autocommit: bool = False
    verb: str | None = None
    """INSERT, UPDATE, DELETE or MERGE for a data-changing statement (its RETURNING rows count as affected)."""
    query: bool = False
    """A plain query (SELECT, VALUES, TABLE; no INTO, no data-changing WITH): its rows may be read through a wrapper
    that cuts large values in the database."""
    target: str | None = None
    """For UPDATE, DELETE and MERGE: the quoted, qualified name of the one table it changes, when known (its effect
    is measured against that table's size, ``server.sql.effects``)."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str


@dataclass(slots=True)
class Outcome:
    """What one statement returned."""

    columns: list[Column] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False
    command: str = ""
    rows_affected: int | None = None
    elapsed_ms: float = 0.0
    float_free: bool = False
    """Every value is a string, integer, boolean or NULL, or a list of them (``values.json_lines``)."""

    @property
    def returns_rows(self) -> bool:
        return bool(self.columns)


class _Type(Protocol):
    oid: int
    name: str
    kind: str
    schema: str


class _Attribute(Protocol):
    name: str
    type: _Type


Kind = Literal["fixed", "bytea", "string", "numeric", "text", "structured"]
"""How a column is read through the wrapper: ``fixed`` as it is; ``bytea`` cut to its preview; ``string`` (text,
varchar) in one column holding the value or, past the budget, its cut; ``numeric``, ``text`` (other types read as one
string) and ``structured`` (arrays, composites, ranges, unknown types) with a second column for the cut."""

# Built-in types whose values are small whatever the row (a few dozen bytes at most): never wrapped.
# fmt: off
_FIXED = frozenset(
    {
        "bool", "char", "int2", "int4", "int8", "float4", "float8", "oid", "xid", "xid8", "cid", "tid", "money",
        "date", "time", "timetz", "timestamp", "timestamptz", "interval", "uuid", "pg_lsn", "inet", "cidr",
        "macaddr", "macaddr8", "point", "lseg", "box", "line", "circle", "name", "regclass", "regproc",
        "regprocedure", "regoper", "regoperator", "regtype", "regconfig", "regdictionary", "regnamespace", "regrole",
        "regcollation", "void",
    }
)
# fmt: on
# Variable-length built-ins that decode to one string (or, json, to what it holds): sized by their text octets.
_TEXT = frozenset({"bpchar", "citext", "json", "jsonb", "xml", "bit", "varbit"})


def _kind(typ: _Type) -> Kind:
    if typ.kind == "array" or typ.kind == "composite" or typ.kind == "range":
        return "structured"
    builtin = typ.schema == "pg_catalog"
    if builtin and typ.name in _FIXED:
        return "fixed"
    if builtin and typ.name in ("bytea", "numeric"):
        return "bytea" if typ.name == "bytea" else "numeric"
    if builtin and typ.name in ("text", "varchar"):
        return "string"
    if typ.name in _TEXT:
        return "text"
    return "structured"


def element_type(typ: _Type) -> str | None:
    """The element type's name of an array type (asyncpg names arrays ``int4[]``; pg_type names them ``_int4``)."""
    if typ.kind != "array":
        return None
    name = str(typ.name)
    return name[:-2] if name.endswith("[]") else name.removeprefix("_")


def _type_label(typ: _Type) -> str:
    element = element_type(typ)
    return f"{element}[]" if element is not None else str(typ.name)


@dataclass(frozen=True, slots=True)
class _Rows:
    """How one shape's records become rows of JSON values, and how big ``estimate_size`` says they are, with the
    conversions and counts chosen once (no per-cell type tests)."""

    take: Callable[[Sequence[Any]], Any]
    """The values of a record's columns, in order (a wrapped record also carries lengths, cuts and flags)."""
    single: bool
    converts: tuple[tuple[int, Callable[[Any], Any]], ...]
    cuts: tuple[tuple[int, int], ...]
    """bytea columns of a wrapped record: (column, position of its full length when cut)."""
    base: int
    """``estimate_size`` of a row whose string and other columns count nothing: brackets, commas, numbers."""
    strings: tuple[int, ...]
    others: tuple[int, ...]
    float_free: bool
    """No column's values can hold a float (``values.float_free``)."""

    def row(self, record: Sequence[Any]) -> list[Any]:
        """One record's row (``rows`` of one)."""
        return self.rows((record,))[0]

    def size(self, row: list[Any]) -> int:
        """``estimate_size(row)``, computed from the columns' sizings (``total`` of one)."""
        return self.total((row,))

    def rows(self, records: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """Each record's values in column order, converted to JSON values (bytea cut to its preview), column by column:
        a loop per conversion, not a chain of tests per cell."""
        take = self.take
        rows = [[take(record)] for record in records] if self.single else [list(take(record)) for record in records]
        for column, convert in self.converts:
            for row in rows:
                value = row[column]
                if value is not None:
                    row[column] = convert(value)
        for column, at in self.cuts:
            for row, record in zip(rows, records, strict=True):
                length = record[at]
                if length is not None:
                    row[column] = cut_bytes(record[at - 1], length)
        return rows

    def total(self, rows: Sequence[list[Any]]) -> int:
        """``sum(estimate_size(row) for row in rows)``, computed from the columns' sizings, column by column."""
        total = self.base * len(rows)
        for column in self.strings:
            for row in rows:
                value = row[column]
                total += 8 if value is None else len(value) + 2
        for column in self.others:
            total += sum(estimate_size(row[column]) for row in rows)
        return total


def _rows(types: Sequence[_Type], positions: Sequence[int], cut: Sequence[bool]) -> _Rows:
    converts, strings, others, cuts = [], [], [], []
    numbers, no_float = 0, True
    for column, (typ, at, cut_here) in enumerate(zip(types, positions, cut, strict=True)):
        builtin, element = typ.schema == "pg_catalog", element_type(typ)
        convert = converter(str(typ.name), builtin=builtin, element=element)
        if cut_here:
            cuts.append((column, at + 1))
        if convert is not None:
            converts.append((column, convert))
        how = sizing(str(typ.name), builtin=builtin, element=element)
        no_float = no_float and float_free(str(typ.name), builtin=builtin, element=element)
        if how == "number":
            numbers += 1
        elif how == "string":
            strings.append(column)
        else:
            others.append(column)
    count = len(types)
    return _Rows(
        take=itemgetter(*positions) if count else (lambda record: ()),
        single=count == 1,
        converts=tuple(converts),
        cuts=tuple(cuts),
        base=2 + count + 8 * numbers,
        strings=tuple(strings),
        others=tuple(others),
        float_free=no_float,
    )


@dataclass(frozen=True, slots=True)
class Shape:
    """A result description, and how its rows are read: what is cut in the database, and how rows are rebuilt."""

    columns: tuple[Column, ...]
    kinds: tuple[Kind, ...]
    plain: _Rows = field(compare=False)
    """Rows of a record read as the statement returns it."""
    cut: _Rows = field(compare=False)
    """Rows of a record read through the wrapper."""

    @property
    def wrapped(self) -> bool:
        """Whether a query of this shape is read through the wrapper (it has a variable-length column)."""
        return any(kind != "fixed" for kind in self.kinds)

    def batch(self, caps: Caps, *, wrapped: bool) -> int:
        """Rows per fetch: ``max_rows + 1`` unless rows are so wide that fewer keep a batch within FETCH_BYTES."""
        if not wrapped and self.wrapped:
            return min(caps.max_rows + 1, UNWRAPPED_BATCH)
        row = _ROW_BYTES + _CELL_BYTES * len(self.kinds)
        return min(caps.max_rows + 1, max(2, FETCH_BYTES // row))

    def wrapper(self, sql: str, caps: Caps) -> str:
        """``sql`` wrapped so that it returns at most ``max_rows + 1`` rows and no large value (see the module)."""
        arguments = (sql, self.kinds, caps.max_rows + 1, _BUDGET_FACTOR * caps.max_bytes, _share(caps, self))
        # Long texts are not kept (a 200 kB statement's wrapper, 256 times over, would be 50 MB of cache).
        return _kept_wrapper(*arguments) if len(sql) <= CACHED_SQL_CHARS else _wrapper(*arguments)

    def over_budget(self, record: Sequence[Any], caps: Caps) -> list[Any]:
        """A wrapped record that came past the running budget (its flag is not 0): the first row of all, its values
        cut to their share, or ``[]`` for any later row, which came without values."""
        if record[-1] != _FIRST_OVER:
            return []
        share = _share(caps, self)
        row = self.cut.row(record)
        for column, (position, kind) in enumerate(zip(_positions(self.kinds), self.kinds, strict=True)):
            if kind == "string":
                cut, length = record[position], record[position + 1]
            elif kind in ("numeric", "text", "structured") and record[position + 1] is not None:
                length_text, _, cut = record[position + 1].partition(":")
                length = int(length_text)
            else:
                continue
            row[column] = None if cut is None else (cut if length <= share else f"{cut}… ({length} chars)")
        return row


@lru_cache(maxsize=512)
def _positions(kinds: tuple[Kind, ...]) -> tuple[int, ...]:
    """Where each column's first wire column is in a wrapped record."""
    out, at = [], 0
    for kind in kinds:
        out.append(at)
        at += 1 if kind == "fixed" else 2
    return tuple(out)


def _share(caps: Caps, shape: Shape) -> int:
    """How much of each value a row over the whole budget shows (as the answer's own shrinking does)."""
    return max(16, caps.max_bytes // max(1, len(shape.kinds)))


_WITHIN, _FIRST_OVER = 0, 1
_SIZE_CAP = 1 << 30
"""Sizes are summed as int4 (cheaper than numeric): no row counts more than this."""


@lru_cache(maxsize=256)
def _kept_wrapper(sql: str, kinds: tuple[Kind, ...], limit: int, budget: int, share: int) -> str:
    return _wrapper(sql, kinds, limit, budget, share)


def _wrapper(sql: str, kinds: tuple[Kind, ...], limit: int, budget: int, share: int) -> str:
    within, first = f"w.total <= {budget}", "w.total = w.size"
    sizes = ["1"]
    outputs = []
    for i, kind in enumerate(kinds):
        column, inner = f"w.c{i}", f"q.c{i}"
        if kind == "fixed":
            outputs.append(column)
        elif kind == "bytea":
            length = f"pg_catalog.octet_length({column})"
            sizes.append(f"2 * least(coalesce(pg_catalog.octet_length({inner}), 0), {BYTEA_PREVIEW_BYTES})")
            outputs.append(
                f"CASE WHEN {length} > {BYTEA_PREVIEW_BYTES} "
                f"THEN pg_catalog.substr({column}, 1, {BYTEA_PREVIEW_BYTES}) ELSE {column} END"
            )
            outputs.append(f"CASE WHEN {length} > {BYTEA_PREVIEW_BYTES} THEN {length} END")
        elif kind == "string":
            sizes.append(f"coalesce(pg_catalog.octet_length({inner})::int8, 0)")
            outputs.append(f"CASE WHEN {within} THEN {column} WHEN {first} THEN pg_catalog.left({column}, {share}) END")
            outputs.append(f"CASE WHEN NOT {within} AND {first} THEN pg_catalog.length({column}) END")
        else:
            # numeric decodes from its binary form: its stored size, not its text (1e130000 prints 130,001 digits).
            size = (
                f"pg_catalog.pg_column_size({inner})::int8 * 2"
                if kind == "numeric"
                else (
                    f"pg_catalog.octet_length({inner}::text)::int8"
                    + ("" if kind == "text" else f" * {_STRUCTURED_WEIGHT}")
                )
            )
            sizes.append(f"coalesce({size}, 0)")
            outputs.append(f"CASE WHEN {within} THEN {column} END")
            text = f"{column}::text"
            outputs.append(
                f"CASE WHEN NOT {within} AND {first} "
                f"THEN pg_catalog.length({text}) || ':' || pg_catalog.left({text}, {share}) END"
            )
    outputs.append(f"CASE WHEN {within} THEN {_WITHIN} WHEN {first} THEN {_FIRST_OVER} ELSE 2 END")
    names = ", ".join(f"c{i}" for i in range(len(kinds)))
    size = f"least({' + '.join(sizes)}, {_SIZE_CAP})::int4"
    running = "pg_catalog.sum(s.size) OVER (ROWS UNBOUNDED PRECEDING)"
    # The caller's text stands on lines of its own, so that a trailing comment cannot swallow the closing parenthesis.
    # It is one statement the policy has analysed and PostgreSQL has just parsed alone (see ``Shape.wrapper``).
    inner = f"SELECT q.*, {size} AS size FROM (\n{sql}\n) AS q({names}) LIMIT {limit}"  # noqa: S608
    return f"SELECT {', '.join(outputs)} FROM (SELECT s.*, {running} AS total FROM ({inner}) AS s) AS w"  # noqa: S608


def source_position(wrapped: str, sql: str, position: int) -> int | None:
    """A 1-based character position in the wrapped text, as a position in the caller's ``sql`` (None if outside)."""
    start = wrapped.find("(\n" + sql + "\n)")
    if start < 0:
        return None
    offset = start + 2
    inside = position - offset
    return inside if 1 <= inside <= len(sql) else None


@lru_cache(maxsize=512)
def shape_of(attributes: Sequence[_Attribute]) -> Shape:
    """The shape of a result description (asyncpg's attributes of a prepared statement: a hashable tuple, so each
    shape is worked out once)."""
    types = [attr.type for attr in attributes]
    kinds = tuple(_kind(typ) for typ in types)
    return Shape(
        columns=tuple(Column(attr.name, _type_label(attr.type)) for attr in attributes),
        kinds=kinds,
        plain=_rows(types, range(len(types)), [False] * len(types)),
        cut=_rows(types, _positions(kinds), [kind == "bytea" for kind in kinds]),
    )


def param_values(types: Sequence[_Type], params: Sequence[Any]) -> list[Any]:
    """The caller's JSON ``params`` coerced to the statement's parameter types; ``InvalidInput`` on a mismatch."""
    if len(params) != len(types):
        expected = f"{len(types)} parameter{'s' if len(types) != 1 else ''}"
        if types:
            expected += f" (${1}…${len(types)})" if len(types) > 1 else " ($1)"
        raise InvalidInput(f"the statement has {expected} but {len(params)} value(s) were given in params")
    return [
        coerce_param(value, index=index, type_name=typ.name, element_type=element_type(typ))
        for index, (value, typ) in enumerate(zip(params, types, strict=True), start=1)
    ]


def rows_affected(command: str) -> int | None:
    """The row count of a command tag such as ``UPDATE 3`` (None for tags without one)."""
    parts = command.split()
    if parts and parts[0] in ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "SELECT", "MOVE", "FETCH"):
        try:
            return int(parts[-1])
        except ValueError:
            return None
    return None


class Collector:
    """Turns records into JSON-safe rows until the row cap or the byte budget is reached."""

    def __init__(self, shape: Shape, caps: Caps, *, wrapped: bool, started: float) -> None:
        self.rows = shape.cut if wrapped else shape.plain
        self.outcome = Outcome(columns=list(shape.columns), float_free=self.rows.float_free)
        self.shape = shape
        self.caps = caps
        self.wrapped = wrapped
        self.used = 0
        self.started = started

    def add(self, record: Sequence[Any]) -> bool:
        """Keep ``record``; False once the answer is full (the outcome is then marked truncated)."""
        rows = self.outcome.rows
        if len(rows) >= self.caps.max_rows:
            self.outcome.truncated = True
            return False
        if self.wrapped and record[-1]:
            self.outcome.truncated = True
            cut = self.shape.over_budget(record, self.caps)
            if not rows and cut:
                rows.append(cut)  # the first row of all, its values already cut to their share
            return False
        row = self.rows.row(record)
        size = self.rows.size(row)
        if self.used + size > self.caps.max_bytes:
            self.outcome.truncated = True
            if not rows:
                rows.append(_shrink(row, self.caps.max_bytes))
            return False
        self.used += size
        rows.append(row)
        return True

    def add_all(self, records: Sequence[Sequence[Any]]) -> bool:
        """``add`` each record in turn; False once the answer is full.

        A batch that fits (within the row cap, no record past the database's running budget, its rows within the
        byte budget) is made in one pass (``_Rows.rows``); otherwise record by record, which stops where it must.
        """
        rows = self.outcome.rows
        if len(rows) + len(records) <= self.caps.max_rows and not (self.wrapped and any(r[-1] for r in records)):
            made = self.rows.rows(records)
            size = self.rows.total(made)
            if self.used + size <= self.caps.max_bytes:
                self.used += size
                rows.extend(made)
                return True
        add = self.add
        return all(add(record) for record in records)

    def finish(self, statement: Statement) -> Outcome:
        outcome = self.outcome
        count = len(outcome.rows)
        outcome.command = f"{statement.verb or 'SELECT'} {count}"
        if statement.verb and not outcome.truncated:
            outcome.rows_affected = count
        outcome.elapsed_ms = (time.perf_counter() - self.started) * 1000
        return outcome


def _shrink(row: list[Any], budget: int) -> list[Any]:
    """The first row alone is over the byte budget: cut its long text values so that something can be shown."""
    share = max(16, budget // max(1, len(row)))
    out: list[Any] = []
    for value in row:
        text = value if isinstance(value, str) else json.dumps(value)
        out.append(value if len(text) <= share else text[:share] + f"… ({len(text)} chars)")
    return out
