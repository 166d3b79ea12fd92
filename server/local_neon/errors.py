"""The one exception local Neon raises for a request it refuses, shaped like Neon's error answers.

The HTTP layer renders it as ``{"code": code, "message": message, "request_id": …}`` with ``status`` as the HTTP
status. The helpers name the cases Neon distinguishes: unknown ids (404), bad input (400), names already taken (409),
requests Neon understands but refuses in the current state (422), and conflicting running operations (423).
"""

from __future__ import annotations

__all__ = ["NeonAPIError", "bad_request", "conflict", "locked", "not_found", "unprocessable"]


class NeonAPIError(Exception):
    """A request local Neon refuses: an HTTP ``status``, a ``message`` for people, Neon's ``code`` (often empty)."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        self.status = status
        self.message = message
        self.code = code
        super().__init__(message)

    def __repr__(self) -> str:
        return f"NeonAPIError({self.status}, {self.message!r}, code={self.code!r})"


def not_found(what: str, ident: str) -> NeonAPIError:
    """404 for an unknown id or name, e.g. ``not_found("branch", "br-…")``."""
    return NeonAPIError(404, f"{what} {ident!r} not found")


def bad_request(message: str) -> NeonAPIError:
    """400 for a request body or parameter that cannot be used."""
    return NeonAPIError(400, message)


def conflict(message: str) -> NeonAPIError:
    """409 for a name that is already taken."""
    return NeonAPIError(409, message)


def unprocessable(message: str) -> NeonAPIError:
    """422 for a well-formed request Neon refuses in the current state (deleting the default branch, …)."""
    return NeonAPIError(422, message)


def locked(blocked_by: str) -> NeonAPIError:
    """423 while a conflicting operation runs; Neon's own wording, plus what holds the lock."""
    return NeonAPIError(
        423,
        "project already has running conflicting operations, scheduling of new ones is prohibited "
        f"(blocked by {blocked_by})",
    )
