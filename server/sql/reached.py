"""What a statement sets off, as facts: the items of its executable closure, each with the path that reaches it.

``server.sql.closure`` finds them in the catalog; ``server.sql.policy`` judges them. A path names each step from the
statement to the item (``view app.v``, ``function app.f()``, ``trigger t on app.x``, ``foreign key k of app.c (ON
DELETE CASCADE)``, ``what statement 1 defines (CREATE FUNCTION …)``), so that a refusal can say how it got there.
"""

from __future__ import annotations

from dataclasses import dataclass

from .analysis import StatementFacts

__all__ = ["EMPTY", "Call", "Closure", "Foreign", "Function", "Path", "Reached", "Runs", "Unseen", "Write"]

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Function:
    """A function (or procedure, aggregate) as the catalog describes it."""

    schema: str
    name: str
    language: str
    volatility: str
    """``pg_proc.provolatile``: ``i``, ``s`` or ``v``."""
    builtin: bool
    """Made by initdb (PostgreSQL's own)."""
    kind: str = "f"
    extension: str | None = None
    """The extension it belongs to, if any."""
    aliases: tuple[str, ...] = ()
    """For C and internal functions: the names of other functions running the same code (a renamed copy of
    ``pg_read_file`` or ``dblink_exec`` is found out by these)."""
    library: str | None = None
    """For C functions: the shared library's base name (``dblink``)."""
    display: str = ""
    """How messages name it: quoted by PostgreSQL where needed, without schema for PostgreSQL's own."""

    def __str__(self) -> str:
        if self.display:
            return f"{self.display}()"
        return f"{self.name}()" if self.builtin else f"{self.schema}.{self.name}()"


@dataclass(frozen=True, slots=True)
class Call:
    """A function the statement may call, reached through ``path``."""

    path: Path
    function: Function


@dataclass(frozen=True, slots=True)
class Runs:
    """A statement that stored code (a function body, a rule action) runs, reached through ``path``."""

    path: Path
    statement: StatementFacts


@dataclass(frozen=True, slots=True)
class Write:
    """Rows of ``relation`` changed by code the statement sets off (a body's statement, a foreign key's action).

    ``own`` when the relation is one the statement itself changes (its target, a partition of it, the table under a
    view it writes through)."""

    path: Path
    relation: str
    kind: str
    own: bool


@dataclass(frozen=True, slots=True)
class Foreign:
    """A foreign table read or written through its wrapper (``options``: the names of its table and server options)."""

    path: Path
    table: str
    wrapper: str
    options: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Unseen:
    """Code the analysis could not see into (dynamic SQL, text that does not parse, a closure too large)."""

    path: Path
    what: str


Reached = Call | Runs | Write | Foreign | Unseen


@dataclass(frozen=True, slots=True)
class Closure:
    """Everything found reachable from one statement, in the order found (nearest first)."""

    reached: tuple[Reached, ...] = ()


EMPTY = Closure()
