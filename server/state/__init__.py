"""What makes a call safe beyond the call itself: the audit log and the operations waiting for a human's yes.

``audit`` appends a record for every change that ran (or failed); ``pending`` keeps the operations stored for
``confirm_operation``, each bound to the objects it touches (``binding``). Both belong to one tenant
(``server.root.Services``).
"""

from __future__ import annotations

from .audit import NOT_NEEDED, AuditLog, AuditRecord, ConfirmationPath, Confirmed
from .binding import Binding, Bound
from .pending import PendingOperation, PendingOperations

__all__ = [
    "NOT_NEEDED",
    "AuditLog",
    "AuditRecord",
    "Binding",
    "Bound",
    "ConfirmationPath",
    "Confirmed",
    "PendingOperation",
    "PendingOperations",
]
