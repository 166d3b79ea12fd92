"""What makes a call safe beyond the call itself: the audit log, the operations waiting for a human's yes, and the
state database that replicas share.

``audit`` records every change that ran (or failed) and who asked for it; ``pending`` keeps the operations stored for
``confirm_operation``, each bound to the objects it touches (``binding``). Both belong to one tenant
(``server.root.Services``), each with two implementations: in this process (memory, a JSON-lines file) and in the
state database (``database``: PostgreSQL, schema ``neon_mcp_state``). Migration plans, the third store, are
``server.migrate.store``.
"""

from __future__ import annotations

from .audit import (
    NOT_NEEDED,
    AuditFile,
    AuditLog,
    AuditRecord,
    AuditTable,
    Caller,
    ConfirmationPath,
    Confirmed,
    current_caller,
)
from .binding import Binding, Bound
from .pending import PendingInMemory, PendingOperation, PendingOperations, PendingTable

__all__ = [
    "NOT_NEEDED",
    "AuditFile",
    "AuditLog",
    "AuditRecord",
    "AuditTable",
    "Binding",
    "Bound",
    "Caller",
    "ConfirmationPath",
    "Confirmed",
    "PendingInMemory",
    "PendingOperation",
    "PendingOperations",
    "PendingTable",
    "current_caller",
]
