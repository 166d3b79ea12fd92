"""The exceptions neon-mcp raises.

Every failure the server anticipates is a ``NeonMCPError``; its ``str()`` is a message written for the model and a
human, safe to show (no passwords, no tracebacks). Foreign exceptions (asyncpg, httpx2) are translated once, at the
seam that calls them, and re-raised ``from`` the original.

    NeonMCPError
    ├── InvalidInput            bad arguments: empty SQL, several statements where one is expected, NUL bytes, …
    ├── SQLParseError           the SQL does not parse (message and position from PostgreSQL's parser)
    ├── PolicyViolation         the SQL policy refuses the statement in every mode, or in the current access mode
    ├── ConfirmationError       unknown, expired or already used confirmation id
    ├── ClusterError            a local PostgreSQL cluster could not be created, started or stopped
    └── DatabaseError           PostgreSQL answered with an error (SQLSTATE, message, detail, hint, position)
        ├── UnknownDatabase     the database named by the caller does not exist
        └── ConnectionFailed    the server could not be reached, or the connection broke mid-call
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "ConfirmationError",
    "ConnectionFailed",
    "DatabaseError",
    "InvalidInput",
    "NeonMCPError",
    "PolicyViolation",
    "SQLParseError",
    "UnknownDatabase",
]


class NeonMCPError(Exception):
    """Base of every anticipated failure; the message is shown to the model as is."""


class InvalidInput(NeonMCPError):
    """The caller's arguments cannot be used."""


class SQLParseError(NeonMCPError):
    """PostgreSQL's parser rejected the SQL."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        where = f" at character {position}" if position is not None else ""
        super().__init__(f"SQL syntax error{where}: {message}")


class PolicyViolation(NeonMCPError):
    """The SQL policy refuses a statement; the message gives the reason and what to do instead."""


class ConfirmationError(NeonMCPError):
    """A confirmation id is unknown, expired or already used."""


class ClusterError(NeonMCPError):
    """A local PostgreSQL cluster operation failed."""


class DatabaseError(NeonMCPError):
    """PostgreSQL reported an error while running a statement."""

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        position: int | None = None,
        statement_index: int | None = None,
    ) -> None:
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.position = position
        self.statement_index = statement_index
        super().__init__(message)

    def __str__(self) -> str:
        head = "PostgreSQL error"
        if self.sqlstate:
            head += f" {self.sqlstate}"
        if self.statement_index is not None:
            head += f" in statement {self.statement_index + 1}"
        lines = [f"{head}: {self.message}"]
        if self.position is not None:
            lines.append(f"Position: character {self.position}")
        if self.detail:
            lines.append(f"Detail: {self.detail}")
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        return "\n".join(lines)


class UnknownDatabase(DatabaseError):
    """The database named by the caller does not exist."""


class ConnectionFailed(DatabaseError):
    """The database could not be reached or the connection broke."""
