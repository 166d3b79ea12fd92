"""Points in a branch's history as callers write them: an ISO 8601 timestamp (UTC when naive) or an LSN (0/1A2B3C).

Used by time travel (``as_of``) and the branch tools (``at_time``/``at_lsn``, ``to_time``/``to_lsn``); every error
names the argument and shows the expected form.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ..errors import InvalidInput

__all__ = ["is_lsn", "parse_lsn", "parse_moment", "parse_point"]

_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")


def is_lsn(text: str) -> bool:
    return bool(_LSN.match(text.strip()))


def parse_lsn(text: str, field: str) -> str:
    if not is_lsn(text):
        raise InvalidInput(f"{field} {text!r} is not an LSN such as 0/1A2B3C")
    return text.strip().upper()


def parse_moment(text: str, field: str) -> datetime:
    """A past moment in UTC; raises ``InvalidInput`` for something else or a moment in the future."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} {text!r} is not an ISO 8601 timestamp such as 2026-11-26T09:30:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > datetime.now(UTC):
        raise InvalidInput(f"{field} {text!r} is in the future")
    return moment.astimezone(UTC)


def parse_point(text: str, field: str) -> tuple[str | None, datetime | None]:
    """``(lsn, None)`` for an LSN, ``(None, moment)`` for a timestamp."""
    if is_lsn(text):
        return parse_lsn(text, field), None
    return None, parse_moment(text, field)
