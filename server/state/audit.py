"""The audit log: one JSON line for every write or destructive statement that ran (or failed).

The log lives in the server's data directory. Lines are appended with a single ``write`` on a file opened in append
mode, so concurrent writers in one process never interleave within a line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

__all__ = ["NOT_NEEDED", "AuditLog", "AuditRecord", "ConfirmationPath", "Confirmed"]

logger = logging.getLogger(__name__)

ConfirmationPath = Literal["not-needed", "elicitation", "confirm_operation"]


@dataclass(frozen=True, slots=True)
class Confirmed:
    """How a change came to run: not needing a confirmation, a human's yes by elicitation, or ``confirm_operation``
    of a stored operation (``operation_id``)."""

    path: ConfirmationPath
    operation_id: str | None = None
    summary: str | None = None
    """For ``confirm_operation``: the summary the human confirmed (a change confirmed by what it measured when it ran
    checks its new measurement against it)."""


NOT_NEEDED = Confirmed("not-needed")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    target: str
    sql: str
    classification: str
    confirmation: ConfirmationPath
    outcome: Literal["ok", "error", "rolled-back"]
    rows_affected: int | None = None
    error: str | None = None
    operation_id: str | None = None


class AuditLog:
    """Appends ``AuditRecord`` lines to ``path`` (created with its directory on first write, mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, record: AuditRecord) -> None:
        """Write one line; a failure to write is logged, never raised (the statement already ran)."""
        entry = {"time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **asdict(record)}
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode())
                finally:
                    os.close(fd)
        except OSError:
            logger.exception("could not write the audit log at %s", self.path)

    def read(self) -> list[dict[str, object]]:
        """Every record so far (for tests and inspection)."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
