"""The exceptions neon-mcp raises.

Every failure the server anticipates is a ``NeonMCPError``; its ``str()`` is a message written for the model and a
human, safe to show (no passwords, no tracebacks). Text an error quotes from the database (PostgreSQL's message,
detail, hint and context, which a ``RAISE`` or an object's name can make say anything) is kept apart: ``split()``
gives the server's own words and the quoted text, which a tool answer shows only inside an untrusted-data fence.
Foreign exceptions (asyncpg, httpx2) are translated once, at the seam that calls them, and re-raised ``from`` the
original. Local Neon's answers to its own HTTP clients are
``server.local_neon.errors.NeonAPIError`` (Neon's status and message, for the emulated API), not part of this tree.

    NeonMCPError
    ├── InvalidInput            bad arguments: empty SQL, several statements where one is expected, NUL bytes, …
    ├── SQLParseError           the SQL does not parse (message and position from PostgreSQL's parser)
    ├── PolicyViolation         the SQL policy refuses the statement in every mode, or in the current access mode
    ├── ConfirmationError       unknown, expired or already used confirmation id
    │   └── NeedsConfirmation   a change found to need confirmation once it ran (rolled back; ``change`` to ask)
    ├── ClusterError            a local PostgreSQL cluster could not be created, started or stopped
    ├── LocalNeonDidNotStart    local Neon, started in the background, exited or did not answer in time
    ├── MigrationFailed         a migration failed on its plan branch or on its target (what stayed is said)
    ├── StateUnavailable        the state database (NEON_MCP_STATE_URL) did not answer: nothing was stored or taken
    ├── NeonAPIFailure          Neon's API refused a request (HTTP status, Neon's code, message, request_id)
    │   └── NeonUnreachable     Neon's API could not be reached: network error or timeout, retries used up
    ├── OperationFailed         an operation Neon ran for a change ended failed, error or cancelled
    │   └── OperationTimeout    an operation did not finish in the time allowed (it may still finish later)
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
    "LocalNeonDidNotStart",
    "MigrationFailed",
    "NeedsConfirmation",
    "NeonAPIFailure",
    "NeonMCPError",
    "NeonUnreachable",
    "OperationFailed",
    "OperationTimeout",
    "PolicyViolation",
    "SQLParseError",
    "StateUnavailable",
    "UnknownDatabase",
]


class NeonMCPError(Exception):
    """Base of every anticipated failure. ``quoted``: text from the database the message quotes (shown fenced)."""

    def __init__(self, *args: object, quoted: str | None = None) -> None:
        super().__init__(*args)
        self.quoted = quoted

    def split(self) -> tuple[str, str | None]:
        """The message in two parts: the server's own words, and what it quotes from the database (or None)."""
        return self._words(), self.quoted

    def _words(self) -> str:
        return super().__str__()

    def __str__(self) -> str:
        words, quoted = self.split()
        return f"{words}\n{quoted}" if quoted else words


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


class NeedsConfirmation(ConfirmationError):
    """A change that needed no confirmation by its plan turned out to need one when it ran (e.g. it touched a whole
    table); it was rolled back, so nothing was applied. ``change`` is what to ask the human about (a
    ``server.mcp.Change``): the confirmation path catches this and asks."""

    def __init__(self, message: str, change: object) -> None:
        super().__init__(message)
        self.change = change


class ClusterError(NeonMCPError):
    """A local PostgreSQL cluster operation failed."""


class LocalNeonDidNotStart(NeonMCPError):
    """The background local Neon exited or did not answer in time; the message holds its log's tail."""


class MigrationFailed(NeonMCPError):
    """The migration failed on its plan branch or on the target; the message says where and what stayed."""


class StateUnavailable(NeonMCPError):
    """The state database shared by replicas could not be reached, or refused; the message says what did not happen
    (the driver's text goes to the log only: it may name hosts)."""


class NeonAPIFailure(NeonMCPError):
    """Neon's API answered with an error status, or gave up after its retries.

    ``status`` is the HTTP status (``None`` when no answer came), ``code`` and ``message`` are Neon's, ``request_id``
    identifies the request in Neon's logs. ``str()`` names the method and path, never the API key.
    """

    def __init__(
        self,
        method: str,
        path: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.method = method
        self.path = path
        self.message = message
        self.status = status
        self.code = code or None
        self.request_id = request_id or None
        self.attempts = attempts
        super().__init__(message)

    def _words(self) -> str:
        head = "Neon API" if self.status is None else f"Neon API {self.status}"
        notes = [f"code {self.code}"] if self.code else []
        if self.request_id:
            notes.append(f"request_id {self.request_id}")
        if self.attempts > 1:
            notes.append(f"after {self.attempts} attempts")
        tail = f" ({', '.join(notes)})" if notes else ""
        return f"{head} on {self.method} {self.path}: {self.message}{tail}"


class NeonUnreachable(NeonAPIFailure):
    """No answer from Neon's API: the connection failed or timed out (and retrying did not help)."""


class OperationFailed(NeonMCPError):
    """An operation Neon started for a change (create_timeline, start_compute, …) did not succeed."""

    def __init__(self, operation_id: str, action: str, status: str, error: str | None = None) -> None:
        self.operation_id = operation_id
        self.action = action
        self.status = status
        self.error = error
        super().__init__(self._describe())

    def _describe(self) -> str:
        text = f"Neon operation {self.action} ({self.operation_id}) {self.status}"
        return f"{text}: {self.error}" if self.error else text


class OperationTimeout(OperationFailed):
    """An operation was still running when the wait ran out; it may yet finish on Neon's side."""

    def __init__(self, operation_id: str, action: str, status: str, waited: float) -> None:
        self.waited = waited
        super().__init__(operation_id, action, status)

    def _describe(self) -> str:
        return (
            f"Neon operation {self.action} ({self.operation_id}) did not finish within {self.waited:g} s "
            f"(still {self.status}); it may finish later, check the branch before retrying"
        )


class DatabaseError(NeonMCPError):
    """PostgreSQL reported an error while running a statement. Its message, detail, hint and context are PostgreSQL's
    (a function's ``RAISE`` writes them): ``split()`` quotes them, after the server's own head (SQLSTATE, statement,
    position)."""

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        position: int | None = None,
        statement_index: int | None = None,
        context: str | None = None,
    ) -> None:
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint
        self.position = position
        self.statement_index = statement_index
        self.context = context
        super().__init__(message)

    def split(self) -> tuple[str, str | None]:
        head = "PostgreSQL error"
        if self.sqlstate:
            head += f" {self.sqlstate}"
        if self.statement_index is not None:
            head += f" in statement {self.statement_index + 1}"
        head += ":"
        if self.position is not None:
            head += f"\nPosition: character {self.position}"
        lines = [self.message]
        if self.detail:
            lines.append(f"Detail: {self.detail}")
        if self.hint:
            lines.append(f"Hint: {self.hint}")
        if self.context:
            lines.append(f"Context: {self.context}")
        return head, "\n".join(lines)


class UnknownDatabase(DatabaseError):
    """The database named by the caller does not exist."""


class ConnectionFailed(DatabaseError):
    """The database could not be reached or the connection broke."""
